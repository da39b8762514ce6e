"""PathsGraph: the clusters of decision paths and the flows between them, the layered graph of kind ``"paths"``.

No torch. Schema (DESIGN.md, beyond what every :class:`~stepwise.graphs.layered.LayeredGraph` has):

- graph attributes ``n_inputs`` (int, N, at least 1) and ``classes`` (list of distinct ints, at least 0) are
  required; ``levels`` are the columns of the assignments, bottom to top, the class column (``"class"``) on top;
  a fit also records ``model``, ``top``, ``features``, ``algorithm``, ``version`` (str) and ``seed`` (int, -1 when
  none was given);
- a node ``"{column}:{cluster}"`` has ``index`` = the cluster id (a class, in the class column), ``size`` (int,
  at least 1, the inputs in the cluster) and one int attribute ``class_{c}`` per class ``c`` of ``classes``: the
  inputs of that class in the cluster, which sum to ``size``;
- an edge runs from a node of one column to a node of the column just below (upper -> lower), with ``count``
  (int, at least 1, the inputs in both clusters) and ``frequency`` (float in (0, 1], count / N).

Why one int attribute per class rather than one list: an int is native in every format (GraphML and GEXF declare
it as an integer attribute, JSON and DOT write a numeral), so the counts read back as ints without the library's
JSON marker, and a tool such as Gephi or yEd can size or colour nodes by one class's count; a list would be stored
as marked JSON text, readable only through the library's readers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import networkx as nx
import numpy as np

from .layered import LayeredGraph, coerce, node_key

__all__ = ["CLASS_ATTR", "PathsGraph", "class_attr"]

#: The pattern of a class count attribute of a node: ``class_3``.
CLASS_ATTR = re.compile(r"class_([0-9]+)\Z")


def class_attr(c: int) -> str:
    """The node attribute holding the inputs of class ``c`` in a cluster: ``"class_3"``."""
    return f"class_{c}"


class PathsGraph(LayeredGraph):
    """Clusters per column (levels, time steps, the class on top) and the inputs flowing between them.

    Parameters
    ----------
    graph : networkx.DiGraph
        A graph following the schema of this module; it is checked and deep-copied.

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.DiGraph(levels=["fc", "class"], n_inputs=4, classes=[0, 1])
    >>> g.add_node("fc:0", level="fc", index=0, depth=1, size=4, class_0=3, class_1=1)
    >>> g.add_node("class:0", level="class", index=0, depth=0, size=3, class_0=3, class_1=0)
    >>> g.add_node("class:1", level="class", index=1, depth=0, size=1, class_0=0, class_1=1)
    >>> g.add_edge("class:0", "fc:0", count=3, frequency=0.75)
    >>> g.add_edge("class:1", "fc:0", count=1, frequency=0.25)
    >>> PathsGraph(g)
    PathsGraph(n_inputs=4, classes=2, levels=2, nodes=3, edges=2)
    """

    KIND = "paths"
    GRAPH_ATTRS = {"n_inputs": "the number of inputs N", "classes": "the classes, a list of int"}
    RECORDED_ATTRS = {"model": str, "top": str, "features": str, "algorithm": str, "version": str, "seed": int}
    NODE_ATTRS = {"size": int}
    EDGE_ATTRS = {"count": int, "frequency": float}
    MADE_BY = "stepwise.DecisionPaths.graph()"

    @classmethod
    def from_assignments(
        cls, assignments: Any, columns: Sequence[str], classes: Sequence[int], **attrs: Any
    ) -> PathsGraph:
        """Build the graph of an assignments table.

        Parameters
        ----------
        assignments : pandas.DataFrame or mapping of str to array of shape (N,)
            One int column of cluster ids per name of ``columns``; the last column holds the classes.
        columns : sequence of str
            The columns, bottom to top.
        classes : sequence of int
            The classes given a count attribute each.
        **attrs
            Further graph attributes (``model``, ``seed``, ...).

        Returns
        -------
        PathsGraph
        """
        columns = list(columns)
        values = [np.asarray(assignments[name], dtype=np.int64) for name in columns]
        n = len(values[0])
        classes = [int(c) for c in classes]
        cls_values = values[-1]
        g = nx.DiGraph(levels=columns, n_inputs=n, classes=classes, **attrs)
        top = len(columns) - 1
        for position, (name, ids) in enumerate(zip(columns, values)):
            k = int(ids.max()) + 1 if n else 0
            counts = np.zeros((k, len(classes)), dtype=np.int64)
            for j, c in enumerate(classes):
                counts[:, j] = np.bincount(ids[cls_values == c], minlength=k)
            sizes = np.bincount(ids, minlength=k)
            for cluster in np.flatnonzero(sizes):
                per_class = {class_attr(c): int(counts[cluster, j]) for j, c in enumerate(classes)}
                g.add_node(
                    node_key(name, int(cluster)),
                    level=name,
                    index=int(cluster),
                    depth=top - position,
                    size=int(sizes[cluster]),
                    **per_class,
                )
        for low, up, a, b in zip(columns[:-1], columns[1:], values[:-1], values[1:]):
            width = int(b.max()) + 1
            codes, counts = np.unique(a * width + b, return_counts=True)
            for code, count in zip(codes.tolist(), counts.tolist()):
                g.add_edge(node_key(up, code % width), node_key(low, code // width), count=count, frequency=count / n)
        return cls(g)

    @classmethod
    def _check_values(cls, graph: nx.DiGraph) -> None:
        n = coerce(graph.graph["n_inputs"], int)
        if n is None or n < 1:
            raise ValueError(f"The graph attribute 'n_inputs' is {graph.graph['n_inputs']!r}: it must be an int >= 1.")
        graph.graph["n_inputs"] = n
        classes = coerce(graph.graph["classes"], list)
        ints = None if classes is None else [coerce(c, int) for c in classes]
        if ints is None or any(c is None or c < 0 for c in ints) or len(set(ints)) != len(ints):
            raise ValueError(
                f"The graph attribute 'classes' is {graph.graph['classes']!r}: it must be a list of distinct ints "
                "(at least 0)."
            )
        graph.graph["classes"] = ints
        names = [class_attr(c) for c in ints]
        for key, data in graph.nodes(data=True):
            if data["size"] < 1:
                raise ValueError(f"Node {key!r} has size={data['size']}; a cluster in the graph holds >= 1 input.")
            lacking = [name for name in names if name not in data]
            if lacking:
                raise ValueError(
                    f"Node {key!r} lacks the class count(s) {lacking}: every node has one int 'class_{{c}}' per class "
                    f"of the graph attribute 'classes' ({ints})."
                )
            for name in names:
                value = coerce(data[name], int)
                if value is None or value < 0:
                    raise ValueError(f"Node {key!r} has {name}={data[name]!r}; a class count is an int >= 0.")
                data[name] = value
            total = sum(data[name] for name in names)
            if total != data["size"]:
                raise ValueError(
                    f"Node {key!r} has size={data['size']} but its class counts sum to {total}: the class counts "
                    "split the cluster's inputs by class."
                )
        depth = graph.nodes(data="depth")
        for u, v, data in graph.edges(data=True):
            if depth[v] != depth[u] + 1:
                raise ValueError(
                    f"Edge {u!r} -> {v!r} runs from depth {depth[u]} to depth {depth[v]}: a flow joins two consecutive "
                    "columns (the lower one at depth + 1)."
                )
            if data["count"] < 1:
                raise ValueError(f"Edge {u!r} -> {v!r} has count={data['count']}; a flow carries >= 1 input.")
            if not 0.0 < data["frequency"] <= 1.0:
                raise ValueError(
                    f"Edge {u!r} -> {v!r} has frequency={data['frequency']!r}; frequency is count / n_inputs, in (0, 1]."
                )

    @classmethod
    def _merged(cls, what: str, found: Sequence[dict[str, Any]]) -> dict[str, Any]:
        merged = super()._merged(what, found)
        if what == "node":  # class counts add up as the sizes do
            names = {name for data in found for name in data if CLASS_ATTR.match(name)}
            for name in sorted(names):
                if all(name in data for data in found):
                    merged[name] = sum(int(data[name]) for data in found)
        return merged

    @property
    def n_inputs(self) -> int:
        """The number of inputs N."""
        return int(self._graph.graph["n_inputs"])

    @property
    def classes(self) -> list[int]:
        """The classes with a count attribute on every node."""
        return list(self._graph.graph["classes"])

    def _repr_items(self) -> list[str]:
        return [f"n_inputs={self.n_inputs}", f"classes={len(self.classes)}"]
