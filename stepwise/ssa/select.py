"""Selection: Tukey outliers per relevance row, frequency ranking over inputs, top-b children (docs/design.md).

Quartiles follow ``numpy.percentile``'s default (linear interpolation, Hyndman & Fan method 7) bit for bit,
computed in float64 whatever the dtype of ω, so a row in float64 gets exactly numpy's fences.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["SIGNS", "quartiles", "outlier_mask", "select_children"]

SIGNS = ("positive", "negative", "both")


def _neighbours(omega: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """The values of ascending rank ``rank`` and ``rank + 1`` (0-based) of every row, without sorting the rows:
    the largest two of the ``rank + 2`` smallest values, or the smallest two of the ``K - rank`` largest."""
    k = omega.shape[-1]
    if rank + 2 <= k - rank:
        smallest = torch.topk(omega, rank + 2, dim=-1, largest=False, sorted=False).values
        upper, lower = torch.topk(smallest, 2, dim=-1).values.unbind(-1)
        return lower, upper
    largest = torch.topk(omega, k - rank, dim=-1, sorted=False).values
    lower, upper = torch.topk(largest, 2, dim=-1, largest=False).values.unbind(-1)
    return lower, upper


def _percentile(omega: Tensor, q: float) -> Tensor:
    """numpy's linear percentile of every row, in float64 (casting to float64 is monotone and exact, so the
    order statistics are taken in the native dtype)."""
    n = omega.shape[-1]
    virtual = n * q + (1.0 + q * (1.0 - 1.0 - 1.0)) - 1.0  # numpy's _compute_virtual_index, alpha = beta = 1
    if virtual >= n - 1:
        return omega.amax(dim=-1).to(torch.float64)
    if virtual < 0:
        return omega.amin(dim=-1).to(torch.float64)
    previous = int(np.floor(virtual))
    gamma = virtual - previous
    a, b = (value.to(torch.float64) for value in _neighbours(omega, previous))
    diff = b - a
    return b - diff * (1.0 - gamma) if gamma >= 0.5 else a + diff * gamma  # numpy's _lerp


def quartiles(omega: Tensor) -> tuple[Tensor, Tensor]:
    """First and third quartiles of every row (last dimension) of ``omega``, as ``numpy.percentile`` gives them.

    Parameters
    ----------
    omega : Tensor of shape (..., K)

    Returns
    -------
    q1, q3 : Tensor of shape (...), float64
    """
    return _percentile(omega, 0.25), _percentile(omega, 0.75)


def _float32_bound(threshold: Tensor, *, down: bool) -> Tensor:
    """A float32 stand-in for a float64 threshold that every float32 value compares with exactly as with the
    threshold itself: ``v > t`` if and only if ``v > bound(t, down=True)`` (t rounded towards -inf), and
    ``v < t`` if and only if ``v < bound(t, down=False)`` (t rounded towards +inf).

    Parameters
    ----------
    threshold : Tensor, float64
    down : bool
        Round towards -inf (for ``>``) or towards +inf (for ``<``).

    Returns
    -------
    Tensor, float32
    """
    rounded = threshold.to(torch.float32)  # to nearest; overflows to ±inf
    wide = rounded.to(torch.float64)
    past = wide > threshold if down else wide < threshold
    towards = rounded.new_tensor(-math.inf if down else math.inf)
    return torch.where(past, torch.nextafter(rounded, towards), rounded)


def outlier_mask(omega: Tensor, *, fence: float = 1.5, sign: str = "positive") -> Tensor:
    """Which entries of each row of ``omega`` are Tukey outliers.

    Parameters
    ----------
    omega : Tensor of shape (..., K)
    fence : float, default=1.5
        ``k`` is a positive outlier when ``omega > Q3 + fence * (Q3 - Q1)``, a negative one when
        ``omega < Q1 - fence * (Q3 - Q1)``.
    sign : {'positive', 'negative', 'both'}, default='positive'

    Returns
    -------
    Tensor of shape (..., K), bool
    """
    q1, q3 = quartiles(omega)
    iqr = q3 - q1
    above, below = (q3 + fence * iqr).unsqueeze(-1), (q1 - fence * iqr).unsqueeze(-1)
    if omega.dtype == torch.float32:  # compare in float32, exactly as in float64 and many times faster
        above, below = _float32_bound(above, down=True), _float32_bound(below, down=False)
    else:
        omega = omega.to(torch.float64)
    positive = omega > above
    negative = omega < below
    if sign == "positive":
        return positive
    if sign == "negative":
        return negative
    return positive | negative


def select_children(counts: np.ndarray, mean_omega: np.ndarray, *, branching: int, sign: str) -> list[np.ndarray]:
    """The top ``branching`` lower neurons of each upper neuron, by outlier count.

    Ties are broken by the larger mean ω in the outlier's direction (larger mean ω for ``positive``, smaller for
    ``negative``, larger ``|mean ω|`` for ``both``), then by the smaller index. A neuron with count 0 is never
    selected.

    Parameters
    ----------
    counts : ndarray of shape (n_upper, K), int
        Outlier counts over inputs.
    mean_omega : ndarray of shape (n_upper, K)
        Mean ω over inputs.
    branching : int
    sign : {'positive', 'negative', 'both'}

    Returns
    -------
    list of ndarray of int
        For each upper neuron, its children, best first (at most ``branching``).
    """
    score = {"positive": mean_omega, "negative": -mean_omega, "both": np.abs(mean_omega)}[sign]
    k = counts.shape[-1]
    # Only neurons counted at least as often as the branching-th most frequent one can be among the best.
    floor = np.partition(counts, k - branching, axis=-1)[..., k - branching] if branching < k else np.zeros(len(counts))
    children = []
    for row_counts, row_score, row_floor in zip(counts, score, floor):
        candidates = np.flatnonzero(row_counts >= max(row_floor, 1))
        order = np.lexsort((candidates, -row_score[candidates], -row_counts[candidates]))
        children.append(candidates[order[:branching]])
    return children
