"""Collections of graphs: bag-of-nodes vectors, Ward clustering on cosine geometry, shared subgraphs.

The SSA paper (section 4.2.1) turns each class's dependency graph into a bag-of-nodes vector and clusters the
vectors with Ward's method on cosine distance. Ward needs Euclidean geometry, so (docs/design.md) the rows are
L2-normalised and Ward runs on them: between unit vectors the squared Euclidean distance is ``2 - 2 cos``.

Every function takes the graphs as a sequence, whose rows are then labelled by each graph's target (its position
in the sequence for a graph without ``target``), or as a mapping ``{label: graph}`` (for example class names).
The functions over node sets (:func:`bag_of_nodes`, :func:`cluster_graphs`, :func:`jaccard_matrix`,
:func:`node_occurrence`, :func:`interconnectedness`, :func:`shared_subgraph`) take graphs of any kind
(:class:`~stepwise.graphs.layered.LayeredGraph`); ``weight="frequency"`` needs the edge attribute ``frequency``.
pandas and scipy's clustering are imported when a function needs them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from stepwise.core.validation import check_float, check_int, check_option

from .layered import LayeredGraph, node_key

if TYPE_CHECKING:
    import pandas as pd
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

#: A collection of graphs of any kind: a sequence (rows labelled by target) or a mapping {label: graph}.
Graphs = Sequence[LayeredGraph] | Mapping[Hashable, LayeredGraph]


def _graph_list(graphs: Graphs, owner: str, minimum: int = 1) -> list[LayeredGraph]:
    if isinstance(graphs, LayeredGraph) or not isinstance(graphs, (Sequence, Mapping)):
        raise TypeError(
            f"{owner} needs a list of graphs (DependencyGraph or another kind of LayeredGraph) or a dict "
            f"{{label: graph}}; got {type(graphs).__name__}."
        )
    items = list(graphs.values() if isinstance(graphs, Mapping) else graphs)
    for item in items:
        if not isinstance(item, LayeredGraph):
            raise TypeError(
                f"{owner} needs DependencyGraph objects, or graphs of another kind (LayeredGraph); got a "
                f"{type(item).__name__}."
            )
    if len(items) < minimum:
        raise ValueError(f"{owner} needs at least {minimum} graph(s); got {len(items)}.")
    return items


def _target_label(graph: LayeredGraph, position: int) -> Hashable:
    target = graph.attrs.get("target", position)
    if isinstance(target, (int, str)):
        return target
    if isinstance(target, list) and all(isinstance(pair, list) and len(pair) == 2 for pair in target):
        return ", ".join(node_key(level, index) for level, index in target)
    return str(target)


def _labels(graphs: Graphs, owner: str) -> list[Hashable]:
    """Row labels: the mapping's keys, or each graph's target (an int, or "level:index, ..." for neurons; the
    position in the sequence for a graph without target)."""
    if isinstance(graphs, Mapping):
        return list(graphs)
    labels = [_target_label(g, i) for i, g in enumerate(graphs)]
    repeated = [label for label, n in Counter(labels).items() if n > 1]
    if repeated:
        raise ValueError(
            f"{owner}: several graphs have the target {repeated[0]!r}, so their rows would share a label. "
            "Pass a dict {label: graph} to name the rows."
        )
    return labels


def _node_frequency(graph: LayeredGraph) -> dict[str, float]:
    """The frequency of every node: the largest ``frequency`` of its incoming edges, 1.0 for a node without parent
    (for a dependency graph, the ``frequency`` column of :meth:`DependencyGraph.node_metrics`)."""
    incoming: dict[str, list[float]] = {node: [] for node in graph.nodes}
    for u, v, frequency in graph.edges(data="frequency"):
        if frequency is None:
            raise ValueError(
                f"weight='frequency' needs the edge attribute 'frequency', which the edge {u!r} -> {v!r} of this "
                f"{graph.kind} graph lacks: use weight=None."
            )
        incoming[v].append(frequency)
    return {node: max(found, default=1.0) for node, found in incoming.items()}


def _node_order(graphs: list[LayeredGraph]) -> list[str]:
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
    graphs : sequence of LayeredGraph, or mapping of label to LayeredGraph
    weight : {None, 'frequency'}, default=None
        ``None``: 1 where the neuron is in the graph, 0 elsewhere. ``'frequency'``: the neuron's frequency in the
        graph, the largest ``frequency`` of its incoming edges (in a dependency graph, the share of inputs on which
        it is an outlier for some parent); a node without parent (a target) weighs 1.0. Needs graphs whose edges
        record ``frequency`` (dependency, paths and inference graphs do).

    Returns
    -------
    pandas.DataFrame of shape (n_graphs, n_nodes)
        Rows labelled by the mapping's keys or the graphs' targets (index name ``graph``), columns by node key
        (name ``node``), top level first, then by level name and index. Integer 1/0 without weight, float with.

    Raises
    ------
    ValueError
        For no graph, an unknown weight, ``weight='frequency'`` on a graph whose edges lack ``frequency``, or two
        graphs of a sequence with the same target.

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
    import pandas as pd

    owner = "bag_of_nodes"
    items = _graph_list(graphs, owner)
    if weight is not None:
        check_option(weight, "weight", owner, ("frequency",))
    labels = _labels(graphs, owner)
    if weight is None:
        rows = [dict.fromkeys(g.nodes, 1) for g in items]
    else:
        rows = [_node_frequency(g) for g in items]
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
    from scipy.cluster.hierarchy import linkage

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
    """Ward clustering (cosine geometry) of graphs by their bag-of-nodes vectors.

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
    """Cluster graphs of any kind by their bag-of-nodes vectors: Ward linkage on cosine geometry.

    Parameters
    ----------
    graphs : sequence of LayeredGraph, or mapping of label to LayeredGraph
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
    import pandas as pd
    from scipy.cluster.hierarchy import fcluster, leaves_list

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
    graphs : sequence of LayeredGraph, or mapping of label to LayeredGraph

    Returns
    -------
    pandas.DataFrame of shape (n_graphs, n_graphs)
        ``|A ∩ B| / |A ∪ B|``, 1 on the diagonal (and for two empty graphs); labelled as in :func:`bag_of_nodes`.
    """
    import pandas as pd
    from scipy.spatial.distance import pdist, squareform

    frame = bag_of_nodes(graphs)
    similarity = 1.0 - squareform(pdist(frame.to_numpy(dtype=bool), metric="jaccard"))
    return pd.DataFrame(similarity, index=frame.index, columns=frame.index.rename(None))


def interconnectedness(graph: LayeredGraph) -> pd.Series:
    """The number of parents of every node of a graph of any kind (the paper's interconnectedness).

    Parameters
    ----------
    graph : LayeredGraph

    Returns
    -------
    pandas.Series of shape (n_nodes,), int
        Indexed by node key (name ``node``), top level first, then by index; named ``interconnectedness``. For a
        dependency graph, the column of :meth:`DependencyGraph.node_metrics`.
    """
    import pandas as pd

    if not isinstance(graph, LayeredGraph):
        raise TypeError(
            f"interconnectedness needs a graph (a DependencyGraph or another LayeredGraph); got {type(graph).__name__}."
        )
    parents = {node: 0 for node in graph.nodes}
    for _, v in graph.edges:
        parents[v] += 1
    order = sorted(parents, key=lambda node: (graph.nodes[node]["depth"], graph.nodes[node]["index"]))
    return pd.Series(
        [parents[node] for node in order], index=pd.Index(order, name="node"), name="interconnectedness", dtype="int64"
    )


def node_occurrence(graphs: Graphs) -> pd.Series:
    """In how many of the graphs each neuron appears (interconnectedness across a collection).

    Parameters
    ----------
    graphs : sequence of LayeredGraph, or mapping of label to LayeredGraph

    Returns
    -------
    pandas.Series of shape (n_nodes,), int
        Indexed by node key in the column order of :func:`bag_of_nodes`; named ``graphs``.
    """
    import pandas as pd

    items = _graph_list(graphs, "node_occurrence")
    counts = Counter(node for g in items for node in g.nodes)
    order = _node_order(items)
    return pd.Series([counts[node] for node in order], index=pd.Index(order, name="node"), name="graphs")


def shared_subgraph(graphs: Graphs, *, min_fraction: float = 1.0) -> LayeredGraph:
    """The nodes and edges present in at least ``min_fraction`` of the graphs.

    Parameters
    ----------
    graphs : sequence of LayeredGraph, or mapping of label to LayeredGraph
        Graphs of one kind over the same levels.
    min_fraction : float in (0, 1], default=1.0
        1.0 keeps what every graph has; 0.5 what at least half of them have.

    Returns
    -------
    LayeredGraph
        Of the graphs' class. Each node and edge carries ``graphs``, the number of graphs that hold it, and the
        attributes of its kind combined over those graphs; for dependency graphs an edge's ``count`` is the sum,
        ``frequency`` and ``relevance`` their means, ``sign`` the sign of that mean relevance. Graph attributes:
        those equal in every graph, ``n_graphs`` and ``min_fraction``, and for dependency graphs ``target`` (the
        common target, or the union of the targets as ``[level, index]`` pairs).

    Raises
    ------
    ValueError
        For no graph, graphs of different kinds or over different levels, or ``min_fraction`` outside (0, 1].
    """
    owner = "shared_subgraph"
    items = _graph_list(graphs, owner)
    min_fraction = check_float(min_fraction, "min_fraction", owner, low=0.0, high=1.0, closed_low=False)
    cls, levels = type(items[0]), items[0].levels
    for graph in items[1:]:
        if type(graph) is not cls:
            raise ValueError(
                f"{owner} needs graphs of one kind; got a {cls.__name__} (kind {items[0].kind!r}) and a "
                f"{type(graph).__name__} (kind {graph.kind!r}). Compare graphs of one method."
            )
        if graph.levels != levels:
            raise ValueError(
                f"{owner} needs graphs over the same levels; got {levels} and {graph.levels}. Compare graphs of "
                "one analysis, or cut them to common levels with graph.subgraph(levels=...)."
            )
    needed = math.ceil(min_fraction * len(items) - 1e-9)
    node_data: dict[str, list[dict]] = {}
    edge_data: dict[tuple[str, str], list[dict]] = {}
    for graph in items:
        for node, data in graph.nodes(data=True):
            node_data.setdefault(node, []).append(data)
        for u, v, data in graph.edges(data=True):
            edge_data.setdefault((u, v), []).append(data)

    shared = nx.DiGraph(**cls._shared_attrs(items))
    shared.graph.update(n_graphs=len(items), min_fraction=min_fraction)
    for node, found in node_data.items():
        if len(found) >= needed:
            place = {name: found[0][name] for name in ("level", "index", "depth")}
            shared.add_node(node, **place, **cls._merged("node", found), graphs=len(found))
    for (u, v), found in edge_data.items():
        if len(found) >= needed:
            shared.add_edge(u, v, **cls._merged("edge", found), graphs=len(found))
    return cls(shared)
