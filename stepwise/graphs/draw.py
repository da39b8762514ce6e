"""Figures of graphs: a layered graph level by level (SSA paper Fig. 3) and the clustermap of bag-of-nodes
vectors (Fig. 4a).

matplotlib and seaborn are imported here and in the other figure modules only: the rest of the library imports
them when a figure is asked for. Every function returns the matplotlib ``Figure`` (save it atomically with
``stepwise.core.io.save_figure(fig, path)``), and those that draw on one axes accept ``ax=``.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from stepwise.core.validation import check_int

from .collections import ClusterResult, cosine_ward_linkage
from .layered import LayeredGraph

__all__ = ["as_array", "edge_width", "layered_layout", "new_axes", "plot_clustermap", "plot_graph"]

_EDGE_COLOURS = {1: "tab:red", -1: "tab:blue"}
_SIGN_NAMES = {1: "excitatory (ω > 0)", -1: "inhibitory (ω < 0)"}
_LEGEND_FREQUENCIES = (0.1, 0.5, 1.0)  # edge widths the legend explains
_TITLES = {"dependency": "Dependency graph", "paths": "Decision paths", "inference": "Inference graph"}
_SLOT = 0.62  # inches between neighbouring neurons of a row, in a figure plot_graph sizes itself
_ROW = 0.85  # inches between levels
_NODE = 24.0  # circle diameter, points
_INDEX_FONT = 7.0  # points: the largest index label; longer indices get smaller type to stay inside the circle
_CHAR = 0.6  # width of a character in units of the font size (DejaVu Sans digits and lower case, generously)
_COLUMN = 0.14  # inches per clustermap column (a 7-point label, rotated)
_CLUSTER_ROW = 0.28  # inches per clustermap row


def as_array(values: Any, name: str, ndim: int) -> np.ndarray:
    """A numpy array from an ndarray, a list or a tensor (on any device), without importing torch.

    Raises
    ------
    ValueError
        If the array does not have ``ndim`` dimensions or holds anything but finite numbers.
    """
    if hasattr(values, "detach"):  # a torch.Tensor, possibly on a GPU
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s); got shape {array.shape}.")
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise ValueError(f"{name} must hold finite numbers; got dtype {array.dtype}.")
    return array


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new figure of ``figsize`` inches with constrained layout (so that every label
    stays inside it)."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return ax.figure, ax


def _wrapped(text: str, width_in: float, fontsize: float) -> str:
    """``text`` broken into lines that fit ``width_in`` inches at ``fontsize`` points."""
    chars = max(12, int(width_in * 72.0 / (_CHAR * fontsize)))
    return "\n".join(textwrap.wrap(text, chars)) or text


def edge_width(frequency: float) -> float:
    """Line width (points) of an edge of the given frequency in :func:`plot_graph`: ``0.5 + 4 * frequency``."""
    return 0.5 + 4.0 * frequency


def _axes_width(ax: Axes) -> float:
    """Width of ``ax`` in inches (as laid out so far)."""
    return ax.get_position().width * ax.figure.get_figwidth()


# ------------------------------------------------------------------------------------------- graphs


@dataclass
class _Row:
    """One level of the drawing: the neurons drawn, left to right, and how many are left out."""

    level: str
    nodes: list[str]
    hidden: int
    note: str | None = None  # why the row is empty
    stopped: bool = False


def _stopped_level(graph: LayeredGraph) -> str | None:
    """The level where the traversal found no child (the lower level of ``stopped_at``), when it is one of the
    graph's levels."""
    stopped = graph.attrs.get("stopped_at")
    if not isinstance(stopped, str):
        return None
    lower = stopped.split(" <- ")[0].strip()
    return lower if lower in graph.levels else None


def _rows(graph: LayeredGraph, g: nx.DiGraph, max_per_level: int | None) -> list[_Row]:
    """The rows to draw, top level first: every level from the top-most one with a neuron down to the bottom-most
    one with a neuron, or down to the bottom level when the traversal stopped; each with at most
    ``max_per_level`` neurons, chosen top down: the most frequent children of the neurons drawn above (largest
    frequency of an edge from a drawn parent), then the most frequent others (largest frequency of any incoming
    edge; a neuron without parent counts 1), then those with most parents, then the smaller index."""
    levels = graph.levels  # bottom to top
    used = {level for _, level in g.nodes(data="level")}
    positions = [i for i, name in enumerate(levels) if name in used]
    stopped = _stopped_level(graph)
    if not positions and stopped is None:
        return []
    top = max(positions) if positions else len(levels) - 1
    bottom = 0 if stopped is not None else min(positions)
    by_level: dict[str, list[str]] = {}
    for node, level in g.nodes(data="level"):
        by_level.setdefault(level, []).append(node)

    drawn: set[str] = set()

    def rank(node: str) -> tuple[float, float, int, int]:
        incoming = [(u, d.get("frequency", 1.0)) for u, _, d in g.in_edges(node, data=True)]
        from_drawn = max((f for u, f in incoming if u in drawn), default=0.0)
        return (-from_drawn, -max((f for _, f in incoming), default=1.0), -len(incoming), g.nodes[node]["index"])

    rows = []
    below_stop = False
    for name in reversed(levels[bottom : top + 1]):
        nodes = sorted(by_level.get(name, []), key=rank)
        shown = nodes if max_per_level is None else nodes[:max_per_level]
        drawn.update(shown)
        row = _Row(name, shown, len(nodes) - len(shown))
        if name == stopped:
            reason = graph.attrs.get("stop_reason") or "no neuron of this level is an outlier for the level above"
            row.note, row.stopped, below_stop = f"traversal stopped here: {reason}", True, True
        elif not nodes:
            row.note = "not reached: the traversal stopped above" if below_stop else "no neuron"
        rows.append(row)
    return rows


def _positions(g: nx.DiGraph, rows: list[_Row], slots: int) -> dict[str, tuple[float, float]]:
    """x, y of every drawn neuron: rows centred in ``slots`` columns, top row highest, and within a row neurons
    ordered by their drawn parents' mean position (then index), which keeps crossings few."""
    pos: dict[str, tuple[float, float]] = {}
    for r, row in enumerate(rows):
        y = float(len(rows) - 1 - r)

        def place(node: str) -> tuple[float, int]:
            parents = [pos[p][0] for p in g.predecessors(node) if p in pos]
            return (float(np.mean(parents)) if parents else math.inf, g.nodes[node]["index"])

        row.nodes.sort(key=place)
        offset = (slots - len(row.nodes) - (row.hidden > 0)) / 2 + 0.5
        pos.update((node, (offset + i, y)) for i, node in enumerate(row.nodes))
    return pos


def layered_layout(
    graph: LayeredGraph, max_per_level: int | None = None
) -> tuple[list[_Row], dict[str, tuple[float, float]], int]:
    """Where :func:`plot_graph` puts each neuron: the rows drawn and every drawn neuron's position.

    Parameters
    ----------
    graph : LayeredGraph
    max_per_level : int or None, default=None
        As in :func:`plot_graph`; ``None`` places every neuron.

    Returns
    -------
    rows : list
        Top level first; each with ``level``, ``nodes`` (left to right), ``hidden`` (neurons left out), ``note``.
    positions : dict of str to (float, float)
        Per drawn node key its x (slot, from 0.5) and y (row, 0 = the bottom row).
    slots : int
        The width of the widest row, in slots.
    """
    g = graph.to_networkx()
    rows = _rows(graph, g, max_per_level)
    slots = max([len(row.nodes) + (row.hidden > 0) for row in rows] + [1])
    return rows, _positions(g, rows, slots), slots


def _title(graph: LayeredGraph) -> str:
    """The title, such as ``Dependency graph of target 3 (VGG)``: the kind, the target when the graph has one, the
    model when it is recorded."""
    attrs = graph.attrs
    title = _TITLES.get(attrs.get("kind", "dependency"), "Graph")
    target = attrs.get("target")
    if isinstance(target, int):
        title += f" of target {target}"
    elif isinstance(target, list) and target:
        keys = [f"{level}:{index}" for level, index in target]
        title += f" of targets {', '.join(keys)}" if len(keys) <= 3 else f" of {len(keys)} targets"
    return title + (f" ({attrs['model']})" if attrs.get("model") else "")


def _edge_legend(ax: Axes, signs: set[object]) -> None:
    """The legend of the edges, right of ``ax``: a colour per sign present (none for edges without sign), and
    the widths of three frequencies."""
    signs = sorted(signs & set(_SIGN_NAMES), reverse=True)
    handles = [Line2D([], [], color=_EDGE_COLOURS[s], lw=edge_width(0.5), label=_SIGN_NAMES[s]) for s in signs]
    handles += [Line2D([], [], color="0.45", lw=edge_width(f), label=f"frequency {f:g}") for f in _LEGEND_FREQUENCIES]
    ax.legend(
        handles=handles,
        title="edges: colour = sign,\nwidth = frequency" if signs else "edges: width = frequency",
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=7,
        title_fontsize=7,
        alignment="left",
        frameon=False,
        handlelength=2.4,
    )


def plot_graph(graph: LayeredGraph, *, ax: Axes | None = None, max_per_level: int | None = 12) -> Figure:
    """Draw a layered graph level by level, top level on top (SSA paper Fig. 3).

    Each level is a row named on the left; each neuron is a circle with its index inside. Edge width grows with
    the edge's frequency and its colour gives its sign (red excitatory, blue inhibitory; grey for a kind whose
    edges have no sign); a legend explains both.
    Within a level, neurons are ordered by their parents' positions to keep crossings few. A level with many
    neurons shows its ``max_per_level`` most frequent ones and counts the rest (``+ 37 more``), so that the figure
    keeps a bounded size; the title then says how many neurons and edges are drawn. The neurons drawn are chosen
    top down: first the most frequent children of those drawn above (the largest frequency of an edge from a drawn
    parent), then the most frequent others, so that what is drawn stays connected. A level where the traversal
    stopped (``graph.attrs["stopped_at"]``) is drawn as an empty row with the reason, and the levels below it as
    not reached.

    Parameters
    ----------
    graph : DependencyGraph or another LayeredGraph
        Any kind (``graph.attrs["kind"]``): a dependency graph, decision paths, an inference graph.
    ax : matplotlib.axes.Axes, optional
        Where to draw; by default a new figure sized to the rows drawn (at most about
        ``0.62 * (max_per_level + 1) + 5`` inches wide), with every label inside it. On a given axes the circles
        keep their size in points: give it room (the legend sits to the right of the axes).
    max_per_level : int or None, default=12
        The most neurons drawn per level (chosen as above; ties go to more parents, then the smaller index);
        ``None`` draws every neuron, in one row per level.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError
        If ``graph`` is not a layered graph (such as :class:`stepwise.DependencyGraph`), or ``max_per_level``
        not an int or None.
    ValueError
        If ``max_per_level`` is below 1.

    Examples
    --------
    >>> import networkx as nx, stepwise
    >>> g = nx.DiGraph(levels=["fc1", "softmax"], target=1, stopped_at="fc1 <- softmax")
    >>> g.add_node("softmax:1", level="softmax", index=1, depth=0)
    >>> fig = plot_graph(stepwise.DependencyGraph(g))
    >>> [label.get_text() for label in fig.axes[0].get_yticklabels()]  # the level where it stopped is drawn
    ['softmax', 'fc1']
    >>> index, note = fig.axes[0].texts  # the index in its circle, the reason in the empty row
    >>> index.get_text(), note.get_text().split(":")[0]
    ('1', 'traversal stopped here')
    """
    if not isinstance(graph, LayeredGraph):
        raise TypeError(
            f"plot_graph needs a DependencyGraph or another layered graph; got {type(graph).__name__}. Wrap a "
            "networkx graph with stepwise.DependencyGraph(g) first."
        )
    if max_per_level is not None:
        max_per_level = check_int(max_per_level, "max_per_level", "plot_graph", low=1)
    g = graph.to_networkx()
    rows, pos, slots = layered_layout(graph, max_per_level)
    if ax is None:
        label_width = max([len(row.level) for row in rows] + [4]) * _CHAR * 8 / 72 + 0.3
        width = max(5.0 if not any(row.stopped for row in rows) else 6.5, slots * _SLOT + label_width + 1.9)
        fig, ax = new_axes(None, (width, max(2.6, len(rows) * _ROW + 1.0)))
    else:
        fig = ax.figure
    drawn = g.subgraph(pos)
    edges = list(drawn.edges(data=True))
    if edges:
        nx.draw_networkx_edges(
            drawn,
            pos,
            ax=ax,
            edgelist=[(u, v) for u, v, _ in edges],
            width=[edge_width(d.get("frequency", 1.0)) for _, _, d in edges],
            edge_color=[_EDGE_COLOURS.get(d.get("sign"), "0.45") for _, _, d in edges],
            alpha=0.75,
            arrows=True,
            arrowstyle="-|>",
            arrowsize=7,
            node_size=_NODE**2,
        )
    if pos:
        nx.draw_networkx_nodes(
            drawn, pos, ax=ax, nodelist=list(pos), node_size=_NODE**2, node_color="white", edgecolors="0.3"
        )
    digits = max([len(str(g.nodes[n]["index"])) for n in pos] + [1])
    fontsize = min(_INDEX_FONT, 0.8 * _NODE / (_CHAR * digits))
    for node, (x, y) in pos.items():
        index = str(g.nodes[node]["index"])
        ax.text(x, y, index, ha="center", va="center", fontsize=fontsize, zorder=4, gid=node)
    note_width = 0.9 * _axes_width(ax)
    for r, row in enumerate(rows):
        y = float(len(rows) - 1 - r)
        if row.hidden:
            x = (slots + len(row.nodes) - 1) / 2 + 0.5
            ax.text(x, y, f"+ {row.hidden} more", ha="center", va="center", fontsize=6.5, color="0.3")
        if row.note:
            ax.text(
                0.5,
                y,
                _wrapped(row.note, note_width, 7),
                transform=ax.get_yaxis_transform(),
                ha="center",
                va="center",
                fontsize=7,
                style="italic",
                color="tab:red" if row.stopped else "0.4",
            )
    ys = [float(len(rows) - 1 - r) for r in range(len(rows))]
    ax.set_yticks(ys, [row.level for row in rows])
    ax.set_xticks([])
    ax.tick_params(axis="y", left=False, labelleft=True, labelsize=8)
    for tick, row in zip(ax.yaxis.get_major_ticks(), rows):
        if row.stopped:
            tick.label1.set_color("tab:red")
    ax.set_xlim(0.0, float(slots))
    ax.set_ylim(-0.55, len(rows) - 0.45)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if not rows:
        ax.text(0.5, 0.5, "no neuron in this graph", transform=ax.transAxes, ha="center", fontsize=8, color="0.4")
    if g.number_of_edges():
        _edge_legend(ax, {d.get("sign") for _, _, d in g.edges(data=True)})
    title = _title(graph)
    n_hidden = sum(row.hidden for row in rows)
    if n_hidden:
        title += (
            f"\nat most {max_per_level} neurons per level: {len(pos)} of {len(g)} neurons, "
            f"{len(edges)} of {g.number_of_edges()} edges"
        )
    ax.set_title(title, fontsize=9, wrap=True)  # broken into lines at the figure's edges when it is too long
    return fig


# ------------------------------------------------------------------------------------------ clustermaps


def _leave_out(frame: pd.DataFrame, targets: Sequence[str] | None) -> list[str]:
    """The columns to show: all but the targets (by default the top level's, the level of the first column)."""
    if targets is None:
        top = str(frame.columns[0]).rsplit(":", 1)[0] if len(frame.columns) else None
        targets = [c for c in frame.columns if str(c).rsplit(":", 1)[0] == top]
    elif isinstance(targets, str) or not isinstance(targets, Sequence):
        raise TypeError(f"targets must be a list of node keys (str) or None; got {type(targets).__name__}.")
    left_out = set(targets)
    keep = [c for c in frame.columns if c not in left_out]
    return keep or list(frame.columns)


def _clustermap_size(frame: pd.DataFrame, ratio: float) -> tuple[float, float]:
    """Inches that hold every row and column label of a clustermap of ``frame`` (7-point column labels, 8-point
    row labels) beside dendrograms taking ``ratio`` of each side."""
    row_labels = max([len(str(label)) for label in frame.index] + [1]) * _CHAR * 8 / 72 + 0.45
    column_labels = max([len(str(label)) for label in frame.columns] + [1]) * _CHAR * 7 / 72 + 0.4
    width = (frame.shape[1] * _COLUMN + row_labels) / (1 - ratio) + 0.2
    height = (frame.shape[0] * _CLUSTER_ROW + column_labels) / (1 - ratio) + 0.2
    return max(6.0, width), max(4.0, height)


def plot_clustermap(
    result_or_frame: ClusterResult | pd.DataFrame,
    *,
    cmap: str = "coolwarm",
    targets: Sequence[str] | None = None,
    **kwargs: Any,
) -> Figure:
    """Seaborn clustermap of bag-of-nodes vectors with both dendrograms (paper Fig. 4a).

    Rows (graphs) are ordered by the Ward linkage on cosine geometry (:func:`stepwise.cosine_ward_linkage`) of the
    full vectors (for a :class:`stepwise.ClusterResult`, its linkage); columns (neurons) by the same linkage of
    the columns shown. Each graph's target is left out of the columns (every graph has its own: it tells nothing
    of what they share). Every column is labelled, and the figure is sized to hold the labels. 0/1 presence is
    drawn in two colours with a legend (absent, present); weighted vectors keep a colour bar.

    Parameters
    ----------
    result_or_frame : ClusterResult or pandas.DataFrame of shape (n_graphs, n_nodes)
        A clustering, or a bag-of-nodes frame (at least two rows, no row of zeros).
    cmap : str, default='coolwarm'
        Blue absent, red present (as in the paper); for presence, its two ends are the two colours.
    targets : sequence of str, optional
        Node keys left out of the columns. By default the columns of the top level (the level of the first
        column: :func:`stepwise.bag_of_nodes` puts the top level first), which holds each graph's target; pass
        ``[]`` to show every column. When nothing would remain, every column is shown.
    **kwargs
        Passed to ``seaborn.clustermap``. A ``figsize`` smaller than the labels need is enlarged to fit them.

    Returns
    -------
    matplotlib.figure.Figure
        The clustermap's figure; its heatmap rows follow the dendrogram's leaf order.

    Raises
    ------
    TypeError
        If ``result_or_frame`` is neither a ClusterResult nor a DataFrame, or ``targets`` not a list of keys.
    """
    if isinstance(result_or_frame, ClusterResult):
        frame, row_linkage = result_or_frame.frame, result_or_frame.linkage
    elif isinstance(result_or_frame, pd.DataFrame):
        frame, row_linkage = result_or_frame, cosine_ward_linkage(result_or_frame.to_numpy())
    else:
        raise TypeError(
            "plot_clustermap needs a ClusterResult (from stepwise.cluster_graphs) or a bag-of-nodes DataFrame; got "
            f"{type(result_or_frame).__name__}."
        )
    shown = frame.loc[:, _leave_out(frame, targets)]
    presence = bool(np.isin(shown.to_numpy(), (0, 1)).all())
    ratio = kwargs.get("dendrogram_ratio", 0.2)
    needed = _clustermap_size(shown, ratio if isinstance(ratio, float) else max(ratio))
    given = kwargs.pop("figsize", None)
    figsize = needed if given is None else (max(given[0], needed[0]), max(given[1], needed[1]))
    columns = (
        {"col_linkage": cosine_ward_linkage(shown.to_numpy().T)} if shown.shape[1] >= 2 else {"col_cluster": False}
    )
    colours = plt.get_cmap(cmap)([0.0, 1.0])
    if presence:
        options = {"cmap": ListedColormap(colours), "vmin": 0, "vmax": 1, "cbar_pos": None}
    else:
        options = {"cmap": cmap, "cbar_kws": {"label": "frequency"}}
    options.update(xticklabels=True, yticklabels=True, figsize=figsize, **columns)
    options.update(kwargs)
    with plt.rc_context({"xtick.labelsize": 7, "ytick.labelsize": 8}):
        grid = sns.clustermap(shown, row_linkage=row_linkage, **options)
    if presence:
        handles = [Patch(facecolor=colours[0], label="absent"), Patch(facecolor=colours[1], label="present")]
        grid.figure.legend(
            handles=handles,
            title="neuron in graph",
            loc="upper left",
            bbox_to_anchor=(0.01, 0.99),
            fontsize=8,
            title_fontsize=8,
            frameon=False,
        )
    return grid.figure
