"""Algorithm 1 as a graph: the selected words of every level and the weighted edges between consecutive levels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx
import numpy as np

from stepwise.graphs.inference import InferenceGraph
from stepwise.graphs.layered import node_key

from .selection import edge_scores, log_ratio, select_words, word_scores

__all__ = ["build_graph"]


def build_graph(
    levels: list[str],
    target: int,
    z: int,
    q: Mapping[tuple[str, str], np.ndarray],
    validation: Mapping[tuple[str, str], np.ndarray],
    sizes: Mapping[str, np.ndarray],
    n_inputs: int,
    attrs: Mapping[str, Any],
) -> InferenceGraph:
    """Run Algorithm 1 from S = {target} at the top level down to the bottom level.

    Parameters
    ----------
    levels : list of str
        Bottom to top.
    target : int
        The word of the top level to explain.
    z : int
        Words kept per level.
    q : mapping of (upper, lower) to ndarray of shape (K_upper, K_lower)
        Q' over Omega (Eq. 15).
    validation : mapping of (upper, lower) to ndarray of shape (K_upper, K_lower)
        N over the validation inputs (Eq. 4), for P(t | s) and P(t).
    sizes : mapping of str to ndarray of shape (K,)
        The columns of Omega in each word.
    n_inputs : int
        |Omega|.
    attrs : mapping
        Further graph attributes.

    Returns
    -------
    InferenceGraph
        Nodes with ``size`` and ``score`` (Eq. 16; 0 for the top word); an edge s -> t for every selected pair with
        Q'[s, t] > 0 and a finite log ratio; ``selected`` records the words kept per level.
    """
    top = len(levels) - 1
    g = nx.DiGraph(levels=list(levels), target=int(target), n_inputs=int(n_inputs), z=int(z), **attrs)
    g.add_node(node_key(levels[-1], target), level=levels[-1], index=int(target), depth=0,
               size=int(sizes[levels[-1]][target]), score=0.0)  # fmt: skip
    chosen = [int(target)]
    selected = {levels[-1]: 1}
    for position in range(top - 1, -1, -1):
        upper, lower = levels[position + 1], levels[position]
        table, ratio = q[(upper, lower)], log_ratio(validation[(upper, lower)])
        scores = word_scores(table, ratio, chosen)
        words = select_words(scores, z)
        selected[lower] = len(words)
        depth = top - position
        for t in words:
            g.add_node(node_key(lower, t), level=lower, index=t, depth=depth, size=int(sizes[lower][t]),
                       score=float(scores[t]))  # fmt: skip
        terms = edge_scores(table, ratio)
        for s in chosen:
            row = float(table[s].sum())
            for t in words:
                count = int(table[s, t])
                if count > 0 and np.isfinite(ratio[s, t]):
                    g.add_edge(node_key(upper, s), node_key(lower, t), count=count, frequency=count / row,
                               log_ratio=float(ratio[s, t]), score=float(terms[s, t]))  # fmt: skip
        chosen = words
        if not words:
            break
    g.graph["selected"] = selected
    return InferenceGraph(g)
