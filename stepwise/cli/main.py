"""The ``stepwise`` command's entry point: the parser, composed of one sub-parser per command module, and
:func:`main` with its exit statuses (0 success, 1 the analysis failed, 2 a bad argument, 130 interrupted)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import warnings
from collections.abc import Sequence

from stepwise._version import __version__
from stepwise.cli.options import MainFormatter, UsageError
from stepwise.cli.progress import Progress

__all__ = ["COMMANDS", "build_parser", "main"]

# The command modules of stepwise.cli, in the order ``stepwise --help`` lists them. Each one defines
# ``register(commands)``, which adds its sub-parser and sets ``run`` (and ``parser``) as its defaults.
COMMANDS = ["demo", "analyse", "perturb", "paths", "sort", "levels", "inference", "report"]

_DESCRIPTION = """\
Explain a trained PyTorch classifier from the inside: which neurons drive each class, layer by layer, as
dependency graphs (step-wise sensitivity analysis); which neurons matter for one input under noise
(perturbation rankings); the paths inputs take through clusters of each level (decision paths); the visual
words of each level that explain a class (inference graphs); and what each neuron responds to across the data
(activation sorter); and one offline HTML page over any of these results (report). Every command writes its
files atomically and a summary.md of what it measured."""

_EPILOG = """\
examples:
  stepwise demo                                   the shipped digits model, all 10 classes -> results/demo/
  stepwise demo --classes 0 1 --max-images 5      a quick look
  stepwise levels --model stepwise.models:digits_cnn --input-shape 1 16 16
  stepwise analyse --model mypackage.nets:build --weights net.pt --data test.pt --out results/mine
  stepwise perturb --model mypackage.nets:build --weights net.pt --data images/ --image-size 224 --indices 0 7
  stepwise report results/demo                    one page over every result -> results/demo/report.html
"""


def _root_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stepwise", description=_DESCRIPTION, epilog=_EPILOG, formatter_class=MainFormatter
    )
    parser.add_argument("--version", action="version", version=f"stepwise {__version__}")
    return parser


def _register_commands(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in names:
        module = importlib.import_module(f"stepwise.cli.{name}")
        module.register(commands)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``stepwise`` command, with a subcommand for each module named in
    :data:`COMMANDS` (``demo``, ``analyse``, ``perturb``, ``levels``, ...).

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = _root_parser()
    _register_commands(parser, COMMANDS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``stepwise`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The exit status: 0 on success, 1 when the analysis fails, 130 when interrupted. Bad arguments exit with
        status 2 (``SystemExit``) before any long computation.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("MPLBACKEND", "Agg")  # figures go to files; no window system is needed
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv, args.start = argv, time.perf_counter()
    progress = Progress(args.quiet, args.command)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            out = args.run(args, progress)
    except UsageError as error:
        args.parser.error(str(error))
    except KeyboardInterrupt:
        resume = (
            f" Rerun the same command to resume from the checkpoints in {args.checkpoint}."
            if getattr(args, "checkpoint", None) is not None
            else ""
        )
        print(f"stepwise: interrupted; the files written so far are complete.{resume}", file=sys.stderr)
        return 130
    except (ValueError, TypeError, RuntimeError, OSError) as error:
        print(f"stepwise {args.command}: error: {error}", file=sys.stderr)
        return 1
    if out is not None and not args.quiet:
        print(f"wrote {out}{os.sep} in {time.perf_counter() - args.start:.1f} s; see {out / 'summary.md'}")
    return 0
