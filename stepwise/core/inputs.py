"""One input as a batch of one, and generators from seeds: the conversions that need torch.

They live apart from :mod:`stepwise.core.validation`, which stays free of torch for :mod:`stepwise.graphs`.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any, Union

import numpy as np
import torch
from torch import Tensor, nn

from .hooks import all_finite, check_has_values, check_model_has_values, model_device_dtype
from .typing import Inputs, Seed

__all__ = [
    "TOKEN_MASK",
    "Batch",
    "KeywordInputs",
    "as_batch",
    "batch_mask",
    "check_batch",
    "input_signature",
    "is_token_level",
    "make_generator",
    "single_input",
    "stack_inputs",
    "token_mean",
]

_SHAPES = "(C, H, W) or (1, C, H, W), or (D,) or (1, D) for a vector input"


#: What the methods analyse: one tensor (N, ...) or keyword tensors with a batch dimension.
Batch = Union[Tensor, "KeywordInputs"]

#: The key of a dict of inputs that marks the real tokens (1) against padding (0), as tokenizers name it.
TOKEN_MASK = "attention_mask"


class KeywordInputs:
    """A batch of inputs given as keyword tensors, as a tokenizer returns them, passed to the model as ``**kwargs``.

    Every tensor has the batch dimension first; the batch is sliced, moved and streamed like one tensor. The
    *token mask* marks the real tokens (1) against padding (0) of each input: a neuron of an (N, T, D) level with
    ``channel_dim=2`` is the mean of its unit over the real tokens only, so that padding changes no value.

    Parameters
    ----------
    tensors : mapping of str to Tensor
        For example ``{"input_ids": (N, T), "attention_mask": (N, T)}``, or a Hugging Face ``BatchEncoding`` made
        with ``return_tensors="pt"``; every entry is passed to the model.
    token_mask : str, Tensor of shape (N, T), or None, default='attention_mask'
        The mask of real tokens: the key of one of ``tensors`` (the default uses ``attention_mask`` when there is
        one), or a mask of its own that is not passed to the model (to leave out the special tokens of the
        average, say); ``None`` averages over every token.

    Attributes
    ----------
    tensors : dict of str to Tensor
    mask : Tensor of shape (N, T) or None
        The token mask.
    replaced : (torch.nn.Module, Tensor) or None
        A module whose output the forward pass replaces (:meth:`replacing`).

    Raises
    ------
    TypeError
        If ``tensors`` is not a mapping of str to tensors, or ``token_mask`` neither a str, a tensor nor None.
    ValueError
        If it is empty, the token ids have no batch dimension, the tensors disagree on the number of inputs, the
        mask is shaped otherwise than the token ids, holds values other than 0 and 1, or is all zeros for some
        input; a ``token_mask`` key that is not in ``tensors``.

    Examples
    --------
    >>> batch = KeywordInputs({"input_ids": torch.tensor([[5, 6, 0]]), "attention_mask": torch.tensor([[1, 1, 0]])})
    >>> len(batch), batch.shape, batch[0:1].mask.tolist()
    (1, (1, 3), [[1, 1, 0]])
    """

    def __init__(self, tensors: Mapping[str, Any], token_mask: str | Tensor | None = TOKEN_MASK) -> None:
        self.tensors = _checked_tensors(tensors)
        self.mask = _checked_mask(self.tensors, token_mask)
        self.replaced: tuple[nn.Module, Tensor] | None = None

    @classmethod
    def _trusted(
        cls, tensors: dict[str, Tensor], mask: Tensor | None, replaced: tuple[nn.Module, Tensor] | None
    ) -> KeywordInputs:
        """A slice or a copy of checked inputs, not checked again."""
        batch = cls.__new__(cls)
        batch.tensors, batch.mask, batch.replaced = tensors, mask, replaced
        return batch

    def replacing(self, module: nn.Module, activation: Tensor) -> KeywordInputs:
        """These inputs with the output of ``module`` replaced by ``activation`` in the forward pass (see
        :func:`stepwise.core.hooks.run_model`): the model becomes a function of that level, the token embeddings
        of a transformer, say, which can be perturbed where token ids cannot.

        Parameters
        ----------
        module : torch.nn.Module
            A module of the model that runs once per forward pass.
        activation : Tensor of shape (B, ...)
            Its replacement output; inputs of one sentence (N = 1) are repeated B times.

        Returns
        -------
        KeywordInputs of B inputs
        """
        if len(self) == 1 and len(activation) != 1:
            tensors = {k: v.expand(len(activation), *v.shape[1:]) for k, v in self.tensors.items()}
            mask = None if self.mask is None else self.mask.expand(len(activation), *self.mask.shape[1:])
            return KeywordInputs._trusted(tensors, mask, (module, activation))
        return KeywordInputs._trusted(self.tensors, self.mask, (module, activation))

    def without_padding(self) -> KeywordInputs:
        """One input (N = 1) without its padding: every (1, T, ...) tensor keeps the real tokens of the mask only."""
        if len(self) != 1 or self.mask is None:
            return self
        real = self.mask[0] != 0
        width = len(real)
        tensors = {k: v[:, real] if v.dim() >= 2 and v.shape[1] == width else v for k, v in self.tensors.items()}
        return KeywordInputs._trusted(tensors, self.mask[:, real], self.replaced)

    @property
    def primary(self) -> Tensor:
        """The tensor that stands for the batch in messages and shapes: ``input_ids`` when present, else the first."""
        return self.tensors.get("input_ids", next(iter(self.tensors.values())))

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of :attr:`primary`, (N, T) for token ids."""
        return tuple(self.primary.shape)

    @property
    def dtype(self) -> torch.dtype:
        return self.primary.dtype

    @property
    def device(self) -> torch.device:
        return self.primary.device

    def __len__(self) -> int:
        return len(self.primary)

    def __getitem__(self, index: Any) -> KeywordInputs:
        """The inputs ``index`` selects (a slice, or a tensor or array of indices), every tensor and the mask alike."""
        if isinstance(index, numbers.Integral):
            index = slice(int(index), int(index) + 1 or None)
        mask = None if self.mask is None else self.mask[index]
        replaced = None if self.replaced is None else (self.replaced[0], self.replaced[1][index])
        return KeywordInputs._trusted({k: v[index] for k, v in self.tensors.items()}, mask, replaced)

    def to(self, device: torch.device | str) -> KeywordInputs:
        """Every tensor and the mask moved to ``device``."""
        mask = None if self.mask is None else self.mask.to(device)
        replaced = None if self.replaced is None else (self.replaced[0], self.replaced[1].to(device))
        return KeywordInputs._trusted({k: v.to(device) for k, v in self.tensors.items()}, mask, replaced)

    def is_floating_point(self) -> bool:
        return False

    def dim(self) -> int:
        return self.primary.dim()

    def element_size(self) -> int:
        return self.primary.element_size()

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {tuple(v.shape)}" for k, v in self.tensors.items())
        return f"KeywordInputs({shapes}, mask={'none' if self.mask is None else 'given'})"


def _checked_tensors(tensors: Mapping[str, Any]) -> dict[str, Tensor]:
    if not isinstance(tensors, Mapping):
        raise TypeError(f"KeywordInputs needs a dict of tensors; got {type(tensors).__name__}.")
    if not tensors:
        raise ValueError("The dict of inputs is empty: pass the tokenizer's output, e.g. {'input_ids': ..., ...}.")
    checked: dict[str, Tensor] = {}
    for key, value in tensors.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise TypeError(
                f"A dict of inputs must map names to tensors; {key!r} holds a {type(value).__name__}. Tokenize with "
                "return_tensors='pt' (a list of token lists is not a batch)."
            )
        check_has_values(value, f"inputs[{key!r}]")
        checked[key] = value
    batch = checked.get("input_ids", next(iter(checked.values())))
    if batch.dim() < 2 and batch.dtype in _INDEX_DTYPES:
        raise ValueError(
            f"The token ids of the dict of inputs have shape {tuple(batch.shape)}, without a batch dimension: a dict "
            "of inputs holds a batch, (N, T). For one sentence add the batch dimension, e.g. "
            "{k: v.unsqueeze(0) for k, v in inputs.items()}, or tokenize a list: tokenizer([text], return_tensors='pt')."
        )
    sizes = {key: tuple(value.shape) for key, value in checked.items()}
    if any(value.dim() == 0 for value in checked.values()) or len({shape[0] for shape in sizes.values()}) != 1:
        raise ValueError(
            f"The tensors of the dict of inputs must share a first (batch) dimension; got shapes {sizes}. Pass every "
            "tensor batch dimension first, as a tokenizer returns them."
        )
    if len(batch) == 0:
        raise ValueError("The dict of inputs holds no input (a batch of 0): pass at least one.")
    return checked


_INDEX_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def _checked_mask(tensors: dict[str, Tensor], token_mask: str | Tensor | None) -> Tensor | None:
    """The token mask, checked; ``None`` without one."""
    if token_mask is None:
        return None
    if isinstance(token_mask, str):
        if token_mask not in tensors:
            if token_mask == TOKEN_MASK:
                return None
            raise ValueError(
                f"token_mask={token_mask!r} is not a key of the dict of inputs, whose keys are {sorted(tensors)}: "
                "name the key of the (N, T) mask of real tokens, or pass the mask itself."
            )
        name, mask = repr(token_mask), tensors[token_mask]
    elif isinstance(token_mask, Tensor):
        name, mask = "token_mask", token_mask
    else:
        raise TypeError(
            f"token_mask must be a key of the inputs (a str), a tensor (N, T) or None; got {type(token_mask).__name__}."
        )
    ids = tensors.get("input_ids", next(iter(tensors.values())))
    if tuple(mask.shape) != tuple(ids.shape[:2]) or mask.dim() != 2:
        raise ValueError(
            f"The token mask {name} has shape {tuple(mask.shape)} but the token ids have shape {tuple(ids.shape)}: "
            "pass the mask the tokenizer returned with these ids, one 0 or 1 per token, (N, T)."
        )
    if bool(((mask != 0) & (mask != 1)).any()):
        raise ValueError(f"The token mask {name} must hold 0 (padding) and 1 (real token) only.")
    empty = torch.nonzero(mask.sum(dim=1) == 0).flatten().tolist()
    if empty:
        raise ValueError(
            f"The token mask {name} is all zeros for input(s) {empty[:5]}{' and more' if len(empty) > 5 else ''}: "
            "such an input has no real token to average over. Drop those inputs (an empty sentence) or fix the mask."
        )
    return mask.detach()


def as_batch(inputs: Any, token_mask: str | Tensor | None = TOKEN_MASK) -> Any:
    """A dict of tensors (or ``BatchEncoding``) as :class:`KeywordInputs`; anything else unchanged."""
    if isinstance(inputs, KeywordInputs):
        return inputs
    if isinstance(inputs, Mapping):
        return KeywordInputs(inputs, token_mask)
    return inputs


def input_signature(batch: Batch) -> tuple:
    """What inputs given later must share with a method's fitted inputs: the shape of one input for a tensor; the
    keys, and each tensor's dimensions after the tokens, for keyword inputs (any number of tokens fits)."""
    if isinstance(batch, KeywordInputs):
        return tuple((key, tuple(value.shape[2:])) for key, value in sorted(batch.tensors.items()))
    return tuple(batch.shape[1:])


def batch_mask(batch: object) -> Tensor | None:
    """The (N, T) token mask of a batch, or ``None`` for a tensor or inputs without one."""
    return batch.mask if isinstance(batch, KeywordInputs) else None


def token_mean(activation: Tensor, channel_dim: int, mask: Tensor | None) -> Tensor:
    """The neurons' values: the mean of each channel over every other dimension but the batch, (N, C, ...) -> (N, C).

    With a token mask and an (N, T, D) activation with ``channel_dim=2`` whose first two dimensions match the
    mask, the mean runs over the real tokens only (mask 1): padding changes no value.

    Parameters
    ----------
    activation : Tensor of shape (..., N, ...)
        Leading dimensions before the batch are allowed when ``mask`` applies (a stack of gradients, say).
    channel_dim : int
        The channel dimension, counted from the batch dimension as 0.
    mask : Tensor of shape (N, T) or None

    Returns
    -------
    Tensor of shape (..., N, C)
    """
    if is_token_level(activation, channel_dim, mask):
        assert mask is not None
        real = mask.to(device=activation.device, dtype=activation.dtype)
        weights = real / real.sum(dim=1, keepdim=True)
        return torch.matmul(weights.unsqueeze(-2), activation).squeeze(-2)  # (N, 1, T) @ (..., N, T, D)
    t = activation.movedim(channel_dim, 1)
    return t.flatten(2).mean(dim=2) if t.dim() > 2 else t


def is_token_level(activation: Tensor, channel_dim: int, mask: Tensor | None) -> bool:
    """Whether ``activation`` is an (..., N, T, D) level averaged over the real tokens of ``mask`` (N, T)."""
    return mask is not None and channel_dim == 2 and activation.dim() >= 3 and activation.shape[-3:-1] == mask.shape


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


def stack_inputs(inputs: Inputs) -> Batch:
    """One batch (N, ...) from a tensor, a dict of tensors, or an iterable of tensors, of dicts or of (x, y) batches.

    Returns
    -------
    Tensor of shape (N, ...) or KeywordInputs
        A dict of tensors (or a ``BatchEncoding``), or an iterable of them, becomes :class:`KeywordInputs`.

    Raises
    ------
    TypeError
        If ``inputs`` is neither a tensor nor a dict of tensors nor an iterable of tensors, dicts or (x, y) batches.
    ValueError
        If there is no input, or the batches do not share one input shape; inputs on the meta device; a dict that
        :class:`KeywordInputs` refuses.
    """
    if isinstance(inputs, (Tensor, KeywordInputs, Mapping)):
        data = as_batch(inputs)
    elif isinstance(inputs, Iterable) and not isinstance(inputs, (str, bytes, np.ndarray)):
        parts = []
        for item in inputs:
            x = item[0] if isinstance(item, (tuple, list)) and item else item
            if not isinstance(x, (Tensor, Mapping)):
                raise TypeError(
                    f"inputs yielded a {type(x).__name__}; expected tensors or (x, y) batches of tensors, or dicts of "
                    "tensors, as a DataLoader gives them."
                )
            parts.append(x)
        if not parts:
            raise ValueError("inputs is empty: pass at least one input.")
        data = _concatenated(parts)
    else:
        raise TypeError(
            f"inputs must be a torch.Tensor (N, ...), a dict of tensors or an iterable of tensors or (x, y) batches; "
            f"got {type(inputs).__name__}. Convert arrays with torch.as_tensor."
        )
    if data.dim() == 0 or data.shape[0] == 0:
        raise ValueError(f"inputs is empty (shape {tuple(data.shape)}): pass at least one input.")
    if isinstance(data, Tensor):
        check_has_values(data, "inputs")
    return data


def _concatenated(parts: list) -> Batch:
    """The batches of an iterable, concatenated: tensors, or dicts of tensors key by key."""
    dicts = [isinstance(part, Mapping) for part in parts]
    if any(dicts) and not all(dicts):
        raise ValueError("inputs yielded both dicts and tensors: pass batches of one kind.")
    if all(dicts) and any(list(part) != list(parts[0]) for part in parts):
        raise ValueError("inputs yielded dicts with different keys: pass batches with the same keys.")
    try:
        if all(dicts):
            batches = [KeywordInputs(part) for part in parts]
            return KeywordInputs({k: torch.cat([b.tensors[k] for b in batches]) for k in parts[0]})
        return torch.cat(parts)
    except RuntimeError as error:
        raise ValueError(
            f"The batches of inputs do not share one input shape ({error}): pass batches of one input shape, batch "
            "dimension first (pad every batch of token ids to one length, e.g. the tokenizer's padding='max_length')."
        ) from error


def check_batch(inputs: object, model: nn.Module, what: str = "inputs") -> Batch:
    """``inputs`` if it is a non-empty tensor (N, ...) of finite values in the model's floating dtype, else raise.

    A dict of tensors (or a ``BatchEncoding``) is returned as :class:`KeywordInputs`, after its own checks.

    Raises
    ------
    TypeError
        If ``inputs`` is not a tensor.
    ValueError
        If it is empty, on the meta device, holds NaN or Inf values (the message counts the inputs), or has another
        floating dtype than the model; a model on the meta device.
    """
    if isinstance(inputs, (Mapping, KeywordInputs)):
        check_model_has_values(model)
        return as_batch(inputs)
    if not isinstance(inputs, Tensor):
        raise TypeError(
            f"{what} must be a torch.Tensor of shape (N, ...) or a dict of tensors; got {type(inputs).__name__}. Convert arrays with "
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
