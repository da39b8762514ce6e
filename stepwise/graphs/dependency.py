"""DependencyGraph: the result of a traversal, a thin typed face over a ``networkx.DiGraph``.

This module knows nothing of torch. Schema (DESIGN.md): node key ``"{level}:{index}"`` with attributes
``level`` (str), ``index`` (int, at least 0) and ``depth`` (int, 0 = top level); edges run upper -> lower
("depends on"), so the graph has no cycle, with attributes ``count`` (int, at least 1), ``frequency`` (float in
(0, 1], count / number of inputs), ``relevance`` (finite float, mean ω over inputs) and ``sign`` (int, +1 or -1,
the sign of ``relevance``). Graph attributes: ``levels`` (list of str, bottom to top) and ``target`` (an int, the
neuron of the top level, or a list of ``[level, index]`` pairs) are required; a traversal also records ``model``,
``rule``, ``sign``, ``version`` (str), ``branching``, ``n_inputs`` (int), ``fence`` (float), and
``stopped_at``/``stop_reason`` (str) when it ended before the bottom level; these have their types when present.
Further attributes are kept as they are.

The paper's three relevance metrics of a neuron (SSA paper, section 5), as :meth:`DependencyGraph.node_metrics`
tabulates them for every node:

- ``relevance``: the edge outlier weight, the mean ω of the incoming edge with the largest ``|mean ω|``;
- ``frequency``: the ranking score, the largest frequency of its incoming edges (1.0 for a node without parent,
  a target: it is part of the explanation on every input);
- ``interconnectedness``: its number of parents in the graph.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
import pandas as pd

from stepwise.core.validation import check_int, check_option, unknown_name_message

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["METRICS", "DependencyGraph", "node_key"]

#: The relevance metrics :meth:`DependencyGraph.top_neurons` ranks by.
METRICS = ("relevance", "frequency", "interconnectedness")

_GRAPH_ATTRS = {
    "levels": "the level names, bottom to top",
    "target": "a class index of the top level, or a list of [level, index] pairs",
}
_NODE_ATTRS = {"level": str, "index": int, "depth": int}
_EDGE_ATTRS = {"count": int, "frequency": float, "relevance": float, "sign": int}
_RECORDED_ATTRS = {
    "model": str,
    "rule": str,
    "sign": str,
    "version": str,
    "stopped_at": str,
    "stop_reason": str,
    "branching": int,
    "n_inputs": int,
    "fence": float,
}
_SHOWN = 5  # offending nodes or edges named in an error message


def node_key(level: str, index: int) -> str:
    """The key of neuron ``(level, index)``: ``"{level}:{index}"``.

    Examples
    --------
    >>> node_key("features.28", 41)
    'features.28:41'
    """
    return f"{level}:{index}"


def _listed(items: Sequence[object]) -> str:
    shown = ", ".join(repr(item) for item in list(items)[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _coerce(value: object, kind: type) -> object:
    """``value`` as a plain ``kind`` (numpy scalars included), or ``None`` when it is not one."""
    if kind is str:
        return value if isinstance(value, str) else None
    if isinstance(value, (bool, np.bool_)):
        return None
    if kind is int:
        return int(value) if isinstance(value, numbers.Integral) else None
    return float(value) if isinstance(value, numbers.Real) else None


def _missing(items: list[tuple[object, dict]], required: dict[str, type], what: str, example: str) -> ValueError | None:
    """The error for items (nodes or edges) that lack required attributes, or None."""
    lacking = [(item, sorted(set(required) - set(data))) for item, data in items if set(required) - set(data)]
    if not lacking:
        return None
    names = sorted({name for _, missing in lacking for name in missing})
    return ValueError(
        f"{len(lacking)} of {len(items)} {what}s lack the {what} attribute(s) {_listed(names)} of a stepwise "
        f"dependency graph (first: {lacking[0][0]!r}, which lacks {_listed(lacking[0][1])}). Every {what} needs "
        f"{example}."
    )


def _kind_name(kind: type) -> str:
    return {str: "a str", int: "an int", float: "a finite float"}[kind]


def _checked_target(target: object, levels: list[str]) -> int | list[list]:
    if isinstance(target, numbers.Integral) and not isinstance(target, (bool, np.bool_)):
        return int(target)
    if isinstance(target, Sequence) and not isinstance(target, str) and target:
        pairs = []
        for pair in target:
            ok = isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2
            level, index = (pair[0], _coerce(pair[1], int)) if ok else (None, None)
            if not isinstance(level, str) or index is None:
                raise ValueError(
                    f"The graph attribute 'target' holds {pair!r}: each entry must be a [level, index] pair."
                )
            if level not in levels:
                raise ValueError(
                    f"The graph attribute 'target' names level {level!r}, which is not in levels {levels}."
                )
            pairs.append([level, index])
        return pairs
    raise ValueError(
        f"The graph attribute 'target' is {target!r} ({type(target).__name__}): it must be an int (a neuron of "
        "the top level) or a non-empty list of [level, index] pairs."
    )


def _first_cycle(graph: nx.DiGraph) -> list[tuple[str, str]]:
    """A cycle of ``graph`` as a list of edges, the same whatever order the nodes and edges were added in: found
    from the top-most node on a cycle (smallest depth, then key), in a copy of its strongly connected component
    with sorted edges."""
    on_cycles = [c for c in nx.strongly_connected_components(graph) if len(c) > 1 or graph.has_edge(*[min(c)] * 2)]
    start = min((n for c in on_cycles for n in c), key=lambda n: (graph.nodes[n]["depth"], n))
    component = next(c for c in on_cycles if start in c)
    canonical = nx.DiGraph(sorted(graph.subgraph(component).edges()))
    return nx.find_cycle(canonical, source=start)


def _checked(graph: nx.DiGraph) -> nx.DiGraph:
    """A deep copy of ``graph`` with the schema checked and its typed attributes made plain Python values.

    Raises
    ------
    ValueError
        Naming what is missing or wrong, and where: graph attributes, node or edge attributes, their types, a
        node key that is not ``"{level}:{index}"``, a negative index, a node whose level is not among ``levels``
        or whose depth does not match it, a cycle, an edge that does not run from a level to a lower one, a count
        below 1, a frequency outside (0, 1], a sign that is not the sign of the relevance.
    """
    graph = copy.deepcopy(graph)
    missing = [name for name in _GRAPH_ATTRS if name not in graph.graph]
    if missing:
        needs = "; ".join(f"{name!r}: {_GRAPH_ATTRS[name]}" for name in missing)
        raise ValueError(
            f"The graph lacks the graph attribute(s) {_listed(missing)} of a stepwise dependency graph ({needs}). "
            "Graphs from StepwiseSensitivity.dependency_graph have them; for a graph built by hand set "
            "g.graph['levels'] and g.graph['target']."
        )
    levels = graph.graph["levels"]
    if not (isinstance(levels, Sequence) and not isinstance(levels, str) and levels):
        raise ValueError(f"The graph attribute 'levels' is {levels!r}: it must be a non-empty list of level names.")
    levels = list(levels)
    if not all(isinstance(name, str) for name in levels) or len(set(levels)) != len(levels):
        raise ValueError(f"The graph attribute 'levels' is {levels!r}: it must list distinct level names (str).")
    graph.graph["levels"] = levels
    graph.graph["target"] = _checked_target(graph.graph["target"], levels)
    for name, kind in _RECORDED_ATTRS.items():
        if name in graph.graph:
            value = _coerce(graph.graph[name], kind)
            if value is None or (kind is float and not math.isfinite(value)):
                raise ValueError(
                    f"The graph attribute {name!r} is {graph.graph[name]!r} ({type(graph.graph[name]).__name__}): "
                    f"it must be {_kind_name(kind)}, as a traversal records it."
                )
            graph.graph[name] = value

    nodes = list(graph.nodes(data=True))
    error = _missing(nodes, _NODE_ATTRS, "node", "'level' (str), 'index' (int) and 'depth' (int, 0 = top level)")
    if error:
        raise error
    top = len(levels) - 1
    for key, data in nodes:
        for name, kind in _NODE_ATTRS.items():
            value = _coerce(data[name], kind)
            if value is None:
                raise ValueError(
                    f"Node {key!r} has {name}={data[name]!r} ({type(data[name]).__name__}); {name} must be "
                    f"{_kind_name(kind)}."
                )
            data[name] = value
        if data["index"] < 0:
            raise ValueError(f"Node {key!r} has index {data['index']}; a neuron's index is at least 0.")
        if data["level"] not in levels:
            raise ValueError(f"Node {key!r} has level {data['level']!r}, which is not in the graph's levels {levels}.")
        if key != node_key(data["level"], data["index"]):
            raise ValueError(
                f"Node {key!r} has level {data['level']!r} and index {data['index']}, so its key must be "
                f"{node_key(data['level'], data['index'])!r}."
            )
        depth = top - levels.index(data["level"])
        if data["depth"] != depth:
            raise ValueError(
                f"Node {key!r} has depth {data['depth']}, but level {data['level']!r} lies at depth {depth} of "
                f"levels {levels} (0 = top level)."
            )

    edges = [((u, v), d) for u, v, d in graph.edges(data=True)]
    error = _missing(
        edges,
        _EDGE_ATTRS,
        "edge",
        "'count' (int), 'frequency' (float), 'relevance' (float), 'sign' (+1 or -1)",
    )
    if error:
        raise error
    if not nx.is_directed_acyclic_graph(graph):  # linear time; the rest only names one cycle
        cycle = _first_cycle(graph)
        path = " -> ".join(repr(u) for u, _ in cycle) + f" -> {cycle[0][0]!r}"
        raise ValueError(
            f"The graph has a cycle, {path}: edges run from a neuron to one of a lower level it depends on, so a "
            "dependency graph has none."
        )
    for (u, v), data in edges:
        for name, kind in _EDGE_ATTRS.items():
            value = _coerce(data[name], kind)
            if value is None or (kind is float and not math.isfinite(value)):
                raise ValueError(
                    f"Edge {u!r} -> {v!r} has {name}={data[name]!r} ({type(data[name]).__name__}); {name} must be "
                    f"{_kind_name(kind)}."
                )
            data[name] = value
        if data["count"] < 1:
            raise ValueError(
                f"Edge {u!r} -> {v!r} has count={data['count']}; count is the number of inputs in which the lower "
                "neuron is an outlier, at least 1 (a neuron with count 0 is never a child)."
            )
        if not 0.0 < data["frequency"] <= 1.0:
            raise ValueError(
                f"Edge {u!r} -> {v!r} has frequency={data['frequency']!r}; frequency is count / number of inputs, "
                "in (0, 1]."
            )
        if data["sign"] not in (1, -1):
            raise ValueError(f"Edge {u!r} -> {v!r} has sign={data['sign']}; sign must be +1 or -1.")
        if data["sign"] * data["relevance"] < 0:
            raise ValueError(
                f"Edge {u!r} -> {v!r} has sign={data['sign']} but relevance={data['relevance']!r}; sign is the sign "
                "of relevance (+1 when relevance >= 0, -1 below)."
            )
        if graph.nodes[u]["depth"] >= graph.nodes[v]["depth"]:
            raise ValueError(
                f"Edge {u!r} -> {v!r} runs from depth {graph.nodes[u]['depth']} to depth {graph.nodes[v]['depth']}: "
                "edges run from an upper neuron to a lower one it depends on."
            )
    return graph


class DependencyGraph:
    """Neurons that drive a decision and the neurons they depend on, level by level.

    Parameters
    ----------
    graph : networkx.DiGraph
        A graph following the schema of this module; it is checked and deep-copied.

    Raises
    ------
    TypeError
        If ``graph`` is not a ``networkx.DiGraph`` (a multigraph is not accepted).
    ValueError
        If ``graph`` does not follow the schema; the message names what is missing or wrong.

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.DiGraph(levels=["fc1", "softmax"], target=1)
    >>> g.add_node("softmax:1", level="softmax", index=1, depth=0)
    >>> g.add_node("fc1:7", level="fc1", index=7, depth=1)
    >>> g.add_edge("softmax:1", "fc1:7", count=9, frequency=0.9, relevance=0.2, sign=1)
    >>> DependencyGraph(g)
    DependencyGraph(target=1, levels=2, nodes=2, edges=1)
    """

    def __init__(self, graph: nx.DiGraph) -> None:
        if not isinstance(graph, nx.DiGraph) or graph.is_multigraph():
            raise TypeError(
                f"DependencyGraph needs a networkx.DiGraph; got {type(graph).__name__}. Convert a multigraph with "
                "nx.DiGraph(g) once parallel edges are merged."
            )
        self._graph = _checked(graph)

    @classmethod
    def from_networkx(cls, graph: nx.DiGraph) -> DependencyGraph:
        """Check ``graph`` against the schema and wrap a copy of it.

        Parameters
        ----------
        graph : networkx.DiGraph

        Returns
        -------
        DependencyGraph

        Raises
        ------
        TypeError
            If ``graph`` is not a ``networkx.DiGraph``.
        ValueError
            If a graph, node or edge attribute is missing or of the wrong type; the message names it.
        """
        return cls(graph)

    @property
    def nodes(self) -> Any:
        """The nodes with their attributes (a networkx NodeView: ``graph.nodes["fc1:7"]["level"]``)."""
        return self._graph.nodes

    @property
    def edges(self) -> Any:
        """The edges upper -> lower with their attributes (a networkx OutEdgeView)."""
        return self._graph.edges

    @property
    def levels(self) -> list[str]:
        """The analysed levels, bottom to top."""
        return list(self._graph.graph["levels"])

    @property
    def target(self) -> int | list[list]:
        """What the traversal explained: a neuron of the top level, or a list of ``[level, index]`` pairs."""
        target = self._graph.graph["target"]
        return target if isinstance(target, int) else [list(pair) for pair in target]

    @property
    def attrs(self) -> dict[str, Any]:
        """The graph attributes (model, levels, target, rule, branching, fence, sign, n_inputs, version, ...)."""
        return dict(self._graph.graph)

    def to_networkx(self) -> nx.DiGraph:
        """Return a deep copy of the graph as a ``networkx.DiGraph``."""
        return copy.deepcopy(self._graph)

    def subgraph(self, *, levels: str | Sequence[str]) -> DependencyGraph:
        """The neurons of some levels and the edges between them.

        Parameters
        ----------
        levels : str or sequence of str
            Names among :attr:`levels`.

        Returns
        -------
        DependencyGraph
            The induced subgraph; graph attributes and node depths are those of this graph.

        Raises
        ------
        TypeError
            If ``levels`` is not a str or a sequence of str.
        ValueError
            If a name is not one of the graph's levels.

        Examples
        --------
        >>> import networkx as nx
        >>> g = nx.DiGraph(levels=["fc1", "softmax"], target=1)
        >>> g.add_node("softmax:1", level="softmax", index=1, depth=0)
        >>> g.add_node("fc1:7", level="fc1", index=7, depth=1)
        >>> DependencyGraph(g).subgraph(levels="fc1")
        DependencyGraph(target=1, levels=2, nodes=1, edges=0)
        """
        names = [levels] if isinstance(levels, str) else levels
        if not isinstance(names, Sequence) or not all(isinstance(name, str) for name in names):
            raise TypeError(
                f"levels must be a level name or a list of level names (str); got {levels!r}. "
                f"This graph's levels are {self.levels}."
            )
        for name in names:
            if name not in self.levels:
                raise ValueError(
                    unknown_name_message("level", name, "this graph", self.levels, f"Its levels are {self.levels}.")
                )
        keep = [n for n, level in self._graph.nodes(data="level") if level in names]
        return DependencyGraph(self._graph.subgraph(keep).copy())

    def node_metrics(self) -> pd.DataFrame:
        """The three relevance metrics of every neuron (see the module docstring).

        Returns
        -------
        pandas.DataFrame of shape (n_nodes, 6)
            Indexed by node key, top level first, then by index; columns ``level`` (str), ``index`` (int),
            ``depth`` (int), ``interconnectedness`` (int, number of parents), ``frequency`` (float, the largest
            frequency of the incoming edges, 1.0 for a node without parent) and ``relevance`` (float, mean ω of
            the incoming edge with the largest ``|mean ω|``, NaN for a node without parent).
        """
        rows = {}
        for node, data in self._graph.nodes(data=True):
            incoming = [d for _, _, d in self._graph.in_edges(node, data=True)]
            strongest = max(incoming, key=lambda d: abs(d["relevance"]), default=None)
            rows[node] = {
                "level": data["level"],
                "index": data["index"],
                "depth": data["depth"],
                "interconnectedness": len(incoming),
                "frequency": max((d["frequency"] for d in incoming), default=1.0),
                "relevance": np.nan if strongest is None else strongest["relevance"],
            }
        columns = ["level", "index", "depth", "interconnectedness", "frequency", "relevance"]
        table = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
        integers = {"index": "int64", "depth": "int64", "interconnectedness": "int64"}
        table = table.astype({"level": str, **integers, "frequency": "float64", "relevance": "float64"})
        table.index.name = "node"
        return table.sort_values(["depth", "index"], kind="stable")

    def top_neurons(self, metric: str, k: int = 10, *, level: str | None = None) -> pd.DataFrame:
        """The ``k`` neurons that rank highest by one of the paper's relevance metrics.

        Only neurons with at least one parent are ranked (a target is the question, not the answer).

        Parameters
        ----------
        metric : {'relevance', 'frequency', 'interconnectedness'}
            ``relevance`` ranks by ``|relevance|`` (an inhibitory neuron of a ``sign="both"`` graph ranks by its
            strength), the others by their value; ties go to the upper level, then to the smaller index.
        k : int, default=10
            Number of rows at most.
        level : str, optional
            Rank the neurons of this level only.

        Returns
        -------
        pandas.DataFrame of shape (min(k, n_ranked), 6)
            Rows of :meth:`node_metrics`, best first.

        Raises
        ------
        ValueError
            For an unknown metric or level, or ``k < 1``.
        """
        owner = "DependencyGraph.top_neurons"
        check_option(metric, "metric", owner, METRICS)
        k = check_int(k, "k", owner, low=1)
        table = self.node_metrics()
        table = table[table["interconnectedness"] > 0]
        if level is not None:
            if level not in self.levels:
                raise ValueError(
                    unknown_name_message("level", level, "this graph", self.levels, f"Its levels are {self.levels}.")
                )
            table = table[table["level"] == level]
        score = table[metric].abs() if metric == "relevance" else table[metric]
        order = table.assign(_score=score).sort_values(
            ["_score", "depth", "index"], ascending=[False, True, True], kind="stable"
        )
        return order.drop(columns="_score").head(k)

    def write(self, path: str | PathLike) -> None:
        """Write the graph to ``path``, atomically; the format follows the suffix.

        Parameters
        ----------
        path : str or path-like
            Ending in ``.graphml``, ``.gexf``, ``.json`` (networkx node-link) or ``.dot``.

        See Also
        --------
        stepwise.read_graph, stepwise.write_graph
        """
        from .readwrite import write_graph

        write_graph(self, path)

    def plot(self, *, ax: Axes | None = None) -> Figure:
        """Draw the graph level by level, top level on top (see :func:`stepwise.plot.plot_graph`).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw; a new figure by default.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .draw import plot_graph

        return plot_graph(self, ax=ax)

    def __len__(self) -> int:
        return self._graph.number_of_nodes()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DependencyGraph):
            return NotImplemented
        a, b = self._graph, other._graph
        return (
            a.graph == b.graph
            and dict(a.nodes(data=True)) == dict(b.nodes(data=True))
            and {(u, v): d for u, v, d in a.edges(data=True)} == {(u, v): d for u, v, d in b.edges(data=True)}
        )

    __hash__ = None  # type: ignore[assignment]  # mutable through nodes/edges views

    def __repr__(self) -> str:
        target = self.target
        shown = f"[{len(target)} neurons]" if isinstance(target, list) and len(target) > 3 else repr(target)
        return (
            f"DependencyGraph(target={shown}, levels={len(self.levels)}, "
            f"nodes={self._graph.number_of_nodes()}, edges={self._graph.number_of_edges()})"
        )
