"""The neuron view (the thesis's Individual Neuron mode): one neuron's inputs bin by bin, as thumbnails (images)
or strips (vectors), each with its label and the model's prediction, misclassified inputs marked in red.

matplotlib is imported by :meth:`NeuronView.plot` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from stepwise.core.validation import check_int

from .summary import class_colours

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["NeuronView"]

_MISCLASSIFIED = "#d62728"


@dataclass
class NeuronView:
    """One neuron's inputs, bin by bin (from ``ActivationSorter.neuron_view``).

    Attributes
    ----------
    level : str
    neuron : int
    kind : str
        The neuron's kind under the default thresholds.
    edges : ndarray of shape (bins + 1,), or (2,) for a constant neuron
        The neuron's zero-aligned bin edges, as in the layer summary.
    members : list of ndarray of int
        Per bin, the indices (into the inputs given to ``fit``) of the inputs whose value falls in it, the
        largest value first; every input used appears in exactly one bin.
    values : list of ndarray of float32
        Per bin, the members' values, in the same order.
    labels, predicted : list of ndarray
        Per bin, the members' labels and the model's predictions (``predicted`` holds -1 where unknown).
    classes : ndarray of shape (n_classes,)
    inputs : Tensor or ndarray of shape (N, ...), or None
        The inputs given to ``fit`` (the same object, not a copy), drawn as thumbnails; None when the sorter was
        built from values without inputs (members are then drawn by their index).
    class_names : dict of int to str
    """

    level: str
    neuron: int
    kind: str
    edges: np.ndarray
    members: list[np.ndarray]
    values: list[np.ndarray]
    labels: list[np.ndarray]
    predicted: list[np.ndarray]
    classes: np.ndarray
    inputs: Any
    class_names: dict[int, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        used = sum(len(m) for m in self.members)
        return f"NeuronView(level={self.level!r}, neuron={self.neuron}, kind={self.kind!r}, inputs={used})"

    @property
    def counts(self) -> np.ndarray:
        """ndarray of shape (n_bins,): inputs per bin."""
        return np.array([len(m) for m in self.members], dtype=np.int64)

    def misclassified(self, b: int) -> np.ndarray:
        """Boolean mask over bin ``b``'s members: the prediction is known and differs from the label."""
        return (self.predicted[b] >= 0) & (self.predicted[b] != self.labels[b])

    def plot(self, *, per_bin: int = 12, class_names: Mapping[int, str] | None = None) -> Figure:
        """Draw the non-empty bins top (largest values) to bottom, each a row of up to ``per_bin`` members.

        Each row starts with the bin's range, its count and a bar of its class percentages; then the members,
        largest value first: images as thumbnails, vectors as one-row strips, titled "label→prediction";
        a misclassified member is framed and titled in red. A bin with more members says how many are not shown.

        Parameters
        ----------
        per_bin : int, default=12
            Members shown per bin.
        class_names : mapping of int to str, optional
            Names used in the titles (default: the view's ``class_names``, else the class numbers).

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt

        per_bin = check_int(per_bin, "per_bin", "NeuronView.plot", low=1)
        names = {**self.class_names, **(dict(class_names) if class_names else {})}
        shown = [b for b in range(len(self.members)) if len(self.members[b])][::-1]
        columns = min(per_bin, max(len(self.members[b]) for b in shown))
        height = 0.95 * len(shown) + 0.7
        fig, axes = plt.subplots(
            len(shown),
            columns + 1,
            figsize=(1.9 + 0.82 * columns, height),
            gridspec_kw={"width_ratios": [2.3] + [1] * columns, "wspace": 0.12, "hspace": 0.55},
            squeeze=False,
        )
        fig.subplots_adjust(top=1 - 0.55 / height, bottom=0.15 / height, left=0.02, right=0.93)
        colours = class_colours(len(self.classes))
        code = {int(c): i for i, c in enumerate(self.classes)}
        for row, b in enumerate(shown):
            self._bin_header(axes[row, 0], b, colours, code)
            wrong = self.misclassified(b)
            for column in range(columns):
                ax = axes[row, column + 1]
                ax.set_xticks([])
                ax.set_yticks([])
                if column >= len(self.members[b]):
                    ax.axis("off")
                    continue
                self._thumbnail(ax, b, column)
                label, guess = int(self.labels[b][column]), int(self.predicted[b][column])
                title = names.get(label, str(label)) + ("→" + names.get(guess, str(guess)) if guess >= 0 else "")
                colour = _MISCLASSIFIED if wrong[column] else "black"
                ax.set_title(title, fontsize=7, color=colour, pad=2)
                for spine in ax.spines.values():
                    spine.set_color(_MISCLASSIFIED if wrong[column] else "0.7")
                    spine.set_linewidth(2.2 if wrong[column] else 0.5)
            hidden = len(self.members[b]) - columns
            if hidden > 0:
                axes[row, -1].annotate(
                    f"+{hidden} more", (1.04, 0.5), xycoords="axes fraction", va="center", fontsize=7, color="0.3"
                )
        n_wrong = sum(int(self.misclassified(b).sum()) for b in range(len(self.members)))
        fig.suptitle(
            f"Neuron {self.neuron} of {self.level} ({self.kind}): {sum(len(m) for m in self.members)} inputs in "
            f"{len(shown)} non-empty bins, largest values on top; titles label→prediction, "
            f"{n_wrong} misclassified framed in red",
            fontsize=9,
            y=1 - 0.12 / height,
            va="top",
        )
        return fig

    def _bin_header(self, ax: Axes, b: int, colours: list, code: dict[int, int]) -> None:
        """The bin's range and count above a bar of its class percentages."""
        low, high = self.edges[b], self.edges[min(b + 1, len(self.edges) - 1)]
        closing = "]" if b == len(self.edges) - 2 or low == high else ")"
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.axis("off")
        ax.text(0, 0.98, f"[{low:.3g}, {high:.3g}{closing}\n{len(self.members[b])} inputs", fontsize=7, va="top")
        counts = np.bincount([code[int(label)] for label in self.labels[b]], minlength=len(self.classes))
        left = 0.0
        for c in np.flatnonzero(counts):
            share = counts[c] / counts.sum()
            ax.barh(0.15, share, left=left, height=0.22, color=colours[c])
            left += share

    def _thumbnail(self, ax: Axes, b: int, column: int) -> None:
        if self.inputs is None:
            ax.text(0.5, 0.5, f"#{self.members[b][column]}", ha="center", va="center", fontsize=7)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            return
        image = self.inputs[int(self.members[b][column])]
        if hasattr(image, "detach"):  # a tensor, possibly on a GPU
            image = image.detach().cpu().double().numpy()
        image = np.asarray(image, dtype=np.float64)
        if image.ndim == 3 and image.shape[0] in (1, 3):  # (C, H, W): grey or colour
            image = image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)
        elif image.ndim == 3:
            image = image.mean(axis=0)
        elif image.ndim == 1:
            image = image[None, :]
        elif image.ndim > 3:
            image = image.reshape(image.shape[0], -1)
        low, high = float(image.min()), float(image.max())
        scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
        ax.imshow(scaled, cmap="gray" if scaled.ndim == 2 else None, aspect="auto" if image.shape[0] == 1 else "equal")
