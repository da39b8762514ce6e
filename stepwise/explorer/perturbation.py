"""The perturbation view: per input, the sortable table of the six metrics and their ranks (a row per neuron), the
agreement of the two rankings per level, and the input with its top neurons' deconvnet patches."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

import pandas as pd

from .page import View
from .tables import html_table, select

__all__ = ["perturbation_view"]

_METRICS = ("correlation", "precision", "activation_sum", "activation_variance", "weight_sum", "weight_variance")


def perturbation_view(
    table: pd.DataFrame,
    agreement: pd.DataFrame | None = None,
    images: Mapping[int, str] | None = None,
    figure: str | None = None,
) -> View:
    """The view of the rankings of some inputs.

    Parameters
    ----------
    table : pandas.DataFrame
        As ``perturbation.csv``: columns ``input``, ``target``, ``level``, ``neuron``, the six metrics and their
        ``{metric}_rank``.
    agreement : pandas.DataFrame, optional
        As ``agreement.csv``: ``input``, ``target``, ``level``, ``jaccard``.
    images : mapping of int to str, optional
        Per input a ``data:`` URI of its patches figure.
    figure : str, optional
        One ``data:`` URI of the patches of every input (a results folder's ``patches.png``).

    Returns
    -------
    View
    """
    missing = [c for c in ("input", "target", "level", "neuron") if c not in table.columns]
    if missing:
        raise ValueError(f"The perturbation table lacks the columns {missing}; it needs input, target, level, neuron.")
    inputs = list(dict.fromkeys(int(i) for i in table["input"]))
    columns = ["level", "neuron"] + [c for m in _METRICS for c in (m, f"{m}_rank") if c in table.columns]
    data: dict = {"inputs": {}, "columns": columns}
    blocks = []
    for n, number in enumerate(inputs):
        rows = table[table["input"] == number]
        target = rows["target"].iloc[0]
        shown = rows[columns].reset_index(drop=True)
        keys = [f"{level}:{int(neuron)}" for level, neuron in zip(shown["level"], shown["neuron"])]
        data["inputs"][str(number)] = {"target": target, "rows": dict(zip(keys, shown.to_dict("records")))}
        parts = [f"<p>Input {number}, target class {escape(str(target))}.</p>"]
        if agreement is not None:
            agree = agreement[agreement["input"] == number][["level", "jaccard"]]
            parts.append(
                html_table(
                    agree,
                    caption="Agreement per level: Jaccard of the top neurons by correlation and by precision",
                    css="compact",
                )  # fmt: skip
            )
        if images and number in images:
            parts.append(f'<img class="figure" alt="patches of input {number}" src="{images[number]}">')
        parts.append(html_table(shown, keys=keys, caption="Every neuron's metrics and ranks (click a header to sort)"))
        blocks.append(
            f'<div class="choice" data-choice="perturbation" data-value="{number}"{" hidden" if n else ""}>'
            + "".join(parts)
            + "</div>"
        )
    head = [select("perturbation", [(str(i), f"input {i}") for i in inputs], "Input")]
    if figure is not None:
        head.append(
            '<details class="figure-box"><summary>The deconvnet patches of every input\'s top neurons</summary>'
            f'<img class="figure" alt="patches of the top neurons" src="{figure}"></details>'
        )
    return View("perturbation", "Perturbation", "".join(head + blocks), data)
