"""The ``stepwise`` command end to end: files that exist and parse, and bad arguments that stop it with status 2."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image
from tests.helpers import digits_subset
from torch import nn

import stepwise
from stepwise.cli import build_parser, main
from stepwise.core.io import write_file
from stepwise.models import digits_cnn

SCRIPT = Path(sys.executable).parent / "stepwise"
PNG = b"\x89PNG\r\n\x1a\n"


def run_command(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """The installed console script, in a subprocess, as a user runs it."""
    if not SCRIPT.exists():
        raise RuntimeError(f"{SCRIPT} is missing: install the package with 'pip install -e .'.")
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small labelled data file (4 training images of each of classes 0, 1, 2), the shipped weights as a
    state dict, and files that are wrong in one way each."""
    folder = tmp_path_factory.mktemp("inputs")
    inputs, labels = digits_subset((0, 1, 2), 4)
    names = ("data", "weights", "rgb", "bad_labels", "linear", "pickled", "scripted")
    paths = {name: folder / f"{name}.pt" for name in names}
    torch.save((inputs, labels), paths["data"])
    torch.save(digits_cnn().state_dict(), paths["weights"])
    torch.save(inputs.repeat(1, 3, 1, 1), paths["rgb"])
    torch.save((inputs, labels + 10), paths["bad_labels"])
    torch.save(nn.Linear(3, 2).state_dict(), paths["linear"])
    torch.save(nn.Linear(3, 2), paths["pickled"])
    with warnings.catch_warnings():  # TorchScript is deprecated; users still have such files
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(nn.Sequential(nn.Linear(3, 2))), paths["scripted"])
    paths["images"] = folder / "images"
    folder_images, folder_labels = digits_subset((0, 1), 3)
    for c in (0, 1):
        (paths["images"] / str(c)).mkdir(parents=True)
        for position, image in enumerate(folder_images[folder_labels == c]):
            pixels = (image[0] * 255).round().to(torch.uint8).numpy()
            Image.fromarray(pixels, mode="L").save(paths["images"] / str(c) / f"{position}.png")
    return paths


def model_args(command: str, files: dict[str, Path], *extra: str) -> list[str]:
    """``command`` on the untrained architecture with the shipped weights loaded from a state dict."""
    return [command, "--model", "stepwise.models:DigitsCNN", "--weights", str(files["weights"]), *extra]


def check_graph_files(out: Path, labels: list[str]) -> None:
    for label in labels:
        graphml = stepwise.read_graph(out / f"class_{label}.graphml")
        assert stepwise.read_graph(out / f"class_{label}.json") == graphml
        assert graphml.target == int(label) and len(graphml) >= 1
        for figure in (f"class_{label}.png", f"class_{label}_outlier_frequency.png"):
            assert (out / figure).read_bytes().startswith(PNG)
    assert not list(out.glob(".*.tmp")), "a temporary file was left behind"


# -------------------------------------------------------------------------------------- help and options


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_of_every_command_is_explained() -> None:
    parser = build_parser()
    commands = _subparsers(parser)
    assert set(commands) == {"demo", "analyse", "perturb", "levels"}
    for name, command in [("stepwise", parser), *commands.items()]:
        assert command.description, name
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help and len(action.help) > 10, (name, action.option_strings)


@pytest.mark.parametrize("command", [[], ["demo"], ["analyse"], ["perturb"], ["levels"]])
def test_help_exits_zero(command: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        main([*command, "--help"])
    assert stop.value.code == 0
    assert "usage: stepwise" in capsys.readouterr().out


# -------------------------------------------------------------------------------------- end to end


def test_demo_end_to_end_in_a_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = run_command(
        "demo", "--classes", "0", "1", "--max-images", "5", "--samples", "8", "--out", str(out), "--quiet"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""  # --quiet
    check_graph_files(out, ["0", "1"])
    for name in ("clustermap.png", "patches.png"):
        assert (out / name).read_bytes().startswith(PNG)
    table = pd.read_csv(out / "perturbation.csv")
    assert set(table["target"]) == {0, 1} and {"correlation", "precision", "correlation_rank"} <= set(table)
    summary = json.loads((out / "summary.json").read_text())
    assert [g["images"] for g in summary["graphs"]] == [5, 5]
    assert summary["levels"] == ["features.1", "features.3", "features.6", "classifier.1", "softmax"]
    assert len(summary["rankings"]) == 2 and "total" in summary["timings_s"]
    text = (out / "summary.md").read_text()
    for heading in (
        "## Dependency graphs",
        "## Top neurons",
        "## Clusters",
        "## Perturbation rankings",
        "## Timings",
    ):
        assert heading in text


def test_analyse_with_weights_and_a_data_file(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "analyse"
    args = ["--data", str(files["data"]), "--classes", "1", "2", "--out", str(out), "--quiet"]
    assert main(model_args("analyse", files, *args)) == 0
    check_graph_files(out, ["1", "2"])
    assert (out / "clustermap.png").read_bytes().startswith(PNG)
    frame = pd.read_csv(out / "bag_of_nodes.csv", index_col="graph")
    assert list(frame.index) == [1, 2] and set(frame.to_numpy().ravel()) <= {0, 1}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["branching"] == 3 and summary["settings"]["rule"] == "gradient"
    assert not (out / "perturbation.csv").exists()


def test_analyse_an_image_folder_with_chosen_levels_and_rule(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "folder"
    args = ["--data", str(files["images"]), "--image-size", "16", "--channels", "1", "--min-probability", "0"]
    args += ["--levels", "features.3", "classifier.1", "softmax", "--rule", "guided", "--sign", "both"]
    assert main(model_args("analyse", files, *args, "--branching", "2", "--out", str(out), "--quiet")) == 0
    check_graph_files(out, ["0", "1"])
    graph = stepwise.read_graph(out / "class_0.graphml")
    assert graph.levels == ["features.3", "classifier.1", "softmax"]
    assert graph.attrs["rule"] == "guided" and graph.attrs["sign"] == "both" and graph.attrs["branching"] == 2
    assert graph.attrs["n_inputs"] <= 3


def test_perturb_named_inputs(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "perturb"
    args = ["--data", str(files["data"]), "--indices", "0", "5", "--samples", "6", "--top", "3"]
    assert main(model_args("perturb", files, *args, "--out", str(out), "--quiet")) == 0
    table = pd.read_csv(out / "perturbation.csv")
    assert sorted(set(table["input"])) == [0, 5]
    assert dict(table.groupby("input")["target"].first()) == {0: 0, 5: 1}  # each input's label
    agreement = pd.read_csv(out / "agreement.csv")
    assert set(agreement["level"]) == {"features.1", "features.3", "features.6", "classifier.1", "softmax"}
    assert agreement["jaccard"].between(0, 1).all()
    assert (out / "patches.png").read_bytes().startswith(PNG)
    assert "## Perturbation rankings" in (out / "summary.md").read_text()


def test_levels_lists_the_candidates_and_marks_the_defaults(capsys: pytest.CaptureFixture) -> None:
    assert main(["levels", "--model", "stepwise.models:digits_cnn", "--input-shape", "1", "16", "16"]) == 0
    lines = capsys.readouterr().out.splitlines()
    marked = [line.split()[1] for line in lines[1:] if line.startswith("*")]
    assert marked == ["features.1", "features.3", "features.6", "classifier.1", "softmax"]
    assert any(line.split()[:2] == ["features.0", "(16,"] for line in lines[1:] if not line.startswith("*"))


def test_write_file_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "note.md"
    write_file(target, "first")
    with pytest.raises(TypeError):
        write_file(target, 3)  # type: ignore[arg-type]
    assert target.read_text() == "first"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_file(tmp_path / "missing" / "note.md", b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["note.md"]


# -------------------------------------------------------------------------------------- bad arguments

# case: (options replaced in a good command line, options added, what the message says)
BAD = {
    "missing data file": ({"--data": "{tmp}/nowhere.pt"}, [], "no such file or folder"),
    "missing model file": ({"--model": "{tmp}/nowhere.pt2"}, [], "no such file"),
    "module without the factory": ({"--model": "stepwise.models:digits_cn"}, [], "Did you mean 'digits_cnn'"),
    "module that does not import": ({"--model": "no_such_package.nets:build"}, [], "cannot import module"),
    "level typo": ({}, ["--levels", "features.11", "softmax"], "Did you mean 'features.1'"),
    "data the model rejects": ({"--data": "{rgb}"}, [], "the model rejects inputs of shape (3, 16, 16)"),
    "weights of another architecture": ({"--weights": "{linear}"}, [], "does not match the architecture"),
    "a pickled model as weights": ({"--weights": "{pickled}"}, [], "weights_only=True"),
    "a TorchScript model": ({"--model": "{scripted}"}, [], "TorchScript"),
    "labels the model does not score": ({"--data": "{bad_labels}"}, [], "labels run from 10 to 12"),
    "a class the model does not score": ({}, ["--classes", "12"], "--classes [12]"),
    "an image folder without a size": ({"--data": "{images}"}, [], "--image-size"),
    "branching below 1": ({}, ["--branching", "0"], "expected a number of at least 1"),
    "a rule that does not exist": ({}, ["--rule", "gradiant"], "invalid choice: 'gradiant'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_analyse_arguments_stop_with_status_2(
    case: str, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    replaced, added, message = BAD[case]
    names = {"tmp": tmp_path, **files}
    options = {"--model": "stepwise.models:DigitsCNN", "--weights": str(files["weights"])}
    options["--data"] = str(files["data"])
    options.update({key: value.format(**names) for key, value in replaced.items()})
    out = tmp_path / "out"
    argv = ["analyse", *[part for pair in options.items() for part in pair], *added, "--out", str(out)]
    start = time.perf_counter()
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "usage: stepwise analyse" in error and message in error, error
    assert not out.exists(), "the command wrote files before it found the bad argument"
    assert time.perf_counter() - start < 20


def test_bad_argument_exit_status_of_the_installed_command(files: dict[str, Path], tmp_path: Path) -> None:
    result = run_command(*model_args("analyse", files, "--data", str(tmp_path / "missing.pt")))
    assert result.returncode == 2
    assert "stepwise analyse: error: --data" in result.stderr and "no such file" in result.stderr
    assert "Traceback" not in result.stderr


# -------------------------------------------------------------------------------------- the full demo


@pytest.mark.slow
def test_full_demo_writes_everything_within_ten_minutes(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    start = time.perf_counter()
    result = run_command("demo", "--out", str(out), "--quiet")
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert seconds < 600, f"the demo took {seconds:.0f} s"
    labels = [str(c) for c in range(10)]
    check_graph_files(out, labels)
    summary = json.loads((out / "summary.json").read_text())
    assert [g["images"] for g in summary["graphs"]] == [100] * 10
    assert len(summary["clusters"]["labels"]) == 10 and len(summary["rankings"]) == 10
    for name in ("clustermap.png", "patches.png", "perturbation.csv", "agreement.csv", "summary.md"):
        assert (out / name).stat().st_size > 0


def test_python_dash_m_runs_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stepwise", "--version"], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"stepwise {stepwise.__version__}"
