"""The layer summary (the thesis's Layer Summary mode): per neuron, class counts in bins aligned on zero, and the
figure of stacked class percentages, one row per neuron, every row aligned on the zero line.

matplotlib is imported by :meth:`LayerSummary.plot` only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from stepwise.core.validation import check_int

from .bins import n_negative_bins, width_classes
from .kinds import KINDS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ORDERS", "PER_PAGE", "LayerSummary", "class_colours"]

#: How the rows of the figure can be ordered (or pass a sequence of neuron indices).
ORDERS = ("index", "kind", "class")
#: Rows per page of the figure.
PER_PAGE = 64
_BAR_WIDTHS = {1: 0.3, 2: 0.6, 3: 0.9}  # fraction of a cell per width class: white space stays between cells
_ROW = 0.86  # fraction of a row's height the stacked bars use


def class_colours(n_classes: int) -> list[tuple[float, float, float, float]]:
    """One categorical colour per class: matplotlib's ``tab10`` up to 10 classes, ``tab20`` up to 20, else hues
    spaced evenly around the colour wheel."""
    import matplotlib

    if n_classes <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(n_classes)]
    if n_classes <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(n_classes)]
    return [matplotlib.colormaps["hsv"](i / n_classes) for i in range(n_classes)]


def _width_patch(fraction: float) -> Callable:
    """A legend patch drawn as a bar ``fraction`` of the legend key wide, centred, as the cells draw them."""

    def make(legend: object, orig_handle: object, xdescent: float, ydescent: float, width: float, height: float,
             fontsize: float) -> object:  # fmt: skip
        from matplotlib.patches import Rectangle

        bar = width * fraction
        return Rectangle((-xdescent + (width - bar) / 2, -ydescent - 0.3 * height), bar, 1.6 * height)

    return make


@dataclass
class LayerSummary:
    """Class counts per zero-aligned bin for the neurons of one level (from ``ActivationSorter.layer_summary``).

    Attributes
    ----------
    level : str
    neurons : ndarray of shape (n_neurons,), int
        The neuron indices summarised; position ``i`` of every other array is neuron ``neurons[i]``.
    edges : list of ndarray
        Per neuron its bin edges, ``bins + 1`` of them (two, ``[v, v]``, for a constant neuron); 0 is one of
        them whenever the neuron's range reaches it.
    classes : ndarray of shape (n_classes,)
        The classes, ascending: the last axis of ``counts``.
    counts : ndarray of shape (n_neurons, bins, n_classes), int64
        Inputs of each class per bin (a constant neuron fills bin 0 only).
    widths : tuple of (int, int)
        The width thresholds (default the thesis's (3, 11)).
    kinds : list of str
        Each neuron's kind under the default thresholds (see :mod:`stepwise.sorter.kinds`).
    preferred : ndarray of shape (n_neurons,)
        The class with the largest share of each neuron's top decile (its kind's ``top_class``); -1 for none.
    n_inputs : int
    class_names : dict of int to str
        Names for the legend; a class without one is shown by its number.
    width_class : ndarray of shape (n_neurons, bins), int8
        0 for an empty bin, 1 for 1 to ``widths[0]`` inputs, 2 up to ``widths[1]``, 3 beyond.
    n_negative : ndarray of shape (n_neurons,), int64
        Bins below zero per neuron: its row starts that many cells left of the zero line.
    """

    level: str
    neurons: np.ndarray
    edges: list[np.ndarray]
    classes: np.ndarray
    counts: np.ndarray
    widths: tuple[int, int]
    kinds: list[str]
    preferred: np.ndarray
    n_inputs: int
    class_names: dict[int, str] = field(default_factory=dict)
    width_class: np.ndarray = field(init=False)
    n_negative: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.width_class = width_classes(self.totals, self.widths)
        self.n_negative = np.array([n_negative_bins(e) for e in self.edges], dtype=np.int64)

    def __repr__(self) -> str:
        return (
            f"LayerSummary(level={self.level!r}, neurons={len(self.neurons)}, bins={self.bins}, "
            f"classes={len(self.classes)}, inputs={self.n_inputs})"
        )

    @property
    def bins(self) -> int:
        """m, the number of bins per neuron."""
        return self.counts.shape[1]

    @property
    def totals(self) -> np.ndarray:
        """ndarray of shape (n_neurons, bins): inputs per bin."""
        return self.counts.sum(axis=2)

    @property
    def percentages(self) -> np.ndarray:
        """ndarray of shape (n_neurons, bins, n_classes): each class's percentage of its bin (0 in empty bins)."""
        totals = self.totals[:, :, None]
        return np.divide(100.0 * self.counts, totals, out=np.zeros(self.counts.shape), where=totals > 0)

    def n_pages(self, per_page: int = PER_PAGE) -> int:
        """How many pages of ``per_page`` rows the figure takes."""
        per_page = check_int(per_page, "per_page", "LayerSummary.plot", low=1)
        return max(1, -(-len(self.neurons) // per_page))

    def order(self, order: str | Sequence[int] = "index") -> np.ndarray:
        """Positions (into ``neurons``) of the rows in the order asked for.

        Parameters
        ----------
        order : {"index", "kind", "class"} or sequence of int, default="index"
            ``"index"``: by neuron index; ``"kind"``: by kind (in the order of
            :data:`~stepwise.sorter.kinds.KINDS`), then index; ``"class"``: by preferred class, then index; a
            sequence: those neuron indices, in that order.
        """
        index = np.arange(len(self.neurons))
        if isinstance(order, str):
            if order not in ORDERS:
                listed = ", ".join(repr(o) for o in ORDERS)
                raise ValueError(
                    f"The 'order' parameter of LayerSummary.plot must be one of {{{listed}}} or a sequence of neuron "
                    f"indices. Got {order!r} instead."
                )
            if order == "index":
                return index[np.argsort(self.neurons, kind="stable")]
            if order == "kind":
                rank = np.array([KINDS.index(kind) for kind in self.kinds])
                return np.lexsort((self.neurons, rank))
            preferred = np.where(self.preferred < 0, np.iinfo(np.int64).max, self.preferred)
            return np.lexsort((self.neurons, preferred))
        positions = {int(n): i for i, n in enumerate(self.neurons)}
        chosen = [int(n) for n in order]
        missing = [n for n in chosen if n not in positions]
        if missing:
            raise ValueError(
                f"Neurons {missing[:5]} are not in this summary of level {self.level!r}: order by neurons it holds "
                f"({len(self.neurons)} of them), or ask layer_summary for them."
            )
        return np.array([positions[n] for n in chosen], dtype=np.int64)

    def plot(
        self,
        *,
        order: str | Sequence[int] = "index",
        page: int = 0,
        per_page: int = PER_PAGE,
        class_names: Mapping[int, str] | None = None,
    ) -> Figure:
        """Draw one page of the layer summary: one row per neuron, aligned on the zero line.

        Each cell is a bin; its bar stacks the class percentages of the bin's inputs bottom to top (classes in
        ascending order, colours in the legend), and its width tells how many inputs fell there (three widths:
        1 to ``widths[0]``, up to ``widths[1]``, more). A light band shows each neuron's range; the zero line is
        drawn thick; each row's range and kind are written on its right.

        Parameters
        ----------
        order : {"index", "kind", "class"} or sequence of int, default="index"
            See :meth:`order`.
        page : int, default=0
            Which page, from 0 to ``n_pages(per_page) - 1``.
        per_page : int, default=64
            Rows per page.
        class_names : mapping of int to str, optional
            Names for the legend (default: ``class_names`` of the summary, else the class numbers).

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt
        from matplotlib.collections import PolyCollection
        from matplotlib.legend_handler import HandlerPatch
        from matplotlib.patches import Patch

        pages = self.n_pages(per_page)
        page = check_int(page, "page", "LayerSummary.plot", low=0, high=pages - 1)
        rows = self.order(order)[page * per_page : (page + 1) * per_page]
        names = {**self.class_names, **(dict(class_names) if class_names else {})}
        colours = class_colours(len(self.classes))
        negative = self.n_negative
        shares = self.percentages / 100.0
        left = -int(max(negative[rows].max(), 0)) if len(rows) else 0
        right = int(max((len(self.edges[r]) - 1 - negative[r]) for r in rows)) if len(rows) else self.bins
        right = max(right, 1)
        width = min(max(7.0, 0.24 * (right - left) + 3.2), 22.0)
        fig, ax = plt.subplots(figsize=(width, 0.19 * len(rows) + 1.9))
        polygons: list[list[list[list[float]]]] = [[] for _ in self.classes]
        bands = []
        for y, r in enumerate(rows):
            bottom = y + (1 - _ROW) / 2
            start = -int(negative[r])
            n_bins = len(self.edges[r]) - 1
            bands.append([[start, y + 0.04], [start + n_bins, y + 0.04], [start + n_bins, y + 0.96], [start, y + 0.96]])
            for b in np.flatnonzero(self.width_class[r]):
                half = _BAR_WIDTHS[int(self.width_class[r, b])] / 2
                x0, x1 = start + b + 0.5 - half, start + b + 0.5 + half
                level = bottom
                for c in np.flatnonzero(shares[r, b]):
                    top = level + _ROW * shares[r, b, c]
                    polygons[c].append([[x0, level], [x1, level], [x1, top], [x0, top]])
                    level = top
        ax.add_collection(PolyCollection(bands, facecolors="0.94", edgecolors="none", zorder=0))
        for c, polys in enumerate(polygons):
            if polys:
                ax.add_collection(PolyCollection(polys, facecolors=[colours[c]], edgecolors="none", zorder=2))
        for x in range(left, right + 1):
            ax.axvline(x, color="white", lw=0.6, zorder=1)
        ax.axvline(0, color="black", lw=2.4, zorder=3)
        for y, r in enumerate(rows):
            e = self.edges[r]
            ax.text(right + 0.3, y + 0.5, f"[{e[0]:.3g}, {e[-1]:.3g}]  {self.kinds[r]}", va="center", fontsize=6.5)
        ax.set_xlim(left - 0.2, right + 0.2)
        ax.set_ylim(len(rows), 0)
        ax.set_yticks(np.arange(len(rows)) + 0.5, [str(self.neurons[r]) for r in rows], fontsize=6.5)
        ax.set_ylabel("neuron")
        ax.set_xlabel("bins left and right of the zero line (each row over its own [min, max], written on its right)")
        ax.tick_params(axis="x", labelsize=7)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        ax.set_title(
            f"Layer summary of {self.level}: neurons {page * per_page + 1}-{page * per_page + len(rows)} of "
            f"{len(self.neurons)} (page {page + 1}/{pages}, ordered by "
            f"{order if isinstance(order, str) else 'hand'}), {self.n_inputs} inputs, {self.bins} bins",
            fontsize=9,
            pad=26 + 11 * ((len(self.classes) - 1) // 10),
        )
        handles = [Patch(color=colours[i], label=names.get(int(c), str(c))) for i, c in enumerate(self.classes)]
        small, medium = self.widths
        handles.append(Patch(color="none", label="   bar width:"))
        handler_map = {}
        for width_class, label in ((1, f"1-{small}"), (2, f"{small + 1}-{medium}"), (3, f"{medium + 1}+ inputs")):
            handle = Patch(color="0.45", label=label)
            handles.append(handle)
            handler_map[handle] = HandlerPatch(patch_func=_width_patch(_BAR_WIDTHS[width_class]))
        ax.legend(
            handles=handles,
            handler_map=handler_map,
            loc="lower left",
            bbox_to_anchor=(0.0, 1.0),
            ncol=min(len(handles), 14),
            fontsize=7,
            frameon=False,
            handlelength=1.2,
            columnspacing=0.9,
            borderaxespad=0.2,
        )
        fig.tight_layout()
        return fig
