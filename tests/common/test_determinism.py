"""Determinism (docs/design.md, Reproducibility): the same analysis writes byte-identical JSON graphs, in one process
and in another one, and the same seed gives identical perturbation tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas.testing
import pytest
import torch
from tests.helpers import build_case

import perturb
import stepwise
from stepwise.graphs.readwrite import write_json

ROOT = Path(__file__).resolve().parents[2]  # on sys.path of a script, so that tests.helpers imports

ANALYSES = {
    # name: (case, settings); every one of these graphs has edges over several levels
    "vgg, closed form": ("vgg", {"sign": "both"}),
    "vgg, autograd": ("vgg", {"sign": "both", "closed_form": False, "batch_size": 5}),
    "resnet, residual blocks": ("resnet", {"sign": "both"}),
    "sequential, grad_x_activation": ("sequential", {"rule": "grad_x_activation"}),  # stops above the input
}


def analysed(name: str) -> tuple[torch.nn.Module, torch.Tensor, list[str], dict]:
    case, settings = ANALYSES[name]
    torch.manual_seed(0)
    model, _, inputs, levels = build_case(case, torch.float64)
    inputs = torch.randn((12,) + inputs.shape[1:], dtype=torch.float64)
    return model, inputs, levels, settings


@pytest.mark.filterwarnings("ignore:Step input <- 1:UserWarning")
@pytest.mark.parametrize("name", ANALYSES)
def test_two_runs_write_byte_identical_json_graphs(name: str, tmp_path: Path) -> None:
    model, inputs, levels, settings = analysed(name)
    texts = []
    for run in range(2):  # a new analysis object each time: nothing cached is shared
        graph = stepwise.StepwiseSensitivity(model, levels, **settings).dependency_graph(inputs, target=0)
        write_json(graph, tmp_path / f"{run}.json")
        texts.append((tmp_path / f"{run}.json").read_bytes())
    assert len(graph.edges) >= 5 and len({data["level"] for _, data in graph.nodes(data=True)}) >= 3
    assert texts[0] == texts[1]


@pytest.mark.filterwarnings("ignore:Step input <- 1:UserWarning")
@pytest.mark.parametrize("suffix", [".graphml", ".gexf", ".dot"])
def test_other_formats_are_byte_identical_and_undated(
    suffix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, inputs, levels, settings = analysed("vgg, closed form")
    graph = stepwise.StepwiseSensitivity(model, levels, **settings).dependency_graph(inputs, target=0)
    stepwise.write_graph(graph, tmp_path / f"today{suffix}")
    monkeypatch.setattr("time.strftime", lambda *args: "2001-02-03")  # networkx dates GEXF files with it
    stepwise.write_graph(graph, tmp_path / f"another day{suffix}")
    assert (tmp_path / f"today{suffix}").read_bytes() == (tmp_path / f"another day{suffix}").read_bytes()
    assert b"2001-02-03" not in (tmp_path / f"another day{suffix}").read_bytes()


RUN = """\
import sys

import torch

sys.path.insert(0, {root!r})
from tests.helpers import build_case

import stepwise
from stepwise.graphs.readwrite import write_json

model, _, _, levels = build_case("vgg", torch.float64)
model.load_state_dict(torch.load({weights!r}, weights_only=True))
inputs = torch.load({inputs!r}, weights_only=True)
write_json(stepwise.StepwiseSensitivity(model, levels, sign="both").dependency_graph(inputs, target=0), {out!r})
"""


def test_another_process_writes_the_byte_identical_json_graph(tmp_path: Path) -> None:
    """Another process, with another string hash seed, writes the same bytes."""
    model, inputs, levels, settings = analysed("vgg, closed form")
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    torch.save(inputs, tmp_path / "inputs.pt")
    script = tmp_path / "run.py"
    script.write_text(
        RUN.format(
            root=str(ROOT),
            weights=str(tmp_path / "weights.pt"),
            inputs=str(tmp_path / "inputs.pt"),
            out=str(tmp_path / "other.json"),
        )  # fmt: skip
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    graph = stepwise.StepwiseSensitivity(model, levels, **settings).dependency_graph(inputs, target=0)
    write_json(graph, tmp_path / "this.json")
    assert (tmp_path / "this.json").read_bytes() == (tmp_path / "other.json").read_bytes()


@pytest.mark.parametrize("seed", [3, "generator"])
def test_the_same_seed_gives_identical_perturbation_tables(seed: object) -> None:
    model, _, inputs, levels = build_case("vgg", torch.float64)
    image = inputs[0]
    state = torch.get_rng_state()

    def table(value: int) -> object:
        chosen = torch.Generator().manual_seed(value) if seed == "generator" else value
        return perturb.rank_neurons(model, image, levels, target=2, n_samples=20, seed=chosen).table()

    first, second = table(3), table(3)
    pandas.testing.assert_frame_equal(first, second, check_exact=True)
    assert first.shape[0] == sum(len(first[first.level == name]) for name in levels) > 0
    with pytest.raises(AssertionError):  # the seed is used: another one gives other scores
        pandas.testing.assert_frame_equal(first, table(4), check_exact=True)
    assert torch.equal(torch.get_rng_state(), state)  # the global random state is left alone
