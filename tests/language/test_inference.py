"""Inference graphs on a tiny BERT (tests/helpers.py): the columns of a token level are its real tokens, so padding
changes no mixture, no word, no table and no graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import stepwise
from stepwise.inference.gmm import DiagonalGMM
from tests.helpers import alone, sentences

pytest.importorskip("transformers", reason="the transformer tests need the transformers package")

ATTENTION = "transformer.encoder.layer.0.attention.output"
MLP = ["transformer.encoder.layer.0.intermediate", "transformer.encoder.layer.1.intermediate"]
LEVELS = [ATTENTION, *MLP, "pool"]


def wider(batch: dict[str, Tensor], extra: int = 5) -> dict[str, Tensor]:
    """The batch padded by ``extra`` more tokens, which hold another id than the padding."""
    padded = {key: torch.cat([value, value.new_zeros(len(value), extra)], dim=1) for key, value in batch.items()}
    padded["input_ids"][:, -extra:] = 7
    return padded


def fitted(model: nn.Module, batch: dict[str, Tensor], **options) -> stepwise.InferenceGraphs:
    settings = {"n_words": 3, "max_iter": 30, "batch_size": 8, "seed": 0, **options}
    return stepwise.InferenceGraphs(model, LEVELS, **settings).fit(batch)


def hooked_columns(model: nn.Module, sentence: dict[str, Tensor], name: str) -> Tensor:
    """A level's output for one sentence, captured by a plain forward hook: (T, D) or (1, D)."""
    found = []
    handle = model.get_submodule(name).register_forward_hook(lambda m, args, output: found.append(output.detach()))
    try:
        with torch.no_grad():
            model(**sentence)
    finally:
        handle.remove()
    return found[0][0] if found[0].dim() == 3 else found[0]


def scale_of(gmm: DiagonalGMM) -> float:
    return float(gmm.means.abs().max())


@pytest.fixture
def many() -> dict[str, Tensor]:
    return sentences(40)


def test_the_words_of_real_tokens_are_those_of_each_sentence_alone(model, many) -> None:
    ig = fitted(model, many)
    words, posteriors = ig.words(many), ig.posteriors(many)
    mask = many["attention_mask"].bool()
    for name in [ATTENTION, *MLP]:
        assert words[name].shape == mask.shape and posteriors[name].shape == (*mask.shape, 3)
        assert bool((words[name][~mask] == -1).all()) and bool((posteriors[name][~mask] == 0).all())
    for i in range(0, 40, 7):
        sentence = alone(many, i)
        own = ig.words(sentence)
        for name in [ATTENTION, *MLP]:
            real = words[name][i][mask[i]]
            assert torch.equal(real, own[name][0])
            columns = hooked_columns(model, sentence, name)  # an independent capture: argmax of the mixture
            assert torch.equal(real, ig.gmms_[name].log_joint(columns).argmax(1))
        assert int(words["softmax"][i]) == int(model(**sentence).argmax(1))


def test_padding_changes_no_mixture_table_representative_or_graph(model, many) -> None:
    ig, padded = fitted(model, many), fitted(model, wider(many))
    for name in [ATTENTION, *MLP, "pool"]:
        a, b = ig.gmms_[name], padded.gmms_[name]
        for x, y in zip(a.tensors(), b.tensors()):
            assert torch.allclose(x, y, rtol=0, atol=1e-9 * max(float(y.abs().max()), 1e-300)), name
        assert ig.n_iter_.get(name) == padded.n_iter_.get(name)
    for upper, lower in zip(LEVELS[1:] + ["softmax"], LEVELS):
        assert np.array_equal(ig.cooccurrence(upper, lower), padded.cooccurrence(upper, lower))
    for name in MLP:
        for word in range(3):
            mine = [(r.input, r.position) for r in ig.representatives(name, word, k=5)]
            assert mine == [(r.input, r.position) for r in padded.representatives(name, word, k=5)]
    for graph, other in [(ig.class_graph(many, 1), padded.class_graph(wider(many, 2), 1)),
                         (ig.image_graph(alone(many, 3)), padded.image_graph(alone(many, 3)))]:  # fmt: skip
        assert dict(graph.nodes(data=True)) == dict(other.nodes(data=True))
        assert sorted(graph.edges(data=True)) == sorted(other.edges(data=True))


def test_the_discriminative_loss_pools_the_real_tokens_only(model, many) -> None:
    labels = torch.arange(40) % 3
    a = stepwise.InferenceGraphs(model, MLP, n_words=3, max_iter=8, batch_size=8, loss="discriminative")
    b = stepwise.InferenceGraphs(model, MLP, n_words=3, max_iter=8, batch_size=8, loss="discriminative")
    a.fit(many, labels)
    b.fit(wider(many), labels)
    for name in MLP:
        losses, other = a.report_.cross_entropy[name], b.report_.cross_entropy[name]
        assert np.allclose(losses, other, rtol=1e-9, atol=0)
        assert torch.allclose(a.gmms_[name].means, b.gmms_[name].means, rtol=0, atol=1e-8 * scale_of(b.gmms_[name]))


def test_cooccurrence_counts_pairs_of_real_tokens_through_the_fields(model, many) -> None:
    ig = fitted(model, many)
    within = ig.receptive_field(MLP[0], ATTENTION)  # token by token: a position depends on itself only
    assert np.array_equal(within, np.eye(7, dtype=bool))
    across = ig.receptive_field(MLP[1], MLP[0])  # attention mixes every token into every token
    assert across.all() and across.shape == (7, 7)
    assert ig.receptive_field("pool", MLP[1]).shape == (1, 7)
    words = ig.words(many)
    lengths = many["attention_mask"].sum(1).tolist()
    for upper, lower in [(MLP[0], ATTENTION), (MLP[1], MLP[0]), ("pool", MLP[1])]:
        field = ig.receptive_field(upper, lower)
        expected = np.zeros((3, 3), dtype=np.int64)
        for i, length in enumerate(lengths):  # the brute-force count of Eq. 4 over real tokens
            up = words[upper][i : i + 1].reshape(-1)
            up_positions = range(1) if upper == "pool" else range(length)
            for p in up_positions:
                for q in range(length):
                    if field[p, q]:
                        expected[int(up[p]), int(words[lower][i, q])] += 1
        assert np.array_equal(ig.cooccurrence(upper, lower), expected), (upper, lower)


def test_histograms_are_posteriors_averaged_over_the_real_tokens(model, many) -> None:
    ig = fitted(model, many)
    histograms = ig.histograms(many, MLP[1])
    assert torch.allclose(histograms.sum(1), torch.ones(40, dtype=torch.float64), rtol=0, atol=1e-12)
    for i in (0, 4, 9):
        own = ig.posteriors(alone(many, i))[MLP[1]][0]
        assert torch.allclose(histograms[i], own.mean(0).double(), rtol=0, atol=1e-12)
    from sklearn.linear_model import LogisticRegression

    labels = torch.arange(40) % 2
    train, test = {k: v[:30] for k, v in many.items()}, {k: v[30:] for k, v in many.items()}
    error = ig.histogram_error(MLP[1], (train, labels[:30]), (test, labels[30:]))
    seen, unseen = ig.histograms(train, MLP[1]).numpy(), ig.histograms(test, MLP[1]).numpy()
    classifier = LogisticRegression(max_iter=2000).fit(seen, labels[:30].numpy())
    assert error == float((classifier.predict(unseen) != labels[30:].numpy()).mean())


def test_token_levels_have_no_level_hmm(model, many) -> None:
    ig = fitted(model, many)
    assert ig.token_levels_ == [ATTENTION, *MLP]  # the pool is dense
    assert ig.hmm_ is None
    with pytest.raises(ValueError, match="have positions \\(conv maps or tokens\\)"):
        ig.viterbi(many)


def test_inputs_of_another_kind_than_the_fit_are_refused(model, many) -> None:
    ig = fitted(model, many, max_iter=2)
    with pytest.raises(TypeError, match="were a dict of tensors"):
        ig.words(many["input_ids"])
    with pytest.raises(ValueError, match="pass the same keys"):
        ig.words({**many, "token_type_ids": torch.zeros_like(many["input_ids"])})
    with pytest.raises(ValueError, match="real tokens"):
        stepwise.InferenceGraphs(model, MLP, n_words=200).fit({k: v[:4] for k, v in many.items()})


class MaskedPool(nn.Module):
    """The mean over real tokens by ``masked_fill``: a NaN at a padded position never reaches the pool."""

    def forward(self, hidden: Tensor, attention_mask: Tensor) -> Tensor:
        real = attention_mask.bool()[:, :, None]
        return hidden.masked_fill(~real, 0.0).sum(1) / real.sum(1)


def test_fields_do_not_depend_on_the_padding_of_the_probed_input(model, many) -> None:
    model.pool = MaskedPool()
    shortest_first = {k: v[torch.argsort(many["attention_mask"].sum(1), stable=True)] for k, v in many.items()}
    ig = fitted(model, shortest_first)
    assert int(shortest_first["attention_mask"][0].sum()) < 7
    assert ig.receptive_field("pool", MLP[1]).all()  # every token of the level feeds the pool
    expected = int(shortest_first["attention_mask"].sum())  # one pair per real token of each sentence
    assert int(ig.cooccurrence("pool", MLP[1]).sum()) == expected


def test_field_heatmaps_of_validation_sentences_of_another_length(model, many) -> None:
    from stepwise.inference.figures import field_heatmap

    ig = fitted(model, many, max_iter=3).fit(many, validation=wider(many))
    heat = field_heatmap(ig, MLP[1], 0, MLP[0], 0)
    assert heat.shape == (1, 12) and 0.0 <= heat.min() and heat.max() <= 1.0


class TextCNN(nn.Module):
    """A Conv1d over the token vectors, (N, C, T): positions along T that are not a token level (N, T, D)."""

    def __init__(self, bert: nn.Module) -> None:
        super().__init__()
        self.bert, self.conv = bert, nn.Conv1d(32, 8, 3, padding=1).double()
        self.head = nn.Linear(8, 3).double()

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        hidden = self.bert.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(self.conv(hidden.transpose(1, 2)).mean(2))


def test_levels_with_positions_that_are_not_tokens_are_refused(model, many) -> None:
    with pytest.raises(ValueError, match="positions that are not its tokens"):
        stepwise.InferenceGraphs(TextCNN(model), ["conv"], n_words=3).fit(many)
