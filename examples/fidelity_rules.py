"""How much the selected neurons vary from input to input, for each relevance rule and top level.

The SSA paper (Fig. 2, section 4.1) reports that the outlier neurons "are not identical for different input
stimulus of the same class", which "indicates that our approach is not identical to simply selecting the neurons
with highest weights". With the plain gradient, a step made of one Linear layer and a ReLU has the row
ω[n, i, :] = relu'(z_n(i)) · W[n, :] (averaged over the positions a flattened channel spans): the neuron's weight
row, switched on or off by its activity. From the logits, the top step's row is the class's weight row for every
input. This script measures the variation on the shipped digits CNN.

For each rule (``gradient``, ``guided``, ``grad_x_activation``), each step between the default levels (and the
top step with the logits, ``classifier.2``, as the top level instead of ``softmax``), each class (100 confidently
classified training images) and each upper neuron (the class neuron for the top step, every neuron otherwise),
the positive outlier set O_i of the row ω[n, i, :] is taken per image i, and measured:

- ``rows_with_outliers``: the share of images whose row has at least one outlier;
- ``jaccard``: the mean pairwise Jaccard index |O_i ∩ O_j| / |O_i ∪ O_j| over pairs of images with non-empty sets
  (1: every image selects the same neurons), averaged over the upper neurons with at least two such images;
- ``modal_share``: the share of those images whose set is the most common set.

It also checks that ``guided`` equals ``gradient`` on this model (each step's only nn.ReLU produces the upper
level), and compares the class graphs the rules produce (node-set Jaccard against ``gradient``, sizes).

Writes ``results/fidelity/rules.json``. Run from the repository root: ``python examples/fidelity_rules.py``.
"""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import torch
from fidelity_common import LEVELS, LOGITS, confident_inputs, float64_model, save_json
from torch import Tensor

import stepwise
from stepwise.core.levels import resolve_levels
from stepwise.models import digits_data
from stepwise.ssa.select import outlier_mask

RULES = ("gradient", "guided", "grad_x_activation")
TOPS = {"softmax": LEVELS, "logits": [*LEVELS[:-1], LOGITS]}


def set_variation(mask: Tensor) -> dict[str, float | None]:
    """Variation of the outlier sets of one upper neuron over images; ``mask`` (N, K) bool."""
    rows = mask[mask.any(dim=1)].double()
    result: dict[str, float | None] = {"rows_with_outliers": float(mask.any(dim=1).double().mean())}
    if len(rows) < 2:
        return {**result, "jaccard": None, "modal_share": None}
    inter = rows @ rows.T
    sizes = rows.sum(dim=1)
    union = sizes[:, None] + sizes[None, :] - inter
    upper = torch.triu_indices(len(rows), len(rows), offset=1)
    jaccard = (inter / union)[upper[0], upper[1]].mean().item()
    modal = Counter(tuple(np.flatnonzero(row.numpy())) for row in rows.bool()).most_common(1)[0][1]
    return {**result, "jaccard": jaccard, "modal_share": modal / len(rows)}


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def measure_step(
    ssa: stepwise.StepwiseSensitivity, inputs: dict[int, Tensor], upper: str, lower: str, width: int
) -> tuple[dict[str, object], dict[int, Tensor]]:
    """Variation statistics of one step over classes and upper neurons, and ω per class."""
    per_neuron, omegas = [], {}
    for c, x in inputs.items():
        neurons = [c] if upper in ("softmax", LOGITS) else list(range(width))
        omega = ssa.relevance(x, upper=upper, lower=lower, neurons=neurons)
        omegas[c] = omega
        per_neuron += [set_variation(row) for row in outlier_mask(omega)]
    return {
        "step": f"{lower} <- {upper}",
        "rows_with_outliers": _mean([r["rows_with_outliers"] for r in per_neuron]),
        "jaccard": _mean([r["jaccard"] for r in per_neuron]),
        "modal_share": _mean([r["modal_share"] for r in per_neuron]),
        "upper_neurons_with_two_selecting_images": sum(r["jaccard"] is not None for r in per_neuron),
        "upper_neurons": len(per_neuron),
    }, omegas


def graphs(model: torch.nn.Module, levels: list[str], rule: str, inputs: dict[int, Tensor]) -> dict[int, set[str]]:
    ssa = stepwise.StepwiseSensitivity(model, levels, rule=rule)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a traversal that stops early is part of what is measured
        return {c: set(ssa.dependency_graph(x, target=c).nodes) for c, x in inputs.items()}


def main() -> dict:
    data = digits_data()
    model = float64_model()
    inputs = confident_inputs(model, data)
    widths = {info.name: info.n_neurons for info in resolve_levels(model, data.images[:2].double(), LEVELS)}

    results: dict[str, list[dict]] = {}
    omegas: dict[tuple[str, str], dict[int, Tensor]] = {}
    for rule in RULES:
        rows = []
        for top, levels in TOPS.items():
            ssa = stepwise.StepwiseSensitivity(model, levels, rule=rule)
            positions = range(len(levels) - 1, 0, -1) if top == "softmax" else [len(levels) - 1]
            for position in positions:
                upper, lower = levels[position], levels[position - 1]
                row, omega = measure_step(ssa, inputs, upper, lower, widths.get(upper, 0))
                rows.append({"top": top, **row})
                omegas[(rule, row["step"])] = omega
                print(
                    f"{rule:18s} {row['step']:28s} rows with outliers {row['rows_with_outliers']:.0%}, "
                    f"Jaccard between images {_fmt(row['jaccard'])}, modal set share {_fmt(row['modal_share'])}"
                )
        results[rule] = rows

    guided_gap = {}
    for (rule, step), omega in omegas.items():
        if rule == "guided":
            reference = omegas[("gradient", step)]
            guided_gap[step] = max(
                float((omega[c] - reference[c]).abs().max() / reference[c].abs().max().clamp_min(1e-300)) for c in omega
            )
    print("guided vs gradient, largest relative difference of ω per step:", guided_gap)

    comparison = {}
    for top, levels in TOPS.items():
        by_rule = {rule: graphs(model, levels, rule, inputs) for rule in RULES}
        comparison[top] = {
            rule: {
                "mean_nodes": float(np.mean([len(nodes) for nodes in by_rule[rule].values()])),
                "single_node_graphs": sum(len(nodes) == 1 for nodes in by_rule[rule].values()),
                "node_jaccard_with_gradient": float(
                    np.mean(
                        [
                            len(by_rule[rule][c] & by_rule["gradient"][c])
                            / len(by_rule[rule][c] | by_rule["gradient"][c])
                            for c in inputs
                        ]
                    )
                ),
            }
            for rule in RULES
        }
        for rule, summary in comparison[top].items():
            print(
                f"graphs, top {top:7s} {rule:18s}: {summary['mean_nodes']:.1f} nodes on average, "
                f"{summary['single_node_graphs']} of 10 stop at the top, node-set Jaccard with gradient "
                f"{summary['node_jaccard_with_gradient']:.2f}"
            )
    record = {
        "images_per_class": {c: len(x) for c, x in inputs.items()},
        "steps": results,
        "guided_minus_gradient_relative": guided_gap,
        "graphs": comparison,
    }
    save_json("rules.json", record)
    return record


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
