"""The checks of decision paths' inputs, labels and seed, made before any forward pass."""

from __future__ import annotations


import numpy as np
import torch
from torch import Tensor

from stepwise.core.validation import check_int

__all__ = ["check_labels", "check_seed"]


def check_seed(seed: object, owner: str) -> int | None:
    """The ``random_state`` of k-means: an int in [0, 2**32 - 1], one drawn from a numpy or torch generator, or
    None (fresh entropy)."""
    if seed is None:
        return None
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**31 - 1))
    if isinstance(seed, torch.Generator):
        return int(torch.randint(2**31 - 1, (1,), generator=seed).item())
    return check_int(seed, "seed", owner, low=0, high=2**32 - 1)


def check_labels(labels: object, n: int, top: str) -> np.ndarray | None:
    """The labels as an int64 array of shape (n,), or None; raise for another length, non-integer or negative
    classes, or no labels with ``top="label"``."""
    if labels is None:
        if top == "label":
            raise ValueError(
                "top='label' takes the class column from the labels, but no labels were given: pass labels=... (one "
                "class per input), or use top='predicted'."
            )
        return None
    values = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise TypeError(
            f"labels must be one int class per input, shape ({n},); got {values.dtype} of shape {values.shape}."
        )
    if len(values) != n:
        raise ValueError(f"Found {len(values)} labels for {n} inputs: pass one label per input.")
    if len(values) and values.min() < 0:
        raise ValueError(f"labels must be class indices of at least 0; found {values.min()}.")
    return values.astype(np.int64)
