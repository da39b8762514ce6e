"""``stepwise perturb``: rankings of named inputs or of one input per class, and the classes it skips."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from tests.cli.common import PNG, SHIPPED_LEVELS, make_files, model_args

from stepwise.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_files(tmp_path_factory.mktemp("inputs"))


def test_perturb_named_inputs(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "perturb"
    args = ["--data", str(files["data"]), "--indices", "0", "5", "--samples", "6", "--top", "3"]
    assert main(model_args("perturb", files, *args, "--out", str(out), "--quiet")) == 0
    table = pd.read_csv(out / "perturbation.csv")
    assert sorted(set(table["input"])) == [0, 5]
    assert dict(table.groupby("input")["target"].first()) == {0: 0, 5: 1}  # each input's label
    agreement = pd.read_csv(out / "agreement.csv")
    assert set(agreement["level"]) == set(SHIPPED_LEVELS)
    assert agreement["jaccard"].between(0, 1).all()
    assert (out / "patches.png").read_bytes().startswith(PNG)
    assert "## Perturbation rankings" in (out / "summary.md").read_text()


def test_perturb_named_unlabelled_inputs_follow_their_prediction(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "perturb"
    args = ["--data", str(files["unlabelled"]), "--indices", "1", "9", "--samples", "4", "--top", "2"]
    assert main(model_args("perturb", files, *args, "--out", str(out), "--quiet")) == 0
    table = pd.read_csv(out / "perturbation.csv")
    assert dict(table.groupby("input")["target"].first()) == {1: 0, 9: 2}  # as labelled in "data"


def test_perturb_names_the_classes_it_skips(files: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "skip"
    args = ["--data", str(files["data"]), "--classes", "0", "7", "--samples", "4", "--out", str(out), "--quiet"]
    assert main(model_args("perturb", files, *args)) == 0
    error = capsys.readouterr().err
    assert "stepwise perturb: warning: class 7 skipped: the data holds no input with this label" in error, error
    summary = json.loads((out / "summary.json").read_text())
    assert [r["target"] for r in summary["rankings"]] == [0]
    assert summary["skipped_classes"] == {"7": "the data holds no input with this label"}
    assert "## Classes skipped\n\n- class 7:" in (out / "summary.md").read_text()


def test_perturb_scores_are_written_to_six_significant_digits(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "digits"
    args = ["--data", str(files["data"]), "--indices", "2", "--samples", "5", "--out", str(out), "--quiet"]
    assert main(model_args("perturb", files, *args)) == 0
    header, *rows = (out / "perturbation.csv").read_text().splitlines()
    columns = header.split(",")
    scores = [c for c in columns if c in ("correlation", "precision", "activation_sum", "weight_variance")]
    longest = 0
    for row in rows:
        cells = dict(zip(columns, row.split(",")))
        for name in scores:
            mantissa = cells[name].split("e")[0].replace("-", "").replace(".", "").lstrip("0")
            longest = max(longest, len(mantissa))
        assert cells["correlation_rank"].isdigit()  # ranks are exact
    assert longest == 6
