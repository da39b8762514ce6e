"""Selection: Tukey outliers per relevance row, frequency ranking over inputs, top-b children (DESIGN.md).

Quartiles follow ``numpy.percentile``'s default (linear interpolation, Hyndman & Fan method 7) bit for bit,
computed in float64 whatever the dtype of ω, so a row in float64 gets exactly numpy's fences.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["SIGNS", "quartiles", "outlier_mask", "select_children"]

SIGNS = ("positive", "negative", "both")


def _percentile(sorted_rows: Tensor, q: float) -> Tensor:
    """numpy's linear percentile, in float64, of rows already sorted along the last dimension."""
    n = sorted_rows.shape[-1]
    virtual = n * q + (1.0 + q * (1.0 - 1.0 - 1.0)) - 1.0  # numpy's _compute_virtual_index, alpha = beta = 1
    if virtual >= n - 1:
        return sorted_rows[..., -1].to(torch.float64)
    if virtual < 0:
        return sorted_rows[..., 0].to(torch.float64)
    previous = int(np.floor(virtual))
    gamma = virtual - previous
    a = sorted_rows[..., previous].to(torch.float64)
    b = sorted_rows[..., previous + 1].to(torch.float64)
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
    rows = torch.sort(omega, dim=-1).values  # casting to float64 is monotone and exact: sort first
    return _percentile(rows, 0.25), _percentile(rows, 0.75)


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
    values = omega.to(torch.float64)
    positive = values > (q3 + fence * iqr).unsqueeze(-1)
    negative = values < (q1 - fence * iqr).unsqueeze(-1)
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
    index = np.broadcast_to(np.arange(counts.shape[-1]), counts.shape)
    order = np.lexsort((index, -score, -counts), axis=-1)
    children = []
    for row_counts, row_order in zip(counts, order):
        best = row_order[:branching]
        children.append(best[row_counts[best] > 0])
    return children
