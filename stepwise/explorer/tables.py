"""HTML tables of the page: sortable (the page's script sorts by a clicked header), a row per neuron, word or
cluster carrying its ``data-key`` when it stands for one."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from html import escape

import pandas as pd

__all__ = ["cell", "html_table", "select"]


def cell(value: object, digits: int = 4) -> str:
    """A table cell's text: floats to ``digits`` significant digits, missing values empty."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return f"{float(value):.{digits}g}"
    return escape(str(value))


def html_table(
    frame: pd.DataFrame,
    *,
    keys: Sequence[str] | None = None,
    caption: str | None = None,
    css: str = "sortable",
    attrs: str = "",
) -> str:
    """A DataFrame as an HTML table, its index left out.

    Parameters
    ----------
    frame : pandas.DataFrame
    keys : sequence of str, optional
        One ``data-key`` per row (``"level:index"``), which makes the row clickable.
    caption : str, optional
    css : str, default='sortable'
        The table's class; ``sortable`` tables sort by a clicked header.
    attrs : str
        More attributes of the ``<table>`` element, already escaped.

    Returns
    -------
    str
    """
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for i, values in enumerate(frame.itertuples(index=False, name=None)):
        key = f' data-key="{escape(keys[i])}" tabindex="0"' if keys is not None else ""
        rows.append(f"<tr{key}>" + "".join(f"<td>{cell(v)}</td>" for v in values) + "</tr>")
    title = f"<caption>{escape(caption)}</caption>" if caption else ""
    table = f'<table class="{css}"{attrs}>{title}<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    return f'<div class="scroll">{table}</div>'


def select(name: str, options: Sequence[tuple[str, str]], label: str) -> str:
    """A labelled ``<select>`` whose ``data-select`` names what it switches; options are (value, text) pairs."""
    items = "".join(f'<option value="{escape(v)}">{escape(t)}</option>' for v, t in options)
    return f'<label class="picker">{escape(label)} <select data-select="{escape(name)}" autocomplete="off">{items}</select></label>'
