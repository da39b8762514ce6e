"""Summaries and result files hold results only, rounded to what they mean: the last bits of a rerun elsewhere do
not change them, and the timings of the run are kept apart."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from tests.cli.common import make_files

import stepwise
from stepwise.cli import main
from stepwise.cli.summary import round_to, md_table
from stepwise.models import digits_cnn

RESULTS = ("summary.md", "summary.json", "class_0.json", "class_0.graphml", "class_1.json", "class_1.graphml")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_files(tmp_path_factory.mktemp("inputs"))


def test_round_to_keeps_significant_digits() -> None:
    assert round_to(0.004397881644511017, 6) == 0.00439788
    assert round_to(-123456.789, 4) == -123500.0
    assert round_to(0.0, 6) == 0.0 and math.isnan(round_to(float("nan"), 6))
    assert round_to(1 / 3, 6) == float("0.333333")
    assert md_table(["a", "b"], [[1, 2]]) == ["| a | b |", "| --- | --- |", "| 1 | 2 |", ""]


def test_last_bit_noise_changes_no_result_file(files: dict[str, Path], tmp_path: Path) -> None:
    """Inputs that differ in their last bits, as the intermediate results of a rerun on another machine do, give
    raw relevances that differ, and result files that do not."""
    images, labels = torch.load(files["data"], weights_only=True)
    exact = images.double()
    noisy = exact * (1 + 2**-40)  # about 1e-12 relative
    assert not torch.equal(exact, noisy)
    ssa = stepwise.StepwiseSensitivity(digits_cnn().double().eval())
    raw = [ssa.dependency_graph(x[labels == 1], target=1) for x in (exact, noisy)]
    relevance = [[data["relevance"] for *_, data in sorted(g.edges(data=True))] for g in raw]
    assert relevance[0] != relevance[1]  # the noise reaches the relevances of the graph
    torch.testing.assert_close(torch.tensor(relevance[0]), torch.tensor(relevance[1]), rtol=1e-9, atol=0)

    written = {}
    data, out = tmp_path / "data.pt", tmp_path / "out"  # one command line, as a rerun of the same command
    argv = ["analyse", "--model", "stepwise.models:digits_cnn", "--data", str(data), "--classes", "0", "1"]
    for name, inputs in (("exact", exact), ("noisy", noisy)):
        torch.save((inputs, labels), data)
        assert main([*argv, "--min-images", "1", "--out", str(out), "--quiet"]) == 0
        written[name] = {file: (out / file).read_bytes() for file in RESULTS}
    for file in RESULTS:
        assert written["exact"][file] == written["noisy"][file], file


def test_graph_files_hold_rounded_relevances(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["analyse", "--model", "stepwise.models:digits_cnn", "--data", str(files["data"]), "--classes", "2"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    graph = json.loads((out / "class_2.json").read_text())
    edges = graph.get("edges", graph.get("links"))
    relevances = [edge["relevance"] for edge in edges]
    assert relevances and all(value == float(f"{value:.6g}") for value in relevances)
    summary = json.loads((out / "summary.json").read_text())
    for value in summary["graphs"][0]["top_neurons"]["relevance"].values():
        assert value == float(f"{value:.6g}")
