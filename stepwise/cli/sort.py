"""``stepwise sort``: the neuron activation sorter over the user's model and data
(:class:`stepwise.ActivationSorter`): per level the neuron values, the layer summary figure (paged), the neuron
kinds and a neuron view of the clearest neuron of each kind. :func:`run_sort` is the part a demo can share."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from stepwise.cli.loading import Data, command_line, load_classifier, output_folder, probe
from stepwise.cli.options import Formatter, UsageError, add_model_options, at_least_two, positive_int
from stepwise.cli.progress import Progress
from stepwise.core.hooks import run_model
from stepwise.core.inputs import Batch
from stepwise.core.io import atomic_write, file_part, save_figure, write_file

if TYPE_CHECKING:
    import pandas as pd

    from stepwise.sorter.sorter import ActivationSorter

__all__ = ["add_sort_options", "demo_section", "register", "run", "run_sort"]

_PREDICT_BATCH = 256
# the number that makes a neuron the clearest of its kind (largest first; zeroing: fewest positive values)
_STRENGTH = {
    "specialised": "top_share",
    "bisemantic": "top_two_share",
    "polysemantic": "top_two_share",
    "suppressing": "bottom_share",
    "differentiating": "separation",
    "zeroing": "positive_fraction",
}


def register(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``sort`` to the subcommands of ``stepwise``."""
    parser = commands.add_parser(
        "sort",
        formatter_class=Formatter,
        help="neuron activation sorter: class-stacked histograms per neuron, neuron kinds",
        description="Sort every neuron's values on a few inputs per class into class-stacked histograms aligned on "
        "zero (the Neuron Activation Sorter). Writes, per level, values_LEVEL.npy (inputs x neurons, float32), the "
        "layer summary summary_LEVEL_pN.png (64 neurons per page, ordered by kind), types_LEVEL.csv (each "
        "neuron's kind and the numbers that decided it) and view_LEVEL_KIND_NEURON.png (the inputs of the clearest "
        "neuron of each kind); inputs.csv (the inputs used, their labels and predictions), sort.json (the levels), "
        "thumbnails.npz (small images of the inputs, for stepwise report) and summary.md.",
    )
    add_model_options(parser)
    add_sort_options(parser)
    parser.add_argument(
        "--out", type=Path, default=Path("results/sort"), metavar="DIR",
        help="folder for the files (created if needed; files of the same names are replaced)",
    )  # fmt: skip
    parser.add_argument(
        "--batch-size", type=positive_int, metavar="N",
        help="inputs per forward pass (default: chosen from the size of the activations)",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bars or notes; errors still show")
    parser.set_defaults(run=run, parser=parser)
    return parser


def add_sort_options(parser: argparse.ArgumentParser) -> None:
    """``--per-class``, ``--reduce``, ``--bins``, ``--seed``."""
    group = parser.add_argument_group("sorter")
    group.add_argument(
        "--per-class", type=positive_int, default=100, metavar="N",
        help="inputs per class, drawn with --seed (all of a class when it has fewer; default 100)",
    )  # fmt: skip
    group.add_argument(
        "--reduce", choices=("mean", "max", "none"), default="mean",
        help="a channel's value: its mean over positions, its maximum, or none to keep every unit (channel x "
        "position)",
    )  # fmt: skip
    group.add_argument("--bins", type=at_least_two, default=30, metavar="M", help="bins per neuron (default 30)")
    group.add_argument("--seed", type=int, default=0, help="seed of the draw per class (default 0)")


def run(args: argparse.Namespace, progress: Progress) -> Path:
    """Run ``stepwise sort``; return the output folder."""
    out = output_folder(args.out)
    with progress.stage("loading"):
        model, name, data = load_classifier(args, torch.float32)
        probe(model, data)
    run_sort(model, name, data, args, out, progress, title=f"stepwise sort: {name}")
    return out


def _sorter(model: torch.nn.Module, data: Data, args: argparse.Namespace) -> ActivationSorter:
    """The sorter of the command's options, every check of its fit made (a usage error before the long work)."""
    from stepwise.sorter.sorter import ActivationSorter

    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: give a seed of at least 0.")
    try:
        sorter = ActivationSorter(
            model, list(args.levels) if args.levels else None, per_class=args.per_class,
            reduce=None if args.reduce == "none" else args.reduce, seed=args.seed, batch_size=args.batch_size,
            progress=not args.quiet,
        )  # fmt: skip
        labels = data.labels if data.labels is not None else torch.zeros(len(data.inputs), dtype=torch.int64)
        sorter.check(data.inputs, labels)
    except (ValueError, TypeError) as error:
        hint = " Run 'stepwise levels --model ... --data ...' to list the levels." if "level" in str(error) else ""
        raise UsageError(f"{error}{hint}") from error
    return sorter


def _predict(model: torch.nn.Module, inputs: Batch, progress: Progress) -> torch.Tensor:
    predicted = []
    with torch.no_grad(), progress.bar(len(inputs), "predicting") as bar:
        for start in range(0, len(inputs), _PREDICT_BATCH):
            batch = inputs[start : start + _PREDICT_BATCH]
            predicted.append(run_model(model, batch).argmax(1))
            bar.update(len(batch))
    return torch.cat(predicted)


def clearest(types: pd.DataFrame) -> dict[str, int]:
    """The clearest neuron of each kind found (``other`` left out), by the number that decides the kind."""
    chosen = {}
    for kind, column in _STRENGTH.items():
        rows = types[types["kind"] == kind]
        if len(rows):
            ranked = rows.sort_values([column, "neuron"], ascending=[kind == "zeroing", True], kind="stable")
            chosen[kind] = int(ranked["neuron"].iloc[0])
    return chosen


def run_sort(
    model: torch.nn.Module,
    name: str,
    data: Data,
    args: argparse.Namespace,
    out: Path,
    progress: Progress,
    *,
    title: str,
) -> ActivationSorter:
    """Fit the sorter on ``data`` and write every file of the command into ``out``."""
    import pandas as pd

    sorter = _sorter(model, data, args)
    labels = data.labels
    source = "labels"
    if labels is None:
        source = "the model's predictions (the data holds no labels)"
        with progress.stage("predicting"):
            labels = _predict(model, data.inputs, progress)
    out.mkdir(parents=True, exist_ok=True)
    with progress.stage("sorting"):
        sorter.fit(data.inputs, labels)
    files: list[str] = ["inputs.csv"]
    table = pd.DataFrame({"input": sorter.indices_, "label": sorter.labels_})
    if sorter.predicted_ is not None:
        table["predicted"] = sorter.predicted_
    write_file(out / "inputs.csv", table.to_csv(index=False))
    from stepwise.explorer.folder import SORTER_FILE
    from stepwise.explorer.images import THUMBNAILS, write_thumbnails

    write_file(out / SORTER_FILE, json.dumps({"levels": sorter.levels_, "bins": args.bins}, indent=1) + "\n")
    files.append(SORTER_FILE)
    if isinstance(data.inputs, torch.Tensor):  # token ids are no picture
        write_thumbnails(out / THUMBNAILS, sorter.indices_, data.inputs[torch.as_tensor(sorter.indices_)])
        files.append(THUMBNAILS)
    kinds: dict[str, pd.Series] = {}
    views: dict[str, dict[str, int]] = {}
    for level in sorter.levels_:
        part = file_part(level)
        with progress.stage("values"):
            values = sorter.values_[level]
            atomic_write(out / f"values_{part}.npy", lambda stream, v=values: np.lib.format.write_array(stream, v))
            files.append(f"values_{part}.npy")
        with progress.stage("neuron kinds"):
            types = sorter.neuron_types(level)
            write_file(out / f"types_{part}.csv", types.to_csv(index=False))
            files.append(f"types_{part}.csv")
            kinds[level] = types["kind"].value_counts()
        with progress.stage("figures"):
            summary = sorter.layer_summary(level, bins=args.bins)
            for page in range(summary.n_pages()):
                figure = summary.plot(order="kind", page=page, class_names=data.names)
                save_figure(figure, out / f"summary_{part}_p{page + 1}.png")
                files.append(f"summary_{part}_p{page + 1}.png")
            views[level] = clearest(types)
            for kind, neuron in views[level].items():
                figure = sorter.neuron_view(level, neuron, bins=args.bins).plot(class_names=data.names)
                save_figure(figure, out / f"view_{part}_{kind}_{neuron}.png")
                files.append(f"view_{part}_{kind}_{neuron}.png")
    files.append("summary.md")
    text = summary_text(sorter, kinds, views, title=title, command=command_line(args), model=name, labels=source,
                        bins=args.bins, files=files)  # fmt: skip
    write_file(out / "summary.md", text)
    return sorter


def summary_text(
    sorter: ActivationSorter,
    kinds: dict[str, pd.Series],
    views: dict[str, dict[str, int]],
    *,
    title: str,
    command: str,
    model: str,
    labels: str,
    bins: int,
    files: Sequence[str],
) -> str:
    """The command's ``summary.md``: the inputs used, the kinds per level, the neurons shown."""
    from stepwise.sorter.kinds import KINDS

    counts = np.bincount(np.searchsorted(sorter.classes_, sorter.labels_))
    wrong = "" if sorter.predicted_ is None else f", {int((sorter.predicted_ != sorter.labels_).sum())} misclassified"
    lines = [
        f"# {title}",
        "",
        f"`{command}`",
        "",
        f"Model {model}; {len(sorter.indices_)} inputs ({', '.join(map(str, counts))} per class {sorter.classes_[0]} "
        f"to {sorter.classes_[-1]}; classes from {labels}){wrong}; reduce={sorter.reduce!r}, {bins} bins, "
        f"seed {sorter.seed}. The kinds are this library's reading of the thesis (see stepwise.sorter.kinds).",
        "",
        "## Neuron kinds per level",
        "",
        "| level | neurons | " + " | ".join(KINDS) + " |",
        "|---|---|" + "---|" * len(KINDS),
    ]
    for level, count in kinds.items():
        cells = [str(int(count.get(kind, 0))) for kind in KINDS]
        lines.append(f"| {level} | {sorter.values_[level].shape[1]} | " + " | ".join(cells) + " |")
    lines += ["", "## Neuron views (the clearest neuron of each kind)", ""]
    for level, chosen in views.items():
        shown = ", ".join(f"{kind} {neuron}" for kind, neuron in chosen.items()) or "none"
        lines.append(f"- {level}: {shown}")
    lines += ["", "## Files", ""] + [f"- `{f}`" for f in files] + [""]
    return "\n".join(lines)


def demo_section(
    model: torch.nn.Module,
    data: Data,
    out: Path,
    progress: Progress,
    *,
    argv: Sequence[str],
    levels: Sequence[str] | None = None,
    per_class: int = 30,
    batch_size: int | None = None,
    quiet: bool = False,
) -> list[str]:
    """What ``stepwise demo`` adds: the sorter over ``data`` with every file of ``stepwise sort`` in ``out`` (its own
    ``summary.md`` there), and the lines of a short section for the demo's summary.

    Returns
    -------
    list of str
        Markdown: a heading, the kinds per level and a link to ``out/summary.md``.
    """
    from stepwise.sorter.kinds import KINDS

    args = argparse.Namespace(
        levels=list(levels) if levels else None, per_class=per_class, reduce="mean", bins=30, seed=0,
        batch_size=batch_size, quiet=quiet, argv=list(argv),
    )  # fmt: skip
    sorter = run_sort(model, "stepwise.models.digits_cnn()", data, args, out, progress, title="stepwise demo: sort")
    lines = [
        "## Neuron activation sorter",
        "",
        f"{len(sorter.indices_)} inputs ({per_class} per class); kinds of neurons per level (this library's reading "
        f"of the thesis, see stepwise.sorter.kinds); figures and tables in `{out.name}/` (see "
        f"`{out.name}/summary.md`).",
        "",
        "| level | " + " | ".join(KINDS) + " |",
        "|---|" + "---|" * len(KINDS),
    ]
    for level in sorter.levels_:
        counts = sorter.neuron_types(level)["kind"].value_counts()
        lines.append(f"| {level} | " + " | ".join(str(int(counts.get(kind, 0))) for kind in KINDS) + " |")
    return [*lines, ""]
