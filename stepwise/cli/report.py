"""``stepwise report``: one self-contained HTML page over a folder of results (:mod:`stepwise.explorer`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from stepwise.cli.options import Formatter, UsageError
from stepwise.cli.progress import Progress

__all__ = ["register", "run", "write_report"]


def register(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``report`` to the subcommands of ``stepwise``."""
    parser = commands.add_parser(
        "report",
        formatter_class=Formatter,
        help="one offline HTML page over a folder of results",
        description="Build one self-contained HTML page (it opens from disk, offline, and can be mailed) from a "
        "folder written by stepwise demo, analyse, perturb, paths, inference or sort, and the folders one level "
        "below it: a tab per kind of result found (dependency graphs, perturbation, decision paths, inference "
        "graphs, activation sorter); click a neuron, word or cluster for its details.",
    )
    parser.add_argument("results", type=Path, metavar="RESULTS_DIR", help="the folder of results")
    parser.add_argument(
        "--out", type=Path, default=None, help="the page to write (default: RESULTS_DIR/report.html; replaced)"
    )
    parser.add_argument("--title", default=None, help="the page's title (default: the folder's name)")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.set_defaults(run=run, parser=parser)
    return parser


def write_report(results: Path, out: Path, title: str) -> Path:
    """Write the page of a folder of results.

    Parameters
    ----------
    results : pathlib.Path
        The folder (and the folders one level below it) that the commands wrote.
    out : pathlib.Path
        The page, replaced atomically.
    title : str

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    UsageError
        If the folder holds no result stepwise knows.
    """
    from stepwise.explorer import folder_views, write_page
    from stepwise.explorer.folder import NoResultsError

    try:
        views = folder_views(results)
    except NoResultsError as error:
        raise UsageError(str(error)) from error
    write_page(out, views, title)
    return out


def run(args: argparse.Namespace, progress: Progress) -> None:
    """Run ``stepwise report``: check the folders, then read the results and write the page."""
    results: Path = args.results
    if not results.is_dir():
        raise UsageError(f"RESULTS_DIR {results} is not a folder: give the folder a stepwise command wrote into.")
    out = args.out if args.out is not None else results / "report.html"
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder: give the path of the HTML file to write.")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {out.parent} does not exist; create it first.")
    title = args.title or f"stepwise: {results.resolve().name}"
    with progress.stage("report"):
        write_report(results, out, title)
    if not args.quiet:
        print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB); open it in a browser, no server needed")
