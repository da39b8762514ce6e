"""The shipped digits GRU: weights inside the package, the recorded accuracy, the sequences it reads, and a
training script whose seed fixes the result."""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path

import pytest
import torch
from sklearn.datasets import load_digits

from stepwise.models import DigitsGRU, digits_data, digits_gru, digits_sequences

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "results" / "digits_gru_model.json"


def test_weights_ship_inside_the_package_and_load_with_weights_only() -> None:
    weights = resources.files("stepwise.models").joinpath("digits_gru.pt")
    with resources.as_file(weights) as path:
        assert 10_000 < path.stat().st_size < 300_000
        state = torch.load(path, map_location="cpu", weights_only=True)
    assert set(state) == set(DigitsGRU().state_dict())
    model = digits_gru()
    assert not any(m.training for m in model.modules())
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_sequences_are_the_digits_rows_with_the_cnn_split() -> None:
    data, cnn = digits_sequences(), digits_data()
    raw = load_digits()
    assert data.images.shape == (1797, 8, 8) and data.images.dtype == torch.float32
    assert torch.equal(data.images, torch.as_tensor(raw.images, dtype=torch.float32) / 16)
    assert torch.equal(data.labels, cnn.labels) and torch.equal(data.train, cnn.train)
    assert torch.equal(data.test, cnn.test)


def test_reaches_the_recorded_accuracy() -> None:
    record = json.loads(RECORD.read_text())
    data, model = digits_sequences(), digits_gru()
    with torch.no_grad():
        accuracy = (model(data.images[data.test]).argmax(1) == data.labels[data.test]).double().mean().item()
    assert record["test_sequences"] == len(data.test)
    assert accuracy >= record["test_accuracy"] - 1 / len(data.test)  # one sequence of slack for another CPU
    assert accuracy >= 0.95


def test_hidden_states_are_a_level_of_shape_n_t_h() -> None:
    from stepwise.core.levels import list_levels, resolve_levels

    model = digits_gru()
    x = digits_sequences().images[:2]
    assert "states" in list_levels(model, x)
    info = resolve_levels(model, x, ["states", "softmax"])[0]
    assert info.shape == (8, 50)


@pytest.mark.slow
def test_training_is_fixed_by_its_seed() -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from train_digits_gru import train
    finally:
        sys.path.remove(str(ROOT / "examples"))
    first, _, _, _ = train(5, epochs=1, log=False)
    second, _, _, _ = train(5, epochs=1, log=False)
    other, _, _, _ = train(6, epochs=1, log=False)
    a, b, c = first.state_dict(), second.state_dict(), other.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
