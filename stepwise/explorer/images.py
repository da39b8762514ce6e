"""Images on the page: bounded thumbnails as PNG ``data:`` URIs, and the thumbnail files the commands write so that a
results folder carries the pixels its page shows (``thumbnails.npz``: the input numbers and their thumbnails)."""

from __future__ import annotations

import base64
import io
import zipfile
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from stepwise.core.io import atomic_write

__all__ = [
    "FIGURE_SIDE",
    "MAX_SIDE",
    "THUMBNAILS",
    "Box",
    "Image",
    "figure_uri",
    "input_side",
    "png_uri",
    "read_thumbnails",
    "shrink",
    "thumbnail",
    "write_thumbnails",
]

#: An input on the page: its thumbnail's ``data:`` URI and the input's own height and width in pixels.
Image = tuple[str, tuple[int, int]]
#: A box in input pixels: top, left, bottom, right (bottom and right exclusive).
Box = tuple[int, int, int, int]
#: The longest side of an input thumbnail, in pixels.
MAX_SIDE = 64
#: The file name of a folder's thumbnails.
THUMBNAILS = "thumbnails.npz"
#: The longest side of a figure shown on the page (a PNG of the results folder, or one drawn for it).
FIGURE_SIDE = 1400


def shrink(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """Every ``s``-th pixel of an image (h, w[, c]), ``s`` the smallest step that brings both sides to at most
    ``max_side``."""
    step = max(1, int(np.ceil(max(pixels.shape[:2]) / max_side)))
    return np.ascontiguousarray(pixels[::step, ::step])


def input_side(image: Any) -> tuple[int, int]:
    """An input's height and width in pixels, as boxes and thumbnails count them: a vector (D,) is one row."""
    shape = tuple(image.shape)
    return (1, int(shape[-1])) if len(shape) < 2 else (int(shape[-2]), int(shape[-1]))


def thumbnail(image: Any, max_side: int = MAX_SIDE) -> np.ndarray:
    """One input as an 8-bit image of at most ``max_side`` pixels a side, min-max scaled.

    Parameters
    ----------
    image : Tensor or array of shape (C, H, W), (H, W) or (D,)
        Grey for one channel, RGB for three, the channel mean otherwise; a vector becomes a one-row strip.
    max_side : int, default=64

    Returns
    -------
    numpy.ndarray of uint8, shape (h, w) or (h, w, 3)
        Shrunk by an integer step (every ``s``-th pixel) when a side exceeds ``max_side``.
    """
    if hasattr(image, "detach"):
        image = image.detach().cpu().double().numpy()
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 3 and array.shape[0] == 3:
        array = np.moveaxis(array, 0, -1)
    elif array.ndim == 3:
        array = array.mean(axis=0)
    elif array.ndim == 1:
        array = array[None, :]
    elif array.ndim != 2:
        array = array.reshape(array.shape[0], -1)
    array = shrink(array, max_side)
    low, high = float(np.nanmin(array)), float(np.nanmax(array))
    scaled = (array - low) / (high - low) if high > low else np.zeros_like(array)
    return np.round(np.nan_to_num(scaled) * 255).astype(np.uint8)


def png_uri(pixels: np.ndarray) -> str:
    """An 8-bit image as a PNG ``data:`` URI (no metadata that changes between runs).

    Parameters
    ----------
    pixels : numpy.ndarray of uint8, shape (h, w) or (h, w, 3 or 4)

    Returns
    -------
    str
    """
    from matplotlib.image import imsave

    buffer = io.BytesIO()
    kwargs = {"cmap": "gray", "vmin": 0, "vmax": 255} if pixels.ndim == 2 else {}
    imsave(buffer, pixels, format="png", metadata={"Software": None}, **kwargs)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def figure_uri(path: str | PathLike, max_side: int = FIGURE_SIDE) -> str:
    """A PNG file of a results folder as a ``data:`` URI, shrunk to at most ``max_side`` pixels a side.

    Parameters
    ----------
    path : str or path-like
    max_side : int, default=1400

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If the file is not a readable PNG; the message names it.
    """
    from matplotlib.image import imread

    try:
        pixels = imread(Path(path), format="png")
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(
            f"{path}: not a readable PNG image ({error}). Rewrite it with the command that made it."
        ) from error
    pixels = shrink(pixels, max_side)
    if pixels.dtype != np.uint8:
        pixels = np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8)
    return png_uri(pixels)


def write_thumbnails(path: str | PathLike, inputs: Any, images: Any, max_side: int = MAX_SIDE) -> None:
    """Write the thumbnails of some inputs into one ``.npz`` file, atomically.

    Parameters
    ----------
    path : str or path-like
    inputs : sequence of int, length n
        The input numbers (as the folder's other files number them).
    images : Tensor or array of shape (n, ...)
        Those inputs, in the same order.
    max_side : int, default=64
    """
    numbers = np.asarray(inputs, dtype=np.int64)
    shrunk = [thumbnail(image, max_side) for image in images]
    shapes = np.array([s.shape[:2] for s in shrunk], dtype=np.int64).reshape(-1, 2)
    sides = np.array([input_side(image) for image in images], dtype=np.int64)
    flat = np.concatenate([s.reshape(-1) for s in shrunk]) if shrunk else np.zeros(0, np.uint8)
    colour = np.array([s.ndim == 3 for s in shrunk], dtype=bool)

    def dump(handle: Any) -> None:
        np.savez_compressed(
            handle, inputs=numbers, shapes=shapes, sides=sides.reshape(-1, 2), colour=colour, pixels=flat
        )

    atomic_write(path, dump)


def read_thumbnails(path: str | PathLike) -> dict[int, tuple[np.ndarray, tuple[int, int]]]:
    """The thumbnails of :func:`write_thumbnails`.

    Returns
    -------
    dict of int to (numpy.ndarray, (int, int))
        Per input number its thumbnail and the input's own height and width (to scale boxes given in input pixels).

    Raises
    ------
    ValueError
        If the file is damaged; the message names it.
    """
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            inputs, shapes, sides = data["inputs"], data["shapes"], data["sides"]
            colour, pixels = data["colour"], data["pixels"]
        out, start = {}, 0
        for number, (h, w), side, rgb in zip(inputs.tolist(), shapes.tolist(), sides.tolist(), colour.tolist()):
            size = h * w * (3 if rgb else 1)
            block = pixels[start : start + size]
            if block.size != size:
                raise ValueError("fewer pixels than the shapes need")
            out[int(number)] = (block.reshape((h, w, 3) if rgb else (h, w)), (int(side[0]), int(side[1])))
            start += size
        if start != pixels.size:
            raise ValueError("more pixels than the shapes hold")
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"{path}: a damaged thumbnails file ({error}). Rerun the command that wrote the folder."
        ) from error
    return out
