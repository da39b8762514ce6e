"""``stepwise.select_inputs`` against a loop over the inputs one at a time, in plain Python."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

import stepwise
from stepwise.core.selection import class_probabilities, select_from_probabilities, select_inputs
from stepwise.models import digits_cnn, digits_data


# per (model, inputs), which stay referenced so that their ids are not reused: each input's class and probability
_PREDICTIONS: dict[tuple[int, int], tuple[nn.Module, Tensor, list[tuple[int, float]]]] = {}


def by_loop(
    model: nn.Module,
    inputs: Tensor,
    labels: Tensor | None,
    classes: list[int] | None,
    min_probability: float,
    max_per_class: int,
) -> dict[int, list[int]]:
    """The definition, one input at a time: label (or prediction) c, predicted c, softmax(c) >= min_probability."""
    key = (id(model), id(inputs))
    if key not in _PREDICTIONS:
        dtype = next(model.parameters()).dtype
        with torch.no_grad():
            rows = [torch.softmax(model(x[None].to(dtype)).double(), dim=1)[0] for x in inputs]
        _PREDICTIONS[key] = (model, inputs, [(int(p.argmax()), float(p.max())) for p in rows])  # kept alive
    predictions = _PREDICTIONS[key][2]
    own = [c for c, _ in predictions] if labels is None else labels.tolist()
    wanted = sorted(set(own)) if classes is None else classes
    chosen: dict[int, list[int]] = {c: [] for c in wanted}
    for i, (c, p) in enumerate(predictions):
        if c in chosen and own[i] == c and p >= min_probability and len(chosen[c]) < max_per_class:
            chosen[c].append(i)
    return chosen


def as_lists(selection: dict[int, Tensor]) -> dict[int, list[int]]:
    for index in selection.values():
        assert index.dtype == torch.int64 and index.dim() == 1
    return {c: index.tolist() for c, index in selection.items()}


@pytest.fixture(scope="module")
def digits() -> tuple[nn.Module, Tensor, Tensor]:
    data = digits_data()
    index = data.train[:300]
    return digits_cnn().double().eval(), data.images[index].double(), data.labels[index]


@pytest.fixture(scope="module")
def uncertain() -> tuple[nn.Module, Tensor]:
    """A seeded untrained linear classifier: predictions spread over classes, probabilities far from 1."""
    generator = torch.Generator().manual_seed(5)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 6)).double().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    return model, torch.randn(400, 3, 4, 4, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize(
    ("classes", "min_probability", "max_per_class"),
    [(None, 0.99, 100), (None, 0.99, 7), ([0, 3, 9], 0.999, 20), (None, 0.0, 1000), ([2], 0.5, 3)],
)
def test_labelled_digits_match_the_loop(digits, classes, min_probability, max_per_class) -> None:
    model, inputs, labels = digits
    expected = by_loop(model, inputs, labels, classes, min_probability, max_per_class)
    chosen = select_inputs(
        model,
        inputs,
        labels,
        classes=classes,
        min_probability=min_probability,
        max_per_class=max_per_class,
        batch_size=64,  # several batches, the last one partial
    )
    assert as_lists(chosen) == expected
    assert sum(map(len, expected.values())) > 0


@pytest.mark.parametrize(("classes", "min_probability"), [(None, 0.3), (None, 0.0), ([0, 1, 5], 0.4)])
def test_unlabelled_inputs_take_the_predicted_class(uncertain, classes, min_probability) -> None:
    model, inputs = uncertain
    expected = by_loop(model, inputs, None, classes, min_probability, 10)
    chosen = select_inputs(model, inputs, classes=classes, min_probability=min_probability, max_per_class=10)
    assert as_lists(chosen) == expected
    if classes is None:  # the classes present are the predicted ones, not every class the model scores
        predicted = class_probabilities(model, inputs).argmax(1).unique().tolist()
        assert list(chosen) == predicted


def test_a_class_asked_for_that_nothing_qualifies_for_is_empty(uncertain) -> None:
    model, inputs = uncertain
    chosen = select_inputs(model, inputs[:30], classes=[0, 1, 2, 3, 4, 5], min_probability=1.0)
    assert list(chosen) == [0, 1, 2, 3, 4, 5]
    assert as_lists(chosen) == by_loop(model, inputs[:30], None, [0, 1, 2, 3, 4, 5], 1.0, 100)


def test_a_float32_model_reads_float64_inputs_and_classes_given_as_one_int(digits) -> None:
    model, inputs, labels = digits
    single = digits_cnn().eval()  # float32: the inputs are cast batch by batch
    chosen = select_inputs(single, inputs, labels, classes=4, max_per_class=5)
    expected = by_loop(single, inputs, labels, [4], 0.99, 5)
    assert as_lists(chosen) == expected


def test_the_probabilities_are_the_softmax_of_the_outputs(uncertain) -> None:
    model, inputs = uncertain
    seen: list[int] = []
    probabilities = class_probabilities(model, inputs, batch_size=150, progress=seen.append)
    with torch.no_grad():
        expected = torch.softmax(model(inputs), dim=1)
    assert probabilities.dtype == torch.float64 and probabilities.shape == (400, 6)
    torch.testing.assert_close(probabilities, expected, rtol=1e-12, atol=1e-15)
    assert seen == [150, 150, 100]


def test_select_from_probabilities_reads_a_table() -> None:
    probabilities = torch.tensor(
        [[0.995, 0.005], [0.2, 0.8], [0.001, 0.999], [0.991, 0.009], [0.5, 0.5], [0.9999, 0.0001]],
        dtype=torch.float64,
    )
    labels = torch.tensor([0, 1, 1, 1, 0, 0])
    assert as_lists(select_from_probabilities(probabilities, labels)) == {0: [0, 5], 1: [2]}
    assert as_lists(select_from_probabilities(probabilities, labels, max_per_class=1)) == {0: [0], 1: [2]}
    # without labels: input 3 is predicted 0 with 0.991, input 4 a tie (argmax: the first class)
    assert as_lists(select_from_probabilities(probabilities, min_probability=0.5)) == {0: [0, 3, 4, 5], 1: [1, 2]}


def test_a_model_in_train_mode_is_switched_for_the_call_and_restored(uncertain) -> None:
    model, inputs = uncertain
    dropout = nn.Sequential(copy.deepcopy(model), nn.Dropout(0.9)).train()
    with pytest.warns(UserWarning, match="train mode"):
        chosen = select_inputs(dropout, inputs, min_probability=0.3)
    assert dropout.training and all(p.requires_grad for p in dropout.parameters())
    assert as_lists(chosen) == by_loop(model, inputs, None, None, 0.3, 100)  # dropout was off


def test_the_same_call_gives_the_same_selection(uncertain) -> None:
    model, inputs = uncertain
    assert as_lists(select_inputs(model, inputs, min_probability=0.2)) == as_lists(
        select_inputs(model, inputs, min_probability=0.2, batch_size=7)
    )


def test_select_inputs_is_public() -> None:
    assert stepwise.select_inputs is select_inputs
    assert "select_inputs" in stepwise.__all__


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_model_on_the_gpu_reads_inputs_from_the_cpu(digits) -> None:
    model, inputs, labels = digits
    on_gpu = copy.deepcopy(model).cuda()
    chosen = select_inputs(on_gpu, inputs, labels, max_per_class=20, batch_size=100)
    assert all(index.device.type == "cpu" for index in chosen.values())
    assert as_lists(chosen) == by_loop(model, inputs, labels, None, 0.99, 20)
