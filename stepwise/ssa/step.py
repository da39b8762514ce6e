"""The forward pass of one step: the lower level's activation as a leaf, the upper level as its function."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from stepwise.core.capture import top_activation
from stepwise.core.hooks import StopForward, hooked, run_model
from stepwise.core.inputs import KeywordInputs
from stepwise.core.levels import INPUT, LevelInfo

__all__ = ["step_forward"]


class _GuidedReLU(torch.autograd.Function):
    """Identity whose backward keeps only positive gradients (guided backpropagation through a ReLU)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return x.clone()

    @staticmethod
    def setup_context(ctx: object, inputs: tuple, output: Tensor) -> None:
        pass

    @staticmethod
    def backward(ctx: object, grad: Tensor) -> Tensor:
        return grad.clamp(min=0)


def _guided_hook(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
    return _GuidedReLU.apply(output)


def step_forward(
    model: nn.Module, x: Tensor | KeywordInputs, lower: LevelInfo, upper: LevelInfo, *, guided: bool = False
) -> tuple[Tensor, Tensor]:
    """Run one forward pass that records the autograd graph of the step from ``lower`` to ``upper`` only.

    The lower activation becomes a leaf tensor: everything below it runs once, without gradients, and nothing
    above ``upper`` runs (the pass stops there). Tensors the step needs that do not depend on the lower level
    (a skip connection from below, BatchNorm statistics) enter the graph as constants, as docs/design.md asks.

    Must be called inside :func:`analysis_mode` and with gradients enabled.

    Parameters
    ----------
    model : torch.nn.Module
    x : Tensor of shape (N, ...) or KeywordInputs
        A batch on the model's device.
    lower, upper : LevelInfo
        The step's levels; ``lower`` is below ``upper``.
    guided : bool, default=False
        Make the backward pass through every ``nn.ReLU`` keep only positive gradients.

    Returns
    -------
    leaf : Tensor
        The lower activation, a leaf that requires grad.
    upper_activation : Tensor
        The upper activation, a function of ``leaf`` in the autograd graph.
    """
    found: dict[str, Tensor] = {}

    def lower_hook(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
        found["leaf"] = output.detach().clone().requires_grad_(True)
        return found["leaf"].clone()  # in-place operations downstream must not touch the leaf

    def upper_hook(module: nn.Module, args: tuple, output: Tensor) -> None:
        found["upper"] = output
        raise StopForward

    forward: list[tuple[nn.Module, Callable]] = []
    if guided:
        forward += [(m, _guided_hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    if lower.module is not None:
        forward.append((lower.module, lower_hook))
    if upper.module is not None:
        forward.append((upper.module, upper_hook))
    if lower.name == INPUT and isinstance(x, Tensor):  # resolve_levels refuses 'input' for keyword inputs
        found["leaf"] = x.detach().clone().requires_grad_(True)
        x = found["leaf"].clone()
    with hooked(forward=forward):
        try:
            found["upper"] = top_activation(upper, run_model(model, x))
        except StopForward:
            pass
    return found["leaf"], found["upper"]
