"""Lazy re-exports: a package names its public objects, and each module is imported on first use.

``import stepwise`` then costs almost nothing; ``stepwise.StepwiseSensitivity`` imports torch and the SSA
modules when it is first read, and ``import stepwise.graphs`` never imports torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of a package that re-exports names lazily (PEP 562).

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : mapping of str to str
        Each public name to the module that defines it (absolute), or to ``""`` for a sub-module of the
        package of that name.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = exports[name]
        value = (
            importlib.import_module(f"{package}.{name}")
            if not module
            else getattr(importlib.import_module(module), name)
        )
        globals_ = importlib.import_module(package).__dict__
        globals_[name] = value  # later reads skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(importlib.import_module(package).__dict__) | set(exports))

    return __getattr__, __dir__
