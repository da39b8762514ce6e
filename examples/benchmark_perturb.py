"""Benchmark: ``perturb.rank_neurons`` against the plain forward passes of the same resamples.

On a VGG16-shaped network with random weights (``examples/networks.py``) and one random image, measured in one
process, ``--repeats`` times, alternating:

(a) the plain forward passes of the ``--samples`` resamples under ``torch.no_grad``, no hooks, in the batches
    ``rank_neurons`` uses (its automatic batch size unless ``--batch-size`` is given); and, once, in one batch of
    all the resamples, reported beside it;
(b) the full ``perturb.rank_neurons`` call: every default level (the 15 Conv/Linear outputs after their ReLUs
    and ``softmax``), all six metrics, the resamples drawn inside the call.

Both wall-clock and process CPU seconds (all threads) are recorded; on a shared machine the CPU seconds of a
``--threads 1`` run are the figure least disturbed by other processes.

The ratio is median (b) / median (a), the target is 1.3; the ratio of each repeat's pair is reported too. The
machine's load average is recorded, since other processes slow both phases (``rank_neurons`` more, as it runs
more, smaller operations). The peak resident memory of each phase is measured once more in a fresh process
(sampled every 10 ms on Linux, else the process maximum), so that no earlier phase's memory is counted.

Run ``python examples/benchmark_perturb.py`` (224x224, 50 resamples, 3 repeats); ``--size 32 --samples 4
--repeats 1`` is a quick check. Results go to ``results/benchmarks/perturb_vgg16.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from networks import vgg16_shaped

import perturb
from stepwise.core.io import atomic_write

T = TypeVar("T")
DEFAULT_OUTPUT = Path("results/benchmarks/perturb_vgg16.json")
TARGET_RATIO = 1.3


def _rss_bytes() -> int | None:
    """The current resident set size (Linux), else None."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def peak_memory(record: dict[str, float]) -> Iterator[None]:
    """Sample the resident memory every 10 ms; store the peak (MB) and its rise over the start in ``record``."""
    start = _rss_bytes()
    peak = [start or 0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.01):
            peak[0] = max(peak[0], _rss_bytes() or 0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield
    finally:
        stop.set()
        sampler.join()
        if start is None:  # no /proc: the process-wide maximum, which includes earlier phases
            record["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            record["rise_mb"] = float("nan")
        else:
            record["peak_mb"] = max(peak[0], _rss_bytes() or 0) / 2**20
            record["rise_mb"] = record["peak_mb"] - start / 2**20


def _timed(work: Callable[[], T]) -> tuple[T, float, float]:
    """The result, the wall-clock and the process CPU seconds (all threads) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _forward(model: torch.nn.Module, samples: torch.Tensor, batch_size: int) -> None:
    with torch.no_grad():
        for first in range(0, len(samples), batch_size):
            model(samples[first : first + batch_size])


def _setup(size: int, samples: int, classes: int, seed: int) -> tuple[torch.nn.Module, torch.Tensor, int, torch.Tensor]:
    """The network, the image, the target (the network's top class on the image) and the resamples."""
    model = vgg16_shaped(classes, seed=seed)
    image = torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        target = int(model(image[None]).argmax())
    return model, image, target, perturb.resample(image, n_samples=samples, seed=seed)


def _phase_memory(phase: str, size: int, samples: int, classes: int, batch: int, seed: int, threads: int) -> dict:
    """In a fresh process: the resident memory after the set-up and at the peak of one run of ``phase``."""
    torch.set_num_threads(threads)
    model, image, target, resamples = _setup(size, samples, classes, seed)
    record: dict[str, float] = {}
    with peak_memory(record):
        if phase == "forward":
            _forward(model, resamples, batch)
        else:
            perturb.rank_neurons(model, image, target=target, n_samples=samples, seed=seed, batch_size=batch)
    return {"peak_mb": record["peak_mb"], "setup_mb": record["peak_mb"] - record["rise_mb"]}


def run(*, size: int, samples: int, classes: int, batch_size: int | None, repeats: int, seed: int) -> dict[str, object]:
    """Measure (a) and (b) and return the figures."""
    model, image, target, resamples = _setup(size, samples, classes, seed)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3

    # warm-up (allocator, kernels), which also fixes the batch size of both phases
    ranking = perturb.rank_neurons(model, image, target=target, n_samples=samples, seed=seed, batch_size=batch_size)
    batch = ranking.batch_size
    _forward(model, resamples, batch)

    def rank() -> perturb.NeuronRanking:
        return perturb.rank_neurons(model, image, target=target, n_samples=samples, seed=seed, batch_size=batch)

    forward_s, forward_cpu_s, perturb_s, perturb_cpu_s = [], [], [], []
    for _ in range(repeats):
        _, wall, cpu = _timed(lambda: _forward(model, resamples, batch))
        forward_s.append(wall)
        forward_cpu_s.append(cpu)
        ranking, wall, cpu = _timed(rank)
        perturb_s.append(wall)
        perturb_cpu_s.append(cpu)
    _, one_batch_s, _ = _timed(lambda: _forward(model, resamples, samples))
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3

    # peak memory, each phase in a fresh process so that no earlier phase's memory is counted
    memory = {}
    for phase in ("forward", "perturb"):
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            args = (phase, size, samples, classes, batch, seed, torch.get_num_threads())
            memory[phase] = pool.submit(_phase_memory, *args).result()

    forward, ranked = statistics.median(forward_s), statistics.median(perturb_s)
    table = ranking.table()
    return {
        "benchmark": "perturb.rank_neurons vs plain forward passes",
        "model": "vgg16_shaped",
        "size": size,
        "samples": samples,
        "classes": classes,
        "target": target,
        "batch_size": batch,
        "repeats": repeats,
        "seed": seed,
        "levels": ranking.levels,
        "metrics": list(perturb.METRICS),
        "neurons": len(table),
        "forward_s": forward_s,
        "perturb_s": perturb_s,
        "forward_cpu_s": forward_cpu_s,
        "perturb_cpu_s": perturb_cpu_s,
        "forward_median_s": forward,
        "perturb_median_s": ranked,
        "forward_one_batch_s": one_batch_s,
        "ratio": ranked / forward,
        "ratio_best": min(perturb_s) / min(forward_s),
        "pair_ratios": [b / a for a, b in zip(forward_s, perturb_s)],
        "cpu_ratio": statistics.median(perturb_cpu_s) / statistics.median(forward_cpu_s),
        "target_ratio": TARGET_RATIO,
        "meets_target": ranked / forward <= TARGET_RATIO,
        "setup_mb": memory["forward"]["setup_mb"],
        "forward_peak_mb": memory["forward"]["peak_mb"],
        "perturb_peak_mb": memory["perturb"]["peak_mb"],
        "load_average_at_start": list(load),
        "load_average_at_end": list(load_after),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "table_head": table.head().to_dict(orient="records"),
    }


def write_json(result: dict[str, object], path: Path) -> None:
    """Write atomically (:func:`stepwise.readwrite.atomic_write`), creating the folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, default=float) + "\n"
    atomic_write(path, lambda stream: stream.write(text.encode()))


def report(result: dict[str, object]) -> str:
    """The figures as a small table."""
    n = result["samples"]
    header = (
        f"perturb benchmark: VGG16-shaped, {result['size']}x{result['size']}, {n} resamples, "
        f"{len(result['levels'])} levels, {len(result['metrics'])} metrics, {result['neurons']} neurons, "
        f"batch {result['batch_size']}, {result['threads']} threads, "
        f"load average {result['load_average_at_start'][0]:.2f}"
    )
    rows = [
        (f"(a) {n} forward passes", result["forward_median_s"], min(result["forward_s"]), result["forward_peak_mb"]),
        ("(b) perturb.rank_neurons", result["perturb_median_s"], min(result["perturb_s"]), result["perturb_peak_mb"]),
    ]
    lines = [header, f"{'':34}{'median s':>10}{'min s':>10}{'peak MB':>10}"]
    lines += [f"{name:34}{median:>10.2f}{best:>10.2f}{peak:>10.0f}" for name, median, best, peak in rows]
    lines.append(f"{f'    (a) in one batch of {n}':34}{result['forward_one_batch_s']:>10.2f}")
    lines.append(f"peak resident memory of a fresh process for each phase; {result['setup_mb']:.0f} MB after set-up")
    lines.append(
        f"process CPU seconds (all threads), median: (a) {statistics.median(result['forward_cpu_s']):.2f}, "
        f"(b) {statistics.median(result['perturb_cpu_s']):.2f}, ratio {result['cpu_ratio']:.3f}; "
        f"load average {result['load_average_at_end'][0]:.2f} at the end"
    )
    verdict = "met" if result["meets_target"] else "missed"
    lines.append(
        f"ratio (b)/(a): {result['ratio']:.3f} median, {result['ratio_best']:.3f} best, per repeat "
        f"{', '.join(f'{r:.2f}' for r in result['pair_ratios'])} "
        f"(target <= {result['target_ratio']}: {verdict})"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    """Parse the command line, run the benchmark, write the JSON file and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="image height and width (>= 32)")
    parser.add_argument("--samples", type=int, default=50, help="number of resamples")
    parser.add_argument("--classes", type=int, default=1000, help="number of output classes")
    parser.add_argument("--batch-size", type=int, default=None, help="resamples per pass (default: automatic)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions of each phase")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, the image and the noise")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where the JSON results go")
    args = parser.parse_args(argv)
    if args.size < 32 or args.samples < 2 or args.repeats < 1 or args.classes < 2:
        parser.error("need --size >= 32, --samples >= 2, --repeats >= 1 and --classes >= 2")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    result = run(size=args.size, samples=args.samples, classes=args.classes, batch_size=args.batch_size,
                 repeats=args.repeats, seed=args.seed)  # fmt: skip
    write_json(result, args.output)
    print(report(result))
    print(f"written to {args.output}")
    return result


if __name__ == "__main__":
    main()
