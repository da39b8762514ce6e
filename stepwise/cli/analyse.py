"""``stepwise analyse``: a dependency graph per class of the user's model and data, their bag-of-nodes clustering,
and the summary. :func:`run_analysis` is shared with ``stepwise demo``."""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from torch import Tensor

from stepwise.cli.distributed import add_options as add_worker_options
from stepwise.cli.distributed import executor_from
from stepwise.cli.loading import Setup, check_checkpoint_folder, load_setup, output_folder
from stepwise.cli.options import (
    Formatter,
    add_common_options,
    add_model_options,
    add_selection_options,
    add_ssa_options,
)
from stepwise.cli.progress import Progress
from stepwise.cli.selection import Selection, check_classes, select
from stepwise.cli.summary import SIGNIFICANT, cluster_section, graph_section, round_to, selection_section, write_summary
from stepwise.core.io import save_figure, write_file

if TYPE_CHECKING:
    from stepwise.graphs.dependency import DependencyGraph
    from stepwise.ssa.traverse import StepwiseSensitivity

__all__ = ["GraphRun", "register", "run", "run_analysis"]


def register(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``analyse`` to the subcommands of ``stepwise``."""
    parser = commands.add_parser(
        "analyse",
        formatter_class=Formatter,
        help="dependency graphs of your model and data",
        description="Dependency graphs of your classifier, one per class, from the inputs it classifies correctly "
        "with probability >= --min-probability, then their bag-of-nodes clustering. Writes per class the graph "
        "(GraphML, JSON), its layered drawing and the outlier frequencies of the class neuron; the clustermap and "
        "bag-of-nodes table; summary.md and summary.json (results), timings.json (this run's stage timings).",
    )
    add_model_options(parser)
    add_selection_options(parser)
    add_ssa_options(parser)
    add_worker_options(parser)
    add_common_options(parser, "results/analyse")
    parser.set_defaults(run=run, parser=parser)
    return parser


def run(args: argparse.Namespace, progress: Progress) -> Path:
    """Run ``stepwise analyse``; return the output folder."""
    out = output_folder(args.out)
    check_checkpoint_folder(args.checkpoint)
    with progress.stage("loading"):
        setup = load_setup(args)
    run_analysis(setup, args, out, progress, title=f"stepwise analyse: {setup.model_name}", perturbation=False)
    return out


@dataclass
class GraphRun:
    """One class's dependency graph and where its files went."""

    label: str
    graph: DependencyGraph
    n_images: int
    files: list[str]
    warning: str | None


@dataclass
class _Clusters:
    leaf_order: list[str]
    labels: dict[str, int]
    shared_nodes: list[str]


def run_analysis(
    setup: Setup,
    args: argparse.Namespace,
    out: Path,
    progress: Progress,
    *,
    title: str,
    perturbation: bool,
    among: Tensor | None = None,
    pool: str | None = None,
) -> dict[str, object]:
    """Dependency graphs and clustering (and with ``perturbation``, one ranking per class), then the summary.

    ``among`` restricts the choice of inputs to those positions (the demo's training split)."""
    classes = check_classes(args.classes, setup.n_classes)
    with progress.stage("selecting inputs"):
        selection = select(
            setup,
            classes,
            min_probability=args.min_probability,
            max_images=args.max_images,
            min_images=args.min_images,
            batch_size=args.batch_size,
            progress=progress,
            among=among,
        )
    out.mkdir(parents=True, exist_ok=True)
    if args.checkpoint is not None:
        args.checkpoint.mkdir(parents=True, exist_ok=True)
    digits = SIGNIFICANT[args.dtype]
    runs = _graphs(setup, selection, args, out, progress, digits)
    clusters = _cluster(runs, args.clusters, out, progress)
    graph_lines, graph_records = graph_section(setup, runs, selection, digits)
    sections = [graph_lines, selection_section(setup, selection), cluster_section(clusters)]
    record: dict[str, object] = {"graphs": graph_records}
    if clusters is not None:
        record["clusters"] = {
            "leaf_order": clusters.leaf_order,
            "labels": clusters.labels,
            "shared_nodes": clusters.shared_nodes,
        }
    settings = _settings(args, selection, setup)
    if pool is not None:
        settings = {"inputs chosen from": pool, **settings}
    if perturbation:
        from stepwise.cli.perturb import rankings, write_rankings
        from stepwise.cli.summary import ranking_section

        chosen = [(int(index[0]), c) for c, index in selection.indices.items() if len(index)]
        rank_runs = rankings(setup, chosen, args, progress)
        write_rankings(rank_runs, args.top, out, progress, digits)
        lines, records = ranking_section(rank_runs, args, digits)
        sections.append(lines)
        record["rankings"] = records
        settings.update(samples=args.samples, sigma=args.sigma, seed=args.seed, top=args.top)
    progress.timings["total"] = time.perf_counter() - args.start
    _skipped_record(record, setup, selection)
    write_summary(out, title, setup, settings, sections, record, progress)
    return record


def _skipped_record(record: dict[str, object], setup: Setup, selection: Selection) -> None:
    record["skipped_classes"] = {setup.data.name(c): why for c, why in selection.skipped.items()}
    record["classes_with_few_inputs"] = {setup.data.name(c): why for c, why in selection.few.items()}


def _settings(args: argparse.Namespace, selection: Selection, setup: Setup) -> dict[str, object]:
    return {
        "classes": ", ".join(setup.data.name(c) for c in selection.indices),
        "images per class": f"up to {args.max_images}, classified correctly with probability >= {args.min_probability}"
        + f"; a class with fewer than {selection.min_images} is flagged",
        "branching": args.branching,
        "rule": args.rule,
        "sign": args.sign,
        "fence": args.fence,
        "dtype": args.dtype,
    }


def _rounded(graph: DependencyGraph, digits: int) -> DependencyGraph:
    """A copy of ``graph`` whose edge relevances (mean ω) are rounded to ``digits`` significant digits, so that
    its files do not change with the last bits of a rerun on another machine (see :mod:`stepwise.cli.summary`)."""
    nx_graph = graph.to_networkx().copy()
    for _, _, data in nx_graph.edges(data=True):
        data["relevance"] = round_to(float(data["relevance"]), digits)
    return type(graph).from_networkx(nx_graph)


def _graphs(
    setup: Setup, selection: Selection, args: argparse.Namespace, out: Path, progress: Progress, digits: int
) -> dict[int, GraphRun]:
    from stepwise.plot import plot_graph, plot_outlier_frequency
    from stepwise.ssa.traverse import StepwiseSensitivity

    ssa = StepwiseSensitivity(
        setup.model,
        setup.levels,
        branching=args.branching,
        rule=args.rule,
        fence=args.fence,
        sign=args.sign,
        batch_size=args.batch_size,
    )
    runs: dict[int, GraphRun] = {}
    chosen = {c: index for c, index in selection.indices.items() if len(index)}
    for c, (graph, warning) in _traversals(ssa, setup, chosen, args, progress).items():
        label, stem = setup.data.name(c), f"class_{_file_label(setup.data.name(c))}"
        graph = _rounded(graph, digits)
        if warning:
            progress.warn(f"class {label}: {warning}")
        with progress.stage("writing graphs and figures"):
            graph.write(out / f"{stem}.graphml")
            graph.write(out / f"{stem}.json")
            save_figure(plot_graph(graph), out / f"{stem}.png")
        with progress.stage("outlier frequencies"):
            top, below = setup.levels[-1], setup.levels[-2]
            counts = ssa.outlier_counts(setup.data.inputs[chosen[c]], upper=top, lower=below, neurons=c)[0]
        with progress.stage("writing graphs and figures"):
            figure = plot_outlier_frequency(counts, level=below, neuron=f"{top}:{c}")
            save_figure(figure, out / f"{stem}_outlier_frequency.png")
        files = [f"{stem}.graphml", f"{stem}.json", f"{stem}.png", f"{stem}_outlier_frequency.png"]
        runs[c] = GraphRun(label, graph, len(chosen[c]), files, warning)
    return runs


def _traversals(
    ssa: StepwiseSensitivity, setup: Setup, chosen: Mapping[int, Tensor], args: argparse.Namespace, progress: Progress
) -> dict[int, tuple[DependencyGraph, str | None]]:
    """Each class's graph and its warnings, in class order: here one class after another (each with its own
    checkpoint file), or on the workers that ``--workers`` or ``--scheduler`` names."""
    results: dict[int, tuple[DependencyGraph, str | None]] = {}
    with executor_from(args) as executor, progress.bar(len(chosen), "dependency graphs") as bar:
        if executor is not None:
            from stepwise.ssa.classes import graphs_for

            inputs = {c: setup.data.inputs[index] for c, index in chosen.items()}
            with progress.stage("dependency graphs"), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)
                graphs = graphs_for(
                    ssa, inputs, executor=executor, checkpoint_dir=args.checkpoint, on_graph=lambda c, g: bar.update(1)
                )
            for c, graph in graphs.items():
                prefix = f"class {c}: "
                said = [str(w.message)[len(prefix) :] for w in caught if str(w.message).startswith(prefix)]
                results[c] = (graph, "; ".join(said) or None)
            return results
        for c, index in chosen.items():
            label = setup.data.name(c)
            bar.set_postfix_str(f"class {label}, {len(index)} inputs")
            stem = f"class_{_file_label(label)}"
            checkpoint = None if args.checkpoint is None else args.checkpoint / f"{stem}.checkpoint.json"
            with progress.stage("dependency graphs"), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)
                graph = ssa.dependency_graph(setup.data.inputs[index], target=c, checkpoint=checkpoint)
            said = "; ".join(str(w.message) for w in caught if issubclass(w.category, UserWarning)) or None
            results[c] = (graph, said)
            bar.update(1)
    return results


def _file_label(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label)


def _cluster(runs: Mapping[int, GraphRun], n_clusters: int, out: Path, progress: Progress) -> _Clusters | None:
    from stepwise.graphs.collections import bag_of_nodes, cluster_graphs, node_occurrence

    if len(runs) < 2:
        progress.note("fewer than two graphs: no clustering.")
        return None
    graphs = {run.label: run.graph for run in runs.values()}
    with progress.stage("clustering"):
        result = cluster_graphs(graphs, n_clusters=min(n_clusters, len(graphs)))
        occurrence = node_occurrence(graphs)
        frame = bag_of_nodes(graphs)
    with progress.stage("writing graphs and figures"):
        save_figure(result.plot(), out / "clustermap.png")  # sized to label every neuron column
        write_file(out / "bag_of_nodes.csv", frame.to_csv(index_label="graph"))
    flat = {} if result.labels is None else {str(k): int(v) for k, v in result.labels.items()}
    return _Clusters(
        [str(label) for label in result.leaf_labels],
        flat,
        sorted(occurrence[occurrence == len(graphs)].index),
    )
