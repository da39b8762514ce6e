"""Benchmark: ActivationSorter.fit against a plain forward pass, and the layer summaries of every level.

On N random images at 224x224 for a VGG16-shaped network (1,000 classes, random weights), with every default level
(the thirteen convolution ReLUs, the two hidden fully connected ReLUs and the softmax: about 13,400 neurons) and
``reduce="mean"``:

(a) a plain forward pass of the images, no hooks, under ``torch.no_grad`` in eval mode, in the same batches as (b);
(b) ``ActivationSorter(...).fit(images, labels)`` on a new instance: the draw per class, the level resolution (one
    forward pass on two images), and the streamed pass that reduces every level inside its hook and copies the
    values into preallocated float32 arrays;
(c) ``layer_summary`` of every level (zero-aligned edges, class counts, width classes and the neuron kinds).

(a) and (b) are timed ``--repeats`` times, alternating, and the medians are reported, with their ratio; (c) is
timed once per repeat, median reported; with ``--summary-inputs M``, (c) is also timed over the fitted values
resampled to M rows (the cost of the summaries at M inputs without M forward passes). Also the process CPU times, the size of the values held and the peak
resident memory. The labels are ten classes, N/10 images each, and ``per_class=N/10``, so every image is used.

Run ``python examples/benchmark_sorter.py`` (1,000 images); ``--images 100`` for a shorter run. Results go to
``results/benchmarks/sorter_vgg16.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from networks import vgg16_shaped  # noqa: E402

import stepwise  # noqa: E402
from benchmark_common import Clock
from stepwise.core.io import write_file  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
N_CLASSES = 10


def _plain_forward(model: torch.nn.Module, images: torch.Tensor, batch_size: int) -> None:
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            model(images[start : start + batch_size])


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000, help="number of 224x224 images (a multiple of 10)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats of (a) and (b)")
    parser.add_argument("--batch-size", type=int, default=20, help="images per forward pass, for (a) and (b)")
    parser.add_argument("--size", type=int, default=224, help="image side")
    parser.add_argument(
        "--summary-inputs",
        type=int,
        default=0,
        help="also time the layer summaries of all levels over this many inputs: the fitted values resampled "
        "(with replacement, seed 1) to that many rows, through ActivationSorter.from_values",
    )
    parser.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "sorter_vgg16.json"))
    args = parser.parse_args(argv)
    if args.images % N_CLASSES:
        parser.error(f"--images must be a multiple of {N_CLASSES}, got {args.images}")

    model = vgg16_shaped(1000)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.images, 3, args.size, args.size, generator=generator)
    labels = torch.arange(args.images) % N_CLASSES
    per_class = args.images // N_CLASSES
    _plain_forward(model, images[: args.batch_size], args.batch_size)  # warm-up: allocator, kernels

    forward, fit, summaries, fit_cpu, forward_cpu = [], [], [], [], []
    sorter = None
    for repeat in range(args.repeats):
        with Clock() as clock:
            _plain_forward(model, images, args.batch_size)
        forward.append(clock.wall)
        forward_cpu.append(clock.cpu)
        with Clock() as clock:
            sorter = stepwise.ActivationSorter(model, per_class=per_class, batch_size=args.batch_size).fit(
                images, labels
            )
        fit.append(clock.wall)
        fit_cpu.append(clock.cpu)
        with Clock() as clock:
            for level in sorter.levels_:
                sorter.layer_summary(level)
        summaries.append(clock.wall)
        print(
            f"repeat {repeat + 1}/{args.repeats}: forward {forward[-1]:.1f} s, fit {fit[-1]:.1f} s, "
            f"layer summaries {summaries[-1]:.2f} s",
            flush=True,
        )
    assert sorter is not None
    resampled = None
    if args.summary_inputs:
        rows = np.random.default_rng(1).integers(0, args.images, size=args.summary_inputs)
        values = {level: v[rows] for level, v in sorter.values_.items()}
        times = []
        for _ in range(args.repeats):
            big = stepwise.ActivationSorter.from_values(values, sorter.labels_[rows])  # nothing cached
            with Clock() as clock:
                for level in big.levels_:
                    big.layer_summary(level)
            times.append(clock.wall)
        resampled = statistics.median(times)
        print(f"layer summaries of all levels over {args.summary_inputs} inputs: {resampled:.2f} s (median)")
    n_neurons = sum(v.shape[1] for v in sorter.values_.values())
    held = sum(v.nbytes for v in sorter.values_.values())
    record = {
        "network": "vgg16_shaped(1000 classes), random weights",
        "images": args.images,
        "image_size": args.size,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "levels": sorter.levels_,
        "neurons": n_neurons,
        "values_dtype": str(next(iter(sorter.values_.values())).dtype),
        "values_mb": held / 2**20,
        "forward_s": statistics.median(forward),
        "fit_s": statistics.median(fit),
        "fit_over_forward": statistics.median(fit) / statistics.median(forward),
        "forward_cpu_s": statistics.median(forward_cpu),
        "fit_cpu_s": statistics.median(fit_cpu),
        "fit_over_forward_cpu": statistics.median(fit_cpu) / statistics.median(forward_cpu),
        "layer_summaries_s": statistics.median(summaries),
        "summary_inputs": args.summary_inputs or None,
        "layer_summaries_resampled_s": resampled,
        "forward_runs_s": forward,
        "fit_runs_s": fit,
        "layer_summary_runs_s": summaries,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    print(
        f"{args.images} images at {args.size}x{args.size}, {len(sorter.levels_)} levels, {n_neurons} neurons: "
        f"forward {record['forward_s']:.1f} s, fit {record['fit_s']:.1f} s "
        f"(fit/forward {record['fit_over_forward']:.3f} wall, {record['fit_over_forward_cpu']:.3f} CPU); "
        f"values {record['values_mb']:.1f} MB float32; layer summaries of all levels {record['layer_summaries_s']:.2f} s; "
        f"peak RSS {record['peak_rss_mb']:.0f} MB"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_file(out, json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")
    return record


if __name__ == "__main__":
    main()
