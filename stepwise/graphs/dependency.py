"""DependencyGraph: the result of a traversal, a thin typed face over a ``networkx.DiGraph``.

This module knows nothing of torch. The kind ``"dependency"`` of :class:`~stepwise.graphs.layered.LayeredGraph`
(docs/design.md): node key ``"{level}:{index}"`` with attributes
``level`` (str), ``index`` (int, at least 0) and ``depth`` (int, 0 = top level); edges run upper -> lower
("depends on"), so the graph has no cycle, with attributes ``count`` (int, at least 1), ``frequency`` (float in
(0, 1], count / number of inputs), ``relevance`` (finite float, mean ω over inputs) and ``sign`` (int, +1 or -1,
the sign of ``relevance``). Graph attributes: ``levels`` (list of str, bottom to top) and ``target`` (an int, the
neuron of the top level, or a list of ``[level, index]`` pairs) are required; a traversal also records ``model``,
``rule``, ``sign``, ``version`` (str), ``branching``, ``n_inputs`` (int), ``fence`` (float), and
``stopped_at``/``stop_reason`` (str) when it ended before the bottom level (:attr:`DependencyGraph.stopped_at`,
:attr:`DependencyGraph.stop_reason`); these have their types when present. Further attributes are kept as they
are, and ``kind`` is ``"dependency"``.

The paper's three relevance metrics of a neuron (SSA paper, section 5), as :meth:`DependencyGraph.node_metrics`
tabulates them for every node:

- ``relevance``: the edge outlier weight, the mean ω of the incoming edge with the largest ``|mean ω|``;
- ``frequency``: the ranking score, the largest frequency of its incoming edges (1.0 for a node without parent,
  a target: it is part of the explanation on every input);
- ``interconnectedness``: its number of parents in the graph.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import networkx as nx
import numpy as np

from stepwise.core.validation import check_int, check_option, unknown_name_message

from .layered import LayeredGraph, coerce, node_key

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["METRICS", "DependencyGraph", "node_key"]

#: The relevance metrics :meth:`DependencyGraph.top_neurons` ranks by.
METRICS = ("relevance", "frequency", "interconnectedness")


def _checked_target(target: object, levels: list[str]) -> int | list[list]:
    if isinstance(target, numbers.Integral) and not isinstance(target, (bool, np.bool_)):
        return int(target)
    if isinstance(target, Sequence) and not isinstance(target, str) and target:
        pairs = []
        for pair in target:
            ok = isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2
            level, index = (pair[0], coerce(pair[1], int)) if ok else (None, None)
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


def _check_edge(u: str, v: str, data: dict[str, Any]) -> None:
    """An edge's count, frequency and sign, once their types are checked."""
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


def _shared_target(graphs: Sequence[LayeredGraph]) -> int | list[list]:
    """The common target of dependency graphs, or the union of their targets as [level, index] pairs, top first."""
    targets = [g.attrs["target"] for g in graphs]
    if all(t == targets[0] for t in targets):
        return targets[0]
    levels = graphs[0].levels
    pairs: set[tuple[str, int]] = set()
    for target in targets:
        pairs.update([(levels[-1], target)] if isinstance(target, int) else [(level, index) for level, index in target])
    return [[level, index] for level, index in sorted(pairs, key=lambda p: (-levels.index(p[0]), p[1]))]


class DependencyGraph(LayeredGraph):
    """Neurons that drive a decision and the neurons they depend on, level by level (the kind ``"dependency"``).

    Parameters
    ----------
    graph : networkx.DiGraph
        A graph following the schema of this module; it is checked and deep-copied. A graph without the graph
        attribute ``kind`` gets ``"dependency"``.

    Raises
    ------
    TypeError
        If ``graph`` is not a ``networkx.DiGraph`` (a multigraph is not accepted).
    ValueError
        If ``graph`` does not follow the schema, or its ``kind`` is another kind; the message names what is
        missing or wrong.

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.DiGraph(levels=["fc1", "softmax"], target=1)
    >>> g.add_node("softmax:1", level="softmax", index=1, depth=0)
    >>> g.add_node("fc1:7", level="fc1", index=7, depth=1)
    >>> g.add_edge("softmax:1", "fc1:7", count=9, frequency=0.9, relevance=0.2, sign=1)
    >>> graph = DependencyGraph(g)
    >>> graph
    DependencyGraph(target=1, levels=2, nodes=2, edges=1)
    >>> graph.kind, graph.stopped_at
    ('dependency', None)
    """

    KIND: ClassVar[str] = "dependency"
    GRAPH_ATTRS: ClassVar[dict[str, str]] = {
        "target": "a class index of the top level, or a list of [level, index] pairs",
    }
    RECORDED_ATTRS: ClassVar[dict[str, type]] = {
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
    EDGE_ATTRS: ClassVar[dict[str, type]] = {"count": int, "frequency": float, "relevance": float, "sign": int}
    MADE_BY: ClassVar[str] = "StepwiseSensitivity.dependency_graph"

    @classmethod
    def _check_values(cls, graph: nx.DiGraph) -> None:
        graph.graph["target"] = _checked_target(graph.graph["target"], graph.graph["levels"])
        for u, v, data in graph.edges(data=True):
            _check_edge(u, v, data)

    @classmethod
    def _shared_attrs(cls, graphs: Sequence[LayeredGraph]) -> dict[str, Any]:
        attrs = super()._shared_attrs(graphs)
        attrs["target"] = _shared_target(graphs)
        return attrs

    @classmethod
    def _merged(cls, what: str, found: Sequence[dict[str, Any]]) -> dict[str, Any]:
        merged = super()._merged(what, found)
        if what == "edge":
            merged["sign"] = 1 if merged["relevance"] >= 0 else -1
        return merged

    @property
    def target(self) -> int | list[list]:
        """What the traversal explained: a neuron of the top level, or a list of ``[level, index]`` pairs."""
        target = self._graph.graph["target"]
        return target if isinstance(target, int) else [list(pair) for pair in target]

    @property
    def stopped_at(self) -> str | None:
        """Where the traversal ended before the bottom level: the step that found no child for any neuron, as
        ``"lower <- upper"`` (for example ``"fc1 <- fc2"``), or ``None`` when it reached the bottom level."""
        return self._graph.graph.get("stopped_at")

    @property
    def stop_reason(self) -> str | None:
        """Why the traversal ended at :attr:`stopped_at`, or ``None`` when it reached the bottom level."""
        return self._graph.graph.get("stop_reason")

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
        import pandas as pd

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

    def _repr_items(self) -> list[str]:
        target = self.target
        shown = f"[{len(target)} neurons]" if isinstance(target, list) and len(target) > 3 else repr(target)
        return [f"target={shown}"]
