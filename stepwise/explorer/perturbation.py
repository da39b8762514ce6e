"""The perturbation view: per input, the sortable table of the six metrics and their ranks (a row per neuron), the
agreement of the two rankings per level, and the input with its top neurons' deconvnet patches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

import pandas as pd

from .images import Box, Image
from .page import View
from .tables import html_table, select

__all__ = ["perturbation_view"]

_METRICS = ("correlation", "precision", "activation_sum", "activation_variance", "weight_sum", "weight_variance")


def _colours(levels: Sequence[str]) -> dict[str, str]:
    """One colour per level, red (bottom) to violet (top), as :func:`perturb.plot_patches` draws them."""
    import matplotlib
    from matplotlib.colors import to_hex

    ramp = matplotlib.colormaps["rainbow_r"]
    return {name: to_hex(ramp(i / max(len(levels) - 1, 1))) for i, name in enumerate(levels)}


def _overlay(number: int, image: Image, boxes: Sequence[tuple[str, int, Box]]) -> str:
    """The input, its top neurons' patches boxed on it (each box a ``data-key`` of its neuron), and a legend."""
    uri, (height, width) = image
    levels = list(dict.fromkeys(level for level, _, _ in boxes))
    colours = _colours(levels)
    spans = []
    by_area = sorted(boxes, key=lambda b: -(b[2][2] - b[2][0]) * (b[2][3] - b[2][1]))  # the smaller on top
    for level, neuron, (top, left, bottom, right) in by_area:
        style = (
            f"top:{100 * top / height:.2f}%;left:{100 * left / width:.2f}%;height:{100 * (bottom - top) / height:.2f}%;"
            f"width:{100 * (right - left) / width:.2f}%;border-color:{colours[level]}"
        )
        key = escape(f"{level}:{neuron}")
        spans.append(f'<span class="box" data-key="{key}" title="{key}" style="{style}"></span>')
    legend = "".join(
        f'<span class="swatch" style="background:{c}"></span>{escape(level)} ' for level, c in colours.items()
    )
    return (
        f'<div class="overlay-box"><div class="overlay"><img alt="input {number}" src="{uri}">{"".join(spans)}</div>'
        f'<p class="legend">Deconvnet patches of the top neurons by correlation: {legend}</p></div>'
    )


def perturbation_view(
    table: pd.DataFrame,
    agreement: pd.DataFrame | None = None,
    images: Mapping[int, Image] | None = None,
    patches: Mapping[int, Sequence[tuple[str, int, Box]]] | None = None,
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
    images : mapping of int to (str, (int, int)), optional
        Per input its thumbnail's ``data:`` URI and its own height and width in pixels.
    patches : mapping of int to list of (str, int, (int, int, int, int)), optional
        Per input the patches of its top neurons: level, neuron and box (top, left, bottom, right in input
        pixels), drawn on its thumbnail.
    figure : str, optional
        One ``data:`` URI of the patches of every input (a results folder's ``patches.png``), shown when the
        inputs' thumbnails are missing.

    Returns
    -------
    View
    """
    missing = [c for c in ("input", "target", "level", "neuron") if c not in table.columns]
    if missing:
        raise ValueError(f"The perturbation table lacks the columns {missing}; it needs input, target, level, neuron.")
    images, patches = images or {}, patches or {}
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
        if number in images:
            parts.append(_overlay(number, images[number], patches.get(number, [])))
        if agreement is not None:
            agree = agreement[agreement["input"] == number][["level", "jaccard"]]
            parts.append(
                html_table(
                    agree,
                    caption="Agreement per level: Jaccard of the top neurons by correlation and by precision",
                    css="compact",
                )  # fmt: skip
            )
        parts.append(html_table(shown, keys=keys, caption="Every neuron's metrics and ranks (click a header to sort)"))
        blocks.append(
            f'<div class="choice" data-choice="perturbation" data-value="{number}"{" hidden" if n else ""}>'
            + "".join(parts)
            + "</div>"
        )
    head = [select("perturbation", [(str(i), f"input {i}") for i in inputs], "Input")]
    if figure is not None and not images:
        head.append(
            '<details class="figure-box"><summary>The deconvnet patches of every input\'s top neurons</summary>'
            f'<img class="figure" alt="patches of the top neurons" src="{figure}"></details>'
        )
    return View("perturbation", "Perturbation", "".join(head + blocks), data)
