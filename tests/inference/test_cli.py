"""``stepwise inference`` end to end on a few digits: the files it writes, and graphs equal to the Python API's."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

import stepwise
from stepwise.cli import main
from stepwise.models import digits_cnn, digits_data

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.slow
def test_command_writes_graphs_tables_and_summary(tmp_path) -> None:
    data = digits_data()
    x, y = data.images[:120], data.labels[:120]
    torch.save((x, y), tmp_path / "data.pt")
    out = tmp_path / "out"
    argv = ["inference", "--model", "stepwise.models:digits_cnn", "--data", str(tmp_path / "data.pt"), "--words", "4",
            "--max-iter", "3", "--z", "2", "--classes", "0", "1", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    for name in ("class_0.graphml", "class_0.json", "class_0.png", "class_1.graphml", "summary.md", "summary.json",
                 "representatives.csv", "cooccurrence_features.3__features.1.csv", "timings.json"):  # fmt: skip
        assert (out / name).is_file(), name
    ig = stepwise.InferenceGraphs(digits_cnn(), n_words=4, max_iter=3, seed=0).fit(x, y)
    assert stepwise.read_graph(out / "class_1.graphml") == ig.class_graph(x, 1, z=2).subgraph(levels=ig.levels_)
    with open(out / "cooccurrence_features.3__features.1.csv") as stream:
        rows = list(csv.reader(stream))
    table = np.array([[int(v) for v in row[1:]] for row in rows[1:]])
    np.testing.assert_array_equal(table, ig.cooccurrence("features.3", "features.1"))
    assert "## Class graphs" in (out / "summary.md").read_text()
