"""The perturb benchmark script runs end to end on a tiny configuration and writes its JSON file."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "benchmark_perturb.py"


@pytest.fixture
def benchmark(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("benchmark_perturb", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "benchmark_perturb", module)  # the memory phases run in spawned processes
    spec.loader.exec_module(module)
    return module


def test_tiny_configuration_writes_the_figures(benchmark, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    output = tmp_path / "benchmarks" / "perturb_vgg16.json"
    result = benchmark.main(["--size", "32", "--samples", "4", "--classes", "10", "--repeats", "1",
                             "--output", str(output)])  # fmt: skip
    written = json.loads(output.read_text())
    assert written["ratio"] == pytest.approx(result["ratio"])
    assert (written["size"], written["samples"], written["classes"], written["repeats"]) == (32, 4, 10, 1)
    assert written["levels"] == [f"features.{i}" for i in (1, 3, 6, 8, 11, 13, 15, 18, 20, 22, 25, 27, 29)] + [
        "classifier.1",
        "classifier.4",
        "softmax",
    ]
    assert written["metrics"] == ["correlation", "precision", "activation_sum", "activation_variance",
                                  "weight_sum", "weight_variance"]  # fmt: skip
    assert written["neurons"] == 2 * 64 + 2 * 128 + 3 * 256 + 6 * 512 + 2 * 4096 + 10
    assert len(written["forward_s"]) == len(written["perturb_s"]) == 1
    assert written["ratio"] == pytest.approx(written["perturb_median_s"] / written["forward_median_s"])
    assert written["meets_target"] == (written["ratio"] <= written["target_ratio"] == 1.3)
    assert written["perturb_peak_mb"] > written["setup_mb"] > 0 and written["forward_peak_mb"] > 0
    assert list(written["table_head"][0])[:2] == ["level", "neuron"]
    printed = capsys.readouterr().out
    assert "ratio (b)/(a)" in printed and str(output) in printed
    assert [p.name for p in output.parent.iterdir()] == [output.name]  # written atomically, nothing else left
