"""Smoke test: the SSA benchmark script runs end to end on a tiny configuration and writes its figures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "benchmark_ssa.py"


@pytest.fixture(scope="module")
def benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_ssa", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_configuration(benchmark, tmp_path: Path) -> None:
    out = tmp_path / "ssa.json"
    report = benchmark.main(
        ["--images", "3", "--size", "32", "--batch-size", "2", "--pairs", "1", "--classes", "10", "--out", str(out)]
    )
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(report))
    assert [r["config"] for r in written["results"]] == ["vgg16", "saturated", "resnet"]
    for result in written["results"]:
        assert result["forward_s"] > 0 and result["traversal_s"] > 0
        assert result["max_relative_error"] < 1e-4
        assert result["neuron_set_sizes"][result["steps"][0]["step"].split(" <- ")[1]] >= 1
    saturated = written["results"][1]
    assert saturated["neuron_set_sizes"]["classifier.6"] == 10
