"""Exact closed form of ω for single-layer steps, from a few numbers per input collected in one forward pass.

A *layer step* is: operations that pass a channel's spatial sum of gradients through unchanged (max pooling,
average pooling without padding, adaptive pooling, eval-mode dropout, identity, flatten before a Linear), then
one Conv or Linear layer, an optional eval-mode BatchNorm, then an optional elementwise activation — or, on top,
the ``softmax`` of the Linear layer's output. For such a step, with ``G = f'(z)`` the activation's derivative at
the layer's pre-activation ``z`` (BatchNorm folded in as a per-channel scale ``a``), upper neuron ``n`` and lower
channel ``k``::

    Conv:    ω[n, i, k] = a[n] / (P_upper · P_lower) · Σ_o W[n, k, o] · C[i, n, o],
             C[i, n, o] = Σ_p G[i, n, p] · [input position p·stride − pad + o·dilation lies inside the input]
    Linear:  ω[n, i, k] = a[n] · G[i, n] · W̃[n, k],   W̃[n, k] = Σ_r W[n, k·R + r] / P_lower
    Softmax: ω[n, i, k] = p[i, n] · (W̃[n, k] − Σ_m p[i, m] · W̃[m, k])

where P counts spatial positions, R is the number of positions flattened into the Linear layer per channel and
``o`` runs over kernel offsets. The pass-through operations do not appear: every output position of a pooling
window routes its whole gradient to the window's members, so the spatial sum of the gradient, which is all ω
needs, is the same before and after them. ``C`` holds ``kernel size`` numbers per upper channel and input, ``G``
one: they are gathered by hooks during one streamed forward pass without gradients. The structure of a step is
read from a ``torch.fx`` trace of the model; a step that does not match, or a model that cannot be traced, uses
the autograd path of :mod:`stepwise.relevance`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.fx
from torch import Tensor, nn
from torch.nn import functional as F

from .levels import ACTIVATIONS, INPUT, OUTPUT, SOFTMAX, LevelInfo
from .select import outlier_mask

__all__ = ["LayerStep", "plan_layer_steps", "collect", "layer_step_relevance", "layer_step_statistics"]

_PASS_THROUGH = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
    nn.Dropout3d, nn.AlphaDropout, nn.Identity,
)  # fmt: skip
_AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_RELU_FUNCTIONS = (F.relu, torch.relu)
#: Elements of ω computed at once when counting outliers.
_CHUNK_ELEMENTS = 1 << 24


@dataclass
class LayerStep:
    """A step that the closed form computes: its layer, BatchNorm, activation and what they need per input.

    Attributes
    ----------
    lower, upper : LevelInfo
    layer : torch.nn.Module
        The Conv or Linear layer.
    norm : torch.nn.Module or None
        An eval-mode BatchNorm between the layer and the activation.
    activation : torch.nn.Module, callable or None
        The elementwise activation producing the upper level (``None``: the upper level is the layer's output).
    head : {'activation', 'softmax', 'none'}
    flattened : bool
        Whether the lower channels are flattened into a Linear layer.
    """

    lower: LevelInfo
    upper: LevelInfo
    layer: nn.Module
    norm: nn.Module | None
    activation: nn.Module | Callable | None
    head: str
    flattened: bool
    gate_module: nn.Module  # whose output is the pre-activation (the layer, or the BatchNorm)
    input_size: tuple[int, ...] = field(default=())  # spatial size of the layer's input, set by the first batch
    stats: list[Tensor] = field(default_factory=list)  # per batch: C, G or p

    @property
    def is_conv(self) -> bool:
        return isinstance(self.layer, _CONVS)


def _is_pass_through(module: nn.Module) -> bool:
    if isinstance(module, _PASS_THROUGH):
        return not getattr(module, "return_indices", False)
    if isinstance(module, _AVG_POOLS):  # the divisor must count exactly the window's members inside the input
        padding = module.padding if isinstance(module.padding, tuple) else (module.padding,)
        return all(p == 0 for p in padding) and not module.ceil_mode and module.divisor_override is None
    return False


def _is_flatten(node: torch.fx.Node, modules: dict[str, nn.Module]) -> bool:
    """flatten(x, 1) over all trailing dimensions, as a module, a function or a method."""
    if node.op == "call_module":
        module = modules[node.target]
        return isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1
    if (node.op == "call_function" and node.target is torch.flatten) or (
        node.op == "call_method" and node.target == "flatten"
    ):
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        return start == 1 and end == -1
    return False


def _single_input(node: torch.fx.Node) -> torch.fx.Node | None:
    """The node's only tensor input, if every other argument is a constant."""
    inputs = node.all_input_nodes
    return inputs[0] if len(inputs) == 1 and node.args and node.args[0] is inputs[0] else None


def _trace(model: nn.Module) -> torch.fx.GraphModule | None:
    try:
        return torch.fx.symbolic_trace(model)
    except Exception:  # any model fx cannot trace (data-dependent control flow, ...) uses the autograd path
        return None


def plan_layer_steps(model: nn.Module, infos: Sequence[LevelInfo]) -> dict[int, LayerStep]:
    """Find the steps of ``infos`` that the closed form computes.

    Parameters
    ----------
    model : torch.nn.Module
    infos : sequence of LevelInfo
        The analysed levels, bottom to top.

    Returns
    -------
    dict of int to LayerStep
        Keyed by the position of the step's upper level in ``infos``; steps not listed use autograd.
    """
    traced = _trace(model)
    if traced is None:
        return {}
    modules = dict(traced.named_modules())
    nodes = list(traced.graph.nodes)
    calls: dict[str, int] = {}
    for node in nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    placeholders = [n for n in nodes if n.op == "placeholder"]
    output = next(n for n in nodes if n.op == "output")

    def node_of(info: LevelInfo) -> torch.fx.Node | None:
        if info.name == INPUT:
            return placeholders[0] if len(placeholders) == 1 else None
        if info.name in (SOFTMAX, OUTPUT):
            value = output.args[0]
            return value if isinstance(value, torch.fx.Node) else None
        found = [n for n in nodes if n.op == "call_module" and n.target == info.name]
        if found:
            return found[0] if len(found) == 1 else None
        # A module fx traced through: its output is the one value computed inside it that is used outside.
        inside = {n for n in nodes if info.name in n.meta.get("nn_module_stack", {})}
        escaping = [n for n in inside if any(user not in inside for user in n.users)]
        return escaping[0] if len(escaping) == 1 else None

    plan = {}
    for position in range(1, len(infos)):
        lower, upper = infos[position - 1], infos[position]
        if lower.channel_dim != 1 or upper.channel_dim != 1:
            continue
        step = _match(lower, upper, node_of(lower), node_of(upper), modules, calls)
        if step is not None:
            plan[position] = step
    return plan


def _match(
    lower: LevelInfo,
    upper: LevelInfo,
    low: torch.fx.Node | None,
    up: torch.fx.Node | None,
    modules: dict[str, nn.Module],
    calls: dict[str, int],
) -> LayerStep | None:
    """Read the step from ``low`` to ``up`` off the fx graph; ``None`` if it is not a layer step."""
    if low is None or up is None:
        return None

    def module_of(node: torch.fx.Node, kinds: tuple) -> nn.Module | None:
        if node.op != "call_module" or calls[node.target] != 1:
            return None
        module = modules[node.target]
        return module if isinstance(module, kinds) else None

    head, activation, node = "none", None, up
    if upper.name == SOFTMAX:
        head = "softmax"
    else:
        act = module_of(up, ACTIVATIONS)
        if act is not None:
            head, activation = "activation", act
        elif up.op == "call_function" and up.target in _RELU_FUNCTIONS:
            head, activation = "activation", up.target
        if activation is not None:
            node = _single_input(up)
            if node is None:
                return None
    norm = module_of(node, _NORMS)
    if norm is not None:
        if norm.running_mean is None or norm.running_var is None:
            return None
        node = _single_input(node)
        if node is None:
            return None
    layer = module_of(node, _CONVS + (nn.Linear,))
    if layer is None:
        return None
    if isinstance(layer, _CONVS) and (layer.groups != 1 or layer.padding_mode != "zeros"):
        return None
    if head == "softmax" and not isinstance(layer, nn.Linear):
        return None
    flattened = False
    current = _single_input(node)
    while current is not None and current is not low:
        if _is_flatten(current, modules):
            if flattened or not isinstance(layer, nn.Linear):
                return None
            flattened = True
        elif not (current.op == "call_module" and _is_pass_through(modules[current.target])):
            return None
        current = _single_input(current)
    if current is not low:
        return None
    if isinstance(layer, nn.Linear) and (
        (not flattened and len(lower.shape) != 1) or layer.in_features % lower.n_neurons
    ):
        return None
    return LayerStep(lower, upper, layer, norm, activation, head, flattened, norm if norm is not None else layer)


# ------------------------------------------------------------------------------------------ collection


def _valid(size: int, kernel: int, stride: int, padding: int, dilation: int, out: int, like: Tensor) -> Tensor:
    """V[o, p] = 1 when output position p, kernel offset o reads an input position inside [0, size)."""
    offsets = torch.arange(kernel, device=like.device).unsqueeze(1)
    reads = torch.arange(out, device=like.device).unsqueeze(0) * stride - padding + offsets * dilation
    return ((reads >= 0) & (reads < size)).to(like.dtype)


def _conv_padding(layer: nn.Module) -> tuple[int, ...]:
    if isinstance(layer.padding, str):
        if layer.padding == "valid":
            return (0,) * len(layer.kernel_size)
        return tuple(d * (k - 1) // 2 for d, k in zip(layer.dilation, layer.kernel_size))  # 'same': extra on the right
    return tuple(layer.padding)


def _window_counts(step: LayerStep, gate: Tensor) -> Tensor:
    """C[i, n, o]: the gate summed over the output positions whose kernel offset o reads inside the input."""
    layer = step.layer
    padding = _conv_padding(layer)
    counts = gate
    for d, size in enumerate(step.input_size):
        valid = _valid(size, layer.kernel_size[d], layer.stride[d], padding[d], layer.dilation[d], gate.shape[2 + d], gate)
        counts = torch.tensordot(counts, valid, dims=([2], [1]))  # contracts one spatial dim, appends its offsets
    return counts.flatten(2)


def _gate(step: LayerStep, z: Tensor) -> Tensor:
    """f'(z) of the step's elementwise activation (1 without one)."""
    if step.activation is None:
        return torch.ones_like(z)
    if isinstance(step.activation, nn.ReLU) or step.activation in _RELU_FUNCTIONS:
        return (z > 0).to(z.dtype)
    with torch.enable_grad():
        point = z.detach().clone().requires_grad_(True)
        forward = step.activation.forward if isinstance(step.activation, nn.Module) else step.activation
        (slope,) = torch.autograd.grad(forward(point.clone()).sum(), point)
    return slope


def _norm_scale(step: LayerStep) -> Tensor | None:
    norm = step.norm
    if norm is None:
        return None
    scale = torch.rsqrt(norm.running_var + norm.eps)
    return scale * norm.weight if norm.weight is not None else scale


def collect(steps: Sequence[LayerStep]) -> list[tuple[nn.Module, Callable]]:
    """Forward hooks that append each batch's statistics to ``step.stats`` (for :func:`stepwise.levels.hooked`)."""
    hooks: list[tuple[nn.Module, Callable]] = []
    for step in steps:
        step.stats.clear()
        if step.is_conv:

            def record_size(module: nn.Module, args: tuple, output: Tensor, step: LayerStep = step) -> None:
                step.input_size = tuple(args[0].shape[2:])

            hooks.append((step.layer, record_size))

        def record(module: nn.Module, args: tuple, output: Tensor, step: LayerStep = step) -> None:
            z = output.detach()
            if step.head == "softmax":
                step.stats.append(torch.softmax(z, dim=1))
            elif step.is_conv:
                step.stats.append(_window_counts(step, _gate(step, z)))
            elif step.activation is not None:
                step.stats.append(_gate(step, z))

        hooks.append((step.gate_module, record))
    return hooks


# ------------------------------------------------------------------------------------------ relevance


def _linear_rows(step: LayerStep, neurons: Tensor) -> Tensor:
    """W̃[n, k] = Σ_r W[n, k·R + r] / P_lower for the given rows."""
    weight = step.layer.weight[neurons]
    return weight.view(len(neurons), step.lower.n_neurons, -1).sum(dim=2) / math.prod(step.lower.shape[1:])


def layer_step_relevance(step: LayerStep, neurons: Tensor, n_inputs: int) -> Tensor:
    """ω of the closed form for ``neurons`` of the upper level on every input seen by :func:`collect`.

    Parameters
    ----------
    step : LayerStep
        A step whose statistics were collected.
    neurons : Tensor of shape (S,), int64
    n_inputs : int

    Returns
    -------
    Tensor of shape (S, n_inputs, K)
    """
    weight = step.layer.weight
    scale = _norm_scale(step)
    if step.head == "softmax":
        p = torch.cat(step.stats)  # (N, C)
        rows = _linear_rows(step, torch.arange(weight.shape[0], device=weight.device))  # (C, K)
        mixed = p @ rows  # Σ_m p[i, m] W̃[m, k]
        return p[:, neurons].T.unsqueeze(2) * (rows[neurons].unsqueeze(1) - mixed.unsqueeze(0))
    if step.is_conv:
        counts = torch.cat(step.stats)[:, neurons]  # (N, S, O)
        kernel = weight[neurons].flatten(2)  # (S, K, O)
        upper_positions = math.prod(step.upper.shape[1:])
        omega = torch.einsum("sko,nso->snk", kernel, counts) / (upper_positions * math.prod(step.lower.shape[1:]))
    else:
        rows = _linear_rows(step, neurons).unsqueeze(1)  # (S, 1, K)
        gate = torch.cat(step.stats)[:, neurons].T.unsqueeze(2) if step.stats else None  # (S, N, 1)
        omega = rows.expand(-1, n_inputs, -1) if gate is None else gate * rows
    if scale is not None:
        omega = omega * scale[neurons].view(-1, 1, 1)
    return omega


def _binary_gates(step: LayerStep) -> bool:
    """Whether every row of a Linear step is exactly its weight row or zero (ReLU or no activation, no norm)."""
    relu = isinstance(step.activation, nn.ReLU) or step.activation in _RELU_FUNCTIONS
    return not step.is_conv and step.head != "softmax" and step.norm is None and (step.activation is None or relu)


def layer_step_statistics(
    step: LayerStep, neurons: Tensor, n_inputs: int, *, fence: float, sign: str
) -> tuple[Tensor, Tensor]:
    """Outlier counts and sums of ω over inputs for ``neurons``, from the collected statistics.

    For a Linear step with a ReLU (or no activation) each row of ω is exactly the weight row ``W̃[n]`` (gate 1)
    or zero (gate 0, never an outlier), so the outliers of ``W̃[n]`` are found once and counted for each open
    gate. Other steps compute ω in chunks of neurons.

    Returns
    -------
    counts : Tensor of shape (S, K), int64
    omega_sum : Tensor of shape (S, K), float64
    """
    if _binary_gates(step):
        rows = _linear_rows(step, neurons)
        if step.activation is None:
            open_gates = torch.full((len(neurons),), n_inputs, dtype=torch.int64, device=rows.device)
        else:
            open_gates = torch.cat(step.stats)[:, neurons].sum(dim=0).round().to(torch.int64)
        mask = outlier_mask(rows, fence=fence, sign=sign)
        return mask * open_gates.unsqueeze(1), rows.to(torch.float64) * open_gates.unsqueeze(1)
    counts, sums = [], []
    chunk = max(1, _CHUNK_ELEMENTS // (n_inputs * step.lower.n_neurons))
    for start in range(0, len(neurons), chunk):
        omega = layer_step_relevance(step, neurons[start : start + chunk], n_inputs)
        counts.append(outlier_mask(omega, fence=fence, sign=sign).sum(dim=1))
        sums.append(omega.sum(dim=1, dtype=torch.float64))
    return torch.cat(counts), torch.cat(sums)

