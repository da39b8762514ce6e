"""The summary every command writes: ``summary.md`` for a reader, ``summary.json`` for a program, both holding
results only, so that a rerun elsewhere rewrites them byte for byte unless a result differs; the stage timings and
the machine go to ``timings.json`` (a file of the run, not of its results).

Numbers are rounded to what they mean. A float64 result computed on another machine (other kernels, other batch
splits) differs from this one in its last bits, about 1e-12 relative or less; six significant digits (four in float32,
whose rounding noise is about 1e-7) leave a wide margin over that noise and are finer than any conclusion drawn
from a mean over at most a few hundred inputs. Every rank, selection and count is computed from the unrounded
values and written exactly.
"""

from __future__ import annotations

import json
import math
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from stepwise._version import __version__
from stepwise.cli.loading import Setup
from stepwise.cli.progress import Progress
from stepwise.cli.selection import Selection
from stepwise.core.io import write_file

if TYPE_CHECKING:
    from stepwise.graphs.dependency import DependencyGraph

__all__ = [
    "SHOWN_TOP",
    "SIGNIFICANT",
    "cluster_section",
    "graph_section",
    "md_table",
    "ranking_section",
    "round_to",
    "selection_section",
    "write_summary",
]

SHOWN_TOP = 3  # top neurons per metric listed in a summary
SIGNIFICANT = {"float64": 6, "float32": 4}  # significant digits of a written result, by the analysis' dtype


def round_to(value: float, digits: int) -> float:
    """``value`` rounded to ``digits`` significant digits (NaN and infinities unchanged)."""
    if not math.isfinite(value) or value == 0:
        return float(value)
    return float(f"{value:.{digits}g}")


def md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A markdown table, then a blank line."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


# ------------------------------------------------------------------------------------------------ sections


def selection_section(setup: Setup, selection: Selection) -> list[str]:
    """The classes skipped (no qualifying input) and those explained from fewer than ``--min-images`` inputs."""
    lines = []
    if selection.skipped:
        lines += ["## Classes skipped", ""]
        lines += [f"- class {setup.data.name(c)}: {why}" for c, why in selection.skipped.items()] + [""]
    if selection.few:
        lines += ["## Classes with few inputs", ""]
        lines += [f"- class {setup.data.name(c)}: {why}" for c, why in selection.few.items()] + [""]
    return lines


def graph_section(
    setup: Setup, runs: Mapping[int, Any], selection: Selection, digits: int
) -> tuple[list[str], list[dict]]:
    """The table of the class graphs (one row per class explained or skipped) and their top neurons."""
    lines = ["## Dependency graphs", ""]
    rows, records = [], []
    for c, counts in selection.counts.items():
        run = runs.get(c)
        label = setup.data.name(c)
        if run is None:
            rows.append([label, 0, "-", "-", "-", "skipped: no input qualifies", "-"])
            records.append({"class": c, "label": label, **counts, "images": 0, "skipped": selection.skipped.get(c)})
            continue
        graph = run.graph
        per_level = [sum(1 for _, level in graph.nodes(data="level") if level == name) for name in graph.levels]
        stopped = graph.attrs.get("stopped_at", "")
        few = c in selection.few
        rows.append(
            [
                label,
                f"{run.n_images} (fewer than {selection.min_images})" if few else run.n_images,
                len(graph),
                len(graph.edges),
                " / ".join(map(str, per_level)),
                f"stopped at {stopped}" if stopped else "bottom reached",
                ", ".join(f"`{f}`" for f in run.files[:2]),
            ]
        )
        records.append(
            {
                "class": c,
                "label": label,
                **counts,
                "images": run.n_images,
                "few_inputs": few,
                "nodes": len(graph),
                "edges": len(graph.edges),
                "nodes_per_level": dict(zip(graph.levels, per_level)),
                "stopped_at": stopped or None,
                "files": run.files,
                "top_neurons": {
                    metric: _top(graph, metric, digits) for metric in ("frequency", "interconnectedness", "relevance")
                },
            }
        )
    lines += [f"Levels, bottom to top: {' → '.join(f'`{name}`' for name in setup.levels)}.", ""]
    lines += md_table(
        ["class", "images", "nodes", "edges", "nodes per level (bottom → top)", "traversal", "files"], rows
    )
    notes = [f"- class {run.label}: {run.warning}" for run in runs.values() if run.warning]
    if notes:
        lines += ["Traversals that stopped early:", "", *notes, ""]
    lines += [
        "## Top neurons",
        "",
        f"The {SHOWN_TOP} neurons of each graph that rank highest by the paper's relevance metrics "
        + "(`DependencyGraph.top_neurons`; targets excluded).",
        "",
    ]
    top_rows = [
        [r["label"]]
        + [
            ", ".join(f"`{key}` ({value:.3g})" for key, value in r["top_neurons"][m].items())
            for m in ("frequency", "interconnectedness", "relevance")
        ]
        for r in records
        if "top_neurons" in r
    ]
    lines += md_table(["class", "frequency", "interconnectedness", "relevance (mean ω)"], top_rows)
    return lines, records


def _top(graph: DependencyGraph, metric: str, digits: int) -> dict[str, float]:
    table = graph.top_neurons(metric, SHOWN_TOP)
    return {str(key): round_to(float(value), digits) for key, value in table[metric].items()}


def cluster_section(clusters: Any) -> list[str]:
    """The dendrogram's leaf order, the flat clusters and the neurons in every graph."""
    if clusters is None:
        return []
    groups: dict[int, list[str]] = {}
    for label in clusters.leaf_order:
        groups.setdefault(clusters.labels[label], []).append(label)
    shared = clusters.shared_nodes
    listed = f" ({', '.join(f'`{n}`' for n in shared[:12])}{', ...' if len(shared) > 12 else ''})" if shared else ""
    return [
        "## Clusters",
        "",
        "Bag-of-nodes vectors of the graphs, Ward linkage on cosine geometry (SSA paper §4.2.1); "
        + "`clustermap.png`, vectors in `bag_of_nodes.csv`.",
        "",
        f"- dendrogram leaf order: {', '.join(clusters.leaf_order)}",
        f"- {len(groups)} flat clusters: " + "; ".join("{" + ", ".join(m) + "}" for m in groups.values()),
        f"- neurons in every graph: {len(shared)}{listed}",
        "",
    ]


def ranking_section(runs: Sequence[Any], args: Any, digits: int) -> tuple[list[str], list[dict]]:
    """The perturbation settings and, per input, its target's probability and the per-level agreement.

    P(target) is shown with 4 decimals (a confidently classified input's probability differs from 1 in the
    fourth), a Jaccard index of two top-k sets with 2 (it is a ratio of counts up to 2k, k = ``--top``)."""
    if not runs:
        return [], []
    levels = runs[0].ranking.levels
    lines = [
        "## Perturbation rankings",
        "",
        f"{args.samples} resamples of each input with multiplicative noise 1 + N(0, {args.sigma}²), seed "
        + f"{args.seed}; every neuron of every level scored (`perturbation.csv`). Jaccard index of the top "
        f"{args.top} neurons by activation-output correlation and by activation precision, per level "
        "(`agreement.csv`); deconvnet patches of the correlation top neurons in `patches.png`.",
        "",
    ]
    rows = [
        [run.index, run.label, f"{run.probability:.4f}"] + [f"{run.agreement[name]:.2f}" for name in levels]
        for run in runs
    ]
    lines += md_table(["input", "target", "P(target)"] + [f"`{name}`" for name in levels], rows)
    records = [
        {
            "input": run.index,
            "target": run.target,
            "label": run.label,
            "probability": round_to(run.probability, digits),
            "agreement": {level: round_to(value, digits) for level, value in run.agreement.items()},
        }
        for run in runs
    ]
    return lines, records


# ------------------------------------------------------------------------------------------------ files


def write_summary(
    out: Path,
    title: str,
    setup: Setup,
    settings: dict[str, object],
    sections: list[list[str]],
    record: dict[str, object],
    progress: Progress,
) -> None:
    """Write ``summary.md`` and ``summary.json`` (results), and ``timings.json`` (this run on this machine)."""
    lines = [
        f"# {title}",
        "",
        f"Written by `{setup.command}` (stepwise {__version__}, torch {torch.__version__.split('+')[0]}).",
        "",
        f"- model: {setup.model_name} ({type(setup.model).__name__})",
        f"- data: {setup.data.source} ({len(setup.data.inputs)} inputs of shape "
        f"{tuple(setup.data.inputs.shape[1:])}, "
        + ("labelled" if setup.data.labels is not None else "unlabelled: classes as predicted")
        + ")",
    ]
    lines += [f"- {name}: {value}" for name, value in settings.items()] + [""]
    for section in sections:
        lines += section
    lines += ["Stage timings of the run are in `timings.json`.", ""]
    write_file(out / "summary.md", "\n".join(lines))
    record = {
        "command": setup.command,
        "version": __version__,
        "model": setup.model_name,
        "levels": setup.levels,
        "settings": settings,
        **record,
    }
    write_file(out / "summary.json", json.dumps(record, indent=2) + "\n")
    write_timings(out, setup.command, progress)


def write_timings(out: Path, command: str, progress: Progress) -> None:
    """``timings.json``: seconds per stage of this run, and what ran it."""
    timings = {
        "command": command,
        "timings_s": {name: round(seconds, 2) for name, seconds in progress.timings.items()},
        "stepwise": __version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "machine": f"{platform.system()} {platform.machine()}, {torch.get_num_threads()} torch threads",
    }
    write_file(out / "timings.json", json.dumps(timings, indent=2) + "\n")
