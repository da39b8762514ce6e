"""A layered graph as inline SVG: one row per level (top level on top, as :func:`stepwise.plot.plot_graph` draws
it), every node a ``<g class="node" data-key="level:index">`` the page's script makes clickable, edges as lines
whose width grows with their frequency. The page zooms and pans the drawing by its ``viewBox``."""

from __future__ import annotations

from html import escape

from stepwise.graphs.draw import edge_width, layered_layout
from stepwise.graphs.layered import LayeredGraph

__all__ = ["graph_svg"]

_SLOT = 46.0  # pixels between neighbouring nodes of a row
_ROW = 70.0  # pixels between rows
_LABELS = 120.0  # the column of level names on the left
_RADIUS = 14.0
_SIGN_CLASSES = {1: "excitatory", -1: "inhibitory"}


def graph_svg(graph: LayeredGraph, graph_id: str, *, colour: str = "sign") -> str:
    """The SVG of a layered graph, every node drawn (the page scrolls and zooms instead of leaving nodes out).

    Parameters
    ----------
    graph : LayeredGraph
        Of any kind.
    graph_id : str
        The ``data-graph`` attribute of the drawing; the page's data block holds the graph under the same id.
    colour : {'sign', 'log_ratio'}, default='sign'
        What colours an edge: its sign (dependency graphs) or its log ratio (inference graphs: > 1 strong).

    Returns
    -------
    str
        An ``<svg>`` element.
    """
    rows, positions, slots = layered_layout(graph, None)
    width = _LABELS + slots * _SLOT + 20
    height = max(len(rows), 1) * _ROW + 20

    def xy(key: str) -> tuple[float, float]:
        x, y = positions[key]
        return _LABELS + x * _SLOT, height - 10 - _ROW / 2 - y * _ROW

    parts = [
        f'<svg class="graph-drawing" data-graph="{escape(graph_id)}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" xmlns="http://www.w3.org/2000/svg" role="img">'
    ]
    for r, row in enumerate(rows):
        y = height - 10 - _ROW / 2 - (len(rows) - 1 - r) * _ROW
        parts.append(f'<text class="level-name" x="8" y="{y + 4:.1f}">{escape(row.level)}</text>')
        if row.note:
            parts.append(f'<text class="row-note" x="{_LABELS:.0f}" y="{y + 4:.1f}">{escape(row.note)}</text>')
    for u, v, data in graph.edges(data=True):
        if u not in positions or v not in positions:
            continue
        (x1, y1), (x2, y2) = xy(u), xy(v)
        if colour == "log_ratio":
            ratio = float(data.get("log_ratio", 0.0))
            kind = "strong" if ratio > 1 else ("weak" if ratio > 0 else "negative")
        else:
            kind = _SIGN_CLASSES.get(data.get("sign"), "plain")
        stroke = edge_width(float(data.get("frequency", 1.0))) * 1.6
        parts.append(
            f'<line class="edge {kind}" data-source="{escape(u)}" data-target="{escape(v)}" x1="{x1:.1f}" '
            f'y1="{y1 + _RADIUS:.1f}" x2="{x2:.1f}" y2="{y2 - _RADIUS:.1f}" stroke-width="{stroke:.2f}"/>'
        )
    for key in positions:
        x, y = xy(key)
        index = graph.nodes[key]["index"]
        parts.append(
            f'<g class="node" data-key="{escape(key)}" tabindex="0"><title>{escape(key)}</title>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{_RADIUS:.0f}"/>'
            f'<text x="{x:.1f}" y="{y + 4:.1f}">{index}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
