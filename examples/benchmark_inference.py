"""Benchmarks of inference graphs, printed and written to ``results/benchmarks/inference_*.json``.

1. EM: the library's streamed diagonal EM in torch against ``sklearn.mixture.GaussianMixture(covariance_type="diag")``
   at 1,000,000 columns x 64 dimensions, K = 100, both started from the same parameters and run for the same number
   of iterations (scikit-learn with ``tol=0``, ``reg_covar=0``): seconds per run, the ratio, the log-likelihoods,
   and the peak memory above the data (the library streams batches of ``--em-batch`` columns).
2. The rest: co-occurrence (Eq. 4) and node selection (Algorithm 1, one class graph per class) over 10,000 inputs of
   the paper's MNIST architecture (conv 32@5x5, max-pool 3/2, conv 32@3x3, max-pool 3/2, FC 100 tanh, 10 classes)
   against one forward pass over the same inputs.

Timings are medians of alternating repeats, measured in the same run. The CPU may be shared: the sizes can be
reduced (``--columns``, ``--inputs``); the figures printed say which were run.

    .venv/bin/python examples/benchmark_inference.py [--columns 1000000] [--inputs 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

import stepwise
from stepwise.core.io import write_file
from stepwise.inference.cooccurrence import cooccurrence_counts
from stepwise.inference.gmm import DiagonalGMM, EMStatistics, em_step_statistics, em_update

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "results" / "benchmarks"


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def ours(x: torch.Tensor, start: DiagonalGMM, iterations: int, batch: int) -> tuple[float, DiagonalGMM]:
    gmm = start
    began = time.perf_counter()
    for _ in range(iterations):
        stats = EMStatistics.zeros(gmm)
        for i in range(0, len(x), batch):
            em_step_statistics(gmm, x[i : i + batch], stats)
        gmm = em_update(stats, 1e-30)
    return time.perf_counter() - began, gmm


def theirs(x: np.ndarray, start: DiagonalGMM, iterations: int):  # type: ignore[no-untyped-def]
    from sklearn.mixture import GaussianMixture

    reference = GaussianMixture(start.n_components, covariance_type="diag", weights_init=start.weights.numpy(),
                                means_init=start.means.numpy(), precisions_init=1.0 / start.variances.numpy(),
                                max_iter=iterations, tol=0.0, reg_covar=0.0, init_params="random_from_data")  # fmt: skip
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged within max_iter: fixed on purpose
        reference.fit(x)
    return time.perf_counter() - began, reference


def benchmark_em(columns: int, dims: int, k: int, iterations: int, repeats: int, batch: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(k, dims, generator=generator) * 2
    x = torch.empty(columns, dims)
    for i in range(0, columns, 1 << 17):  # a mixture, filled in chunks
        chunk = x[i : i + (1 << 17)]
        labels = torch.randint(k, (len(chunk),), generator=generator)
        chunk.copy_(centres[labels] + torch.randn(chunk.shape, generator=generator))
    data_mib = x.numel() * 4 / 2**20
    pick = torch.randperm(columns, generator=generator)
    start = DiagonalGMM(x[pick[:k]].clone(), x[pick[k : k + 1000]].var(0).expand(k, -1).clone(),
                        torch.full((k,), 1.0 / k))  # fmt: skip
    base = peak_mib()
    t, gmm = ours(x, start, iterations, batch)
    ours_peak = peak_mib() - base
    print(f"EM, ours: {t:.1f} s; peak memory above the data {ours_peak:.0f} MiB (data {data_mib:.0f} MiB)", flush=True)
    array = x.numpy()
    times: dict[str, list[float]] = {"ours": [t], "sklearn": []}
    reference = None
    for r in range(repeats):
        before = peak_mib()
        t_s, reference = theirs(array, start, iterations)
        times["sklearn"].append(t_s)
        if r == 0:
            sklearn_peak = peak_mib() - before
        print(f"EM, scikit-learn: {t_s:.1f} s", flush=True)
        if r < repeats - 1:
            times["ours"].append(ours(x, start, iterations, batch)[0])
            print(f"EM, ours: {times['ours'][-1]:.1f} s", flush=True)
    assert reference is not None
    ll_ours = float(torch.cat([gmm.log_likelihood(x[i : i + batch]) for i in range(0, columns, batch)]).double().mean())
    ll_theirs = float(reference.score(array))
    median = {name: statistics.median(v) for name, v in times.items()}
    return {
        "columns": columns, "dims": dims, "k": k, "iterations": iterations, "batch_columns": batch,
        "seconds": times, "median_s": median, "speedup": median["sklearn"] / median["ours"],
        "log_likelihood": {"ours": ll_ours, "sklearn": ll_theirs,
                           "relative_difference": abs(ll_ours - ll_theirs) / abs(ll_theirs)},
        "peak_memory_above_data_mib": {"ours": ours_peak, "sklearn": sklearn_peak}, "data_mib": data_mib,
    }  # fmt: skip


class PaperMNIST(nn.Module):
    """The paper's MNIST network: conv 32@5x5, max-pool 3/2, conv 32@3x3, max-pool 3/2, FC 100 tanh, 10 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.relu1, self.pool1 = nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(3, 2)
        self.conv2, self.relu2, self.pool2 = nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(3, 2)
        self.fc, self.tanh, self.out = nn.Linear(32 * 4 * 4, 100), nn.Tanh(), nn.Linear(100, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool2(self.relu2(self.conv2(self.pool1(self.relu1(self.conv1(x))))))
        return self.out(self.tanh(self.fc(x.flatten(1))))


def benchmark_rest(n_inputs: int, repeats: int, k: int) -> dict:
    torch.manual_seed(0)
    model = PaperMNIST().eval()
    generator = torch.Generator().manual_seed(1)
    inputs = torch.rand(n_inputs, 1, 28, 28, generator=generator)
    levels = ["relu1", "relu2", "tanh", "softmax"]
    ig = stepwise.InferenceGraphs(model, levels, n_words=k, max_iter=3, seed=0).fit(inputs[:500], validation=inputs)

    def forward() -> float:
        began = time.perf_counter()
        with torch.no_grad():
            for i in range(0, n_inputs, 1000):
                model(inputs[i : i + 1000])
        return time.perf_counter() - began

    words = ig.validation_words_
    pairs = list(zip(ig.levels_[:-1], ig.levels_[1:]))

    def counting() -> float:
        began = time.perf_counter()
        for low, up in pairs:
            cooccurrence_counts(words[up], words[low], ig._index[(up, low)], ig.n_words_[up], ig.n_words_[low])
        return time.perf_counter() - began

    def selecting() -> float:  # one class graph per class from the validation words (Q' over Omega, Algorithm 1)
        began = time.perf_counter()
        predicted = words[ig.levels_[-1]][:, 0]
        for c in range(10):
            chosen = (predicted == c).nonzero().flatten()
            if len(chosen):
                ig._graph({name: w[chosen] for name, w in words.items()}, c, 3, "class")
        return time.perf_counter() - began

    def assigning() -> float:  # the words of every level: a forward pass and every level's mixture
        began = time.perf_counter()
        ig._words_of(inputs, "words")
        return time.perf_counter() - began

    times: dict[str, list[float]] = {"forward": [], "cooccurrence": [], "selection": [], "words": []}
    for _ in range(repeats):
        for name, call in (("forward", forward), ("cooccurrence", counting), ("selection", selecting),
                           ("words", assigning)):  # fmt: skip
            times[name].append(call())
    median = {name: statistics.median(v) for name, v in times.items()}
    return {
        "inputs": n_inputs, "k": k, "levels": ig.levels_, "seconds": times, "median_s": median,
        "ratio_cooccurrence_and_selection_to_forward": (median["cooccurrence"] + median["selection"]) / median["forward"],
        "ratio_words_to_forward": median["words"] / median["forward"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, default=1_000_000)
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--em-batch", type=int, default=1 << 17)
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-em", action="store_true", help="only the co-occurrence and selection benchmark")
    parser.add_argument("--skip-rest", action="store_true", help="only the EM benchmark")
    args = parser.parse_args()
    machine = {"machine": f"{platform.system()} {platform.machine()}", "torch_threads": torch.get_num_threads(),
               "torch": torch.__version__}  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.skip_em:
        em = benchmark_em(args.columns, args.dims, args.k, args.iterations, args.repeats, args.em_batch)
        print(
            json.dumps(em["median_s"]),
            f"speed-up {em['speedup']:.2f}x;",
            f"log-likelihood relative difference {em['log_likelihood']['relative_difference']:.2e}",
        )
        write_file(OUT / "inference_em.json", json.dumps({**em, **machine}, indent=2) + "\n")
    if args.skip_rest:
        return
    rest = benchmark_rest(args.inputs, args.repeats, 50)
    print(json.dumps(rest["median_s"]),
          f"co-occurrence + selection / forward = {rest['ratio_cooccurrence_and_selection_to_forward']:.2f};",
          f"words / forward = {rest['ratio_words_to_forward']:.2f}")  # fmt: skip
    write_file(OUT / "inference_selection.json", json.dumps({**rest, **machine}, indent=2) + "\n")


if __name__ == "__main__":
    main()
