"""``stepwise inference``: inference graphs (:mod:`stepwise.inference`) of a classifier: Gaussian-mixture visual words
per level, their co-occurrence through receptive fields, and one class graph per class."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

from stepwise.cli.loading import Setup, load_setup, output_folder
from stepwise.cli.options import DTYPES, Formatter, UsageError, add_model_options, non_negative_int, positive_int
from stepwise.cli.progress import Progress
from stepwise.cli.selection import check_classes
from stepwise.cli.summary import md_table, write_summary
from stepwise.core.io import write_file

if TYPE_CHECKING:
    from stepwise.core.inputs import Batch

    from stepwise.inference import InferenceGraphs

__all__ = ["demo_inference", "fit_and_write", "register", "run"]

_LOSSES = ("generative", "discriminative")


def register(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``inference`` to the subcommands of ``stepwise``."""
    parser = commands.add_parser(
        "inference",
        formatter_class=Formatter,
        help="inference graphs: visual words per level and the words that explain each class",
        description="Model every level's activity with a Gaussian mixture (each spatial column of a conv level, or "
        "a dense level's vector, gets a visual word), count how the words of consecutive levels co-occur inside "
        "receptive fields, and select per class the --z words per level that best explain the class (Algorithm 1 "
        "of 'Inference Graphs for CNN Interpretation'). Writes per class the graph (GraphML, JSON) and its figure "
        "with each word's typical patches (PNG, for image inputs), the co-occurrence tables (CSV), the "
        "representatives of the selected words (CSV), thumbnails.npz (small images of their inputs, for stepwise "
        "report), summary.md and summary.json, timings.json.",
    )
    add_model_options(parser)
    group = parser.add_argument_group("inference graphs")
    group.add_argument(
        "--words",
        type=positive_int,
        nargs="+",
        default=[50],
        metavar="K",
        help="visual words per level: one K for every level, or one per level below the softmax, bottom to top",
    )
    group.add_argument("--loss", choices=_LOSSES, default="generative", help="how the mixtures are fitted (Eq. 7 or 8)")
    group.add_argument("--z", type=positive_int, default=3, help="words kept per level in each class graph")
    group.add_argument(
        "--classes",
        type=non_negative_int,
        nargs="+",
        metavar="C",
        help="the classes to explain (default: every class the model predicts for some input)",
    )
    group.add_argument("--max-iter", type=positive_int, default=100, help="EM iterations (Adam epochs)")
    group.add_argument("--seed", type=non_negative_int, default=0, help="seeds the initial columns")
    parser.add_argument(
        "--out", type=Path, default=Path("results/inference"), metavar="DIR", help="folder for the files"
    )
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32", help="precision of the model and EM")
    parser.add_argument("--batch-size", type=positive_int, metavar="N", help="inputs per forward pass")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or notes")
    parser.set_defaults(run=run, parser=parser)
    return parser


def _n_words(words: list[int], levels: list[str]) -> int | dict[str, int]:
    hidden = levels[:-1] if levels and levels[-1] == "softmax" else levels
    if any(k < 2 for k in words):
        raise UsageError(f"--words {words}: a level needs at least 2 visual words.")
    if len(words) == 1:
        return words[0]
    if len(words) != len(hidden):
        raise UsageError(
            f"--words gives {len(words)} numbers for the {len(hidden)} levels below the softmax ({hidden}): give "
            "one K for all of them, or one per level, bottom to top."
        )
    return dict(zip(hidden, words))


def _csv(rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def run(args: argparse.Namespace, progress: Progress) -> Path:
    """Run ``stepwise inference``; return the output folder."""
    out = output_folder(args.out)
    with progress.stage("loading"):
        setup = load_setup(args)
        if setup.levels[-1] == "output":
            raise UsageError("--levels: the top of an inference graph is 'softmax', the predicted class; not 'output'.")
        classes = check_classes(args.classes, setup.n_classes)
        n_words = _n_words(args.words, setup.levels)
        if args.loss == "discriminative" and setup.data.labels is None:
            raise UsageError("--loss discriminative trains a classifier of the word histograms: --data needs labels.")
        from stepwise.inference import InferenceGraphs

        try:
            ig = InferenceGraphs(setup.model, setup.levels, n_words=n_words, loss=args.loss, max_iter=args.max_iter,
                                 seed=args.seed, batch_size=args.batch_size, progress=not args.quiet)  # fmt: skip
        except (TypeError, ValueError) as error:
            raise UsageError(str(error)) from error
        if len(setup.data.inputs) < 2:
            raise UsageError(f"--data holds {len(setup.data.inputs)} input: an inference graph needs at least 2.")
    return fit_and_write(ig, setup, classes, args, out, progress, title="stepwise inference")


def demo_inference(setup: Setup, args: argparse.Namespace, out: Path, progress: Progress) -> Path:
    """The inference graphs of ``stepwise demo``: 10 words per level, at most 10 EM iterations, seed 0, one class
    graph per class written into ``out`` with the files of ``stepwise inference``."""
    from stepwise.inference import InferenceGraphs

    ig = InferenceGraphs(setup.model, setup.levels, n_words=10, max_iter=10, tol=1e-3, seed=0, progress=not args.quiet)
    settings = argparse.Namespace(z=3, seed=0, loss="generative", quiet=args.quiet)
    return fit_and_write(ig, setup, None, settings, out, progress, title="stepwise demo: inference graphs")


def fit_and_write(
    ig: InferenceGraphs,
    setup: Setup,
    classes: list[int] | None,
    args: argparse.Namespace,
    out: Path,
    progress: Progress,
    *,
    title: str,
) -> Path:
    """Fit ``ig`` on the setup's inputs, then write a class graph per class asked for (or predicted), the
    co-occurrence tables, the representatives and the summary into ``out``."""
    import torch

    progress.note(f"fitting the mixtures of {len(setup.levels)} levels on {len(setup.data.inputs)} inputs")
    with progress.stage("fitting"):
        ig.fit(setup.data.inputs, setup.data.labels)
    out.mkdir(parents=True, exist_ok=True)
    with progress.stage("graphs"):
        predicted = ig.validation_words_[ig.levels_[-1]][:, 0]
        present = sorted(int(c) for c in torch.unique(predicted))
        chosen = present if classes is None else classes
        rows, written = [], {}
        for c in chosen:
            if int((predicted == c).sum()) == 0:
                progress.warn(f"class {c}: the model predicts it for none of the inputs; no graph.")
                continue
            graph = ig.class_graph(setup.data.inputs, c, z=args.z)
            for suffix in (".graphml", ".json"):
                graph.write(out / f"class_{c}{suffix}")
            if setup.data.inputs.dim() == 4:
                ig.plot_graph(graph, out / f"class_{c}.png")
            written[c] = graph
            rows.append(
                [c, graph.n_inputs, *(", ".join(map(str, graph.words(name))) or "-" for name in ig.levels_[:-1])]
            )
    with progress.stage("tables"):
        _write_tables(ig, written, setup.data.inputs, out)
    sections = [
        ["## Class graphs", "", f"Words kept per level: z = {args.z}; levels bottom to top: {ig.levels_}.", ""]
        + md_table(["class", "inputs", *ig.levels_[:-1]], rows)
        + [""],
        ["## Fitting", ""]
        + md_table(
            ["level", "K", "EM iterations"], [[n, ig.n_words_[n], ig.n_iter_.get(n, "fixed")] for n in ig.levels_]
        )
        + [""],  # fmt: skip
    ]
    settings = {"levels": ig.levels_, "words": ig.n_words_, "loss": args.loss, "z": args.z, "seed": args.seed}
    record = {"classes": {str(c): {"nodes": sorted(g.nodes), "inputs": g.n_inputs} for c, g in written.items()}}
    write_summary(out, title, setup, settings, sections, record, progress)
    return out


def _write_tables(ig: InferenceGraphs, graphs: dict, inputs: Batch, out: Path) -> None:
    """The co-occurrence tables, the representatives of the graphs' words and the thumbnails of their inputs."""
    import torch

    for low, up in zip(ig.levels_[:-1], ig.levels_[1:]):
        table = ig.cooccurrence(up, low)
        header = [f"{up} \\ {low}", *range(table.shape[1])]
        write_file(
            out / f"cooccurrence_{up}__{low}.csv", _csv([header, *([k, *row] for k, row in enumerate(table.tolist()))])
        )
    rows: list[list[object]] = [["class", "level", "word", "rank", "input", "position", "box"]]
    for c, graph in graphs.items():
        for name in ig.levels_:
            for word in graph.words(name):
                for rank, rep in enumerate(ig.representatives(name, word, k=6)):
                    box = "" if rep.box is None else " ".join(map(str, rep.box))
                    rows.append([c, name, word, rank, rep.input, rep.position, box])
    write_file(out / "representatives.csv", _csv(rows))
    from stepwise.explorer.images import THUMBNAILS, write_thumbnails

    numbers = sorted({int(row[4]) for row in rows[1:]})
    if isinstance(inputs, torch.Tensor):  # token ids are no picture
        write_thumbnails(out / THUMBNAILS, numbers, inputs[torch.as_tensor(numbers, dtype=torch.int64)])
