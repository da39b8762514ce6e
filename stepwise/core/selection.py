"""Which inputs explain a class: those the model classifies correctly and confidently.

The SSA paper built each class's graph from training images "correctly classified with probability above 99 %".
:func:`select_inputs` makes that choice for any classifier: per class, the inputs whose label is the class (or,
without labels, whose predicted class it is), that the model predicts as that class with a softmax probability of
at least ``min_probability``, the first ``max_per_class`` of them in input order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from stepwise.core.hooks import analysis_mode, model_device_dtype, run_model
from stepwise.core.inputs import Batch, KeywordInputs, as_batch
from stepwise.core.validation import check_float, check_int

__all__ = ["class_probabilities", "select_from_probabilities", "select_inputs"]

_OWNER = "select_inputs"
_BATCH = 256
_PROBE = 2  # inputs of the checking pass


def _check_inputs(inputs: object, owner: str) -> Batch:
    inputs = as_batch(inputs)
    if not isinstance(inputs, (Tensor, KeywordInputs)):
        raise TypeError(
            f"The 'inputs' parameter of {owner} must be a Tensor of shape (N, ...) or a dict of tensors. Got "
            f"{type(inputs).__name__} instead: stack the inputs with torch.stack."
        )
    if inputs.dim() < 1 or len(inputs) == 0:
        raise ValueError(
            f"The 'inputs' parameter of {owner} must hold at least one input, batch dimension first. Got shape "
            f"{tuple(inputs.shape)} instead."
        )
    return inputs


def _check_labels(labels: object, n_inputs: int, owner: str) -> Tensor | None:
    if labels is None:
        return None
    if not isinstance(labels, Tensor):
        try:
            labels = torch.as_tensor(labels)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                f"The 'labels' parameter of {owner} must be a Tensor of integer class indices, shape (N,). Got "
                f"{type(labels).__name__} instead."
            ) from None
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex() or labels.dim() != 1:
        raise ValueError(
            f"The 'labels' parameter of {owner} must hold one integer class index per input, shape (N,). Got "
            f"{labels.dtype} of shape {tuple(labels.shape)} instead."
        )
    if len(labels) != n_inputs:
        raise ValueError(f"Found {len(labels)} labels for {n_inputs} inputs: pass one label per input.")
    return labels.to(device="cpu", dtype=torch.int64)


def _check_classes(classes: object, owner: str) -> list[int] | None:
    if classes is None:
        return None
    listed = [classes] if isinstance(classes, int) and not isinstance(classes, bool) else classes
    if isinstance(listed, Tensor):
        listed = listed.flatten().tolist()
    if not isinstance(listed, Sequence) or isinstance(listed, str) or not listed:
        raise TypeError(
            f"The 'classes' parameter of {owner} must be a class index or a non-empty sequence of them. Got "
            f"{classes!r} instead."
        )
    return sorted({check_int(c, "classes", owner, low=0) for c in listed})


def class_probabilities(
    model: nn.Module,
    inputs: Tensor | Mapping[str, Tensor],
    *,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Tensor:
    """The softmax of the model's class scores for every input, in batches, without gradients.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier whose output is class scores (logits) of shape (N, C), C >= 2. It runs in eval mode (a
        model in train mode is switched for the call, with a warning, and restored).
    inputs : Tensor of shape (N, ...), or dict of str to Tensor
        A dict (a tokenizer's output) is passed as keyword arguments. Floating-point inputs are moved to the model's device and dtype one batch at a time.
    batch_size : int, optional
        Inputs per forward pass; 256 by default.
    progress : callable, optional
        Called with the number of inputs of each finished batch.

    Returns
    -------
    Tensor of shape (N, C), float64, on the CPU
        Each row sums to 1.

    Raises
    ------
    ValueError
        If the model's output is not of shape (N, C) with C >= 2, or the model fails on the inputs.
    """
    inputs = _check_inputs(inputs, "class_probabilities")
    size = _BATCH if batch_size is None else check_int(batch_size, "batch_size", "class_probabilities", low=1)
    with analysis_mode(model, owner="class_probabilities"):
        return _probabilities(model, inputs, size, progress)


def _probabilities(model: nn.Module, inputs: Batch, size: int, progress: Callable[[int], None] | None) -> Tensor:
    """:func:`class_probabilities` on a model already in analysis mode."""
    device, dtype = model_device_dtype(model)
    parts = []
    with torch.no_grad():
        for start in range(0, len(inputs), size):
            batch = inputs[start : start + size]
            batch = batch.to(device=device, dtype=dtype) if dtype and batch.is_floating_point() else batch.to(device)
            output = run_model(model, batch)
            if not (isinstance(output, Tensor) and output.dim() == 2 and output.shape[1] >= 2):
                shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
                raise ValueError(
                    f"The model returns {shape} on a batch of {len(batch)} inputs; selecting inputs by class needs "
                    "class scores of shape (N, C) with C >= 2 (the logits of a classifier)."
                )
            parts.append(torch.softmax(output.detach().to("cpu", torch.float64), dim=1))
            if progress is not None:
                progress(len(batch))
    return torch.cat(parts)


def select_from_probabilities(
    probabilities: Tensor,
    labels: Tensor | None = None,
    *,
    classes: Sequence[int] | None = None,
    min_probability: float = 0.99,
    max_per_class: int = 100,
) -> dict[int, Tensor]:
    """:func:`select_inputs` on class probabilities already computed (e.g. by :func:`class_probabilities`).

    Parameters
    ----------
    probabilities : Tensor of shape (N, C)
    labels : Tensor of shape (N,), optional
    classes, min_probability, max_per_class
        As in :func:`select_inputs`.

    Returns
    -------
    dict of int to Tensor of shape (k,), int64
        As :func:`select_inputs`.
    """
    owner = "select_from_probabilities"
    if not isinstance(probabilities, Tensor) or probabilities.dim() != 2 or probabilities.shape[1] < 2:
        shape = tuple(probabilities.shape) if isinstance(probabilities, Tensor) else type(probabilities).__name__
        raise ValueError(f"The 'probabilities' parameter of {owner} must be of shape (N, C), C >= 2. Got {shape}.")
    n_classes = probabilities.shape[1]
    labels = _check_labels(labels, len(probabilities), owner)
    chosen = _check_classes(classes, owner)
    min_probability = check_float(min_probability, "min_probability", owner, low=0.0, high=1.0)
    max_per_class = check_int(max_per_class, "max_per_class", owner, low=1)
    _check_range(labels, chosen, n_classes, owner)
    predicted = probabilities.argmax(dim=1).cpu()
    own = predicted if labels is None else labels
    if chosen is None:
        chosen = sorted(int(c) for c in own.unique())
    confidence = probabilities.gather(1, predicted[:, None].to(probabilities.device)).flatten().cpu()
    qualifies = (own == predicted) & (confidence >= min_probability)
    return {c: (qualifies & (predicted == c)).nonzero().flatten()[:max_per_class] for c in chosen}


def _check_range(labels: Tensor | None, classes: list[int] | None, n_classes: int, owner: str) -> None:
    if labels is not None and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(
            f"The labels run from {int(labels.min())} to {int(labels.max())}, but the model scores {n_classes} "
            f"classes (0 to {n_classes - 1}): pass labels that index the model's classes."
        )
    wrong = [c for c in classes or () if c >= n_classes]
    if wrong:
        raise ValueError(
            f"The 'classes' parameter of {owner} names {wrong}, but the model scores {n_classes} classes (0 to "
            f"{n_classes - 1})."
        )


def select_inputs(
    model: nn.Module,
    inputs: Tensor | Mapping[str, Tensor],
    labels: Tensor | None = None,
    *,
    classes: int | Sequence[int] | None = None,
    min_probability: float = 0.99,
    max_per_class: int = 100,
    batch_size: int | None = None,
) -> dict[int, Tensor]:
    """The inputs of each class that the model classifies correctly with at least ``min_probability``.

    An input qualifies for class c when its label is c (without labels: when the model predicts c), the model's
    predicted class is c, and the softmax of the model's output gives c a probability of at least
    ``min_probability``. Each class keeps its first ``max_per_class`` qualifying inputs, in input order.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier whose output is class scores (logits) of shape (N, C), C >= 2; run in eval mode, in batches,
        without gradients.
    inputs : Tensor of shape (N, ...), or dict of str to Tensor
        A dict (a tokenizer's output, :class:`~stepwise.core.inputs.KeywordInputs`) is passed as keyword arguments.
    labels : Tensor of shape (N,), optional
        Integer class indices in [0, C). Without labels, an input's class is the model's prediction.
    classes : int or sequence of int, optional
        The classes to select for. By default, every class present: in the labels, or without labels, among the
        predicted classes.
    min_probability : float in [0, 1], default=0.99
        The paper's "correctly classified with probability above 99 %".
    max_per_class : int >= 1, default=100
    batch_size : int, optional
        Inputs per forward pass; 256 by default.

    Returns
    -------
    dict of int to Tensor of shape (k,), int64
        For each class (ascending), the positions in ``inputs`` of its ``k <= max_per_class`` qualifying inputs,
        ascending; ``k`` is 0 for a class asked for that no input qualifies for.

    Raises
    ------
    TypeError
        If ``inputs`` is not a tensor, or an argument is of the wrong type.
    ValueError
        If an argument is out of range, the labels do not match the inputs or the model's classes, or the model's
        output is not class scores; the arguments are checked before the forward passes, the classes and labels
        against the model's number of classes after a checking pass on two inputs.

    Examples
    --------
    >>> from stepwise.models import digits_cnn, digits_data
    >>> data = digits_data()
    >>> chosen = select_inputs(digits_cnn(), data.images[:50], data.labels[:50], classes=[0, 1], max_per_class=3)
    >>> {c: index.tolist() for c, index in chosen.items()}
    {0: [0, 10, 20], 1: [1, 11, 21]}
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"The 'model' parameter of {_OWNER} must be a torch.nn.Module. Got {type(model).__name__} instead."
        )
    inputs = _check_inputs(inputs, _OWNER)
    labels = _check_labels(labels, len(inputs), _OWNER)
    chosen = _check_classes(classes, _OWNER)
    min_probability = check_float(min_probability, "min_probability", _OWNER, low=0.0, high=1.0)
    max_per_class = check_int(max_per_class, "max_per_class", _OWNER, low=1)
    if batch_size is not None:
        check_int(batch_size, "batch_size", _OWNER, low=1)
    size = _BATCH if batch_size is None else batch_size
    with analysis_mode(model, owner=_OWNER):
        # two inputs first: the model's output and its number of classes, checked against the labels and the
        # classes before the forward passes over all inputs
        first = _probabilities(model, inputs[:_PROBE], _PROBE, None)
        _check_range(labels, chosen, first.shape[1], _OWNER)
        rest = [_probabilities(model, inputs[_PROBE:], size, None)] if len(inputs) > _PROBE else []
    probabilities = torch.cat([first, *rest])
    return select_from_probabilities(
        probabilities, labels, classes=chosen, min_probability=min_probability, max_per_class=max_per_class
    )
