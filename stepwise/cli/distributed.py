"""The options that run a command's classes on many workers: ``--workers N`` (a local Dask cluster of N worker
processes) or ``--scheduler ADDRESS`` (an existing Dask cluster), and the executor they name.

:func:`add_options` adds them to a sub-parser; :func:`executor_from` opens what they name for the length of a
``with`` block (starting and closing the local cluster, or connecting to the scheduler and disconnecting) and
gives the executor to pass as ``executor=`` (``None`` without either option: this process). Dask's
``distributed`` is imported only when one of the options is given.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from concurrent.futures import Executor

from stepwise.cli.options import UsageError, positive_int

__all__ = ["add_options", "executor_from"]

_INSTALL = "pip install 'stepwise-interpret[dask]' (or pip install distributed)"


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--workers`` and ``--scheduler`` (one or the other) to ``parser``."""
    group = parser.add_argument_group("many workers (Dask)")
    either = group.add_mutually_exclusive_group()
    either.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="run the classes on a local Dask cluster of N worker processes of one thread each (on this machine, "
        f"listening on 127.0.0.1 only); needs {_INSTALL}",
    )
    either.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the classes on the Dask cluster whose scheduler is at ADDRESS (for example tcp://10.0.0.5:8786); "
        "its workers must be able to import the model's module",
    )


def _distributed() -> object:
    try:
        import distributed
    except ImportError:
        raise UsageError(f"--workers and --scheduler need Dask's distributed: {_INSTALL}.") from None
    return distributed


@contextlib.contextmanager
def executor_from(args: argparse.Namespace) -> Iterator[Executor | None]:
    """The executor that ``--workers`` or ``--scheduler`` names, open for the ``with`` block.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser that :func:`add_options` extended.

    Yields
    ------
    concurrent.futures.Executor or None
        A Dask client's executor, or ``None`` (this process) without either option.

    Raises
    ------
    UsageError
        If ``distributed`` is not installed, or the scheduler cannot be reached (the command exits with status 2).
    """
    workers, address = getattr(args, "workers", None), getattr(args, "scheduler", None)
    if workers is None and address is None:
        yield None
        return
    distributed = _distributed()
    with contextlib.ExitStack() as stack:
        if workers is not None:
            cluster = stack.enter_context(
                distributed.LocalCluster(  # type: ignore[attr-defined]
                    n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
                )
            )
            client = stack.enter_context(distributed.Client(cluster))  # type: ignore[attr-defined]
        else:
            try:
                client = stack.enter_context(distributed.Client(address, timeout=30))  # type: ignore[attr-defined]
            except (OSError, TimeoutError) as error:
                raise UsageError(
                    f"--scheduler {address}: cannot reach a Dask scheduler there ({error}). Check the address "
                    "(tcp://HOST:PORT, the port the scheduler prints) and that this machine can reach it."
                ) from error
        yield client.get_executor(pure=False)
