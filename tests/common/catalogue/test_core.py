"""The catalogue of bad inputs, continued: failures during the work leave no trace, and the checks the core shares
(neuron indices, the choice of inputs), as test_api.py checks its cases."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.helpers import BERT_LEVELS, VGGStyle, build_case, sentences, sequential_cnn, tiny_bert
from torch import Tensor, nn

import perturb
import stepwise
from stepwise import DependencyGraph
from stepwise.core.inputs import KeywordInputs

from tests.common.catalogue.bench import (
    CPU_LIMIT,
    LEVELS,
    N_INPUTS,
    RANGE_1,
    assert_no_hooks,
    assert_same_state,
    Bad,
    Bench,
    check_api,
    graph_of,
    ssa,
    state_of,
    timed,
)


# ------------------------------------------------------------------------------------------------ during the work


class Explodes(nn.Module):
    """Raises on inputs whose first value is above 100: a failure in the middle of a run."""

    def forward(self, x: Tensor) -> Tensor:
        if (x.flatten(1)[:, 0] > 100).any():
            raise RuntimeError("boom")
        return x


def test_non_finite_activation_in_a_later_batch_is_named() -> None:
    """The levels are checked on the first inputs; later batches are checked as they stream, on every path."""
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3)).eval()
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    data = torch.ones(6, 3)
    data[5] = 2e38  # finite, but 3 · 2e38 overflows float32 in the first layer
    for closed_form in (True, False):
        analysis = stepwise.StepwiseSensitivity(model, ["1", "softmax"], batch_size=2, closed_form=closed_form)
        with pytest.raises(ValueError, match=r"^Level '(0|1|softmax)' holds NaN or Inf values"):
            analysis.dependency_graph(data, target=0)


def _train_mode_resnet() -> tuple[nn.Module, Tensor]:
    model, _, x, _ = build_case("resnet", torch.float32)
    model.train()  # a user's model in train mode, with some parameters frozen and a gradient already there
    model.layer1[0].conv1.weight.requires_grad_(False)
    model.fc.weight.grad = torch.ones_like(model.fc.weight)
    x.requires_grad_(True)
    return model, x


RESNET_LEVELS = ["relu", "layer1.0", "layer1.1", "layer2.0", "layer2.1", "softmax"]


@pytest.mark.parametrize("rule", ["gradient", "guided", "grad_x_activation"])
def test_no_trace_after_normal_calls(rule: str) -> None:
    model, x = _train_mode_resnet()
    before = state_of(model)
    analysis = stepwise.StepwiseSensitivity(model, RESNET_LEVELS, rule=rule, fence=0.5)
    with pytest.warns(UserWarning, match="model is in train mode; it is analysed in eval mode"):
        graph = analysis.dependency_graph(x, target=1)
    with pytest.warns(UserWarning, match="train mode"):
        analysis.relevance(x, upper="layer1.1", lower="layer1.0", neurons=[0, 1])
    assert graph.edges
    assert_no_hooks(model)
    assert_same_state(before, state_of(model))
    assert x.requires_grad and x.grad is None


def test_no_trace_after_a_module_raises_in_the_middle_of_a_run() -> None:
    """The levels check passes on the first inputs; a later batch makes a module raise."""
    exploding = nn.Sequential(Explodes(), sequential_cnn()).train()
    data = torch.randn(6, 3, 8, 8)
    data[4, 0, 0, 0] = 1000.0
    before = state_of(exploding)
    analysis = stepwise.StepwiseSensitivity(exploding, ["1.1", "1.4", "softmax"], batch_size=2)
    with (
        pytest.warns(UserWarning, match="train mode"),
        pytest.raises(ValueError, match="The model raised RuntimeError"),
    ):
        analysis.dependency_graph(data, target=0)
    assert_no_hooks(exploding)
    assert_same_state(before, state_of(exploding))


@pytest.mark.slow
def test_a_good_call_on_the_bench_takes_more_than_a_second(inputs: Tensor) -> None:
    """What the cases of the catalogue refuse to start is real work."""
    model = VGGStyle().eval()
    calls = [
        lambda: stepwise.StepwiseSensitivity(model, LEVELS).dependency_graph(inputs, target=0),
        lambda: perturb.rank_neurons(model, inputs[0], target=2, n_samples=N_INPUTS),
    ]
    for call in calls:
        with timed() as clock:
            call()
        assert clock["cpu"] > CPU_LIMIT


# ------------------------------------------------------------------------------------------------ neuron indices

#: One neuron check serves every method (stepwise.core.validation.check_neurons).
NEURON_INDICES = {
    "patches: neurons as a 2-D tensor": Bad(
        lambda b: perturb.patches(b.model, b.image, "features.3", torch.tensor([[0, 1]])),
        ValueError,
        "has shape (1, 2). Flatten it first",
        probes=1,
    ),
    "patches: a 0-d float tensor as neuron": Bad(
        lambda b: perturb.patches(b.model, b.image, "features.3", torch.tensor(1.0)),
        TypeError,
        "must be an int or a sequence of ints. Got tensor(1.)",
        probes=1,
    ),
    "relevance: a bool neuron": Bad(
        lambda b: ssa(b).relevance(b.inputs, upper="features.3", lower="features.1", neurons=[True]),
        TypeError,
        "is True (bool). Pass integer indices",
        probes=1,
    ),
    "outlier_counts: neuron -1": Bad(
        lambda b: ssa(b).outlier_counts(b.inputs, upper="features.3", lower="features.1", neurons=-1),
        ValueError,
        "a negative index does not count from the end",
        probes=1,
    ),
    "dependency_graph: a float neuron in a target pair": Bad(
        lambda b: graph_of(b, target=[("classifier.1", 2.5)]),
        TypeError,
        "The 'target' parameter of StepwiseSensitivity.dependency_graph must be an int or a sequence of ints",
        probes=1,
    ),
}


@pytest.mark.parametrize("name", list(NEURON_INDICES))
def test_neuron_indices(name: str, inputs: Tensor, graphs: list[DependencyGraph], tmp_path: Path) -> None:
    check_api(NEURON_INDICES[name], inputs, graphs, tmp_path)


# ------------------------------------------------------------------------------------------------ select_inputs


def select(b: Bench, **changes: Any) -> object:
    kwargs: dict[str, Any] = {"model": b.model, "inputs": b.inputs, **changes}
    return stepwise.select_inputs(**kwargs)


def flat_scores() -> nn.Module:
    """VGGStyle whose class scores are flattened into one dimension (N * C,)."""
    return nn.Sequential(VGGStyle(), nn.Flatten(0))


N_LABELS = "must hold one integer class index per input, shape (N,)"
SELECT_INPUTS = {
    "select_inputs: a function as model": Bad(
        lambda b: select(b, model=lambda x: x), TypeError, "'model' parameter of select_inputs must be a torch.nn"
    ),
    "select_inputs: a list of inputs": Bad(
        lambda b: select(b, inputs=list(b.inputs[:3])), TypeError, "stack the inputs with torch.stack"
    ),
    "select_inputs: no inputs": Bad(lambda b: select(b, inputs=b.inputs[:0]), ValueError, "at least one input"),
    "select_inputs: float labels": Bad(lambda b: select(b, labels=torch.zeros(N_INPUTS)), ValueError, N_LABELS),
    "select_inputs: labels of shape (N, 1)": Bad(
        lambda b: select(b, labels=torch.zeros(N_INPUTS, 1, dtype=torch.int64)), ValueError, N_LABELS
    ),
    "select_inputs: fewer labels than inputs": Bad(
        lambda b: select(b, labels=torch.zeros(10, dtype=torch.int64)), ValueError, "pass one label per input"
    ),
    "select_inputs: labels the model does not score": Bad(
        lambda b: select(b, labels=torch.arange(N_INPUTS) % 9),
        ValueError,
        "pass labels that index the model's classes",
        probes=1,
    ),
    "select_inputs: classes=-1": Bad(
        lambda b: select(b, classes=-1), ValueError, "must be an int in the range [0, inf)"
    ),
    "select_inputs: classes='3'": Bad(
        lambda b: select(b, classes="3"), TypeError, "a class index or a non-empty sequence of them"
    ),
    "select_inputs: classes=[]": Bad(lambda b: select(b, classes=[]), TypeError, "a non-empty sequence"),
    "select_inputs: a class the model does not score": Bad(
        lambda b: select(b, classes=[2, 6]), ValueError, "names [6], but the model scores 6 classes", probes=1
    ),
    "select_inputs: min_probability=1.5": Bad(
        lambda b: select(b, min_probability=1.5), ValueError, "must be a float in the range [0, 1]"
    ),
    "select_inputs: max_per_class=0": Bad(lambda b: select(b, max_per_class=0), ValueError, RANGE_1),
    "select_inputs: batch_size=0": Bad(lambda b: select(b, batch_size=0), ValueError, RANGE_1),
    "select_inputs: a model without class scores": Bad(
        select, ValueError, "needs class scores of shape (N, C) with C >= 2", probes=1, model=flat_scores
    ),
}


@pytest.mark.parametrize("name", list(SELECT_INPUTS))
def test_select_inputs(name: str, inputs: Tensor, graphs: list[DependencyGraph], tmp_path: Path) -> None:
    check_api(SELECT_INPUTS[name], inputs, graphs, tmp_path)


# ------------------------------------------------------------------------------------------------ keyword inputs

#: One check of dicts of tensors (stepwise.core.inputs.KeywordInputs) serves every method.
_TRANSFORMERS = (pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="needs transformers"),)


def float_bert() -> nn.Module:
    return tiny_bert(torch.float32)


def tokens(**changes: Any) -> dict[str, Any]:
    """:data:`~tests.common.catalogue.bench.N_INPUTS` padded sentences for the tiny BERT, with ``changes`` applied."""
    return {**sentences(N_INPUTS), **changes}


def no_real_token() -> dict[str, Tensor]:
    batch = sentences(N_INPUTS)
    batch["attention_mask"][5] = 0
    return batch


def bert_graph(b: Bench, inputs: object, levels: object = BERT_LEVELS, **kwargs: Any) -> object:
    kwargs.setdefault("channel_dim", 2)
    return stepwise.StepwiseSensitivity(b.model, levels, **kwargs).dependency_graph(inputs, target=0)


def _keyword(call: Any, error: type[Exception], fix: str, probes: int = 0) -> Bad:
    return Bad(call, error, fix, probes=probes, model=float_bert, marks=_TRANSFORMERS)


KEYWORD_INPUTS = {
    "dependency_graph: a dict of one sentence without a batch dimension": _keyword(
        lambda b: bert_graph(b, {k: v[0] for k, v in sentences(N_INPUTS).items()}),
        ValueError,
        "without a batch dimension: a dict of inputs holds a batch, (N, T). For one sentence add the batch dimension",
    ),
    "dependency_graph: a dict whose tensors disagree on the number of inputs": _keyword(
        lambda b: bert_graph(b, tokens(attention_mask=sentences(N_INPUTS)["attention_mask"][:10])),
        ValueError,
        "must share a first (batch) dimension",
    ),
    "dependency_graph: a mask of another shape than the ids": _keyword(
        lambda b: bert_graph(b, tokens(attention_mask=sentences(N_INPUTS)["attention_mask"][:, :5])),
        ValueError,
        "pass the mask the tokenizer returned with these ids",
    ),
    "dependency_graph: a mask that is not 0 or 1": _keyword(
        lambda b: bert_graph(b, tokens(attention_mask=2 * sentences(N_INPUTS)["attention_mask"])),
        ValueError,
        "must hold 0 (padding) and 1 (real token) only",
    ),
    "dependency_graph: a token mask all zeros for one input": _keyword(
        lambda b: bert_graph(b, no_real_token()), ValueError, "is all zeros for input(s) [5]: such an input has no"
    ),
    "relevance: token_mask names no key of the inputs": _keyword(
        lambda b: stepwise.StepwiseSensitivity(b.model, BERT_LEVELS, channel_dim=2).relevance(
            KeywordInputs(sentences(N_INPUTS), token_mask="mask"), upper="softmax", lower=BERT_LEVELS[2], neurons=0
        ),
        ValueError,
        "token_mask='mask' is not a key of the dict of inputs",
    ),
    "dependency_graph: token ids as lists": _keyword(
        lambda b: bert_graph(b, {k: v.tolist() for k, v in sentences(N_INPUTS).items()}),
        TypeError,
        "Tokenize with return_tensors='pt'",
    ),
    "dependency_graph: channel_dim=1 makes tokens the neurons": _keyword(
        lambda b: bert_graph(b, sentences(N_INPUTS), channel_dim=1),
        ValueError,
        "Pass channel_dim=2: each of the 32 units is then a neuron",
        probes=1,
    ),
    "dependency_graph: channel_dim=3 on (N, T, D) levels": _keyword(
        lambda b: bert_graph(b, sentences(N_INPUTS), channel_dim=3),
        ValueError,
        "channel_dim=3 does not fit level 'transformer.embeddings'",
        probes=1,
    ),
    "dependency_graph: 'input' below token ids": _keyword(
        lambda b: bert_graph(b, sentences(N_INPUTS), levels=["input", *BERT_LEVELS]),
        ValueError,
        "Take the embeddings as the bottom level instead",
        probes=1,
    ),
    "DecisionPaths.fit: features='flatten' on token levels": _keyword(
        lambda b: stepwise.DecisionPaths(b.model, BERT_LEVELS[1:3], n_clusters=2, features="flatten").fit(tokens()),
        ValueError,
        "would include the padding tokens, so padding would change the paths. Pass features='mean'",
        probes=1,
    ),
    "ActivationSorter.fit: reduce=None on token levels": _keyword(
        lambda b: stepwise.ActivationSorter(b.model, BERT_LEVELS[1:3], reduce=None).fit(
            tokens(), torch.zeros(N_INPUTS, dtype=torch.int64)
        ),
        ValueError,
        "padding would change the values: pass reduce='mean'",
        probes=1,
    ),
    "InferenceGraphs.fit: validation inputs a tensor, the inputs a dict": _keyword(
        lambda b: stepwise.InferenceGraphs(b.model, BERT_LEVELS[1:3]).fit(tokens(), validation=b.inputs),
        TypeError,
        "validation inputs are a tensor, but the training inputs were a dict of tensors: pass a dict with the same "
        "keys",
    ),
    "InferenceGraphs.fit: more words than real tokens": _keyword(
        lambda b: stepwise.InferenceGraphs(b.model, BERT_LEVELS[1:3], n_words=10_000).fit(tokens()),
        ValueError,
        "is more words than its",
        probes=1,
    ),
    "rank_neurons: token ids, which cannot be perturbed": _keyword(
        lambda b: perturb.rank_neurons(b.model, one_sentence(), BERT_LEVELS[1:3], target=0, n_samples=N_INPUTS),
        ValueError,
        "cannot perturb token ids, which take no noise: name the module whose output the multiplicative noise goes "
        "into, the token embeddings, with input_level",
    ),
    "rank_many: sentences without the level that takes the noise": _keyword(
        lambda b: perturb.rank_many(b.model, tokens(), [0] * N_INPUTS, levels=BERT_LEVELS[1:3]),
        ValueError,
        "rank_many cannot perturb token ids, which take no noise: name the module whose output the multiplicative "
        "noise goes into",
    ),
    "patches: a sentence, which has no pixels": _keyword(
        lambda b: perturb.patches(b.model, one_sentence(), BERT_LEVELS[1], 0),
        TypeError,
        "draws boxes in image pixels; a sentence (a dict of token ids) has none",
    ),
    "rank_neurons: a dict of several sentences": _keyword(
        lambda b: perturb.rank_neurons(b.model, tokens(), target=0, input_level=BERT_LEVELS[0]),
        ValueError,
        "explains one input, but the dict holds 1024: pass one sentence",
    ),
    "rank_neurons: input_level with a tensor input": _keyword(
        lambda b: perturb.rank_neurons(b.model, b.image, target=0, input_level=BERT_LEVELS[0]),
        ValueError,
        "a tensor input takes the noise itself. Leave input_level=None",
    ),
    "rank_neurons: a level below input_level": _keyword(
        lambda b: perturb.rank_neurons(
            b.model, one_sentence(), [BERT_LEVELS[1]], target=0, n_samples=N_INPUTS, input_level=BERT_LEVELS[2]
        ),
        ValueError,
        "Levels are not in forward order (bottom to top)",
        probes=3,  # the noise's level resolved, its clean output captured, the levels resolved: one sentence each
    ),
}


def one_sentence() -> dict[str, Tensor]:
    return {key: value[:1] for key, value in sentences().items()}


@pytest.mark.parametrize("name", [pytest.param(name, marks=case.marks) for name, case in KEYWORD_INPUTS.items()])
def test_keyword_inputs(name: str, inputs: Tensor, graphs: list[DependencyGraph], tmp_path: Path) -> None:
    check_api(KEYWORD_INPUTS[name], inputs, graphs, tmp_path)
