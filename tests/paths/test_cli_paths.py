"""``stepwise paths`` end to end on the shipped digits CNN: every file written, and their contents equal to what
the Python API computes with the same options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from threadpoolctl import threadpool_limits

from stepwise.cli.main import main
from stepwise.graphs.readwrite import read_graph
from stepwise.models import digits_cnn, digits_data
from stepwise.paths.decision_paths import DecisionPaths

LEVELS = ["features.6", "classifier.1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.Tensor, torch.Tensor]:
    folder = tmp_path_factory.mktemp("paths")
    data = digits_data()
    x, y = data.images[data.train[:200]], data.labels[data.train[:200]]
    torch.save((x, y), folder / "data.pt")
    argv = [
        "paths",
        "--model",
        "stepwise.models:digits_cnn",
        "--data",
        str(folder / "data.pt"),
        "--levels",
        *LEVELS,
        "--clusters",
        "6",
        "5",
        "--features",
        "mean",
        "--n-init",
        "2",
        "--seed",
        "3",
        "--out",
        str(folder / "out"),
        "--quiet",
        "--max-fraction",
        "0.01",
    ]
    with threadpool_limits(1):
        assert main(argv) == 0
    return folder / "out", x, y


def test_every_file_is_written(run) -> None:
    out, _, _ = run
    names = {
        "assignments.csv",
        "flows.csv",
        "paths.csv",
        "rare.csv",
        "paths.graphml",
        "paths.json",
        "sankey.html",
        "sankey.png",
        "summary.md",
    }
    assert {p.name for p in out.iterdir()} == names
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_files_hold_what_the_api_computes(run) -> None:
    out, x, y = run
    with threadpool_limits(1):
        dp = DecisionPaths(
            digits_cnn(), LEVELS, n_clusters={"features.6": 6, "classifier.1": 5}, n_init=2, seed=3, features="mean"
        ).fit(x, y)
    table = pd.read_csv(out / "assignments.csv")
    pd.testing.assert_frame_equal(table[dp.columns_], dp.assignments_)
    assert np.array_equal(table["label"], y.numpy()) and np.array_equal(table["predicted"], dp.predictions_)
    flows = pd.read_csv(out / "flows.csv")
    expected = dp.flows("classifier.1", "class")
    got = flows[(flows["lower"] == "classifier.1") & (flows["upper"] == "class")].drop(columns=["lower", "upper"])
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected)
    paths = pd.read_csv(out / "paths.csv", dtype={"class": str, "path": str})
    every = paths[paths["class"] == "all"]
    assert list(every["path"]) == ["-".join(map(str, p)) for p in dp.paths()["path"]]
    assert np.allclose(every["coverage"], dp.paths()["coverage"], rtol=1e-12, atol=0)
    rare = pd.read_csv(out / "rare.csv")
    assert list(rare["input"]) == list(dp.rare(0.01)["input"])
    assert read_graph(out / "paths.graphml") == dp.graph() == read_graph(out / "paths.json")


def test_summary_lists_clusters_paths_and_rare_inputs(run) -> None:
    out, _, _ = run
    text = (out / "summary.md").read_text()
    for heading in ("## Clusters per level", "## Top paths per class", "## Rare inputs", "## Files"):
        assert heading in text
    assert "| features.6 | 6 | 64 | 1 |" in text
    assert "sankey.html" in text


def test_paths_is_a_command_of_stepwise(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "paths" in capsys.readouterr().out


def test_demo_paths_writes_the_section_files(tmp_path: Path) -> None:
    from stepwise.cli.loading import Data
    from stepwise.cli.paths import DEMO_CLUSTERS, demo_paths
    from stepwise.cli.progress import Progress

    data = digits_data()
    index = data.train[:150]
    inputs = Data(data.images[index].double(), data.labels[index], source="digits")
    with threadpool_limits(1):
        dp = demo_paths(digits_cnn().double(), inputs, tmp_path / "paths", Progress(True), command="stepwise demo")
    assert dp.levels_ == list(DEMO_CLUSTERS) and dp.n_clusters_ == DEMO_CLUSTERS
    assert (tmp_path / "paths" / "sankey.png").is_file() and (tmp_path / "paths" / "summary.md").is_file()
    assert "`stepwise demo`" in (tmp_path / "paths" / "summary.md").read_text()
