"""The streamed capture of neuron values: one forward pass per batch, each level reduced inside its hook and
copied into a preallocated float32 array.

A neuron's value is taken from the level's activation *as the level's module returns it* (for the default
levels, after the elementwise activation function, so a ReLU level holds no negative value). ``reduce="mean"``
is the library's neuron (a channel's mean over its positions), ``"max"`` a channel's maximum over its positions,
``None`` keeps every unit: the neuron ``c * P + p`` is channel ``c`` at the flattened position ``p`` of ``P``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from stepwise.core.capture import top_activation
from stepwise.core.hooks import NonFiniteError, all_finite, analysis_mode, forward_pass
from stepwise.core.inputs import Batch, batch_mask, is_token_level, token_mean
from stepwise.core.levels import INPUT, OUTPUT, SOFTMAX, LevelInfo

__all__ = ["REDUCTIONS", "capture_values", "n_values", "reduce_activation"]

#: The ``reduce`` options: a channel's mean or maximum over its positions, or every unit (``None``).
REDUCTIONS = ("mean", "max", None)


def n_values(info: LevelInfo, reduce: str | None) -> int:
    """How many neurons a level has under ``reduce``: its channels, or every unit when ``reduce`` is None."""
    return int(np.prod(info.shape)) if reduce is None else info.n_neurons


def reduce_activation(
    activation: Tensor, reduce: str | None, channel_dim: int = 1, mask: Tensor | None = None
) -> Tensor:
    """The neuron values of a batch of activations.

    Parameters
    ----------
    activation : Tensor of shape (N, C, *spatial) or (N, D)
    reduce : {"mean", "max", None}
    channel_dim : int, default=1
    mask : Tensor of shape (N, T), optional
        The token mask of keyword inputs: on an (N, T, D) token level (``channel_dim=2``) the mean or the maximum
        runs over the real tokens only (:func:`stepwise.core.inputs.token_mean`).

    Returns
    -------
    Tensor of shape (N, C), or (N, C * prod(spatial)) when ``reduce`` is None
        In the activation's dtype, on its device.
    """
    if activation.dim() == 2:
        return activation
    if reduce is None:
        return activation.movedim(channel_dim, 1).flatten(1)
    if is_token_level(activation, channel_dim, mask):
        assert mask is not None
        if reduce == "mean":
            return token_mean(activation, channel_dim, mask)
        padding = (mask == 0).to(activation.device).unsqueeze(-1)
        return activation.masked_fill(padding, -torch.inf).amax(dim=1)
    flat = activation.movedim(channel_dim, 1).flatten(2)
    return flat.mean(2) if reduce == "mean" else flat.amax(2)


def capture_values(
    model: nn.Module,
    inputs: Batch,
    rows: np.ndarray,
    infos: Sequence[LevelInfo],
    *,
    reduce: str | None,
    batch_size: int,
    device: torch.device,
    bar: Any = None,
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Run the model once over ``inputs[rows]`` in batches and return every level's neuron values.

    Parameters
    ----------
    model : torch.nn.Module
    inputs : Tensor of shape (N, ...) or KeywordInputs
        On any device; each batch is moved to ``device``.
    rows : ndarray of int, shape (n,)
        Which inputs, in this order.
    infos : sequence of LevelInfo
        Levels from :func:`stepwise.core.levels.resolve_levels`.
    reduce : {"mean", "max", None}
    batch_size : int
    device : torch.device
    bar : tqdm progress bar, optional
        Advanced by the number of inputs of each batch.

    Returns
    -------
    values : dict of str to ndarray of shape (n, n_neurons), float32
        Preallocated once and filled batch by batch.
    predicted : ndarray of shape (n,), int64, or None
        The argmax of the model output when it is class scores (N, C) with C >= 2, else None.

    Raises
    ------
    NonFiniteError
        If a level's values hold NaN or Inf for some batch (the level and the inputs are named).
    """
    n = len(rows)
    values = {info.name: np.empty((n, n_values(info, reduce)), dtype=np.float32) for info in infos}
    predicted: np.ndarray | None = np.empty(n, dtype=np.int64)
    window = [0, 0]  # the rows of the current batch
    masks: list[Tensor | None] = [None]  # the token mask of the current batch

    def store(name: str, activation: Tensor, channel_dim: int) -> None:
        reduced = reduce_activation(activation.detach(), reduce, channel_dim, masks[0])
        if not all_finite(reduced):
            start, stop = window
            bad = rows[start:stop][~torch.isfinite(reduced.flatten(1)).all(dim=1).cpu().numpy()]
            raise NonFiniteError(
                f"Level {name!r} holds NaN or Inf values for the inputs {bad[:5].tolist()}"
                f"{' and more' if len(bad) > 5 else ''} (indices into the inputs given): check these inputs and the "
                "model weights for non-finite values."
            )
        values[name][window[0] : window[1]] = reduced.to(torch.float32).cpu().numpy()

    def make_hook(info: LevelInfo) -> Callable:
        def hook(module: nn.Module, args: tuple, output: Tensor) -> None:
            store(info.name, output, info.channel_dim)  # reduced at once: later in-place ops do not matter

        return hook

    hooks = [(info.module, make_hook(info)) for info in infos if info.module is not None]
    tops = [info for info in infos if info.name in (SOFTMAX, OUTPUT)]
    index = torch.as_tensor(rows, dtype=torch.int64)
    with analysis_mode(model, owner="ActivationSorter"), torch.no_grad():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            window[:] = [start, stop]
            batch = inputs[index[start:stop].to(inputs.device)].to(device)
            masks[0] = batch_mask(batch)
            for info in infos:
                if info.name == INPUT:
                    store(INPUT, batch, info.channel_dim)
            output = forward_pass(model, batch, hooks)
            for info in tops:
                store(info.name, top_activation(info, output), info.channel_dim)
            if predicted is not None:
                if isinstance(output, Tensor) and output.dim() == 2 and output.shape[1] >= 2:
                    predicted[start:stop] = output.argmax(1).cpu().numpy()
                else:
                    predicted = None
            if bar is not None:
                bar.update(stop - start)
    return values, predicted
