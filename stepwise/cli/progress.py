"""Progress bars, notes and warnings on stderr, and the time each stage of a command took.

Bars and notes are silenced by ``--quiet``; warnings are not (a class skipped, or explained from few inputs,
changes what the results mean). tqdm is imported only when a bar is drawn.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["Progress"]


class Progress:
    """What a command tells the user while it runs, and its stage timings (seconds, for ``timings.json``).

    Parameters
    ----------
    quiet : bool
        No bars and no notes; warnings still show.
    command : str
        The command's name, in front of every warning: ``stepwise analyse: warning: ...``.
    """

    def __init__(self, quiet: bool, command: str = "") -> None:
        self.quiet = quiet
        self.command = command
        self.timings: dict[str, float] = {}
        self.warnings: list[str] = []
        self._bars = 0

    def _write(self, text: str) -> None:
        if self._bars:  # between the lines of an open bar
            from tqdm.auto import tqdm

            tqdm.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        """A line on stderr unless ``quiet``."""
        if not self.quiet:
            self._write(text)

    def warn(self, text: str) -> None:
        """A warning on stderr, ``quiet`` or not; kept in :attr:`warnings` for the summary."""
        self.warnings.append(text)
        prefix = f"stepwise {self.command}" if self.command else "stepwise"
        self._write(f"{prefix}: warning: {text}")

    @contextlib.contextmanager
    def bar(self, total: int, desc: str) -> Iterator[Any]:
        """A progress bar of ``total`` steps on stderr (a stand-in that does nothing when ``quiet``)."""
        if self.quiet:
            yield _NoBar()
            return
        from tqdm.auto import tqdm

        self._bars += 1
        try:
            with tqdm(total=total, desc=desc, file=sys.stderr, leave=False) as bar:
                yield bar
        finally:
            self._bars -= 1

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Add the time spent in the block to the stage ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


class _NoBar:
    """What :meth:`Progress.bar` yields under ``--quiet``: every call does nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass
