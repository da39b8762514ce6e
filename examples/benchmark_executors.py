"""Benchmark: class graphs in this process against a local Dask cluster of 2 worker processes, and the cost of a task.

Two workloads of 10 classes each, the per-class traversals only (the inputs are chosen once, beforehand):

- ``digits``: the shipped digits CNN, 100 inputs per class (chosen as ``stepwise.class_graphs`` chooses them);
- ``vgg16``: a VGG16-shaped network (random weights, 10 classes, 134 M parameters), 20 random images of 64x64 per
  class, default levels (``softmax`` on top).

Modes, timed ``--repeats`` times alternating, medians reported: ``serial_1`` (this process, one torch thread),
``serial_default`` (this process, torch's default number of threads) and ``dask_2`` (``stepwise.graphs_for`` on a
``LocalCluster`` of 2 worker processes of 1 thread each, loopback only, started once and warmed by a first run whose
time is reported apart, as ``first_dask_s``). Each repeat checks that the Dask graphs are byte-identical to the
serial ones of one thread (node-link JSON).

The task overhead is measured two ways: the wall time of 50 tasks that do nothing but receive the shared model
(``noop_s_per_task``, both workers busy, and ``noop_worker_s_per_task``, the worker-seconds each took; the model sent
once for the 50), and from the real runs, ``(2 * dask_2 - serial_1) / classes``, the worker-seconds per class beyond
the computation. The model's transfer, which every run pays once, is timed as a run of two empty tasks before each
Dask run (``transfer_s``), and ``dask_2_after_transfer_s`` is the Dask run less it; ``model_broadcast_s`` is the
broadcast of the model's state alone. Finally one worker is killed during a run of
the digits classes (``os._exit`` in the first task it starts): the run's time, whether the graphs are unchanged,
and the workers' addresses before and after (the nanny starts a new worker).

Run ``python examples/benchmark_executors.py``; results go to ``results/benchmarks/executors.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from networks import vgg16_shaped  # noqa: E402

import stepwise  # noqa: E402
from stepwise.core.executors import run_per_key  # noqa: E402
from stepwise.core.io import write_file  # noqa: E402
from stepwise.graphs.readwrite import write_json  # noqa: E402
from stepwise.models import DigitsCNN, digits_cnn, digits_data  # noqa: E402
from stepwise.ssa.classes import graphs_for  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "results" / "benchmarks" / "executors.json"
CLUSTER = dict(processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None)


class KillsAWorker(DigitsCNN):
    """The digits CNN; the first forward pass outside this process ends that process (a marker file makes it
    the only one)."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.load_state_dict(digits_cnn().state_dict())
        self.eval()
        self.marker, self.parent = marker, os.getpid()

    def forward(self, x: Tensor) -> Tensor:
        if os.getpid() != self.parent:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                os._exit(1)
        return super().forward(x)


def _noop(shared: Any, key: int, argument: None) -> int:
    return key


def workload(name: str, n_classes: int, images: int, size: int) -> tuple[stepwise.StepwiseSensitivity, dict]:
    if name == "digits":
        model, data = digits_cnn(), digits_data()
        chosen = stepwise.select_inputs(model, data.images, data.labels, classes=list(range(n_classes)))
        per_class = {c: data.images[index] for c, index in chosen.items()}
    else:
        model = vgg16_shaped(num_classes=n_classes)
        generator = torch.Generator().manual_seed(0)
        per_class = {c: torch.randn(images, 3, size, size, generator=generator) for c in range(n_classes)}
    example = next(iter(per_class.values()))[:2]
    return stepwise.StepwiseSensitivity(model, stepwise.default_levels(model, example)), per_class


def as_bytes(graphs: dict[int, Any]) -> dict[int, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        files = {}
        for c, graph in graphs.items():
            path = Path(folder) / f"{c}.json"
            write_json(graph, path)
            files[c] = path.read_bytes()
    return files


def timed(call: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a traversal that stops early is still timed
        result = call()
    return time.perf_counter() - start, result


def measure(name: str, args: argparse.Namespace, client: Any) -> dict[str, Any]:
    analysis, per_class = workload(name, args.classes, args.vgg_images, args.vgg_size)
    executor = client.get_executor(pure=False)
    default_threads = torch.get_num_threads()
    record: dict[str, Any] = {
        "workload": name,
        "classes": len(per_class),
        "inputs_per_class": [len(x) for x in per_class.values()],
        "input_shape": list(next(iter(per_class.values())).shape[1:]),
        "parameters": sum(p.numel() for p in analysis.model.parameters()),
        "default_threads": default_threads,
    }
    start = time.perf_counter()
    state = client.scatter([analysis.model.state_dict()], broadcast=True, hash=False)[0]
    state.result()
    record["model_broadcast_s"] = time.perf_counter() - start
    state.release()
    record["first_dask_s"], _ = timed(lambda: graphs_for(analysis, per_class, executor=executor))
    times: dict[str, list[float]] = {"serial_1": [], "serial_default": [], "dask_2": [], "transfer": []}
    identical = []
    job = {"model": analysis.model, "levels": analysis.levels}
    for _ in range(args.repeats):
        torch.set_num_threads(1)
        seconds, serial = timed(lambda: graphs_for(analysis, per_class))
        times["serial_1"].append(seconds)
        torch.set_num_threads(default_threads)
        times["serial_default"].append(timed(lambda: graphs_for(analysis, per_class))[0])
        times["transfer"].append(timed(lambda: run_per_key(_noop, [0, 1], lambda k: None, shared=job,
                                                           executor=executor, owner="benchmark", noun="task"))[0])  # fmt: skip
        seconds, spread = timed(lambda: graphs_for(analysis, per_class, executor=executor))
        times["dask_2"].append(seconds)
        identical.append(as_bytes(spread) == as_bytes(serial))
    medians = {mode: statistics.median(values) for mode, values in times.items()}
    record.update({f"{mode}_s": value for mode, value in medians.items()})
    record.update({f"{mode}_s_each": values for mode, values in times.items()})
    record["byte_identical_each"] = identical
    record["speedup_vs_serial_1"] = medians["serial_1"] / medians["dask_2"]
    record["speedup_vs_serial_default"] = medians["serial_default"] / medians["dask_2"]
    record["serial_1_s_per_class"] = medians["serial_1"] / len(per_class)
    record["overhead_worker_s_per_class"] = (2 * medians["dask_2"] - medians["serial_1"]) / len(per_class)
    after = [dask - transfer for dask, transfer in zip(times["dask_2"], times["transfer"])]
    record["dask_2_after_transfer_s"] = statistics.median(after)
    record["speedup_after_transfer_vs_serial_1"] = medians["serial_1"] / record["dask_2_after_transfer_s"]
    noop = []
    for _ in range(args.repeats):
        noop.append(timed(lambda: run_per_key(_noop, list(range(50)), lambda k: None, shared=job, executor=executor,
                                              owner="benchmark", noun="task"))[0])  # fmt: skip
    record["noop_s_per_task"] = statistics.median(noop) / 50
    record["noop_worker_s_per_task"] = 2 * statistics.median(noop) / 50
    return record


def kill_run(client: Any) -> dict[str, Any]:
    analysis, per_class = workload("digits", 10, 0, 0)
    with tempfile.TemporaryDirectory() as folder:
        marker = str(Path(folder) / "killed")
        model = KillsAWorker(marker)
        killer = stepwise.StepwiseSensitivity(model, analysis.levels)
        torch.set_num_threads(1)
        reference = as_bytes(graphs_for(killer, per_class))
        before = sorted(client.scheduler_info()["workers"])
        seconds, graphs = timed(lambda: graphs_for(killer, per_class, executor=client))
        killed = os.path.exists(marker)
    client.wait_for_workers(2, timeout=60)
    return {
        "worker_killed": killed,
        "seconds": seconds,
        "byte_identical": as_bytes(graphs) == reference,
        "workers_before": before,
        "workers_after": sorted(client.scheduler_info()["workers"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--vgg-images", type=int, default=20)
    parser.add_argument("--vgg-size", type=int, default=64)
    parser.add_argument("--workloads", nargs="+", default=["digits", "vgg16"], choices=["digits", "vgg16"])
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with LocalCluster(**CLUSTER) as cluster, Client(cluster) as client:
        cluster_start = time.perf_counter() - start
        print(f"local cluster of 2 workers started in {cluster_start:.1f} s", flush=True)
        results = []
        for name in args.workloads:
            record = measure(name, args, client)
            results.append(record)
            print(
                f"{name}: serial (1 thread) {record['serial_1_s']:.2f} s, serial ({record['default_threads']} "
                f"threads) {record['serial_default_s']:.2f} s, 2 Dask workers {record['dask_2_s']:.2f} s -> "
                f"speed-up {record['speedup_vs_serial_1']:.2f}x (vs {record['speedup_vs_serial_default']:.2f}x); "
                f"byte-identical {all(record['byte_identical_each'])}; overhead {record['overhead_worker_s_per_class']:.3f} "
                f"worker-s per class, empty task {1000 * record['noop_s_per_task']:.1f} ms "
                f"({1000 * record['noop_worker_s_per_task']:.1f} worker-ms); model broadcast "
                f"{record['model_broadcast_s']:.2f} s; model sent with a run {record['transfer_s']:.2f} s, the run less "
                f"it {record['dask_2_after_transfer_s']:.2f} s -> {record['speedup_after_transfer_vs_serial_1']:.2f}x; "
                f"first Dask run {record['first_dask_s']:.2f} s",
                flush=True,
            )
        killed = kill_run(client)
        print(
            f"a worker killed during the digits run: killed {killed['worker_killed']}, run {killed['seconds']:.2f} s, "
            f"graphs byte-identical {killed['byte_identical']}; workers {killed['workers_before']} -> "
            f"{killed['workers_after']}",
            flush=True,
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    summary = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "load_average_1min": load,
        },  # fmt: skip
        "cluster_start_s": cluster_start,
        "results": results,
        "worker_killed": killed,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    write_file(OUT, json.dumps(summary, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
