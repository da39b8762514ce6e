"""The checks of decision paths' inputs, labels and seed, made before any forward pass."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from stepwise.core.hooks import all_finite, check_has_values, check_model_has_values, model_device_dtype
from stepwise.core.validation import check_int

__all__ = ["check_inputs", "check_labels", "check_seed"]


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


def check_inputs(inputs: object, model: nn.Module, what: str = "inputs") -> Tensor:
    """``inputs`` if it is a non-empty tensor (N, ...) of finite values in the model's dtype, else raise.

    Raises
    ------
    TypeError
        If ``inputs`` is not a tensor.
    ValueError
        If it is empty, on the meta device, holds NaN or Inf values, or has another floating dtype than the model.
    """
    if not isinstance(inputs, Tensor):
        raise TypeError(
            f"{what} must be a torch.Tensor of shape (N, ...); got {type(inputs).__name__}. Convert arrays with "
            "torch.as_tensor."
        )
    if inputs.dim() == 0 or len(inputs) == 0:
        raise ValueError(f"{what} is empty: pass at least one input, batch dimension first.")
    check_has_values(inputs, what)
    check_model_has_values(model)
    if not all_finite(inputs):
        rows = inputs.reshape(len(inputs), -1)
        bad = int((~torch.isfinite(rows)).any(dim=1).sum())
        raise ValueError(
            f"{what} hold NaN or Inf values ({bad} of {len(inputs)} inputs): remove or repair those inputs before "
            "fitting, for example with torch.nan_to_num or by dropping the rows."
        )
    _, dtype = model_device_dtype(model)
    if dtype is not None and inputs.is_floating_point() and inputs.dtype != dtype:
        raise ValueError(
            f"{what} are {inputs.dtype} but the model is {dtype}: convert one of them, for example inputs.to({dtype})."
        )
    return inputs


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
