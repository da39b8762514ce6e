"""Figures of inference graphs: the graph with each word shown by its most typical patches (paper 001, Fig. 5), and
the heat maps of where a lower word sits inside its upper word's receptive field. matplotlib is imported here only."""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from stepwise.graphs.inference import InferenceGraph

    from .inference_graphs import InferenceGraphs

__all__ = ["field_heatmap", "plot_field_heatmaps", "plot_inference_graph"]

_WHOLE = 0.5  # a field covering at least this share of the image is drawn as the image with a box
_SMALL = 64  # images this small are always drawn whole, the field boxed: a crop of a few pixels says little


def _image(tensor: torch.Tensor) -> np.ndarray:
    """(C, H, W) as an (H, W, 3) colour image (3 channels) or an (H, W) grey one (the channels' mean), in [0, 1]."""
    x = tensor.detach().to("cpu", torch.float64).numpy()
    if x.shape[0] != 3:
        x = x.mean(0, keepdims=True)
    low, high = x.min(), x.max()
    x = (x - low) / (high - low) if high > low else np.zeros_like(x)
    return x[0] if x.shape[0] == 1 else np.moveaxis(x[:3], 0, -1)


def _patch(ax: Axes, ig: InferenceGraphs, rep: Any, level: str) -> None:
    from matplotlib.patches import Rectangle

    ax.set_xticks([])
    ax.set_yticks([])
    validation = ig.validation_inputs_
    if not isinstance(validation, torch.Tensor):  # a sentence: its number, the token and its id
        ids = validation.primary[rep.input]
        token = f"\ntoken {rep.position}\nid {int(ids[rep.position])}" if level in ig.token_levels_ else ""
        ax.text(0.5, 0.5, f"sentence {rep.input}{token}", ha="center", va="center", fontsize=6)
        return
    image = _image(validation[rep.input])
    if rep.box is None:
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        return
    top, left, bottom, right = rep.box
    h, w = image.shape[:2]
    if max(h, w) <= _SMALL or (bottom - top) * (right - left) >= _WHOLE * h * w:
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, color="red", lw=1.2))
    else:
        ax.imshow(image[top:bottom, left:right], cmap="gray", vmin=0, vmax=1)


def plot_inference_graph(
    ig: InferenceGraphs, graph: InferenceGraph, path: str | PathLike | None = None, *, k: int = 4
) -> Figure:
    """Draw an inference graph level by level, top level on top, each word as its ``k`` most typical patches.

    Patches come from the validation inputs of the fit: the whole image with the column's receptive field boxed in
    red (images of at most 64 pixels a side, or fields covering half the image or more), else the field's crop; for
    sentences, the sentence's number, the token's position and its id. Edges are drawn by their
    log ratio (paper Fig. 5): hidden when <= 0, grey when in (0, 1], green and thicker when > 1, labelled with the
    frequency of the lower word in the upper word's fields and the log ratio.

    Parameters
    ----------
    ig : InferenceGraphs
        Fitted; the graph's words are its words.
    graph : InferenceGraph
    path : str or path-like, optional
        Where to save the figure (atomically).
    k : int, default=4

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    levels = [name for name in graph.levels[::-1] if graph.words(name)]
    widest = max(len(graph.words(name)) for name in levels)
    cell_w, cell_h = 0.9 * k + 0.6, 1.55
    fig = plt.figure(figsize=(max(widest * cell_w, 6.0), len(levels) * cell_h * 1.35 + 0.6))
    canvas = fig.add_axes((0, 0, 1, 1))
    canvas.set_xlim(0, 1)
    canvas.set_ylim(0, 1)
    canvas.axis("off")
    rows = len(levels)
    centres: dict[str, tuple[float, float, float]] = {}  # node -> (x centre, top y, bottom y) in figure units
    for r, name in enumerate(levels):
        words = graph.words(name)
        y_top = 1 - (r + 0.25) / rows
        height = 0.55 / rows
        for c, word in enumerate(words):
            width = 0.9 / max(widest, 1)
            x0 = 0.05 + (c + (widest - len(words)) / 2) * width
            node = graph.nodes[f"{name}:{word}"]
            reps = ig.representatives(name, word, k=k)
            for j, rep in enumerate(reps):
                pw = width * 0.92 / k
                ax = fig.add_axes((x0 + j * pw, y_top - height, pw * 0.95, height * 0.8))
                _patch(ax, ig, rep, name)
            title = f"{name}:{word}\nsize {node['size']}, score {node['score']:.3g}"
            canvas.text(x0 + width * 0.46, y_top - height * 0.15, title, ha="center", va="bottom", fontsize=8)
            centres[f"{name}:{word}"] = (x0 + width * 0.46, y_top + height * 0.35 / 0.55 * 0.25, y_top - height)
    slots = {
        f"{name}:{word}": (i, len(graph.words(name))) for name in levels for i, word in enumerate(graph.words(name))
    }
    for u, v, data in graph.edges(data=True):
        if data["log_ratio"] <= 0 or u not in centres or v not in centres:
            continue
        strong = data["log_ratio"] > 1
        start = (centres[u][0], centres[u][2] - 0.005)
        end = (centres[v][0], centres[v][1] + 0.045 / rows)
        canvas.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "-|>", "color": "green" if strong else
                        "0.55", "lw": 2.0 if strong else 0.9, "shrinkA": 0, "shrinkB": 0})  # fmt: skip
        (i, n), (j, m) = slots[v], slots[u]
        share = 0.2 + 0.6 * (j * n + i + 0.5) / (m * n)  # each arrow of a band labelled at its own height
        mid = (start[0] + share * (end[0] - start[0]), start[1] + share * (end[1] - start[1]))
        canvas.text(*mid, f"{data['frequency']:.2f} | {data['log_ratio']:.2f}", fontsize=7, ha="center",
                    color="darkgreen" if strong else "0.3", bbox={"fc": "white", "ec": "none", "pad": 0.5})  # fmt: skip
    scope = graph.attrs.get("scope", "class")
    canvas.text(0.5, 0.995, f"Inference graph of {scope} {graph.target} ({graph.n_inputs} inputs); arrows: frequency "
                "| log2 ratio, green > 1", ha="center", va="top", fontsize=9)  # fmt: skip
    if path is not None:
        from stepwise.core.io import save_figure

        save_figure(fig, path)
    return fig


def field_heatmap(ig: InferenceGraphs, upper: str, s: int, lower: str, t: int) -> np.ndarray:
    """How often lower word ``t`` sits at each offset of upper word ``s``'s receptive field (validation inputs).

    Only upper positions whose field has the full size (not clipped at a border) count, so that offsets align.

    Returns
    -------
    ndarray of shape (field height, field width), float64
        The share of those fields with word ``t`` at each offset (0 everywhere when ``s`` never occurs).
    """
    from .fields import field_boxes

    low = ig._level(lower)
    field = ig.receptive_field(upper, lower)
    spatial = low.spatial if len(low.spatial) == 2 else (1, field.shape[1])  # tokens: those of the validation
    boxes = field_boxes(field, spatial)
    heights, widths = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    full = (heights == heights.max()) & (widths == widths.max())
    lower_words = ig.validation_words_[lower].reshape(-1, *spatial).numpy()
    upper_words = ig.validation_words_[upper].numpy()
    total = np.zeros((int(heights.max()), int(widths.max())))
    count = 0
    for p in np.flatnonzero(full):
        chosen = upper_words[:, p] == s
        if not chosen.any():
            continue
        top, left, bottom, right = boxes[p]
        total += (lower_words[chosen, top:bottom, left:right] == t).sum(0)
        count += int(chosen.sum())
    return total / count if count else total


def plot_field_heatmaps(
    ig: InferenceGraphs, graph: InferenceGraph, path: str | PathLike | None = None, *, most: int = 12
) -> Figure:
    """One heat map per edge of positive log ratio (at most ``most``, by score): where the lower word sits inside
    the upper word's receptive field.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    dense = {name for name in graph.levels if ig._level(name).dense}  # a field of one position shows nothing
    edges = sorted(
        ((d["score"], u, v) for u, v, d in graph.edges(data=True) if d["log_ratio"] > 0 and graph.nodes[v]["level"]
         not in dense),
        reverse=True,
    )  # fmt: skip
    edges = [(u, v) for _, u, v in edges[:most]]
    columns = min(4, max(len(edges), 1))
    rows = max(1, -(-len(edges) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (u, v) in zip(axes.flat, edges):
        up, down = graph.nodes[u], graph.nodes[v]
        heat = field_heatmap(ig, up["level"], up["index"], down["level"], down["index"])
        ax.axis("on")
        image = ax.imshow(heat, cmap="viridis", vmin=0)
        ax.set_title(f"{v}\nin the field of {u}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=7)
    if not edges:
        axes.flat[0].text(0.5, 0.5, "no edge with a positive log ratio", ha="center", va="center")
    fig.suptitle("Share of fields with the lower word at each offset", fontsize=10)
    if path is not None:
        from stepwise.core.io import save_figure

        save_figure(fig, path)
    return fig
