"""perturb: a value that differs between resamples by rounding only does not vary; a real small variance does.

The rows of one batch may round differently on some CPUs, so identical resamples can give outputs and activations
that differ in their last bits. ``RowUlps`` makes that happen on every machine: it moves row i of its input by
``i % 4`` units in the last place. The bound is ``ROUNDING_ULPS`` units of the dtype's epsilon relative to the
values' magnitude (perturb._statistics); the tests put values a factor 8 on either side of it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import perturb
from perturb._statistics import ROUNDING_ULPS
from stepwise.core.capture import capture
from stepwise.core.levels import resolve_levels

CONSTANT = "the same on every resample"


class RowUlps(nn.Module):
    """Row i of the input moved up by ``i % 4`` units in the last place; zeros stay zero (they are exact)."""

    def forward(self, x: Tensor) -> Tensor:
        out = x.clone()
        for i in range(len(x)):
            for _ in range(i % 4):
                out[i] = torch.where(out[i] == 0, out[i], torch.nextafter(out[i], torch.full_like(out[i], np.inf)))
        return out


def _init(model: nn.Module, seed: int) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=generator) / fan_in**0.5 * (1.0 if p.dim() > 1 else 0.1))
    return model.eval()


def noisy_rows_mlp(dtype: torch.dtype) -> nn.Sequential:
    """Linear/ReLU/RowUlps/Linear/Tanh/RowUlps/Linear/RowUlps on (6,) vectors, 4 classes."""
    net = nn.Sequential(
        nn.Linear(6, 10), nn.ReLU(), RowUlps(), nn.Linear(10, 8), nn.Tanh(), RowUlps(), nn.Linear(8, 4), RowUlps()
    )  # fmt: skip
    return _init(net, seed=12).to(dtype)


def noisy_rows_cnn(dtype: torch.dtype) -> nn.Sequential:
    """Conv/ReLU/RowUlps/Flatten/Linear/RowUlps on (2, 5, 5) images, 3 classes."""
    net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), RowUlps(), nn.Flatten(), nn.Linear(36, 3), RowUlps())
    return _init(net, seed=13).to(dtype)


MODELS = {
    # name: (model factory, one input, levels)
    "mlp": (noisy_rows_mlp, lambda: torch.rand(6, generator=torch.Generator().manual_seed(4)) + 0.2, ["2", "5"]),
    "cnn": (noisy_rows_cnn, lambda: torch.rand(2, 5, 5, generator=torch.Generator().manual_seed(5)) + 0.2, ["2"]),
}


@pytest.mark.parametrize("output", ["probability", "logit"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_rows_that_differ_in_their_last_bits_do_not_vary(name: str, dtype: torch.dtype, output: str) -> None:
    model_of, input_of, levels = MODELS[name]
    model, image = model_of(dtype), input_of().to(dtype)
    batch = image[None].expand(8, *image.shape).clone()
    acts = capture(model, batch, resolve_levels(model, batch, [*levels, "output"]))
    # the test is real: the rows differ bitwise at every level (not at exact zeros, such as ReLU's)
    for level in [*levels, "output"]:
        flat = acts[level].reshape(8, -1)
        assert (flat != flat[:1]).any(dim=0).sum() > 0, level

    with pytest.warns(UserWarning, match=CONSTANT):
        ranking = perturb.rank_neurons(model, image, levels, target=1, n_samples=8, sigma=0.0, output=output)
    for level in ranking.levels:
        assert (ranking.scores("correlation", level) == 0).all(), level
        precision = ranking.scores("precision", level)
        assert torch.isinf(precision[~torch.isnan(precision)]).all(), level  # no position varies
        assert (~torch.isnan(precision)).any(), level
    assert len(torch.unique(ranking.outputs)) > 1  # o itself differs in its last bits


def test_a_constant_output_warns_and_a_real_activation_variance_still_counts() -> None:
    """The output does not depend on the input (zero weights): bitwise constant, while level '1' varies."""
    net = _init(nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 4)), seed=14)
    with torch.no_grad():
        net[2].weight.zero_()
    image = torch.rand(6, generator=torch.Generator().manual_seed(6)) + 0.2
    for output in ("probability", "logit"):
        with pytest.warns(UserWarning, match=CONSTANT):
            ranking = perturb.rank_neurons(
                net, image, ["1"], target=2, n_samples=10, sigma=0.1, output=output, threshold=0.0
            )
        assert torch.equal(ranking.outputs, ranking.outputs[:1].expand(10))
        assert (ranking.scores("correlation", "1") == 0).all()
        samples = perturb.resample(image, n_samples=10, sigma=0.1, seed=0)
        with torch.no_grad():
            a = net[1](net[0](samples)).double().numpy()
        live = a.var(axis=0) > 0
        assert live.any()
        precision = ranking.scores("precision", "1").numpy()
        np.testing.assert_allclose(precision[live], 1 / a.var(axis=0)[live], rtol=1e-9)
        assert np.isinf(precision[~live]).all()  # units the ReLU keeps at 0


def alternating(value: Tensor, relative: float, n: int) -> Tensor:
    """n samples of ``value`` (D,) moved by +relative and -relative in turn: each element's relative std is
    ``relative`` (up to the rounding of the samples)."""
    signs = torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(n // 2)
    return (value.double() * (1 + relative * signs[:, None])).to(value.dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_bound_sits_between_a_factor_8_below_and_8_above(dtype: torch.dtype) -> None:
    """With the identity as model, o is one input element (output='logit'): variances a factor 64 above the
    bound count, for the input level and for o; a factor 64 below, they are rounding noise."""
    eps, n = torch.finfo(dtype).eps, 8
    value = torch.full((4,), 1.5, dtype=dtype)  # all logits alike: max |z| = |o|
    model = nn.Identity().eval()
    above = alternating(value, 8 * ROUNDING_ULPS * eps, n)
    below = alternating(value, ROUNDING_ULPS * eps / 8, n)
    assert (below != below[:1]).any()  # not bitwise constant

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # o varies: no warning
        varying = perturb.rank_neurons(model, value, ["input"], target=0, samples=above, output="logit")
    d = (above - above[:1]).double().numpy()  # exact differences (Sterbenz): the variance without cancellation
    np.testing.assert_allclose(varying.scores("precision", "input").numpy(), 1 / d.var(axis=0), rtol=1e-9)
    # o is element 0 itself: |r| = 1 for unit 0; units 1 to 3 move in step with it
    np.testing.assert_allclose(varying.scores("correlation", "input").numpy(), np.ones(4), rtol=1e-9)

    with pytest.warns(UserWarning, match=CONSTANT):
        noise = perturb.rank_neurons(model, value, ["input"], target=0, samples=below, output="logit")
    assert torch.isinf(noise.scores("precision", "input")).all()
    assert (noise.scores("correlation", "input") == 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_one_position_of_a_neuron_at_rounding_noise_is_left_out(dtype: torch.dtype) -> None:
    """A channel of the input level with two positions: one varies for real, one by rounding only. Only the
    first enters the neuron's mean |r| and variance."""
    eps, n = torch.finfo(dtype).eps, 8
    image = torch.full((1, 1, 2), 1.5, dtype=dtype)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2)).to(dtype).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
        model[1].bias.zero_()
    real = 1.5 * (1 + 0.01 * torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(n // 2))
    # uncorrelated with the real one: if it counted, the neuron's mean |r| would be (1 + 0) / 2
    rounding = 1.5 * (
        1 + ROUNDING_ULPS * eps / 8 * torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64).repeat(n // 4)
    )
    samples = torch.stack([real, rounding], dim=1).reshape(n, 1, 1, 2).to(dtype)
    assert (samples[:, 0, 0, 1] != samples[0, 0, 0, 1]).any()
    ranking = perturb.rank_neurons(model, image, ["input"], target=0, samples=samples, output="logit")
    np.testing.assert_allclose(ranking.scores("correlation", "input").numpy(), [1.0], rtol=1e-9)
    a = samples.double().numpy().reshape(n, 2)
    expected = 1 / np.mean([(a[:, 0] - a[0, 0]).var(), 0.0])  # the rounding position adds 0 to the variance
    np.testing.assert_allclose(ranking.scores("precision", "input").numpy(), [expected], rtol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_probability_bound_follows_the_softmax(dtype: torch.dtype) -> None:
    """o = softmax(z)_0 with four equal logits (p = 1/4), z_0 moved by +dz and -dz in turn: std(o) is
    p (1 - p) dz. Twice the documented bound δ = 2 p (1 - p) R eps max|z| + R eps64 p counts as variance, half of
    it does not."""
    eps, eps64, n = torch.finfo(dtype).eps, torch.finfo(torch.float64).eps, 8
    value, p = torch.full((4,), 1.5, dtype=dtype), 0.25
    delta = 2 * p * (1 - p) * ROUNDING_ULPS * eps * 1.5 + ROUNDING_ULPS * eps64 * p
    model = nn.Identity().eval()

    def moved(factor: float) -> Tensor:
        dz = factor * delta / (p * (1 - p))
        samples = value.double().repeat(n, 1)
        samples[:, 0] += dz * torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(n // 2)
        return samples.to(dtype)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        above = perturb.rank_neurons(model, value, ["input"], target=0, samples=moved(2.0), threshold=0.0)
    o = above.outputs.numpy()
    assert 3.0 < o.var() / delta**2 < 5.0  # the test sits where it says
    assert above.scores("correlation", "input")[0] > 0.99
    with pytest.warns(UserWarning, match=CONSTANT):
        below = perturb.rank_neurons(model, value, ["input"], target=0, samples=moved(0.5), threshold=0.0)
    assert 0.2 < below.outputs.numpy().var() / delta**2 < 0.3
    assert (below.scores("correlation", "input") == 0).all()
