"""SSA paper, Fig. 2 and section 4.1, re-measured on the shipped digits CNN.

The paper (VGG16, ImageNet, 100 images per class) reports that (i) a small share of a layer's neurons — under
6 %, 189 of the 4096 neurons of fc2 (4.6 %) for one class — are positive Tukey outliers of ω in at least one
image; (ii) the outliers differ between images of one class; and (iii) how often a neuron is an outlier follows a
power law, the first three occurring in almost every image.

For each class (the first 100 training images classified correctly with probability >= 0.99) and each step
between the default levels, this script computes ω for every upper neuron (the class neuron for the top step)
and measures:

- ``ever_share``: per upper neuron, the share of the lower level's neurons that are positive outliers in at least
  one image (the paper's 4.6 %);
- ``row_share``: the share of a row ω[n, i, :] that is a positive outlier, beside the 0.35 % of a normal
  distribution (the mass beyond Q3 + 1.5 IQR);
- ``rows_with_outliers``: the share of rows with at least one positive outlier, and ``silent_neurons``: the share of
  upper neurons without a positive outlier on any image (a traversal cannot continue below them);
- the rank-frequency curve of the outlier counts: least-squares fits of log(count) on log(rank) (a power law:
  slope and R²) and on rank (an exponential: R²), for the class neuron of each class (the paper's Fig. 2a) and for
  every upper neuron with at least 5 distinct outliers.

The same row statistics and the dependency-graph sizes are measured for a model trained identically but without
the L1 penalty of ``examples/train_digits.py``, with the kurtosis of each layer's weights (normal: 3, uniform:
1.8), to show why the shipped model carries that penalty.

Writes ``results/fidelity/outliers.json`` and ``results/fidelity/outlier_frequency.png``. Run from the repository
root: ``python examples/fidelity_outliers.py`` (about a minute, plus the training of the comparison model).
"""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from fidelity_common import LEVELS, confident_inputs, float64_model, save_json, save_png
from scipy.stats import norm
from torch import nn

import stepwise
from stepwise.core.levels import resolve_levels
from stepwise.models import digits_data
from stepwise.plot import plot_outlier_frequency
from stepwise.ssa.select import outlier_mask

SEED = 0
MIN_DISTINCT = 5  # distinct outliers a neuron needs for its rank-frequency fits
SHOWN_CLASS = 0  # the class of the bar plot
GAUSSIAN_SHARE = float(norm.sf(norm.ppf(0.75) + 1.5 * (norm.ppf(0.75) - norm.ppf(0.25))))


def fits(counts: np.ndarray) -> dict[str, object]:
    """Least-squares fits of the rank-frequency curve of the positive counts: a power law and an exponential.

    A curve whose counts are all equal (``flat``) fits neither: its slopes are 0 and its R² undefined (None).
    """
    values = np.sort(counts[counts > 0])[::-1].astype(np.float64)
    ranks = np.arange(1, len(values) + 1, dtype=np.float64)
    logs = np.log(values)
    flat = bool(values.min() == values.max())
    record: dict[str, object] = {"distinct": len(values), "flat": flat}
    for name, x in (("power", np.log(ranks)), ("exponential", ranks)):
        slope, intercept = np.polyfit(x, logs, 1)
        residual = ((logs - (slope * x + intercept)) ** 2).sum()
        record[f"{name}_slope"] = float(slope)
        record[f"{name}_r2"] = None if flat else float(1 - residual / ((logs - logs.mean()) ** 2).sum())
    return record


def step_statistics(model: nn.Module, inputs: dict[int, torch.Tensor]) -> list[dict]:
    """Per step (top first), the outlier statistics over classes and upper neurons."""
    ssa = stepwise.StepwiseSensitivity(model, LEVELS)
    steps = []
    for position in range(len(LEVELS) - 1, 0, -1):
        upper, lower = LEVELS[position], LEVELS[position - 1]
        ever, row_share, rows_with, silent, neuron_fits = [], [], [], [], []
        for c, x in inputs.items():
            neurons = [c] if upper == "softmax" else list(range(_width(model, x, upper)))
            mask = outlier_mask(ssa.relevance(x, upper=upper, lower=lower, neurons=neurons))  # (n, N, K)
            counts = mask.sum(dim=1)  # (n, K)
            ever += (counts > 0).double().mean(dim=1).tolist()
            row_share.append(mask.double().mean().item())
            rows_with.append(mask.any(dim=2).double().mean().item())
            silent += (counts.sum(dim=1) == 0).tolist()
            neuron_fits += [fits(row.numpy()) for row in counts if int((row > 0).sum()) >= MIN_DISTINCT]
        ever_array = np.array(ever)
        steps.append(
            {
                "step": f"{lower} <- {upper}",
                "lower_neurons": int(mask.shape[2]),
                "upper_neurons_measured": len(ever),
                "ever_share_median": float(np.median(ever_array)),
                "ever_share_mean": float(ever_array.mean()),
                "ever_share_max": float(ever_array.max()),
                "ever_share_at_most_6_percent": float((ever_array <= 0.06).mean()),
                "row_share_mean": float(np.mean(row_share)),
                "rows_with_outliers": float(np.mean(rows_with)),
                "silent_neurons": float(np.mean(silent)),
                "neurons_fitted": len(neuron_fits),
                "flat_counts": _mean([r["flat"] for r in neuron_fits]),
                **_fit_summary([r for r in neuron_fits if not r["flat"]]),
            }
        )
    return steps


def _width(model: nn.Module, x: torch.Tensor, level: str) -> int:
    infos = resolve_levels(model, x[:2], ["input", level])
    return infos[1].n_neurons


def _mean(values: list) -> float | None:
    return float(np.mean(values)) if values else None


def _fit_summary(rows: list[dict]) -> dict[str, float | None]:
    """Medians of the fits of curves that are not flat, and how often the power law fits better."""
    return {
        "power_law_slope_median": _median([r["power_slope"] for r in rows]),
        "power_r2_median": _median([r["power_r2"] for r in rows]),
        "exponential_r2_median": _median([r["exponential_r2"] for r in rows]),
        "power_law_fits_better": _mean([r["power_r2"] > r["exponential_r2"] for r in rows]),
    }


def _median(values: list) -> float | None:
    return float(np.median(values)) if values else None


def graph_sizes(model: nn.Module, inputs: dict[int, torch.Tensor]) -> dict[str, object]:
    """Nodes per level (bottom to top) of each class graph, and how many traversals reached the bottom."""
    ssa = stepwise.StepwiseSensitivity(model, LEVELS)
    sizes = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a traversal that stops early is what is measured
        for c, x in inputs.items():
            graph = ssa.dependency_graph(x, target=c)
            sizes[c] = [sum(1 for _, level in graph.nodes(data="level") if level == name) for name in LEVELS]
    return {"nodes_per_level": sizes, "reached_bottom": sum(s[0] > 0 for s in sizes.values())}


def kurtosis(model: nn.Module) -> dict[str, float]:
    """Kurtosis of each Conv/Linear layer's weights (normal 3, uniform 1.8)."""
    values = {}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            w = module.weight.detach().double().flatten()
            z = (w - w.mean()) / w.std(correction=0)
            values[name] = float((z**4).mean())
    return values


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def main() -> dict:
    from train_digits import train

    data = digits_data()
    model = float64_model()
    inputs = confident_inputs(model, data)

    top = stepwise.StepwiseSensitivity(model, LEVELS)
    fig2a = {}
    for c, x in inputs.items():
        counts = top.outlier_counts(x, upper="softmax", lower="classifier.1", neurons=c)[0].numpy()
        order = np.sort(counts)[::-1]
        fig2a[c] = {
            "images": len(x),
            "unique_outliers": int((counts > 0).sum()),
            "share": float((counts > 0).mean()),
            "top3_counts": order[:3].tolist(),
            **fits(counts),
        }
    steps = step_statistics(model, inputs)

    print("training the comparison model without the L1 penalty (seed 0) ...")
    plain = train(SEED, l1=0.0, log=None)
    plain_model = plain.model.double().eval()
    plain_inputs = confident_inputs(plain_model, data)
    record = {
        "gaussian_row_share": GAUSSIAN_SHARE,
        "paper": {"fc2_unique_outliers": 189, "fc2_neurons": 4096, "share": 189 / 4096, "claim": "under 6 %"},
        "fig2a_class_neuron": fig2a,
        "steps": steps,
        "shipped": {"test_accuracy": None, "weight_kurtosis": kurtosis(model), **graph_sizes(model, inputs)},
        "without_l1": {
            "test_accuracy": plain.test_accuracy,
            "weight_kurtosis": kurtosis(plain_model),
            "steps": step_statistics(plain_model, plain_inputs),
            **graph_sizes(plain_model, plain_inputs),
        },
    }
    with torch.no_grad():
        predictions = model(data.images[data.test].double()).argmax(1)
    record["shipped"]["test_accuracy"] = float((predictions == data.labels[data.test]).double().mean())
    save_json("outliers.json", record)

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [1.3, 1]})
    counts = top.outlier_counts(inputs[SHOWN_CLASS], upper="softmax", lower="classifier.1", neurons=SHOWN_CLASS)
    plot_outlier_frequency(counts[0], level="classifier.1", neuron=f"softmax:{SHOWN_CLASS}", ax=left)
    for c, x in inputs.items():
        row = top.outlier_counts(x, upper="softmax", lower="classifier.1", neurons=c)[0].numpy()
        values = np.sort(row[row > 0])[::-1]
        right.loglog(np.arange(1, len(values) + 1), values, marker="o", markersize=3, linewidth=0.8, label=str(c))
    right.set_xlabel("rank of the neuron (by images in which it is an outlier)")
    right.set_ylabel("images (of 100)")
    right.set_title("rank-frequency of the class neuron's outliers, log-log", fontsize=10)
    right.legend(title="class", fontsize=7, ncol=2)
    save_png(fig, "outlier_frequency.png")

    print("\nFig. 2a analogue (class neuron <- classifier.1, 64 neurons; paper: 4.6 % of 4096):")
    for c, row in fig2a.items():
        print(
            f"  class {c}: {row['unique_outliers']:2d} unique outliers ({row['share']:.1%}), top counts "
            f"{row['top3_counts']}, power-law slope {row['power_slope']:.2f} R² {row['power_r2']:.2f} vs "
            f"exponential R² {row['exponential_r2']:.2f}"
        )
    print(f"\nper step (rows: ω[n, i, :]; a normal row has {GAUSSIAN_SHARE:.2%} positive outliers):")
    for name, rows in (("shipped", steps), ("without L1", record["without_l1"]["steps"])):
        for s in rows:
            print(
                f"  {name:10s} {s['step']:28s} ever-outlier share median {s['ever_share_median']:.1%} "
                f"(max {s['ever_share_max']:.1%}); row share {s['row_share_mean']:.2%}; rows with an outlier "
                f"{s['rows_with_outliers']:.0%}; silent upper neurons {s['silent_neurons']:.0%}; rank-frequency "
                f"curves flat {_percent(s['flat_counts'])}, power law better {_percent(s['power_law_fits_better'])}"
            )
    print(
        f"\ngraphs reaching the bottom level: shipped {record['shipped']['reached_bottom']}/10, without L1 "
        f"{record['without_l1']['reached_bottom']}/10"
    )
    return record


if __name__ == "__main__":
    main()
