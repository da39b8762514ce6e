"""The activation vectors that decision paths cluster: one streamed forward pass into preallocated float32 arrays.

Each analysed level gives every input one feature vector (``features="flatten"``: the whole activation, as the
paper clusters convolutional maps; ``"mean"``: the mean of each channel over its spatial positions, the library's
neuron convention), or, with a time dimension (``time_dim``), one vector per time step. The top of the resolved
levels (the model output, or its softmax) gives the model's prediction of every input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from stepwise.core.capture import capture
from stepwise.core.hooks import NonFiniteError, all_finite, model_device_dtype
from stepwise.core.inputs import Batch, KeywordInputs, batch_mask, is_token_level, token_mean
from stepwise.core.levels import LevelInfo

__all__ = [
    "FEATURES",
    "BATCH_BYTES",
    "MAX_BATCH",
    "LevelFeatures",
    "auto_batch_size",
    "capture_features",
    "stream_features",
]

#: The choices of the ``features`` option.
FEATURES = ("flatten", "mean")
#: Bytes of captured activations per batch that the automatic batch size aims at.
BATCH_BYTES = 1 << 26
#: The largest automatic batch: the layers between the levels (a first convolution is often the largest
#: activation of a network) are not seen by the estimate, and their memory grows with the batch too.
MAX_BATCH = 256


@dataclass(frozen=True)
class LevelFeatures:
    """How one level's activation becomes feature vectors.

    Attributes
    ----------
    info : LevelInfo
        The resolved level.
    features : {'flatten', 'mean'}
    time_dim : int or None
        The dimension of the activation (the batch dimension counting as 0) that indexes time steps.
    """

    info: LevelInfo
    features: str
    time_dim: int | None = None

    @property
    def steps(self) -> int:
        """Time steps per input (1 without a time dimension)."""
        return 1 if self.time_dim is None else self.info.shape[self.time_dim - 1]

    @property
    def dim(self) -> int:
        """Length D of one feature vector."""
        shape = list(self.info.shape)
        channel = self.info.channel_dim - 1
        if self.time_dim is not None:
            del shape[self.time_dim - 1]
            channel = 0  # after the time dimension is taken out, the first remaining one indexes channels
        if self.features == "flatten" or not shape:
            return math.prod(shape)
        return shape[channel]

    def transform(self, activation: Tensor, mask: Tensor | None = None) -> Tensor:
        """Feature vectors of a batch: (B, D), or (B, T, D) with a time dimension; float32, not copied when the
        activation already is a contiguous float32 matrix. With the token mask (B, T) of keyword inputs, the
        ``mean`` of a token level runs over the real tokens only."""
        x = activation
        if self.time_dim is None and self.features == "mean" and is_token_level(x, self.info.channel_dim, mask):
            return token_mean(x, self.info.channel_dim, mask).to(torch.float32)
        if self.time_dim is not None:
            x = x.movedim(self.time_dim, 1)  # (B, T, *rest)
            if self.features == "flatten" or x.dim() <= 3:
                return x.reshape(x.shape[0], x.shape[1], -1).to(torch.float32)
            return x.flatten(3).mean(dim=3).to(torch.float32)
        if self.features == "flatten" or x.dim() == 2:
            return x.reshape(x.shape[0], -1).to(torch.float32)
        x = x.movedim(self.info.channel_dim, 1)
        return x.flatten(2).mean(dim=2).to(torch.float32)


def auto_batch_size(levels: Sequence[LevelInfo], n_inputs: int) -> int:
    """Inputs per batch so that the captured activations of one batch take about :data:`BATCH_BYTES`, at most
    :data:`MAX_BATCH`."""
    per_input = sum(math.prod(info.shape) for info in levels) * 4
    return max(1, min(n_inputs, MAX_BATCH, BATCH_BYTES // max(per_input, 1)))


def _check_finite(name: str, tensor: Tensor, start: int) -> None:
    if not all_finite(tensor):
        raise NonFiniteError(
            f"Level {name!r} holds NaN or Inf values for the inputs {start} to {start + len(tensor) - 1}: check "
            "those inputs and the model weights for non-finite values."
        )


def _check_tokens(inputs: Batch, specs: Sequence[LevelFeatures]) -> None:
    """Keyword inputs: a token level's features must not see the padding (``features="mean"``, no time dimension)."""
    if not isinstance(inputs, KeywordInputs):
        return
    for spec in specs:
        shape = spec.info.shape
        if len(shape) == 2 and shape[0] == inputs.shape[1] and (spec.features != "mean" or spec.time_dim is not None):
            raise ValueError(
                f"Level {spec.info.name!r} is a token level (shape {shape} per input) of inputs given as a dict: "
                f"features={spec.features!r}{'' if spec.time_dim is None else f' with time_dim={spec.time_dim}'} "
                "would include the padding tokens, so padding would change the paths. Pass features='mean' (each "
                "unit's mean over the real tokens) and time_dim=None."
            )


def stream_features(
    model: nn.Module,
    inputs: Batch,
    specs: Sequence[LevelFeatures],
    top: LevelInfo,
    *,
    batch_size: int,
    progress: bool = False,
    desc: str = "activations",
) -> Iterator[tuple[int, dict[str, Tensor], Tensor]]:
    """Yield, batch by batch, the first input's index, each level's features and the model's predictions.

    Parameters
    ----------
    model : torch.nn.Module
    inputs : Tensor of shape (N, ...) or KeywordInputs
        Moved to the model's device one batch at a time.
    specs : sequence of LevelFeatures
        The levels to capture, bottom to top.
    top : LevelInfo
        The model output (or its softmax): its argmax over dimension 1 is the prediction.
    batch_size : int
    progress : bool, default=False
        Show a progress bar over the batches.

    Raises
    ------
    ValueError
        Before the first batch: keyword inputs with a token level whose features would include the padding.

    Yields
    ------
    start : int
    features : dict of str to Tensor of shape (B, D) or (B, T, D), float32
    predicted : Tensor of shape (B,), int64
    """
    device, _ = model_device_dtype(model)
    levels = [spec.info for spec in specs] + [top]
    _check_tokens(inputs, specs)
    n_batches = -(-len(inputs) // batch_size)
    with tqdm(total=n_batches, disable=not progress, desc=desc) as bar:
        for start in range(0, len(inputs), batch_size):
            batch = inputs[start : start + batch_size].to(device)
            captured = capture(model, batch, levels)
            features = {}
            for spec in specs:
                values = spec.transform(captured[spec.info.name], batch_mask(batch))
                _check_finite(spec.info.name, values, start)
                features[spec.info.name] = values
            scores = captured[top.name]
            _check_finite(top.name, scores, start)
            yield start, features, scores.argmax(dim=1).to(torch.int64)
            bar.update(1)


def capture_features(
    model: nn.Module,
    inputs: Batch,
    specs: Sequence[LevelFeatures],
    top: LevelInfo,
    *,
    batch_size: int,
    progress: bool = False,
    consume: Callable[[int, dict[str, Tensor]], None] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Capture every level's features in one streamed pass into one preallocated float32 array per level.

    Parameters
    ----------
    model, inputs, specs, top, batch_size, progress
        As for :func:`stream_features`.
    consume : callable, optional
        Called with each batch's first index and features instead of storing them: the arrays returned are then
        empty (memory does not grow with N), only the predictions are kept.

    Returns
    -------
    features : dict of str to ndarray of shape (N, D) or (N, T, D), float32
        Written in place batch by batch: no list of batches is concatenated, no float64 copy is made.
    predicted : ndarray of shape (N,), int64
    """
    n = len(inputs)
    stored: dict[str, np.ndarray] = {}
    if consume is None:
        for spec in specs:
            shape = (n, spec.dim) if spec.time_dim is None else (n, spec.steps, spec.dim)
            stored[spec.info.name] = np.empty(shape, dtype=np.float32)
    predicted = np.empty(n, dtype=np.int64)
    for start, features, labels in stream_features(model, inputs, specs, top, batch_size=batch_size, progress=progress):
        stop = start + len(labels)
        predicted[start:stop] = labels.cpu().numpy()
        if consume is not None:
            consume(start, features)
            continue
        for name, values in features.items():
            stored[name][start:stop] = values.cpu().numpy()
    return stored, predicted
