"""ω equals independent per-(neuron, input) autograd through the same step, for every model kind and rule."""

from __future__ import annotations

import pytest
import torch
from tests.helpers import CASES, BasicBlock, assert_rows_close, build_case
from tests.reference import captum_guided, naive_relevance
from torch import nn

import stepwise
from stepwise.core.hooks import analysis_mode
from stepwise.core.levels import resolve_levels
from stepwise.ssa.step import step_forward
from stepwise.ssa.relevance import step_relevance

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}


def _steps(levels: list[str]) -> list[tuple[str, str]]:
    return list(zip(levels[:-1], levels[1:]))


def _neurons(ssa: stepwise.StepwiseSensitivity, inputs: torch.Tensor, upper: str) -> list[int]:
    """Up to six neurons of the upper level, first and last included."""
    infos = resolve_levels(ssa.model, inputs[:2], ssa.levels)
    size = next(info.n_neurons for info in infos if info.name == upper)
    return sorted({0, size - 1, *range(1, size, max(1, size // 4))})[:6]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    ("rule", "closed_form"), [("gradient", True), ("gradient", False), ("grad_x_activation", True)]
)
@pytest.mark.parametrize("case", sorted(CASES))
def test_relevance_equals_per_input_autograd(case: str, rule: str, closed_form: bool, dtype: torch.dtype) -> None:
    model, chain, inputs, levels = build_case(case, dtype)
    ssa = stepwise.StepwiseSensitivity(model, levels, rule=rule, batch_size=3, closed_form=closed_form)
    for lower, upper in _steps(levels):
        neurons = _neurons(ssa, inputs, upper)
        omega = ssa.relevance(inputs, upper=upper, lower=lower, neurons=neurons)
        expected = naive_relevance(chain, inputs, lower, upper, neurons, rule)
        assert omega.dtype == dtype
        assert omega.abs().max() > 0
        assert_rows_close(omega, expected, TOLERANCE[dtype])


@pytest.mark.parametrize("closed_form", [True, False])
@pytest.mark.parametrize("case", sorted(CASES))
def test_guided_equals_captum_on_the_step_as_a_submodel(case: str, closed_form: bool) -> None:
    model, chain, inputs, levels = build_case(case, torch.float64)
    ssa = stepwise.StepwiseSensitivity(model, levels, rule="guided", closed_form=closed_form)
    plain = stepwise.StepwiseSensitivity(model, levels, rule="gradient")
    differs = False
    for lower, upper in _steps(levels):
        neurons = _neurons(ssa, inputs, upper)
        omega = ssa.relevance(inputs, upper=upper, lower=lower, neurons=neurons)
        expected = captum_guided(chain, inputs, lower, upper, neurons)
        assert_rows_close(omega, expected, TOLERANCE[torch.float64])
        differs |= not torch.allclose(omega, plain.relevance(inputs, upper=upper, lower=lower, neurons=neurons))
    # A step whose only nn.ReLU produces the upper level gets a positive gradient there, so guided equals the
    # gradient; the ResNet's block steps have a ReLU inside, where guided backpropagation changes ω.
    assert differs == (case == "resnet")


def test_guided_differs_from_gradient_on_a_step_across_two_relus() -> None:
    model, chain, inputs, _ = build_case("sequential", torch.float64)
    levels = ["input", "4", "softmax"]
    guided = stepwise.StepwiseSensitivity(model, levels, rule="guided")
    omega = guided.relevance(inputs, upper="4", lower="input", neurons=range(12))
    assert_rows_close(omega, captum_guided(chain, inputs, "input", "4", range(12)), 1e-10)
    plain = stepwise.StepwiseSensitivity(model, levels).relevance(inputs, upper="4", lower="input", neurons=range(12))
    assert not torch.allclose(omega, plain)


def test_linear_relu_linear_jacobian_by_hand() -> None:
    """Linear-ReLU-Linear: the step's Jacobian is W2 · diag(z > 0), checked with autograd.functional too."""
    model = nn.Sequential(nn.Linear(6, 9), nn.ReLU(), nn.Linear(9, 4)).double().eval()
    x = torch.randn(7, 6, dtype=torch.float64)
    ssa = stepwise.StepwiseSensitivity(model, ["input", "1", "2"])
    omega = ssa.relevance(x, upper="2", lower="input", neurons=range(4))
    z = model[0](x)
    by_hand = torch.einsum("nk,ik->nik", model[2].weight, (z > 0).double()) @ model[0].weight
    assert_rows_close(omega, by_hand, 1e-12)
    jacobian = torch.autograd.functional.jacobian(lambda v: model(v.unsqueeze(0))[0], x[3])
    assert_rows_close(omega[:, 3], jacobian, 1e-12)


def test_skip_connection_from_below_is_held_constant() -> None:
    """Lower level inside a block: the block's skip (from below the lower level) enters as a constant."""
    block = BasicBlock(4, 6, stride=2).double().eval()
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), block).double().eval()
    x = torch.randn(3, 2, 8, 8, dtype=torch.float64)
    ssa = stepwise.StepwiseSensitivity(model, ["1.conv1", "1"])
    omega = ssa.relevance(x, upper="1", lower="1.conv1", neurons=range(6))
    with torch.no_grad():
        below = model[0](x)
        skip = block.downsample(below)
        c = block.conv1(below)
    expected = []
    for n in range(6):
        rows = []
        for i in range(3):
            leaf = c[i : i + 1].clone().requires_grad_(True)
            out = torch.relu(block.bn2(block.conv2(torch.relu(block.bn1(leaf)))) + skip[i : i + 1])
            (g,) = torch.autograd.grad(out[0, n].mean(), leaf)
            rows.append(g[0].flatten(1).mean(1))
        expected.append(torch.stack(rows))
    assert_rows_close(omega, torch.stack(expected), 1e-10)


@pytest.mark.parametrize("case", ["sequential", "resnet"])
def test_batch_size_does_not_change_results(case: str) -> None:
    model, _, inputs, levels = build_case(case, torch.float64)
    inputs = torch.cat([inputs, torch.randn_like(inputs), torch.randn_like(inputs)])  # 15 inputs
    results = []
    for batch_size in (1, 7, None):
        ssa = stepwise.StepwiseSensitivity(model, levels, batch_size=batch_size)
        results.append(ssa.relevance(inputs, upper=levels[2], lower=levels[1], neurons=[0, 2, 3]))
    for other in results[1:]:
        assert_rows_close(other, results[0], 1e-12)


def test_neuron_chunks_do_not_change_results() -> None:
    model, _, inputs, levels = build_case("vgg", torch.float64)
    with torch.enable_grad(), analysis_mode(model):
        infos = resolve_levels(model, inputs, levels)
        leaf, upper = step_forward(model, inputs, infos[1], infos[2])
        whole = step_relevance(leaf, upper, range(16), rule="gradient")
        chunked = step_relevance(leaf, upper, range(16), rule="gradient", chunk_size=3)
    assert torch.equal(whole, chunked) or torch.allclose(whole, chunked, rtol=0, atol=1e-14)


def test_only_the_step_runs() -> None:
    """During relevance, modules computing the lower level run once per input batch; those above never."""
    model, chain, inputs, levels = build_case("vgg", torch.float64)
    inputs = torch.cat([inputs, inputs + 0.1])  # 10 inputs, 4 batches of 3
    ssa = stepwise.StepwiseSensitivity(model, levels, batch_size=3)
    lower, upper = "features.6", "classifier.1"
    ssa.relevance(inputs, upper=upper, lower=lower, neurons=[0])  # resolves and caches the levels
    calls: dict[str, int] = {}

    def counter(name):
        def hook(module, args):
            calls[name] = calls.get(name, 0) + 1

        return hook

    handles = [m.register_forward_pre_hook(counter(n)) for n, m in model.named_modules() if n]
    try:
        ssa.relevance(inputs, upper=upper, lower=lower, neurons=range(24))
    finally:
        for h in handles:
            h.remove()
    below = [f"features.{i}" for i in range(7)]
    assert all(calls[name] == 4 for name in below), calls
    above = ["classifier.2", "classifier.3", "classifier.4", "classifier.5", "classifier.6"]
    assert all(calls.get(name, 0) == 0 for name in above), calls


def test_float64_model_gives_float64_relevance_on_its_device() -> None:
    model, _, inputs, levels = build_case("mlp", torch.float64)
    omega = stepwise.StepwiseSensitivity(model, levels).relevance(inputs, upper="act2", lower="act1", neurons=[1])
    assert omega.dtype == torch.float64 and omega.device == inputs.device


def test_channel_dim_for_token_layouts() -> None:
    """(N, T, D) activations with channel_dim=2: a neuron is a feature averaged over tokens."""
    model = nn.Sequential(nn.Linear(5, 7), nn.GELU(), nn.Linear(7, 3), nn.Tanh()).double().eval()
    x = torch.randn(4, 6, 5, dtype=torch.float64)  # 6 tokens
    ssa = stepwise.StepwiseSensitivity(model, ["1", "3"], channel_dim=2)
    omega = ssa.relevance(x, upper="3", lower="1", neurons=[0, 2])
    h = model[1](model[0](x)).detach()
    expected = []
    for n in (0, 2):
        rows = []
        for i in range(4):
            leaf = h[i : i + 1].clone().requires_grad_(True)
            (g,) = torch.autograd.grad(model[3](model[2](leaf))[0, :, n].mean(), leaf)
            rows.append(g[0].mean(0))
        expected.append(torch.stack(rows))
    assert_rows_close(omega, torch.stack(expected), 1e-12)
