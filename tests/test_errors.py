"""Bad input gets a clear error before any long computation, and no call leaves a trace on the model."""

from __future__ import annotations

import pytest
import torch
from conftest import ResNetStyle, VGGStyle, build_case, sequential_cnn
from torch import Tensor, nn

import stepwise


class TupleLayer(nn.Module):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x, x


class WithTuple(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 6)
        self.pair = TupleLayer()
        self.unused = nn.Linear(6, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, x: Tensor) -> Tensor:
        a, _ = self.pair(torch.relu(self.fc(x)))
        return self.head(a)


class Explodes(nn.Module):
    """Raises on inputs whose first value is above 100: a failure in the middle of a run."""

    def forward(self, x: Tensor) -> Tensor:
        if (x.flatten(1)[:, 0] > 100).any():
            raise RuntimeError("boom")
        return x


def _vgg() -> tuple[nn.Module, Tensor]:
    return VGGStyle().eval(), torch.randn(4, 3, 16, 16)


VGG_LEVELS = ["features.1", "features.3", "features.6", "classifier.1", "classifier.4", "softmax"]


def _ssa(**kwargs) -> stepwise.StepwiseSensitivity:
    model, _ = _vgg()
    return stepwise.StepwiseSensitivity(model, VGG_LEVELS, **kwargs)


CONSTRUCTION = [
    (dict(branching=0), ValueError, r"The 'branching' parameter of StepwiseSensitivity must be an int in the range \[1, inf\)\. Got 0 instead\."),
    (dict(branching=2.5), TypeError, r"'branching' parameter .* must be an int .* Got 2.5"),
    (dict(branching=True), TypeError, r"'branching' parameter .* must be an int"),
    (dict(fence=0), ValueError, r"The 'fence' parameter of StepwiseSensitivity must be a float in the range \(0, inf\)\. Got 0.0"),
    (dict(fence=-1.5), ValueError, r"'fence' parameter .* \(0, inf\)"),
    (dict(fence=float("nan")), ValueError, r"'fence' parameter"),
    (dict(sign="postive"), ValueError, r"'sign' parameter .* must be one of \{'positive', 'negative', 'both'\}\. Got 'postive' instead\. Did you mean 'positive'\?"),
    (dict(rule="guide"), ValueError, r"'rule' parameter .* Did you mean 'guided'\?"),
    (dict(batch_size=0), ValueError, r"'batch_size' parameter .* \[1, inf\)"),
    (dict(progress="yes"), TypeError, r"'progress' parameter .* must be a bool"),
]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "error", "message"), CONSTRUCTION, ids=[str(c[0]) for c in CONSTRUCTION])
def test_bad_parameters(kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        _ssa(**kwargs)


def test_model_and_levels_types() -> None:
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        stepwise.StepwiseSensitivity(lambda x: x)
    with pytest.raises(TypeError, match="levels must be a list of level names"):
        stepwise.StepwiseSensitivity(VGGStyle(), "features.1")


LEVELS = [
    (["feature.1", "softmax"], r"No module 'feature.1' in VGGStyle\. Did you mean 'features.1'.*stepwise.list_levels"),
    (["features.3", "features.1", "softmax"], r"not in forward order .* \['features.1', 'features.3'\]"),
    (["features.1", "features.1", "softmax"], r"appear more than once"),
    (["features.1", "input", "softmax"], r"'input' can only be the first"),
    (["features.1", "softmax", "classifier.4"], r"'softmax' can only be the last"),
    (["softmax"], r"At least two levels"),
]


@pytest.mark.parametrize(("levels", "message"), LEVELS, ids=[str(c[0]) for c in LEVELS])
def test_bad_levels(levels, message) -> None:
    model, x = _vgg()
    ssa = stepwise.StepwiseSensitivity(model, levels)
    with pytest.raises(ValueError, match=message):
        ssa.dependency_graph(x, target=0)


def test_level_that_runs_twice() -> None:
    with pytest.raises(ValueError, match=r"'layer1.0.relu' runs 2 times per forward pass .* enclosing block"):
        stepwise.StepwiseSensitivity(ResNetStyle(), ["layer1.0.relu", "softmax"]).dependency_graph(
            torch.randn(2, 3, 16, 16), target=0
        )


def test_level_that_never_runs_or_returns_no_tensor() -> None:
    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match=r"Level 'unused' never runs"):
        stepwise.StepwiseSensitivity(WithTuple(), ["unused", "softmax"]).dependency_graph(x, target=0)
    with pytest.raises(ValueError, match=r"Level 'pair' returns a tuple, not a tensor"):
        stepwise.StepwiseSensitivity(WithTuple(), ["pair", "softmax"]).dependency_graph(x, target=0)


def test_softmax_needs_a_tensor_of_class_scores() -> None:
    regressor = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    with pytest.raises(ValueError, match=r"'softmax' needs class scores .* Use 'output'"):
        stepwise.StepwiseSensitivity(regressor, ["1", "softmax"]).dependency_graph(torch.randn(3, 3), target=0)
    tupled = nn.Sequential(nn.Linear(3, 4), TupleLayer())
    with pytest.raises(ValueError, match=r"model output is a tuple, not a tensor"):
        stepwise.StepwiseSensitivity(tupled, ["0", "softmax"]).dependency_graph(torch.randn(3, 3), target=0)


TARGETS = [
    (6, ValueError, r"Neuron 6 is out of range for level 'softmax', which has 6 neurons \(0 to 5\)"),
    (-1, ValueError, r"Neuron -1 is out of range"),
    ([("classifier.9", 0)], ValueError, r"target level='classifier.9' is not one of the analysed levels"),
    ([("classifier.1", 24)], ValueError, r"Neuron 24 is out of range for level 'classifier.1'"),
    ("softmax", TypeError, r"target must be a class index"),
    ([], ValueError, r"target is empty"),
    ([3], TypeError, r"target entries must be \(level, index\) pairs"),
]


@pytest.mark.parametrize(("target", "error", "message"), TARGETS, ids=[repr(c[0]) for c in TARGETS])
def test_bad_targets(target, error, message) -> None:
    with pytest.raises(error, match=message):
        _ssa().dependency_graph(_vgg()[1], target=target)


INPUTS = [
    (torch.empty(0, 3, 16, 16), ValueError, r"inputs is empty"),
    ([], ValueError, r"inputs is empty"),
    (torch.randn(2, 3, 5), ValueError, r"The model raised RuntimeError on inputs of shape \(2, 3, 5\).*batch dimension first"),
    (torch.randn(2, 3, 16, 16).numpy(), TypeError, r"inputs must be a torch.Tensor .* torch.as_tensor"),
    ([torch.randn(2, 3, 16, 16), "x"], TypeError, r"inputs yielded a str"),
    (torch.randn(2, 3, 16, 16, dtype=torch.float64), TypeError, r"inputs are torch.float64 but the model computes in torch.float32"),
    (torch.full((2, 3, 16, 16), float("nan")), ValueError, r"inputs hold NaN or Inf"),
]  # fmt: skip


@pytest.mark.parametrize(("inputs", "error", "message"), INPUTS, ids=range(len(INPUTS)))
def test_bad_inputs(inputs, error, message) -> None:
    with pytest.raises(error, match=message):
        _ssa().dependency_graph(inputs, target=0)


def test_non_finite_activation_is_named() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3)).eval()
    with torch.no_grad():
        model[0].weight[1, 0] = float("inf")
    with pytest.raises(ValueError, match=r"Level '1' holds NaN or Inf values"):
        stepwise.StepwiseSensitivity(model, ["1", "softmax"]).dependency_graph(torch.ones(3, 3), target=0)


def test_non_finite_activation_in_a_later_batch_is_named() -> None:
    """The levels are checked on the first inputs; later batches are checked as they stream, on every path."""
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3)).eval()
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    inputs = torch.ones(6, 3)
    inputs[5] = 2e38  # finite, but 3 · 2e38 overflows float32 in the first layer
    for closed_form in (True, False):
        ssa = stepwise.StepwiseSensitivity(model, ["1", "softmax"], batch_size=2, closed_form=closed_form)
        with pytest.raises(ValueError, match=r"^Level '(0|1|softmax)' holds NaN or Inf values"):
            ssa.dependency_graph(inputs, target=0)


def test_bad_steps() -> None:
    ssa, x = _ssa(), _vgg()[1]
    with pytest.raises(ValueError, match=r"lower='softmax' must be below upper='features.3'"):
        ssa.relevance(x, upper="features.3", lower="softmax", neurons=[0])
    with pytest.raises(ValueError, match=r"upper='fc' is not one of the analysed levels"):
        ssa.relevance(x, upper="fc", lower="features.1", neurons=[0])
    with pytest.raises(ValueError, match=r"Neuron 8 is out of range for level 'features.3', which has 8 neurons"):
        ssa.outlier_counts(x, upper="features.3", lower="features.1", neurons=[1, 8])
    with pytest.raises(ValueError, match=r"neurons is empty"):
        ssa.relevance(x, upper="features.3", lower="features.1", neurons=[])
    with pytest.raises(TypeError, match=r"neurons must be ints"):
        ssa.relevance(x, upper="features.3", lower="features.1", neurons=[1.5])


def test_example_input_checks() -> None:
    with pytest.raises(TypeError, match="example_input must be a torch.Tensor"):
        stepwise.list_levels(VGGStyle(), [1, 2])
    with pytest.raises(ValueError, match="example_input is empty"):
        stepwise.default_levels(VGGStyle(), torch.empty(0, 3, 16, 16))


# ------------------------------------------------------------------------------------------ side effects


def _state(model: nn.Module) -> dict:
    return {
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grad": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "hooks": [
            (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks), len(m._backward_pre_hooks))
            for m in model.modules()
        ],
    }


def _assert_same_state(before: dict, after: dict) -> None:
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert after["hooks"] == before["hooks"]
    for a, b in zip(before["grad"], after["grad"]):
        assert (a is None and b is None) or torch.equal(a, b)


def _prepared_model() -> tuple[nn.Module, Tensor]:
    model, _, x, _ = build_case("resnet", torch.float32)
    model.train()  # a user's model in train mode, with some parameters frozen and a gradient already there
    model.layer1[0].conv1.weight.requires_grad_(False)
    model.fc.weight.grad = torch.ones_like(model.fc.weight)
    x.requires_grad_(True)
    return model, x


RESNET_LEVELS = ["relu", "layer1.0", "layer1.1", "layer2.0", "layer2.1", "softmax"]


@pytest.mark.parametrize("rule", ["gradient", "guided", "grad_x_activation"])
def test_no_trace_after_normal_calls(rule: str) -> None:
    model, x = _prepared_model()
    before = _state(model)
    ssa = stepwise.StepwiseSensitivity(model, RESNET_LEVELS, rule=rule, fence=0.5)
    with pytest.warns(UserWarning, match="model is in train mode; it is analysed in eval mode"):
        graph = ssa.dependency_graph(x, target=1)
    with pytest.warns(UserWarning, match="train mode"):
        ssa.relevance(x, upper="layer1.1", lower="layer1.0", neurons=[0, 1])
    assert graph.edges
    _assert_same_state(before, _state(model))
    assert x.requires_grad and x.grad is None


def test_no_trace_after_raising_calls() -> None:
    model, x = _prepared_model()
    before = _state(model)
    ssa = stepwise.StepwiseSensitivity(model, RESNET_LEVELS)
    with pytest.raises(ValueError):
        ssa.dependency_graph(x, target=99)
    with pytest.raises(ValueError):
        ssa.dependency_graph(torch.randn(2, 3, 7), target=0)
    _assert_same_state(before, _state(model))

    # A module that raises in the middle of a run, after the levels were checked on the first inputs.
    exploding = nn.Sequential(Explodes(), sequential_cnn()).train()
    inputs = torch.randn(6, 3, 8, 8)
    inputs[4, 0, 0, 0] = 1000.0
    before = _state(exploding)
    ssa = stepwise.StepwiseSensitivity(exploding, ["1.1", "1.4", "softmax"], batch_size=2)
    with pytest.warns(UserWarning, match="train mode"), pytest.raises(ValueError, match="The model raised RuntimeError"):
        ssa.dependency_graph(inputs, target=0)
    _assert_same_state(before, _state(exploding))
