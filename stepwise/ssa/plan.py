"""Which steps have a closed form: read from a ``torch.fx`` trace of the model (:mod:`.closed_form` computes them).

A step is a single layer (a convolution or a linear layer with the pass-through modules and the ReLU around it)
or a residual block (two convolutions with BatchNorm and ReLUs, and an identity or projected skip); any other step
falls back to batched autograd (:mod:`.relevance`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.fx
from torch import nn

from stepwise.core.levels import ACTIVATIONS, INPUT, OUTPUT, SOFTMAX, LevelInfo

from .closed_form import (
    ADD_FUNCTIONS,
    AVG_POOLS,
    CONVS,
    NORMS,
    PASS_THROUGH,
    RELU_FUNCTIONS,
    BlockStep,
    ClosedFormStep,
    LayerStep,
    Unit,
    is_relu,
)

__all__ = ["plan_closed_form"]


def _is_pass_through(module: nn.Module) -> bool:
    if isinstance(module, PASS_THROUGH):
        return not getattr(module, "return_indices", False)
    if isinstance(module, AVG_POOLS):  # the divisor must count exactly the window's members inside the input
        padding = module.padding if isinstance(module.padding, tuple) else (module.padding,)
        return all(p == 0 for p in padding) and not module.ceil_mode and module.divisor_override is None
    return False


def _single_input(node: torch.fx.Node | None) -> torch.fx.Node | None:
    """The node's only tensor input, if it is the first argument and every other argument is a constant."""
    if node is None:
        return None
    inputs = node.all_input_nodes
    return inputs[0] if len(inputs) == 1 and node.args and node.args[0] is inputs[0] else None


class _FxGraph:
    """What the closed forms need to know of a ``torch.fx`` trace of the model."""

    def __init__(self, traced: torch.fx.GraphModule) -> None:
        self.modules = dict(traced.named_modules())
        self.nodes = list(traced.graph.nodes)
        self.calls: dict[str, int] = {}
        for node in self.nodes:
            if node.op == "call_module":
                self.calls[node.target] = self.calls.get(node.target, 0) + 1

    def module(self, node: torch.fx.Node | None, kinds: tuple, *, shared: bool = False) -> nn.Module | None:
        """The module a ``call_module`` node calls, if of one of ``kinds`` (and called once unless ``shared``)."""
        if node is None or node.op != "call_module" or (not shared and self.calls[node.target] != 1):
            return None
        module = self.modules[node.target]
        return module if isinstance(module, kinds) else None

    def node_of(self, info: LevelInfo) -> torch.fx.Node | None:
        """The node whose value is the level's activation."""
        if info.name == INPUT:
            placeholders = [n for n in self.nodes if n.op == "placeholder"]
            return placeholders[0] if len(placeholders) == 1 else None
        if info.name in (SOFTMAX, OUTPUT):
            value = next(n for n in self.nodes if n.op == "output").args[0]
            return value if isinstance(value, torch.fx.Node) else None
        found = [n for n in self.nodes if n.op == "call_module" and n.target == info.name]
        if found:
            return found[0] if len(found) == 1 else None
        # A module fx traced through: its output is the one value computed inside it that is used outside.
        inside = {n for n in self.nodes if info.name in n.meta.get("nn_module_stack", {})}
        escaping = [n for n in inside if any(user not in inside for user in n.users)]
        return escaping[0] if len(escaping) == 1 else None

    def activation(self, node: torch.fx.Node | None) -> nn.Module | Callable | None:
        """The elementwise activation a node applies (a shared module is fine: it is never hooked)."""
        module = self.module(node, ACTIVATIONS, shared=True)
        if module is not None:
            return module
        if node is not None and node.op == "call_function" and node.target in RELU_FUNCTIONS:
            return node.target
        return None

    def unit(self, node: torch.fx.Node | None, *, head: bool) -> tuple[Unit, torch.fx.Node] | None:
        """Read ``[activation] <- [BatchNorm] <- layer`` upwards from ``node``; return the unit and its input."""
        activation = self.activation(node) if head else None
        if activation is not None:
            node = _single_input(node)
        norm = self.module(node, NORMS)
        if norm is not None:
            if norm.running_mean is None or norm.running_var is None:
                return None
            node = _single_input(node)
        layer = self.module(node, CONVS + (nn.Linear,))
        if layer is None or (isinstance(layer, CONVS) and (layer.groups != 1 or layer.padding_mode != "zeros")):
            return None
        below = _single_input(node)
        return (Unit(layer, norm, activation), below) if below is not None else None

    def reaches(self, node: torch.fx.Node | None, low: torch.fx.Node, *, flatten_allowed: bool) -> bool | None:
        """Whether ``node`` is ``low`` after pass-through operations; returns whether a flatten was crossed."""
        flattened = False
        while node is not None and node is not low:
            if self._is_flatten(node):
                if flattened or not flatten_allowed:
                    return None
                flattened = True
            else:
                module = self.module(node, PASS_THROUGH + AVG_POOLS, shared=True)
                if module is None or not _is_pass_through(module):
                    return None
            node = _single_input(node)
        return flattened if node is low else None

    def _is_flatten(self, node: torch.fx.Node) -> bool:
        """flatten(x, 1) over all trailing dimensions, as a module, a function or a method."""
        if node.op == "call_module":
            module = self.modules[node.target]
            return isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1
        if (node.op == "call_function" and node.target is torch.flatten) or (
            node.op == "call_method" and node.target == "flatten"
        ):
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
            return start == 1 and end == -1
        return False


def _layer_step(graph: _FxGraph, lower: LevelInfo, upper: LevelInfo, low, up) -> LayerStep | None:
    if upper.name == SOFTMAX:
        found = graph.unit(up, head=False)
        head = "softmax"
    else:
        found = graph.unit(up, head=True)
        head = "activation" if found is not None and found[0].activation is not None else "none"
    if found is None:
        return None
    unit, below = found
    is_linear = isinstance(unit.layer, nn.Linear)
    if head == "softmax" and not is_linear:
        return None
    flattened = graph.reaches(below, low, flatten_allowed=is_linear)
    if flattened is None:
        return None
    if is_linear and ((not flattened and len(lower.shape) != 1) or unit.layer.in_features % lower.n_neurons):
        return None
    return LayerStep(lower, upper, unit, head)


def _block_step(graph: _FxGraph, lower: LevelInfo, upper: LevelInfo, low, up) -> BlockStep | None:
    if upper.module is None:
        return None
    final = graph.activation(up)
    if final is not None and not is_relu(final):
        return None
    node = _single_input(up) if final is not None else up
    candidates = [(node, None)]
    if node is not None and node.op == "call_function" and node.target in ADD_FUNCTIONS and not node.kwargs:
        if len(node.args) == 2 and all(isinstance(a, torch.fx.Node) for a in node.args):
            candidates = [(node.args[0], node.args[1]), (node.args[1], node.args[0])]
    for main, skip in candidates:
        second = graph.unit(main, head=False)
        if second is None or not second[0].is_conv or isinstance(second[0].layer, (nn.Conv1d, nn.Conv3d)):
            continue
        first = graph.unit(second[1], head=True)
        if first is None or not isinstance(first[0].layer, nn.Conv2d):
            continue
        block_input = first[1]
        if graph.reaches(block_input, low, flatten_allowed=False) is None:
            continue
        downsample = None
        if skip is not None and skip is not block_input:
            found = graph.unit(skip, head=False)
            if found is None or not found[0].is_conv or found[1] is not block_input:
                continue
            downsample = found[0]
        return BlockStep(
            lower, upper, first[0], second[0], downsample, skip is not None, final is not None, upper.module
        )
    return None


def plan_closed_form(model: nn.Module, infos: Sequence[LevelInfo]) -> dict[int, ClosedFormStep]:
    """Find the steps of ``infos`` that have a closed form.

    Parameters
    ----------
    model : torch.nn.Module
    infos : sequence of LevelInfo
        The analysed levels, bottom to top.

    Returns
    -------
    dict of int to ClosedFormStep
        Keyed by the position of the step's upper level in ``infos``; steps not listed use autograd.
    """
    try:
        traced = torch.fx.symbolic_trace(model)
    except Exception:  # any model fx cannot trace (data-dependent control flow, ...) uses the autograd path
        return {}
    graph = _FxGraph(traced)
    plan: dict[int, ClosedFormStep] = {}
    for position in range(1, len(infos)):
        lower, upper = infos[position - 1], infos[position]
        if lower.channel_dim != 1 or upper.channel_dim != 1:
            continue
        low, up = graph.node_of(lower), graph.node_of(upper)
        if low is None or up is None:
            continue
        step = _layer_step(graph, lower, upper, low, up) or _block_step(graph, lower, upper, low, up)
        if step is not None:
            plan[position] = step
    return plan
