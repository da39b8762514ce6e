"""The weights that produce a level's neurons: which Conv/Linear module feeds a level, and its per-neuron rows.

The feeding module is found from the autograd graph of one forward pass of the clean input: starting at the
level's activation, every path back through the graph is followed until it reaches the output of a weight
layer (``stepwise.levels.WEIGHT_LAYERS``). Elementwise activations, pooling, normalisation, reshaping and
dropout are passed through; a level fed by several weight layers (a skip connection) has no single feeding
module. Hooks are registered through :func:`stepwise.levels.hooked`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.autograd.graph import Node

from stepwise.core.levels import INPUT, OUTPUT, SOFTMAX, WEIGHT_LAYERS, LevelInfo
from stepwise.core.hooks import hooked, run_model
from stepwise.core.inputs import Batch

__all__ = ["Feeding", "feeding_modules", "neuron_weights"]

_CONV_TRANSPOSE = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


@dataclass(frozen=True)
class Feeding:
    """The weight layer that produces a level, or why there is none.

    Attributes
    ----------
    module : str or None
        The module name of the weight layer, ``None`` when the level has no single one.
    reason : str
        Empty when ``module`` is set; else why the level has no weights, as a sentence.
    """

    module: str | None
    reason: str = ""


def feeding_modules(
    model: nn.Module, x: Tensor, levels: Sequence[LevelInfo], wrap: Callable[[Tensor], Batch] | None = None
) -> tuple[dict[str, Feeding], dict[str, Tensor]]:
    """Find, for each level, the Conv/Linear module whose output feeds it; keep the level's activation on ``x``.

    Must be called inside :func:`stepwise.levels.analysis_mode` (parameters frozen), so that only the input
    requires grad and no parameter gradient is ever recorded.

    Parameters
    ----------
    model : torch.nn.Module
    x : Tensor of shape (1, ...)
        The clean input, on the model's device.
    levels : sequence of LevelInfo
    wrap : callable, optional
        Makes the model input from ``x`` (keyword inputs whose token embeddings are ``x``, say); ``x`` itself by
        default.

    Returns
    -------
    feeding : dict of str to Feeding
        One entry per level.
    activations : dict of str to Tensor
        Each level's activation on ``x`` (a copy, detached), and the model output under ``'output'`` (and
        its softmax under ``'softmax'``).
    """
    names = {m: n for n, m in model.named_modules() if n}
    order = {n: i for i, n in enumerate(names.values())}
    weight_nodes: dict[Node, str] = {}
    level_nodes: dict[str, Node] = {}
    by_module = {info.module: info.name for info in levels if info.module is not None}

    activations: dict[str, Tensor] = {}

    def record(module: nn.Module, args: tuple, output: object) -> None:
        if not isinstance(output, Tensor):
            return
        if module in by_module:
            activations[by_module[module]] = output.detach().clone()
        if output.grad_fn is None:
            return
        if isinstance(module, WEIGHT_LAYERS):
            weight_nodes[output.grad_fn] = names[module]
        if module in by_module:
            level_nodes[by_module[module]] = output.grad_fn

    watched = [m for m in names if isinstance(m, WEIGHT_LAYERS) or m in by_module]
    hooks: list[tuple[nn.Module, Callable]] = [(m, record) for m in watched]
    leaf = x.detach().clone().requires_grad_(True)
    with torch.enable_grad(), hooked(forward=hooks):
        output = model(leaf) if wrap is None else run_model(model, wrap(leaf))
    activations[INPUT] = x.detach().clone()
    if isinstance(output, Tensor):
        activations[OUTPUT] = output.detach()
        activations[SOFTMAX] = torch.softmax(activations[OUTPUT], dim=1) if output.dim() == 2 else output.detach()
        if output.grad_fn is not None:
            level_nodes[OUTPUT] = level_nodes[SOFTMAX] = output.grad_fn

    found: dict[str, Feeding] = {}
    for info in levels:
        start = level_nodes.get(info.name)
        if start is None:
            why = (
                "level 'input' is the model input, which no Conv/Linear module produces"
                if info.name == INPUT
                else f"level {info.name!r} does not depend on the input through the autograd graph"
            )
            found[info.name] = Feeding(None, why)
            continue
        modules = sorted(_first_weight_layers(start, weight_nodes), key=order.__getitem__)
        if len(modules) != 1:
            why = (
                f"level {info.name!r} is fed by several Conv/Linear modules {modules} (paths that join, such as a "
                "skip connection), so no single module produces its neurons"
                if modules
                else f"no Conv/Linear module lies below level {info.name!r}"
            )
            found[info.name] = Feeding(None, why)
            continue
        rows = neuron_weights(model.get_submodule(modules[0])).shape[0]
        if rows != info.n_neurons:
            found[info.name] = Feeding(
                None,
                f"module {modules[0]!r} feeds level {info.name!r} but produces {rows} neurons where the level has "
                f"{info.n_neurons} (a reshape lies between them)",
            )
            continue
        found[info.name] = Feeding(modules[0])
    return found, activations


def _first_weight_layers(start: Node, weight_nodes: dict[Node, str]) -> set[str]:
    """Names of the weight layers first met on each path back from ``start`` through the autograd graph."""
    found: set[str] = set()
    seen: set[Node] = set()
    stack: list[Node | None] = [start]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if node in weight_nodes:
            found.add(weight_nodes[node])
            continue
        stack.extend(parent for parent, _ in node.next_functions)
    return found


def neuron_weights(module: nn.Module) -> Tensor:
    """The weights that produce each output neuron of a weight layer, one row per neuron.

    Parameters
    ----------
    module : torch.nn.Module
        One of ``stepwise.levels.WEIGHT_LAYERS``.

    Returns
    -------
    Tensor of shape (n_out, n_weights)
        Row ``k`` holds every weight that multiplies an input of output neuron (channel or unit) ``k``: the
        kernel of a convolution over its input channels, a row of a linear layer. The bias is not included.
    """
    weight = module.weight.detach()
    if isinstance(module, _CONV_TRANSPOSE):
        groups = module.groups  # weight (in, out / groups, *kernel)
        per_group_in, per_group_out = weight.shape[0] // groups, weight.shape[1]
        grouped = weight.reshape(groups, per_group_in, per_group_out, -1).transpose(1, 2)
        return grouped.reshape(groups * per_group_out, -1)
    return weight.reshape(weight.shape[0], -1)
