"""Benchmark: one SSA class traversal against a plain forward pass, the naive method and captum.

For each configuration, in a fresh process (so that peak memory is its own), on N random images:

(a) a plain forward pass of the images, no hooks, in the same batches as (b);
(b) the full ``StepwiseSensitivity.dependency_graph`` call, on a new instance (its level resolution, one forward
    pass on two images, and the ``torch.fx`` trace included);
(c) the naive method: one forward pass per input that records the autograd graph (batch of one), then one
    ``torch.autograd.grad`` per (neuron, input) through the local step. The gradient calls are timed on a sample
    of pairs at every step and extrapolated to the neuron sets the traversal of (b) actually visited; the
    forward pass is timed on a few inputs and counted once per input (``naive_grads_s`` gives the gradients
    alone);
(d) captum's ``NeuronGradient`` (the gradient of one neuron with respect to the input, one call per neuron
    for a batch of one input), timed on a sample and extrapolated the same way;

(a) and (b) are timed ``--repeats`` times, alternating, and the medians are reported (b/a is the ratio of the
medians; one run of either can be 20 % slower on this machine for no reason of its own). Also: process CPU times
of (a) and (b), the peak resident memory, the neuron-set size per level, and an exactness check: ω from
``StepwiseSensitivity.relevance`` (the code path of (b)) against (c)'s gradients on the sampled pairs.

Configurations: ``vgg16`` (a VGG16-shaped network, levels = input and the 16 weight layers' outputs, target one
logit), ``saturated`` (the same network, traversal from all logits) and ``resnet`` (a ResNet-18-shaped network,
levels = the stem and the eight block outputs, logits on top). The target logit is the first whose weight row has
a Tukey outlier: from the logits, ω is that row for every input, so a row without one ends the traversal at once.

Run ``python examples/benchmark_ssa.py`` (100 images at 224x224); ``--images 100 400`` measures both sizes and
their time ratio. Results go to ``results/benchmarks/ssa_vgg16.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from networks import resnet18_shaped, vgg16_shaped  # noqa: E402

import stepwise  # noqa: E402
from benchmark_common import Clock, peak_rss_mb
from stepwise.core.hooks import analysis_mode
from stepwise.core.levels import resolve_levels
from stepwise.ssa.step import step_forward  # noqa: E402
from stepwise.core.io import atomic_write  # noqa: E402
from stepwise.ssa.select import outlier_mask  # noqa: E402

CONFIGS = ("vgg16", "saturated", "resnet")
VGG_LEVELS = (
    ["input"]
    + [f"features.{i}" for i in (1, 3, 6, 8, 11, 13, 15, 18, 20, 22, 25, 27, 29)]
    + [
        "classifier.1",
        "classifier.4",
        "classifier.6",
    ]
)
RESNET_LEVELS = ["maxpool"] + [f"layer{s}.{b}" for s in (1, 2, 3, 4) for b in (0, 1)] + ["fc"]


def _first_logit_with_an_outlier(layer: nn.Linear) -> int:
    """From the logits, ω is the logit's weight row for every input: pick the first row with a Tukey outlier."""
    rows = layer.weight.detach()
    return int(outlier_mask(rows).any(dim=1).nonzero()[0])


def _build(config: str, num_classes: int) -> tuple[nn.Module, list[str], object]:
    if config == "resnet":
        model = resnet18_shaped(num_classes)
        return model, RESNET_LEVELS, _first_logit_with_an_outlier(model.fc)
    model = vgg16_shaped(num_classes)
    if config == "saturated":
        return model, VGG_LEVELS, [("classifier.6", n) for n in range(num_classes)]
    return model, VGG_LEVELS, _first_logit_with_an_outlier(model.classifier[6])


def _level_sets(graph: stepwise.DependencyGraph) -> dict[str, list[int]]:
    sets: dict[str, list[int]] = {level: [] for level in graph.levels}
    for _, data in graph.nodes(data=True):
        sets[data["level"]].append(data["index"])
    return {level: sorted(indices) for level, indices in sets.items()}


def _neuron_value(upper: torch.Tensor, n: int) -> torch.Tensor:
    channel = upper[:, n]
    return channel.flatten(1).mean(1).sum() if channel.dim() > 1 else channel.sum()


def _naive_step(model, images, lower, upper, neurons, pairs, generator):
    """Time per (neuron, input) gradient through the step, one input at a time; and the sampled ω values."""
    picks = torch.randint(len(images), (pairs,), generator=generator).tolist()
    chosen = [neurons[i] for i in torch.randint(len(neurons), (pairs,), generator=generator).tolist()]
    times, omegas = [], []
    with analysis_mode(model), torch.enable_grad():
        for image, n in zip(picks, chosen):
            leaf, up = step_forward(model, images[image : image + 1], lower, upper)
            start = time.perf_counter()
            (grad,) = torch.autograd.grad(_neuron_value(up, n), leaf)
            times.append(time.perf_counter() - start)
            omegas.append(grad[0].flatten(1).mean(1) if grad.dim() > 2 else grad[0])
    return sum(times) / len(times), picks, chosen, omegas


def _recording_forward(model, images, samples: int) -> float:
    """Time of one forward pass of one input that records the autograd graph (what the naive method needs)."""
    times = []
    with analysis_mode(model), torch.enable_grad():
        for image in range(samples):
            x = images[image : image + 1].clone().requires_grad_(True)
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return sum(times) / len(times)


def _captum_step(model, images, upper, neurons, samples, generator):
    """Time of one captum NeuronGradient call (one neuron, one input)."""
    from captum.attr import NeuronGradient

    explainer = NeuronGradient(model, upper.module) if upper.module is not None else None
    if explainer is None:
        return None
    times = []
    for _ in range(samples):
        image = int(torch.randint(len(images), (1,), generator=generator))
        n = neurons[int(torch.randint(len(neurons), (1,), generator=generator))]
        selector = (lambda out, n=n: out[:, n].flatten(1).mean(1)) if len(upper.shape) > 1 else n
        start = time.perf_counter()
        explainer.attribute(images[image : image + 1], neuron_selector=selector)
        times.append(time.perf_counter() - start)
    return sum(times) / len(times)


def run_config(
    config: str,
    n_images: int,
    size: int,
    batch_size: int,
    pairs: int,
    num_classes: int,
    captum_samples: int,
    repeats: int,
) -> dict:
    """Measure one configuration; meant to run in its own process."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model, levels, target = _build(config, num_classes)
    images = torch.randn(n_images, 3, size, size, generator=generator)
    rss_model = peak_rss_mb()

    def plain_forward() -> Clock:  # (a)
        with torch.no_grad(), Clock() as clock:
            for first in range(0, n_images, batch_size):
                model(images[first : first + batch_size])
        return clock

    with torch.no_grad():
        model(images[:batch_size])  # warm-up
    forwards, traversals = [], []
    for _ in range(repeats):  # (a) and (b) alternate, so that a slow spell of the machine hits both
        forwards.append(plain_forward())
        ssa = stepwise.StepwiseSensitivity(model, levels, batch_size=batch_size)
        with Clock() as clock:  # (b), cold: level resolution and the fx trace included
            graph = ssa.dependency_graph(images, target=target)
        traversals.append(clock)
    rss_traversal = peak_rss_mb()
    forward, forward_cpu = statistics.median(c.wall for c in forwards), statistics.median(c.cpu for c in forwards)
    traversal, traversal_cpu = (
        statistics.median(c.wall for c in traversals),
        statistics.median(c.cpu for c in traversals),
    )

    infos = resolve_levels(model, images[:2], levels)
    sets = _level_sets(graph)
    naive_forward = _recording_forward(model, images, min(3, n_images)) * n_images
    naive, captum, worst_error, steps = 0.0, 0.0, 0.0, []
    for position in range(len(infos) - 1, 0, -1):
        lower, upper = infos[position - 1], infos[position]
        neurons = sets[upper.name]
        if not neurons:
            continue
        per_pair, picks, chosen, omegas = _naive_step(model, images, lower, upper, neurons, pairs, generator)
        fast = ssa.relevance(
            images[sorted(set(picks))], upper=upper.name, lower=lower.name, neurons=sorted(set(chosen))
        )
        rows = {image: row for row, image in enumerate(sorted(set(picks)))}
        cols = {n: col for col, n in enumerate(sorted(set(chosen)))}
        for image, n, omega in zip(picks, chosen, omegas):
            ours = fast[cols[n], rows[image]]
            error = ((ours - omega).abs().max() / omega.abs().max().clamp_min(1e-30)).item()
            worst_error = max(worst_error, error)
        per_captum = _captum_step(model, images, upper, neurons, captum_samples, generator)
        naive += per_pair * len(neurons) * n_images
        if per_captum is not None:
            captum += per_captum * len(neurons) * n_images
        steps.append({"step": f"{lower.name} <- {upper.name}", "neurons": len(neurons), "naive_s_per_pair": per_pair,
                      "captum_s_per_call": per_captum})  # fmt: skip
    return {
        "config": config,
        "load_average_1min": os.getloadavg()[0],  # other work on the machine disturbs every timing above
        "images": n_images,
        "size": size,
        "batch_size": batch_size,
        "repeats": repeats,
        "forward_s": forward,
        "traversal_s": traversal,
        "forward_s_each": [c.wall for c in forwards],
        "traversal_s_each": [c.wall for c in traversals],
        "forward_cpu_s": forward_cpu,
        "traversal_cpu_s": traversal_cpu,
        "b_over_a_cpu": traversal_cpu / forward_cpu,
        "naive_s": naive_forward + naive,
        "naive_grads_s": naive,
        "captum_s": captum,
        "b_over_a": traversal / forward,
        "c_over_b": (naive_forward + naive) / traversal,
        "d_over_b": captum / traversal,
        "peak_rss_mb": rss_traversal,
        "rss_after_model_mb": rss_model,
        "max_relative_error": worst_error,
        "graph": repr(graph),
        "neuron_set_sizes": {level: len(indices) for level, indices in sets.items()},
        "steps": steps,
    }


def _child(queue, *args) -> None:
    queue.put(run_config(*args))


def measure(config: str, *args) -> dict:
    """Run :func:`run_config` in a fresh process and return its figures."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, config, *args))
    process.start()
    result = queue.get()
    process.join()
    return result


def _table(results: list[dict]) -> str:
    header = f"{'config':10} {'images':>6} {'a fwd s':>8} {'b ssa s':>8} {'c naive s':>10} {'d captum s':>10} " \
             f"{'b/a':>6} {'b/a cpu':>7} {'c/b':>7} {'d/b':>8} {'RSS MB':>7} {'max rel err':>11}"  # fmt: skip
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r['config']:10} {r['images']:6d} {r['forward_s']:8.2f} {r['traversal_s']:8.2f} {r['naive_s']:10.1f} "
            f"{r['captum_s']:10.1f} {r['b_over_a']:6.3f} {r['b_over_a_cpu']:7.3f} {r['c_over_b']:7.1f} {r['d_over_b']:8.1f} "
            f"{r['peak_rss_mb']:7.0f} {r['max_relative_error']:11.2e}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, nargs="+", default=[100], help="numbers of images (default 100)")
    parser.add_argument("--size", type=int, default=224, help="image height and width (default 224)")
    parser.add_argument("--batch-size", type=int, default=10, help="images per forward pass (default 10)")
    parser.add_argument("--pairs", type=int, default=4, help="(neuron, input) pairs timed per step (default 4)")
    parser.add_argument("--classes", type=int, default=1000, help="number of logits (default 1000)")
    parser.add_argument("--captum-samples", type=int, default=2, help="captum calls timed per step (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of (a) and (b), alternating (default 3)")
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS), help="what to run")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/ssa_vgg16.json"), help="JSON file")
    args = parser.parse_args(argv)

    results = []
    for n_images in args.images:
        for config in args.configs:
            result = measure(
                config,
                n_images,
                args.size,
                args.batch_size,
                args.pairs,
                args.classes,
                args.captum_samples,
                args.repeats,
            )
            results.append(result)
            print(_table([result]).splitlines()[-1], flush=True)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },  # fmt: skip
        "results": results,
    }
    if len(args.images) > 1:
        report["scaling"] = {
            config: {
                f"{n}/{args.images[0]}": next(r for r in results if r["config"] == config and r["images"] == n)[
                    "traversal_s"
                ]
                / next(r for r in results if r["config"] == config and r["images"] == args.images[0])["traversal_s"]
                for n in args.images[1:]
            }
            for config in args.configs
        }
    print()
    print(_table(results))
    for result in results:
        print(f"\n{result['config']} ({result['images']} images): {result['graph']}; neuron sets per level:")
        print("  " + ", ".join(f"{level} {size}" for level, size in result["neuron_set_sizes"].items()))
    if "scaling" in report:
        print("\ntraversal time ratios:", json.dumps(report["scaling"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, lambda stream: stream.write(json.dumps(report, indent=2).encode("utf-8")))
    print(f"\nwrote {args.out}")
    return report


if __name__ == "__main__":
    main()
