"""Perturbation rankings of a sentence on a tiny BERT (tests/helpers.py): the noise multiplies the token embeddings."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

import perturb
from tests.helpers import BERT_LEVELS, alone

pytest.importorskip("transformers", reason="the transformer tests need the transformers package")

EMBEDDINGS = "transformer.embeddings"
MLP = BERT_LEVELS[1:3]


def manual_outputs(model: nn.Module, sentence: dict[str, Tensor], samples: Tensor, target: int) -> Tensor:
    """The target's probability with the embeddings' output replaced by each sample, one forward pass each."""
    module = model.get_submodule(EMBEDDINGS)
    found = []
    for sample in samples:
        handle = module.register_forward_hook(lambda m, args, output, value=sample: value[None])
        try:
            with torch.no_grad():
                found.append(torch.softmax(model(**sentence), dim=1)[0, target])
        finally:
            handle.remove()
    return torch.stack(found)


def test_the_noise_multiplies_the_token_embeddings(model, batch) -> None:
    sentence = alone(batch, 1)
    ranking = perturb.rank_neurons(model, sentence, MLP, target=2, n_samples=40, seed=3, input_level=EMBEDDINGS)
    clean = ranking.image
    assert clean.shape == (1, 5, 32)
    drawn = perturb.resample(clean, n_samples=40, sigma=0.1, seed=3).reshape(40, 5, 32)
    expected = manual_outputs(model, sentence, drawn, 2)
    assert torch.allclose(ranking.outputs, expected, rtol=1e-10, atol=0)
    assert ranking.scores("correlation", MLP[0]).shape == (48,)
    assert ranking.scores("correlation", MLP[1]).max() > 0.05
    given = perturb.rank_neurons(model, sentence, MLP, target=2, samples=drawn, input_level=EMBEDDINGS)
    for name in MLP:
        a, b = given.scores("correlation", name), ranking.scores("correlation", name)
        assert (a - b).abs().max() <= 1e-9 * b.abs().max()


def test_a_padded_sentence_ranks_as_the_sentence_alone(model, batch) -> None:
    padded = {key: value[4:5] for key, value in batch.items()}  # two real tokens of seven
    ranking = perturb.rank_neurons(model, padded, MLP, target=0, n_samples=30, input_level=EMBEDDINGS)
    own = perturb.rank_neurons(model, alone(batch, 4), MLP, target=0, n_samples=30, input_level=EMBEDDINGS)
    assert ranking.image.shape == (1, 2, 32)
    for metric in ("correlation", "precision", "activation_sum", "activation_variance"):
        for name in MLP:
            a, b = ranking.scores(metric, name), own.scores(metric, name)
            scale = b.nan_to_num(posinf=0).abs().max()
            assert torch.allclose(a, b, rtol=0, atol=1e-9 * float(scale), equal_nan=True), (metric, name)


def test_rank_many_ranks_each_sentence_of_a_padded_batch_alone(model, batch) -> None:
    targets = [0, 2, 1]
    rankings = perturb.rank_many(model, {k: v[:3] for k, v in batch.items()}, targets, levels=MLP, n_samples=20,
                                 seed=4, input_level=EMBEDDINGS)  # fmt: skip
    assert [r.target for r in rankings] == targets
    for i, ranking in enumerate(rankings):
        own = perturb.rank_neurons(model, alone(batch, i), MLP, target=targets[i], n_samples=20, seed=4,
                                   input_level=EMBEDDINGS)  # fmt: skip
        assert ranking.image.shape == own.image.shape
        for name in MLP:
            a, b = ranking.scores("correlation", name), own.scores("correlation", name)
            assert torch.allclose(a, b, rtol=0, atol=1e-9 * float(b.abs().max()), equal_nan=True)


def test_rank_many_of_sentences_needs_the_input_level(model, batch) -> None:
    with pytest.raises(ValueError, match="cannot perturb token ids"):
        perturb.rank_many(model, batch, [0] * len(batch["input_ids"]), levels=MLP, n_samples=20)


def test_a_sentence_ranking_has_no_patches(model, batch) -> None:
    ranking = perturb.rank_neurons(model, alone(batch, 0), MLP, target=0, n_samples=8, input_level=EMBEDDINGS)
    assert perturb.top_patches(ranking) == {}  # no ranked level is a map of pixels
    with pytest.raises(ValueError, match="there are no patches"):
        perturb.top_patches(ranking, levels=MLP)
