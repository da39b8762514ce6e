"""``stepwise levels``: the candidate levels of a model, bottom to top, those :func:`stepwise.default_levels`
proposes marked."""

from __future__ import annotations

import argparse

import torch

from stepwise.cli.loading import load_data, load_model, load_weights, probe
from stepwise.cli.options import Formatter, UsageError, add_model_options
from stepwise.cli.progress import Progress
from stepwise.core.levels import INPUT, OUTPUT, SOFTMAX, default_levels, list_levels, resolve_levels

__all__ = ["register", "run"]


def register(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``levels`` to the subcommands of ``stepwise``."""
    parser = commands.add_parser(
        "levels",
        formatter_class=Formatter,
        help="list a model's candidate levels",
        description="Print every module output that can be a level, bottom to top, with its shape for one "
        "input; the levels stepwise.default_levels proposes are marked with *.",
    )
    add_model_options(parser, levels=False)
    parser.set_defaults(run=run, parser=parser, quiet=True)
    return parser


def run(args: argparse.Namespace, progress: Progress) -> None:
    """Run ``stepwise levels``: print the table on stdout."""
    model, _ = load_model(args.model)
    if args.weights is not None:
        load_weights(model, args.weights)
    model = model.eval()
    if args.data is not None:
        data = load_data(args)
        example = data.inputs[:2]
        probe(model, data)
    else:
        parameter = next(model.parameters(), None)
        dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
        example = torch.zeros(2, *args.input_shape, dtype=dtype)
        try:
            with torch.no_grad():
                model(example)
        except Exception as error:  # the model rejects the shape given
            raise UsageError(
                f"--input-shape {' '.join(map(str, args.input_shape))}: the model rejects inputs of that shape "
                f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). Give the shape of "
                "one input as the model expects it, without the batch dimension."
            ) from error
    names = list_levels(model, example)
    defaults = set(default_levels(model, example))
    shapes = {info.name: info.shape for info in resolve_levels(model, example, names)}
    modules = dict(model.named_modules())
    width = max(len(name) for name in names)
    print(
        f"Levels of {type(model).__name__} for inputs of shape {tuple(example.shape[1:])}, bottom to top "
        "(* = proposed by stepwise.default_levels):"
    )
    for name in names:
        kind = {INPUT: "model input", SOFTMAX: "softmax of the model output", OUTPUT: "model output"}.get(name)
        kind = kind or type(modules[name]).__name__
        shape = str(shapes[name])
        print(f"{'*' if name in defaults else ' '} {name:<{width}}  {shape:<18} {kind}")
