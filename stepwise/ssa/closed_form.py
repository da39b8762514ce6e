"""Exact closed forms of ω for common steps, from statistics gathered in one streamed forward pass.

ω[n, i, k] needs only the *spatial sum* of the gradient over lower channel k. For the steps below that sum has
a closed form in the weights and in a few statistics of each input — the derivative ``G = f'(z)`` of each
elementwise activation at its pre-activation ``z``, summed over windows — which hooks gather during one forward
pass without gradients. Steps of any other shape, and the ``grad_x_activation`` rule, use the autograd path of
:mod:`stepwise.relevance`; the test suite checks every closed form against per-(neuron, input) autograd.

Notation: ``P`` counts spatial positions, ``o`` runs over kernel offsets, ``a`` is an eval-mode BatchNorm's
per-channel scale ``γ / sqrt(var + eps)`` (1 without one), ``V(p, o)`` is 1 when output position ``p`` with
offset ``o`` reads a position inside the layer's input (not padding).

**Pass-through operations** — max pooling, average pooling without padding, adaptive pooling, eval-mode
dropout, identity, and a flatten before a Linear layer — route each output position's whole gradient to the
members of its window, so the spatial sum of the gradient is the same before and after them. They may stand
anywhere between the lower level and the first layer of a step.

**Layer step**: pass-through, one Conv or Linear layer, optional BatchNorm, optional elementwise activation::

    Conv:    ω[n, i, k] = a[n] / (P_upper · P_lower) · Σ_o W[n, k, o] · C[i, n, o],   C[i, n, o] = Σ_p G[i, n, p] V(p, o)
    Linear:  ω[n, i, k] = a[n] · G[i, n] · W̃[n, k],   W̃[n, k] = Σ_r W[n, k·R + r] / P_lower

(R positions flattened per channel into the Linear layer), or on top the ``softmax`` of a Linear layer's output,
``ω[n, i, k] = p[i, n] · (W̃[n, k] − Σ_m p[i, m] · W̃[m, k])``.

**Residual block step** (a ResNet BasicBlock): pass-through, ``Conv1 - [BN1] - f1 - Conv2 - [BN2]``, plus the
block input or a ``Conv_d - [BN_d]`` of it, then a ReLU (or nothing). With ``G1`` the derivative of ``f1`` at the
middle pre-activation, ``G2`` that of the final ReLU, and ``q(p, o2)`` the middle position that Conv2's offset
``o2`` reads from output position ``p``::

    ω[n, i, k] = 1 / (P_upper · P_lower) · ( a2[n] Σ_m a1[m] Σ_{o2, o1} W2[n, m, o2] W1[m, k, o1] T[i, n, m, o2, o1]
                                             + skip[i, n, k] )
    T[i, n, m, o2, o1] = Σ_p G2[i, n, p] · V2(p, o2) · G1[i, m, q(p, o2)] · V1(q(p, o2), o1)
    skip[i, n, k] = δ[n, k] Σ_p G2[i, n, p]   or   a_d[n] Σ_o W_d[n, k, o] Σ_p G2[i, n, p] V_d(p, o)

``T`` is a correlation of the two activation masks (an ``unfold`` and a matrix product per Conv1 offset), so the
forward pass only stores ``G1`` and ``G2`` (one byte per activation for ReLUs) and ω of any neuron set costs
about ``81 · C_mid · P_upper`` multiply-adds per neuron and input — a small fraction of one backward pass through
the block. The structure of every step is read from a ``torch.fx`` trace of the model; a model fx cannot trace
uses the autograd path for all its steps.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.fx
from torch import Tensor, nn
from torch.nn import functional as F

from stepwise.core.levels import LevelInfo
from stepwise.core.hooks import NonFiniteError, all_finite
from .select import outlier_mask

__all__ = [
    "ADD_FUNCTIONS",
    "AVG_POOLS",
    "CONVS",
    "NORMS",
    "PASS_THROUGH",
    "RELU_FUNCTIONS",
    "BlockStep",
    "ClosedFormStep",
    "LayerStep",
    "Scratch",
    "Unit",
    "is_relu",
]

PASS_THROUGH = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
    nn.Dropout3d, nn.AlphaDropout, nn.Identity,
)  # fmt: skip
AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
RELU_FUNCTIONS = (F.relu, torch.relu)
ADD_FUNCTIONS = (operator.add, operator.iadd, torch.add)
#: Elements of ω (or of a block's mask correlations) computed at once.
_CHUNK_ELEMENTS = 1 << 24
#: Elements of the float32 buffer that ReLU masks are counted in (16 MB).
_SCRATCH_ELEMENTS = 1 << 22
#: Positions per map from which float32 sums of a mask would no longer be exact.
_EXACT_FLOAT32_COUNT = 1 << 24

Hook = tuple[nn.Module, Callable]


# ------------------------------------------------------------------------------------------ building blocks


def is_relu(activation: object) -> bool:
    return isinstance(activation, nn.ReLU) or activation in RELU_FUNCTIONS


@dataclass
class Unit:
    """A Conv or Linear layer, an optional eval-mode BatchNorm and an optional elementwise activation."""

    layer: nn.Module
    norm: nn.Module | None = None
    activation: nn.Module | Callable | None = None
    input_size: tuple[int, ...] = ()  # spatial size of the layer's input, recorded by the first batch

    @property
    def gate_module(self) -> nn.Module:
        """The module whose output is the pre-activation."""
        return self.norm if self.norm is not None else self.layer

    @property
    def is_conv(self) -> bool:
        return isinstance(self.layer, CONVS)

    def scale(self) -> Tensor | None:
        """BatchNorm's per-channel scale γ / sqrt(var + eps), or None."""
        if self.norm is None:
            return None
        scale = torch.rsqrt(self.norm.running_var + self.norm.eps)
        return scale * self.norm.weight if self.norm.weight is not None else scale

    def gate(self, z: Tensor) -> Tensor:
        """f'(z) of the activation (1 without one); a bool mask for a ReLU."""
        if self.activation is None:
            return torch.ones_like(z)
        if is_relu(self.activation):
            return z > 0
        with torch.enable_grad():
            point = z.detach().clone().requires_grad_(True)
            forward = self.activation.forward if isinstance(self.activation, nn.Module) else self.activation
            (slope,) = torch.autograd.grad(forward(point.clone()).sum(), point)
        return slope

    def size_hook(self) -> Hook:
        def record(module: nn.Module, args: tuple, output: Tensor) -> None:
            self.input_size = tuple(args[0].shape[2:])

        return (self.layer, record)

    def padding(self) -> tuple[int, ...]:
        layer = self.layer
        if isinstance(layer.padding, str):
            if layer.padding == "valid":
                return (0,) * len(layer.kernel_size)
            return tuple(d * (k - 1) // 2 for d, k in zip(layer.dilation, layer.kernel_size))  # 'same'
        return tuple(layer.padding)

    def valid(self, dim: int, out: int, like: Tensor) -> Tensor:
        """V[o, p] along spatial dimension ``dim``: output position p with kernel offset o reads inside the input."""
        layer = self.layer
        offsets = torch.arange(layer.kernel_size[dim], device=like.device).unsqueeze(1)
        reads = torch.arange(out, device=like.device).unsqueeze(0) * layer.stride[dim] - self.padding()[dim]
        reads = reads + offsets * layer.dilation[dim]
        return ((reads >= 0) & (reads < self.input_size[dim])).to(like.dtype)

    def window_counts(self, gate: Tensor) -> Tensor:
        """C[i, n, o] = Σ_p G[i, n, p] V(p, o), for a gate (N, C, *spatial) over this layer's output."""
        counts = gate.to(self.layer.weight.dtype)
        for dim in range(len(self.input_size)):
            valid = self.valid(dim, gate.shape[2 + dim], counts)
            counts = torch.tensordot(counts, valid, dims=([2], [1]))  # contracts one spatial dim, appends offsets
        return counts.flatten(2)

    def relu_window_counts(self, z: Tensor, scratch: Tensor) -> tuple[Tensor, bool]:
        """C for a ReLU after a 2-D convolution, from the pre-activation z (N, C, H, W): every open position,
        less those in the few border rows and columns whose read for the offset falls into the padding, plus
        their crossings. Also whether the sum of z is finite (it is when every value is and none is huge).

        The mask z > 0 is written as 0/1 floats into ``scratch`` (a float32 buffer), a block of channel maps at
        a time: summing floats is several times faster than summing bools, and exact while a sum stays below
        2**24. Summing each block of z while it is in cache costs next to nothing."""
        bad_rows = [_outside(v) for v in self.valid(0, z.shape[2], z)]
        bad_cols = [_outside(v) for v in self.valid(1, z.shape[3], z)]
        maps = z.flatten(0, 1)  # (N·C, H, W)
        per_block = max(1, scratch.numel() // maps[0].numel())
        blocks, z_sum = [], z.new_zeros(())
        for start in range(0, len(maps), per_block):
            part = maps[start : start + per_block]
            z_sum += part.sum()
            mask = torch.gt(part, 0, out=scratch[: part.numel()].view(part.shape))
            total = _count(mask)
            in_rows = [sum(_count(mask[:, r]) for r in rows) for rows in bad_rows]
            in_cols = [sum(_count(mask[:, :, c]) for c in cols) for cols in bad_cols]
            blocks.append(
                torch.stack(
                    [
                        total - in_rows[i] - in_cols[j] + sum(_count(mask[:, r, c]) for r in rows for c in cols)
                        for i, rows in enumerate(bad_rows)
                        for j, cols in enumerate(bad_cols)
                    ],
                    dim=1,
                )
            )
        return torch.cat(blocks).view(*z.shape[:2], -1).to(self.layer.weight.dtype), bool(torch.isfinite(z_sum))


def _outside(valid: Tensor) -> list[slice]:
    """The positions where a row of V is 0, as slices: reads grow with the position, so those falling into the
    padding before the input come first and those after it last."""
    inside = valid.nonzero().flatten()
    if len(inside) == 0:
        return [slice(0, len(valid))]
    first, last = int(inside[0]), int(inside[-1]) + 1
    return [part for part in (slice(0, first), slice(last, len(valid))) if part.stop > part.start]


def _count(mask: Tensor) -> Tensor:
    """Σ over the last two dimensions of a float32 0/1 mask (B, H, W), exact: float64 partial sums per row when a
    map holds 2**24 positions or more."""
    if mask.shape[1] * mask.shape[2] < _EXACT_FLOAT32_COUNT:
        return mask.sum(dim=(1, 2))
    return mask.sum(dim=2).sum(dim=1, dtype=torch.float64)


class Scratch:
    """A float32 buffer of ``_SCRATCH_ELEMENTS``, allocated on first use; the hooks of one forward pass run one
    at a time, so they can share it."""

    def __init__(self) -> None:
        self.buffer: Tensor | None = None

    def get(self, device: torch.device) -> Tensor:
        if self.buffer is None or self.buffer.device != device:
            self.buffer = torch.empty(_SCRATCH_ELEMENTS, device=device)
        return self.buffer


def _check_finite(z: Tensor, level: LevelInfo) -> None:
    if not all_finite(z):
        raise NonFiniteError(
            f"Level {level.name!r} holds NaN or Inf values for some inputs: check the inputs and the model weights "
            "for non-finite values."
        )


def _scaled(omega: Tensor, scale: Tensor | None, neurons: Tensor) -> Tensor:
    return omega if scale is None else omega * scale[neurons].view(-1, 1, 1)


class ClosedFormStep:
    """A step whose ω has a closed form (see the module docstring).

    Usage: register :meth:`hooks` during forward passes over the inputs, then call :meth:`relevance` or
    :meth:`statistics` for any set of upper neurons; :meth:`clear` frees the gathered statistics.
    """

    lower: LevelInfo
    upper: LevelInfo

    def hooks(self, scratch: Scratch) -> list[Hook]:
        """Forward hooks that gather each batch's statistics (previous statistics are cleared); ``scratch`` is a
        buffer shared by the hooks of one pass."""
        raise NotImplementedError

    def clear(self) -> None:
        """Forget the gathered statistics."""
        raise NotImplementedError

    def relevance(self, neurons: Tensor, n_inputs: int) -> Tensor:
        """ω for ``neurons`` (S,) of the upper level on every input seen: Tensor of shape (S, n_inputs, K)."""
        raise NotImplementedError

    def statistics(self, neurons: Tensor, n_inputs: int, *, fence: float, sign: str) -> tuple[Tensor, Tensor]:
        """Outlier counts (S, K) int64 and sums of ω over inputs (S, K) float64, computed in chunks of neurons."""
        counts, sums = [], []
        chunk = max(1, _CHUNK_ELEMENTS // (n_inputs * self.lower.n_neurons))
        for start in range(0, len(neurons), chunk):
            part = neurons[start : start + chunk]
            omega = self.relevance(part, n_inputs)
            counts.append(outlier_mask(omega, fence=fence, sign=sign).sum(dim=1, dtype=torch.int32))
            sums.append(self.relevance_sums(part, omega))
        return torch.cat(counts).long(), torch.cat(sums)

    def relevance_sums(self, neurons: Tensor, omega: Tensor) -> Tensor:
        """Σ over inputs of ω (S, K), float64, given ω of ``neurons``."""
        return omega.sum(dim=1, dtype=torch.float64)


@dataclass(eq=False)
class LayerStep(ClosedFormStep):
    """Pass-through operations, then one layer (:class:`Unit`), with head ``activation``, ``softmax`` or ``none``."""

    lower: LevelInfo
    upper: LevelInfo
    unit: Unit
    head: str
    stats: list[Tensor] = field(default_factory=list)  # per batch: C (conv), G (linear) or p (softmax)

    def hooks(self, scratch: Scratch) -> list[Hook]:
        self.stats.clear()
        counts_relu_masks = isinstance(self.unit.layer, nn.Conv2d) and is_relu(self.unit.activation)

        def record(module: nn.Module, args: tuple, output: Tensor) -> None:
            z = output.detach()
            if counts_relu_masks:
                counts, finite = self.unit.relu_window_counts(z, scratch.get(z.device))
                if not finite:  # some value is not finite, or the sum overflowed: check exactly
                    _check_finite(z, self.upper)
                self.stats.append(counts)
                return
            _check_finite(z, self.upper)
            if self.head == "softmax":
                self.stats.append(torch.softmax(z, dim=1))
            elif self.unit.is_conv:
                self.stats.append(self.unit.window_counts(self.unit.gate(z)))
            elif self.unit.activation is not None:
                self.stats.append(self.unit.gate(z).to(z.dtype))

        return ([self.unit.size_hook()] if self.unit.is_conv else []) + [(self.unit.gate_module, record)]

    def clear(self) -> None:
        self.stats.clear()

    def _gathered(self) -> Tensor:
        """The statistics of every input seen, concatenated once."""
        if len(self.stats) > 1:
            self.stats[:] = [torch.cat(self.stats)]
        return self.stats[0]

    def _rows(self, neurons: Tensor) -> Tensor:
        """W̃[n, k] = Σ_r W[n, k·R + r] / P_lower."""
        weight = self.unit.layer.weight[neurons]
        return weight.view(len(neurons), self.lower.n_neurons, -1).sum(dim=2) / math.prod(self.lower.shape[1:])

    def relevance(self, neurons: Tensor, n_inputs: int) -> Tensor:
        weight = self.unit.layer.weight
        if self.head == "softmax":
            p = self._gathered()  # (N, C)
            rows = self._rows(torch.arange(weight.shape[0], device=weight.device))  # (C, K)
            scale = self.unit.scale()
            if scale is not None:
                rows = rows * scale.unsqueeze(1)
            mixed = p @ rows  # Σ_m p[i, m] W̃[m, k]
            return p[:, neurons].T.unsqueeze(2) * (rows[neurons].unsqueeze(1) - mixed.unsqueeze(0))
        if self.unit.is_conv:
            counts = self._gathered()[:, neurons]  # (N, S, O)
            positions = math.prod(self.upper.shape[1:]) * math.prod(self.lower.shape[1:])
            omega = torch.einsum("sko,nso->snk", weight[neurons].flatten(2), counts) / positions
        else:
            rows = self._rows(neurons).unsqueeze(1)  # (S, 1, K)
            if self.stats:
                omega = self._gathered()[:, neurons].T.unsqueeze(2) * rows
            else:
                omega = rows.expand(-1, n_inputs, -1)
        return _scaled(omega, self.unit.scale(), neurons)

    def relevance_sums(self, neurons: Tensor, omega: Tensor) -> Tensor:
        """For a convolution, from the window counts summed over inputs (exact in float64), in float64."""
        if not self.unit.is_conv or self.head == "softmax":
            return super().relevance_sums(neurons, omega)
        counts = self._gathered()[:, neurons].sum(dim=0, dtype=torch.float64)  # (S, O)
        weight = self.unit.layer.weight[neurons].flatten(2).to(torch.float64)
        positions = math.prod(self.upper.shape[1:]) * math.prod(self.lower.shape[1:])
        sums = torch.einsum("sko,so->sk", weight, counts) / positions
        scale = self.unit.scale()
        return sums if scale is None else sums * scale[neurons].to(torch.float64).unsqueeze(1)

    def statistics(self, neurons: Tensor, n_inputs: int, *, fence: float, sign: str) -> tuple[Tensor, Tensor]:
        """For a Linear layer with a ReLU (or nothing) and no BatchNorm, each row of ω is exactly the weight row
        ``W̃[n]`` (gate 1) or zero (gate 0, never an outlier): its outliers are found once and counted per open
        gate. Other steps compute ω in chunks."""
        binary = self.unit.activation is None or is_relu(self.unit.activation)
        if self.unit.is_conv or self.head == "softmax" or self.unit.norm is not None or not binary:
            return super().statistics(neurons, n_inputs, fence=fence, sign=sign)
        rows = self._rows(neurons)
        if self.stats:
            open_gates = self._gathered()[:, neurons].sum(dim=0).round().to(torch.int64)
        else:
            open_gates = torch.full((len(neurons),), n_inputs, dtype=torch.int64, device=rows.device)
        mask = outlier_mask(rows, fence=fence, sign=sign)
        return mask * open_gates.unsqueeze(1), rows.to(torch.float64) * open_gates.unsqueeze(1)


@dataclass(eq=False)
class BlockStep(ClosedFormStep):
    """A residual block: ``first`` (Conv1, BN1, f1), ``second`` (Conv2, BN2), a skip, a final ReLU or nothing."""

    lower: LevelInfo
    upper: LevelInfo
    first: Unit
    second: Unit
    downsample: Unit | None  # None: identity skip, unless has_skip is False
    has_skip: bool
    final_relu: bool
    level_module: nn.Module  # the module whose output is the upper level
    inner: list[Tensor] = field(default_factory=list)  # per batch: G1 (N, C_mid, *mid)
    outer: list[Tensor] = field(default_factory=list)  # per batch: G2 (N, C, *out)

    def hooks(self, scratch: Scratch) -> list[Hook]:
        self.clear()

        def record_inner(module: nn.Module, args: tuple, output: Tensor) -> None:
            self.inner.append(self.first.gate(output.detach()))

        def record_outer(module: nn.Module, args: tuple, output: Tensor) -> None:
            out = output.detach()
            _check_finite(out, self.upper)
            self.outer.append(out > 0 if self.final_relu else torch.ones_like(out, dtype=torch.bool))

        hooks = [self.first.size_hook(), self.second.size_hook(), (self.first.gate_module, record_inner)]
        if self.downsample is not None:
            hooks.append(self.downsample.size_hook())
        return hooks + [(self.level_module, record_outer)]

    def clear(self) -> None:
        self.inner.clear()
        self.outer.clear()

    def relevance(self, neurons: Tensor, n_inputs: int) -> Tensor:
        inner, outer = self._masks()
        dtype = self.first.layer.weight.dtype
        w1 = self.first.layer.weight  # (C_mid, K, kh1, kw1)
        w2 = self.second.layer.weight[neurons].flatten(2)  # (S, C_mid, O2)
        a1, a2 = self.first.scale(), self.second.scale()
        if a1 is not None:
            w1 = w1 * a1.view(-1, 1, 1, 1)
        middle = inner.shape[1:]  # (C_mid, H_mid, W_mid)
        per_input = len(neurons) * w2.shape[2] * (middle.numel() // middle[0] + middle[0]) + middle.numel()
        chunk = max(1, _CHUNK_ELEMENTS // per_input)
        rows = []
        for start in range(0, n_inputs, chunk):
            g1 = inner[start : start + chunk].to(dtype)
            g2 = outer[start : start + chunk][:, neurons].to(dtype)  # (B, S, *out)
            u = self._weighted_correlations(self._spread(g2, g1.shape[2:]), g1, w2)  # (B, S, C_mid, kh1, kw1)
            main = torch.einsum("bsmij,mkij->bsk", u, w1)
            if a2 is not None:
                main = main * a2[neurons].view(1, -1, 1)
            rows.append(main + self._skip(g2.flatten(2), neurons))
        positions = math.prod(self.upper.shape[1:]) * math.prod(self.lower.shape[1:])
        return torch.cat(rows).transpose(0, 1) / positions

    def _masks(self) -> tuple[Tensor, Tensor]:
        """G1 and G2 of every input, concatenated once."""
        if len(self.inner) > 1:
            self.inner[:] = [torch.cat(self.inner)]
            self.outer[:] = [torch.cat(self.outer)]
        return self.inner[0], self.outer[0]

    def _spread(self, g2: Tensor, middle: torch.Size) -> Tensor:
        """H[i, n, o2, q] = G2[i, n, p] where Conv2's offset o2 reads middle position q from output position p
        (0 where no output position reads q with that offset)."""
        conv2 = self.second.layer
        (kh, kw), padding = conv2.kernel_size, self.second.padding()
        h = g2.new_zeros(*g2.shape[:2], kh * kw, *middle)

        def reads(dim: int, offset: int) -> tuple[slice, slice]:
            """Output positions p whose read q = p·stride − pad + offset·dilation lies inside, and those q."""
            stride, shift = conv2.stride[dim], offset * conv2.dilation[dim] - padding[dim]
            first = max(0, -(shift // stride))  # ceil(-shift / stride)
            last = min(g2.shape[2 + dim] - 1, (middle[dim] - 1 - shift) // stride)
            if last < first:
                return slice(0, 0), slice(0, 0)
            return slice(first, last + 1), slice(first * stride + shift, last * stride + shift + 1, stride)

        for i in range(kh):
            p_rows, q_rows = reads(0, i)
            for j in range(kw):
                p_cols, q_cols = reads(1, j)
                h[:, :, i * kw + j, q_rows, q_cols] = g2[:, :, p_rows, p_cols]
        return h

    def _weighted_correlations(self, h: Tensor, g1: Tensor, w2: Tensor) -> Tensor:
        """U[i, n, m, o1] = Σ_o2 W2[n, m, o2] Σ_q H[i, n, o2, q] G1[i, m, q] V1(q, o1).

        V1 is separable, 1 except on a few border rows (for the offset's row) and columns (for its column), so
        the sum over q is the full correlation minus the border rows and columns, plus their crossings."""
        batch, size, offsets, height, width = h.shape
        kh, kw = self.first.layer.kernel_size
        h = h.flatten(1, 2)  # (B, S·O2, H, W)

        def correlate(rows: Tensor | slice, cols: Tensor | slice) -> Tensor:
            left = h[:, :, rows][..., cols].flatten(2)
            right = g1[:, :, rows][..., cols].flatten(2)
            t = torch.bmm(left, right.transpose(1, 2)).view(batch, size, offsets, -1)  # (B, S, O2, C_mid)
            return torch.einsum("bsom,smo->bsm", t, w2)

        def outside(valid: Tensor) -> list[Tensor | None]:
            return [None if bool(v.all()) else (v == 0).nonzero().flatten() for v in valid]

        bad_rows = outside(self.first.valid(0, height, g1))
        bad_cols = outside(self.first.valid(1, width, g1))
        full = correlate(slice(None), slice(None))
        by_row = [None if r is None else correlate(r, slice(None)) for r in bad_rows]
        by_col = [None if c is None else correlate(slice(None), c) for c in bad_cols]
        u = full.new_empty(batch, size, g1.shape[1], kh, kw)
        for i, r in enumerate(bad_rows):
            for j, c in enumerate(bad_cols):
                value = full
                if r is not None:
                    value = value - by_row[i]
                if c is not None:
                    value = value - by_col[j]
                if r is not None and c is not None:
                    value = value + correlate(r, c)
                u[..., i, j] = value
        return u

    def _skip(self, g2: Tensor, neurons: Tensor) -> Tensor:
        """skip[i, n, k] for a batch of G2 (B, S, P)."""
        batch, size, k = len(g2), len(neurons), self.lower.n_neurons
        if not self.has_skip:
            return g2.new_zeros(batch, size, k)
        if self.downsample is None:
            skip = g2.new_zeros(batch, size, k)
            skip[:, torch.arange(size, device=g2.device), neurons] = g2.sum(dim=2)
            return skip
        spatial = g2.view(batch, size, *self.upper.shape[1:])
        counts = self.downsample.window_counts(spatial)  # (B, S, O)
        skip = torch.einsum("bso,sko->bsk", counts, self.downsample.layer.weight[neurons].flatten(2))
        scale = self.downsample.scale()
        return skip if scale is None else skip * scale[neurons].view(1, -1, 1)
