"""Parameter checks shared by every public entry point of ``stepwise`` and ``perturb``.

Every check raises with one message template, modelled on scikit-learn's::

    The 'branching' parameter of StepwiseSensitivity must be an int in the range [1, inf). Got 0 instead.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable
from typing import Any

__all__ = ["check_int", "check_float", "check_option", "check_bool", "unknown_name_message"]


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
