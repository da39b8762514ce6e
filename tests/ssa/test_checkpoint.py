"""Resumable traversals: a checkpoint records each finished step; a rerun after an interruption (an exception, or
SIGKILL of the process) skips what is done and returns the identical graph; a checkpoint of another analysis, or a
damaged one, is refused before any computation."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from tests.helpers import build_case, digits_subset
from torch import Tensor, nn

import stepwise
from stepwise.ssa import traverse
from stepwise.ssa.checkpoint import model_digest, tensor_digest
from stepwise.cli import main
from stepwise.graphs.readwrite import write_json

ROOT = Path(__file__).resolve().parents[2]  # on sys.path of a script, so that tests.helpers imports
TARGET = 0  # with sign="both", the traversal of vgg_case() runs through all 5 steps, 22 edges


def vgg_case() -> tuple[nn.Module, Tensor, list[str]]:
    torch.manual_seed(0)
    model, _, _, levels = build_case("vgg", torch.float64)
    return model, torch.randn(12, 3, 16, 16, dtype=torch.float64), levels


def json_bytes(graph: stepwise.DependencyGraph, path: Path) -> bytes:
    write_json(graph, path)
    return path.read_bytes()


def interrupt_on_call(k: int) -> Callable:
    """``select_children`` that raises KeyboardInterrupt on its k-th call: step k is interrupted after its ω
    statistics are computed, before it is recorded."""
    real = traverse.select_children
    calls = []

    def select(*args, **kwargs):
        calls.append(1)
        if len(calls) == k:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    return select


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """What each traversal computes: the upper level of every step computed, the positions of every closed-form
    statistics pass."""
    seen: dict[str, list] = {"steps": [], "collected": []}
    compute, collect = traverse.StepwiseSensitivity._compute_step, traverse.StepwiseSensitivity._collect

    def compute_step(self, data, batch_size, lower, upper, *args):
        seen["steps"].append(upper.name)
        return compute(self, data, batch_size, lower, upper, *args)

    def collect_statistics(self, data, batch_size, steps, bar):
        seen["collected"].append(sorted(steps))
        return collect(self, data, batch_size, steps, bar)

    monkeypatch.setattr(traverse.StepwiseSensitivity, "_compute_step", compute_step)
    monkeypatch.setattr(traverse.StepwiseSensitivity, "_collect", collect_statistics)
    return seen


# ------------------------------------------------------------------------------------------------ resuming


@pytest.mark.parametrize("closed_form", [True, False])
def test_an_interrupted_run_resumes_to_the_identical_graph(
    closed_form: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, work: dict[str, list]
) -> None:
    model, inputs, levels = vgg_case()
    ssa = stepwise.StepwiseSensitivity(model, levels, sign="both", batch_size=5, closed_form=closed_form)
    graph = ssa.dependency_graph(inputs, target=TARGET)
    expected = json_bytes(graph, tmp_path / "expected.json")
    assert len(graph.edges) == 22 and "stopped_at" not in graph.attrs
    assert work["steps"] == levels[:0:-1]  # softmax, classifier.4, ..., features.3
    assert work["collected"] == ([[1, 2, 3, 4, 5]] if closed_form else [])

    path = tmp_path / "run.checkpoint.json"
    with monkeypatch.context() as patch:
        patch.setattr(traverse, "select_children", interrupt_on_call(3))
        with pytest.raises(KeyboardInterrupt):
            ssa.dependency_graph(inputs, target=TARGET, checkpoint=path)
    saved = json.loads(path.read_text())
    assert saved["complete"] is False
    assert [(step["position"], step["step"]) for step in saved["steps"]] == [
        (5, "classifier.4 <- softmax"),
        (4, "classifier.1 <- classifier.4"),
    ]
    assert not list(tmp_path.glob(".*.tmp"))

    work["steps"].clear(), work["collected"].clear()
    forwards = []
    hook = model.register_forward_pre_hook(lambda module, args: forwards.append(1))
    try:
        resumed = ssa.dependency_graph(inputs, target=TARGET, checkpoint=path)
    finally:
        hook.remove()
    assert json_bytes(resumed, tmp_path / "resumed.json") == expected
    assert work["steps"] == ["classifier.1", "features.6", "features.3"]  # the three steps left, no more
    # The closed-form statistics pass gathers only the steps left; the autograd path runs one forward pass per
    # batch (3 of 5 inputs) and step left.
    assert work["collected"] == ([[1, 2, 3]] if closed_form else [])
    assert len(forwards) == (3 if closed_form else 3 * 3)
    saved = json.loads(path.read_text())
    assert saved["complete"] is True and [step["position"] for step in saved["steps"]] == [5, 4, 3, 2, 1]

    # A complete checkpoint is kept: a rerun returns the graph without computing anything.
    work["steps"].clear(), work["collected"].clear()
    again = ssa.dependency_graph(inputs, target=TARGET, checkpoint=path)
    assert json_bytes(again, tmp_path / "again.json") == expected
    assert work == {"steps": [], "collected": []}


def test_an_early_stop_is_recorded_and_its_warning_issued_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, work: dict[str, list]
) -> None:
    model, inputs, levels = vgg_case()
    ssa = stepwise.StepwiseSensitivity(model, levels)  # positive outliers: the traversal stops at the third step
    with pytest.warns(UserWarning, match="Step features.3 <- features.6") as caught:
        expected = ssa.dependency_graph(inputs, target=TARGET)
    assert expected.attrs["stopped_at"] == "features.3 <- features.6"
    message = str(caught[0].message)

    path = tmp_path / "stop.checkpoint.json"
    with monkeypatch.context() as patch:
        patch.setattr(traverse, "select_children", interrupt_on_call(2))
        with pytest.raises(KeyboardInterrupt):
            ssa.dependency_graph(inputs, target=TARGET, checkpoint=path)
    for computed in (["classifier.4", "classifier.1", "features.6"], []):  # resumed, then complete
        work["steps"].clear()
        with pytest.warns(UserWarning) as caught:
            resumed = ssa.dependency_graph(inputs, target=TARGET, checkpoint=path)
        assert work["steps"] == computed
        assert [str(w.message) for w in caught] == [message]
        assert json_bytes(resumed, tmp_path / "resumed.json") == json_bytes(expected, tmp_path / "expected.json")
    saved = json.loads(path.read_text())
    assert saved["complete"] is True
    assert [(step["position"], step["edges"]) for step in saved["steps"]][-1] == (2, [])


# The run killed in a subprocess: the same model and inputs (read from files), a checkpoint, and a select_children
# that is slow from the second step on, so that the process is killed mid-traversal once one step is recorded.
KILLED_RUN = """\
import sys
import time

import torch

sys.path.insert(0, {root!r})
from tests.helpers import build_case

import stepwise
from stepwise.ssa import traverse

model, _, _, levels = build_case("vgg", torch.float64)
model.load_state_dict(torch.load({weights!r}, weights_only=True))
inputs = torch.load({inputs!r}, weights_only=True)
select = traverse.select_children
calls = []


def slow_select(*args, **kwargs):
    if calls:
        time.sleep(60)
    calls.append(1)
    return select(*args, **kwargs)


traverse.select_children = slow_select
ssa = stepwise.StepwiseSensitivity(model, levels, sign="both")
ssa.dependency_graph(inputs, target={target}, checkpoint={checkpoint!r})
"""


def recorded_steps(path: Path) -> int:
    return len(json.loads(path.read_text())["steps"]) if path.exists() else 0


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_a_run_killed_mid_traversal_resumes_to_the_identical_graph(tmp_path: Path, work: dict[str, list]) -> None:
    model, inputs, levels = vgg_case()
    files = {name: tmp_path / f"{name}.pt" for name in ("weights", "inputs")}
    torch.save(model.state_dict(), files["weights"])
    torch.save(inputs, files["inputs"])
    path = tmp_path / "killed.checkpoint.json"
    script = tmp_path / "killed_run.py"
    script.write_text(
        KILLED_RUN.format(
            root=str(ROOT),
            weights=str(files["weights"]),
            inputs=str(files["inputs"]),
            target=TARGET,
            checkpoint=str(path),
        )  # fmt: skip
    )
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while recorded_steps(path) < 1:
            if process.poll() is not None:
                pytest.fail(f"the run ended (status {process.returncode}) before it was killed:\n"
                            f"{process.communicate()[1].decode()}")  # fmt: skip
            assert time.monotonic() < deadline, "the run recorded no step within 120 s"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == -signal.SIGKILL
    saved = json.loads(path.read_text())
    assert saved["complete"] is False and [step["position"] for step in saved["steps"]] == [5]
    assert not list(tmp_path.glob(".*.tmp"))

    ssa = stepwise.StepwiseSensitivity(model, levels, sign="both")
    resumed = ssa.dependency_graph(inputs, target=TARGET, checkpoint=path)
    assert work["steps"] == levels[4:0:-1]  # the four steps the killed run did not finish
    uninterrupted = ssa.dependency_graph(inputs, target=TARGET)
    assert json_bytes(resumed, tmp_path / "resumed.json") == json_bytes(uninterrupted, tmp_path / "expected.json")
    assert len(resumed.edges) == 22


# ------------------------------------------------------------------------------------------------ refusals


@pytest.fixture
def finished(tmp_path: Path) -> tuple[nn.Module, Tensor, list[str], Path]:
    """A complete checkpoint of vgg_case() (sign='both', TARGET)."""
    model, inputs, levels = vgg_case()
    path = tmp_path / "finished.checkpoint.json"
    stepwise.StepwiseSensitivity(model, levels, sign="both").dependency_graph(inputs, target=TARGET, checkpoint=path)
    return model, inputs, levels, path


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a step or a statistics pass starts."""

    def fail(*args, **kwargs):
        raise AssertionError("the traversal started before the checkpoint was checked")

    monkeypatch.setattr(traverse.StepwiseSensitivity, "_compute_step", fail)
    monkeypatch.setattr(traverse.StepwiseSensitivity, "_collect", fail)


def changed_weights(model: nn.Module) -> nn.Module:
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.classifier[6].bias[0] += 1e-12
    return other


OTHER_RUNS = {
    # name: (a change of the run: model, inputs, levels, settings, target -> the same), expected message fragment
    "sign": (lambda m, x, lv, kw, t: (m, x, lv, {**kw, "sign": "positive"}, t),
             r"other settings \(sign: 'both' in the checkpoint, 'positive' now\)"),
    "branching": (lambda m, x, lv, kw, t: (m, x, lv, {**kw, "branching": 2}, t),
                  r"other settings \(branching: 3 in the checkpoint, 2 now\)"),
    "rule": (lambda m, x, lv, kw, t: (m, x, lv, {**kw, "rule": "guided"}, t),
             r"rule: 'gradient' in the checkpoint, 'guided' now"),
    "fence": (lambda m, x, lv, kw, t: (m, x, lv, {**kw, "fence": 1.0}, t), r"fence: 1.5 in the checkpoint, 1.0 now"),
    "closed_form": (lambda m, x, lv, kw, t: (m, x, lv, {**kw, "closed_form": False}, t),
                    r"closed_form: True in the checkpoint, False now"),
    "batch_size": (lambda m, x, lv, kw, t: (m, x, lv, {**kw, "batch_size": 5}, t),
                   r"batch_size: 12 in the checkpoint, 5 now"),
    "target": (lambda m, x, lv, kw, t: (m, x, lv, kw, 1), r"target: 0 in the checkpoint, 1 now"),
    "levels": (lambda m, x, lv, kw, t: (m, x, lv[1:], kw, t), r"other settings \(levels: \['features.1'"),
    "weights": (lambda m, x, lv, kw, t: (changed_weights(m), x, lv, kw, t),
                r"another model \(its parameters or buffers differ\) \(sha256: '[0-9a-f]{12}\.\.\.' in the "
                r"checkpoint, '[0-9a-f]{12}\.\.\.' now\)"),
    "inputs": (lambda m, x, lv, kw, t: (m, torch.cat([x[:-1], x[-1:] * 2]), lv, kw, t),
               r"other inputs \(sha256: "),
    "fewer inputs": (lambda m, x, lv, kw, t: (m, x[:10], lv, kw, t),
                     r"other inputs \(shape: \[12, 3, 16, 16\] in the checkpoint, \[10, 3, 16, 16\] now"),
    "dtype": (lambda m, x, lv, kw, t: (m.float(), x.float(), lv, kw, t),
              r"inputs \(dtype: 'torch.float64' in the checkpoint, 'torch.float32' now"),
}  # fmt: skip


@pytest.mark.parametrize("change", OTHER_RUNS)
def test_a_checkpoint_of_another_analysis_is_refused(change: str, finished, no_work) -> None:
    model, inputs, levels, path = finished
    before = path.read_bytes()
    alter, message = OTHER_RUNS[change]
    model, inputs, levels, settings, target = alter(copy.deepcopy(model), inputs, levels, {"sign": "both"}, TARGET)
    ssa = stepwise.StepwiseSensitivity(model, levels, **settings)
    with pytest.raises(ValueError, match=message) as error:
        ssa.dependency_graph(inputs, target=target, checkpoint=path)
    assert str(error.value).startswith(f"Cannot resume from the checkpoint {path}: it was made with ")
    assert str(error.value).endswith("Delete the file to start afresh, or pass another checkpoint path.")
    assert path.read_bytes() == before  # never mixed in, never overwritten


def test_a_checkpoint_of_another_version_is_refused(finished, no_work, monkeypatch: pytest.MonkeyPatch) -> None:
    model, inputs, levels, path = finished
    monkeypatch.setattr(traverse, "__version__", "9.9.9")
    ssa = stepwise.StepwiseSensitivity(model, levels, sign="both")
    with pytest.raises(ValueError, match=r"another stepwise version \('0\.1\.0' in the checkpoint, '9\.9\.9' now\)"):
        ssa.dependency_graph(inputs, target=TARGET, checkpoint=path)


def test_the_model_digest_covers_parameters_and_buffers() -> None:
    model, _, _, _ = build_case("resnet", torch.float32)
    digest = model_digest(model)
    assert model_digest(copy.deepcopy(model)) == digest and len(digest) == 64
    changes = [
        lambda m: m.layer1[0].bn1.running_mean.add_(1e-6),  # a buffer
        lambda m: m.layer1[0].bn1.num_batches_tracked.add_(1),  # an integer buffer
        lambda m: m.fc.weight.data.mul_(-1),  # a parameter
        lambda m: m.double(),  # the same values in another dtype
    ]
    for change in changes:
        other = copy.deepcopy(model)
        with torch.no_grad():
            change(other)
        assert model_digest(other) != digest
    x = torch.arange(6.0)
    assert tensor_digest(x) == tensor_digest(x.clone()) != tensor_digest(x.view(2, 3))
    assert tensor_digest(x) != tensor_digest(x.double())


def damaged(valid: bytes) -> dict[str, bytes]:
    data = json.loads(valid)
    out_of_range, wrong_position, missing = copy.deepcopy(data), copy.deepcopy(data), copy.deepcopy(data)
    out_of_range["steps"][1]["edges"][0][1] = 10**6
    wrong_position["steps"][0]["position"] = 3
    del missing["steps"]
    return {
        "truncated": valid[: len(valid) // 2],
        "empty": b"",
        "binary": bytes(range(128, 256)),
        "list": b"[1, 2, 3]",
        "child out of range": json.dumps(out_of_range).encode(),
        "step at the wrong position": json.dumps(wrong_position).encode(),
        "no steps": json.dumps(missing).encode(),
        "nested too deep": b"[" * 100_000 + b"]" * 100_000,
        "huge number": b'{"format": ' + b"9" * 5000 + b"}",
    }


DAMAGE = {
    "truncated": r"\(JSONDecodeError: ",
    "empty": r"\(JSONDecodeError: ",
    "binary": r"\((UnicodeDecodeError|JSONDecodeError): ",
    "list": r"\(no 'format': 'stepwise-checkpoint' entry\)",
    "child out of range": r"\(the edges of step classifier.1 <- classifier.4 are not \[parent, child, count, mean ω\]",
    "step at the wrong position": r"\(step 0 is at position 3, expected 5\)",
    "no steps": r"\('fingerprint' must be an object, 'steps' a list and 'complete' a boolean\)",
    "nested too deep": r"\(RecursionError: ",
    "huge number": r"\(ValueError: ",
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_checkpoint_is_refused(damage: str, finished, monkeypatch: pytest.MonkeyPatch) -> None:
    model, inputs, levels, path = finished
    bad = damaged(path.read_bytes())[damage]
    path.write_bytes(bad)
    ssa = stepwise.StepwiseSensitivity(model, levels, sign="both")
    with pytest.raises(ValueError, match=DAMAGE[damage]) as error:
        ssa.dependency_graph(inputs, target=TARGET, checkpoint=path)
    assert f"Cannot resume from the checkpoint {path}: it is not a valid stepwise checkpoint" in str(error.value)
    assert "Delete the file to start afresh, or pass another checkpoint path." in str(error.value)
    assert path.read_bytes() == bad


def test_a_graph_file_is_not_taken_for_a_checkpoint(finished, tmp_path: Path, no_work) -> None:
    model, inputs, levels, path = finished
    ssa = stepwise.StepwiseSensitivity(model, levels, sign="both")
    graph_file = tmp_path / "graph.json"
    before = json_bytes(ssa.dependency_graph(inputs, target=TARGET, checkpoint=path), graph_file)
    with pytest.raises(ValueError, match=r"not a valid stepwise checkpoint \(no 'format': 'stepwise-checkpoint'"):
        ssa.dependency_graph(inputs, target=TARGET, checkpoint=graph_file)
    assert graph_file.read_bytes() == before


@pytest.mark.parametrize(
    "checkpoint, error, message",
    [
        (lambda tmp: tmp, ValueError, r"is a folder: name a file inside it, for example .*checkpoint\.json"),
        (lambda tmp: tmp / "missing" / "c.json", FileNotFoundError, r"the folder .*missing does not exist\. Create"),
        (lambda tmp: 3, TypeError, r"The 'checkpoint' parameter of StepwiseSensitivity\.dependency_graph must be a "
                                   r"str or os\.PathLike \(a file path\) or None\. Got 3 instead\."),
        (lambda tmp: Path(os.devnull), ValueError, r"exists but is not a regular file"),
    ],
)  # fmt: skip
def test_a_bad_checkpoint_path_is_refused_before_any_work(checkpoint, error, message, tmp_path: Path) -> None:
    model, _, inputs, levels = build_case("mlp", torch.float64)
    forwards = []
    model.register_forward_pre_hook(lambda module, args: forwards.append(1))
    with pytest.raises(error, match=message):
        stepwise.StepwiseSensitivity(model, levels).dependency_graph(inputs, target=1, checkpoint=checkpoint(tmp_path))
    assert not forwards


# ------------------------------------------------------------------------------------------------ command line


@pytest.fixture(scope="module")
def digits_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three training images of each of the classes 0 and 1, with labels."""
    path = tmp_path_factory.mktemp("digits") / "digits.pt"
    torch.save(digits_subset((0, 1), 3), path)
    return path


def test_the_command_resumes_each_class_from_its_checkpoint(
    digits_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, work: dict[str, list], capsys
) -> None:
    def analyse(out: str, *extra: str) -> int:
        args = ["analyse", "--model", "stepwise.models:digits_cnn", "--data", str(digits_file), "--quiet"]
        return main([*args, "--out", str(tmp_path / out), *extra])

    assert analyse("plain") == 0
    checkpoints = tmp_path / "checkpoints"
    with monkeypatch.context() as patch:  # interrupted in the second step of class 0
        patch.setattr(traverse, "select_children", interrupt_on_call(2))
        assert analyse("resumed", "--checkpoint", str(checkpoints)) == 130
    assert f"Rerun the same command to resume from the checkpoints in {checkpoints}." in capsys.readouterr().err
    assert sorted(p.name for p in checkpoints.iterdir()) == ["class_0.checkpoint.json"]
    assert len(json.loads((checkpoints / "class_0.checkpoint.json").read_text())["steps"]) == 1

    work["steps"].clear()
    assert analyse("resumed", "--checkpoint", str(checkpoints)) == 0
    n_steps = len(json.loads((checkpoints / "class_1.checkpoint.json").read_text())["steps"])
    n_class_0 = len(json.loads((checkpoints / "class_0.checkpoint.json").read_text())["steps"])
    assert len(work["steps"]) == n_class_0 - 1 + n_steps  # class 0's first step is not computed again
    for label in ("0", "1"):
        saved = json.loads((checkpoints / f"class_{label}.checkpoint.json").read_text())
        assert saved["complete"] is True
        for suffix in (".json", ".graphml"):
            name = f"class_{label}{suffix}"
            assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()

    work["steps"].clear()  # complete checkpoints: nothing is computed again
    assert analyse("again", "--checkpoint", str(checkpoints)) == 0
    assert work["steps"] == []

    assert analyse("other", "--checkpoint", str(checkpoints), "--branching", "2") == 1
    err = capsys.readouterr().err
    assert "Cannot resume from the checkpoint" in err and "branching: 3 in the checkpoint, 2 now" in err

    with pytest.raises(SystemExit) as exit_status:
        analyse("file", "--checkpoint", str(digits_file))
    assert exit_status.value.code == 2
    assert f"--checkpoint {digits_file} is a file; name a folder" in capsys.readouterr().err
