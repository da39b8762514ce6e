"""Capturing the activations of levels in one forward pass without gradients."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from .hooks import analysis_mode, forward_pass
from .levels import INPUT, OUTPUT, SOFTMAX, LevelInfo

__all__ = ["capture", "top_activation"]


def top_activation(info: LevelInfo, output: object) -> Tensor:
    assert isinstance(output, Tensor)  # checked by resolve_levels
    if info.name == SOFTMAX:
        return torch.softmax(output, dim=1)
    return output


def capture(model: nn.Module, x: Tensor, levels: Sequence[LevelInfo]) -> dict[str, Tensor]:
    """Run one forward pass without gradients and return the activation of every level.

    Parameters
    ----------
    model : torch.nn.Module
    x : Tensor of shape (N, ...)
        A batch on the model's device.
    levels : sequence of LevelInfo
        Levels from :func:`resolve_levels`.

    Returns
    -------
    dict of str to Tensor
        Each level's activation, as the level's module returned it: a copy where a later in-place operation of
        the model changes it (``LevelInfo.rewritten``), else the tensor itself. The forward pass stops as soon
        as the last module level exists, unless ``softmax`` or ``output`` is asked for.
    """
    return _capture(model, x, levels, copy_all=False)


def _capture(model: nn.Module, x: Tensor, levels: Sequence[LevelInfo], *, copy_all: bool) -> dict[str, Tensor]:
    captured: dict[str, Tensor] = {}
    versions: dict[str, int] = {}
    module_levels = [info for info in levels if info.module is not None]
    needs_output = any(info.name in (SOFTMAX, OUTPUT) for info in levels)

    def make_hook(info: LevelInfo) -> Callable:
        def hook(module: nn.Module, args: tuple, output: Tensor) -> None:
            if info.rewritten or copy_all:
                captured[info.name] = output.detach().clone()
            else:
                captured[info.name] = output.detach()  # shares the version counter of the output
                versions[info.name] = output._version

        return hook

    if any(info.name == INPUT for info in levels):
        captured[INPUT] = x.detach().clone()
    hooks = [(info.module, make_hook(info)) for info in module_levels]
    last = module_levels[-1].module if module_levels and not needs_output else None
    with analysis_mode(model, owner="stepwise.capture"), torch.no_grad():
        output = forward_pass(model, x, hooks, stop_after=last)
    if any(captured[name]._version != version for name, version in versions.items()):
        return _capture(model, x, levels, copy_all=True)  # changed in place on these inputs only: copy all
    for info in levels:
        if info.name in (SOFTMAX, OUTPUT):
            captured[info.name] = top_activation(info, output).detach()
    return {info.name: captured[info.name] for info in levels}
