"""The decision-paths view: the Sankey diagram with a class filter, the clusters (a row per node of the paths graph:
its size and classes on click), the top paths of each class with their coverage, and the rare inputs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape

import pandas as pd

from stepwise.graphs.paths import PathsGraph
from stepwise.paths.sankey import sankey_plotly

from .dependency import graph_data
from .page import View
from .tables import html_table, select

__all__ = ["paths_view"]

_TOP = 5  # paths listed per class


def paths_view(
    assignments: pd.DataFrame,
    columns: Sequence[str],
    paths: pd.DataFrame,
    rare: pd.DataFrame,
    graph: PathsGraph,
) -> View:
    """The view of fitted decision paths.

    Parameters
    ----------
    assignments : pandas.DataFrame of shape (N, n_columns)
        The cluster of each input per column, bottom to top, the class last (``DecisionPaths.assignments_``).
    columns : sequence of str
        Those columns, bottom to top.
    paths : pandas.DataFrame
        ``class``, ``path`` (cluster ids joined by ``-``, bottom to top), ``count``, ``coverage``; largest first
        within a class.
    rare : pandas.DataFrame
        As ``DecisionPaths.rare()``.
    graph : PathsGraph
        The clusters and flows; one table row per node.

    Returns
    -------
    View
    """
    classes = sorted(int(c) for c in set(assignments[columns[-1]].tolist()))
    figures = {"all": json.loads(sankey_plotly(assignments, columns, None).to_json())}
    for c in classes:
        figures[str(c)] = json.loads(
            sankey_plotly(assignments, columns, [c], title=f"Decision paths of class {c}").to_json()
        )
    data = {"figures": figures, "graph": graph_data(graph, "decision paths"), "columns": list(columns)}
    nodes = pd.DataFrame(
        [
            {"level": d["level"], "cluster": d["index"], "size": d["size"], "main class": _main_class(d, classes)}
            for _, d in graph.nodes(data=True)
        ]
    )
    keys = [key for key in graph.nodes]
    top = paths.groupby("class", sort=True, group_keys=False).head(_TOP)
    parts = [
        select("paths-class", [("all", "all classes")] + [(str(c), f"class {c}") for c in classes], "Flows of"),
        '<div class="plot" id="paths-sankey"></div>',
        f'<h2>Top paths</h2><p class="caption">Per class its {_TOP} most taken paths, clusters bottom to top '
        f"({escape(' → '.join(columns))}), and the share of the class each covers.</p>",
        html_table(top.reset_index(drop=True)),
        "<h2>Clusters</h2>",
        html_table(nodes, keys=keys, caption="A row per cluster of each level (click for its classes and flows)"),
        f'<h2>Rare inputs</h2><p class="caption">{len(rare)} inputs on thin flows or in a cluster another class '
        "dominates.</p>",
        html_table(rare.reset_index(drop=True)),
    ]
    return View("paths", "Decision paths", "".join(parts), data)


def _main_class(node: dict, classes: list[int]) -> str:
    counts = {c: node.get(f"class_{c}", 0) for c in classes}
    best = max(counts, key=lambda c: (counts[c], -c))
    size = node.get("size") or 1
    return f"{best} ({counts[best] / size:.0%})"
