"""What :func:`perturb.rank_neurons` runs through the model: the resamples, drawn or given, and the levels.

One input and seeds are checked by :mod:`stepwise.core.inputs`, neuron indices by
:func:`stepwise.core.validation.check_neurons`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from stepwise.core.hooks import all_finite, check_has_values
from stepwise.core.levels import INPUT, OUTPUT, SOFTMAX, LevelInfo, resolve_levels

__all__ = ["batches", "check_samples", "noisy_batches", "resolve_ranked"]


def noisy_batches(
    x: Tensor, n_samples: int, sigma: float, generator: torch.Generator, batch_size: int
) -> Iterator[Tensor]:
    """Yield the resamples ``x * (1 + sigma * z)``, z ~ N(0, 1) per element, in batches.

    Sample ``i`` uses the ``i``-th draw ``torch.randn(x.shape[1:], generator=generator)`` in ``x``'s dtype on
    the generator's device, whatever the batch size, so the resamples do not depend on ``batch_size``.

    Parameters
    ----------
    x : Tensor of shape (1, ...)
    n_samples, batch_size : int
    sigma : float
    generator : torch.Generator

    Yields
    ------
    Tensor of shape (b, ...)
        ``b = batch_size`` except perhaps in the last batch; on ``x``'s device.
    """
    shape = x.shape[1:]
    for start in range(0, n_samples, batch_size):
        size = min(batch_size, n_samples - start)
        noise = torch.stack(
            [torch.randn(shape, generator=generator, dtype=x.dtype, device=generator.device) for _ in range(size)]
        )
        yield x * (1 + sigma * noise.to(x.device))


def batches(
    x: Tensor, source: Tensor | torch.Generator, n_samples: int, sigma: float, batch_size: int
) -> Iterator[Tensor]:
    """The resamples in batches on ``x``'s device: given ones (a tensor), or drawn from a generator."""
    if isinstance(source, Tensor):
        for start in range(0, n_samples, batch_size):
            yield source[start : start + batch_size].to(x.device)
    else:
        yield from noisy_batches(x, n_samples, sigma, source, batch_size)


def _dims(shape: Sequence[int]) -> str:
    return ", ".join(str(d) for d in shape)


def check_samples(samples: Any, x: Tensor, owner: str) -> Tensor:
    """Check user resamples against the clean input ``x`` of shape (1, ...); return them detached.

    Raises
    ------
    TypeError
        If ``samples`` is not a tensor, or not in ``x``'s dtype.
    ValueError
        If ``samples`` is not shaped (n, *input shape) with n >= 2, is on the meta device or holds NaN or Inf.
    """
    expected = x.shape[1:]
    if not isinstance(samples, Tensor):
        raise TypeError(
            f"The 'samples' parameter of {owner} must be a torch.Tensor of shape (n, {_dims(expected)}) or None. "
            f"Got {type(samples).__name__} instead."
        )
    if samples.dim() != len(expected) + 1 or samples.shape[1:] != expected or len(samples) < 2:
        raise ValueError(
            f"'samples' has shape {tuple(samples.shape)}, but resamples of an input of shape {tuple(expected)} "
            f"must be stacked as (n, {_dims(expected)}) with n >= 2. Stack at least two resamples, each shaped "
            "like the image."
        )
    if samples.dtype != x.dtype:
        raise TypeError(f"'samples' is {samples.dtype} but the image and the model are {x.dtype}: convert it.")
    check_has_values(samples, "'samples'")
    if not all_finite(samples):
        raise ValueError("'samples' holds NaN or Inf values: remove or replace them before the analysis.")
    return samples.detach()


def resolve_ranked(model: nn.Module, x: Tensor, levels: Sequence[str] | None) -> tuple[list[LevelInfo], LevelInfo]:
    """The ranked levels and the model output level (for o), from one checked forward pass.

    ``levels`` are the names to rank, bottom to top (one is enough), or ``None`` for the default levels. The
    model output is resolved with them, as ``'output'``, when they do not end with ``'softmax'`` or
    ``'output'``.
    """
    if levels is None:
        resolved = ranked = resolve_levels(model, x, None)
        if resolved[-1].name not in (SOFTMAX, OUTPUT):  # the top default level is the model output itself
            resolved = resolve_levels(model, x, [info.name for info in ranked] + [OUTPUT])
    else:
        if isinstance(levels, str) or not isinstance(levels, Sequence):
            raise TypeError(
                f"levels must be a list of level names, bottom to top, or None; got {type(levels).__name__}. "
                "See stepwise.list_levels(model, example_input)."
            )
        names = list(levels)
        if not names:
            raise ValueError("levels is empty: name at least one level, or pass None for the default levels.")
        padded = names if names[-1] in (SOFTMAX, OUTPUT) else names + [OUTPUT]
        if len(padded) == 1:
            padded = [INPUT] + padded
        resolved = resolve_levels(model, x, padded)
        ranked = [info for info in resolved if info.name in names]
    return ranked, dataclasses.replace(resolved[-1], name=OUTPUT)  # the top is 'softmax' or 'output'
