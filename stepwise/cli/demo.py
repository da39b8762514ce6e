"""``stepwise demo``: the shipped digits CNN (:mod:`stepwise.models`) end to end, offline: a dependency graph per
class, their clustering, a perturbation ranking of one image per class, and the summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from torch import Tensor

from stepwise.cli.analyse import run_analysis
from stepwise.cli.loading import Data, Setup, check_checkpoint_folder, check_levels, command_line, output_folder
from stepwise.cli.options import (
    DTYPES,
    Formatter,
    add_common_options,
    add_levels_option,
    add_perturb_options,
    add_selection_options,
    add_ssa_options,
)
from stepwise.cli.progress import Progress
from stepwise.cli.report import write_report
from stepwise.core.io import write_file

__all__ = ["register", "run"]


def register(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``demo`` to the subcommands of ``stepwise``."""
    parser = commands.add_parser(
        "demo",
        formatter_class=Formatter,
        help="the shipped digits CNN end to end, offline",
        description="The shipped digits CNN (stepwise.models.digits_cnn) on scikit-learn's bundled digits, offline: "
        "for each class, a dependency graph from up to --max-images inputs classified correctly with probability "
        ">= --min-probability; the bag-of-nodes clustering of the graphs; a perturbation ranking of the first of "
        "those inputs per class. Writes per class the graph (GraphML, JSON), its layered drawing and the outlier "
        "frequencies of the class neuron; the clustermap; the perturbation table and patches figure; decision paths, "
        "inference graphs and the activation sorter in paths/, inference/ and sort/; report.html (one offline page "
        "over all of them, as stepwise report writes it); summary.md and "
        "summary.json (results: a rerun rewrites them unchanged unless a result differs), timings.json (this run's "
        "stage timings).",
    )
    parser.add_argument(
        "--split",
        choices=("train", "test", "all"),
        default="train",
        help="which images to choose from (the SSA paper chose training images)",
    )
    add_selection_options(parser)
    add_levels_option(parser)
    add_ssa_options(parser)
    add_perturb_options(parser)
    add_common_options(parser, "results/demo")
    parser.set_defaults(run=run, parser=parser)
    return parser


def run(args: argparse.Namespace, progress: Progress) -> Path:
    """Run ``stepwise demo``; return the output folder."""
    from stepwise.models import digits_cnn, digits_data

    out = output_folder(args.out)
    check_checkpoint_folder(args.checkpoint)
    with progress.stage("loading"):
        dtype = DTYPES[args.dtype]
        model = digits_cnn().to(dtype)
        digits = digits_data()
        data = Data(digits.images.to(dtype), digits.labels, source="stepwise.models.digits_data()")
        levels = check_levels(model, data.inputs[:2], args.levels, "stepwise.models:digits_cnn")
    setup = Setup(model, "stepwise.models.digits_cnn()", data, 10, levels, command_line(args))
    split = {"train": digits.train, "test": digits.test, "all": None}[args.split]
    pool = f"the {args.split} split, {len(split)} images" if split is not None else "all images"
    run_analysis(
        setup,
        args,
        out,
        progress,
        title="stepwise demo: the shipped digits CNN",
        perturbation=True,
        among=split,
        pool=f"{pool}; input numbers index digits_data().images",
    )
    _method_sections(setup, args, split, out, progress)
    with progress.stage("report"):
        write_report(out, out / "report.html", "stepwise demo: the shipped digits CNN")
    return out


def _method_sections(
    setup: Setup, args: argparse.Namespace, split: Tensor | None, out: Path, progress: Progress
) -> None:
    """The other methods on the same model and split (the classes asked for), each into its own folder (``paths/``, ``inference/``,
    ``sort/``, each with its own ``summary.md``), and a section of the demo's summary that points to them."""
    from stepwise.cli.inference import demo_inference
    from stepwise.cli.paths import demo_paths
    from stepwise.cli.sort import demo_section

    import torch

    labels = setup.data.labels
    keep = torch.arange(len(labels)) if split is None else split
    if args.classes:  # the classes asked for, as the dependency graphs: a quick look stays quick
        keep = keep[torch.isin(labels[keep], torch.tensor(args.classes))]
    data = Data(setup.data.inputs[keep], labels[keep], source=setup.data.source)
    with progress.stage("decision paths"):
        demo_paths(setup.model, data, out / "paths", progress, command=setup.command)
    with progress.stage("inference graphs"):
        split_setup = Setup(setup.model, setup.model_name, data, setup.n_classes, setup.levels, setup.command)
        demo_inference(split_setup, args, out / "inference", progress)
    with progress.stage("activation sorter"):
        sorter_lines = demo_section(
            setup.model, data, out / "sort", progress, argv=setup.command.split()[1:], batch_size=args.batch_size,
            quiet=args.quiet,
        )  # fmt: skip
    lines = [
        "## The other methods on the same model",
        "",
        "- Decision paths: `paths/summary.md`, the Sankey diagram `paths/sankey.html` (offline) and `paths/sankey.png`.",
        "- Inference graphs: `inference/summary.md`, one class graph per class (`inference/class_c.png`).",
        "",
        *sorter_lines,
    ]
    summary = out / "summary.md"
    write_file(summary, summary.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + "\n".join(lines) + "\n")
