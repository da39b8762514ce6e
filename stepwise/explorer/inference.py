"""The inference-graph view: pick a class, its graph of visual words level by level; clicking a word shows its
size and score, its representative patches (the most typical validation columns, their receptive fields boxed on
the input) and its edges with their frequencies and log ratios."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from stepwise.graphs.inference import InferenceGraph

from .images import Box, Image
from .page import View, graph_data
from .svg import graph_svg
from .tables import select

__all__ = ["inference_view"]


def inference_view(
    graphs: Mapping[str, InferenceGraph],
    representatives: Mapping[str, Mapping[str, Sequence[tuple[int, Box | None, int | None]]]] | None = None,
    images: Mapping[int, Image] | None = None,
    texts: Mapping[int, Sequence[str]] | None = None,
) -> View:
    """The view of some inference graphs.

    Parameters
    ----------
    graphs : mapping of str to InferenceGraph
        Label (``"class 3"``) to graph.
    representatives : mapping of str to mapping of str to list of (int, box, token), optional
        Per graph label, per word key ``"level:word"``, its representatives best first: the validation input's
        number, the box of the column's receptive field (top, left, bottom, right in input pixels; None for
        inputs that are not images) and the column's token on a token level (else None).
    images : mapping of int to (str, (int, int)), optional
        Per input number its thumbnail and its own height and width.
    texts : mapping of int to list of str or None, optional
        Per input number of a sentence its tokens by position (``None`` for padding), shown with the
        representative token marked.

    Returns
    -------
    View
    """
    ids = {label: f"inference-{i}" for i, label in enumerate(graphs)}
    representatives = representatives or {}
    used = set()
    data: dict = {"graphs": {}, "representatives": {}, "images": {}, "texts": {}}
    drawings = []
    for label, graph in graphs.items():
        gid = ids[label]
        data["graphs"][gid] = graph_data(graph, label)
        reps = {key: [[int(i), None if box is None else list(box), None if token is None else int(token)]
                      for i, box, token in rows]
                for key, rows in representatives.get(label, {}).items()}  # fmt: skip
        data["representatives"][gid] = reps
        used.update(row[0] for rows in reps.values() for row in rows)
        caption = (
            f"{len(graph.nodes)} words over {graph.attrs.get('n_inputs', '?')} inputs; edges: green when the log2 "
            "ratio of the transition to its frequency elsewhere exceeds 1, grey when in (0, 1]"
        )
        drawings.append(
            f'<div class="choice" data-choice="inference" data-value="{gid}"{" hidden" if drawings else ""}>'
            f'<p class="caption">{escape(caption)}</p><div class="zoomable">'
            f"{graph_svg(graph, gid, colour='log_ratio')}</div></div>"
        )
    for number in sorted(used):
        if images and number in images:
            uri, (height, width) = images[number]
            data["images"][str(number)] = {"src": uri, "height": height, "width": width}
        if texts and number in texts:
            data["texts"][str(number)] = [None if token is None else str(token) for token in texts[number]]
    head = select("inference", [(ids[label], label) for label in graphs], "Graph")
    hint = '<p class="hint">Click a word for its representative patches and the log ratios of its edges.</p>'
    return View("inference", "Inference graphs", head + hint + "".join(drawings), data)
