"""The statistics of :func:`perturb.rank_neurons`: shifted float64 sums over the resamples, the scores computed
from them, and the bound below which a variance is rounding noise.

Rounding noise
--------------
The rows of one batch do not all go through a model by the same code path (vector lanes, the blocking of a matrix
product differ between CPUs), so identical resamples can give values that differ in their last bits. Whether a
value varies across the resamples therefore never rests on bitwise equality: a variance at most the rounding-noise
bound of the values' magnitude counts as zero.

Let ε be the machine epsilon of the dtype the values were computed in (``torch.finfo(dtype).eps``) and
R = :data:`ROUNDING_ULPS`. Values that differ only by rounding lie within R·ε·|a_i| of one common value, so their
population variance is at most mean_i (R·ε·a_i)^2 = (R·ε)^2 · mean(a^2). The float64 sums add their own error:
the variance mean(d^2) − mean(d)^2 of n shifted values d (d = a − a_1) is off by at most about 3·n·ε64·mean(d^2),
ε64 being float64's epsilon. Hence, for an activation position,

    τ = (R·ε)^2 · mean(a^2) + 3·n·ε64·mean(d^2),

and a position whose variance is at most τ does not vary: it is left out of its neuron's mean |r| and adds 0 to
its neuron's variance (so a neuron none of whose positions varies has ``precision`` +inf).

For the followed output o, the magnitude is that of the logits z it is computed from (a logit near 0 carries the
rounding noise of the whole logit vector): with m_i = max_c |z_ic| in the model's dtype, o = z_t lies within
δ_i = R·ε·m_i of its value, and o = softmax(z)_t within δ_i = 2·p_i·(1 − p_i)·R·ε·m_i + R·ε64·p_i (a change dz moves
p_t by p_t·Σ_c p_c·(dz_t − dz_c), at most p_t·(1 − p_t)·2·max|dz|; the last term is the float64 softmax's own
rounding). o does not vary when its variance is at most mean(δ_i^2) + 3·n·ε64·mean((o − o_1)^2).

A value computed with heavy cancellation (large terms that nearly cancel) can carry more noise than its own
magnitude shows; with a real noise level ``sigma`` such rounding is far below the variance the noise causes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from stepwise.core.levels import LevelInfo

__all__ = [
    "CHUNK",
    "ROUNDING_ULPS",
    "Sums",
    "finish",
    "flat",
    "output_moments",
    "row_sum_and_variance",
    "target_output",
]

#: Units of rounding (multiples of the dtype's epsilon, relative to the values' magnitude) by which values that
#: should be equal may differ between the rows of a batch; see the module docstring.
ROUNDING_ULPS = 64
#: Elements of float64 data processed at a time by the statistics: a block that stays in cache, and few
#: enough blocks that the per-operation cost of the thread pool does not add up.
CHUNK = 1 << 21
_EPS64 = torch.finfo(torch.float64).eps


@dataclasses.dataclass
class Sums:
    """Shifted float64 sums over resamples for one level, flattened to K = n_neurons * positions columns."""

    shift: Tensor  # (K,) the first resample's activation, in the model's dtype
    s1: Tensor  # (K,) sum of d, d = activation - shift
    s2: Tensor  # (K,) sum of d^2
    sxo: Tensor  # (K,) sum of d * (o - o_shift)

    @classmethod
    def start(cls, first: Tensor) -> Sums:
        shift = first.clone()
        s1, s2, sxo = torch.zeros(3, len(shift), dtype=torch.float64, device=shift.device)
        return cls(shift, s1, s2, sxo)

    def add(self, parts: Sequence[Tensor], weights: Tensor) -> None:
        """Add consecutive batches ``parts`` (b_j, K) in the model's dtype; ``weights`` (2, sum b_j) holds
        ones and o - o_shift. Column blocks of all the batches are gathered into one float64 block, so that
        each accumulator is read and written once per group rather than once per batch."""
        rows, width = sum(len(part) for part in parts), len(self.shift)
        step = max(1, CHUNK // rows)
        block = torch.empty(rows, min(step, width), dtype=torch.float64, device=self.shift.device)
        for start in range(0, width, step):
            cols = slice(start, start + step)
            d = torch.cat([part[:, cols] for part in parts], out=block[:, : min(step, width - start)])
            d -= self.shift[cols]
            both = weights @ d
            self.s1[cols] += both[0]
            self.sxo[cols] += both[1]
            self.s2[cols] += d.square_().sum(0)


def flat(activation: Tensor, info: LevelInfo) -> Tensor:
    """(b, n_neurons * positions) with the neuron dimension first after the batch."""
    return activation.movedim(info.channel_dim, 1).reshape(activation.shape[0], -1)


def target_output(logits: Tensor, target: int, output: str) -> tuple[Tensor, Tensor]:
    """o per input and the square of its rounding-noise bound δ (module docstring), both float64 of shape (b,).

    ``output`` is ``'probability'`` (the target's softmax probability) or ``'logit'``.
    """
    units = ROUNDING_ULPS * torch.finfo(logits.dtype).eps * logits.detach().abs().amax(dim=1).to(torch.float64)
    logits = logits.to(torch.float64)
    if output == "probability":
        p = torch.softmax(logits, dim=1)[:, target]
        return p, (2 * p * (1 - p) * units + ROUNDING_ULPS * _EPS64 * p).square()
    return logits[:, target], units.square()


def output_moments(o: Tensor, noise: Tensor, shift: float) -> tuple[float, float]:
    """The mean of ``o - shift`` and the variance of o, the variance 0 when within rounding noise.

    Parameters
    ----------
    o, noise : Tensor of shape (n,), float64
        o on each resample and the square of its rounding-noise bound (:func:`target_output`).
    shift : float
        o on the first resample.
    """
    n = len(o)
    d = o - shift
    mean, mean_square = float(d.sum()) / n, float(d.square().sum()) / n
    variance = max(mean_square - mean * mean, 0.0)
    bound = float(noise.mean()) + 3 * n * _EPS64 * mean_square
    return mean, variance if variance > bound else 0.0


def finish(sums: Sums, n: int, mean_o: float, var_o: float, n_neurons: int, threshold: float) -> tuple[Tensor, Tensor]:
    """``correlation`` and ``precision`` of one level from its sums.

    ``mean_o`` is the mean of o − o_shift and ``var_o`` the variance of o, 0 when o does not vary
    (:func:`output_moments`). A position varies when its variance exceeds the rounding-noise bound τ of the module
    docstring. Works through blocks of neurons so that the temporaries stay in cache.
    """
    positions = len(sums.shift) // n_neurons
    units = (ROUNDING_ULPS * torch.finfo(sums.shift.dtype).eps) ** 2
    correlation = torch.zeros(n_neurons, dtype=torch.float64, device=sums.shift.device)
    precision = torch.empty_like(correlation)
    step = max(1, CHUNK // positions)
    for first in range(0, n_neurons, step):
        neurons = slice(first, first + step)
        cols = slice(first * positions, (first + step) * positions)
        mean_d = (sums.s1[cols] / n).view(-1, positions)
        square_d = (sums.s2[cols] / n).view(-1, positions)
        var = torch.addcmul(square_d, mean_d, mean_d, value=-1.0).clamp_(min=0)
        shift = sums.shift[cols].view(-1, positions).to(torch.float64)
        square = (shift * (shift + 2 * mean_d)).add_(square_d).clamp_(min=0)  # mean of a^2 = (shift + d)^2
        varying = var > square.mul_(units).add_(square_d, alpha=3 * n * _EPS64)
        var.masked_fill_(~varying, 0.0)
        if var_o > 0:  # |r| = |cov| / (std * std_o); positions that never vary hold 0 / 0 and are left out
            r = (sums.sxo[cols].view(-1, positions) / n).sub_(mean_d, alpha=mean_o).abs_()
            r.div_(var.sqrt()).div_(math.sqrt(var_o)).clamp_(max=1.0).masked_fill_(~varying, 0.0)
            correlation[neurons] = r.sum(1) / varying.sum(1).clamp(min=1)
        mean_activation = (shift + mean_d).mean(1)
        precision[neurons] = torch.where(mean_activation >= threshold, 1.0 / var.mean(1), math.nan)
    return correlation, precision


def row_sum_and_variance(rows: Tensor) -> tuple[Tensor, Tensor]:
    """Sum and population variance of each row, in float64: two passes over each block of rows.

    ``rows`` (n, m) in any floating dtype, on any device; the result is on the CPU. Blocks of rows are converted
    to float64 one at a time, so the float64 copy stays small (a VGG16 classifier layer holds 10^8 weights).
    """
    rows = rows.detach()
    total = torch.empty(len(rows), dtype=torch.float64, device=rows.device)
    variance = torch.empty_like(total)
    step = max(1, CHUNK // rows.shape[1])
    for start in range(0, len(rows), step):
        block = rows[start : start + step].to(torch.float64, copy=True)  # never a view of the weights
        total[start : start + step] = block.sum(1)
        block -= (total[start : start + step] / rows.shape[1])[:, None]
        variance[start : start + step] = torch.linalg.vecdot(block, block) / rows.shape[1]
    return total.cpu(), variance.cpu()
