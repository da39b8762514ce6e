"""``stepwise demo``: the shipped model end to end, files that parse, and a rerun that rewrites them unchanged."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
from tests.cli.common import PNG, SHIPPED_LEVELS, check_graph_files, run_command

RESULTS = (
    "summary.md",
    "summary.json",
    "perturbation.csv",
    "agreement.csv",
    "bag_of_nodes.csv",
    "class_0.json",
    "class_0.graphml",
    "class_1.json",
    "class_1.graphml",
    "report.html",
    "sort/thumbnails.npz",
    "inference/thumbnails.npz",
)


def test_demo_end_to_end_in_a_subprocess_and_a_rerun_that_changes_no_result(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    command = ("demo", "--classes", "0", "1", "--max-images", "5", "--samples", "8", "--out", str(out), "--quiet")
    result = run_command(*command)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""  # --quiet, and nothing to warn about
    check_graph_files(out, ["0", "1"])
    for name in ("clustermap.png", "patches.png"):
        assert (out / name).read_bytes().startswith(PNG)
    table = pd.read_csv(out / "perturbation.csv")
    assert set(table["target"]) == {0, 1} and {"correlation", "precision", "correlation_rank"} <= set(table)
    summary = json.loads((out / "summary.json").read_text())
    assert [g["images"] for g in summary["graphs"]] == [5, 5]
    assert [g["few_inputs"] for g in summary["graphs"]] == [False, False]  # 5 asked for, 5 got
    assert summary["levels"] == SHIPPED_LEVELS
    assert len(summary["rankings"]) == 2 and summary["skipped_classes"] == {}
    text = (out / "summary.md").read_text()
    for heading in ("## Dependency graphs", "## Top neurons", "## Clusters", "## Perturbation rankings"):
        assert heading in text
    # the timings of the run are in their own file, not in the results
    timings = json.loads((out / "timings.json").read_text())
    assert timings["timings_s"]["total"] > 0 and "dependency graphs" in timings["timings_s"]
    assert "timings" not in json.dumps(summary) and "seconds" not in text and "## Timings" not in text

    written = {name: (out / name).read_bytes() for name in RESULTS}
    assert run_command(*command).returncode == 0  # the same command again, at another time
    for name in RESULTS:
        assert (out / name).read_bytes() == written[name], f"{name} changed on a rerun"
    assert json.loads((out / "timings.json").read_text()) != timings  # what does change is kept apart


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
