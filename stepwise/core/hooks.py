"""Running a model without leaving a trace: hooks removed in ``finally``, modes and flags restored.

Every hook the library registers goes through :func:`hooked`; the model's ``training`` flags and the
``requires_grad`` flags of its parameters are managed by :func:`analysis_mode`, which restores them whatever
happens. :func:`run_model` re-raises a model's own errors with the shape of the inputs, and
:func:`forward_pass` ends a pass early once the last needed module has run.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from .inputs import KeywordInputs

__all__ = [
    "NonFiniteError",
    "StopForward",
    "all_finite",
    "analysis_mode",
    "check_has_values",
    "check_model_has_values",
    "forward_pass",
    "hooked",
    "model_device_dtype",
    "run_model",
]


@contextlib.contextmanager
def hooked(
    forward: Sequence[tuple[nn.Module, Callable]] = (),
    forward_pre: Sequence[tuple[nn.Module, Callable]] = (),
    *,
    first: Sequence[tuple[nn.Module, Callable]] = (),
) -> Iterator[None]:
    """Register forward (and forward-pre) hooks for the duration of a ``with`` block.

    Hooks are registered in the order given, so a later hook on the same module sees the output returned by
    an earlier one; ``first`` are forward hooks put in front of every other, those registered before included.
    Every hook is removed when the block exits, normally or by an exception.
    """
    handles = []
    try:
        for module, fn in forward_pre:
            handles.append(module.register_forward_pre_hook(fn))
        for module, fn in forward:
            handles.append(module.register_forward_hook(fn))
        for module, fn in reversed(first):
            handles.append(module.register_forward_hook(fn, prepend=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def analysis_mode(model: nn.Module, *, owner: str = "stepwise", warn: bool = True) -> Iterator[None]:
    """Put ``model`` in eval mode with frozen parameters, and restore both flags on exit.

    A model in train mode is analysed in eval mode (docs/design.md) with a warning. Freezing the parameters keeps
    autograd from recording anything below the lower level of a step; their ``.grad`` is never touched.
    """
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    if warn and model.training:
        warnings.warn(
            f"{owner}: the model is in train mode; it is analysed in eval mode (dropout off, BatchNorm running "
            "statistics) and put back in train mode afterwards. Call model.eval() to silence this warning.",
            UserWarning,
            stacklevel=4,
        )
    try:
        model.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for m, mode in modes:
            m.training = mode
        for p, flag in flags:
            p.requires_grad_(flag)


def model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype | None]:
    """The device and floating dtype of the model's first floating parameter or buffer (CPU, None if none)."""
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
    return torch.device("cpu"), None


def all_finite(tensor: Tensor) -> bool:
    """Whether no value of ``tensor`` is NaN or infinite: one ``aminmax`` pass (NaN propagates), many times
    faster on a CPU than ``isfinite(tensor).all()``."""
    if not tensor.is_floating_point() or tensor.numel() == 0:
        return True
    low, high = torch.aminmax(tensor)
    return bool(torch.isfinite(low) & torch.isfinite(high))


def check_has_values(tensor: Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``tensor`` is on the meta device, where tensors have a shape but no values."""
    if tensor.is_meta:
        raise ValueError(
            f"{name} is on the meta device, where tensors have a shape but no values: pass {name} holding values, "
            "on the CPU or a GPU."
        )


def check_model_has_values(model: nn.Module) -> None:
    if any(t.is_meta for t in list(model.parameters()) + list(model.buffers())):
        raise ValueError(
            f"The parameters of {type(model).__name__} are on the meta device, where tensors have a shape but no "
            "values: materialise them first, for example model.to_empty(device='cpu') followed by "
            "model.load_state_dict(state_dict)."
        )


class NonFiniteError(ValueError):
    """An activation holds NaN or Inf values (raised by the library's hooks during a forward pass)."""


class StopForward(Exception):
    """Raised by a hook to end a forward pass once the last needed activation exists."""


def run_model(model: nn.Module, x: Tensor | KeywordInputs) -> object:
    """Run the model on a tensor, or on keyword tensors as ``model(**x.tensors)`` (the output of the module that
    ``x.replaced`` names replaced), re-raising its errors with the shape and dtype of the inputs."""
    from .inputs import KeywordInputs  # inputs imports this module

    try:
        if isinstance(x, KeywordInputs) and x.replaced is not None:
            module, activation = x.replaced
            with hooked(first=[(module, lambda m, args, output: activation)]):
                return model(**x.tensors)
        if isinstance(x, KeywordInputs):
            return model(**x.tensors)
        return model(x)
    except (StopForward, NonFiniteError):
        raise
    except Exception as error:  # the user's model failed on the user's inputs: say which inputs
        raise ValueError(
            f"The model raised {type(error).__name__} on inputs of shape {tuple(x.shape)} and dtype {x.dtype}: "
            f"{error}. Pass inputs shaped and typed as the model expects (batch dimension first)."
        ) from error


def forward_pass(
    model: nn.Module,
    x: Tensor | KeywordInputs,
    hooks: Sequence[tuple[nn.Module, Callable]] = (),
    *,
    stop_after: nn.Module | None = None,
) -> object:
    """Run the model on ``x`` with forward hooks, ending the pass as soon as ``stop_after`` has run.

    Returns
    -------
    object
        The model output, or ``None`` when the pass was ended early.
    """

    def stop(module: nn.Module, args: tuple, output: object) -> None:
        raise StopForward

    stops = [] if stop_after is None else [(stop_after, stop)]
    with hooked(forward=list(hooks) + stops):
        try:
            return run_model(model, x)
        except StopForward:
            return None
