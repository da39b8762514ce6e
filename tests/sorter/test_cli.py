"""``stepwise sort`` end to end on a few digits: the files it writes hold what the Python API computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tests.helpers import digits_subset

from stepwise import ActivationSorter
from stepwise.cli.main import main
from stepwise.models import digits_cnn


def test_sort_writes_values_kinds_figures_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    images, labels = digits_subset(range(10), 6)
    data = tmp_path / "digits.pt"
    torch.save((images, labels), data)
    out = tmp_path / "sort"
    argv = ["sort", "--model", "stepwise.models:digits_cnn", "--data", str(data), "--levels", "softmax"]
    assert main([*argv, "--per-class", "4", "--bins", "12", "--out", str(out), "--quiet"]) == 0
    expected = ActivationSorter(digits_cnn(), ["softmax"], per_class=4).fit(images, labels)
    values = np.load(out / "values_softmax.npy")
    np.testing.assert_allclose(values, expected.values_["softmax"], rtol=0, atol=1e-6)
    table = pd.read_csv(out / "inputs.csv")
    assert table["input"].tolist() == expected.indices_.tolist()
    assert table["label"].tolist() == expected.labels_.tolist()
    assert table["predicted"].tolist() == expected.predicted_.tolist()
    types = pd.read_csv(out / "types_softmax.csv")
    assert types["kind"].tolist() == expected.neuron_types("softmax")["kind"].tolist()
    assert (out / "summary_softmax_p1.png").stat().st_size > 10_000
    views = sorted(p.name for p in out.glob("view_softmax_*.png"))
    assert views and all(p.split("_")[2] in set(types["kind"]) for p in views)
    summary = (out / "summary.md").read_text()
    assert "| softmax | 10 |" in summary and "40 inputs" in summary
    assert all(f"`{p}`" in summary for p in views)
    assert capsys.readouterr().out == ""


def test_demo_section_writes_the_sort_files_and_a_kinds_table(tmp_path: Path) -> None:
    from stepwise.cli.loading import Data
    from stepwise.cli.progress import Progress
    from stepwise.cli.sort import demo_section

    images, labels = digits_subset(range(10), 3)
    lines = demo_section(
        digits_cnn(), Data(images, labels), tmp_path / "sort", Progress(True), argv=["demo"], levels=["softmax"],
        per_class=2, quiet=True,
    )  # fmt: skip
    assert lines[0] == "## Neuron activation sorter" and "| softmax | 0 | 10 |" in "\n".join(lines)
    assert (tmp_path / "sort" / "summary.md").exists() and (tmp_path / "sort" / "values_softmax.npy").exists()
