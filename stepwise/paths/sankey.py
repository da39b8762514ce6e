"""Sankey diagrams of decision paths: clusters as nodes (one column per level, the class last), links as flows
whose width is the number of inputs, coloured by class.

:func:`write_sankey_html` writes an interactive page with plotly's ``go.Sankey``, its JavaScript inlined so that
the page works offline; :func:`sankey_figure` draws a static matplotlib figure for reports. plotly and matplotlib
are imported only inside these functions.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stepwise.core.io import write_file

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Layout", "check_classes", "class_colours", "layout", "sankey_figure", "sankey_plotly", "write_sankey_html"]

_TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_GAP = 0.25  # share of a column's height left between its nodes
_NODE_WIDTH = 0.06  # in units of the distance between two columns


def check_classes(classes: object, known: np.ndarray) -> list[int] | None:
    """``classes`` as a list of known classes (None: every class), or raise naming the known ones."""
    if classes is None:
        return None
    if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
        classes = [classes]
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence):
        raise TypeError(f"classes must be a list of int classes (or None for all); got {classes!r}.")
    values = []
    for c in classes:
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)):
            raise TypeError(f"classes must be a list of int classes; it holds {c!r}.")
        if int(c) not in set(known.tolist()):
            raise ValueError(f"No input has class {c}: the classes are {known.tolist()}. Choose classes among them.")
        values.append(int(c))
    if not values:
        raise ValueError("classes is empty: name at least one class, or pass None for all.")
    return values


def class_colours(classes: Sequence[int]) -> dict[int, str]:
    """A colour (``#rrggbb``) per class: matplotlib's tab10 for classes 0..9, evenly spread hues beyond."""
    colours = {}
    for c in classes:
        if 0 <= c < len(_TAB10):
            colours[c] = _TAB10[c]
        else:
            r, g, b = colorsys.hsv_to_rgb((c * 0.618033988749895) % 1.0, 0.65, 0.85)
            colours[c] = f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"
    return colours


@dataclass
class Layout:
    """Where the nodes and links of a Sankey diagram go.

    Attributes
    ----------
    nodes : pandas.DataFrame
        One row per node: ``column`` (position, 0 = bottom level), ``name`` (column name), ``cluster``, ``size``,
        ``y0``, ``y1`` (its vertical extent in [0, 1], 1 on top).
    links : pandas.DataFrame
        One row per (lower cluster, upper cluster, class) carrying inputs: ``column`` (of the lower end),
        ``source`` and ``target`` (rows of ``nodes``), ``cls``, ``count``, and the vertical extents ``s0``, ``s1``
        at the source and ``t0``, ``t1`` at the target.
    """

    nodes: pd.DataFrame
    links: pd.DataFrame


def layout(assignments: pd.DataFrame, columns: Sequence[str], classes: Sequence[int] | None) -> Layout:
    """Stack each column's clusters (by id, cluster 0 on top) with heights proportional to their size, and give
    every link its band at both ends (ordered by the other end, then by class, so that bands do not cross at a
    node). Links of classes outside ``classes`` are left out; the nodes keep their full size."""
    values = {name: assignments[name].to_numpy(np.int64) for name in columns}
    cls = values[columns[-1]]
    n = len(cls)
    rows = []
    for position, name in enumerate(columns):
        clusters, sizes = np.unique(values[name], return_counts=True)
        scale = (1.0 - _GAP) / n
        gap = _GAP / max(len(clusters) - 1, 1) if len(clusters) > 1 else 0.0
        top = 1.0 if len(clusters) > 1 else 1.0 - _GAP / 2
        for cluster, size in zip(clusters.tolist(), sizes.tolist()):
            rows.append(
                {
                    "column": position,
                    "name": name,
                    "cluster": cluster,
                    "size": size,
                    "y1": top,
                    "y0": top - size * scale,
                }
            )
            top -= size * scale + gap
    nodes = pd.DataFrame(rows)
    node_row = {(r.column, r.cluster): i for i, r in enumerate(nodes.itertuples())}
    keep = np.ones(n, dtype=bool) if classes is None else np.isin(cls, classes)
    links = []
    width_c = int(cls.max()) + 1
    for position, (low, up) in enumerate(zip(columns[:-1], columns[1:])):
        a, b, c = values[low][keep], values[up][keep], cls[keep]
        width_b = int(values[up].max()) + 1
        codes, counts = np.unique((a * width_b + b) * width_c + c, return_counts=True)
        for code, count in zip(codes.tolist(), counts.tolist()):
            pair, k = divmod(code, width_c)
            src, dst = divmod(pair, width_b)
            links.append(
                {
                    "column": position,
                    "source": node_row[(position, src)],
                    "target": node_row[(position + 1, dst)],
                    "src": src,
                    "dst": dst,
                    "cls": k,
                    "count": count,
                }
            )
    frame = pd.DataFrame(links, columns=["column", "source", "target", "src", "dst", "cls", "count"])
    scale = (1.0 - _GAP) / n
    frame["s0"] = frame["s1"] = frame["t0"] = frame["t1"] = 0.0
    if len(frame):
        # bands leave a node top-down in the order of their target (then class), and enter one likewise
        out_order = frame.sort_values(["source", "dst", "cls"], kind="stable")
        start = out_order.groupby("source")["count"].cumsum() - out_order["count"]
        frame.loc[out_order.index, "s1"] = nodes["y1"].to_numpy()[out_order["source"]] - start * scale
        in_order = frame.sort_values(["target", "src", "cls"], kind="stable")
        start = in_order.groupby("target")["count"].cumsum() - in_order["count"]
        frame.loc[in_order.index, "t1"] = nodes["y1"].to_numpy()[in_order["target"]] - start * scale
        frame["s0"] = frame["s1"] - frame["count"] * scale
        frame["t0"] = frame["t1"] - frame["count"] * scale
    return Layout(nodes, frame.drop(columns=["src", "dst"]))


def _label(name: str, cluster: int, is_class: bool) -> str:
    return f"class {cluster}" if is_class else f"{name}:{cluster}"


def write_sankey_html(
    assignments: pd.DataFrame,
    columns: Sequence[str],
    classes: Sequence[int] | None,
    path: str | PathLike,
    *,
    title: str = "Decision paths",
) -> None:
    """Write an interactive Sankey page (plotly ``go.Sankey``, its JavaScript inlined: no network needed).

    Parameters
    ----------
    assignments : pandas.DataFrame of shape (N, n_columns)
    columns : sequence of str
        Bottom to top, the class last.
    classes : sequence of int, optional
        Only the flows of these classes.
    path : str or path-like
    title : str
    """
    figure = sankey_plotly(assignments, columns, classes, title=title)
    html = figure.to_html(include_plotlyjs=True, full_html=True, div_id="stepwise-sankey")  # no random id
    write_file(path, html)


def sankey_plotly(
    assignments: pd.DataFrame, columns: Sequence[str], classes: Sequence[int] | None, *, title: str = "Decision paths"
) -> Any:
    """The interactive Sankey diagram: a plotly figure of a ``go.Sankey`` and a legend of the classes shown.

    Parameters
    ----------
    assignments : pandas.DataFrame of shape (N, n_columns)
    columns : sequence of str
        Bottom to top, the class last.
    classes : sequence of int, optional
        Only the flows of these classes.
    title : str

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go

    plan = layout(assignments, columns, classes)
    nodes, links = plan.nodes, plan.links
    last = len(columns) - 1
    span = max(last, 1)
    all_classes = sorted(set(assignments[columns[-1]].tolist()))
    colours = class_colours(all_classes)
    labels = [_label(r.name, r.cluster, r.column == last) for r in nodes.itertuples()]
    node_colours = [colours[r.cluster] if r.column == last else "#9e9e9e" for r in nodes.itertuples()]
    link_colours = [_rgba(colours[c], 0.45) for c in links["cls"]]
    sankey = go.Sankey(
        arrangement="snap",
        node={
            "label": labels,
            "color": node_colours,
            "x": [0.001 + 0.998 * column / span for column in nodes["column"]],
            "y": [min(max(1.0 - (y0 + y1) / 2, 0.001), 0.999) for y0, y1 in zip(nodes["y0"], nodes["y1"])],
            "pad": 6,
            "customdata": nodes["size"].tolist(),
            "hovertemplate": "%{label}<br>%{customdata} inputs<extra></extra>",
        },
        link={
            "source": links["source"].tolist(),
            "target": links["target"].tolist(),
            "value": links["count"].tolist(),
            "color": link_colours,
            "customdata": [f"class {c}" for c in links["cls"]],
            "hovertemplate": "%{source.label} → %{target.label}<br>%{customdata}: %{value} inputs<extra></extra>",
        },
    )
    shown = all_classes if classes is None else list(classes)
    legend = [
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            marker={"size": 12, "color": colours[c], "symbol": "square"},
            name=f"class {c}",
            showlegend=True,
        )
        for c in shown
    ]
    figure = go.Figure([sankey, *legend])
    figure.update_layout(
        title={"text": title + "<br><sub>columns bottom to top: " + " → ".join(columns) + "</sub>"},
        xaxis={"visible": False},
        yaxis={"visible": False},
        plot_bgcolor="white",
        legend={"title": {"text": "flows of"}},
        height=max(500, 22 * int(nodes.groupby("column").size().max())),
    )
    return figure


def _rgba(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def sankey_figure(
    assignments: pd.DataFrame, columns: Sequence[str], classes: Sequence[int] | None, *, title: str = "Decision paths"
) -> Figure:
    """Draw the Sankey diagram with matplotlib: grey cluster bars per column, bands coloured by class.

    Parameters
    ----------
    assignments : pandas.DataFrame of shape (N, n_columns)
    columns : sequence of str
        Bottom to top, the class last.
    classes : sequence of int, optional
        Only the flows of these classes.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    plan = layout(assignments, columns, classes)
    nodes, links = plan.nodes, plan.links
    last = len(columns) - 1
    all_classes = sorted(set(assignments[columns[-1]].tolist()))
    colours = class_colours(all_classes)
    tallest = int(nodes.groupby("column").size().max())
    figure, ax = plt.subplots(figsize=(max(6.0, 2.2 * len(columns)), max(4.5, 0.22 * tallest)))
    w = _NODE_WIDTH
    t = np.linspace(0.0, 1.0, 40)
    ease = t * t * (3 - 2 * t)  # smoothstep: bands leave and enter the nodes horizontally
    for link in links.itertuples():
        x = link.column + w / 2 + t * (1 - w)
        low = link.s0 + (link.t0 - link.s0) * ease
        high = link.s1 + (link.t1 - link.s1) * ease
        ax.fill_between(x, low, high, color=colours[link.cls], alpha=0.45, linewidth=0)
    label_size = 7 if tallest <= 30 else 5
    for node in nodes.itertuples():
        colour = colours[node.cluster] if node.column == last else "#606060"
        ax.add_patch(Rectangle((node.column - w / 2, node.y0), w, node.y1 - node.y0, color=colour, linewidth=0))
        ax.text(
            node.column + w / 2 + 0.01,
            (node.y0 + node.y1) / 2,
            str(node.cluster),
            fontsize=label_size,
            va="center",
            ha="left",
        )
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels(columns, rotation=30 if len(columns) > 6 else 0, ha="right" if len(columns) > 6 else "center")
    ax.set_yticks([])
    ax.set_xlim(-0.3, last + 0.4)
    ax.set_ylim(-0.02, 1.02)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    shown = all_classes if classes is None else list(classes)
    ax.legend(
        handles=[Patch(color=colours[c], label=f"class {c}") for c in shown],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
        title="flows of",
        frameon=False,
    )
    ax.set_title(title)
    figure.tight_layout()
    return figure
