"""Which inputs each command explains: per class, those the model classifies correctly and confidently
(:func:`stepwise.select_inputs`), with what the user must know about the classes that got few or none.

A class is explained when it was asked for (``--classes``) or is present in the data: in its labels, or, for
unlabelled data, among the model's predictions. A class that gets no qualifying input is skipped, and one that
gets fewer than ``--min-images`` is kept but flagged; both are named in a warning on stderr and in the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from stepwise.cli.loading import Setup
from stepwise.cli.options import UsageError
from stepwise.cli.progress import Progress
from stepwise.core.selection import class_probabilities, select_from_probabilities

__all__ = ["Selection", "check_classes", "select"]


@dataclass
class Selection:
    """Per class: the positions of the inputs chosen (in the whole data), how many inputs the class has, how many
    the model classifies correctly and how many confidently; the classes skipped and those with few inputs."""

    indices: dict[int, Tensor]
    counts: dict[int, dict[str, int]]
    labelled: bool
    min_images: int
    skipped: dict[int, str]
    few: dict[int, str]


def check_classes(classes: Sequence[int] | None, n_classes: int) -> list[int] | None:
    """``--classes`` checked against the model's classes, sorted, without repeats; None stays None (the classes
    present)."""
    if classes is None:
        return None
    wrong = [c for c in classes if not 0 <= c < n_classes]
    if wrong:
        raise UsageError(f"--classes {wrong}: the model scores {n_classes} classes, 0 to {n_classes - 1}.")
    return sorted(set(classes))


def select(
    setup: Setup,
    classes: Sequence[int] | None,
    *,
    min_probability: float,
    max_images: int,
    min_images: int,
    batch_size: int | None,
    progress: Progress,
    among: Tensor | None = None,
    fix: str = "lower --min-probability",
) -> Selection:
    """Choose up to ``max_images`` inputs per class (from the positions ``among``, all by default) and warn about
    the classes that got none or fewer than ``min(min_images, max_images)``.

    Raises
    ------
    UsageError
        If no input of any class qualifies; the message says ``fix``.
    """
    data = setup.data
    pool = torch.arange(len(data.inputs)) if among is None else among
    labels = None if data.labels is None else data.labels[pool]
    with progress.bar(len(pool), "predicting") as bar:
        probabilities = class_probabilities(setup.model, data.inputs[pool], batch_size=batch_size, progress=bar.update)
    chosen = select_from_probabilities(
        probabilities, labels, classes=classes, min_probability=min_probability, max_per_class=max_images
    )
    predicted = probabilities.argmax(1)
    own = predicted if labels is None else labels
    counts = {}
    for c in chosen:
        mine = own == c
        correct = mine & (predicted == c)
        confident = correct & (probabilities[:, c] >= min_probability)
        counts[c] = {"inputs": int(mine.sum()), "correct": int(correct.sum()), "confident": int(confident.sum())}
    if not any(len(index) for index in chosen.values()):
        raise UsageError(_nothing_qualifies(setup, classes, probabilities, labels, min_probability, fix))
    indices = {c: pool[index] for c, index in chosen.items()}
    threshold = min(min_images, max_images)
    skipped, few = {}, {}
    for c, index in indices.items():
        name = data.name(c)
        if not len(index):
            skipped[c] = _why_skipped(counts[c], labels is not None, min_probability)
            progress.warn(f"class {name} skipped: {skipped[c]}")
        elif len(index) < threshold:
            few[c] = (
                f"only {len(index)} input{'s' if len(index) > 1 else ''} qualif{'y' if len(index) > 1 else 'ies'}, "
                f"fewer than --min-images {threshold}"
            )
            progress.warn(
                f"class {name}: {few[c]}; its results rest on few inputs. Pass more inputs of the class, or a lower "
                "--min-probability."
            )
    return Selection(indices, counts, labels is not None, threshold, skipped, few)


def _why_skipped(counts: dict[str, int], labelled: bool, min_probability: float) -> str:
    if labelled:
        if not counts["inputs"]:
            return "the data holds no input with this label"
        return (
            f"none of its {counts['inputs']} inputs is classified correctly with probability >= {min_probability} "
            f"({counts['correct']} correct); a lower --min-probability admits more"
        )
    if not counts["inputs"]:
        return "the model predicts it for no input (the data has no labels: an input's class is its prediction)"
    return (
        f"the model predicts it for {counts['inputs']} inputs, none with probability >= {min_probability}; a lower "
        "--min-probability admits more"
    )


def _nothing_qualifies(
    setup: Setup,
    classes: Sequence[int] | None,
    probabilities: Tensor,
    labels: Tensor | None,
    min_probability: float,
    fix: str,
) -> str:
    names = ", ".join(setup.data.name(c) for c in classes) if classes is not None else None
    if labels is not None:
        which = f"of classes {names}" if names is not None else "of any class"
        return (
            f"no input {which} is classified correctly with probability >= {min_probability}: {fix}, or check that "
            "the labels match the model's classes."
        )
    predicted = probabilities.argmax(1)
    asked = torch.ones_like(predicted, dtype=torch.bool)
    if classes is not None:
        asked = torch.isin(predicted, torch.tensor(list(classes), dtype=predicted.dtype))
    present = ", ".join(setup.data.name(int(c)) for c in predicted.unique()[:20])
    if not asked.any():
        return (
            f"the data has no labels, so an input's class is the model's prediction, and the model predicts none of "
            f"classes {names} for any input (it predicts {present}): choose --classes among those, or pass labelled "
            "data."
        )
    best = float(probabilities.max(dim=1).values[asked].max())
    which = f" as one of classes {names}" if names is not None else ""
    return (
        f"no input is predicted{which} with probability >= {min_probability} (the data has no labels, so an input's "
        f"class is the model's prediction; the highest probability of a prediction is {best:.4g}): {fix}, or pass "
        "labelled data."
    )
