"""The shipped digits model: its weights load safely, it reaches its recorded accuracy, it is deterministic."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import torch

import stepwise
from stepwise.models import IMAGE_SIZE, DigitsCNN, digits_cnn, digits_data

RECORD = Path(__file__).resolve().parents[2] / "results" / "digits_model.json"


@pytest.fixture(scope="module")
def data():
    return digits_data()


@pytest.fixture(scope="module")
def model():
    return digits_cnn()


def test_weights_ship_inside_the_package_and_load_with_weights_only() -> None:
    weights = resources.files("stepwise.models").joinpath("digits_cnn.pt")
    assert weights.is_file()
    with resources.as_file(weights) as path:
        assert 100_000 < path.stat().st_size < 1_000_000  # a few hundred KB
        state = torch.load(path, map_location="cpu", weights_only=True)
    assert isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    assert set(state) == set(DigitsCNN().state_dict())


def test_model_is_eval_mode_float32_cpu(model) -> None:
    assert isinstance(model, DigitsCNN)
    assert not model.training and not any(m.training for m in model.modules())
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert {p.device.type for p in model.parameters()} == {"cpu"}


def test_data_shapes_values_and_split(data) -> None:
    images, labels, train, test = data
    assert images.shape == (1797, 1, IMAGE_SIZE, IMAGE_SIZE) and images.dtype == torch.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels.shape == (1797,) and labels.dtype == torch.int64
    assert set(labels.tolist()) == set(range(10))
    assert len(set(train.tolist()) & set(test.tolist())) == 0
    assert sorted(train.tolist() + test.tolist()) == list(range(1797))
    for c in range(10):  # stratified: a quarter of each class is held out
        own = int((labels == c).sum())
        assert int((labels[test] == c).sum()) == own // 4


def test_reaches_the_recorded_accuracy_on_the_held_out_split(model, data) -> None:
    record = json.loads(RECORD.read_text())
    with torch.no_grad():
        accuracy = (model(data.images[data.test]).argmax(1) == data.labels[data.test]).double().mean().item()
    assert record["test_images"] == len(data.test)
    # the same predictions as when recorded; one image of slack for another CPU's float32 rounding
    assert accuracy >= record["test_accuracy"] - 1 / len(data.test)
    assert accuracy >= 0.97


def test_deterministic(model, data) -> None:
    again = digits_data()
    for first, second in zip(data, again):
        assert torch.equal(first, second)
    other = digits_cnn()
    for (name, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert torch.equal(a, b), name
    with torch.no_grad():
        assert torch.equal(model(data.images[:64]), other(data.images[:64]))
        assert torch.equal(model(data.images[:64]), model(data.images[:64]))


def test_default_levels_are_the_relus_and_softmax(model, data) -> None:
    levels = stepwise.default_levels(model, data.images[:2])
    assert levels == ["features.1", "features.3", "features.6", "classifier.1", "softmax"]
    relus = [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    assert len(relus) == len({id(m) for m in relus}) == 4  # distinct modules, none shared


def test_the_readme_quick_start_runs_on_the_shipped_model(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Quick start") :]
    code = section[section.index("```python\n") + len("```python\n") : section.index("```\n", 10)]
    assert len(code.strip().splitlines()) < 15
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("DependencyGraph(target=7, levels=5, nodes=12, edges=14)")
    assert stepwise.read_graph(tmp_path / "seven.graphml").target == 7
