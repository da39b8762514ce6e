"""The checks of :class:`~stepwise.inference.InferenceGraphs`' arguments, and the resolution of its levels."""

from __future__ import annotations


import numbers
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from stepwise.core.hooks import model_device_dtype
from stepwise.core.inputs import Batch, KeywordInputs, input_signature
from stepwise.core.levels import INPUT, OUTPUT, SOFTMAX, resolve_levels
from stepwise.core.validation import NotFittedError, check_int, unknown_name_message

from .columns import Level, count_columns

__all__ = [
    "NotFittedError",
    "check_labels",
    "check_levels",
    "check_like",
    "check_seed",
    "check_target",
    "numbers_of_words",
    "resolve",
]

_PROBE = 2  # inputs of the forward pass that checks the levels


def check_levels(levels: object) -> list[str] | None:
    """``levels`` as a list of names, or None."""
    if levels is None:
        return None
    if isinstance(levels, str) or not isinstance(levels, Sequence) or not all(isinstance(n, str) for n in levels):
        raise TypeError(
            f"levels must be a list of level names bottom to top (or None for the defaults); got {levels!r}. "
            "See stepwise.list_levels(model, example_input)."
        )
    if not levels:
        raise ValueError("levels is empty: name at least one level to model, or pass None for the defaults.")
    return list(levels)


def check_seed(seed: object, owner: str) -> int:
    """An int seed from an int, a numpy or torch generator (which advance), or None (drawn from the system)."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2**31 - 1))
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**31 - 1))
    if isinstance(seed, torch.Generator):
        return int(torch.randint(2**31 - 1, (1,), generator=seed).item())
    return check_int(seed, "seed", owner, low=0, high=2**63 - 1)


def check_labels(labels: object, n: int) -> Tensor | None:
    """One int class (at least 0) per input, as a LongTensor on the CPU, or None."""
    if labels is None:
        return None
    values = labels.detach().cpu() if isinstance(labels, Tensor) else torch.as_tensor(np.asarray(labels))
    if values.dim() != 1 or values.is_floating_point() or values.is_complex() or values.dtype == torch.bool:
        raise TypeError(
            f"labels must be one int class per input, shape ({n},); got {values.dtype} of shape {tuple(values.shape)}."
        )
    if len(values) != n:
        raise ValueError(f"Found {len(values)} labels for {n} inputs: pass one label per input.")
    if len(values) and int(values.min()) < 0:
        raise ValueError(f"labels must be class indices of at least 0; found {int(values.min())}.")
    return values.to(torch.int64)


def check_like(inputs: Batch, signature: tuple, what: str, fitted: str) -> Batch:
    """``inputs`` if they are of the kind and shape of inputs of ``signature`` (:func:`input_signature`), else raise:
    a tensor of the same shape per input, or keyword inputs with the same keys (of any number of tokens)."""
    if input_signature(inputs) == signature:
        return inputs
    keyword = bool(signature) and isinstance(signature[0], tuple) and isinstance(signature[0][0], str)
    if keyword and not isinstance(inputs, KeywordInputs):
        raise TypeError(f"{what} are a tensor, but {fitted} were a dict of tensors: pass a dict with the same keys.")
    if not keyword and isinstance(inputs, KeywordInputs):
        raise TypeError(f"{what} are a dict of tensors, but {fitted} were one tensor (N, ...): pass a tensor.")
    if keyword:
        raise ValueError(
            f"{what} hold the tensors {input_signature(inputs)} (key, shape after the tokens), but {fitted} held "
            f"{signature}: pass the same keys, as the same tokenizer returns them."
        )
    raise ValueError(
        f"{what} have shape {input_signature(inputs)} per input, but {fitted} had {signature}: pass {what} shaped "
        f"as {fitted}."
    )


def check_target(target: object, n_classes: int) -> int:
    """``target`` as an int class of ``n_classes``, else raise."""
    if isinstance(target, bool) or not isinstance(target, numbers.Integral):
        raise TypeError(f"target must be an int class; got {target!r} ({type(target).__name__}).")
    if not 0 <= int(target) < n_classes:
        raise ValueError(
            f"target={target}, but the model scores {n_classes} classes (0 to {n_classes - 1}): pass one of them."
        )
    return int(target)


def resolve(model: nn.Module, inputs: Batch, names: list[str] | None) -> tuple[list[Level], int]:
    """The modelled levels (``softmax`` on top, the class output's fixed mixture) from one probing pass.

    Returns
    -------
    levels : list of Level
    n_classes : int
    """
    device, _ = model_device_dtype(model)
    probe = inputs[:_PROBE].to(device)
    if names is None:
        infos = resolve_levels(model, probe, None)
        if infos[-1].name != SOFTMAX:
            raise ValueError(
                f"{type(model).__name__} does not return class scores (N, C), C >= 2, so the top of an inference "
                "graph (the predicted class) is undefined: wrap the model so that it returns class scores."
            )
    else:
        if OUTPUT in names:
            raise ValueError(
                "The top of an inference graph is the class output 'softmax' (the paper's fixed mixture over the "
                "predicted class); replace 'output' by 'softmax' in levels, or leave it out: it is added on top."
            )
        listed = names if names[-1] == SOFTMAX else [*names, SOFTMAX]
        if listed == [SOFTMAX]:
            raise ValueError("levels names only 'softmax': name at least one level below it to model.")
        infos = resolve_levels(model, probe, listed)
    levels = []
    for info in infos:
        level = Level(info, fixed=info.name == SOFTMAX)
        if info.name != INPUT and info.channel_dim != 1 and not level.tokens:
            raise ValueError(
                f"Level {info.name!r} has its channels in dimension {info.channel_dim}; only 1 is modelled, and 2 "
                "on the token levels (N, T, D) of inputs given as a dict."
            )
        if isinstance(inputs, KeywordInputs) and not level.tokens and not level.dense:
            raise ValueError(
                f"Level {info.name!r} has shape {info.shape} per input of a dict of token ids, positions that are "
                "not its tokens (N, T, D): their padding cannot be told apart. Model the token levels (N, T, D) and "
                "dense levels (N, D) of such inputs."
            )
        levels.append(level)
    if len(levels) < 2:
        raise ValueError("An inference graph needs at least one level below the class output 'softmax'.")
    return levels, int(infos[-1].shape[0])


def numbers_of_words(
    n_words: int | dict[str, int], levels: list[Level], inputs: Batch, n_classes: int
) -> dict[str, int]:
    """K of every level (the class output: one word per class), checked against the levels and their columns."""
    hidden = [level.name for level in levels if not level.fixed]
    if isinstance(n_words, dict):
        unknown = [name for name in n_words if name not in hidden]
        if unknown:
            fix = f"n_words names the modelled levels below the top, {hidden}."
            raise ValueError(unknown_name_message("level", unknown[0], "the modelled levels", hidden, fix))
        missing = [name for name in hidden if name not in n_words]
        if missing:
            raise ValueError(f"n_words gives no K for the level(s) {missing}: give one K per level {hidden}.")
        ks = dict(n_words)
    else:
        ks = dict.fromkeys(hidden, n_words)
    for level in levels:
        if level.fixed:
            continue
        columns = count_columns(level, inputs)
        if ks[level.name] > columns:
            where = "real tokens" if level.tokens else f"{len(inputs)} inputs x {level.positions} positions"
            raise ValueError(
                f"n_words={ks[level.name]} for level {level.name!r} is more words than its {columns} columns "
                f"({where}): pass more inputs or fewer words."
            )
    ks[levels[-1].name] = n_classes
    return ks
