"""``stepwise perturb``: perturbation neuron rankings (:mod:`perturb`) of some of the user's inputs.
:func:`rankings` and :func:`write_rankings` are shared with ``stepwise demo``.

This is the only place, with the demo through it, where the command line imports :mod:`perturb`, and it does so
only when a ranking is computed.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from stepwise.cli.loading import Setup, load_setup, output_folder
from stepwise.cli.options import (
    Formatter,
    UsageError,
    add_common_options,
    add_model_options,
    add_perturb_options,
    add_selection_options,
    non_negative_int,
)
from stepwise.cli.progress import Progress
from stepwise.cli.selection import check_classes, select
from stepwise.cli.summary import SIGNIFICANT, ranking_section, selection_section, write_summary
from stepwise.core.hooks import run_model
from stepwise.core.inputs import KeywordInputs
from stepwise.core.io import save_figure, write_file
from stepwise.core.selection import class_probabilities
from stepwise.core.validation import unknown_name_message

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from perturb import NeuronRanking

__all__ = ["RankRun", "rankings", "register", "run", "write_rankings"]


def register(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``perturb`` to the subcommands of ``stepwise``."""
    parser = commands.add_parser(
        "perturb",
        formatter_class=Formatter,
        help="perturbation neuron rankings of some of your inputs",
        description="Rank every neuron of every level by how it behaves over noisy resamples of one input "
        "(activation-output correlation, activation precision and APPLE's baselines), for the inputs named by "
        "--indices or, by default, the first input of each class classified correctly with probability >= "
        "--min-probability. Writes perturbation.csv (every score and rank), agreement.csv (Jaccard of the "
        "correlation and precision top neurons per level), patches.png (the deconvnet patches of each level's top "
        "neurons by correlation), patches.csv (their boxes) and thumbnails.npz (the inputs, for stepwise report), "
        "summary.md and summary.json (results), timings.json (this run's stage timings).",
    )
    add_model_options(parser)
    parser.add_argument(
        "--indices",
        type=non_negative_int,
        nargs="+",
        metavar="I",
        help="positions of the inputs to rank in the data (default: one input per class)",
    )
    parser.add_argument(
        "--target",
        type=non_negative_int,
        metavar="C",
        help="the class whose probability is followed, for every input of --indices (default: "
        "each input's label, or its predicted class without labels)",
    )
    add_selection_options(parser, per_class=False)
    add_perturb_options(parser)
    add_common_options(parser, "results/perturb", results="perturb")
    parser.set_defaults(run=run, parser=parser)
    return parser


def run(args: argparse.Namespace, progress: Progress) -> Path:
    """Run ``stepwise perturb``; return the output folder."""
    out = output_folder(args.out)
    with progress.stage("loading"):
        setup = load_setup(args)
    _check_input_level(setup, args.input_level)
    selection = None
    if args.indices is not None:
        chosen = _named_inputs(setup, args)
    else:
        if args.target is not None:
            raise UsageError(
                "--target needs --indices (without them, each class's first qualifying input is "
                "ranked for its own class)."
            )
        with progress.stage("selecting inputs"):
            selection = select(
                setup,
                check_classes(args.classes, setup.n_classes),
                min_probability=args.min_probability,
                max_images=1,
                min_images=1,
                batch_size=args.batch_size,
                progress=progress,
                fix="lower --min-probability, or name inputs with --indices",
            )
        chosen = [(int(index[0]), c) for c, index in selection.indices.items() if len(index)]
    out.mkdir(parents=True, exist_ok=True)
    digits = SIGNIFICANT[args.dtype]
    runs = rankings(setup, chosen, args, progress)
    files = write_rankings(runs, args.top, out, progress, digits)
    lines, records = ranking_section(runs, args, digits)
    sections = [lines]
    record: dict[str, object] = {"rankings": records, "files": files}
    if selection is not None:
        sections.append(selection_section(setup, selection))
        record["skipped_classes"] = {setup.data.name(c): why for c, why in selection.skipped.items()}
    progress.timings["total"] = time.perf_counter() - args.start
    settings = {"levels": ", ".join(setup.levels), "dtype": args.dtype}
    write_summary(out, f"stepwise perturb: {setup.model_name}", setup, settings, sections, record, progress)
    return out


def _check_input_level(setup: Setup, input_level: str | None) -> None:
    """``--input-level`` is given exactly for sentences, and names a module of the model."""
    sentences = isinstance(setup.data.inputs, KeywordInputs)
    if sentences and input_level is None:
        raise UsageError(
            "--data holds token ids, which take no noise: name the module whose output the multiplicative noise goes "
            "into, the token embeddings, with --input-level (for a BERT-style encoder its 'embeddings'; 'stepwise "
            "levels' lists the modules)."
        )
    if not sentences and input_level is not None:
        raise UsageError(
            f"--input-level {input_level}: it is for sentences (--data holding a dict of token ids); a tensor input "
            "takes the noise itself. Leave it out."
        )
    if input_level is not None and input_level not in dict(setup.model.named_modules()):
        names = [name for name, _ in setup.model.named_modules() if name]
        raise UsageError(unknown_name_message("module", input_level, "the model", names, "Pass --input-level MODULE."))


def _named_inputs(setup: Setup, args: argparse.Namespace) -> list[tuple[int, int]]:
    """(input, target) for each input of ``--indices``: ``--target``, else the label, else the prediction."""
    n = len(setup.data.inputs)
    wrong = [i for i in args.indices if not 0 <= i < n]
    if wrong:
        raise UsageError(f"--indices {wrong}: the data holds {n} inputs (0 to {n - 1}).")
    if args.target is not None and not 0 <= args.target < setup.n_classes:
        raise UsageError(f"--target {args.target}: the model scores classes 0 to {setup.n_classes - 1}.")
    if args.target is not None:
        return [(index, args.target) for index in args.indices]
    if setup.data.labels is not None:
        return [(index, int(setup.data.labels[index])) for index in args.indices]
    inputs = setup.data.inputs[args.indices]
    predicted = class_probabilities(setup.model, inputs, batch_size=args.batch_size).argmax(1)
    return [(index, int(c)) for index, c in zip(args.indices, predicted)]


@dataclass
class RankRun:
    """One input's perturbation ranking."""

    index: int
    label: str
    target: int
    probability: float
    ranking: NeuronRanking
    agreement: dict[str, float]


def rankings(
    setup: Setup, chosen: Sequence[tuple[int, int]], args: argparse.Namespace, progress: Progress
) -> list[RankRun]:
    """Rank the neurons of the levels for each (input index, target) pair."""
    import perturb

    runs = []
    with progress.bar(len(chosen), "perturbation rankings") as bar:
        for index, target in chosen:
            bar.set_postfix_str(f"input {index}, target {setup.data.name(target)}")
            image = setup.data.inputs[index]
            with progress.stage("perturbation rankings"):
                ranking = perturb.rank_neurons(
                    setup.model,
                    image,
                    setup.levels,
                    target=target,
                    n_samples=args.samples,
                    sigma=args.sigma,
                    seed=args.seed,
                    batch_size=args.batch_size,
                    input_level=getattr(args, "input_level", None),
                )
                agreement = perturb.agreement(ranking, k=args.top)
                with torch.no_grad():
                    batch = image if isinstance(image, KeywordInputs) else image[None]
                    probability = float(torch.softmax(run_model(setup.model, batch).double(), 1)[0, target])
            runs.append(RankRun(index, setup.data.name(target), target, probability, ranking, agreement))
            bar.update(1)
    return runs


def write_rankings(runs: Sequence[RankRun], top: int, out: Path, progress: Progress, digits: int) -> list[str]:
    """Write ``perturbation.csv``, ``agreement.csv`` (scores to ``digits`` significant digits, ranks exact) and,
    for image inputs, ``patches.png``; return the names written."""
    import pandas as pd

    files = ["perturbation.csv", "agreement.csv"]
    number = f"%.{digits}g"
    with progress.stage("writing rankings and figures"):
        tables = [run.ranking.table().assign(input=run.index, target=run.target) for run in runs]
        table = pd.concat(tables, ignore_index=True)
        table = table[["input", "target"] + [c for c in table.columns if c not in ("input", "target")]]
        write_file(out / "perturbation.csv", table.to_csv(index=False, float_format=number))
        agreement = pd.DataFrame(
            [
                {"input": run.index, "target": run.target, "level": level, "jaccard": value}
                for run in runs
                for level, value in run.agreement.items()
            ]
        )
        write_file(out / "agreement.csv", agreement.to_csv(index=False, float_format=number))
        images = [run for run in runs if run.ranking.image.dim() == 4]
        if images:
            save_figure(_patch_grid(images, top), out / "patches.png")
            files += ["patches.png", *_patch_files(images, top, out)]
        else:
            progress.note("the inputs are not images (C, H, W): no patches figure.")
    return files


def _patch_files(runs: Sequence[RankRun], top: int, out: Path) -> list[str]:
    """``patches.csv`` (the box of each level's top neurons by correlation, per input) and ``thumbnails.npz`` (the
    inputs), which ``stepwise report`` draws together."""
    import pandas as pd

    import perturb
    from stepwise.explorer.images import THUMBNAILS, write_thumbnails

    rows = []
    for run in runs:
        for level, found in perturb.top_patches(run.ranking, top).items():
            for rank, patch in enumerate(found):
                box = "" if patch.box is None else " ".join(map(str, patch.box))
                rows.append({"input": run.index, "level": level, "neuron": patch.neuron, "rank": rank, "box": box})
    table = pd.DataFrame(rows, columns=["input", "level", "neuron", "rank", "box"])
    write_file(out / "patches.csv", table.to_csv(index=False))
    write_thumbnails(out / THUMBNAILS, [run.index for run in runs], [run.ranking.image[0] for run in runs])
    return ["patches.csv", THUMBNAILS]


def _patch_grid(runs: Sequence[RankRun], top: int) -> Figure:
    """One panel per input: the deconvnet patches of its top neurons per level, one legend for all."""
    import matplotlib.pyplot as plt

    from perturb import plot_patches

    columns = min(5, len(runs))
    rows = math.ceil(len(runs) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns + 1.6, 2.7 * rows), squeeze=False)
    handles: dict[str, Any] = {}
    for ax, run in zip(axes.flat, runs):
        plot_patches(run.ranking.image[0], run.ranking, top, ax=ax)
        legend = ax.get_legend()
        if legend is not None:
            for handle, text in zip(legend.legend_handles, legend.get_texts()):
                handles.setdefault(text.get_text(), handle)
            legend.remove()
        ax.set_title(f"input {run.index}, target {run.label}", fontsize=9)
    for ax in list(axes.flat)[len(runs) :]:
        ax.set_axis_off()
    if handles:
        fig.legend(list(handles.values()), list(handles), title="level", loc="center right", fontsize="small")
        fig.subplots_adjust(right=0.86)
    fig.suptitle(f"Deconvnet patches of the top {top} neurons per level by activation-output correlation")
    return fig
