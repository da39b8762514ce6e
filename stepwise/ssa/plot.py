"""Figures of the SSA paper's statistics: outlier frequencies (Fig. 2a) and relevance heatmaps (Fig. 2b)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from stepwise.core.validation import check_bool
from stepwise.graphs.draw import as_array, new_axes

__all__ = ["plot_outlier_frequency", "plot_relevance_heatmap"]

_TICK = 0.12  # inches a rotated 7-point tick label needs along the x axis
_WIDEST = 16.0  # inches: the widest figure these functions make themselves


def _stride(n_ticks: int, width: float) -> int:
    """Label every k-th of ``n_ticks`` ticks so that the labels fit ``width`` inches: k = 1 when they all fit."""
    return max(1, math.ceil(n_ticks * _TICK / max(width, 0.5)))


def _axes_width(ax: Axes) -> float:
    return ax.get_position().width * ax.figure.get_figwidth()


def _every(stride: int, what: str) -> str:
    return "" if stride == 1 else f" (one label every {stride} {what})"


def plot_outlier_frequency(
    counts_row: Any, *, level: str | None = None, neuron: str | None = None, ax: Axes | None = None
) -> Figure:
    """Bar plot of how often each lower neuron is an outlier for one upper neuron (paper Fig. 2a).

    Parameters
    ----------
    counts_row : Tensor or array-like of shape (n_lower,)
        One row of ``StepwiseSensitivity.outlier_counts(...)``: the number of inputs on which each lower neuron is
        an outlier of ω.
    level : str, optional
        Name of the lower level, for the title.
    neuron : str, optional
        Name of the upper neuron (for example ``"softmax:3"``), for the title.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    matplotlib.figure.Figure
        One bar per lower neuron with a count of at least 1, highest first (ties by index), labelled by index
        (every bar when the labels fit the axes, else every k-th, as the x label says); the title gives the
        number of unique outliers and their share of the level. A new figure is sized to label every bar, up to
        16 inches wide.

    Raises
    ------
    ValueError
        If ``counts_row`` is not one row of non-negative integer counts.
    """
    counts = as_array(counts_row, "counts_row (one row of outlier_counts, e.g. counts[0])", ndim=1)
    if (counts < 0).any() or (counts != np.round(counts)).any():
        raise ValueError("counts_row must hold non-negative integer counts, as outlier_counts returns them.")
    outliers = np.flatnonzero(counts >= 1)
    order = outliers[np.argsort(-counts[outliers], kind="stable")]
    margin = 0.9  # inches of the y axis' labels beside the bars, in a figure made here
    if ax is None:
        fig, ax = new_axes(None, (max(6.0, min(_WIDEST, 1.25 * _TICK * len(order) + margin + 0.3)), 3.5))
        width = fig.get_figwidth() - margin
    else:
        fig, width = ax.figure, _axes_width(ax)
    ax.bar(np.arange(len(order)), counts[order], color="tab:red", width=0.8)
    stride = _stride(len(order), width)
    ticks = np.arange(0, len(order), stride)
    ax.set_xticks(ticks, [str(k) for k in order[ticks]], rotation=90, fontsize=7)
    what = f"neurons of {level}" if level else "lower neurons"
    ax.set_xlabel(what + _every(stride, "bars"), fontsize=9)
    ax.set_ylabel("inputs with the neuron as outlier", fontsize=9)
    share = len(order) / len(counts) if len(counts) else 0.0
    of = f"the {len(counts)} neurons" + (f" of {level}" if level else "")
    title = f"{len(order)} unique outliers ({share:.1%} of {of})" + (f" for {neuron}" if neuron else "")
    ax.set_title(title, fontsize=10, wrap=True)  # broken into lines at the figure's edges when it is too long
    ax.set_xlim(-0.5, max(len(order), 1) - 0.5)
    return fig


def plot_relevance_heatmap(
    omega_rows: Any,
    *,
    row_labels: list[str] | None = None,
    level: str | None = None,
    per_row: bool = False,
    ax: Axes | None = None,
    cmap: str = "RdBu_r",
) -> Figure:
    """Heatmap of relevance rows ω over the lower neurons, for a few inputs (paper Fig. 2b).

    Parameters
    ----------
    omega_rows : Tensor or array-like of shape (n_rows, n_lower)
        For example ``ssa.relevance(inputs[:4], upper=..., lower=..., neurons=n)[0]``: ω of one upper neuron on
        four inputs.
    row_labels : list of str, optional
        One label per row; ``"input 0"``, ``"input 1"``, ... by default.
    level : str, optional
        Name of the lower level, for the x axis.
    per_row : bool, default=False
        Divide each row by its largest ``|ω|``, so that inputs on which the upper neuron is saturated (tiny ω)
        show their pattern too; the colour bar then reads ``ω / max |ω|`` of the row.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure by default.
    cmap : str, default='RdBu_r'
        A diverging colormap, centred on ω = 0 (red positive, blue negative).

    Returns
    -------
    matplotlib.figure.Figure
        Columns labelled by neuron index: every column when the labels fit the axes (a new figure is sized for
        them, up to 16 inches wide), else every k-th, as the x label says.

    Raises
    ------
    ValueError
        If ``omega_rows`` is not 2-D and finite, or ``row_labels`` does not give one label per row.
    """
    omega = as_array(omega_rows, "omega_rows (n_rows, n_lower)", ndim=2).astype(np.float64)
    labels = [f"input {i}" for i in range(len(omega))] if row_labels is None else list(row_labels)
    if len(labels) != len(omega):
        raise ValueError(f"Found {len(labels)} row labels for {len(omega)} rows: pass one label per row.")
    check_bool(per_row, "per_row", "plot_relevance_heatmap")
    if per_row:
        largest = np.abs(omega).max(axis=1, keepdims=True)
        omega = omega / np.where(largest > 0, largest, 1.0)
    n_lower = omega.shape[1]
    rows = max((len(str(label)) for label in labels), default=0) * 0.6 * 10 / 72 + 0.3  # inches of row labels
    margin = rows + 1.3  # and of the colour bar with its label, beside the cells
    if ax is None:
        fig, ax = new_axes(None, (max(6.0, min(_WIDEST, _TICK * n_lower + margin + 0.2)), 0.5 * len(omega) + 1.6))
        width = fig.get_figwidth() - margin
    else:
        fig, width = ax.figure, 0.85 * _axes_width(ax)  # seaborn's colour bar takes 15 % of the axes
    stride = _stride(n_lower, width)
    label = "ω / max |ω| of the row" if per_row else "ω"
    limit = float(np.abs(omega).max()) or 1.0  # symmetric about ω = 0, and defined for rows of zeros
    sns.heatmap(
        omega,
        ax=ax,
        cmap=cmap,
        vmin=-limit,
        vmax=limit,
        xticklabels=stride,
        yticklabels=labels,
        cbar_kws={"label": label},
    )
    what = f"neurons of {level}" if level else "lower neurons"
    ax.set_xlabel(what + _every(stride, "columns"), fontsize=9)
    ax.tick_params(axis="x", labelsize=7, rotation=90)
    ax.tick_params(axis="y", rotation=0)
    return fig
