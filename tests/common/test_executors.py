"""Per-class and per-input jobs on executors: the same bytes from every executor, nothing lost.

The class graphs of the shipped digits CNN (10 classes, up to 100 inputs each) are computed in this process, on a
Dask ``LocalCluster`` of two one-thread worker processes (loopback only), and on a ``ProcessPoolExecutor``; their
node-link JSON files are compared byte for byte. A worker killed in the middle of a Dask run (``os._exit`` in its
first task) does not change the graphs; an interrupted run with a checkpoint folder resumes without computing the
classes already written. The serial reference runs with one torch thread, as every task of those workers does
(:mod:`stepwise.core.executors`: a float32 forward pass can round otherwise with another number of threads).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

import perturb
import stepwise
from stepwise.cli.distributed import add_options, executor_from
from stepwise.core.executors import KeyFailures, ResultFolder, check_executor, run_per_key
from stepwise.graphs.readwrite import write_json
from stepwise.models import DigitsCNN, digits_cnn, digits_data

N_INPUTS = 600  # of the digits: 30 inputs of each class qualify, in the first 600
PER_CLASS = 30
CLUSTER = dict(processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def written(graphs: dict[int, Any], folder: Path) -> dict[int, bytes]:
    """Each graph's node-link JSON file, as bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for c, graph in graphs.items():
        write_json(graph, folder / f"{c}.json")
        files[c] = (folder / f"{c}.json").read_bytes()
    return files


# ------------------------------------------------------------------------------------------------ models


class KillsAWorker(DigitsCNN):
    """The digits CNN, but the first forward pass outside the test's process ends that process at once (the
    marker file, created atomically, makes it the only one)."""

    def __init__(self, marker: Path) -> None:
        super().__init__()
        self.load_state_dict(digits_cnn().state_dict())
        self.eval()
        self.marker = str(marker)
        self.parent = os.getpid()

    def forward(self, x: Tensor) -> Tensor:
        if os.getpid() != self.parent:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.close(fd)
                os._exit(1)
        return super().forward(x)


class Interrupts(DigitsCNN):
    """The digits CNN that raises KeyboardInterrupt in the traversal of the class of ``stop`` (an input), and an
    error in the traversal of a class of ``done`` (inputs of classes that must not be computed again). A
    traversal's batches hold one class's inputs, at most ``PER_CLASS``; the selection's batches hold more."""

    def __init__(self, stop: Tensor | None = None, done: Tensor | None = None) -> None:
        super().__init__()
        self.load_state_dict(digits_cnn().state_dict())
        self.eval()
        self.stop, self.done = stop, done

    def forward(self, x: Tensor) -> Tensor:
        if 2 < len(x) <= PER_CLASS:  # not a probe of the levels, on two inputs
            if self.stop is not None and _holds(x, self.stop[None]):
                raise KeyboardInterrupt
            if self.done is not None and _holds(x, self.done):
                raise RuntimeError("a class already in the checkpoint folder was computed again")
        return super().forward(x)


def _holds(batch: Tensor, images: Tensor) -> bool:
    return bool((batch[:, None] == images[None]).flatten(2).all(dim=2).any())


# ------------------------------------------------------------------------------------------------ fixtures


@dataclass(frozen=True)
class Data:
    images: Tensor
    labels: Tensor


@pytest.fixture(scope="module")
def data() -> Data:
    digits = digits_data()
    return Data(digits.images[:N_INPUTS], digits.labels[:N_INPUTS])


def graphs_of(model: Any, data: Data, **options: Any) -> dict[int, Any]:
    return stepwise.class_graphs(model, data.images, data.labels, max_per_class=PER_CLASS, **options)


@pytest.fixture(scope="module")
def serial(data: Data, tmp_path_factory: pytest.TempPathFactory) -> dict[int, bytes]:
    """The 10 class graphs computed in this process with one torch thread, as JSON bytes."""
    with torch_threads(1):
        graphs = graphs_of(digits_cnn(), data)
    assert sorted(graphs) == list(range(10))
    return written(graphs, tmp_path_factory.mktemp("serial"))


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A Dask client of a local cluster: two worker processes of one thread each, on the loopback interface."""
    distributed = pytest.importorskip("distributed", reason="needs Dask's distributed (pip install distributed)")
    with distributed.LocalCluster(**CLUSTER) as cluster, distributed.Client(cluster) as dask_client:
        yield dask_client


# ------------------------------------------------------------------------------------------------ class graphs


def test_class_graphs_on_a_local_dask_cluster_equal_the_serial_ones(
    client: Any, data: Data, serial: dict[int, bytes], tmp_path: Path
) -> None:
    graphs = graphs_of(digits_cnn(), data, executor=client)
    assert list(graphs) == list(range(10))  # by class, not in the order they finished
    assert written(graphs, tmp_path) == serial
    # the executor of the client gives the same, and the model reached each worker once
    pieces = run_per_key(_where, list(range(8)), lambda key: key, shared=digits_cnn(),
                         executor=client.get_executor(), owner="test", noun="key")  # fmt: skip
    loaded = {(pid, shared) for pid, shared, _, _ in pieces.values()}
    assert len({pid for pid, _ in loaded}) == len(loaded) <= 2  # the model reached each worker process once
    assert {threads for _, _, threads, _ in pieces.values()} == {max(1, os.cpu_count() // 2)}  # type: ignore


def _where(shared: Any, key: int, argument: int) -> tuple[int, int, int, bool]:
    time.sleep(0.05)
    return os.getpid(), id(shared), torch.get_num_threads(), shared.features[0].weight.is_shared()


def test_a_process_pool_gives_the_same_graphs(data: Data, serial: dict[int, bytes], tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(2, mp_context=context) as pool:
        graphs = graphs_of(digits_cnn(), data, executor=pool)
        pieces = run_per_key(_where, list(range(8)), lambda key: key, shared=digits_cnn(), executor=pool,
                             owner="test", noun="key")  # fmt: skip
    assert written(graphs, tmp_path) == serial
    assert all(shared for _, _, _, shared in pieces.values())  # the weights in shared memory, not copied per task
    assert {threads for _, _, threads, _ in pieces.values()} == {max(1, os.cpu_count() // 2)}  # type: ignore


def test_a_worker_killed_during_the_run_changes_nothing(
    client: Any, data: Data, serial: dict[int, bytes], tmp_path: Path
) -> None:
    marker = tmp_path / "killed"
    model = KillsAWorker(marker)
    with torch_threads(1):
        reference = written(graphs_of(model, data), tmp_path / "reference")
    graphs = graphs_of(model, data, executor=client)
    assert marker.exists()  # a worker did die
    assert written(graphs, tmp_path / "after") == reference
    assert [json.replace(b"KillsAWorker", b"DigitsCNN") for json in reference.values()] == list(serial.values())


def test_an_interrupted_run_resumes_from_its_checkpoint_folder(data: Data, tmp_path: Path) -> None:
    folder = tmp_path / "checkpoint"
    chosen = stepwise.select_inputs(digits_cnn(), data.images, data.labels, max_per_class=PER_CLASS)
    first = {c: data.images[index[0]] for c, index in chosen.items()}  # the first input of each class's graph
    classes = [0, 1, 2, 3, 4]
    with torch_threads(1), pytest.raises(KeyboardInterrupt):
        graphs_of(Interrupts(stop=first[3]), data, classes=classes, checkpoint_dir=folder)
    done = sorted(folder.glob("class_*.json"))
    assert [path.name for path in done] == ["class_0.json", "class_1.json", "class_2.json"]
    stamps = {path.name: path.stat().st_mtime_ns for path in done}

    rerun = Interrupts(done=torch.stack([first[0], first[1], first[2]]))  # fails if class 0, 1 or 2 runs again
    with torch_threads(1):
        graphs = graphs_of(rerun, data, classes=classes, checkpoint_dir=folder)
    assert {name: (folder / name).stat().st_mtime_ns for name in stamps} == stamps
    with torch_threads(1):  # its data-dependent forward has no closed form: the steps run by autograd
        expected = written(graphs_of(Interrupts(), data, classes=classes), tmp_path / "expected")
    assert written(graphs, tmp_path / "resumed") == expected
    assert {c: (folder / f"class_{c}.json").read_bytes() for c in classes} == expected
    # a class that fails is reported with the others, the classes read back from the folder among the results
    with torch_threads(1), pytest.raises(KeyFailures) as caught:
        graphs_of(Interrupts(done=first[5][None]), data, classes=[*classes, 5], checkpoint_dir=folder)
    assert list(caught.value.errors) == [5] and list(caught.value.results) == classes
    message = str(caught.value)
    assert "1 of 6 class tasks failed: class 5: ValueError: The model raised RuntimeError" in message, message
    # a folder made with other settings is refused before the selection's passes
    with pytest.raises(ValueError, match=r"other settings \(settings: fence 1.5 then, 0.5 now\)"):
        graphs_of(rerun, data, classes=classes, checkpoint_dir=folder, fence=0.5)
    # and a class computed from other inputs too
    with pytest.raises(ValueError, match="class 0 was computed from other inputs"):
        stepwise.class_graphs(rerun, data.images, data.labels, classes=[0], checkpoint_dir=folder, max_per_class=20)


def test_a_class_without_qualifying_inputs_is_reported_and_the_others_run(data: Data, serial: dict[int, bytes],
                                                                         tmp_path: Path) -> None:  # fmt: skip
    ones = data.labels != 3  # no input of class 3
    with torch_threads(1), pytest.warns(UserWarning, match="class 3 has no input that the model classifies as 3"):
        graphs = graphs_of(digits_cnn(), Data(data.images[ones], data.labels[ones]), classes=[2, 3, 4])
    assert list(graphs) == [2, 4]
    assert written(graphs, tmp_path) == {2: serial[2], 4: serial[4]}


# ------------------------------------------------------------------------------------------------ the loop


def _sleepy(shared: dict[str, float], key: int, argument: float) -> int:
    time.sleep(argument)
    if key == shared["fails"]:
        raise ValueError(f"key {key} is bad")
    if key == shared["warns"]:
        warnings.warn("something to know", UserWarning)
    return key * 10


def test_results_come_by_key_failures_are_reported_and_the_others_run() -> None:
    keys = [4, 3, 2, 1, 0]
    shared = {"fails": 2, "warns": 1}
    with cf.ThreadPoolExecutor(3) as pool:
        for executor, message in ((None, "^key 1: something to know"), (pool, "^something to know")):
            with pytest.raises(KeyFailures) as caught, pytest.warns(UserWarning, match=message):
                run_per_key(_sleepy, keys, lambda key: 0.02 * key, shared=shared, executor=executor, owner="test",
                            noun="key")  # fmt: skip
            assert list(caught.value.results) == [4, 3, 1, 0]  # in the order of the keys, the failed one missing
            assert list(caught.value.errors) == [2]
            assert "1 of 5 key tasks failed: key 2: ValueError: key 2 is bad" in str(caught.value)
            assert caught.value.results == {4: 40, 3: 30, 1: 10, 0: 0}


def test_each_thread_unpickles_its_own_copy_of_the_shared_object() -> None:
    seen: list[tuple[int, int]] = []

    with cf.ThreadPoolExecutor(2) as pool:
        pieces = run_per_key(_thread_of, list(range(6)), lambda key: 0.05, shared={"a": 1}, executor=pool,
                             owner="test", noun="key")  # fmt: skip
    seen = list(pieces.values())
    assert len({thread for thread, _ in seen}) == len(set(seen))  # one copy per thread, kept for its next tasks


def _thread_of(shared: dict[str, int], key: int, argument: float) -> tuple[int, int]:
    time.sleep(argument)
    return threading.get_ident(), id(shared)


def test_check_executor_takes_what_runs_tasks() -> None:
    assert check_executor(None, "f") is None
    with cf.ThreadPoolExecutor(1) as pool:
        assert check_executor(pool, "f") is pool
    with pytest.raises(TypeError, match="must be None .* a concurrent.futures.Executor .* or a distributed.Client"):
        check_executor(4, "f")


def test_a_result_folder_refuses_a_damaged_manifest(tmp_path: Path) -> None:
    def open_folder() -> ResultFolder[int, str]:
        return ResultFolder(tmp_path, {"settings": {"a": 1}}, name=lambda key: f"{key}.txt",
                            write=lambda text, path: path.write_text(text), read=Path.read_text,
                            owner="test")  # fmt: skip

    folder = open_folder()
    folder.record(1, {"sha256": "x"}, "one")
    found, todo = open_folder().split([1, 2], {1: {"sha256": "x"}, 2: {"sha256": "y"}}, "key")
    assert (found, todo) == ({1: "one"}, [2])
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(ValueError, match="is not a valid stepwise result manifest"):
        open_folder()


# ------------------------------------------------------------------------------------------------ rankings


def test_rank_many_equals_rank_neurons_on_each_input(data: Data, client: Any) -> None:
    model = digits_cnn()
    images, targets = data.images[:4], data.labels[:4].tolist()
    with torch_threads(1):
        alone = [perturb.rank_neurons(model, image, target=t, n_samples=16) for image, t in zip(images, targets)]
        here = perturb.rank_many(model, images, targets, n_samples=16)
    there = perturb.rank_many(model, images, targets, n_samples=16, executor=client)
    for expected, *others in zip(alone, here, there):
        for ranking in others:
            assert ranking.model is model and ranking.target == expected.target
            for metric in perturb.METRICS:
                for level in expected.levels:
                    actual, wanted = ranking.scores(metric, level), expected.scores(metric, level)
                    torch.testing.assert_close(actual, wanted, rtol=0, atol=0, equal_nan=True)  # the same bits


# ------------------------------------------------------------------------------------------------ command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stepwise analyse")
    add_options(parser)
    return parser


def test_the_command_line_options_name_an_executor(capsys: pytest.CaptureFixture) -> None:
    args = _parser().parse_args([])
    with executor_from(args) as executor:
        assert executor is None
    assert _parser().parse_args(["--workers", "3"]).workers == 3
    assert _parser().parse_args(["--scheduler", "tcp://127.0.0.1:8786"]).scheduler == "tcp://127.0.0.1:8786"
    for wrong in (["--workers", "0"], ["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"]):
        with pytest.raises(SystemExit):
            _parser().parse_args(wrong)
    assert "not allowed with argument --workers" in capsys.readouterr().err


@pytest.mark.slow
def test_workers_start_a_local_cluster_that_closes_with_the_block() -> None:
    pytest.importorskip("distributed", reason="needs Dask's distributed (pip install distributed)")
    with executor_from(_parser().parse_args(["--workers", "2"])) as executor:
        pieces = run_per_key(_where, [0, 1, 2], lambda key: key, shared=digits_cnn(), executor=executor,
                             owner="test", noun="key")  # fmt: skip
        client = executor._client  # type: ignore[union-attr]
        assert len(client.scheduler_info()["workers"]) == 2
    assert len(pieces) == 3 and client.status == "closed"
