"""Smoke test: the SSA benchmark script runs end to end on a tiny configuration and writes its figures."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def benchmark():
    # Each configuration runs in a spawned process, which imports the script by name from sys.path.
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield importlib.import_module("benchmark_ssa")
    finally:
        sys.path.remove(str(EXAMPLES))


def test_tiny_configuration(benchmark, tmp_path: Path) -> None:
    out = tmp_path / "ssa.json"
    report = benchmark.main(
        [
            "--images",
            "2",
            "--size",
            "32",
            "--batch-size",
            "2",
            "--pairs",
            "1",
            "--classes",
            "10",
            "--captum-samples",
            "1",
            "--repeats",
            "2",
            "--out",
            str(out),
        ]  # fmt: skip
    )
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(report))
    assert [r["config"] for r in written["results"]] == ["vgg16", "saturated", "resnet"]
    for result in written["results"]:
        assert result["forward_s"] > 0 and result["traversal_s"] > 0
        assert len(result["forward_s_each"]) == len(result["traversal_s_each"]) == 2
        assert result["max_relative_error"] < 1e-4
        assert result["neuron_set_sizes"][result["steps"][0]["step"].split(" <- ")[1]] >= 1
    saturated = written["results"][1]
    assert saturated["neuron_set_sizes"]["classifier.6"] == 10
