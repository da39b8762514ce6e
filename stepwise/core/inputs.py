"""One input as a batch of one, and generators from seeds: the conversions that need torch.

They live apart from :mod:`stepwise.core.validation`, which stays free of torch for :mod:`stepwise.graphs`.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .hooks import all_finite, check_has_values, check_model_has_values, model_device_dtype
from .typing import Inputs, Seed

__all__ = ["check_batch", "make_generator", "single_input", "stack_inputs"]

_SHAPES = "(C, H, W) or (1, C, H, W), or (D,) or (1, D) for a vector input"


def single_input(image: Any, owner: str, model: nn.Module | None = None) -> Tensor:
    """Check that ``image`` is one input and return it as a batch of one on the model's device.

    Parameters
    ----------
    image : Tensor of shape (C, H, W), (1, C, H, W), (D,) or (1, D)
    owner : str
        The public function to name in error messages.
    model : torch.nn.Module, optional
        The model the input is for: its dtype must match and the copy goes to its device. Without a model the
        copy stays on the image's device.

    Returns
    -------
    Tensor of shape (1, ...)
        A detached copy.

    Raises
    ------
    TypeError
        If ``image`` is not a floating-point tensor in the model's dtype.
    ValueError
        If ``image`` is a batch of several inputs, has another number of dimensions, is empty, holds NaN or
        Inf values or is on the meta device.

    Examples
    --------
    >>> single_input(torch.zeros(3, 4, 4), "example").shape
    torch.Size([1, 3, 4, 4])
    """
    if not isinstance(image, Tensor):
        raise TypeError(
            f"The 'image' parameter of {owner} must be a torch.Tensor shaped {_SHAPES}. "
            f"Got {type(image).__name__} instead. Convert arrays with torch.as_tensor."
        )
    check_has_values(image, "'image'")
    shape = tuple(image.shape)
    if image.dim() in (2, 4) and shape[0] != 1:
        raise ValueError(
            f"{owner} explains one input, but 'image' has shape {shape}: a batch of {shape[0]} inputs. "
            f"Pass one input shaped {_SHAPES}, for example image[0]."
        )
    if image.dim() not in (1, 2, 3, 4):
        raise ValueError(f"'image' must be one input shaped {_SHAPES}; got shape {shape}.")
    if image.numel() == 0:
        raise ValueError(f"'image' is empty (shape {shape}): pass one input shaped {_SHAPES}.")
    if not image.is_floating_point():
        raise TypeError(
            f"'image' must be a floating-point tensor; got dtype {image.dtype}. Convert it, e.g. image.float()."
        )
    device, dtype = model_device_dtype(model) if model is not None else (image.device, None)
    if dtype is not None and image.dtype != dtype:
        raise TypeError(
            f"'image' is {image.dtype} but the model computes in {dtype}: convert one of them, for example "
            f"image.to({dtype}) or model.to({image.dtype})."
        )
    if not all_finite(image):
        raise ValueError("'image' holds NaN or Inf values: remove or replace them before the analysis.")
    batch = image if image.dim() in (2, 4) else image.unsqueeze(0)
    return batch.detach().to(device).clone()


def make_generator(seed: Seed, owner: str) -> torch.Generator:
    """A generator seeded from ``seed``; global random state is never touched.

    Parameters
    ----------
    seed : int, torch.Generator, numpy.random.Generator or None
        An int in ``[0, inf)`` seeds a new CPU generator; a ``torch.Generator`` is used as it is (and advances);
        a numpy generator draws the seed of a new one (and advances); ``None`` seeds a new one from the
        operating system.
    owner : str
        The public function to name in error messages.

    Returns
    -------
    torch.Generator

    Raises
    ------
    TypeError
        For anything else, a negative int or a bool included.

    Examples
    --------
    >>> a, b = make_generator(7, "example"), make_generator(7, "example")
    >>> torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=b))
    True
    """
    if isinstance(seed, torch.Generator):
        return seed
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    elif isinstance(seed, np.random.Generator):
        generator.manual_seed(int(seed.integers(0, 2**63 - 1)))
    elif isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
        generator.manual_seed(int(seed))
    else:
        raise TypeError(
            f"The 'seed' parameter of {owner} must be an int in the range [0, inf), a torch.Generator, a "
            f"numpy.random.Generator or None. Got {seed!r} instead."
        )
    return generator


def stack_inputs(inputs: Inputs) -> Tensor:
    """One tensor (N, ...) from a tensor, or from an iterable of tensors or of (x, y) batches (a DataLoader).

    Raises
    ------
    TypeError
        If ``inputs`` is neither a tensor nor an iterable of tensors or (x, y) batches.
    ValueError
        If there is no input, or the batches do not share one input shape; inputs on the meta device.
    """
    if isinstance(inputs, Tensor):
        data = inputs
    elif isinstance(inputs, Iterable) and not isinstance(inputs, (str, bytes, dict, np.ndarray)):
        parts = []
        for item in inputs:
            x = item[0] if isinstance(item, (tuple, list)) and item else item
            if not isinstance(x, Tensor):
                raise TypeError(
                    f"inputs yielded a {type(x).__name__}; expected tensors or (x, y) batches of tensors, "
                    "as a DataLoader gives them."
                )
            parts.append(x)
        if not parts:
            raise ValueError("inputs is empty: pass at least one input.")
        try:
            data = torch.cat(parts)
        except RuntimeError as error:
            raise ValueError(
                f"The batches of inputs do not share one input shape ({error}): pass batches of one input shape, "
                "batch dimension first."
            ) from error
    else:
        raise TypeError(
            f"inputs must be a torch.Tensor (N, ...) or an iterable of tensors or (x, y) batches; got "
            f"{type(inputs).__name__}. Convert arrays with torch.as_tensor."
        )
    if data.dim() == 0 or data.shape[0] == 0:
        raise ValueError(f"inputs is empty (shape {tuple(data.shape)}): pass at least one input.")
    check_has_values(data, "inputs")
    return data


def check_batch(inputs: object, model: nn.Module, what: str = "inputs") -> Tensor:
    """``inputs`` if it is a non-empty tensor (N, ...) of finite values in the model's floating dtype, else raise.

    Raises
    ------
    TypeError
        If ``inputs`` is not a tensor.
    ValueError
        If it is empty, on the meta device, holds NaN or Inf values (the message counts the inputs), or has another
        floating dtype than the model; a model on the meta device.
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
        bad = int((~torch.isfinite(inputs.reshape(len(inputs), -1))).any(dim=1).sum())
        raise ValueError(
            f"{what} hold NaN or Inf values ({bad} of {len(inputs)} inputs): remove or repair those inputs, for "
            "example with torch.nan_to_num or by dropping the rows."
        )
    _, dtype = model_device_dtype(model)
    if dtype is not None and inputs.is_floating_point() and inputs.dtype != dtype:
        raise ValueError(
            f"{what} are {inputs.dtype} but the model is {dtype}: convert one of them, for example {what}.to({dtype})."
        )
    return inputs
