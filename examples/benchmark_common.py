"""What the benchmark scripts share: a clock of wall and CPU time, and the peak memory of the process."""

from __future__ import annotations

import resource
import time

__all__ = ["Clock", "peak_rss_mb"]


class Clock:
    """Wall-clock and process CPU time of a block (``with Clock() as clock: ...``, then ``clock.wall``,
    ``clock.cpu`` in seconds); CPU time is what other processes on the machine disturb least."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def peak_rss_mb() -> float:
    """The peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
