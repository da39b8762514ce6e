"""Collections of dependency graphs: bag-of-nodes vectors, Ward clustering on cosine geometry, shared subgraphs.

The SSA paper (section 4.2.1) turns each class's dependency graph into a bag-of-nodes vector and clusters the
vectors with Ward's method on cosine distance. Ward needs Euclidean geometry, so (DESIGN.md) the rows are
L2-normalised and Ward runs on them: between unit vectors the squared Euclidean distance is ``2 - 2 cos``.

Every function takes the graphs as a sequence, whose rows are then labelled by each graph's target, or as a
mapping ``{label: graph}`` (for example class names).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, leaves_list, linkage
from scipy.spatial.distance import pdist, squareform

from .dependency import DependencyGraph, node_key
from stepwise.core.validation import check_float, check_int, check_option

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "ClusterResult",
    "bag_of_nodes",
    "cluster_graphs",
    "cosine_ward_linkage",
    "interconnectedness",
    "jaccard_matrix",
    "node_occurrence",
    "shared_subgraph",
]

#: A collection of graphs: a sequence (rows labelled by target) or a mapping {label: graph}.
Graphs = Sequence[DependencyGraph] | Mapping[Hashable, DependencyGraph]


def _graph_list(graphs: Graphs, owner: str, minimum: int = 1) -> list[DependencyGraph]:
    if isinstance(graphs, DependencyGraph) or not isinstance(graphs, (Sequence, Mapping)):
        raise TypeError(
            f"{owner} needs a list of DependencyGraph or a dict {{label: DependencyGraph}}; got "
            f"{type(graphs).__name__}."
        )
    items = list(graphs.values() if isinstance(graphs, Mapping) else graphs)
    for item in items:
        if not isinstance(item, DependencyGraph):
            raise TypeError(f"{owner} needs DependencyGraph objects; got a {type(item).__name__}.")
    if len(items) < minimum:
        raise ValueError(f"{owner} needs at least {minimum} graph(s); got {len(items)}.")
    return items


def _target_label(graph: DependencyGraph) -> Hashable:
    target = graph.target
    return target if isinstance(target, int) else ", ".join(node_key(level, index) for level, index in target)


def _labels(graphs: Graphs, owner: str) -> list[Hashable]:
    """Row labels: the mapping's keys, or each graph's target (an int, or "level:index, ..." for neurons)."""
    if isinstance(graphs, Mapping):
        return list(graphs)
    labels = [_target_label(g) for g in graphs]
    repeated = [label for label, n in Counter(labels).items() if n > 1]
    if repeated:
        raise ValueError(
            f"{owner}: several graphs have the target {repeated[0]!r}, so their rows would share a label. Pass a "
            "dict {label: graph} to name the rows."
        )
    return labels


def _node_order(graphs: list[DependencyGraph]) -> list[str]:
    """Every node key of the graphs, top level first (smallest depth), then by level name and index."""
    keys: dict[str, tuple[int, str, int]] = {}
    for graph in graphs:
        for node, data in graph.nodes(data=True):
            key = (data["depth"], data["level"], data["index"])
            keys[node] = min(keys.get(node, key), key)
    return sorted(keys, key=keys.__getitem__)


def bag_of_nodes(graphs: Graphs, *, weight: str | None = None) -> pd.DataFrame:
    """One row per graph, one column per neuron present in any of them.

    Parameters
    ----------
    graphs : sequence of DependencyGraph, or mapping of label to DependencyGraph
    weight : {None, 'frequency'}, default=None
        ``None``: 1 where the neuron is in the graph, 0 elsewhere. ``'frequency'``: the neuron's frequency in the
        graph, the largest frequency of its incoming edges (the share of inputs on which it is an outlier for
        some parent); a neuron without parent (a target) weighs 1.0.

    Returns
    -------
    pandas.DataFrame of shape (n_graphs, n_nodes)
        Rows labelled by the mapping's keys or the graphs' targets (index name ``graph``), columns by node key
        (name ``node``), top level first, then by level name and index. Integer 1/0 without weight, float with.

    Raises
    ------
    ValueError
        For no graph, an unknown weight, or two graphs of a sequence with the same target.

    Examples
    --------
    >>> import networkx as nx, stepwise
    >>> def graph(target, lower):
    ...     g = nx.DiGraph(levels=["fc", "softmax"], target=target)
    ...     g.add_node(f"softmax:{target}", level="softmax", index=target, depth=0)
    ...     for k in lower:
    ...         g.add_node(f"fc:{k}", level="fc", index=k, depth=1)
    ...     return stepwise.DependencyGraph(g)
    >>> stepwise.bag_of_nodes([graph(0, [3, 5]), graph(1, [5])])  # doctest: +NORMALIZE_WHITESPACE
    node   softmax:0  softmax:1  fc:3  fc:5
    graph
    0              1          0     1     1
    1              0          1     0     1
    """
    owner = "bag_of_nodes"
    items = _graph_list(graphs, owner)
    if weight is not None:
        check_option(weight, "weight", owner, ("frequency",))
    labels = _labels(graphs, owner)
    if weight is None:
        rows = [dict.fromkeys(g.nodes, 1) for g in items]
    else:
        rows = [g.node_metrics()["frequency"].to_dict() for g in items]
    frame = pd.DataFrame(rows, columns=_node_order(items)).fillna(0)
    frame = frame.astype("int64" if weight is None else "float64")
    frame.index = pd.Index(labels, name="graph")
    frame.columns.name = "node"
    return frame


def cosine_ward_linkage(vectors: Any) -> np.ndarray:
    """Ward linkage of vectors under cosine geometry: Ward on the L2-normalised rows.

    Parameters
    ----------
    vectors : array-like of shape (n_vectors, n_features)
        At least two rows, none of them all zeros.

    Returns
    -------
    numpy.ndarray of shape (n_vectors - 1, 4)
        The scipy linkage matrix (``scipy.cluster.hierarchy.linkage(rows / norms, method="ward")``).

    Raises
    ------
    ValueError
        For fewer than two rows, a row of zeros, or non-finite values.
    """
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"Clustering needs a 2-D array of at least two rows; got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise ValueError("The vectors hold NaN or Inf values: clustering needs finite values.")
    norms = np.linalg.norm(x, axis=1)
    if (norms == 0).any():
        raise ValueError(
            f"Row {int(np.flatnonzero(norms == 0)[0])} is all zeros, so it has no direction (cosine geometry): "
            "leave out empty graphs or neurons."
        )
    return linkage(x / norms[:, None], method="ward")


@dataclass(frozen=True, eq=False)
class ClusterResult:
    """Ward clustering (cosine geometry) of dependency graphs.

    Attributes
    ----------
    frame : pandas.DataFrame of shape (n_graphs, n_nodes)
        The bag-of-nodes vectors, as :func:`bag_of_nodes` returns them.
    linkage : numpy.ndarray of shape (n_graphs - 1, 4)
        The scipy linkage matrix of the rows of ``frame``.
    leaf_order : numpy.ndarray of shape (n_graphs,)
        Row positions in dendrogram order (``scipy.cluster.hierarchy.leaves_list``).
    labels : pandas.Series of shape (n_graphs,) or None
        Flat cluster of each graph (1, 2, ...), indexed like ``frame``, when ``n_clusters`` was given.
    """

    frame: pd.DataFrame
    linkage: np.ndarray
    leaf_order: np.ndarray
    labels: pd.Series | None

    @property
    def leaf_labels(self) -> list[Hashable]:
        """The row labels of ``frame`` in dendrogram order."""
        return list(self.frame.index[self.leaf_order])

    def plot(self, **kwargs: Any) -> Figure:
        """The clustermap of the result: see :func:`stepwise.plot.plot_clustermap`."""
        from .draw import plot_clustermap

        return plot_clustermap(self, **kwargs)

    def __repr__(self) -> str:
        clusters = "None" if self.labels is None else self.labels.nunique()
        return f"ClusterResult(graphs={self.frame.shape[0]}, nodes={self.frame.shape[1]}, clusters={clusters})"


def cluster_graphs(graphs: Graphs, *, n_clusters: int | None = None, weight: str | None = None) -> ClusterResult:
    """Cluster dependency graphs by their bag-of-nodes vectors: Ward linkage on cosine geometry.

    Parameters
    ----------
    graphs : sequence of DependencyGraph, or mapping of label to DependencyGraph
        At least two graphs, none empty.
    n_clusters : int, optional
        Cut the tree into at most this many flat clusters (``fcluster(..., criterion="maxclust")``).
    weight : {None, 'frequency'}, default=None
        As in :func:`bag_of_nodes`.

    Returns
    -------
    ClusterResult

    Raises
    ------
    ValueError
        For fewer than two graphs, an empty graph, or ``n_clusters`` outside ``[1, n_graphs]``.
    """
    owner = "cluster_graphs"
    _graph_list(graphs, owner, minimum=2)
    frame = bag_of_nodes(graphs, weight=weight)
    tree = cosine_ward_linkage(frame.to_numpy())
    labels = None
    if n_clusters is not None:
        n_clusters = check_int(n_clusters, "n_clusters", owner, low=1, high=len(frame))
        labels = pd.Series(fcluster(tree, n_clusters, criterion="maxclust"), index=frame.index, name="cluster")
    return ClusterResult(frame=frame, linkage=tree, leaf_order=leaves_list(tree), labels=labels)


def jaccard_matrix(graphs: Graphs) -> pd.DataFrame:
    """Jaccard similarity of the node sets of every pair of graphs.

    Parameters
    ----------
    graphs : sequence of DependencyGraph, or mapping of label to DependencyGraph

    Returns
    -------
    pandas.DataFrame of shape (n_graphs, n_graphs)
        ``|A ∩ B| / |A ∪ B|``, 1 on the diagonal (and for two empty graphs); labelled as in :func:`bag_of_nodes`.
    """
    frame = bag_of_nodes(graphs)
    similarity = 1.0 - squareform(pdist(frame.to_numpy(dtype=bool), metric="jaccard"))
    return pd.DataFrame(similarity, index=frame.index, columns=frame.index.rename(None))


def interconnectedness(graph: DependencyGraph) -> pd.Series:
    """The number of parents of every neuron of a graph (the paper's interconnectedness).

    Parameters
    ----------
    graph : DependencyGraph

    Returns
    -------
    pandas.Series of shape (n_nodes,)
        Indexed by node key, top level first, then by index.
    """
    if not isinstance(graph, DependencyGraph):
        raise TypeError(f"interconnectedness needs a DependencyGraph; got {type(graph).__name__}.")
    return graph.node_metrics()["interconnectedness"]


def node_occurrence(graphs: Graphs) -> pd.Series:
    """In how many of the graphs each neuron appears (interconnectedness across a collection).

    Parameters
    ----------
    graphs : sequence of DependencyGraph, or mapping of label to DependencyGraph

    Returns
    -------
    pandas.Series of shape (n_nodes,), int
        Indexed by node key in the column order of :func:`bag_of_nodes`; named ``graphs``.
    """
    items = _graph_list(graphs, "node_occurrence")
    counts = Counter(node for g in items for node in g.nodes)
    order = _node_order(items)
    return pd.Series([counts[node] for node in order], index=pd.Index(order, name="node"), name="graphs")


def _shared_target(items: list[DependencyGraph], top: str) -> int | list[list]:
    targets = [g.target for g in items]
    if all(t == targets[0] for t in targets):
        return targets[0]
    pairs: set[tuple[str, int]] = set()
    for target in targets:
        pairs.update([(top, target)] if isinstance(target, int) else [(level, index) for level, index in target])
    levels = items[0].levels
    return [[level, index] for level, index in sorted(pairs, key=lambda p: (-levels.index(p[0]), p[1]))]


def shared_subgraph(graphs: Graphs, *, min_fraction: float = 1.0) -> DependencyGraph:
    """The neurons and edges present in at least ``min_fraction`` of the graphs.

    Parameters
    ----------
    graphs : sequence of DependencyGraph, or mapping of label to DependencyGraph
        Graphs over the same levels.
    min_fraction : float in (0, 1], default=1.0
        1.0 keeps what every graph has; 0.5 what at least half of them have.

    Returns
    -------
    DependencyGraph
        Each node and edge carries ``graphs``, the number of graphs that hold it. An edge's ``count`` is the sum
        over those graphs, ``frequency`` and ``relevance`` their means, ``sign`` the sign of that mean relevance.
        Graph attributes: those equal in every graph, ``target`` (the common target, or the union of the targets
        as ``[level, index]`` pairs), ``n_graphs`` and ``min_fraction``.

    Raises
    ------
    ValueError
        For no graph, graphs over different levels, or ``min_fraction`` outside (0, 1].
    """
    owner = "shared_subgraph"
    items = _graph_list(graphs, owner)
    min_fraction = check_float(min_fraction, "min_fraction", owner, low=0.0, high=1.0, closed_low=False)
    levels = items[0].levels
    for graph in items[1:]:
        if graph.levels != levels:
            raise ValueError(
                f"{owner} needs graphs over the same levels; got {levels} and {graph.levels}. Compare graphs of "
                "one analysis, or cut them to common levels with graph.subgraph(levels=...)."
            )
    needed = math.ceil(min_fraction * len(items) - 1e-9)
    node_counts = Counter(node for g in items for node in g.nodes)
    edge_data: dict[tuple[str, str], list[dict]] = {}
    for graph in items:
        for u, v, data in graph.edges(data=True):
            edge_data.setdefault((u, v), []).append(data)

    attrs = {k: v for k, v in items[0].attrs.items() if all(k in g.attrs and g.attrs[k] == v for g in items)}
    attrs.update(target=_shared_target(items, levels[-1]), n_graphs=len(items), min_fraction=min_fraction)
    shared = nx.DiGraph(**attrs)
    for graph in items:
        for node, data in graph.nodes(data=True):
            if node_counts[node] >= needed and node not in shared:
                shared.add_node(node, **{name: data[name] for name in ("level", "index", "depth")})
                shared.nodes[node]["graphs"] = node_counts[node]
    for (u, v), found in edge_data.items():
        if len(found) >= needed:
            relevance = float(np.mean([d["relevance"] for d in found]))
            shared.add_edge(
                u,
                v,
                count=sum(d["count"] for d in found),
                frequency=float(np.mean([d["frequency"] for d in found])),
                relevance=relevance,
                sign=1 if relevance >= 0 else -1,
                graphs=len(found),
            )
    return DependencyGraph(shared)
