"""Benchmark of decision paths (``stepwise.DecisionPaths``) against a hand-written baseline, on the Paths paper's
MNIST architecture.

The network is the paper's (conv 32@5x5, max-pool 3/2, conv 32@3x3, max-pool 3/2 -> 1,568 values, FC 100 tanh,
10 classes; "same" padding gives the paper's 32x7x7), with seeded random weights: the benchmark measures the
machinery, not a trained model. The inputs are 28x28 digits made from scikit-learn's bundled 8x8 digits (upsampled
to 20x20, shifted at random within the 28x28 frame, with a little noise), so that nothing is downloaded. As the
paper, k = 30 at the second conv (its pooled output, 1,568-d) and k = 15 at the FC layer, ``n_init=10``.

Measured:

- **time**: the library's ``fit`` against a baseline doing the same work by hand: a plain forward pass whose hooks
  collect the same activations into numpy, then the same ``KMeans`` calls as the library (``tol=0``: each restart
  run until no assignment changes). The two alternate ``--repeats`` times in the same process; the medians and
  their ratio are printed (target: at most 1.1).
- **peak memory** of ``fit``, in a fresh process (the peak resident set size reset just before, through
  ``/proc/self/clear_refs``), against the feature arrays plus the model (target: at most 1.3), with the peak of
  each phase (the forward pass, the k-means of each level), and the same for the baseline;
- **mini-batch** k-means (``algorithm="minibatch"``) on ``--minibatch-n`` inputs stored as bytes (a first module
  of the model scales them), its whole process's peak resident set size (target: within 1 GiB).

Run from the repository root: ``python examples/benchmark_paths.py`` (``--n``, ``--repeats``, ``--minibatch-n``;
``--parts`` picks among ``time memory minibatch``; ``--out`` names the JSON record, by default
``results/benchmarks/paths_N.json`` for N = ``--n``; with ``--update`` the parts measured replace theirs in an existing record).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

import stepwise
from stepwise.core.io import write_file
from stepwise.paths.decision_paths import DecisionPaths
from stepwise.paths.features import auto_batch_size

ROOT = Path(__file__).resolve().parent.parent
RECORDS = ROOT / "results" / "benchmarks"  # the record of N inputs: paths_N.json
LEVELS = ["5", "8"]  # the pooled output of the second conv (1,568-d), the FC layer after tanh (100-d)
K = {"5": 30, "8": 15}
PARTS = ("time", "memory", "minibatch")
N_INIT = 10
SEED = 0


class Bytes(nn.Module):
    """Pixels stored as bytes (0..255) to floats in [0, 1]: the inputs take a quarter of the memory."""

    def forward(self, x: Tensor) -> Tensor:
        return x.to(torch.float32) / 255.0


def paper_mnist(seed: int = SEED) -> nn.Sequential:
    """The Paths paper's MNIST network, seeded random weights, eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1),   # 32 x 14 x 14
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1),  # 32 x 7 x 7 = 1,568
            nn.Flatten(), nn.Linear(1568, 100), nn.Tanh(), nn.Linear(100, 10),
        ).eval()  # fmt: skip


def digit_images(n: int, seed: int = SEED, *, as_bytes: bool = False, chunk: int = 10_000) -> Tensor:
    """``n`` 28x28 digits (N, 1, 28, 28): scikit-learn's 8x8 digits upsampled to 20x20, shifted at random by up to
    4 pixels each way, with Gaussian noise (sigma 0.05), clipped to [0, 1]; as bytes with ``as_bytes``."""
    from sklearn.datasets import load_digits

    base = torch.as_tensor(load_digits().images, dtype=torch.float32).unsqueeze(1) / 16.0
    base = F.pad(F.interpolate(base, size=(20, 20), mode="bilinear", align_corners=False), (4, 4, 4, 4))
    generator = torch.Generator().manual_seed(seed)
    out = torch.empty((n, 1, 28, 28), dtype=torch.uint8 if as_bytes else torch.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        pick = torch.randint(len(base), (m,), generator=generator)
        shifts = torch.randint(-4, 5, (m, 2), generator=generator)
        images = base[pick]
        for i in range(m):  # cheap next to the forward passes
            images[i] = torch.roll(images[i], (int(shifts[i, 0]), int(shifts[i, 1])), dims=(1, 2))
        images = (images + 0.05 * torch.randn(images.shape, generator=generator)).clamp(0.0, 1.0)
        out[start : start + m] = (images * 255).round().to(torch.uint8) if as_bytes else images
    return out


def batch_size_for(model: nn.Module, n: int) -> int:
    """The batch size the library chooses for these levels (the baseline uses the same)."""
    from stepwise.core.levels import resolve_levels

    infos = resolve_levels(model, torch.zeros(2, 1, 28, 28), [*LEVELS, "output"])
    return auto_batch_size(infos, n)


def baseline(
    model: nn.Module, x: Tensor, batch_size: int, n_iter: dict[str, int] | None = None
) -> dict[str, np.ndarray]:
    """By hand: forward hooks collect the levels into numpy, then one KMeans per level; the assignments (and, in
    ``n_iter``, the iterations of each level's best restart)."""
    from sklearn.cluster import KMeans

    modules = dict(model.named_modules())
    parts: dict[str, list[np.ndarray]] = {level: [] for level in LEVELS}
    handles = [
        modules[level].register_forward_hook(
            lambda m, a, o, level=level: parts[level].append(o.reshape(len(o), -1).numpy().copy())
        )
        for level in LEVELS
    ]
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                model(x[start : start + batch_size])
    finally:
        for handle in handles:
            handle.remove()
    labels = {}
    for level in LEVELS:
        features = np.concatenate(parts.pop(level))
        # as the library: centred in place (copy_x=False), restarts run to strict convergence (tol=0)
        kmeans = KMeans(K[level], n_init=N_INIT, random_state=SEED, tol=0, copy_x=False).fit(features)
        labels[level] = kmeans.labels_
        if n_iter is not None:
            n_iter[level] = int(kmeans.n_iter_)
        del features, kmeans
    return labels


def library(model: nn.Module, x: Tensor, *, algorithm: str = "full", batch_size: int | None = None) -> DecisionPaths:
    return DecisionPaths(
        model, LEVELS, n_clusters=K, n_init=N_INIT, seed=SEED, algorithm=algorithm, batch_size=batch_size
    ).fit(x)


def _status(field: str) -> int:
    """A field of /proc/self/status in bytes (VmRSS: resident now; VmHWM: the peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> None:
    """Reset VmHWM, the peak resident set size, to the current one: "5" written to the kernel's control file
    /proc/self/clear_refs (a command to the kernel, not a file on disk)."""
    fd = os.open("/proc/self/clear_refs", os.O_WRONLY)
    try:
        os.write(fd, b"5")
    finally:
        os.close(fd)


def _phases(record: dict[str, float]) -> None:
    """Wrap the library's per-level k-means so that the peak resident set of each phase is recorded: the forward
    pass (up to the first k-means), then each level's k-means. Reading and resetting the peak costs microseconds."""
    from stepwise.paths import decision_paths

    inner = decision_paths.fit_full

    def fit_full(level, features, *args, **kwargs):  # type: ignore[no-untyped-def]
        record.setdefault("capture", _status("VmHWM"))
        _reset_peak()
        try:
            return inner(level, features, *args, **kwargs)
        finally:
            record[f"kmeans {level}"] = _status("VmHWM")
            _reset_peak()

    decision_paths.fit_full = fit_full


def child(kind: str, n: int) -> dict[str, float]:
    """Run one measured fit in this (fresh) process; return its memory figures."""
    model = paper_mnist()
    if kind == "minibatch":
        x = digit_images(n, as_bytes=True)
        model = nn.Sequential(Bytes(), *model).eval()
        levels_shift = {str(int(level) + 1): k for level, k in K.items()}
        before = _status("VmRSS")
        start = time.perf_counter()
        DecisionPaths(
            model,
            list(levels_shift),
            n_clusters=levels_shift,
            n_init=N_INIT,
            seed=SEED,
            algorithm="minibatch",
            batch_size=1024,
        ).fit(x)
        seconds = time.perf_counter() - start
        return {
            "n": n,
            "inputs_bytes": x.numel(),
            "rss_before": before,
            "peak_rss": _status("VmHWM"),
            "seconds": seconds,
        }
    x = digit_images(n)
    batch_size = batch_size_for(model, n)
    feature_bytes = n * (1568 + 100) * 4
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    before = _status("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    phases: dict[str, float] = {}
    if kind == "library":
        _phases(phases)
        library(model, x)
        phases["after"] = _status("VmHWM")
    else:
        baseline(model, x, batch_size)
    seconds = time.perf_counter() - start
    peak = max([_status("VmHWM"), *phases.values()])
    return {
        "n": n,
        "feature_bytes": feature_bytes,
        "model_bytes": model_bytes,
        "rss_before": before,
        "peak_rss": peak,
        "peak_rss_by_phase": phases,
        "seconds": seconds,
    }


def in_child(kind: str, n: int, threads: int | None) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", kind, "--n", str(n)]
    if threads:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=60_000, help="inputs of the time and memory runs (default 60000)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats of each timing (default 3)")
    parser.add_argument("--minibatch-n", type=int, default=200_000, help="inputs of the mini-batch run (0: skip)")
    parser.add_argument("--threads", type=int, help="limit torch and k-means to this many threads")
    parser.add_argument(
        "--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to measure (default: all three)"
    )
    parser.add_argument("--out", type=Path, help="the JSON record (default results/benchmarks/paths_N.json, N = --n)")
    parser.add_argument("--update", action="store_true", help="keep the other parts of an existing record")
    parser.add_argument("--child", choices=("library", "baseline", "minibatch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    if args.child:
        print(json.dumps(child(args.child, args.n)))
        return {}

    args.out = args.out or RECORDS / f"paths_{args.n}.json"
    if args.update and args.out.exists() and json.loads(args.out.read_text()).get("n_inputs") != args.n:
        parser.error(f"{args.out} records another number of inputs than --n {args.n}")
    record: dict = {}
    model = paper_mnist()
    batch_size = batch_size_for(model, args.n)
    record.update(
        {
            "benchmark": "stepwise.DecisionPaths on the Paths paper's MNIST network (random weights), digits 28x28",
            "levels": LEVELS,
            "n_clusters": K,
            "n_init": N_INIT,
            "kmeans_tol": 0,
            "n_inputs": args.n,
            "batch_size": batch_size,
            "torch": torch.__version__,
            "stepwise": stepwise.__version__,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads",
        }
    )

    def write() -> None:  # after each measurement, so that a run cut short keeps what it measured
        # with --update, the record is read again each time: two runs measuring different parts share one file
        old = json.loads(args.out.read_text()) if args.update and args.out.exists() else {}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_file(args.out, json.dumps({**old, **record}, indent=2) + "\n")

    if "time" in args.parts:
        x = digit_images(args.n)
        times: dict[str, list[float]] = {"baseline": [], "library": []}
        # the process's CPU time beside the wall time: on a machine shared with other work, the wall time of a fit
        # measures the load as much as the fit
        cpu: dict[str, list[float]] = {"baseline": [], "library": []}
        n_iter: dict[str, int] = {}
        for repeat in range(args.repeats):
            for kind in ("baseline", "library") if repeat % 2 == 0 else ("library", "baseline"):
                start, start_cpu = time.perf_counter(), time.process_time()
                if kind == "baseline":
                    reference = baseline(model, x, batch_size, n_iter)
                else:
                    fitted = library(model, x)
                times[kind].append(time.perf_counter() - start)
                cpu[kind].append(time.process_time() - start_cpu)
                print(
                    f"repeat {repeat + 1}/{args.repeats}: {kind} {times[kind][-1]:.1f} s ({cpu[kind][-1]:.1f} s CPU)",
                    flush=True,
                )
            from sklearn.metrics import adjusted_rand_score

            agree = {level: adjusted_rand_score(fitted.assignments_[level], reference[level]) for level in LEVELS}
            median = {kind: statistics.median(values) for kind, values in times.items()}
            ratio = median["library"] / median["baseline"]
            # each repeat times the two back to back: the median of their ratios is robust to the load of a shared
            # machine drifting between repeats, which the ratio of the medians is not
            paired = statistics.median(a / b for a, b in zip(times["library"], times["baseline"]))
            record.update(
                {
                    "repeats": repeat + 1,
                    "seconds": times,
                    "median_seconds": median,
                    "ratio_library_over_baseline": ratio,
                    "median_paired_ratio": paired,
                    "cpu_seconds": cpu,
                    "median_paired_cpu_ratio": statistics.median(
                        a / b for a, b in zip(cpu["library"], cpu["baseline"])
                    ),
                    "agreement_with_baseline": agree,
                    "kmeans_iterations_of_the_best_restart": n_iter,
                }
            )
            write()
        print(
            f"{args.n} inputs, batch {batch_size}: library {median['library']:.1f} s, baseline "
            f"{median['baseline']:.1f} s (medians of {args.repeats}); ratio {ratio:.3f}, median of the paired ratios "
            f"{paired:.3f} (target <= 1.1); "
            f"adjusted Rand index against the baseline's clusters {min(agree.values()):.4f}"
        )

    if "memory" in args.parts:
        memory = {kind: in_child(kind, args.n, args.threads) for kind in ("library", "baseline")}
        for kind, m in memory.items():
            growth = m["peak_rss"] - m["rss_before"]
            m["growth_over_features_and_model"] = growth / (m["feature_bytes"] + m["model_bytes"])
            phases = ", ".join(
                f"{phase} {(peak - m['rss_before']) / 2**20:.0f}" for phase, peak in m["peak_rss_by_phase"].items()
            )
            print(
                f"peak memory of the {kind} fit: {growth / 2**20:.0f} MiB over {m['rss_before'] / 2**20:.0f} MiB, "
                f"{m['growth_over_features_and_model']:.2f}x the feature arrays and the model "
                f"({(m['feature_bytes'] + m['model_bytes']) / 2**20:.0f} MiB; target <= 1.3)"
                + (f"; by phase (MiB): {phases}" if phases else "")
            )
        record["memory"] = memory
        write()

    if "minibatch" in args.parts and args.minibatch_n:
        minibatch = in_child("minibatch", args.minibatch_n, args.threads)
        print(
            f"minibatch on {args.minibatch_n} inputs (bytes, {minibatch['inputs_bytes'] / 2**20:.0f} MiB): peak "
            f"resident set {minibatch['peak_rss'] / 2**30:.2f} GiB (target <= 1 GiB), "
            f"{minibatch['seconds']:.0f} s"
        )
        record["minibatch"] = minibatch
        write()
    print(f"wrote {args.out}")
    return record


if __name__ == "__main__":
    main()
