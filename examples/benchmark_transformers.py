"""Benchmark: a class dependency graph of MiniLM against the naive method, on 100 sentences of one topic.

The model is the shipped classifier (:func:`stepwise.models.minilm.minilm_classifier`: the pretrained
all-MiniLM-L6-v2, a linear probe on its mean-pooled embedding), in float32 on the CPU; the levels are the MLP
activations of its six layers (``transformer.encoder.layer.{i}.intermediate``, 1,536 neurons each, token-averaged
over the real tokens) and the probe's softmax on top; the inputs are the 100 sentences of the target topic in the
shipped set, tokenized to at most 32 tokens and padded to the longest. Measured, in this order, ``--repeats`` times
alternating, medians reported:

(a) a plain forward pass of the batch, no gradients;
(b) the full ``StepwiseSensitivity.dependency_graph`` call on a new instance (level resolution included);
(c) the naive method: for every step and sentence, one forward pass of that sentence alone that records the
    autograd graph of the step, then one ``torch.autograd.grad`` of the masked token mean per visited upper neuron
    (the neuron sets of (b)'s graph). It runs in full on every ``--naive-every``-th sentence (10 of 100 by default:
    every step, every visited neuron) and its time is scaled to all sentences, which it is proportional to.

Also: (b) in forward passes of the batch (b / a); a FLOP estimate of (b) (``torch.utils.flop_counter`` on each step's
recording forward pass over the batch and on one neuron's backward pass, times the visited neurons) against this
CPU's measured matrix-product throughput; where (b)'s time goes, step by step (the recording forward pass and the
batched backward passes, timed on the same code path); the peak resident memory; and an exactness check of ω (the
code path of (b)) against (c)'s gradients.

Run: ``python examples/benchmark_transformers.py``. Results go to ``results/benchmarks/transformers.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import stepwise
from benchmark_common import Clock, peak_rss_mb
from stepwise.core.hooks import analysis_mode
from stepwise.core.inputs import KeywordInputs
from stepwise.core.io import atomic_write
from stepwise.core.levels import resolve_levels
from stepwise.models.minilm import minilm_classifier, minilm_tokenizer, sentence_data, tokenize
from stepwise.ssa.relevance import step_relevance
from stepwise.ssa.step import step_forward

os.environ.setdefault("HF_HUB_OFFLINE", "1")

LEVELS = [f"transformer.encoder.layer.{i}.intermediate" for i in range(6)] + ["softmax"]
OUT = Path("results/benchmarks/transformers.json")


def _matmul_gflops(size: int = 1024, repeats: int = 10) -> float:
    """This CPU's float32 matrix-product throughput, GFLOP/s (the best of ``repeats``)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def _neuron_sets(graph: stepwise.DependencyGraph) -> dict[str, list[int]]:
    sets: dict[str, list[int]] = {level: [] for level in graph.levels}
    for _, data in graph.nodes(data=True):
        sets[data["level"]].append(data["index"])
    return {level: sorted(indices) for level, indices in sets.items()}


def _value(upper: torch.Tensor, n: int) -> torch.Tensor:
    """Neuron ``n`` of one sentence alone: its mean over the tokens (every token is real), or a class's score."""
    return upper[0, n] if upper.dim() == 2 else upper[0, :, n].mean()


def _naive(model, batch, infos, sets, every: int) -> tuple[float, list]:
    """Seconds of the naive method on every ``every``-th sentence; ω of each step's first neuron on each."""
    omegas = []
    with analysis_mode(model), torch.enable_grad(), Clock() as clock:
        for i in range(0, len(batch), every):
            sentence = batch[i : i + 1].without_padding()
            for position in range(len(infos) - 1, 0, -1):
                lower, upper = infos[position - 1], infos[position]
                neurons = sets[upper.name]
                if not neurons:
                    continue
                leaf, up = step_forward(model, sentence, lower, upper)
                for n in neurons:
                    (grad,) = torch.autograd.grad(_value(up, n), leaf, retain_graph=True)
                    if n == neurons[0]:
                        omegas.append((position, i, n, grad[0].mean(dim=0)))
    return clock.wall, omegas


def _step_flops(model, batch, lower, upper, neurons: list[int]) -> tuple[int, int]:
    """FLOPs of the step's recording forward pass over the batch, and of one neuron's backward pass."""
    with analysis_mode(model), torch.enable_grad():
        with FlopCounterMode(display=False) as forward:
            leaf, up = step_forward(model, batch, lower, upper)
        cotangent = torch.zeros_like(up)
        if up.dim() == 2:
            cotangent[:, neurons[0]] = 1
        else:
            cotangent[..., neurons[0]] = batch.mask.to(up.dtype)
        with FlopCounterMode(display=False) as backward:
            torch.autograd.grad(up, leaf, cotangent)
    return forward.get_total_flops(), backward.get_total_flops()


def _step_times(model, batch, lower, upper, neurons: list[int]) -> tuple[float, float]:
    """Seconds of the step's recording forward pass and of its batched backward passes, as (b) runs them."""
    with analysis_mode(model), torch.enable_grad():
        with Clock() as forward:
            leaf, up = step_forward(model, batch, lower, upper)
        with Clock() as backward:
            step_relevance(leaf, up, neurons, rule="gradient", lower_channel_dim=lower.channel_dim,
                           upper_channel_dim=upper.channel_dim, mask=batch.mask)  # fmt: skip
    return forward.wall, backward.wall


def run(n_sentences: int, topic: int, repeats: int, every: int) -> dict:
    torch.manual_seed(0)
    model = minilm_classifier()
    data = sentence_data()
    rows = torch.nonzero(data.labels == topic).flatten()[:n_sentences]
    batch = KeywordInputs(tokenize([data.texts[i] for i in rows], minilm_tokenizer(), max_length=32))
    with torch.no_grad():
        model(**batch.tensors)  # warm-up
    rss_model = peak_rss_mb()
    infos = resolve_levels(model, batch[:2], LEVELS, steps=True)
    forwards, graphs, naives = [], [], []
    for _ in range(repeats):  # (a), (b) and (c) alternate, so that a slow spell of the machine hits each
        with torch.no_grad(), Clock() as clock:
            model(**batch.tensors)
        forwards.append(clock)
        analysis = stepwise.StepwiseSensitivity(model, LEVELS)
        with Clock() as clock:
            graph = analysis.dependency_graph(batch, target=topic)
        graphs.append(clock)
        sets = _neuron_sets(graph)
        seconds, omegas = _naive(model, batch, infos, sets, every)
        naives.append(seconds * n_sentences / len(range(0, n_sentences, every)))
    rss_graph = peak_rss_mb()
    forward = statistics.median(c.wall for c in forwards)
    traversal = statistics.median(c.wall for c in graphs)
    naive = statistics.median(naives)

    worst = 0.0
    for position, i, n, omega in omegas:
        ours = analysis.relevance(batch[i : i + 1], upper=infos[position].name, lower=infos[position - 1].name,
                                  neurons=[n])[0, 0]  # fmt: skip
        worst = max(worst, float((ours - omega).abs().max() / omega.abs().max()))
    throughput = _matmul_gflops()
    flops, steps = 0, []
    for position in range(len(infos) - 1, 0, -1):
        lower, upper = infos[position - 1], infos[position]
        neurons = sets[upper.name]
        if not neurons:
            continue
        forward_flops, backward_flops = _step_flops(model, batch, lower, upper, neurons)
        step_flops = forward_flops + len(neurons) * backward_flops
        flops += step_flops
        forward_s, backward_s = _step_times(model, batch, lower, upper, neurons)
        steps.append({
            "step": f"{lower.name} <- {upper.name}", "upper_neurons": len(neurons),
            "recording_forward_s": forward_s, "batched_backward_s": backward_s,
            "backward_s_per_neuron": backward_s / len(neurons), "gflop": step_flops / 1e9,
        })  # fmt: skip
    measured_steps = sum(s["recording_forward_s"] + s["batched_backward_s"] for s in steps)
    return {
        "load_average_1min": os.getloadavg()[0],
        "sentences": n_sentences,
        "topic": data.classes[topic],
        "tokens": {"padded_to": batch.shape[1], "real_mean": float(batch.mask.double().sum(1).mean())},
        "repeats": repeats,
        "forward_s": forward,
        "graph_s": traversal,
        "forward_s_each": [c.wall for c in forwards],
        "graph_s_each": [c.wall for c in graphs],
        "graph_cpu_s": statistics.median(c.cpu for c in graphs),
        "graph_in_forward_passes": traversal / forward,
        "naive_s": naive,
        "naive_s_each": naives,
        "naive_sentences_run": len(range(0, n_sentences, every)),
        "naive_over_graph": naive / traversal,
        "graph_gflop_estimate": flops / 1e9,
        "matmul_gflops_per_s": throughput,
        "graph_s_at_matmul_throughput": flops / 1e9 / throughput,
        "steps_timed_s": measured_steps,
        "rest_s": traversal - measured_steps,
        "peak_rss_mb": rss_graph,
        "rss_after_model_mb": rss_model,
        "max_relative_error": worst,
        "graph": repr(graph),
        "neuron_set_sizes": {level: len(indices) for level, indices in sets.items()},
        "steps": steps,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=100, help="sentences of the topic (default 100)")
    parser.add_argument("--topic", type=int, default=1, help="target class (default 1, sport)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of (a) and (b), alternating (default 3)")
    parser.add_argument("--naive-every", type=int, default=10, help="run (c) on every n-th sentence (default 10)")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON file")
    args = parser.parse_args(argv)
    result = run(args.sentences, args.topic, args.repeats, args.naive_every)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },  # fmt: skip
        "result": result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, lambda stream: stream.write(json.dumps(report, indent=2).encode("utf-8")))
    r = result
    print(f"{r['graph']} on {r['sentences']} sentences ({r['topic']}), padded to {r['tokens']['padded_to']} tokens")
    print("neurons per level: " + ", ".join(f"{k.split('.')[-2:][0]}:{v}" for k, v in r["neuron_set_sizes"].items()))
    print(f"(a) forward {r['forward_s']:.3f} s   (b) graph {r['graph_s']:.2f} s = {r['graph_in_forward_passes']:.0f} "
          f"forward passes   (c) naive {r['naive_s']:.1f} s (run on {r['naive_sentences_run']} sentences, scaled)   "
          f"c/b = {r['naive_over_graph']:.2f}")  # fmt: skip
    print(f"FLOPs of (b): {r['graph_gflop_estimate']:.0f} GFLOP; at this CPU's {r['matmul_gflops_per_s']:.0f} GFLOP/s "
          f"(float32 matmul) that is {r['graph_s_at_matmul_throughput']:.2f} s")  # fmt: skip
    print(f"where (b)'s time goes: {r['steps_timed_s']:.2f} s in the steps, {r['rest_s']:.2f} s elsewhere")
    for s in r["steps"]:
        print(f"  {s['step']:70} {s['upper_neurons']:4d} neurons: forward {s['recording_forward_s']:.3f} s, "
              f"backward {s['batched_backward_s']:.2f} s ({1e3 * s['backward_s_per_neuron']:.1f} ms a neuron), "
              f"{s['gflop']:.0f} GFLOP")  # fmt: skip
    print(f"peak RSS {r['peak_rss_mb']:.0f} MB (after loading the model {r['rss_after_model_mb']:.0f} MB); "
          f"max relative error of ω against the naive gradients {r['max_relative_error']:.1e}")  # fmt: skip
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
