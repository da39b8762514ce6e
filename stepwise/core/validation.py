"""Parameter checks shared by every public entry point of ``stepwise`` and ``perturb``.

Every check raises with one message template, modelled on scikit-learn's::

    The 'branching' parameter of StepwiseSensitivity must be an int in the range [1, inf). Got 0 instead.

This module imports no torch (:mod:`stepwise.graphs` uses it): tensors and arrays are recognised by the
protocols they share with Python's numbers (``numbers.Integral``, ``operator.index``, ``ndim``).
"""

from __future__ import annotations

import difflib
import math
import numbers
import operator
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "check_int",
    "check_float",
    "check_option",
    "check_bool",
    "check_neurons",
    "unknown_name_message",
    "NotFittedError",
]


class NotFittedError(ValueError, AttributeError):
    """A fitted attribute, or a method that needs one, was used before ``fit`` (as scikit-learn's)."""


def _interval(low: float | None, high: float | None, closed_low: bool, closed_high: bool) -> str:
    left = "[" if closed_low and low is not None else "("
    right = "]" if closed_high and high is not None else ")"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"{left}{lo}, {hi}{right}"


def check_int(value: Any, name: str, owner: str, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int, or raise if it is not an int in ``[low, high]``.

    Raises
    ------
    TypeError
        If ``value`` is not an integer (a bool is not accepted).
    ValueError
        If ``value`` lies outside ``[low, high]``.
    """
    rule = f"must be an int in the range {_interval(low, high, True, True)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"The {name!r} parameter of {owner} {rule}. Got {value!r} instead.")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"The {name!r} parameter of {owner} {rule}. Got {value!r} instead.")
    return int(value)


def check_float(
    value: Any,
    name: str,
    owner: str,
    *,
    low: float | None = None,
    high: float | None = None,
    closed_low: bool = True,
    closed_high: bool = True,
) -> float:
    """Return ``value`` as a finite float, or raise if it is not a real number in the interval.

    Raises
    ------
    TypeError
        If ``value`` is not a real number.
    ValueError
        If ``value`` is NaN, infinite or outside the interval.
    """
    rule = f"must be a float in the range {_interval(low, high, closed_low, closed_high)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"The {name!r} parameter of {owner} {rule}. Got {value!r} instead.")
    value = float(value)
    below = low is not None and (value < low or (not closed_low and value == low))
    above = high is not None and (value > high or (not closed_high and value == high))
    if not math.isfinite(value) or below or above:
        raise ValueError(f"The {name!r} parameter of {owner} {rule}. Got {value!r} instead.")
    return value


def check_option(value: Any, name: str, owner: str, options: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``options``, else raise ``ValueError`` listing them."""
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        listed = "{" + ", ".join(repr(o) for o in options) + "}"
        hint = ""
        if isinstance(value, str):
            close = difflib.get_close_matches(value, options, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"The {name!r} parameter of {owner} must be one of {listed}. Got {value!r} instead.{hint}")
    return value


def check_bool(value: Any, name: str, owner: str) -> bool:
    """Return ``value`` if it is a bool, else raise ``TypeError``."""
    if not isinstance(value, bool):
        raise TypeError(f"The {name!r} parameter of {owner} must be a bool. Got {value!r} instead.")
    return value


def unknown_name_message(kind: str, name: str, where: str, valid: Iterable[str], fix: str) -> str:
    """Build the message for a name that matches nothing: close matches first, then how to list valid names."""
    valid = list(valid)
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"No {kind} {name!r} in {where}.{hint} {fix}"


def _neuron_index(value: Any) -> int | None:
    """``value`` as an int when it is one integer index (int, numpy integer, 0-d integer tensor), else None.

    Booleans (Python, numpy or tensor) are not indices, although ``operator.index`` accepts a bool tensor.
    """
    if isinstance(value, bool) or str(getattr(value, "dtype", "")) in ("bool", "torch.bool"):
        return None
    if getattr(value, "ndim", 0) != 0:  # a one-element tensor converts too, but it is a sequence
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_neurons(
    neurons: Any, n_neurons: int, *, level: str, owner: str | None = None, name: str = "neurons"
) -> list[int]:
    """Return neuron indices of one level as a list of ints, or raise saying what is wrong and how to fix it.

    Parameters
    ----------
    neurons : int or sequence of int
        One index or several: Python ints, numpy integers, integer tensors or arrays of shape () or (k,).
        Order and repeats are kept.
    n_neurons : int
        The number of neurons (channels or units) of the level; valid indices are ``0`` to ``n_neurons - 1``
        (a negative index does not count from the end).
    level : str
        The level's name, for the messages.
    owner : str, optional
        The public function or method to name in the messages.
    name : str, default='neurons'
        The parameter that holds the indices.

    Returns
    -------
    list of int
        Of length k >= 1.

    Raises
    ------
    TypeError
        If ``neurons`` is neither an index nor a sequence of them (a str, a float, a mapping), or holds
        something other than integers (floats, bools).
    ValueError
        If ``neurons`` is empty, has more than one dimension, or holds an index out of range.

    Examples
    --------
    >>> check_neurons(3, 8, level="features.3")
    [3]
    >>> check_neurons([0, 7, 0], 8, level="features.3")
    [0, 7, 0]
    """
    parameter = f"the {name!r} parameter" + (f" of {owner}" if owner else "")
    subject = "T" + parameter[1:]
    example = f"for example {min(3, n_neurons - 1)} or [0, {n_neurons - 1}]" if n_neurons > 0 else "for example 0"
    ndim = getattr(neurons, "ndim", None)  # tensors and arrays
    if _neuron_index(neurons) is not None:
        values: list[Any] = [neurons]
    elif ndim is not None and ndim > 1:
        raise ValueError(
            f"{subject} must be one neuron index or a one-dimensional sequence of them, but it has "
            f"shape {tuple(neurons.shape)}. Flatten it first, e.g. {name}.flatten()."
        )
    elif ndim != 0 and isinstance(neurons, Iterable) and not isinstance(neurons, (str, bytes, Mapping)):
        values = neurons.tolist() if ndim == 1 else list(neurons)  # a tensor or an array yields Python numbers
    else:  # a str, a float, a mapping, a 0-d tensor or array of floats or bools, ...
        raise TypeError(
            f"{subject} must be an int or a sequence of ints. Got {neurons!r} "
            f"({type(neurons).__name__}) instead. Pass neuron indices of level {level!r}, {example}."
        )
    if not values:
        raise ValueError(f"{subject} is empty: name at least one neuron of level {level!r}, {example}.")
    checked = []
    for position, value in enumerate(values):
        index = _neuron_index(value)
        if index is None:
            raise TypeError(
                f"{name} must be ints, but entry {position} of {parameter} is {value!r} ({type(value).__name__}). "
                f"Pass integer indices, {example}"
                + (" (int() converts a float that holds a whole number)." if isinstance(value, float) else ".")
            )
        if not 0 <= index < n_neurons:
            raise ValueError(
                f"Neuron {index} is out of range for level {level!r}, which has {n_neurons} neurons "
                f"(0 to {n_neurons - 1}): pass indices from 0 to {n_neurons - 1} (a negative index does not count "
                "from the end)."
            )
        checked.append(index)
    return checked
