"""Bins aligned on zero, class counts per bin, and the three width classes of the layer summary.

The thesis's rule (§3.3): each neuron's values are split over its own range [min, max] into m bins (m = 30), and
every row is aligned on the zero line. When min < 0 < max the negative side gets
``n_neg = clip(round(m * (-min) / (max - min)), 1, m - 1)`` equal bins (``round`` is Python's: halves to even)
and the positive side the other ``m - n_neg``, so that 0 is an edge; otherwise the range is split into m equal
bins (0 is then an end of the range whenever the range reaches it); a constant neuron has one bin ``[v, v]``.
Bins are half-open ``[a, b)`` but for the last, which is closed: the rule of :func:`numpy.histogram`, whose
algorithm (a right-sided search among the edges) assigns the bins here, so that its counts with these edges are
the counts here, exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "WIDTHS",
    "bin_index",
    "class_counts",
    "edge_matrix",
    "n_negative_bins",
    "width_classes",
    "zero_aligned_edges",
]

#: The thesis's width thresholds: 1-3 inputs in a bin draw a small bar, 4-11 a medium one, 12 or more a full one.
WIDTHS = (3, 11)


def edge_matrix(lows: np.ndarray, highs: np.ndarray, bins: int) -> np.ndarray:
    """The zero-aligned edges of many neurons at once (see :func:`zero_aligned_edges`).

    Parameters
    ----------
    lows, highs : ndarray of shape (n_neurons,)
    bins : int

    Returns
    -------
    ndarray of shape (n_neurons, bins + 1), float64
        Row ``j`` holds neuron ``j``'s edges; a constant neuron's row is ``[v, v, inf, ...]``.
    """
    low, high = np.asarray(lows, dtype=np.float64), np.asarray(highs, dtype=np.float64)
    spans = (low < 0) & (high > 0)
    span = np.where(high > low, high - low, 1.0)
    negative = np.where(spans, np.clip(np.round(bins * -low / span), 1, bins - 1), 0).astype(np.int64)
    step = np.arange(bins + 1, dtype=np.float64)[None, :]
    plain = low[:, None] + step * ((high - low) / bins)[:, None]
    n_neg = np.maximum(negative, 1)[:, None]
    below = low[:, None] + step * (-low[:, None] / n_neg)
    above = (step - n_neg) * (high[:, None] / np.maximum(bins - n_neg, 1))
    edges = np.where(spans[:, None], np.where(step < n_neg, below, above), plain)
    edges[spans, negative[spans]] = 0.0  # exactly
    edges[:, -1] = high  # exactly
    constant = low == high
    edges[constant, 1] = high[constant]
    edges[constant, 2:] = np.inf
    return edges


def zero_aligned_edges(low: float, high: float, bins: int) -> np.ndarray:
    """The bin edges of one neuron whose values range over ``[low, high]``.

    Parameters
    ----------
    low, high : float
        The neuron's smallest and largest value.
    bins : int
        m, at least 2.

    Returns
    -------
    ndarray of shape (bins + 1,), float64, or (2,) for a constant neuron
        Increasing edges from ``low`` to ``high``: ``low + i * width`` on each side of zero, with 0 and ``high``
        exact; 0 is one of them when ``low <= 0 <= high``.

    Examples
    --------
    >>> zero_aligned_edges(-1.0, 3.0, 4).tolist()
    [-1.0, 0.0, 1.0, 2.0, 3.0]
    >>> zero_aligned_edges(2.0, 2.0, 30).tolist()
    [2.0, 2.0]
    """
    edges = edge_matrix(np.array([low]), np.array([high]), bins)[0]
    return edges[:2] if float(low) == float(high) else edges


def n_negative_bins(edges: np.ndarray) -> int:
    """How many bins of a neuron lie below zero: its row starts that many cells left of the zero line (a row
    entirely below zero ends at the zero line, one entirely above starts there)."""
    if edges[0] == edges[-1]:
        return 1 if edges[0] < 0 else 0
    return min(int(np.searchsorted(edges, 0.0, side="left")), len(edges) - 1)


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each value, as :func:`numpy.histogram` assigns it: ``[a, b)``, the last bin closed.

    Parameters
    ----------
    values : ndarray of shape (n,)
        Within ``[edges[0], edges[-1]]``.
    edges : ndarray of shape (n_bins + 1,)

    Returns
    -------
    ndarray of shape (n,), int64
        In ``[0, n_bins - 1]``.
    """
    n_bins = len(edges) - 1
    index = np.searchsorted(edges, values, side="right") - 1
    return np.clip(index, 0, n_bins - 1).astype(np.int64)  # the last edge itself, and a constant neuron: last bin


def class_counts(
    values: np.ndarray, codes: np.ndarray, n_classes: int, bins: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """Zero-aligned edges and per-bin class counts for every neuron of a level.

    A value's bin is the one :func:`bin_index` gives (``[a, b)``, the last closed), computed for all neurons
    at once: a first guess from the bin widths, moved to the bin whose edges hold the value.

    Parameters
    ----------
    values : ndarray of shape (n_inputs, n_neurons)
    codes : ndarray of shape (n_inputs,), int
        Each input's class as a position in ``[0, n_classes)``.
    n_classes : int
    bins : int

    Returns
    -------
    edges : list of ndarray
        One per neuron (see :func:`zero_aligned_edges`).
    counts : ndarray of shape (n_neurons, bins, n_classes), int64
        A constant neuron fills bin 0 only.
    """
    n_inputs, n_neurons = values.shape
    lows, highs = values.min(axis=0), values.max(axis=0)
    matrix = edge_matrix(lows, highs, bins)
    constant = lows == highs
    edges = [row[:2] if flat else row for row, flat in zip(matrix, constant)]
    # a first guess from the bin widths, then moved to the bin whose edges hold the value (rounding: one bin)
    low, high = matrix[:, 0], matrix[:, -1]
    zero = np.argmax(matrix >= 0, axis=1)  # the index of edge 0 where the range spans zero
    spans = (low < 0) & (high > 0)
    v = values.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(spans, -low / np.maximum(zero, 1), (high - low) / bins)
        positive_width = np.where(spans, high / np.maximum(bins - zero, 1), width)
        guess = np.where(
            spans & (v >= 0), zero + np.floor(v / positive_width), np.floor((v - low) / np.where(width > 0, width, 1))
        )
    index = np.clip(np.nan_to_num(guess), 0, bins - 1).astype(np.int64)
    rows = np.arange(n_neurons)[None, :]
    for _ in range(2):
        index -= (v < matrix[rows, index]) & (index > 0)
        index += (v >= matrix[rows, index + 1]) & (index < bins - 1)
    index[:, constant] = 0
    flat = (rows * bins + index) * n_classes + np.asarray(codes)[:, None]
    counts = np.bincount(flat.ravel(), minlength=n_neurons * bins * n_classes)
    return edges, counts.reshape(n_neurons, bins, n_classes)


def width_classes(totals: np.ndarray, widths: Sequence[int] = WIDTHS) -> np.ndarray:
    """The width class of each bin from its count: 0 empty, 1 for 1 to ``widths[0]`` inputs, 2 up to
    ``widths[1]``, 3 beyond.

    Parameters
    ----------
    totals : ndarray of int, any shape
        Inputs per bin.
    widths : pair of int, default=(3, 11)

    Returns
    -------
    ndarray of int8, the shape of ``totals``

    Examples
    --------
    >>> width_classes(np.array([0, 1, 3, 4, 11, 12, 500])).tolist()
    [0, 1, 1, 2, 2, 3, 3]
    """
    small, medium = widths
    result = np.where(totals > medium, 3, np.where(totals > small, 2, 1))
    return np.where(totals == 0, 0, result).astype(np.int8)
