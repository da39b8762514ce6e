"""InferenceGraph: the visual words that explain a decision, level by level; the layered graph of kind ``"inference"``.

No torch. Schema (DESIGN.md, beyond what every :class:`~stepwise.graphs.layered.LayeredGraph` has):

- graph attributes ``target`` (int, the explained class: word ``target`` of the top level), ``n_inputs`` (int, at
  least 1, the explained inputs Omega) and ``z`` (int, at least 1, the words allowed per level) are required; a graph
  built by :class:`stepwise.InferenceGraphs` also records ``scope`` (``"class"`` or ``"image"``), ``model``,
  ``loss``, ``version`` (str), ``seed`` (int), ``n_words`` (dict of level to K) and ``selected`` (dict of level to
  the number of words kept, fewer than ``z`` where fewer had a positive score);
- a node ``"{level}:{word}"`` has ``index`` = the word, ``size`` (int, at least 0: the columns of Omega in that
  word) and ``score`` (float: Eq. 16, the sum over the selected upper words; 0 for the top word);
- an edge runs from a selected word of one level to a selected word of the level just below, with ``count``
  (int, at least 1: Q'_{t,s}, the occurrences of the lower word in the upper word's receptive fields over Omega),
  ``frequency`` (float in (0, 1]: count / sum of Q'_{.,s} over all lower words), ``log_ratio`` (float: log2 of
  P(t | s) / P(t)) and ``score`` (float: count * log_ratio).
"""

from __future__ import annotations

import math
from typing import Any

import networkx as nx

from .layered import LayeredGraph, coerce

__all__ = ["InferenceGraph"]


class InferenceGraph(LayeredGraph):
    """Visual words per level and how they explain each other for a class or one input (paper 001, Algorithm 1).

    Parameters
    ----------
    graph : networkx.DiGraph
        A graph following the schema of this module; it is checked and deep-copied.

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.DiGraph(levels=["conv", "softmax"], target=3, n_inputs=5, z=2)
    >>> g.add_node("softmax:3", level="softmax", index=3, depth=0, size=5, score=0.0)
    >>> g.add_node("conv:7", level="conv", index=7, depth=1, size=40, score=12.5)
    >>> g.add_edge("softmax:3", "conv:7", count=25, frequency=0.5, log_ratio=0.5, score=12.5)
    >>> InferenceGraph(g)
    InferenceGraph(target=3, n_inputs=5, levels=2, nodes=2, edges=1)
    """

    KIND = "inference"
    GRAPH_ATTRS = {
        "target": "the explained class (an int)",
        "n_inputs": "the number of explained inputs (an int)",
        "z": "the words allowed per level (an int)",
    }
    RECORDED_ATTRS = {
        "scope": str,
        "model": str,
        "loss": str,
        "version": str,
        "seed": int,
        "n_words": dict,
        "selected": dict,
    }
    NODE_ATTRS = {"size": int, "score": float}
    EDGE_ATTRS = {"count": int, "frequency": float, "log_ratio": float, "score": float}
    MADE_BY = "stepwise.InferenceGraphs.class_graph() or image_graph()"

    @classmethod
    def _check_values(cls, graph: nx.DiGraph) -> None:
        for name, low in (("target", 0), ("n_inputs", 1), ("z", 1)):
            value = coerce(graph.graph[name], int)
            if value is None or value < low:
                raise ValueError(f"The graph attribute {name!r} is {graph.graph[name]!r}: it must be an int >= {low}.")
            graph.graph[name] = value
        for key, data in graph.nodes(data=True):
            if data["size"] < 0:
                raise ValueError(f"Node {key!r} has size={data['size']}; size counts columns, so it is at least 0.")
        depth = graph.nodes(data="depth")
        for u, v, data in graph.edges(data=True):
            where = f"Edge {u!r} -> {v!r}"
            if depth[v] != depth[u] + 1:
                raise ValueError(
                    f"{where} runs from depth {depth[u]} to depth {depth[v]}: an inference graph joins words of "
                    "consecutive levels (the lower one at depth + 1)."
                )
            if data["count"] < 1:
                raise ValueError(f"{where} has count={data['count']}; an edge's Q' count is at least 1.")
            if not 0.0 < data["frequency"] <= 1.0:
                raise ValueError(f"{where} has frequency={data['frequency']!r}; frequency lies in (0, 1].")
            expected = data["count"] * data["log_ratio"]
            if not math.isclose(data["score"], expected, rel_tol=1e-9, abs_tol=1e-9):
                raise ValueError(
                    f"{where} has score={data['score']!r}, but count * log_ratio = {expected!r}: an edge's score is "
                    "its term of Eq. 16."
                )

    @property
    def target(self) -> int:
        """The explained class."""
        return int(self._graph.graph["target"])

    @property
    def n_inputs(self) -> int:
        """The number of explained inputs."""
        return int(self._graph.graph["n_inputs"])

    def words(self, level: str) -> list[int]:
        """The selected words of ``level``, by decreasing score."""
        found = [(d["score"], d["index"]) for _, d in self._graph.nodes(data=True) if d["level"] == level]
        return [index for _, index in sorted(found, key=lambda item: (-item[0], item[1]))]

    def _repr_items(self) -> list[str]:
        return [f"target={self.target}", f"n_inputs={self.n_inputs}"]

    @classmethod
    def _merged(cls, what: str, found: Any) -> dict[str, Any]:
        merged = super()._merged(what, found)
        if what == "edge" and "count" in merged and "log_ratio" in merged:
            merged["score"] = merged["count"] * merged["log_ratio"]  # kept consistent with the count summed
        return merged
