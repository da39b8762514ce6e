"""Kinds of neurons, read from the class distribution of their values: this library's reading of the thesis.

The thesis names the kinds it met (specialised, suppressing, bisemantic or polysemantic, differentiating,
zeroing neurons) but its text stops inside §3.3, before defining them. The definitions below, their order and their
thresholds are therefore ours; every threshold is a keyword of :func:`neuron_kinds` (and of
``ActivationSorter.neuron_types``) with the default given here.

For one neuron with values v over n inputs:

- the **top set** is every input whose value is at least the ``ceil(top * n)``-th largest value (ties included),
  leaving out inputs at the neuron's minimum (a ReLU's zero floor is not "the top"); the **bottom set** likewise
  from the smallest values, leaving out inputs at its maximum. ``top=0.1``: the top and bottom deciles;
- a set's **shares** are the fractions of its inputs in each class, largest first.

The first rule that holds gives the kind:

1. ``zeroing``: the fraction of positive values is at most ``zeroing`` (0.05): almost nothing passes a ReLU;
2. ``specialised``: the top set's largest share is at least ``dominant`` (0.6);
3. ``bisemantic``: the two largest shares of the top set sum to at least ``cover`` (0.8);
4. ``polysemantic``: the top set reaches ``cover`` with at least three and at most ``max_classes`` (4) classes;
5. ``suppressing``: the bottom set's largest share is at least ``dominant`` and its class is not the top set's
   first class;
6. ``differentiating``: the classes with the lowest and the highest median lie at least ``separation`` (0.5) of the
   neuron's range apart, and at most ``overlap`` (0.1) of their inputs fall on the wrong side of the midpoint
   between the two medians;
7. ``other``: none of these (a constant positive neuron is ``other`` too).

Shares are of inputs, not of classes, so balanced inputs (the sorter's ``per_class``) keep them comparable. A
comparison "at least" allows 1e-9 for the rounding of a fraction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["KINDS", "Thresholds", "neuron_kinds"]

#: The kinds, in the order of the rules that decide them.
KINDS = ("zeroing", "specialised", "bisemantic", "polysemantic", "suppressing", "differentiating", "other")

_SLACK = 1e-9


@dataclass(frozen=True)
class Thresholds:
    """The thresholds of the kinds (see the module documentation for the rules)."""

    zeroing: float = 0.05
    top: float = 0.1
    dominant: float = 0.6
    cover: float = 0.8
    max_classes: int = 4
    separation: float = 0.5
    overlap: float = 0.1


def _class_sums(mask: np.ndarray, codes: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_neurons): how many inputs of each class ``mask`` (n_inputs, n_neurons) holds."""
    return np.stack([mask[codes == c].sum(axis=0) for c in range(n_classes)])


def _first_at_least(cumulative: np.ndarray, threshold: float) -> np.ndarray:
    """Per column, how many leading rows of ``cumulative`` (non-decreasing) it takes to reach ``threshold``."""
    reached = cumulative >= threshold - _SLACK
    return np.where(reached.any(axis=0), reached.argmax(axis=0) + 1, len(cumulative) + 1)


def neuron_kinds(
    values: np.ndarray, codes: np.ndarray, classes: np.ndarray, thresholds: Thresholds
) -> dict[str, list | np.ndarray]:
    """The kind of every neuron of a level, with the numbers that decided it (all neurons at once).

    Parameters
    ----------
    values : ndarray of shape (n_inputs, n_neurons)
    codes : ndarray of shape (n_inputs,), int
        Each input's class as a position in ``classes``.
    classes : ndarray of shape (n_classes,)
    thresholds : Thresholds

    Returns
    -------
    dict of str to list or ndarray of length n_neurons
        ``kind`` and ``evidence`` (a sentence with the deciding numbers), then the numbers: ``positive_fraction``,
        ``top_size``, ``top_class``, ``top_share``, ``top_two_share``, ``top_needed`` (classes the top set needs to
        reach ``cover``; 0 without a top set), ``bottom_class``, ``bottom_share``, ``low_class``, ``high_class``,
        ``separation``, ``overlap``. ``top_class`` and ``bottom_class`` are None where the set is empty (a
        constant neuron).
    """
    t = thresholds
    n, n_neurons = values.shape
    n_classes = len(classes)
    columns = np.arange(n_neurons)
    low, high = values.min(axis=0), values.max(axis=0)
    positive = np.count_nonzero(values > 0, axis=0) / n
    k = max(1, math.ceil(t.top * n - _SLACK))
    ordered = np.sort(values, axis=0)
    top_mask = (values >= ordered[n - k]) & (values > low)
    bottom_mask = (values <= ordered[k - 1]) & (values < high)
    top_size, bottom_size = top_mask.sum(axis=0), bottom_mask.sum(axis=0)
    top = _class_sums(top_mask, codes, n_classes) / np.maximum(top_size, 1)
    bottom = _class_sums(bottom_mask, codes, n_classes) / np.maximum(bottom_size, 1)
    top_order = np.argsort(-top, axis=0, kind="stable")
    bottom_first = np.argsort(-bottom, axis=0, kind="stable")[0]
    sorted_top = np.take_along_axis(top, top_order, axis=0)
    cumulative = np.cumsum(sorted_top, axis=0)
    needed = np.where(top_size > 0, _first_at_least(cumulative, t.cover), 0)
    top_share, bottom_share = sorted_top[0], bottom[bottom_first, columns]
    top_two = sorted_top[: min(2, n_classes)].sum(axis=0)

    medians = np.full((n_classes, n_neurons), np.nan)
    for c in range(n_classes):
        if np.any(codes == c):
            medians[c] = np.median(values[codes == c], axis=0)
    low_c = np.argmin(np.where(np.isnan(medians), np.inf, medians), axis=0)
    high_c = np.argmax(np.where(np.isnan(medians), -np.inf, medians), axis=0)
    low_median, high_median = medians[low_c, columns], medians[high_c, columns]
    mid = (low_median + high_median) / 2
    in_low, in_high = codes[:, None] == low_c[None, :], codes[:, None] == high_c[None, :]
    wrong = np.count_nonzero(in_high & (values < mid), axis=0) + np.count_nonzero(in_low & (values > mid), axis=0)
    pair = np.count_nonzero(in_low | in_high, axis=0)
    span = high.astype(np.float64) - low
    separation = np.divide(high_median - low_median, span, out=np.zeros(n_neurons), where=span > 0)
    overlap = wrong / np.maximum(pair, 1)

    has_top, has_bottom = top_size > 0, bottom_size > 0
    first, second = classes[top_order[0]], classes[top_order[min(1, n_classes - 1)]]
    rules = [
        ("zeroing", positive <= t.zeroing + _SLACK),
        ("other", ~has_top),  # constant
        ("specialised", top_share >= t.dominant - _SLACK),
        ("bisemantic", top_two >= t.cover - _SLACK),
        ("polysemantic", (needed >= 3) & (needed <= t.max_classes)),
        ("suppressing", has_bottom & (bottom_share >= t.dominant - _SLACK) & (bottom_first != top_order[0])),
        ("differentiating", (separation >= t.separation - _SLACK) & (overlap <= t.overlap + _SLACK)),
    ]
    decided = np.full(n_neurons, len(rules))
    for position, (_, holds) in reversed(list(enumerate(rules))):
        decided[holds] = position
    kinds, evidence = [], []
    for j in range(n_neurons):
        rule = decided[j]
        kind = rules[rule][0] if rule < len(rules) else "other"
        if rule == 0:
            why = f"{positive[j]:.1%} of values > 0 (at most {t.zeroing:g})"
        elif rule == 1:
            why = "constant"
        elif rule == 2:
            why = f"top {t.top:g}: {top_share[j]:.0%} class {first[j]}"
        elif rule == 3:
            why = f"top {t.top:g}: {top_two[j]:.0%} classes {first[j]}, {second[j]}"
        elif rule == 4:
            names = ", ".join(str(classes[c]) for c in top_order[: needed[j], j])
            why = f"top {t.top:g}: {cumulative[needed[j] - 1, j]:.0%} classes {names}"
        elif rule == 5:
            why = f"bottom {t.top:g}: {bottom_share[j]:.0%} class {classes[bottom_first[j]]}"
        elif rule == 6:
            why = (
                f"medians of classes {classes[low_c[j]]} and {classes[high_c[j]]} {separation[j]:.0%} of the range "
                f"apart, {overlap[j]:.0%} overlap"
            )
        else:
            why = (
                f"top {t.top:g} needs {needed[j]} classes; bottom {t.top:g}: {bottom_share[j]:.0%} class "
                f"{classes[bottom_first[j]]}"
            )
        kinds.append(kind)
        evidence.append(why)
    return {
        "kind": kinds,
        "evidence": evidence,
        "positive_fraction": positive,
        "top_size": top_size,
        "top_class": [classes[c].item() if h else None for c, h in zip(top_order[0], has_top)],
        "top_share": top_share,
        "top_two_share": top_two,
        "top_needed": needed,
        "bottom_class": [classes[c].item() if h else None for c, h in zip(bottom_first, has_bottom)],
        "bottom_share": bottom_share,
        "low_class": classes[low_c],
        "high_class": classes[high_c],
        "separation": separation,
        "overlap": overlap,
    }
