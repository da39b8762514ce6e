"""The page itself: one HTML file with everything inline, written atomically.

Layout of the file: the styles in the head; a tab bar with one ``[data-tab]`` button per view; the views' markup;
the ``#details`` panel that shows what was clicked; the data of every view in
``<script type="application/json" id="stepwise-data">`` (``</`` escaped, so no string in it can close the block);
plotly's JavaScript, inlined once as ``<script type="text/plain" id="plotly-js">``, which the page runs when it
first draws a chart (after the page has loaded: the graphs and tables show at once, the charts a moment later);
then the page's own script, which reads the data block.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass, field
from html import escape
from importlib import resources
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from stepwise._version import __version__
from stepwise.core.io import write_file
from stepwise.graphs.layered import LayeredGraph

_LARGE = 15 * 2**20  # bytes: a page above this gets a warning

__all__ = ["View", "data_block", "graph_data", "jsonable", "render_page", "write_page"]


@dataclass
class View:
    """One tab of the page.

    Attributes
    ----------
    name : str
        The ``data-tab`` value and the key of the view's data.
    title : str
        The tab's label.
    html : str
        The view's markup (inside its panel).
    data : dict
        What the page's script needs, JSON-ready (see :func:`jsonable`).
    """

    name: str
    title: str
    html: str
    data: dict[str, Any] = field(default_factory=dict)


def graph_data(graph: LayeredGraph, label: str) -> dict[str, Any]:
    """A layered graph as the page's data holds it.

    Parameters
    ----------
    graph : LayeredGraph
        Of any kind.
    label : str
        What the page calls it (``"class 3"``).

    Returns
    -------
    dict
        ``label``, ``kind``, ``attrs``, ``levels``, ``nodes`` (key to attributes) and ``edges`` (``source``,
        ``target`` and the attributes), every attribute exactly as in the graph's files.
    """
    return {
        "label": label,
        "kind": graph.kind,
        "attrs": dict(graph.attrs),
        "levels": graph.levels,
        "nodes": {key: dict(data) for key, data in graph.nodes(data=True)},
        "edges": [{"source": u, "target": v, **data} for u, v, data in graph.edges(data=True)],
    }


def jsonable(value: Any) -> Any:
    """A value as JSON can hold it.

    Parameters
    ----------
    value : object
        Nested dicts, lists and tuples of numbers, strings, None, numpy scalars and arrays, pandas' NA.

    Returns
    -------
    object
        Numpy scalars and arrays as Python numbers and lists, NaN, infinities and NA as None (JSON has none of
        them), tuples as lists, mapping keys as str; floats keep every digit (``json`` writes their repr).
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    if value is pd.NA:
        return None
    if hasattr(value, "item"):  # a 0-d array
        return jsonable(value.item())
    return str(value)


def _asset(name: str) -> str:
    return resources.files("stepwise.explorer").joinpath("assets", name).read_text(encoding="utf-8")


def data_block(data: dict[str, Any]) -> str:
    """The JSON of the page's data, safe inside a ``<script>`` element.

    Parameters
    ----------
    data : dict
        JSON-ready after :func:`jsonable`.

    Returns
    -------
    str
        Every ``</`` written ``<\\/`` and every ``<!--`` as ``<\\u0021--`` (the same strings to a JSON parser),
        so that no value can end the element or open a comment.
    """
    text = json.dumps(jsonable(data), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\u0021--")


def render_page(views: list[View], title: str) -> str:
    """The whole HTML page of some views.

    Parameters
    ----------
    views : list of View
        At least one; the first tab is shown when the page opens.
    title : str
        The page's title and heading.

    Returns
    -------
    str
    """
    from plotly.offline import get_plotlyjs

    plotly = get_plotlyjs()
    if re.search(r"</script|<!--", plotly, re.IGNORECASE):  # it sits in a script element, as text
        raise RuntimeError("This plotly's JavaScript holds '</script' or '<!--' and cannot be inlined as it is.")
    tabs = "".join(
        f'<button type="button" class="tab{" active" if i == 0 else ""}" data-tab="{escape(v.name)}">'
        f"{escape(v.title)}</button>"
        for i, v in enumerate(views)
    )
    panels = "".join(
        f'<section class="panel" data-panel="{escape(v.name)}"{"" if i == 0 else " hidden"}>{v.html}</section>'
        for i, v in enumerate(views)
    )
    data = {"title": title, "version": __version__, "views": [v.name for v in views]}
    data.update({v.name: v.data for v in views})
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_asset('explorer.css')}</style>"
        "</head><body>"
        f'<header><h1>{escape(title)}</h1><span class="version">stepwise {escape(__version__)}</span></header>'
        f'<nav class="tabs">{tabs}</nav><div class="layout"><main>{panels}</main>'
        '<aside id="details" aria-live="polite"><p class="hint">Click a neuron, a word, a cluster or a table row '
        "to see its details here.</p></aside></div>"
        f'<script type="application/json" id="stepwise-data">{data_block(data)}</script>'
        f'<script type="text/plain" id="plotly-js">{plotly}</script>'
        f"<script>{_asset('explorer.js')}</script></body></html>\n"
    )


def write_page(path: str | PathLike, views: list[View], title: str) -> None:
    """Write the page of some views, atomically: an existing file is replaced whole, or kept whole.

    Parameters
    ----------
    path : str or path-like
    views : list of View
    title : str

    Warns
    -----
    UserWarning
        When the page is larger than 15 MiB (it still opens; a mail may refuse it): the largest view is named.
    """
    page = render_page(views, title)
    size = len(page.encode("utf-8"))
    if size > _LARGE:
        largest = max(views, key=lambda v: len(v.html) + len(data_block(v.data)))
        warnings.warn(
            f"The page {path} is {size / 2**20:.0f} MiB; most of it is the {largest.title} view. Show fewer "
            "classes, levels or inputs to make it smaller.",
            UserWarning,
            stacklevel=2,
        )
    write_file(path, page)
