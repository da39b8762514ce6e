"""Per-key jobs (one per class, one per input) in this process, on a ``concurrent.futures`` executor or on Dask.

:func:`run_per_key` runs ``work(shared, key, argument)`` for every key and returns the results by key, in the
order of the keys, whatever order they finish in. What it shares with every loop of the library:

- **Where.** ``executor=None`` runs in this process, one key after the other, with the caller's objects. Any
  :class:`concurrent.futures.Executor` runs the keys as tasks: a :class:`~concurrent.futures.ProcessPoolExecutor`,
  a :class:`~concurrent.futures.ThreadPoolExecutor`, or Dask's ``distributed.Client(...).get_executor()``; a
  ``distributed.Client`` itself is accepted (its executor is taken). Dask is recognised by the module of the
  object's type, so nothing here imports it unless it was given.
- **Shipped once.** The object every task needs (the model and the settings) is not copied per key. A Dask
  cluster receives it once per worker (scattered, broadcast) and keeps it for the run. A process pool sends it
  with each task through torch's reductions (:mod:`torch.multiprocessing`): its tensors are moved to shared memory
  once (in place: the model's values do not change) and every task carries handles to them, so that all the
  workers of the machine read one copy of the weights. Where tasks of one process run at once (a thread pool,
  a Dask worker of several threads) each thread works on a copy of its own, made once, so that two traversals
  never share one model's hooks. A task carries its key and its own argument (a class's inputs), and returns
  plain results (graphs, rankings), never hooks.
- **Threads.** Where workers share the cores of a machine, each task sets torch to its share of them: the cores
  divided by the worker processes of a pool, or by the worker threads Dask runs on that host (one thread per task
  for a cluster of one-thread workers on as many cores). A float32 forward pass can round differently with another
  number of threads, so a serial run gives the same bytes when it runs with the same number of threads.
- **Nothing lost.** With a :class:`ResultFolder`, each result is written atomically as it arrives, and a rerun
  returns the results already there without computing them; a folder made with other settings is refused. A key
  that fails does not stop the others: the failures are raised together at the end, as :class:`KeyFailures`,
  with the results that finished. When a Dask worker dies, Dask runs its task again on another worker.
- **Warnings** raised in a task are raised again here, naming the key (``class 3: ...``), where the worker runs
  one task at a time (this process, a process pool, Dask workers of one thread); a thread pool's show as they
  are raised, and a Dask worker of several threads logs them.
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import json
import os
import threading
import uuid
import warnings
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler
from os import PathLike
from pathlib import Path
from typing import Any, Generic, TypeVar

from stepwise.core.io import write_file

__all__ = ["KeyFailures", "ResultFolder", "check_executor", "check_result_folder", "run_per_key"]

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")

FORMAT = "stepwise-results"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: Tasks handed to an executor of unknown size at once; the others wait for a free slot.
_WINDOW = 16
_FIX = "Delete the folder (or the files in it) to start afresh, or pass another checkpoint_dir."


# ------------------------------------------------------------------------------------------------ executors


def _from_distributed(value: object) -> bool:
    """Whether ``value``'s type comes from Dask's ``distributed`` package (read from the type, not imported)."""
    return type(value).__module__.split(".")[0] == "distributed"


def check_executor(executor: object, owner: str) -> cf.Executor | None:
    """``executor`` as a :class:`concurrent.futures.Executor`, or ``None`` for this process.

    Parameters
    ----------
    executor : None, concurrent.futures.Executor or distributed.Client
        A Dask client gives its ``get_executor()``.
    owner : str
        The public function that takes it, named in the error message.

    Returns
    -------
    concurrent.futures.Executor or None

    Raises
    ------
    TypeError
        For anything else, saying what is accepted.
    """
    if executor is None:
        return None
    if _from_distributed(executor) and callable(getattr(executor, "get_executor", None)):
        return executor.get_executor(pure=False)  # type: ignore[attr-defined]
    if isinstance(executor, cf.Executor):
        return executor
    raise TypeError(
        f"The 'executor' parameter of {owner} must be None (run in this process), a concurrent.futures.Executor "
        "(for example concurrent.futures.ProcessPoolExecutor(4), or distributed.Client(address).get_executor()) "
        f"or a distributed.Client. Got {type(executor).__name__} instead."
    )


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class _Setup:
    """How a task runs on its worker: how many torch threads it takes (a number, or the share of its Dask worker's
    host), whether its warnings are caught to be raised again by the caller, and whether it works on a copy of the
    shared object of its own thread. Warnings are caught, and the shared object used as it is, only where the
    tasks of one process never run at once: catching warnings changes state that every thread of a process
    shares, and two traversals at once on one model would mix their hooks."""

    fixed: int | None = None
    slots_per_host: dict[str, int] | None = None  # Dask: worker threads per host
    alone: bool = True  # one task at a time in the worker's process

    def resolve(self) -> tuple[int | None, bool]:
        if self.slots_per_host is None:
            return self.fixed, self.alone
        from distributed import get_worker  # only ever run on a Dask worker

        worker = get_worker()
        host = worker.address.rsplit(":", 1)[0].split("://")[-1]
        slots = self.slots_per_host.get(host) or worker.state.nthreads
        return max(1, _cores() // max(1, slots)), worker.state.nthreads == 1


@dataclass(frozen=True)
class _Box:
    """The shared object, boxed so that Dask pickles it whole: Dask's own serialisation of a ``torch.nn.Module``
    inside a dict or list rebuilds its hook tables as plain dicts, on which torch cannot register hooks."""

    value: Any


_LOCAL = threading.local()  # per worker thread: its copy of the last shared object, by token


def _own(shared: Any, token: str) -> Any:
    """This thread's copy of ``shared``, made once per thread (and per run: ``token``)."""
    cache = getattr(_LOCAL, "cache", None)
    if cache is None or cache[0] != token:
        cache = _LOCAL.cache = (token, copy.deepcopy(shared))
    return cache[1]


def _run_task(
    shared: Any,
    token: str,
    work: Callable[[Any, Any, Any], Any],
    key: Any,
    argument: Any,
    setup: _Setup,
) -> tuple[Any, list[tuple[type[Warning], str]]]:
    """One task on a worker: the thread count, the shared object, the work; the warnings it raised come back."""
    count, alone = setup.resolve()
    if isinstance(shared, _Box):
        shared = shared.value
    previous = None
    if count is not None:
        import torch

        # torch's thread count is the process's: restored after the task only where no other task runs
        previous = torch.get_num_threads() if alone else None
        torch.set_num_threads(count)
    try:
        if not alone:
            return work(_own(shared, token), key, argument), []
        return _with_warnings(work, shared, key, argument)
    finally:
        if previous is not None:
            torch.set_num_threads(previous)


def _with_warnings(
    work: Callable[[Any, Any, Any], Any], shared: Any, key: Any, argument: Any
) -> tuple[Any, list[tuple[type[Warning], str]]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = work(shared, key, argument)
    return result, [(w.category, str(w.message)) for w in caught]


def _unsendable(owner: str, error: BaseException) -> TypeError:
    return TypeError(
        f"{owner} cannot send the model to the executor's workers: it does not pickle ({type(error).__name__}: "
        f"{error}). Define the model's class at the top level of a module the workers can import (not inside a "
        "function), or pass executor=None to run in this process."
    )


class _Plan:
    """How one executor receives the shared object and runs its tasks; closed when the run ends."""

    def __init__(self, executor: cf.Executor, shared: Any, owner: str) -> None:
        self.executor = executor
        self.shared = self.scattered = shared
        self.token = uuid.uuid4().hex
        self.window = _WINDOW
        self.setup = _Setup()
        self.submit_options: dict[str, Any] = {}
        client = getattr(executor, "_client", None) if _from_distributed(executor) else None
        if client is not None:  # Dask: the object goes to every worker once, and stays there for the run
            try:
                self.scattered = client.scatter([_Box(shared)], broadcast=True, hash=False)[0]
            except Exception as error:  # noqa: BLE001 - Dask's serialisation errors are of many types
                raise _unsendable(owner, error) from error
            slots: dict[str, int] = {}
            for info in client.scheduler_info()["workers"].values():
                slots[info["host"]] = slots.get(info["host"], 0) + int(info["nthreads"])
            self.setup = _Setup(slots_per_host=slots)
            self.window = max(2, 2 * sum(slots.values()))
            self.submit_options = {"pure": False}
        elif isinstance(executor, cf.ProcessPoolExecutor):
            # The pool pickles the object with every task through torch's reductions (torch.multiprocessing):
            # its tensors are moved to shared memory once, and each task carries handles to them, not copies.
            try:
                ForkingPickler.dumps(shared)
            except Exception as error:  # noqa: BLE001 - pickling raises TypeError, AttributeError, PicklingError...
                raise _unsendable(owner, error) from error
            workers = int(getattr(executor, "_max_workers", 0) or _cores())
            self.setup = _Setup(fixed=max(1, _cores() // workers))
            self.window = 2 * workers
        elif isinstance(executor, cf.ThreadPoolExecutor):  # one copy per thread; warnings show as raised
            self.setup = _Setup(alone=False)
            self.window = 2 * int(getattr(executor, "_max_workers", _WINDOW // 2))
        else:  # another kind: the object travels with every task, each thread works on a copy of its own
            self.setup = _Setup(alone=False)

    def submit(self, work: Callable[[Any, Any, Any], Any], key: Any, argument: Any) -> cf.Future:
        return self.executor.submit(
            _run_task, self.scattered, self.token, work, key, argument, self.setup, **self.submit_options
        )

    def close(self) -> None:
        if self.scattered is not self.shared:
            self.scattered.release()


# ------------------------------------------------------------------------------------------------ failures


class KeyFailures(RuntimeError):
    """Some keys failed; the others finished.

    Attributes
    ----------
    errors : dict
        Each failed key to its exception.
    results : dict
        The keys that finished, to their results (also written to the result folder, when there is one).
    """

    def __init__(self, owner: str, noun: str, errors: dict[Any, BaseException], results: dict[Any, Any]) -> None:
        self.errors = errors
        self.results = results
        listed = "; ".join(f"{noun} {key}: {type(error).__name__}: {error}" for key, error in errors.items())
        hint = ""
        if any(type(error).__name__ == "BrokenProcessPool" for error in errors.values()):
            hint = (
                " A worker process of the pool died and the pool stopped; a Dask cluster would run the task "
                "again on another worker."
            )
        super().__init__(
            f"{owner}: {len(errors)} of {len(errors) + len(results)} {noun} tasks failed: {listed}.{hint} The "
            f"{len(results)} others finished (in .results); with checkpoint_dir they are saved, and a rerun "
            "computes only the failed ones."
        )


# ------------------------------------------------------------------------------------------------ results folder


def check_result_folder(value: object, owner: str, name: str = "checkpoint_dir") -> Path | None:
    """``value`` as the path of a result folder (existing or to be created), or a clear error; creates nothing.

    Raises
    ------
    TypeError
        If ``value`` is not None, a str or path-like.
    ValueError
        If it names something that exists and is not a folder.
    """
    if value is None:
        return None
    if not isinstance(value, (str, PathLike)):
        raise TypeError(
            f"The {name!r} parameter of {owner} must be a str or os.PathLike (a folder) or None. Got {value!r} instead."
        )
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"The {name!r} parameter of {owner} names {path}, which is a file, not a folder: pass a folder (it is "
            f"created if missing), for example {path.with_suffix('')}_results."
        )
    return path


def _differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    lines = []
    for part in sorted(set(stored) | set(current)):
        old, new = stored.get(part), current.get(part)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            keys = [k for k in {**old, **new} if old.get(k) != new.get(k)]
            lines.append(f"{part}: " + "; ".join(f"{k} {old.get(k)!r} then, {new.get(k)!r} now" for k in keys))
        else:
            lines.append(f"{part}: {old!r} then, {new!r} now")
    return lines


class ResultFolder(Generic[K, R]):
    """A folder that keeps one file per finished key, and a manifest of what produced them.

    The manifest (``manifest.json``) holds the run's fingerprint (version, settings, model) and, for every key
    done, the fingerprint of its own argument (for example a digest of the class's inputs). A result is written
    atomically (by ``write``, through :mod:`stepwise.core.io`) before the manifest lists it, so that a key the
    manifest lists has its complete file.

    Parameters
    ----------
    folder : Path
        Checked with :func:`check_result_folder`; created if missing.
    fingerprint : dict
        JSON-serialisable: what every result depends on.
    name : callable
        A key to its file name (``class_3.json``).
    write : callable
        ``write(result, path)``: writes one result atomically.
    read : callable
        ``read(path)``: reads one result back.
    owner : str
        The public function, for the messages.
    create : bool, default=True
        Create the folder and its manifest when missing; ``False`` only checks an existing manifest (before the
        long work, leaving nothing behind).

    Raises
    ------
    ValueError
        If the folder holds a manifest of another run (the differences named), or one that is damaged.
    OSError
        If the folder cannot be created or written to.
    """

    def __init__(
        self,
        folder: Path,
        fingerprint: dict[str, Any],
        *,
        name: Callable[[K], str],
        write: Callable[[R, Path], None],
        read: Callable[[Path], R],
        owner: str,
        create: bool = True,
    ) -> None:
        self.folder = folder
        self.fingerprint = json.loads(json.dumps(fingerprint))  # as JSON reads it back: tuples as lists
        self._name, self._write, self._read, self.owner = name, write, read, owner
        self.done: dict[str, Any] = {}
        manifest = folder / MANIFEST
        if manifest.exists():
            self._load(manifest)
        elif create:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                self._save()
            except OSError as error:
                raise OSError(
                    f"{owner} cannot write to the checkpoint folder {folder} ({type(error).__name__}: {error}). "
                    "Choose a folder you can write to."
                ) from error

    def _corrupt(self, detail: str) -> ValueError:
        return ValueError(
            f"{self.owner} cannot resume from {self.folder / MANIFEST}: it is not a valid stepwise result manifest "
            f"({detail}). {_FIX}"
        )

    def _load(self, manifest: Path) -> None:
        try:
            data = json.loads(manifest.read_bytes())
        except (OSError, ValueError, RecursionError) as error:
            raise self._corrupt(f"{type(error).__name__}: {error}") from error
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise self._corrupt(f"no 'format': {FORMAT!r}, 'format_version': {FORMAT_VERSION} entries")
        stored, done = data.get("fingerprint"), data.get("done")
        if not isinstance(stored, dict) or not isinstance(done, dict):
            raise self._corrupt("'fingerprint' and 'done' must be objects")
        differences = _differences(stored, self.fingerprint)
        if differences:
            raise ValueError(
                f"{self.owner} cannot resume from the checkpoint folder {self.folder}: its results were made with "
                f"other settings ({'; '.join(differences)}). A folder resumes only the same analysis. {_FIX}"
            )
        self.done = done

    def _save(self) -> None:
        data = {"format": FORMAT, "format_version": FORMAT_VERSION, "fingerprint": self.fingerprint, "done": self.done}
        write_file(self.folder / MANIFEST, json.dumps(data, indent=1, allow_nan=False))

    def split(self, keys: Sequence[K], fingerprints: dict[K, Any], noun: str) -> tuple[dict[K, R], list[K]]:
        """The results already in the folder, read back, and the keys still to compute.

        Raises
        ------
        ValueError
            If a key is listed with another fingerprint of its argument (other inputs): nothing is mixed in.
        """
        found: dict[K, R] = {}
        todo: list[K] = []
        for key in keys:
            name = self._name(key)
            stored = self.done.get(name)
            current = json.loads(json.dumps(fingerprints[key]))
            if stored is None or not (self.folder / name).is_file():
                todo.append(key)
            elif stored != current:
                raise ValueError(
                    f"{self.owner} cannot resume from the checkpoint folder {self.folder}: {noun} {key} was computed "
                    f"from other inputs ({name}: {_differences({'inputs': stored}, {'inputs': current})[0]}). "
                    f"{_FIX}"
                )
            else:
                try:
                    found[key] = self._read(self.folder / name)
                except (OSError, ValueError) as error:
                    raise self._corrupt(f"{name} does not read back: {error}") from error
        return found, todo

    def record(self, key: K, fingerprint: Any, result: R) -> None:
        """Write one result atomically, then list it in the manifest."""
        name = self._name(key)
        self._write(result, self.folder / name)
        self.done[name] = fingerprint
        self._save()


# ------------------------------------------------------------------------------------------------ the loop


def run_per_key(
    work: Callable[[Any, K, Any], R],
    keys: Sequence[K],
    argument: Callable[[K], Any],
    *,
    shared: Any,
    executor: cf.Executor | None,
    owner: str,
    noun: str,
    on_result: Callable[[K, R], None] | None = None,
    progress: bool = False,
    stacklevel: int = 2,
) -> dict[K, R]:
    """``work(shared, key, argument(key))`` for every key, in this process or as tasks of ``executor``.

    Parameters
    ----------
    work : callable
        A function defined at the top level of a module (tasks name it, workers import it); it returns a picklable
        result.
    keys : sequence
        Distinct, hashable.
    argument : callable
        The argument of one key (for example its inputs), built when its task is handed over, so that only the
        tasks in flight hold theirs.
    shared : object
        What every task needs (the model, the settings), pickled once when ``executor`` is given.
    executor : concurrent.futures.Executor or None
        From :func:`check_executor`.
    owner, noun : str
        The public function and what a key is (``"class"``), for messages and warnings.
    on_result : callable, optional
        Called in this process with each key and result as it arrives (to write it, for instance).
    progress : bool, default=False
        A bar over the keys, moved as each finishes.
    stacklevel : int, default=2
        Where the warnings of the tasks point, as in :func:`warnings.warn` counted from the caller of this
        function (2: the caller's caller, the user's call of a public function).

    Returns
    -------
    dict
        Each key to its result, in the order of ``keys``.

    Raises
    ------
    KeyFailures
        If some keys failed (their errors, and the results of the others).
    TypeError
        If ``shared`` does not pickle (before any task is handed over).
    """
    from tqdm.auto import tqdm

    results: dict[K, R] = {}
    errors: dict[K, BaseException] = {}

    def arrived(key: K, outcome: tuple[R, list[tuple[type[Warning], str]]]) -> None:
        result, caught = outcome
        for category, message in caught:
            warnings.warn(f"{noun} {key}: {message}", category, stacklevel=stacklevel + 2)
        if on_result is not None:
            on_result(key, result)
        results[key] = result

    with tqdm(total=len(keys), disable=not progress, desc=owner, unit=noun) as bar:
        if executor is None:
            for key in keys:
                bar.set_postfix_str(f"{noun} {key}")
                try:
                    outcome = _with_warnings(work, shared, key, argument(key))
                except Exception as error:  # noqa: BLE001 - reported with the others at the end
                    errors[key] = error
                else:
                    arrived(key, outcome)
                bar.update(1)
        else:
            plan = _Plan(executor, shared, owner)
            try:
                for key, outcome, error in _as_completed(plan, work, keys, argument):
                    if error is not None:
                        errors[key] = error
                    else:
                        arrived(key, outcome)
                    bar.set_postfix_str(f"{noun} {key} done")
                    bar.update(1)
            finally:
                plan.close()
    ordered = {key: results[key] for key in keys if key in results}
    if errors:
        raise KeyFailures(owner, noun, {key: errors[key] for key in keys if key in errors}, ordered)
    return ordered


def _as_completed(
    plan: _Plan, work: Callable[[Any, Any, Any], Any], keys: Sequence[K], argument: Callable[[K], Any]
) -> Iterator[tuple[K, Any, BaseException | None]]:
    """Hand the keys over ``plan.window`` at a time; yield (key, outcome, error) as they finish."""
    waiting = list(reversed(keys))
    running: dict[cf.Future, K] = {}
    try:
        while waiting or running:
            while waiting and len(running) < plan.window:
                key = waiting.pop()
                try:
                    running[plan.submit(work, key, argument(key))] = key
                except RuntimeError as error:  # a pool shut down, or broken
                    yield key, None, error
            if not running:
                continue
            finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                key = running.pop(future)
                try:
                    outcome = future.result()
                except Exception as error:  # noqa: BLE001 - the task's own error, reported by key
                    yield key, None, error
                else:
                    yield key, outcome, None
    finally:
        for future in running:  # interrupted: nothing more is started
            future.cancel()
