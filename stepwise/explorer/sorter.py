"""The activation-sorter view: per level the layer summary (a row per neuron: its kind, the evidence, and its
class-stacked histogram in small); clicking a row opens the neuron view, the histogram with a bar per class and
the inputs of each bin, largest value first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

from stepwise.sorter.sorter import ActivationSorter
from stepwise.sorter.summary import class_colours

from .images import png_uri, thumbnail
from .page import View
from .tables import cell, select

__all__ = ["sorter_view"]

_PER_BIN = 12  # inputs listed per bin in the neuron view


def _hex(rgba: Sequence[float]) -> str:
    return "#" + "".join(f"{round(255 * v):02x}" for v in rgba[:3])


def _sparkline(counts: np.ndarray, colours: list[str]) -> str:
    """A neuron's histogram in small: one bar per bin, its height the bin's inputs, coloured by its main class."""
    totals = counts.sum(axis=1)
    top = max(int(totals.max()), 1)
    bars = []
    for b, total in enumerate(totals.tolist()):
        if total:
            h = 24 * total / top
            colour = colours[int(np.argmax(counts[b]))]
            bars.append(f'<rect x="{b * 4}" y="{24 - h:.1f}" width="3" height="{h:.1f}" fill="{colour}"/>')
    return f'<svg class="spark" width="{4 * len(totals)}" height="24" viewBox="0 0 {4 * len(totals)} 24">{"".join(bars)}</svg>'


def sorter_view(
    sorter: ActivationSorter,
    numbers: Sequence[int] | None = None,
    images: Mapping[int, str] | None = None,
    *,
    bins: int = 30,
) -> View:
    """The view of a fitted activation sorter.

    Parameters
    ----------
    sorter : ActivationSorter
        Fitted (or built with ``ActivationSorter.from_values``).
    numbers : sequence of int, optional
        The input number shown for each position the sorter's views give (default: the position itself).
    images : mapping of int to str, optional
        Per input number its thumbnail's ``data:`` URI; by default drawn from the inputs the sorter was fitted on,
        when it holds them.
    bins : int, default=30
        Bins per neuron (the thesis's m), as the layer summary and neuron view use them.

    Returns
    -------
    View
    """
    levels = list(sorter.levels_)
    classes = [int(c) for c in sorter.classes_]
    colours = [_hex(c) for c in class_colours(len(classes))]
    data: dict = {"classes": classes, "colours": colours, "levels": {}, "images": {}, "inputs": {}}
    blocks, shown, inputs = [], set(), None
    for n, level in enumerate(levels):
        summary = sorter.layer_summary(level, bins=bins)
        kinds = sorter.neuron_types(level)
        neurons, rows = {}, []
        for i, neuron in enumerate(summary.neurons.tolist()):
            view = sorter.neuron_view(level, neuron, bins=bins)
            inputs = view.inputs
            members = []
            for b in range(len(view.members)):
                top = view.members[b][:_PER_BIN]
                number = [int(numbers[m]) if numbers is not None else int(m) for m in top.tolist()]
                for j, member in enumerate(number):  # each input's label and prediction, once for the page
                    data["inputs"].setdefault(str(member), [int(view.labels[b][j]), int(view.predicted[b][j])])
                shown.update(number)
                members.append(number)
            kind = kinds.iloc[neuron]
            key = f"{level}:{neuron}"
            neurons[key] = {
                "neuron": neuron,
                "kind": kind["kind"],
                "evidence": kind["evidence"],
                "edges": summary.edges[i],
                "counts": summary.counts[i],
                "members": members,
                "sizes": view.counts,
            }
            rows.append(
                f'<tr data-key="{escape(key)}" tabindex="0"><td>{neuron}</td><td>{escape(str(kind["kind"]))}</td>'
                f"<td>{escape(str(kind['evidence']))}</td><td>{cell(kind['top_class'])}</td>"
                f"<td>{_sparkline(summary.counts[i], colours)}</td></tr>"
            )
        data["levels"][level] = neurons
        table = (
            '<table class="sortable summary"><caption>A row per neuron; its histogram in small (bars coloured by '
            "the main class of each bin); click a row for the neuron view</caption><thead><tr><th>neuron</th>"
            "<th>kind</th><th>evidence</th><th>top class</th><th>histogram</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
        )
        blocks.append(
            f'<div class="choice" data-choice="sorter" data-value="{escape(level)}"{" hidden" if n else ""}>'
            f"<p>{summary.n_inputs} inputs, {len(summary.neurons)} neurons, {bins} zero-aligned bins each.</p>"
            f"{table}</div>"
        )
    for number in sorted(shown):
        if images is not None and number in images:
            data["images"][str(number)] = images[number]
        elif images is None and inputs is not None:  # the inputs given to fit, which the views index
            data["images"][str(number)] = png_uri(thumbnail(inputs[number]))
    legend = "".join(
        f'<span class="swatch" style="background:{colour}"></span>{escape(str(c))} '
        for c, colour in zip(classes, colours)
    )
    head = select("sorter", [(level, level) for level in levels], "Level") + f'<p class="legend">Classes: {legend}</p>'
    return View("sorter", "Activation sorter", head + "".join(blocks), data)
