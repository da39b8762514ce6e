"""``stepwise analyse``: graph files per class, the classes it explains (labelled or not), and what it says about
classes skipped or explained from few inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from tests.cli.common import PNG, check_graph_files, make_files, model_args

import stepwise
from stepwise.cli import main
from stepwise.core.selection import class_probabilities
from stepwise.models import digits_cnn


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_files(tmp_path_factory.mktemp("inputs"))


def summary_of(out: Path) -> tuple[dict, str]:
    return json.loads((out / "summary.json").read_text()), (out / "summary.md").read_text()


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The body rows of the first markdown table after ``heading``."""
    lines = text.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_analyse_with_weights_and_a_data_file(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "analyse"
    args = ["--data", str(files["data"]), "--classes", "1", "2", "--out", str(out), "--quiet"]
    assert main(model_args("analyse", files, *args)) == 0
    check_graph_files(out, ["1", "2"])
    assert (out / "clustermap.png").read_bytes().startswith(PNG)
    frame = pd.read_csv(out / "bag_of_nodes.csv", index_col="graph")
    assert list(frame.index) == [1, 2] and set(frame.to_numpy().ravel()) <= {0, 1}
    summary, _ = summary_of(out)
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


# -------------------------------------------------------------------------------------- which classes


def predicted(path: Path) -> dict[int, int]:
    """How many inputs of the unlabelled file the shipped model predicts as each class."""
    classes = class_probabilities(digits_cnn(), torch.load(path, weights_only=True)).argmax(1)
    return {int(c): int((classes == c).sum()) for c in classes.unique()}


@pytest.mark.parametrize("min_probability", ["0.99", "0"])
def test_without_labels_the_classes_present_are_the_predicted_ones(
    min_probability: str, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "threes"
    args = ["--data", str(files["threes"]), "--min-probability", min_probability, "--out", str(out), "--quiet"]
    assert main(model_args("analyse", files, *args, "--min-images", "1")) == 0
    counts = predicted(files["threes"])
    summary, text = summary_of(out)
    assert [g["class"] for g in summary["graphs"]] == sorted(counts)  # not one row per class the model scores
    assert [g["inputs"] for g in summary["graphs"]] == [counts[c] for c in sorted(counts)]
    assert [row[0] for row in table_rows(text, "## Dependency graphs")] == [str(c) for c in sorted(counts)]
    assert "unlabelled: classes as predicted" in text
    assert "no input" not in capsys.readouterr().err


def test_without_labels_nothing_predicted_is_refused_in_terms_of_predictions(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    others = sorted(set(range(10)) - set(predicted(files["threes"])))[:2]
    argv = model_args("analyse", files, "--data", str(files["threes"]), "--out", str(tmp_path / "out"))
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--classes", *map(str, others)])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "the data has no labels, so an input's class is the model's prediction" in error, error
    assert f"predicts none of classes {', '.join(map(str, others))}" in error and "labels match" not in error
    assert not (tmp_path / "out").exists()


def test_without_labels_no_confident_prediction_is_refused_with_the_highest_probability(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    noise = torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.05
    torch.save(noise, tmp_path / "noise.pt")
    best = float(class_probabilities(digits_cnn(), noise).max())
    assert best < 0.99
    argv = model_args("analyse", files, "--data", str(tmp_path / "noise.pt"), "--out", str(tmp_path / "out"))
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "no input is predicted with probability >= 0.99 (the data has no labels" in error, error
    assert f"the highest probability of a prediction is {best:.4g}" in error


# -------------------------------------------------------------------------------------- skipped and few


def test_a_class_asked_for_without_inputs_is_skipped_and_named(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "skip"
    args = ["--data", str(files["data"]), "--classes", "0", "1", "5", "--min-images", "4", "--out", str(out)]
    assert main(model_args("analyse", files, *args, "--quiet")) == 0
    error = capsys.readouterr().err  # --quiet silences notes, not warnings
    assert "stepwise analyse: warning: class 5 skipped: the data holds no input with this label" in error, error
    assert "class 0" not in error and "class 1" not in error
    summary, text = summary_of(out)
    assert summary["skipped_classes"] == {"5": "the data holds no input with this label"}
    assert "## Classes skipped\n\n- class 5: the data holds no input with this label" in text
    rows = {row[0]: row for row in table_rows(text, "## Dependency graphs")}
    assert set(rows) == {"0", "1", "5"} and rows["5"][5] == "skipped: no input qualifies"
    assert not (out / "class_5.json").exists()


def test_a_class_with_fewer_inputs_than_min_images_is_warned_about_and_marked(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "few"
    args = ["--data", str(files["data"]), "--classes", "0", "1", "--out", str(out), "--quiet"]
    assert main(model_args("analyse", files, *args)) == 0  # 4 images of each class, --min-images 10
    error = capsys.readouterr().err
    for c in (0, 1):
        assert f"warning: class {c}: only 4 inputs qualify, fewer than --min-images 10" in error, error
    summary, text = summary_of(out)
    assert [(g["images"], g["few_inputs"]) for g in summary["graphs"]] == [(4, True), (4, True)]
    assert [row[1] for row in table_rows(text, "## Dependency graphs")] == ["4 (fewer than 10)"] * 2
    assert "## Classes with few inputs" in text
    check_graph_files(out, ["0", "1"])  # flagged, not dropped


def test_min_images_counts_up_to_max_images(files: dict[str, Path], tmp_path: Path, capsys) -> None:
    args = ["--data", str(files["data"]), "--classes", "0", "--max-images", "3", "--out", str(tmp_path / "o")]
    assert main(model_args("analyse", files, *args, "--quiet")) == 0  # 3 asked for, 3 got: nothing to flag
    assert capsys.readouterr().err == ""
    summary, _ = summary_of(tmp_path / "o")
    assert summary["graphs"][0]["images"] == 3 and not summary["graphs"][0]["few_inputs"]


@pytest.mark.slow
def test_analyse_on_two_local_workers_writes_the_serial_files(files: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="--workers needs the dask extra: pip install stepwise-interpret[dask]")
    args = ["--data", str(files["data"]), "--classes", "0", "1", "2", "--quiet"]
    assert main(model_args("analyse", files, *args, "--out", str(tmp_path / "serial"))) == 0
    assert main(model_args("analyse", files, *args, "--workers", "2", "--out", str(tmp_path / "workers"))) == 0
    for name in ("class_0.json", "class_1.graphml", "class_2.json", "bag_of_nodes.csv"):
        assert (tmp_path / "workers" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes(), name
    serial, workers = (summary_of(tmp_path / folder)[0] for folder in ("serial", "workers"))
    assert {**workers, "command": None} == {**serial, "command": None}  # the command names its own --out
