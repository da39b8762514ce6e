"""The decision-paths view: the Sankey diagram with a class filter, the clusters (a row per node of the paths graph:
its size and classes on click), the top paths of each class with their coverage, and the rare inputs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape

import pandas as pd

from stepwise.graphs.paths import PathsGraph
from stepwise.paths.sankey import sankey_plotly

from .page import View, graph_data
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
    figures = {"all": _figure(assignments, columns, None, "Decision paths")}
    for c in classes:
        figures[str(c)] = _figure(assignments, columns, [c], f"Decision paths of class {c}")
    data = {"figures": figures, "graph": graph_data(graph, "decision paths")}
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


def _figure(assignments: pd.DataFrame, columns: Sequence[str], classes: list[int] | None, title: str) -> dict:
    """The Sankey figure as plotly JSON, without plotly's default template (the page sets no theme)."""
    figure = sankey_plotly(assignments, columns, classes, title=title)
    figure.update_layout(template="none")
    return json.loads(figure.to_json())


def _main_class(node: dict, classes: list[int]) -> str:
    counts = {c: node.get(f"class_{c}", 0) for c in classes}
    best = max(counts, key=lambda c: (counts[c], -c))
    size = node.get("size") or 1
    return f"{best} ({counts[best] / size:.0%})"
