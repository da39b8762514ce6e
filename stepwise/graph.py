"""DependencyGraph: the result of a traversal, a thin typed face over a ``networkx.DiGraph``.

This module knows nothing of torch. Schema (DESIGN.md): node key ``"{level}:{index}"`` with attributes
``level`` (str), ``index`` (int) and ``depth`` (int, 0 = top level); edges run upper -> lower ("depends on")
with attributes ``count`` (int), ``frequency`` (float, count / number of inputs), ``relevance`` (float, mean ω
over inputs) and ``sign`` (int, +1 or -1). Graph attributes: ``model``, ``levels``, ``target``, ``rule``,
``branching``, ``fence``, ``sign``, ``n_inputs``, ``version``, and ``stopped_at``/``stop_reason`` when the
traversal ended before the bottom level.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

__all__ = ["DependencyGraph", "node_key"]


def node_key(level: str, index: int) -> str:
    """The key of neuron ``(level, index)``: ``"{level}:{index}"``."""
    return f"{level}:{index}"


class DependencyGraph:
    """Neurons that drive a decision and the neurons they depend on, level by level.

    Parameters
    ----------
    graph : networkx.DiGraph
        A graph following the schema above; it is copied.

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
        if not isinstance(graph, nx.DiGraph):
            raise TypeError(f"DependencyGraph needs a networkx.DiGraph; got {type(graph).__name__}.")
        self._graph = graph.copy()

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
        return list(self._graph.graph.get("levels", []))

    @property
    def target(self) -> Any:
        """What the traversal explained: a class index, or a list of ``(level, index)`` neurons."""
        return self._graph.graph.get("target")

    @property
    def attrs(self) -> dict[str, Any]:
        """The graph attributes (model, levels, target, rule, branching, fence, sign, n_inputs, version, ...)."""
        return dict(self._graph.graph)

    def to_networkx(self) -> nx.DiGraph:
        """Return a copy of the graph as a ``networkx.DiGraph``."""
        return self._graph.copy()

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

    def __repr__(self) -> str:
        return (
            f"DependencyGraph(target={self.target!r}, levels={len(self.levels)}, "
            f"nodes={self._graph.number_of_nodes()}, edges={self._graph.number_of_edges()})"
        )
