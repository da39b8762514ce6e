"""``stepwise paths``: decision paths of the user's model and data (:class:`stepwise.DecisionPaths`): k-means per
level, the flows between clusters, the paths of each class, rare inputs, the paths graph and Sankey diagrams.
:func:`run_paths` is the part a demo can share."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from stepwise.cli.loading import Data, command_line, load_classifier, output_folder, probe
from stepwise.cli.options import Formatter, UsageError, add_model_options, positive_int
from stepwise.cli.progress import Progress
from stepwise.core.io import save_figure, write_file

if TYPE_CHECKING:
    import pandas as pd

    from stepwise.paths.decision_paths import DecisionPaths

__all__ = ["DEMO_CLUSTERS", "add_paths_options", "demo_paths", "register", "run", "run_paths", "summary"]

#: The levels and k of the demo's decision paths on the shipped digits CNN: as the paper clusters its MNIST
#: network, the pooled output of the last convolution and the hidden fully connected layer.
DEMO_CLUSTERS = {"features.7": 30, "classifier.1": 15}
_TOP_PATHS = 5  # paths per class listed in the summary
_RARE_SHOWN = 20  # rare inputs listed in the summary


def register(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``paths`` to the subcommands of ``stepwise``."""
    parser = commands.add_parser(
        "paths",
        formatter_class=Formatter,
        help="decision paths: k-means per level, flows, Sankey diagrams",
        description="Decision paths of your classifier (the Paths method): every input's activation at each level "
        "is clustered with k-means, level by level, and the flows of inputs between the clusters of consecutive "
        "levels, up to the class, are counted. Writes assignments.csv, flows.csv, paths.csv and rare.csv, the "
        "paths graph (paths.graphml, paths.json), sankey.html (interactive, works offline), sankey.png and "
        "summary.md (clusters per level, the top paths per class with their coverage, rare inputs).",
    )
    add_model_options(parser)
    add_paths_options(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("results/paths"),
        metavar="DIR",
        help="folder for the files (created if needed; files of the same names are replaced)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="N",
        help="inputs per forward pass (default: chosen from the size of the activations)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars or notes; errors still show")
    parser.set_defaults(run=run, parser=parser)
    return parser


def _clusters(text: str) -> int:
    """An argument type: a number of k-means clusters, at least 2."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected at least 2 clusters, got {value}")
    return value


def add_paths_options(parser: argparse.ArgumentParser) -> None:
    """``--clusters``, ``--features``, ``--top``, ``--seed``, ``--n-init``, ``--algorithm``, ``--time-dim``,
    ``--max-fraction``."""
    group = parser.add_argument_group("decision paths")
    group.add_argument(
        "--clusters",
        type=_clusters,
        nargs="+",
        default=[10],
        metavar="K",
        help="k-means clusters: one K for every level, or one per level (bottom to top)",
    )
    group.add_argument(
        "--features",
        choices=("flatten", "mean"),
        default="flatten",
        help="cluster each input's whole activation (flatten, as the paper) or its channel means (mean)",
    )
    group.add_argument(
        "--top",
        choices=("predicted", "label"),
        default="predicted",
        help="the class column: the model's prediction, or the label stored with --data",
    )
    group.add_argument("--seed", type=int, default=0, help="seed of k-means (default 0)")
    group.add_argument("--n-init", type=positive_int, default=10, metavar="N", help="k-means restarts (default 10)")
    group.add_argument(
        "--algorithm",
        choices=("full", "minibatch"),
        default="full",
        help="full: KMeans on all inputs' features; minibatch: MiniBatchKMeans fed batch by batch (for many inputs)",
    )
    group.add_argument(
        "--time-dim",
        type=positive_int,
        metavar="D",
        help="for recurrent levels (N, T, H): the time dimension (1); each time step becomes a column",
    )
    group.add_argument(
        "--max-fraction",
        type=float,
        default=0.002,
        metavar="F",
        help="a flow carrying at most this share of the inputs is rare (default 0.002)",
    )


def run(args: argparse.Namespace, progress: Progress) -> Path:
    """Run ``stepwise paths``; return the output folder."""
    out = output_folder(args.out)
    with progress.stage("loading"):
        model, name, data = load_classifier(args, torch.float32)
        probe(model, data)
    run_paths(model, name, data, args, out, progress, title=f"stepwise paths: {name}")
    return out


def demo_paths(model: torch.nn.Module, data: Data, out: Path, progress: Progress, *, command: str) -> DecisionPaths:
    """The decision paths of the shipped digits CNN for ``stepwise demo``: :data:`DEMO_CLUSTERS`, ``n_init=10``,
    seed 0, the class column the prediction; every file of ``stepwise paths`` written into ``out``.

    Parameters
    ----------
    model : torch.nn.Module
        The shipped digits CNN (any floating dtype).
    data : Data
        Its inputs (and labels).
    out : pathlib.Path
        The folder of the files (created).
    progress : Progress
    command : str
        The command line, for the summary.
    """
    args = argparse.Namespace(
        levels=list(DEMO_CLUSTERS),
        clusters=list(DEMO_CLUSTERS.values()),
        features="flatten",
        top="predicted",
        seed=0,
        n_init=10,
        algorithm="full",
        time_dim=None,
        max_fraction=0.002,
        batch_size=None,
        quiet=progress.quiet,
        argv=command.split()[1:],
    )
    return run_paths(
        model,
        "stepwise.models.digits_cnn()",
        data,
        args,
        out,
        progress,
        title="stepwise demo: decision paths of the shipped digits CNN",
    )


def _estimator(model: torch.nn.Module, data: Data, args: argparse.Namespace) -> DecisionPaths:
    """The estimator of the command's options, every check of its fit made (a usage error before the long work)."""
    from stepwise.core.levels import default_levels
    from stepwise.paths.decision_paths import DecisionPaths

    if args.top == "label" and data.labels is None:
        raise UsageError(
            f"--top label: --data {data.source} holds no labels; save (inputs, labels), or use --top predicted."
        )
    if not 0.0 <= args.max_fraction <= 1.0:
        raise UsageError(f"--max-fraction {args.max_fraction}: give a share of the inputs, between 0 and 1.")
    # the defaults end with the class output, which is the class column, not a clustered level
    levels = list(args.levels) if args.levels else default_levels(model, data.inputs[:2])[:-1]
    clusters: int | dict[str, int] = args.clusters[0]
    if len(args.clusters) > 1:
        if len(args.clusters) != len(levels):
            raise UsageError(
                f"--clusters: {len(args.clusters)} numbers for the {len(levels)} levels {levels}: give one K for "
                "every level, or one K per level."
            )
        clusters = dict(zip(levels, args.clusters))
    try:
        dp = DecisionPaths(
            model,
            list(args.levels) if args.levels else None,
            n_clusters=clusters,
            n_init=args.n_init,
            seed=args.seed,
            features=args.features,
            top=args.top,
            time_dim=args.time_dim,
            algorithm=args.algorithm,
            batch_size=args.batch_size,
            progress=not args.quiet,
        )
        dp.check(data.inputs, data.labels)
    except (ValueError, TypeError) as error:
        hint = " Run 'stepwise levels --model ... --data ...' to list the levels." if "level" in str(error) else ""
        raise UsageError(f"{error}{hint}") from error
    return dp


def run_paths(
    model: torch.nn.Module,
    name: str,
    data: Data,
    args: argparse.Namespace,
    out: Path,
    progress: Progress,
    *,
    title: str,
) -> DecisionPaths:
    """Fit the decision paths of ``data`` and write every file of the command into ``out``."""
    dp = _estimator(model, data, args)
    out.mkdir(parents=True, exist_ok=True)
    with progress.stage("decision paths"):
        dp.fit(data.inputs, data.labels)
    with progress.stage("writing tables"):
        table = dp.assignments_.copy()
        table.insert(0, "input", range(len(table)))
        table["predicted"] = dp.predictions_
        if dp.labels_ is not None:
            table["label"] = dp.labels_
        write_file(out / "assignments.csv", table.to_csv(index=False))
        write_file(out / "flows.csv", _all_flows(dp).to_csv(index=False))
        paths = _all_paths(dp)
        write_file(out / "paths.csv", paths.to_csv(index=False))
        rare = dp.rare(args.max_fraction)
        write_file(out / "rare.csv", rare.to_csv(index=False))
    with progress.stage("writing graph and figures"):
        graph = dp.graph()
        graph.write(out / "paths.graphml")
        graph.write(out / "paths.json")
        dp.plot_sankey(out / "sankey.html")
        save_figure(dp.plot_sankey(), out / "sankey.png")
    files = [
        "assignments.csv",
        "flows.csv",
        "paths.csv",
        "rare.csv",
        "paths.graphml",
        "paths.json",
        "sankey.html",
        "sankey.png",
        "summary.md",
    ]
    write_file(
        out / "summary.md",
        summary(
            dp,
            paths,
            rare,
            title=title,
            command=command_line(args),
            source=name,
            files=files,
            max_fraction=args.max_fraction,
        ),
    )
    return dp


def _all_flows(dp: DecisionPaths) -> pd.DataFrame:
    import pandas as pd

    parts = []
    for lower, upper in zip(dp.columns_[:-1], dp.columns_[1:]):
        flows = dp.flows(lower, upper)
        flows.insert(0, "upper", upper)
        flows.insert(0, "lower", lower)
        parts.append(flows)
    return pd.concat(parts, ignore_index=True)


def _all_paths(dp: DecisionPaths) -> pd.DataFrame:
    """Every class's paths (coverage of the class), then all inputs' (class ``all``); paths written ``a-b-c``."""
    import pandas as pd

    parts = []
    for cls in [*dp.classes_.tolist(), None]:
        table = dp.paths(cls)
        table.insert(0, "class", "all" if cls is None else str(cls))
        table["path"] = ["-".join(map(str, path)) for path in table["path"]]
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def _md_table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]


def summary(
    dp: DecisionPaths,
    paths: pd.DataFrame,
    rare: pd.DataFrame,
    *,
    title: str,
    command: str,
    source: str,
    files: list[str],
    max_fraction: float,
) -> str:
    """The command's ``summary.md``: clusters per level, the top paths per class, rare inputs."""
    import pandas as pd

    lines = [
        f"# {title}",
        "",
        f"`{command}`",
        "",
        f"Model {source}; {dp.n_inputs_} inputs; class column: "
        f"{'the prediction' if dp.top == 'predicted' else 'the label'}; features: {dp.features}; "
        f"k-means: {dp.algorithm}, n_init={dp.n_init}, seed={dp.seed}.",
        "",
        "## Clusters per level",
        "",
    ]
    rows = []
    for level in dp.levels_:
        columns = [c for c in dp.columns_ if c == level or c.startswith(f"{level}@t")]
        sizes = [int(n) for n in dp.assignments_[columns].stack().value_counts().sort_index()]
        rows.append(
            [
                level,
                dp.n_clusters_[level],
                dp.centroids_[level].shape[1],
                len(columns),
                f"{dp.inertia_[level]:.4g}",
                ", ".join(map(str, sizes)),
            ]
        )
    lines += _md_table(["level", "k", "dimensions", "columns", "inertia", "cluster sizes (0 first)"], rows)
    lines += ["", f"## Top paths per class (clusters bottom to top, then the class: {' → '.join(dp.columns_)})", ""]
    rows = []
    for cls in dp.classes_.tolist():
        table = paths[paths["class"] == str(cls)]
        top = table.head(_TOP_PATHS)
        cumulative = top["coverage"].cumsum().iloc[-1] if len(top) else 0.0
        shown = "; ".join(f"{p} ({c:.1%})" for p, c in zip(top["path"], top["coverage"]))
        rows.append([cls, int(table["count"].sum()), len(table), shown, f"{cumulative:.1%}"])
    lines += _md_table(["class", "inputs", "paths", f"top {_TOP_PATHS} paths (coverage)", "covered by them"], rows)
    lines += ["", f"## Rare inputs ({len(rare)} rows; thin flows carry at most {max_fraction:g} of the inputs)", ""]
    if len(rare):
        shown_rows = rare.head(_RARE_SHOWN)
        cells = [["—" if pd.isna(v) else v for v in row] for row in shown_rows.itertuples(index=False)]
        lines += _md_table(list(shown_rows.columns), cells)
        if len(rare) > _RARE_SHOWN:
            lines += ["", f"... and {len(rare) - _RARE_SHOWN} more rows in rare.csv."]
    else:
        lines += ["None."]
    lines += ["", "## Files", ""] + [f"- `{f}`" for f in files] + [""]
    return "\n".join(lines)
