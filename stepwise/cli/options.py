"""What the commands share on their command lines: the usage error, argument types, help formatters and option
groups.

Every ``add_*`` function adds one group of options to a command's parser; the command modules compose them in
their ``register`` function. Nothing here imports more than torch and the tuples of valid choices, so that
``stepwise --help`` answers at once.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

import torch

from stepwise.ssa.relevance import RULES
from stepwise.ssa.select import SIGNS

__all__ = [
    "DTYPES",
    "Formatter",
    "MainFormatter",
    "UsageError",
    "add_common_options",
    "add_levels_option",
    "add_model_options",
    "add_perturb_options",
    "add_selection_options",
    "add_ssa_options",
    "at_least_two",
    "float_in",
    "non_negative_int",
    "positive_int",
]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


class UsageError(Exception):
    """A bad argument found before the long work: reported by the command's parser, exit status 2."""


# ------------------------------------------------------------------------------------------------ argument types


def positive_int(text: str) -> int:
    """An argument type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An argument type: a whole number of at least 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {value}")
    return value


def at_least_two(text: str) -> int:
    """An argument type: a number of resamples, at least 2 (a correlation needs two)."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected at least 2 resamples, got {value}")
    return value


def float_in(low: float, high: float | None, *, open_low: bool = False) -> Callable[[str], float]:
    """An argument type: a finite number in ``[low, high]`` (``(low, high]`` with ``open_low``; no upper bound
    when ``high`` is None)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        below = value <= low if open_low else value < low
        if not math.isfinite(value) or below or (high is not None and value > high):
            interval = f"{'(' if open_low else '['}{low:g}, {'inf)' if high is None else f'{high:g}]'}"
            raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text}")
        return value

    return parse


# ------------------------------------------------------------------------------------------------ formatters


class Formatter(argparse.HelpFormatter):
    """Adds each option's default to its help, unless there is none or the help already speaks of it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        absent = action.default is None or action.default is False or action.default is argparse.SUPPRESS
        if not action.option_strings or "default" in text or absent:
            return text
        return text + " (default: %(default)s)"


class MainFormatter(Formatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of the main description and the examples."""


# ------------------------------------------------------------------------------------------------ option groups

_DATA_HELP = (
    "the inputs: a .pt file holding a tensor (N, ...) or an (inputs, labels) pair of tensors, read with "
    "torch.load(weights_only=True); or an image folder with one sub-folder per class (named by class index, 0/ 1/ "
    "..., or by name, indexed in sorted order). For sentences the file holds a dict of tensors, as a tokenizer "
    "returns them (torch.save(dict(tokenizer(texts, padding=True, return_tensors='pt')), path)), or a (dict, "
    "labels) pair; the dict is passed to the model as keyword arguments and its attention_mask keeps the padding "
    "out. Without labels, an input's class is the model's prediction."
)


def add_model_options(parser: argparse.ArgumentParser, *, levels: bool = True) -> None:
    """``--model``, ``--weights``, ``--data`` (or, without ``levels``, ``--data`` or ``--input-shape``), the
    image-folder options and, with ``levels``, ``--levels``."""
    group = parser.add_argument_group("model and data")
    group.add_argument(
        "--model",
        required=True,
        metavar="SPEC",
        help="the model: package.module:factory, a callable that returns the torch.nn.Module "
        "(importable from the current folder or installed), e.g. stepwise.models:digits_cnn; "
        "or a .pt2 file written by torch.export.save (then name --levels; torch.export.load unpickles "
        "parts of it, so run only model files you trust, as you would their code). TorchScript files "
        "cannot be analysed: they do not run forward hooks.",
    )
    group.add_argument(
        "--weights",
        type=Path,
        metavar="FILE",
        help="a state dict to load into the model, read with torch.load(weights_only=True); "
        "its names and shapes must match the architecture",
    )
    if levels:
        group.add_argument("--data", type=Path, required=True, metavar="PATH", help=_DATA_HELP)
    else:
        source = group.add_mutually_exclusive_group(required=True)
        source.add_argument("--data", type=Path, metavar="PATH", help=_DATA_HELP + " Two inputs are run.")
        source.add_argument(
            "--input-shape",
            type=positive_int,
            nargs="+",
            metavar="N",
            help="the shape of one input without the batch dimension, e.g. 3 224 224; the model "
            "runs on zeros of that shape",
        )
    _add_image_options(parser)
    if levels:
        add_levels_option(parser)


def _add_image_options(parser: argparse.ArgumentParser) -> None:
    images = parser.add_argument_group("image folders (--data FOLDER)")
    images.add_argument(
        "--image-size",
        type=positive_int,
        nargs="+",
        metavar="PX",
        help="resize every image to this size (one number: square; two: height width)",
    )
    images.add_argument(
        "--channels", type=int, choices=(1, 3), default=3, help="1 converts images to greyscale, 3 to RGB"
    )
    images.add_argument(
        "--mean",
        type=float,
        nargs="+",
        metavar="M",
        help="subtract this per-channel mean from pixels scaled to [0, 1] (e.g. ImageNet's 0.485 0.456 0.406)",
    )
    images.add_argument(
        "--std",
        type=float,
        nargs="+",
        metavar="S",
        help="then divide by this per-channel standard deviation (e.g. 0.229 0.224 0.225)",
    )


def add_levels_option(parser: argparse.ArgumentParser) -> None:
    """``--levels``: the analysed levels, bottom to top."""
    parser.add_argument(
        "--levels",
        nargs="+",
        metavar="LEVEL",
        help="the analysed levels, bottom to top: module names as in model.named_modules() "
        "(e.g. features.3), 'input' first and 'softmax' or 'output' last if wanted; "
        "default: stepwise.default_levels (Conv/Linear outputs after their activation, "
        "softmax on top). 'stepwise levels' lists the candidates.",
    )


# What --dtype changes, in the terms of each command's own results.
_DTYPE_HELP = {
    "ssa": "precision of the analysis. float64 keeps ω exact on confidently classified inputs, whose softmax "
    "rounds to exactly 1 in float32 and loses its derivative; float32 halves time and memory for large models",
    "perturb": "precision of the model and the rankings. float64 keeps the class probability of a confidently "
    "classified input varying under the noise (in float32 it rounds to exactly 1, a constant that correlates with "
    "nothing); float32 halves time and memory for large models",
}


def add_common_options(parser: argparse.ArgumentParser, out: str, *, results: str = "ssa") -> None:
    """``--out`` (default ``out``), ``--dtype`` (explained for ``results``: ``"ssa"`` or ``"perturb"``),
    ``--batch-size`` and ``--quiet``."""
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(out),
        metavar="DIR",
        help="folder for the files (created if needed; files of the same names are replaced)",
    )
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float64", help=_DTYPE_HELP[results])
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="N",
        help="inputs per forward pass (default: chosen from the size of the activations)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars or notes; warnings (classes skipped or with few inputs, traversals that stopped "
        "early) and errors still show",
    )


def add_selection_options(parser: argparse.ArgumentParser, *, per_class: bool = True) -> None:
    """``--classes``, ``--min-probability`` and, with ``per_class``, ``--max-images`` and ``--min-images``."""
    group = parser.add_argument_group("which inputs")
    group.add_argument(
        "--classes",
        type=non_negative_int,
        nargs="+",
        metavar="C",
        help="class indices to explain (default: every class present in the data: the labels, or without labels "
        "the classes the model predicts)",
    )
    group.add_argument(
        "--min-probability",
        type=float_in(0.0, 1.0),
        default=0.99,
        metavar="P",
        help="use only inputs the model classifies correctly with at least this probability (the SSA paper used 0.99)",
    )
    if per_class:
        group.add_argument(
            "--max-images",
            type=positive_int,
            default=100,
            metavar="N",
            help="inputs per class at most, the first that qualify in data order (the paper used 100)",
        )
        group.add_argument(
            "--min-images",
            type=positive_int,
            default=10,
            metavar="N",
            help="warn about a class with fewer qualifying inputs than this (or than --max-images, if smaller) "
            "and mark it in summary.md: its graph rests on few inputs (the paper used 100)",
        )


def add_ssa_options(parser: argparse.ArgumentParser) -> None:
    """The options of the dependency graphs and their clustering, and ``--checkpoint``."""
    group = parser.add_argument_group("dependency graphs (step-wise sensitivity analysis)")
    group.add_argument(
        "--branching",
        type=positive_int,
        default=3,
        metavar="B",
        help="children kept per neuron: the B lower neurons that are outliers of ω in the most inputs",
    )
    group.add_argument(
        "--rule",
        choices=RULES,
        default="gradient",
        help="relevance ω: the plain gradient, guided backpropagation through the nn.ReLUs inside "
        "a step, or gradient times the lower activation",
    )
    group.add_argument(
        "--sign",
        choices=SIGNS,
        default="positive",
        help="which Tukey outliers of ω count: excitatory, inhibitory or either",
    )
    group.add_argument(
        "--fence",
        type=float_in(0.0, None, open_low=True),
        default=1.5,
        metavar="F",
        help="Tukey's fence: outliers lie beyond F inter-quartile ranges from the quartiles",
    )
    group.add_argument(
        "--clusters",
        type=positive_int,
        default=3,
        metavar="K",
        help="flat clusters cut from the dendrogram of the class graphs",
    )
    group.add_argument(
        "--checkpoint",
        type=Path,
        metavar="DIR",
        help="record each finished step of each class's traversal in DIR/class_c.checkpoint.json (DIR is "
        "created if needed); rerun the same command after an interruption to resume where it stopped, with "
        "identical graphs. A checkpoint made with other model weights, data, settings or stepwise version is "
        "refused; finished classes' checkpoints are kept, so a rerun skips them (delete DIR to start afresh)",
    )


def add_perturb_options(parser: argparse.ArgumentParser) -> None:
    """The options of the perturbation rankings."""
    group = parser.add_argument_group("perturbation rankings (input resampling)")
    group.add_argument("--samples", type=at_least_two, default=50, metavar="N", help="noisy resamples per input")
    group.add_argument(
        "--sigma",
        type=float_in(0.0, None),
        default=0.1,
        metavar="S",
        help="standard deviation of the multiplicative noise 1 + N(0, S²)",
    )
    group.add_argument("--seed", type=non_negative_int, default=0, help="seed of the noise")
    group.add_argument(
        "--input-level",
        metavar="MODULE",
        help="for sentences (--data holding a dict of token ids): the module whose output takes the noise, the token "
        "embeddings (for a BERT-style model the module 'embeddings' of the encoder)",
    )
    group.add_argument(
        "--top",
        type=positive_int,
        default=5,
        metavar="K",
        help="neurons per level compared (Jaccard) and drawn as patches",
    )
