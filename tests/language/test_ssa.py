"""SSA on a tiny BERT (tests/language/conftest.py): levels, exact token-averaged ω, padding changes nothing."""

from __future__ import annotations

import warnings

import pytest
import torch

import stepwise
from stepwise.core.capture import capture
from stepwise.core.inputs import KeywordInputs, token_mean
from stepwise.core.levels import resolve_levels
from stepwise.ssa.plan import plan_closed_form


from tests.helpers import BERT_LEVELS as LEVELS
from tests.helpers import alone, max_relative_error, sentences, tiny_bert
from tests.reference import token_relevance

pytest.importorskip("transformers", reason="the transformer tests need the transformers package")


def test_list_levels_finds_the_mlp_activations_and_attention_outputs_of_each_layer(model, batch) -> None:
    names = stepwise.list_levels(model, batch)
    for i in range(2):
        for part in ("attention.output", "intermediate"):
            assert f"transformer.encoder.layer.{i}.{part}" in names
    assert names[0] == "transformer.embeddings.word_embeddings" and "input" not in names
    assert names[-3:] == ["pool", "probe", "softmax"]
    infos = resolve_levels(model, batch, LEVELS, channel_dim=2, steps=True)
    assert [info.n_neurons for info in infos] == [32, 48, 48, 3]


@pytest.mark.parametrize(
    "step", [(0, 1), (1, 2), (2, 3)], ids=["layer0<-embeddings", "layer1<-layer0", "softmax<-layer1"]
)
def test_relevance_equals_autograd_of_the_masked_token_mean(model, batch, step) -> None:
    lower, upper = LEVELS[step[0]], LEVELS[step[1]]
    neurons = [0, 2] if upper == "softmax" else [0, 7, 31, 47]
    ssa = stepwise.StepwiseSensitivity(model, LEVELS, channel_dim=2)
    omega = ssa.relevance(batch, upper=upper, lower=lower, neurons=neurons)
    expected = token_relevance(model, batch, lower, upper, neurons)
    assert omega.shape == (len(neurons), len(batch["input_ids"]), expected.shape[2])
    assert max_relative_error(omega, expected) <= 1e-10


def test_padding_changes_no_neuron_value_and_no_omega(model, batch) -> None:
    ssa = stepwise.StepwiseSensitivity(model, LEVELS, channel_dim=2)
    infos = resolve_levels(model, batch, LEVELS, channel_dim=2)
    padded = KeywordInputs(batch)
    values = capture(model, padded, infos)
    omega = ssa.relevance(batch, upper=LEVELS[2], lower=LEVELS[1], neurons=range(48))
    for i in range(len(batch["input_ids"])):
        single = KeywordInputs(alone(batch, i))
        own = capture(model, single, infos)
        for info in infos:
            expected = token_mean(own[info.name], info.channel_dim, single.mask)[0]
            actual = token_mean(values[info.name], info.channel_dim, padded.mask)[i]
            assert max_relative_error(actual, expected) <= 1e-10, info.name
        own_omega = ssa.relevance(alone(batch, i), upper=LEVELS[2], lower=LEVELS[1], neurons=range(48))
        assert max_relative_error(omega[:, i], own_omega[:, 0]) <= 1e-10


def test_padding_changes_no_dependency_graph(model, batch) -> None:
    wider = {key: torch.cat([value, value.new_zeros(len(value), 4)], dim=1) for key, value in batch.items()}
    wider["input_ids"][:, -4:] = 5  # what the padding holds does not matter either
    ssa = stepwise.StepwiseSensitivity(model, LEVELS, channel_dim=2, fence=0.5, sign="both", batch_size=4)
    graph = ssa.dependency_graph(batch, target=1)
    assert graph.stopped_at is None and len(graph) > 4
    other = ssa.dependency_graph(wider, target=1)
    assert sorted(graph.nodes) == sorted(other.nodes) and sorted(graph.edges) == sorted(other.edges)
    for edge in graph.edges:
        a, b = graph.edges[edge], other.edges[edge]
        assert a["count"] == b["count"]
        assert abs(a["relevance"] - b["relevance"]) <= 1e-10 * abs(a["relevance"])


def test_a_model_fx_cannot_trace_runs_on_batched_autograd(model, batch) -> None:
    infos = resolve_levels(model, batch, LEVELS, channel_dim=2)
    with pytest.raises(Exception):
        torch.fx.symbolic_trace(model)
    assert plan_closed_form(model, infos) == {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stepwise.StepwiseSensitivity(model, LEVELS, channel_dim=2).relevance(
            batch, upper=LEVELS[1], lower=LEVELS[0], neurons=range(48)
        )
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]  # no loop of one backward per neuron


def test_a_mask_of_its_own_averages_over_other_tokens(model, batch) -> None:
    inner = batch["attention_mask"].clone()
    inner[:, 0] = 0  # leave out the first ([CLS]) token of the average, not of the model
    ssa = stepwise.StepwiseSensitivity(model, LEVELS, channel_dim=2)
    omega = ssa.relevance(KeywordInputs(batch, token_mask=inner), upper=LEVELS[2], lower=LEVELS[1], neurons=[3])
    plain = ssa.relevance(batch, upper=LEVELS[2], lower=LEVELS[1], neurons=[3])
    assert max_relative_error(omega, plain) > 1e-3
    scale = plain.abs().max()
    assert torch.isfinite(omega).all() and omega.abs().max() < 100 * scale


def test_float32_relevance_within_float32_tolerance(batch) -> None:
    single, double = tiny_bert(torch.float32), tiny_bert(torch.float64)
    omega = stepwise.StepwiseSensitivity(single, LEVELS, channel_dim=2).relevance(
        batch, upper=LEVELS[2], lower=LEVELS[1], neurons=[1, 9]
    )
    expected = token_relevance(double, batch, LEVELS[1], LEVELS[2], [1, 9])
    assert max_relative_error(omega.double(), expected) <= 1e-4


def test_an_iterable_of_dicts_is_one_batch(model) -> None:
    parts = [sentences(3, seed=1), sentences(3, seed=2)]
    ssa = stepwise.StepwiseSensitivity(model, LEVELS, channel_dim=2)
    joined = {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
    a = ssa.relevance(iter(parts), upper="softmax", lower=LEVELS[2], neurons=[0])
    b = ssa.relevance(joined, upper="softmax", lower=LEVELS[2], neurons=[0])
    assert a.shape == (1, 6, 48) and max_relative_error(a, b) <= 1e-10


def test_class_graphs_select_and_traverse_keyword_inputs(model) -> None:
    batch = sentences(30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a class without qualifying sentences is left out
        graphs = stepwise.class_graphs(model, batch, levels=LEVELS, min_probability=0.5, max_per_class=8, fence=0.5)
    chosen = stepwise.select_inputs(model, batch, min_probability=0.5, max_per_class=8)
    assert graphs and sorted(graphs) == sorted(c for c, index in chosen.items() if len(index))
    for c, graph in graphs.items():
        alone = stepwise.StepwiseSensitivity(model, LEVELS, fence=0.5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            expected = alone.dependency_graph({k: v[chosen[c]] for k, v in batch.items()}, target=c)
        assert sorted(graph.edges) == sorted(expected.edges)
