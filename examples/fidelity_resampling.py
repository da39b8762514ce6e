"""Input-resampling paper, Fig. 3, re-measured on digits: does the agreement of the activation-output correlation
and activation precision rankings rise with the network's accuracy during training?

The paper trains VGG-16 as a person classifier and reports that the Jaccard index of the neurons the two metrics
select (top 5 per layer, on a set of 5 test images) rises over training, mirroring the accuracy.

Here the digits CNN is trained with the shipped recipe (``examples/train_digits.py``, seed 0: its last checkpoint
is the shipped model) and checkpoints are kept after 0 (the initial weights), 5, 10, 20, 40, 80, 160, 320 and 860
optimiser steps. At each checkpoint, for the first 5 held-out images (target: their label), ``perturb.rank_neurons``
ranks every neuron of the default levels over 50 resamples (sigma 0.1, seed 0) and ``perturb.agreement`` gives the
Jaccard index of the correlation and precision top 5 per level. Reported per checkpoint: the held-out accuracy, the
mean Jaccard per level and over the four hidden levels, how many neurons per level pass the precision threshold,
and the Jaccard two random 5-neuron sets of the level would have on average (chance). The Spearman correlation of
accuracy and mean Jaccard across checkpoints answers the question. The output o followed across resamples is the
target's probability (the library's default); the mean Jaccard with o = its logit is reported beside it, since a
confidently classified image's probability barely moves under the noise.

Writes ``results/fidelity/resampling.json`` and ``results/fidelity/resampling_agreement.png``. Run from the
repository root: ``python examples/fidelity_resampling.py`` (one training, then about a minute).
"""

from __future__ import annotations

from math import comb

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from fidelity_common import LEVELS, float64_model, save_json, save_png
from scipy.stats import spearmanr

import perturb
from stepwise.core.levels import resolve_levels
from stepwise.models import digits_data

SEED = 0
CHECKPOINTS = (0, 5, 10, 20, 40, 80, 160, 320, 860)
N_IMAGES = 5
SAMPLES = 50
SIGMA = 0.1
TOP = 5
HIDDEN = LEVELS[:-1]


def chance_jaccard(n_neurons: int, k: int = TOP) -> float:
    """Mean Jaccard index of two independent uniformly random k-subsets of n neurons."""
    k = min(k, n_neurons)
    total = comb(n_neurons, k)
    return sum(comb(k, i) * comb(n_neurons - k, k - i) / total * i / (2 * k - i) for i in range(k + 1) if 2 * k - i > 0)


def main() -> dict:
    from train_digits import train

    data = digits_data()
    print("training with checkpoints (seed 0, the shipped recipe) ...")
    training = train(SEED, checkpoint_steps=CHECKPOINTS, log=None)
    images = data.images[data.test[:N_IMAGES]].double()
    targets = data.labels[data.test[:N_IMAGES]].tolist()
    widths = {info.name: info.n_neurons for info in resolve_levels(float64_model(), images[:2], LEVELS)}
    chance = {level: chance_jaccard(widths[level]) for level in LEVELS}

    rows = []
    for step in CHECKPOINTS:
        model = float64_model(training.checkpoints[step])
        with torch.no_grad():
            predictions = model(data.images[data.test].double()).argmax(1)
        accuracy = float((predictions == data.labels[data.test]).double().mean())
        per_level: dict[str, list[float]] = {level: [] for level in LEVELS}
        logit_level: dict[str, list[float]] = {level: [] for level in LEVELS}
        eligible: dict[str, list[int]] = {level: [] for level in LEVELS}
        for image, target in zip(images, targets):
            for output, kept in (("probability", per_level), ("logit", logit_level)):
                ranking = perturb.rank_neurons(
                    model,
                    image,
                    LEVELS,
                    target=target,
                    n_samples=SAMPLES,
                    sigma=SIGMA,
                    seed=SEED,
                    output=output,
                )
                for level, value in perturb.agreement(ranking, k=TOP).items():
                    kept[level].append(value)
            for level in LEVELS:
                eligible[level].append(int((~ranking.scores("precision", level).isnan()).sum()))
        row = {
            "step": step,
            "test_accuracy": accuracy,
            "jaccard": {level: float(np.mean(values)) for level, values in per_level.items()},
            "jaccard_hidden_mean": float(np.mean([np.mean(per_level[level]) for level in HIDDEN])),
            "jaccard_hidden_mean_logit": float(np.mean([np.mean(logit_level[level]) for level in HIDDEN])),
            "precision_eligible_neurons": {level: float(np.mean(values)) for level, values in eligible.items()},
        }
        rows.append(row)
        print(
            f"step {step:4d}: accuracy {accuracy:.3f}, mean Jaccard over hidden levels "
            f"{row['jaccard_hidden_mean']:.2f} (with the logit as o: {row['jaccard_hidden_mean_logit']:.2f}; "
            + ", ".join(f"{level} {row['jaccard'][level]:.2f}" for level in LEVELS)
            + ")"
        )
    accuracies = [row["test_accuracy"] for row in rows]
    means = [row["jaccard_hidden_mean"] for row in rows]
    rho, p_value = spearmanr(accuracies, means)
    rho_logit, p_logit = spearmanr(accuracies, [row["jaccard_hidden_mean_logit"] for row in rows])
    record = {
        "images": data.test[:N_IMAGES].tolist(),
        "targets": targets,
        "settings": {"samples": SAMPLES, "sigma": SIGMA, "top": TOP, "seed": SEED},
        "chance_jaccard": chance,
        "checkpoints": rows,
        "spearman_accuracy_vs_jaccard": float(rho),
        "spearman_p_value": float(p_value),
        "spearman_accuracy_vs_jaccard_logit": float(rho_logit),
        "spearman_p_value_logit": float(p_logit),
    }
    save_json("resampling.json", record)

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [max(row["step"], 1) for row in rows]
    for level in LEVELS:
        ax.plot(steps, [row["jaccard"][level] for row in rows], marker="o", markersize=3, linewidth=1, label=level)
    ax.plot(steps, means, color="black", linewidth=2.5, label="mean of hidden levels")
    ax.plot(
        steps,
        [row["jaccard_hidden_mean_logit"] for row in rows],
        color="black",
        linestyle=":",
        linewidth=2,
        label="mean of hidden levels, o = logit",
    )
    ax.set_xscale("log")
    ax.set_xlabel("optimiser steps (the initial weights drawn at 1)")
    ax.set_ylabel(f"Jaccard of the top {TOP}: correlation vs precision")
    ax.set_ylim(0, 1)
    twin = ax.twinx()
    twin.plot(steps, accuracies, color="tab:gray", linestyle="--", label="held-out accuracy")
    twin.set_ylabel("held-out accuracy")
    twin.set_ylim(0, 1)
    handles = ax.get_legend_handles_labels()
    extra = twin.get_legend_handles_labels()
    ax.legend(handles[0] + extra[0], handles[1] + extra[1], fontsize=7, loc="upper left")
    ax.set_title(f"Metric agreement during training (Spearman with accuracy {rho:.2f})", fontsize=10)
    save_png(fig, "resampling_agreement.png")
    print(
        f"\nSpearman correlation of accuracy and mean Jaccard over checkpoints: {rho:.2f} (p = {p_value:.2g}); with "
        f"the logit as o: {rho_logit:.2f} (p = {p_logit:.2g})"
    )
    print("chance Jaccard of two random top-5 sets per level:", {k: round(v, 3) for k, v in chance.items()})
    return record


if __name__ == "__main__":
    main()
