"""Decision paths and the activation sorter on a tiny BERT (tests/helpers.py): token-averaged values that padding
does not change."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor

import stepwise
from stepwise.core.inputs import KeywordInputs
from stepwise.core.levels import resolve_levels
from stepwise.paths.features import LevelFeatures, capture_features
from tests.helpers import BERT_LEVELS, alone, sentences

pytest.importorskip("transformers", reason="the transformer tests need the transformers package")

MLP = BERT_LEVELS[1:3]


def wider(batch: dict[str, Tensor], extra: int = 4) -> dict[str, Tensor]:
    """The batch padded by ``extra`` more tokens, which hold another id than the padding."""
    padded = {key: torch.cat([value, value.new_zeros(len(value), extra)], dim=1) for key, value in batch.items()}
    padded["input_ids"][:, -extra:] = 5
    return padded


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_decision_path_features_are_means_over_the_real_tokens(model, batch) -> None:
    infos = resolve_levels(model, batch, [*MLP, "softmax"])
    specs = [LevelFeatures(info, "mean") for info in infos[:-1]]
    features, predicted = capture_features(model, KeywordInputs(batch), specs, infos[-1], batch_size=4)
    for i in range(len(batch["input_ids"])):
        own, own_predicted = capture_features(model, KeywordInputs(alone(batch, i)), specs, infos[-1], batch_size=1)
        for name in MLP:
            assert relative(features[name][i], own[name][0]) <= 1e-6
        assert predicted[i] == own_predicted[0]


def test_decision_paths_do_not_depend_on_padding(model) -> None:
    batch = sentences(24)
    paths = stepwise.DecisionPaths(model, MLP, n_clusters=3, features="mean", seed=0).fit(batch)
    assert paths.levels_ == MLP and len(paths.assignments_) == 24
    assert paths.predict(wider(batch)).equals(paths.assignments_)
    other = stepwise.DecisionPaths(model, MLP, n_clusters=3, features="mean", seed=0).fit(wider(batch, 9))
    assert other.assignments_.equals(paths.assignments_)


def test_flattened_token_levels_are_refused(model, batch) -> None:
    with pytest.raises(ValueError, match="would include the padding tokens"):
        stepwise.DecisionPaths(model, MLP, n_clusters=2, features="flatten").fit(batch)


@pytest.mark.parametrize("reduce", ["mean", "max"])
def test_sorter_values_do_not_depend_on_padding(model, reduce) -> None:
    batch, labels = sentences(12), torch.arange(12) % 3
    sorter = stepwise.ActivationSorter(model, MLP, per_class=4, reduce=reduce, seed=0).fit(batch, labels)
    padded = stepwise.ActivationSorter(model, MLP, per_class=4, reduce=reduce, seed=0).fit(wider(batch), labels)
    for name in MLP:
        values = sorter.values_[name]
        assert values.shape == (12, 48)
        assert relative(padded.values_[name], values) <= 1e-6
        for i in (0, 2, 4):  # seven, three and two real tokens
            own = stepwise.ActivationSorter(model, [name], per_class=1, reduce=reduce).fit(alone(batch, i), [0])
            assert relative(own.values_[name][0], values[i]) <= 1e-6


def test_sorter_layer_summary_of_one_mlp_layer(model) -> None:
    batch, labels = sentences(12), torch.arange(12) % 3
    sorter = stepwise.ActivationSorter(model, [MLP[1]], per_class=4, seed=0).fit(batch, labels)
    summary = sorter.layer_summary(MLP[1])
    assert summary.n_inputs == 12 and summary.totals.shape[0] == 48


def test_sorter_refuses_every_token_position(model, batch) -> None:
    with pytest.raises(ValueError, match="reduce=None keeps every token position"):
        stepwise.ActivationSorter(model, MLP, reduce=None).fit(batch, torch.zeros(6, dtype=torch.int64))
