"""The closed form of single-layer steps equals per-(neuron, input) autograd, and applies only where it holds."""

from __future__ import annotations

import pytest
import torch
from tests.helpers import CASES, BasicBlock, assert_rows_close, build_case, heavy_tailed, sequential_chain, with_softmax
from tests.reference import naive_relevance
from torch import Tensor, nn
from torch.nn import functional as F

import stepwise
from stepwise.ssa.closed_form import BlockStep, LayerStep, Unit
from stepwise.ssa.plan import plan_closed_form
from stepwise.core.levels import resolve_levels


class FunctionalReLU(nn.Module):
    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv(x))


def _net(*layers: nn.Module) -> nn.Sequential:
    return heavy_tailed(nn.Sequential(*layers)).double().eval()


# (model, input shape, lower level, upper level): each step must be planned as a closed-form layer step.
LAYER_STEPS = {
    "conv3x3 pad1": (lambda: _net(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU()), (3, 9, 9), "input", "1"),
    "conv stride2 pad0": (lambda: _net(nn.Conv2d(3, 6, 3, stride=2), nn.ReLU()), (3, 10, 9), "input", "1"),
    "conv 3x5 pad2 dilation2": (
        lambda: _net(nn.Conv2d(3, 5, (3, 5), padding=2, dilation=2, stride=(1, 2)), nn.ReLU(inplace=True)),
        (3, 11, 12),
        "input",
        "1",
    ),
    "conv same even kernel": (lambda: _net(nn.Conv2d(3, 4, 4, padding="same"), nn.Tanh()), (3, 7, 8), "input", "1"),
    "conv1d": (lambda: _net(nn.Conv1d(2, 5, 5, padding=1), nn.GELU()), (2, 17), "input", "1"),
    "conv3d": (lambda: _net(nn.Conv3d(2, 3, 3, padding=1), nn.ReLU()), (2, 5, 6, 4), "input", "1"),
    "maxpool then conv": (
        lambda: _net(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU()),
        (3, 12, 12),
        "1",
        "4",
    ),
    "avgpool and dropout then conv": (
        lambda: _net(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Dropout2d(), nn.Conv2d(4, 6, 3), nn.LeakyReLU(0.1, inplace=True)),
        (3, 12, 12),
        "1",
        "5",
    ),
    "conv batchnorm relu": (
        lambda: _net(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU()),
        (3, 10, 10),
        "1",
        "4",
    ),
    "conv without activation": (lambda: _net(nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 4, 1)), (3, 6, 6), "0", "1"),
    "functional relu": (lambda: _net(FunctionalReLU(nn.Conv2d(3, 6, 3, padding=1))), (3, 7, 7), "input", "0"),
    "maxpool flatten linear": (
        lambda: _net(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 16, 7), nn.ReLU()),
        (3, 10, 10),
        "1",
        "5",
    ),
    "adaptive avgpool flatten linear prelu": (
        lambda: _net(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(3), nn.Flatten(), nn.Linear(36, 7), nn.PReLU()),
        (3, 10, 11),
        "1",
        "5",
    ),
    "linear batchnorm relu": (
        lambda: _net(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 9), nn.BatchNorm1d(9), nn.ReLU()),
        (5,),
        "1",
        "4",
    ),
    "logits": (lambda: _net(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(), nn.Linear(8, 4)), (5,), "1", "3"),
    "softmax": (lambda: _net(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 4)), (5,), "1", "softmax"),
    "batchnorm softmax": (lambda: _net(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 4), nn.BatchNorm1d(4)), (5,), "1", "softmax"),
    "flatten softmax": (lambda: _net(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(27, 4)), (2, 5, 5), "1", "softmax"),
}  # fmt: skip


def _batchnorm_statistics(model: nn.Module) -> None:
    generator = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.copy_(0.3 * torch.randn(m.num_features, generator=generator))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=generator))
            m.weight.data.copy_(torch.randn(m.num_features, generator=generator))  # negative scales too


class PlainBlock(nn.Module):
    """A residual block without a final activation, with a GELU inside."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 5, 3, padding=1)
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(5, 4, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.act(self.conv1(x))) + x


BLOCK_STEPS = {
    "two convs": (lambda: _net(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU()), (3, 9, 9), "input", "3"),
    "basic block": (lambda: _net(nn.Conv2d(3, 6, 3), nn.ReLU(), BasicBlock(6, 6)), (3, 10, 10), "1", "2"),
    "basic block after maxpool": (
        lambda: _net(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.MaxPool2d(3, 2, 1), BasicBlock(6, 6)),
        (3, 11, 11),
        "1",
        "3",
    ),
    "downsampling block": (lambda: _net(nn.Conv2d(3, 4, 3), nn.ReLU(), BasicBlock(4, 7, stride=2)), (3, 11, 12), "1", "2"),
    "block without final activation": (lambda: _net(nn.Conv2d(3, 4, 3), nn.ReLU(), PlainBlock()), (3, 8, 8), "1", "2"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(LAYER_STEPS) + sorted(BLOCK_STEPS))
def test_closed_form_equals_autograd(name: str) -> None:
    factory, shape, lower, upper = {**LAYER_STEPS, **BLOCK_STEPS}[name]
    model = factory()
    _batchnorm_statistics(model)
    inputs = torch.randn((6,) + shape, dtype=torch.float64)
    levels = [lower, upper]
    infos = resolve_levels(model, inputs[:2], levels)
    plan = plan_closed_form(model, infos)
    assert list(plan) == [1], "the step should be computed in closed form"
    assert isinstance(plan[1], BlockStep if name in BLOCK_STEPS else LayerStep)
    ssa = stepwise.StepwiseSensitivity(model, levels, batch_size=4)
    width = infos[1].n_neurons
    omega = ssa.relevance(inputs, upper=upper, lower=lower, neurons=range(width))
    chain = sequential_chain(model)
    if isinstance(model[0], FunctionalReLU):
        chain = [("0", model[0])]
    expected = naive_relevance(with_softmax(chain), inputs, lower, upper, range(width))
    assert omega.abs().max() > 0
    assert_rows_close(omega, expected, 1e-10)
    autograd = stepwise.StepwiseSensitivity(model, levels, batch_size=4, closed_form=False)
    assert_rows_close(autograd.relevance(inputs, upper=upper, lower=lower, neurons=range(width)), expected, 1e-10)
    for sign in ("positive", "both"):
        counts = stepwise.StepwiseSensitivity(model, levels, sign=sign, fence=0.8).outlier_counts(
            inputs, upper=upper, lower=lower, neurons=range(width)
        )
        reference = stepwise.StepwiseSensitivity(model, levels, sign=sign, fence=0.8, closed_form=False)
        assert torch.equal(counts, reference.outlier_counts(inputs, upper=upper, lower=lower, neurons=range(width)))


NOT_LAYER_STEPS = {
    "three convs": (
        lambda: _net(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU()),
        (3, 9, 9),
        "input",
        "5",
    ),
    "avgpool with padding": (
        lambda: _net(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AvgPool2d(3, padding=1), nn.Conv2d(4, 5, 3), nn.ReLU()),
        (3, 9, 9),
        "1",
        "4",
    ),
    "grouped conv": (lambda: _net(nn.Conv2d(4, 4, 3, groups=2), nn.ReLU()), (4, 6, 6), "input", "1"),
    "reflect padding": (lambda: _net(nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), nn.ReLU()), (3, 6, 6), "input", "1"),
    "softmax module is not elementwise": (lambda: _net(nn.Linear(4, 5), nn.Softmax(dim=1)), (4,), "input", "1"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(NOT_LAYER_STEPS))
def test_other_steps_use_autograd(name: str) -> None:
    factory, shape, lower, upper = NOT_LAYER_STEPS[name]
    model = factory()
    inputs = torch.randn((5,) + shape, dtype=torch.float64)
    infos = resolve_levels(model, inputs[:2], [lower, upper])
    assert plan_closed_form(model, infos) == {}
    omega = stepwise.StepwiseSensitivity(model, [lower, upper]).relevance(
        inputs, upper=upper, lower=lower, neurons=[0, 1]
    )
    expected = naive_relevance(with_softmax(sequential_chain(model)), inputs, lower, upper, [0, 1])
    assert_rows_close(omega, expected, 1e-10)


def test_plans_of_the_test_models() -> None:
    # The ResNet's steps are blocks, its top step is pooling, fc and softmax; the MLP's middle step mixes units by a permute.
    expected = {"sequential": [1, 2, 3, 4], "vgg": [1, 2, 3, 4, 5], "resnet": [1, 2, 3, 4, 5], "mlp": [1, 3]}
    for case in CASES:
        model, _, inputs, levels = build_case(case)
        infos = resolve_levels(model, inputs[:2], levels)
        assert sorted(plan_closed_form(model, infos)) == expected[case], case


def test_rules_without_closed_form_use_autograd() -> None:
    model, _, inputs, levels = build_case("vgg")
    ssa = stepwise.StepwiseSensitivity(model, levels, rule="grad_x_activation")
    ssa.relevance(inputs, upper=levels[1], lower=levels[0], neurons=[0])
    assert all(plan == {} for _, plan in ssa._resolved.values())


def test_graph_is_the_same_with_and_without_closed_form() -> None:
    model, _, _, levels = build_case("vgg", torch.float32)
    inputs = torch.randn(40, 3, 16, 16)
    for sign in ("positive", "both"):
        options = dict(sign=sign, fence=0.7)
        fast = stepwise.StepwiseSensitivity(model, levels, **options).dependency_graph(inputs, target=2)
        slow = stepwise.StepwiseSensitivity(model, levels, **options, closed_form=False).dependency_graph(
            inputs, target=2
        )
        assert len(fast.edges) > 10
        assert set(fast.edges) == set(slow.edges)
        for u, v, data in fast.edges(data=True):
            assert slow.edges[u, v]["count"] == data["count"]
            assert slow.edges[u, v]["relevance"] == pytest.approx(data["relevance"], rel=1e-4, abs=1e-9)


def test_only_one_forward_pass_per_batch_for_a_closed_form_graph() -> None:
    model, _, _, levels = build_case("vgg", torch.float32)
    inputs = torch.randn(12, 3, 16, 16)
    ssa = stepwise.StepwiseSensitivity(model, levels, batch_size=5)
    ssa.dependency_graph(inputs, target=0)
    calls = []
    handle = model.features[0].register_forward_pre_hook(lambda m, a: calls.append(1))
    try:
        ssa.dependency_graph(inputs, target=0)
    finally:
        handle.remove()
    assert len(calls) == 3


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(2, 3, 3, padding=1),
        nn.Conv2d(2, 3, (3, 5), stride=(2, 1), padding=(1, 2)),
        nn.Conv2d(2, 3, 3, padding=2, dilation=2),
        nn.Conv2d(2, 3, 4, padding="same"),
    ],
)
@pytest.mark.parametrize("exact_float32_count", [1 << 24, 1])  # 1: every map takes the float64 row-sum path
def test_relu_window_counts_equal_the_separable_counts(
    conv: nn.Conv2d, exact_float32_count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The blocked float count over ReLU masks against the plain tensordot of the mask with V, per offset.
    monkeypatch.setattr("stepwise.ssa.closed_form._EXACT_FLOAT32_COUNT", exact_float32_count)
    unit = Unit(conv, activation=nn.ReLU())
    x = torch.randn(5, 2, 9, 11)
    unit.input_size = tuple(x.shape[2:])
    z = conv(x).detach()
    z[0, 0, 2, 3] = 0.0  # an exact zero is closed
    scratch = torch.empty(2 * z[0, 0].numel() + 7)  # a little over two maps: blocks of two, the last one short
    counts, finite = unit.relu_window_counts(z, scratch)
    assert finite
    expected = unit.window_counts(z > 0)
    assert counts.dtype == conv.weight.dtype
    assert counts.shape == (5, 3, conv.kernel_size[0] * conv.kernel_size[1])
    assert torch.equal(counts, expected)
    assert counts.min() < counts.max()


def _ones_conv() -> nn.Sequential:
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.ReLU()).eval()
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].weight[1, 0, 0].fill_(-1.0)
    return model


def test_huge_finite_activations_whose_sum_overflows_are_not_an_error() -> None:
    # z reaches 9e37 (finite in float32); the sum of a level overflows, so the exact check must clear it.
    model, inputs = _ones_conv(), torch.full((4, 1, 5, 6), 1e37)
    inputs[1:, :, 2:] = -1.0
    ssa = stepwise.StepwiseSensitivity(model, ["input", "1"], batch_size=2)
    step = ssa._prepare(inputs)[2][1]  # the step is a closed-form ReLU-convolution step
    step.unit.input_size = (5, 6)
    assert not step.unit.relu_window_counts(model[0](inputs[:2]).detach(), torch.empty(100))[1]  # the sum overflows
    counts = ssa.outlier_counts(inputs, upper="1", lower="input", neurons=[0, 1])
    slow = stepwise.StepwiseSensitivity(model, ["input", "1"], batch_size=2, closed_form=False)
    assert torch.equal(counts, slow.outlier_counts(inputs, upper="1", lower="input", neurons=[0, 1]))


def test_non_finite_pre_activation_of_a_relu_convolution_is_named() -> None:
    model, inputs = _ones_conv(), torch.ones(4, 1, 5, 6)
    inputs[3, 0, 2, 2:4] = 3e38  # finite, but their window sums overflow, in the second batch only
    ssa = stepwise.StepwiseSensitivity(model, ["input", "1"], batch_size=2)
    with pytest.raises(ValueError, match=r"^Level '1' holds NaN or Inf values"):
        ssa.dependency_graph(inputs, target=[("1", 0)])


@pytest.mark.parametrize("name", sorted(LAYER_STEPS))
def test_sums_of_relevance_over_inputs(name: str) -> None:
    # A convolution sums ω from its window counts summed over inputs; every step must equal summing ω itself.
    factory, shape, lower, upper = LAYER_STEPS[name]
    model = factory()
    _batchnorm_statistics(model)
    inputs = torch.randn((7,) + shape, dtype=torch.float64)
    ssa = stepwise.StepwiseSensitivity(model, [lower, upper], batch_size=3, fence=0.8)
    neurons = range(resolve_levels(model, inputs[:2], [lower, upper])[1].n_neurons)
    kept = ssa._run_step(inputs, upper, lower, neurons, keep_omega=True)
    fast = ssa._run_step(inputs, upper, lower, neurons, keep_omega=False)
    assert kept.omega is not None and fast.omega is None
    assert torch.equal(fast.counts, kept.counts)
    assert fast.omega_sum.dtype == torch.float64
    assert_rows_close(fast.omega_sum.unsqueeze(1), kept.omega.sum(dim=1, keepdim=True), 1e-12)
