"""Figures of graphs: a layered graph level by level (SSA paper Fig. 3) and the clustermap of bag-of-nodes
vectors (Fig. 4a).

matplotlib and seaborn are imported here and in the other figure modules only: the rest of the library imports
them when a figure is asked for. Every function returns the matplotlib ``Figure`` (save it atomically with
``stepwise.core.io.save_figure(fig, path)``), and those that draw on one axes accept ``ax=``.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D


from .collections import ClusterResult, cosine_ward_linkage
from .dependency import DependencyGraph

__all__ = ["as_array", "new_axes", "plot_clustermap", "plot_graph"]

_EDGE_COLOURS = {1: "tab:red", -1: "tab:blue"}


def as_array(values: Any, name: str, ndim: int) -> np.ndarray:
    """A numpy array from an ndarray, a list or a tensor (on any device), without importing torch."""
    if hasattr(values, "detach"):  # a torch.Tensor, possibly on a GPU
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s); got shape {array.shape}.")
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise ValueError(f"{name} must hold finite numbers; got dtype {array.dtype}.")
    return array


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _layers(g: nx.DiGraph) -> dict[int, list[str]]:
    """Nodes per level keyed by minus depth (bottom first), each level ordered by its parents' mean position."""
    by_depth: dict[int, list[str]] = {}
    for node, depth in g.nodes(data="depth"):
        by_depth.setdefault(depth, []).append(node)
    rank: dict[str, float] = {}  # position within its level, for the levels placed so far (top down)

    def place(node: str) -> tuple[float, int]:
        parents = [rank[p] for p in g.predecessors(node) if p in rank]
        return (float(np.mean(parents)) if parents else np.inf, g.nodes[node]["index"])

    for depth in sorted(by_depth):
        by_depth[depth].sort(key=place)
        rank.update((node, float(i)) for i, node in enumerate(by_depth[depth]))
    return {-depth: nodes for depth, nodes in sorted(by_depth.items(), reverse=True)}


def plot_graph(graph: DependencyGraph, *, ax: Axes | None = None) -> Figure:
    """Draw a dependency graph level by level, top level on top (paper Fig. 3).

    Each neuron is labelled ``level:index``; edge width grows with the edge's frequency, and its colour gives its
    sign (red excitatory, blue inhibitory). Within a level, neurons are ordered by their parents' positions to
    keep crossings few.

    Parameters
    ----------
    graph : DependencyGraph
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure sized to the graph by default.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(graph, DependencyGraph):
        raise TypeError(f"plot_graph needs a DependencyGraph; got {type(graph).__name__}.")
    g = graph.to_networkx()
    layers = _layers(g)
    widest = max((len(nodes) for nodes in layers.values()), default=1)
    fig, ax = new_axes(ax, (max(5.0, 1.3 * widest + 1.5), max(3.0, 1.2 * len(layers) + 1.0)))
    pos = nx.multipartite_layout(g, subset_key=layers, align="horizontal") if len(g) else {}
    edges = list(g.edges(data=True))
    nx.draw_networkx_edges(
        g,
        pos,
        ax=ax,
        edgelist=[(u, v) for u, v, _ in edges],
        width=[0.5 + 4.0 * d["frequency"] for _, _, d in edges],
        edge_color=[_EDGE_COLOURS[d["sign"]] for _, _, d in edges],
        alpha=0.7,
        arrows=True,
        arrowstyle="-|>",
        arrowsize=8,
        node_size=900,
    )
    nx.draw_networkx_nodes(g, pos, ax=ax, node_size=900, node_color="white", edgecolors="0.3")
    nx.draw_networkx_labels(g, pos, labels={n: n for n in g}, ax=ax, font_size=7)
    levels = {g.nodes[nodes[0]]["level"]: pos[nodes[0]][1] for nodes in layers.values()}
    ax.set_yticks(list(levels.values()), list(levels))
    ax.tick_params(axis="y", left=False, labelleft=True, labelsize=8)
    for spine in ax.spines.values():
        spine.set_visible(False)
    signs = sorted({d["sign"] for _, _, d in edges}, reverse=True)
    if len(signs) > 1:
        names = {1: "excitatory (+)", -1: "inhibitory (-)"}
        handles = [Line2D([], [], color=_EDGE_COLOURS[s], label=names[s]) for s in signs]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    model = graph.attrs.get("model")
    ax.set_title(f"Dependency graph of target {graph.target}" + (f" ({model})" if model else ""), fontsize=10)
    return fig


def plot_clustermap(result_or_frame: ClusterResult | pd.DataFrame, *, cmap: str = "coolwarm", **kwargs: Any) -> Figure:
    """Seaborn clustermap of bag-of-nodes vectors with both dendrograms (paper Fig. 4a).

    Rows (graphs) and columns (neurons) are both ordered by Ward linkage on cosine geometry
    (:func:`stepwise.cosine_ward_linkage`); for a :class:`stepwise.ClusterResult` the rows use its linkage.

    Parameters
    ----------
    result_or_frame : ClusterResult or pandas.DataFrame of shape (n_graphs, n_nodes)
        A clustering, or a bag-of-nodes frame (at least two rows, no row of zeros).
    cmap : str, default='coolwarm'
        Blue absent, red present (as in the paper).
    **kwargs
        Passed to ``seaborn.clustermap`` (for example ``figsize``).

    Returns
    -------
    matplotlib.figure.Figure
        The clustermap's figure; its heatmap rows follow the dendrogram's leaf order.
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
    columns = (
        {"col_linkage": cosine_ward_linkage(frame.to_numpy().T)} if frame.shape[1] >= 2 else {"col_cluster": False}
    )
    grid = sns.clustermap(frame, row_linkage=row_linkage, cmap=cmap, **columns, **kwargs)
    return grid.figure
