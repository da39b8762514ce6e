"""Receptive fields found from the model itself: which lower positions the computation of each upper position uses.

R(p) (paper 001, Sec. 3.2) is the set of positions q of the lower level whose values enter the computation of the
upper column at p. It is read off the network, not a table of layer types: a NaN placed at one lower position (in
every channel) is carried forward by the step from the lower level to the upper one, and the upper positions that
turn NaN are those that depend on it. This is the support of the step's Jacobian, but structural: it is the same for
every input, where a gradient's support is not (a ReLU that is off, the inputs a max pool did not pick give zero
derivatives). Convolutions of any stride, dilation and padding, pooling, skip connections and any ``forward`` code
are followed as the model computes them; positions beyond the borders do not exist, so fields are clipped there;
a dense upper level (or a global pooling on the way) gets the whole lower map. All lower positions are probed in
batches, one copy of the example per position.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from stepwise.core.hooks import StopForward, analysis_mode, hooked, run_model
from stepwise.core.inputs import TOKEN_MASK, Batch, KeywordInputs
from stepwise.core.levels import INPUT, LevelInfo

from .columns import Level, positions_of

__all__ = ["field_boxes", "field_index", "input_boxes", "receptive_field"]

_CHUNK = 256  # lower positions probed per forward pass


def _with_nans(values: Tensor, positions: Tensor, tokens: bool = False) -> Tensor:
    """Copies of ``values`` (1, C, *spatial) or (1, D), copy b with NaN at position ``positions[b]`` in every channel;
    with ``tokens``, of (1, T, D) with NaN in every unit of token ``positions[b]``."""
    b = len(positions)
    out = values.expand(b, *values.shape[1:]).clone()
    if out.dim() == 2:
        out.fill_(float("nan"))
        return out
    if tokens:
        out[torch.arange(b), positions] = float("nan")
        return out
    flat = out.view(b, out.shape[1], -1)
    flat[torch.arange(b), :, positions] = float("nan")
    return out


def receptive_field(model: nn.Module, example: Batch, lower: Level, upper: Level) -> np.ndarray:
    """R(p) for every upper position p, as a boolean matrix.

    Parameters
    ----------
    model : torch.nn.Module
    example : Tensor of shape (1, ...) or KeywordInputs of one input
        One input on the model's device; the field does not depend on its values, only on what the model computes
        (and, for token levels, on its number of tokens T: the positions are its T tokens, padding included).
    lower, upper : Level
        Two levels, ``lower`` below ``upper``; ``lower`` may be ``input``.

    Returns
    -------
    ndarray of shape (upper positions, lower positions), bool
        ``field[p, q]`` is True when lower position q enters upper position p; positions row-major.
    """
    p_upper, p_lower = positions_of(upper, example), positions_of(lower, example)
    example = _every_token_real(example)
    field = np.zeros((p_upper, p_lower), dtype=bool)
    with analysis_mode(model, owner="InferenceGraphs", warn=False), torch.no_grad():
        for start in range(0, p_lower, _CHUNK):
            positions = torch.arange(start, min(start + _CHUNK, p_lower), device=example.device)
            reached = _upper_nans(model, example, positions, lower, upper)
            field[:, start : start + len(positions)] = reached.T.cpu().numpy()
    return field


def _every_token_real(example: Batch) -> Batch:
    """Keyword inputs with every token marked real in the mask the model sees: a field is structural, and a model
    that hides padding by ``masked_fill`` would keep the padded positions of this one input out of it."""
    if not isinstance(example, KeywordInputs) or TOKEN_MASK not in example.tensors:
        return example
    tensors = {**example.tensors, TOKEN_MASK: torch.ones_like(example.tensors[TOKEN_MASK])}
    return KeywordInputs._trusted(tensors, None, example.replaced)


def _copies(example: Batch, b: int) -> Batch:
    """``b`` copies of one input."""
    if isinstance(example, KeywordInputs):
        return example[torch.zeros(b, dtype=torch.int64)]
    return example.expand(b, *example.shape[1:]).clone()


def _upper_nans(model: nn.Module, example: Batch, positions: Tensor, lower: Level, upper: Level) -> Tensor:
    """(B, upper positions): which upper positions are NaN in copy b, whose lower position b was made NaN."""
    captured: list[Tensor] = []
    b = len(positions)
    batch = _copies(example, b)
    forward: list[tuple[nn.Module, Callable]] = []
    if lower.name == INPUT:
        assert isinstance(example, Tensor)  # keyword inputs have no input level
        batch = _with_nans(example, positions)
    else:
        module = lower.info.module
        assert module is not None  # resolved levels: only input, softmax and output have no module

        def replace(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
            return _with_nans(output[:1].detach(), positions, lower.tokens)

        forward.append((module, replace))
    if upper.info.module is not None:

        def store(module: nn.Module, args: tuple, output: Tensor) -> None:
            captured.append(output.detach().clone())
            raise StopForward

        forward.append((upper.info.module, store))
    with hooked(forward=forward):
        try:
            output = run_model(model, batch)
            captured.append(output.detach())  # the top: the model output (a softmax keeps NaN where it is)
        except StopForward:
            pass
    reached = captured[0]
    if upper.tokens:
        return torch.isnan(reached).any(2)
    return (
        torch.isnan(reached.reshape(b, reached.shape[1], -1)).any(1)
        if reached.dim() > 2
        else torch.isnan(reached).any(1, keepdim=True)
    )


def field_index(field: np.ndarray) -> np.ndarray:
    """The field as padded lists: row p holds the lower positions of R(p), then the pad value ``field.shape[1]``.

    Returns
    -------
    ndarray of shape (upper positions, max |R(p)|), int64
    """
    sizes = field.sum(1)
    width = max(int(sizes.max()) if len(sizes) else 0, 1)
    index = np.full((field.shape[0], width), field.shape[1], dtype=np.int64)
    rows, cols = np.nonzero(field)
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    index[rows, slot] = cols
    return index


def field_boxes(field: np.ndarray, spatial: tuple[int, ...]) -> np.ndarray:
    """The bounding box of each R(p) in the lower map (an image: the input's pixels).

    Parameters
    ----------
    field : ndarray of shape (P_upper, P_lower), bool
    spatial : tuple of int
        The lower map's spatial shape (H, W); another shape gives boxes over a single row.

    Returns
    -------
    ndarray of shape (P_upper, 4), int64
        ``top, left, bottom, right`` with bottom and right exclusive.
    """
    h, w = (spatial[0], spatial[1]) if len(spatial) == 2 else (1, int(np.prod(spatial)) if spatial else 1)
    support = field.reshape(field.shape[0], h, w)
    rows, cols = support.any(2), support.any(1)
    boxes = np.zeros((field.shape[0], 4), dtype=np.int64)
    boxes[:, 0] = rows.argmax(1)
    boxes[:, 1] = cols.argmax(1)
    boxes[:, 2] = h - rows[:, ::-1].argmax(1)
    boxes[:, 3] = w - cols[:, ::-1].argmax(1)
    return boxes


def input_boxes(model: nn.Module, example: Batch, levels: list[Level]) -> dict[str, np.ndarray] | None:
    """Each level position's receptive field in the input pixels, as :func:`field_boxes`, for image inputs (C, H, W);
    ``None`` for other inputs.

    Parameters
    ----------
    model : torch.nn.Module
    example : Tensor of shape (1, C, H, W), or another input of one
    levels : list of Level

    Returns
    -------
    dict of str to ndarray of shape (positions, 4), int64, or None
    """
    if not isinstance(example, Tensor) or example.dim() != 4:
        return None
    shape = tuple(example.shape[1:])
    pixels = Level(LevelInfo(INPUT, None, shape, 1))
    return {level.name: field_boxes(receptive_field(model, example, pixels, level), shape[1:]) for level in levels}
