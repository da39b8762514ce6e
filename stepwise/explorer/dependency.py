"""The dependency-graph view: pick a graph (a class), its layered drawing, a neuron's details on click (level,
index, the three relevance metrics, its edges, the outlier-frequency bars of its children), the clustermap of the
graphs' bag-of-nodes vectors, and the neurons they share."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

import numpy as np

from stepwise.graphs.collections import ClusterResult, cluster_graphs, node_occurrence
from stepwise.graphs.layered import LayeredGraph

from .page import View, graph_data
from .svg import graph_svg
from .tables import html_table, select

__all__ = ["dependency_view"]


def _clusters(result: ClusterResult) -> dict:
    order = [int(i) for i in result.leaf_order]
    frame = result.frame.iloc[order]
    return {
        "graphs": [str(label) for label in frame.index],
        "nodes": [str(c) for c in frame.columns],
        "values": frame.to_numpy(dtype=np.float64),
        "flat": None if result.labels is None else [int(result.labels.iloc[i]) for i in order],
    }


def dependency_view(graphs: Mapping[str, LayeredGraph], clusters: ClusterResult | None = None) -> View:
    """The view of some dependency graphs.

    Parameters
    ----------
    graphs : mapping of str to DependencyGraph
        Label (such as ``"class 3"``) to graph, in the order the picker lists them.
    clusters : ClusterResult, optional
        Their clustering; computed (:func:`stepwise.graphs.collections.cluster_graphs`) when there are two or more
        non-empty graphs and none is given.

    Returns
    -------
    View
    """
    ids = {label: f"dependency-{i}" for i, label in enumerate(graphs)}
    data: dict = {"graphs": {}}
    drawings = []
    for label, graph in graphs.items():
        gid = ids[label]
        entry = graph_data(graph, label)
        metrics = graph.node_metrics() if hasattr(graph, "node_metrics") else None
        if metrics is not None:
            entry["metrics"] = {
                key: {m: row[m] for m in ("relevance", "frequency", "interconnectedness")}
                for key, row in metrics.iterrows()
            }
        data["graphs"][gid] = entry
        drawings.append(
            f'<div class="choice" data-choice="dependency" data-value="{gid}"{"" if not drawings else " hidden"}>'
            f'<p class="caption">{escape(_caption(graph))}</p><div class="zoomable">{graph_svg(graph, gid)}</div></div>'
        )
    non_empty = {label: g for label, g in graphs.items() if len(g.nodes)}
    if clusters is None and len(non_empty) >= 2:
        clusters = cluster_graphs(non_empty)
    parts = [
        select("dependency", [(ids[label], label) for label in graphs], "Graph"),
        '<p class="hint">Scroll to zoom, drag to pan, double-click to reset; click a neuron for its details.</p>',
        *drawings,
    ]
    if clusters is not None:
        data["clusters"] = _clusters(clusters)
        parts.append(
            '<h2>Clustermap of the graphs</h2><p class="caption">Rows: graphs in the order of their Ward clustering '
            "(cosine geometry) of bag-of-nodes vectors; columns: neurons; a cell is 1 where the graph holds the "
            'neuron.</p><div class="plot" id="dependency-clustermap"></div>'
        )
    if len(graphs) >= 2:
        occurrence = node_occurrence(list(graphs.values()))
        shared = occurrence[occurrence == len(graphs)]
        frequent = occurrence.sort_values(ascending=False, kind="stable").head(20)
        table = frequent.rename("graphs").reset_index()
        table.columns = ["neuron", "graphs holding it"]
        parts.append(
            f"<h2>Shared neurons</h2><p>In all {len(graphs)} graphs: "
            + (", ".join(f"<code>{escape(k)}</code>" for k in shared.index) or "none")
            + ".</p>"
            + html_table(table, caption="The neurons in most graphs")
        )
    return View("dependency", "Dependency graphs", "".join(parts), data)


def _caption(graph: LayeredGraph) -> str:
    attrs = graph.attrs
    n, m = len(graph.nodes), len(graph.edges)
    bits = [f"{n} neuron{'s' * (n != 1)}, {m} edge{'s' * (m != 1)}"]
    for name in ("n_inputs", "rule", "branching", "fence", "sign"):
        if name in attrs:
            bits.append(f"{name.replace('n_inputs', 'inputs')} {attrs[name]}")
    if attrs.get("stopped_at"):
        bits.append(f"stopped at {attrs['stopped_at']}: {attrs.get('stop_reason', '')}")
    return "; ".join(bits)
