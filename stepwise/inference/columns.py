"""The columns of the analysed levels, captured batch by batch in forward passes without gradients.

A conv level's activation (N, C, H, W) holds H·W columns per input, each a vector of its C channels at one position
(paper 001, Sec. 3.2); a dense level (N, D) holds one column. Positions are numbered row-major over the spatial
dimensions, as in :meth:`~stepwise.inference.InferenceGraphs.receptive_field`. A token level of keyword inputs, the
(N, T, D) activation of a transformer (``channel_dim=2``), holds one column per token, the T positions; only the real
tokens of the token mask are columns (:func:`real_columns`), padding is none.

:class:`ColumnSource` streams them: one forward pass per batch of inputs, every level at once. When all columns
of all levels fit in ``cache_bytes`` they are kept after the first pass, so that EM, which reads them once per
iteration, runs the network once; otherwise every pass runs the network again and memory stays bounded by the batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from stepwise.core.capture import capture
from stepwise.core.hooks import all_finite
from stepwise.core.inputs import Batch, batch_mask
from stepwise.core.levels import LevelInfo

__all__ = [
    "BATCH_BYTES",
    "CACHE_BYTES",
    "ColumnSource",
    "Level",
    "as_columns",
    "auto_batch_size",
    "count_columns",
    "positions_of",
    "real_columns",
]

#: Bytes of columns per batch that the automatic batch size aims at.
BATCH_BYTES = 1 << 26
#: Columns of all levels kept in memory after the first pass when they take at most this many bytes.
CACHE_BYTES = 1 << 30
_MAX_BATCH = 4096


@dataclass(frozen=True)
class Level:
    """One analysed level.

    Attributes
    ----------
    info : LevelInfo
        The resolved level.
    fixed : bool
        Whether the level is the class output, modelled by the paper's fixed mixture.
    """

    info: LevelInfo
    fixed: bool = False

    @property
    def name(self) -> str:
        """The level name."""
        return self.info.name

    @property
    def tokens(self) -> bool:
        """Whether the level is a token level (N, T, D) of keyword inputs, its units in dimension 2."""
        return self.info.channel_dim == 2 and len(self.info.shape) == 2

    @property
    def dim(self) -> int:
        """D, the length of a column (the channels, or a token's units)."""
        return int(self.info.shape[self.info.channel_dim - 1])

    @property
    def spatial(self) -> tuple[int, ...]:
        """The spatial shape, (T,) for a token level (T of the probing inputs), ``()`` for a dense level."""
        return tuple(self.info.shape[:1]) if self.tokens else tuple(self.info.shape[1:])

    @property
    def positions(self) -> int:
        """Columns per input (1 for a dense level)."""
        return math.prod(self.spatial)

    @property
    def dense(self) -> bool:
        """Whether the level is a vector per input (N, D)."""
        return not self.spatial


def as_columns(activation: Tensor, level: Level) -> Tensor:
    """A batch's activation (B, D, *spatial) or (B, D) as columns (B, P, D), positions row-major."""
    if level.dense:
        return activation.reshape(activation.shape[0], 1, -1)
    if level.tokens:
        return activation
    return activation.flatten(2).transpose(1, 2)


def positions_of(level: Level, inputs: Any) -> int:
    """Columns per input of ``inputs`` at a level: T of their token ids for a token level, else fixed."""
    return int(inputs.shape[1]) if level.tokens else level.positions


def real_columns(level: Level, columns: Tensor, mask: Tensor | None) -> Tensor:
    """A batch's columns (B, P, D) as (M, D): all of them, or on a token level the real tokens of ``mask`` (B, T)."""
    if level.tokens and mask is not None:
        return columns[mask.to(columns.device)]
    return columns.reshape(-1, columns.shape[-1])


def count_columns(level: Level, inputs: Any) -> int:
    """The columns of ``inputs`` at a level: the real tokens of a token level, else N times the positions."""
    mask = batch_mask(inputs)
    if level.tokens and mask is not None:
        return int(mask.sum())
    return len(inputs) * positions_of(level, inputs)


def auto_batch_size(levels: Sequence[Level], itemsize: int) -> int:
    """Inputs per batch so that a batch's columns take about :data:`BATCH_BYTES`."""
    per_input = sum(level.positions * level.dim for level in levels) * itemsize
    return max(1, min(_MAX_BATCH, BATCH_BYTES // max(per_input, 1)))


class ColumnSource:
    """The columns of some levels over a set of inputs, batch by batch.

    Parameters
    ----------
    model : torch.nn.Module
    inputs : Tensor of shape (N, ...) or KeywordInputs
    levels : sequence of Level
    batch_size : int
    device : torch.device
        The model's device.
    dtype : torch.dtype
        The dtype of the columns.
    cache_bytes : int, default=CACHE_BYTES
    progress : str or None
        A label for a progress bar, or ``None`` for none.
    target : torch.device, optional
        Where the columns go (the mixtures' device); ``device`` by default.
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: Batch,
        levels: Sequence[Level],
        *,
        batch_size: int,
        device: torch.device,
        dtype: torch.dtype,
        cache_bytes: int = CACHE_BYTES,
        progress: str | None = None,
        target: torch.device | None = None,
    ) -> None:
        self.model, self.inputs, self.levels = model, inputs, list(levels)
        self.batch_size, self.device, self.dtype, self.progress = batch_size, device, dtype, progress
        self.target = device if target is None else target
        total = len(inputs) * sum(positions_of(level, inputs) * level.dim for level in self.levels)
        self._keep = total * torch.empty((), dtype=dtype).element_size() <= cache_bytes
        self._cache: list[dict[str, Tensor]] | None = None

    @property
    def n_inputs(self) -> int:
        """N."""
        return len(self.inputs)

    def mask(self, start: int, size: int) -> Tensor | None:
        """The token mask (B, T), bool on the columns' device, of the batch of ``size`` inputs from ``start``;
        ``None`` for tensor inputs or inputs without a mask."""
        mask = batch_mask(self.inputs)
        return None if mask is None else mask[start : start + size].to(self.target, torch.bool)

    def batches(self) -> Iterator[tuple[int, dict[str, Tensor]]]:
        """Yield ``(start, {level: columns of shape (B, P, D)})`` over the inputs, in order."""
        if self._cache is not None:
            start = 0
            for batch in self._cache:
                yield start, batch
                start += len(next(iter(batch.values())))
            return
        kept: list[dict[str, Tensor]] = []
        bar = None
        if self.progress is not None:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.n_inputs, desc=self.progress, unit="input", leave=False)
        try:
            for start in range(0, self.n_inputs, self.batch_size):
                batch = self._capture(self.inputs[start : start + self.batch_size])
                if self._keep:
                    kept.append(batch)
                if bar is not None:
                    bar.update(len(next(iter(batch.values()))))
                yield start, batch
        finally:
            if bar is not None:
                bar.close()
        if self._keep:
            self._cache = kept

    def _capture(self, x: Batch) -> dict[str, Tensor]:
        x = x.to(self.device, dtype=self.dtype) if x.is_floating_point() else x.to(self.device)
        activations = capture(self.model, x, [level.info for level in self.levels])
        out = {}
        for level in self.levels:
            activation = activations[level.name]
            if not all_finite(activation):
                raise ValueError(
                    f"Level {level.name!r} holds NaN or Inf values on some of the inputs: check the inputs and the "
                    "model's weights (a value that overflows the dtype, a division by zero)."
                )
            columns = as_columns(activation.to(self.dtype), level).to(self.target)
            out[level.name] = columns.contiguous() if not self._keep else columns.clone().contiguous()
        return out
