"""The ``stepwise`` command: dependency graphs and perturbation rankings of a trained classifier, as files.

Subcommands (``stepwise COMMAND --help`` explains every option):

- ``demo``: the shipped digits CNN (:mod:`stepwise.models`) end to end, offline: a dependency graph per class,
  their bag-of-nodes clustering and a perturbation ranking of one image per class;
- ``analyse``: the same dependency graphs and clustering for your model and data;
- ``perturb``: perturbation neuron rankings (:mod:`perturb`) of some of your inputs;
- ``levels``: the levels of a model, those :func:`stepwise.default_levels` proposes marked.

Bad arguments (a missing file, a module without the factory, a level typo, data the model rejects, weights that
do not fit the architecture) stop the command before any long computation with a message and exit status 2.
Every file is written atomically (a temporary file, then a rename), so an interrupted run never leaves a
half-written file; with ``--checkpoint DIR``, ``demo`` and ``analyse`` record each finished step of each class's
traversal, and the same command run again resumes where it stopped. matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from stepwise._version import __version__
from stepwise.core.levels import INPUT, OUTPUT, SOFTMAX, default_levels, list_levels, resolve_levels
from stepwise.core.io import save_figure, write_file
from stepwise.ssa.relevance import RULES
from stepwise.ssa.select import SIGNS
from stepwise.core.validation import unknown_name_message

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from perturb import NeuronRanking

    from stepwise.graphs.dependency import DependencyGraph

__all__ = ["build_parser", "main"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
_PREDICT_BATCH = 256
_SHOWN_TOP = 3  # top neurons per metric listed in a summary


# ------------------------------------------------------------------------------------------------ files


# ------------------------------------------------------------------------------------------------ errors


def _article(noun: str) -> str:
    """``noun`` with its indefinite article: 'an int', 'a tuple'."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


class _UsageError(Exception):
    """A bad argument found before the long work: reported by the subcommand's parser, exit status 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {value}")
    return value


def _float_in(low: float, high: float | None, *, open_low: bool = False) -> Callable[[str], float]:
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


# ------------------------------------------------------------------------------------------------ loading


@dataclass
class _Data:
    """Inputs as the model reads them, their labels (``None``: use the model's predictions), class names."""

    inputs: Tensor
    labels: Tensor | None
    names: dict[int, str] = field(default_factory=dict)
    source: str = ""

    def name(self, c: int) -> str:
        return self.names.get(c, str(c))


def _load_model(spec: str) -> tuple[nn.Module, str]:
    """The model named by ``--model``: ``package.module:factory``, or a ``.pt2`` file of ``torch.export``."""
    path = Path(spec)
    if ":" in spec and not path.exists():
        module_name, _, factory_name = spec.rpartition(":")
        if not module_name or not factory_name:
            raise _UsageError(
                f"--model {spec!r}: write package.module:factory, for example stepwise.models:digits_cnn."
            )
        if os.getcwd() not in sys.path:  # a module next to the user, as 'python -m' would find it
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise _UsageError(
                f"--model {spec!r}: cannot import module {module_name!r} ({type(error).__name__}: {error}). Check "
                "the spelling, and run the command from the folder that holds the module or install its package."
            ) from error
        factory = getattr(module, factory_name, None)
        if factory is None:
            callables = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
            raise _UsageError(
                "--model: "
                + unknown_name_message(
                    "factory",
                    factory_name,
                    f"module {module_name!r}",
                    callables,
                    f"Its public callables: {', '.join(callables) or 'none'}.",
                )
            )
        if not callable(factory):
            raise _UsageError(
                f"--model {spec!r}: {factory_name!r} is {_article(type(factory).__name__)}, not a callable that returns "
                "the model."
            )
        try:
            model = factory()
        except Exception as error:  # the user's factory failed: say so, with its message
            raise _UsageError(
                f"--model {spec!r}: calling {factory_name}() raised {type(error).__name__}: {error}. The factory "
                "must build the model without arguments."
            ) from error
        if not isinstance(model, nn.Module):
            raise _UsageError(
                f"--model {spec!r}: {factory_name}() returned a {type(model).__name__}; it must return a "
                "torch.nn.Module."
            )
        return model, spec
    if not path.is_file():
        raise _UsageError(
            f"--model {spec!r}: no such file. Pass package.module:factory (a callable returning the model, e.g. "
            "stepwise.models:digits_cnn) or a .pt2 file written by torch.export.save."
        )
    return _load_model_file(path), path.name


def _load_model_file(path: Path) -> nn.Module:
    if path.suffix == ".pt2":
        with warnings.catch_warnings():  # torch's own deprecation notices, nothing the user can act on
            warnings.simplefilter("ignore", FutureWarning)
            try:
                program = torch.export.load(path)
            except Exception as error:  # any failure to read the archive is the file's fault
                raise _UsageError(
                    f"--model {path}: cannot load it as a torch.export program ({type(error).__name__}: {error})."
                ) from error
            return torch.export.unflatten(program)
    try:
        torch.jit.load(path, map_location="cpu")
    except (RuntimeError, ValueError, OSError):  # not TorchScript either: say what is accepted
        raise _UsageError(
            f"--model {path}: not a model file stepwise reads. Pass package.module:factory, or a .pt2 file written "
            "by torch.export.save. (Pickled models are not loaded: they can run arbitrary code; save "
            "model.state_dict() and pass it with --weights.)"
        ) from None
    raise _UsageError(
        f"--model {path} is a TorchScript module, which cannot be analysed: stepwise reads levels with forward "
        "hooks, and TorchScript modules do not run hooks. Pass package.module:factory (the Python model, with "
        "--weights for its state dict), or export the model with torch.export.export and torch.export.save to a "
        ".pt2 file."
    )


def _load_weights(model: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise _UsageError(f"--weights {path}: no such file.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling refused or a corrupt file
        raise _UsageError(
            f"--weights {path}: cannot be loaded with torch.load(weights_only=True) ({type(error).__name__}: "
            f"{str(error).splitlines()[0]}). Save the state dict, torch.save(model.state_dict(), path), not the "
            "model."
        ) from error
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise _UsageError(
            f"--weights {path} holds a {type(state).__name__}, not a state dict (names to tensors). Save it with "
            "torch.save(model.state_dict(), path)."
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        details = " ".join(line.strip() for line in str(error).splitlines()[1:4])
        raise _UsageError(
            f"--weights {path} does not match the architecture of {type(model).__name__}: {details} Pass the "
            "weights saved from this architecture."
        ) from error


def _load_data(args: argparse.Namespace) -> _Data:
    path: Path = args.data
    if path.is_dir():
        return _load_image_folder(path, args.image_size, args.channels, args.mean, args.std)
    if not path.is_file():
        raise _UsageError(
            f"--data {path}: no such file or folder. Pass a .pt file holding a tensor or an (inputs, labels) pair, "
            "or an image folder with one sub-folder per class."
        )
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a torch file, or one that needs unpickling of code
        raise _UsageError(
            f"--data {path}: cannot be loaded with torch.load(weights_only=True) ({type(error).__name__}). Save a "
            "tensor or an (inputs, labels) pair of tensors with torch.save."
        ) from error
    if isinstance(loaded, Tensor):
        inputs, labels = loaded, None
    elif isinstance(loaded, (tuple, list)) and len(loaded) == 2 and all(isinstance(t, Tensor) for t in loaded):
        inputs, labels = loaded
    else:
        raise _UsageError(
            f"--data {path} holds a {type(loaded).__name__}; expected a tensor of inputs (N, ...) or an (inputs, "
            "labels) pair of tensors."
        )
    if inputs.dim() < 2 or len(inputs) == 0:
        raise _UsageError(
            f"--data {path}: inputs of shape {tuple(inputs.shape)}; expected a batch (N, ...) with N >= 1."
        )
    if not inputs.is_floating_point():
        raise _UsageError(
            f"--data {path}: inputs are {inputs.dtype}; save floating-point inputs, scaled as the model expects."
        )
    finite = torch.isfinite(inputs.flatten(1)).all(dim=1)
    if not finite.all():
        bad = (~finite).nonzero().flatten().tolist()
        raise _UsageError(
            f"--data {path}: {len(bad)} of the {len(inputs)} inputs hold NaN or Inf values (positions "
            f"{', '.join(map(str, bad[:5]))}{', ...' if len(bad) > 5 else ''}); remove or replace them."
        )
    if labels is not None:
        if labels.dim() != 1 or labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise _UsageError(
                f"--data {path}: labels must be one integer class index per input (shape (N,)); got "
                f"{labels.dtype} of shape {tuple(labels.shape)}."
            )
        if len(labels) != len(inputs):
            raise _UsageError(
                f"--data {path}: found {len(labels)} labels for {len(inputs)} inputs: pass one label per input."
            )
        labels = labels.to(torch.int64)
    return _Data(inputs, labels, source=str(path))


def _load_image_folder(
    folder: Path,
    size: Sequence[int] | None,
    channels: int,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> _Data:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if size is None:
        raise _UsageError(f"--data {folder} is an image folder: give --image-size (one side, or height width).")
    height, width = (size[0], size[0]) if len(size) == 1 else size
    for name, values in (("--mean", mean), ("--std", std)):
        if values is not None and len(values) not in (1, channels):
            raise _UsageError(f"{name} takes 1 or {channels} numbers (one per channel); got {len(values)}.")
    if std is not None and any(v <= 0 for v in std):
        raise _UsageError(f"--std must be positive; got {list(std)}.")
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise _UsageError(
            f"--data {folder}: no sub-folders. An image folder holds one sub-folder per class (named by the class "
            "index, e.g. 0/ 1/ ..., or by class name, indexed in sorted order)."
        )
    numeric = all(p.name.isdigit() for p in classes)
    ordered = sorted(classes, key=lambda p: int(p.name)) if numeric else classes
    images, labels, names = [], [], {}
    for position, sub in enumerate(ordered):
        label = int(sub.name) if numeric else position
        names[label] = sub.name
        files = sorted(p for p in sub.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
        for file in files:
            try:
                with Image.open(file) as image:
                    converted = image.convert("L" if channels == 1 else "RGB").resize(
                        (width, height), Image.Resampling.BILINEAR
                    )
            except (UnidentifiedImageError, OSError) as error:
                raise _UsageError(f"--data: cannot read the image {file} ({error}).") from error
            array = np.asarray(converted, dtype=np.float32) / 255.0
            images.append(torch.from_numpy(array.reshape(height, width, channels)).permute(2, 0, 1))
            labels.append(label)
    if not images:
        raise _UsageError(
            f"--data {folder}: no images in its class folders (looked for {', '.join(sorted(_IMAGE_SUFFIXES))})."
        )
    inputs = torch.stack(images)
    if mean is not None:
        inputs = inputs - torch.tensor(mean, dtype=inputs.dtype).view(1, -1, 1, 1)
    if std is not None:
        inputs = inputs / torch.tensor(std, dtype=inputs.dtype).view(1, -1, 1, 1)
    return _Data(inputs, torch.tensor(labels, dtype=torch.int64), names if not numeric else {}, str(folder))


@dataclass
class _Setup:
    """A model and data checked against each other: what every analysing subcommand starts from."""

    model: nn.Module
    model_name: str
    data: _Data
    n_classes: int
    levels: list[str]
    command: str


def _probe(model: nn.Module, data: _Data) -> int:
    """Run the model on two inputs; return the number of classes or raise a usage error."""
    example = data.inputs[:2]
    try:
        with torch.no_grad():
            output = model(example)
    except Exception as error:  # the user's model rejected the user's inputs
        raise _UsageError(
            f"--data: the model rejects inputs of shape {tuple(example.shape[1:])} ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}). Pass inputs shaped as the model expects, batch "
            "dimension first (for an image folder: --image-size and --channels)."
        ) from error
    if not (isinstance(output, Tensor) and output.dim() == 2 and output.shape[1] >= 2):
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise _UsageError(
            f"--model: the model returns {shape} on a batch of 2; the stepwise command explains classifiers, whose "
            "output is class scores of shape (N, C) with C >= 2. Use the Python API for other models."
        )
    n_classes = int(output.shape[1])
    if data.labels is not None and (data.labels.min() < 0 or data.labels.max() >= n_classes):
        raise _UsageError(
            f"--data: labels run from {int(data.labels.min())} to {int(data.labels.max())}, but the model scores "
            f"{n_classes} classes (0 to {n_classes - 1}): check that the labels match the model's classes."
        )
    return n_classes


def _check_levels(model: nn.Module, example: Tensor, levels: Sequence[str] | None, spec: str) -> list[str]:
    chosen = list(levels) if levels else default_levels(model, example)
    hint = f" Run 'stepwise levels --model {spec} --data ...' to list them."
    if len(chosen) < 2 and not levels:
        raise _UsageError(
            f"--levels: stepwise.default_levels finds {chosen} in this model (it recognises Conv/Linear layers and "
            f"their activations), fewer than the two levels a step needs: name the levels with --levels.{hint}"
        )
    try:
        resolve_levels(model, example, chosen)
    except (ValueError, TypeError) as error:
        raise _UsageError(f"--levels: {error}{hint}") from error
    return chosen


def _setup(args: argparse.Namespace) -> _Setup:
    """Load and check the model, its weights, the data and the levels (``analyse``, ``perturb``)."""
    dtype = _DTYPES[args.dtype]
    model, name = _load_model(args.model)
    if args.weights is not None:
        _load_weights(model, args.weights)
    model = model.to(dtype).eval()
    data = _load_data(args)
    data.inputs = data.inputs.to(dtype)
    n_classes = _probe(model, data)
    levels = _check_levels(model, data.inputs[:2], args.levels, args.model)
    return _Setup(model, name, data, n_classes, levels, _command_line(args))


def _command_line(args: argparse.Namespace) -> str:
    return "stepwise " + " ".join(args.argv)


def _output_folder(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise _UsageError(f"--out {path} is a file; name a folder (it is created if needed).")
    return path


def _check_checkpoint_folder(path: Path | None) -> None:
    if path is not None and path.exists() and not path.is_dir():
        raise _UsageError(
            f"--checkpoint {path} is a file; name a folder (it is created if needed and holds one checkpoint file "
            "per class)."
        )


# ------------------------------------------------------------------------------------------------ work


class _Progress:
    """Progress bars and notes on stderr, both silenced by ``--quiet``; stage timings for the summary."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.timings: dict[str, float] = {}

    def note(self, text: str) -> None:
        if not self.quiet:
            tqdm.write(text, file=sys.stderr)

    def bar(self, total: int, desc: str) -> tqdm:
        return tqdm(total=total, desc=desc, disable=self.quiet, file=sys.stderr, leave=False)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


@dataclass
class _Selection:
    """Per class: the indices chosen, and how many inputs of the class there were, correct, confident."""

    indices: dict[int, Tensor]
    counts: dict[int, dict[str, int]]


def _predict(model: nn.Module, inputs: Tensor, batch_size: int | None, progress: _Progress) -> Tensor:
    size = batch_size or _PREDICT_BATCH
    parts = []
    with torch.no_grad(), progress.bar(len(inputs), "predicting") as bar:
        for start in range(0, len(inputs), size):
            batch = inputs[start : start + size]
            parts.append(torch.softmax(model(batch).to(torch.float64), dim=1))
            bar.update(len(batch))
    return torch.cat(parts)


def _select(
    setup: _Setup,
    classes: Sequence[int],
    *,
    min_probability: float,
    max_images: int,
    batch_size: int | None,
    progress: _Progress,
) -> _Selection:
    """Inputs of each class that the model classifies correctly with at least ``min_probability``, in data order.

    Without labels, an input's class is the model's prediction."""
    probabilities = _predict(setup.model, setup.data.inputs, batch_size, progress)
    predicted = probabilities.argmax(1)
    labels = setup.data.labels if setup.data.labels is not None else predicted
    indices, counts = {}, {}
    for c in classes:
        own = labels == c
        correct = own & (predicted == c)
        confident = correct & (probabilities[:, c] >= min_probability)
        indices[c] = confident.nonzero().flatten()[:max_images]
        counts[c] = {
            "inputs": int(own.sum()),
            "correct": int(correct.sum()),
            "confident": int(confident.sum()),
        }
    return _Selection(indices, counts)


def _check_classes(classes: Sequence[int] | None, setup: _Setup) -> list[int]:
    if classes is None:
        if setup.data.labels is None:
            return list(range(setup.n_classes))
        return sorted(int(c) for c in setup.data.labels.unique())
    wrong = [c for c in classes if not 0 <= c < setup.n_classes]
    if wrong:
        raise _UsageError(f"--classes {wrong}: the model scores {setup.n_classes} classes, 0 to {setup.n_classes - 1}.")
    return sorted(set(classes))


@dataclass
class _GraphRun:
    """One class's dependency graph and where its files went."""

    label: str
    graph: DependencyGraph
    n_images: int
    files: list[str]
    warning: str | None


def _graphs(
    setup: _Setup, selection: _Selection, args: argparse.Namespace, out: Path, progress: _Progress
) -> dict[int, _GraphRun]:
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
    runs: dict[int, _GraphRun] = {}
    chosen = {c: index for c, index in selection.indices.items() if len(index)}
    for c, index in selection.indices.items():
        if not len(index):
            counts = selection.counts[c]
            progress.note(
                f"class {setup.data.name(c)}: no input of the class is classified correctly with probability >= "
                f"{args.min_probability} ({counts['inputs']} inputs, {counts['correct']} correct); no graph. A "
                "lower --min-probability admits more."
            )
    with progress.bar(len(chosen), "dependency graphs") as bar:
        for c, index in chosen.items():
            label = setup.data.name(c)
            bar.set_postfix_str(f"class {label}, {len(index)} inputs")
            inputs = setup.data.inputs[index]
            stem = f"class_{_file_label(label)}"
            checkpoint = None if args.checkpoint is None else args.checkpoint / f"{stem}.checkpoint.json"
            with progress.stage("dependency graphs"), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)
                graph = ssa.dependency_graph(inputs, target=c, checkpoint=checkpoint)
            warning = "; ".join(str(w.message) for w in caught if issubclass(w.category, UserWarning)) or None
            if warning:
                progress.note(f"class {label}: {warning}")
            with progress.stage("writing graphs and figures"):
                graph.write(out / f"{stem}.graphml")
                graph.write(out / f"{stem}.json")
                save_figure(plot_graph(graph), out / f"{stem}.png")
            with progress.stage("outlier frequencies"):
                top, below = setup.levels[-1], setup.levels[-2]
                counts = ssa.outlier_counts(inputs, upper=top, lower=below, neurons=c)[0]
            with progress.stage("writing graphs and figures"):
                figure = plot_outlier_frequency(counts, level=below, neuron=f"{top}:{c}")
                save_figure(figure, out / f"{stem}_outlier_frequency.png")
            files = [f"{stem}.graphml", f"{stem}.json", f"{stem}.png", f"{stem}_outlier_frequency.png"]
            runs[c] = _GraphRun(label, graph, len(index), files, warning)
            bar.update(1)
    return runs


def _file_label(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label)


@dataclass
class _Clusters:
    leaf_order: list[str]
    labels: dict[str, int]
    shared_nodes: list[str]


def _cluster(runs: dict[int, _GraphRun], n_clusters: int, out: Path, progress: _Progress) -> _Clusters | None:
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
        width = max(6.0, min(24.0, 0.12 * frame.shape[1] + 3))
        save_figure(result.plot(figsize=(width, max(4.0, 0.45 * len(graphs) + 2.5))), out / "clustermap.png")
        write_file(out / "bag_of_nodes.csv", frame.to_csv(index_label="graph"))
    flat = {} if result.labels is None else {str(k): int(v) for k, v in result.labels.items()}
    return _Clusters(
        [str(label) for label in result.leaf_labels],
        flat,
        sorted(occurrence[occurrence == len(graphs)].index),
    )


@dataclass
class _RankRun:
    """One input's perturbation ranking."""

    index: int
    label: str
    target: int
    probability: float
    ranking: NeuronRanking
    agreement: dict[str, float]


def _rankings(
    setup: _Setup, chosen: Sequence[tuple[int, int]], args: argparse.Namespace, progress: _Progress
) -> list[_RankRun]:
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
                )
                agreement = perturb.agreement(ranking, k=args.top)
                with torch.no_grad():
                    probability = float(torch.softmax(setup.model(image[None]).double(), 1)[0, target])
            runs.append(_RankRun(index, setup.data.name(target), target, probability, ranking, agreement))
            bar.update(1)
    return runs


def _write_rankings(runs: Sequence[_RankRun], top: int, out: Path, progress: _Progress) -> list[str]:
    import pandas as pd

    files = ["perturbation.csv", "agreement.csv"]
    with progress.stage("writing rankings and figures"):
        tables = [run.ranking.table().assign(input=run.index, target=run.target) for run in runs]
        table = pd.concat(tables, ignore_index=True)
        table = table[["input", "target"] + [c for c in table.columns if c not in ("input", "target")]]
        write_file(out / "perturbation.csv", table.to_csv(index=False))
        agreement = pd.DataFrame(
            [
                {"input": run.index, "target": run.target, "level": level, "jaccard": value}
                for run in runs
                for level, value in run.agreement.items()
            ]
        )
        write_file(out / "agreement.csv", agreement.to_csv(index=False))
        images = [run for run in runs if run.ranking.image.dim() == 4]
        if images:
            save_figure(_patch_grid(images, top), out / "patches.png")
            files.append("patches.png")
        else:
            progress.note("the inputs are not images (C, H, W): no patches figure.")
    return files


def _patch_grid(runs: Sequence[_RankRun], top: int) -> Figure:
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


# ------------------------------------------------------------------------------------------------ summary


def _md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def _graph_section(setup: _Setup, runs: dict[int, _GraphRun], selection: _Selection) -> tuple[list[str], list[dict]]:
    lines = ["## Dependency graphs", ""]
    rows, records = [], []
    for c, counts in selection.counts.items():
        run = runs.get(c)
        if run is None:
            rows.append([setup.data.name(c), 0, "-", "-", "-", "no input qualifies", "-"])
            records.append({"class": c, "label": setup.data.name(c), **counts, "images": 0})
            continue
        graph = run.graph
        per_level = [sum(1 for _, level in graph.nodes(data="level") if level == name) for name in graph.levels]
        stopped = graph.attrs.get("stopped_at", "")
        rows.append(
            [
                run.label,
                run.n_images,
                len(graph),
                len(graph.edges),
                " / ".join(map(str, per_level)),
                stopped or "bottom reached",
                ", ".join(f"`{f}`" for f in run.files[:2]),
            ]
        )
        records.append(
            {
                "class": c,
                "label": run.label,
                **counts,
                "images": run.n_images,
                "nodes": len(graph),
                "edges": len(graph.edges),
                "nodes_per_level": dict(zip(graph.levels, per_level)),
                "stopped_at": stopped or None,
                "files": run.files,
                "top_neurons": {
                    metric: _top(graph, metric) for metric in ("frequency", "interconnectedness", "relevance")
                },
            }
        )
    lines += [f"Levels, bottom to top: {' → '.join(f'`{name}`' for name in setup.levels)}.", ""]
    lines += _md_table(
        ["class", "images", "nodes", "edges", "nodes per level (bottom → top)", "traversal", "files"], rows
    )
    notes = [f"- class {run.label}: {run.warning}" for run in runs.values() if run.warning]
    if notes:
        lines += ["Traversals that stopped early:", "", *notes, ""]
    lines += [
        "## Top neurons",
        "",
        f"The {_SHOWN_TOP} neurons of each graph that rank highest by the paper's relevance metrics "
        + "(`DependencyGraph.top_neurons`; targets excluded).",
        "",
    ]
    top_rows = [
        [r["label"]]
        + [
            ", ".join(f"`{key}` ({value:.3g})" for key, value in r["top_neurons"][m].items())
            for m in ("frequency", "interconnectedness", "relevance")
        ]
        for r in records
        if "top_neurons" in r
    ]
    lines += _md_table(["class", "frequency", "interconnectedness", "relevance (mean ω)"], top_rows)
    return lines, records


def _top(graph: DependencyGraph, metric: str) -> dict[str, float]:
    table = graph.top_neurons(metric, _SHOWN_TOP)
    return {str(key): float(value) for key, value in table[metric].items()}


def _cluster_section(clusters: _Clusters | None) -> list[str]:
    if clusters is None:
        return []
    groups: dict[int, list[str]] = {}
    for label in clusters.leaf_order:
        groups.setdefault(clusters.labels[label], []).append(label)
    lines = [
        "## Clusters",
        "",
        "Bag-of-nodes vectors of the graphs, Ward linkage on cosine geometry (SSA paper §4.2.1); "
        + "`clustermap.png`, vectors in `bag_of_nodes.csv`.",
        "",
        f"- dendrogram leaf order: {', '.join(clusters.leaf_order)}",
        f"- {len(groups)} flat clusters: " + "; ".join("{" + ", ".join(m) + "}" for m in groups.values()),
        f"- neurons in every graph: {len(clusters.shared_nodes)}"
        + (
            f" ({', '.join(f'`{n}`' for n in clusters.shared_nodes[:12])}"
            + (", ..." if len(clusters.shared_nodes) > 12 else "")
            + ")"
            if clusters.shared_nodes
            else ""
        ),
        "",
    ]
    return lines


def _ranking_section(runs: Sequence[_RankRun], args: argparse.Namespace) -> tuple[list[str], list[dict]]:
    if not runs:
        return [], []
    levels = runs[0].ranking.levels
    lines = [
        "## Perturbation rankings",
        "",
        f"{args.samples} resamples of each input with multiplicative noise 1 + N(0, {args.sigma}²), seed "
        + f"{args.seed}; every neuron of every level scored (`perturbation.csv`). Jaccard index of the top "
        f"{args.top} neurons by activation-output correlation and by activation precision, per level "
        "(`agreement.csv`); deconvnet patches of the correlation top neurons in `patches.png`.",
        "",
    ]
    rows = [
        [run.index, run.label, f"{run.probability:.4f}"] + [f"{run.agreement[name]:.2f}" for name in levels]
        for run in runs
    ]
    lines += _md_table(["input", "target", "P(target)"] + [f"`{name}`" for name in levels], rows)
    records = [
        {
            "input": run.index,
            "target": run.target,
            "label": run.label,
            "probability": run.probability,
            "agreement": run.agreement,
        }
        for run in runs
    ]
    return lines, records


def _write_summary(
    out: Path,
    title: str,
    setup: _Setup,
    settings: dict[str, object],
    sections: list[list[str]],
    record: dict[str, object],
    progress: _Progress,
) -> None:
    timings = {name: round(seconds, 2) for name, seconds in progress.timings.items()}
    lines = [
        f"# {title}",
        "",
        f"Written by `{setup.command}` (stepwise {__version__}, torch {torch.__version__}).",
        "",
        f"- model: {setup.model_name} ({type(setup.model).__name__})",
        f"- data: {setup.data.source} ({len(setup.data.inputs)} inputs of shape "
        f"{tuple(setup.data.inputs.shape[1:])}, "
        + ("labelled" if setup.data.labels is not None else "unlabelled: classes as predicted")
        + ")",
    ]
    lines += [f"- {name}: {value}" for name, value in settings.items()] + [""]
    for section in sections:
        lines += section
    lines += ["## Timings", ""]
    lines += _md_table(["stage", "seconds"], [[name, f"{seconds:.1f}"] for name, seconds in timings.items()])
    write_file(out / "summary.md", "\n".join(lines))
    record = {
        "command": setup.command,
        "version": __version__,
        "model": setup.model_name,
        "levels": setup.levels,
        "settings": settings,
        **record,
        "timings_s": timings,
    }
    write_file(out / "summary.json", json.dumps(record, indent=2) + "\n")


# ------------------------------------------------------------------------------------------------ commands


def _ssa_settings(args: argparse.Namespace, classes: Sequence[int], setup: _Setup) -> dict[str, object]:
    return {
        "classes": ", ".join(setup.data.name(c) for c in classes),
        "images per class": f"up to {args.max_images}, classified correctly with probability >= {args.min_probability}",
        "branching": args.branching,
        "rule": args.rule,
        "sign": args.sign,
        "fence": args.fence,
        "dtype": args.dtype,
    }


def _run_analysis(
    setup: _Setup,
    args: argparse.Namespace,
    out: Path,
    progress: _Progress,
    *,
    title: str,
    perturbation: bool,
    select_from: Tensor | None = None,
    pool: str | None = None,
) -> dict[str, object]:
    """Dependency graphs and clustering (and with ``perturbation``, one ranking per class), then the summary."""
    classes = _check_classes(args.classes, setup)
    with progress.stage("selecting inputs"):
        subset = setup if select_from is None else _subset(setup, select_from)
        selection = _select(
            subset,
            classes,
            min_probability=args.min_probability,
            max_images=args.max_images,
            batch_size=args.batch_size,
            progress=progress,
        )
        if select_from is not None:
            selection.indices = {c: select_from[index] for c, index in selection.indices.items()}
    if not any(len(index) for index in selection.indices.values()):
        raise _UsageError(
            f"no input of classes {classes} is classified correctly with probability >= {args.min_probability}: "
            "lower --min-probability, or check that the labels match the model's classes."
        )
    out.mkdir(parents=True, exist_ok=True)
    if args.checkpoint is not None:
        args.checkpoint.mkdir(parents=True, exist_ok=True)
    runs = _graphs(setup, selection, args, out, progress)
    clusters = _cluster(runs, args.clusters, out, progress)
    graph_lines, graph_records = _graph_section(setup, runs, selection)
    sections = [graph_lines, _cluster_section(clusters)]
    record: dict[str, object] = {"graphs": graph_records}
    if clusters is not None:
        record["clusters"] = {
            "leaf_order": clusters.leaf_order,
            "labels": clusters.labels,
            "shared_nodes": clusters.shared_nodes,
        }
    settings = _ssa_settings(args, classes, setup)
    if pool is not None:
        settings = {"inputs chosen from": pool, **settings}
    if perturbation:
        chosen = [(int(index[0]), c) for c, index in selection.indices.items() if len(index)]
        rank_runs = _rankings(setup, chosen, args, progress)
        _write_rankings(rank_runs, args.top, out, progress)
        lines, records = _ranking_section(rank_runs, args)
        sections.append(lines)
        record["rankings"] = records
        settings.update(samples=args.samples, sigma=args.sigma, seed=args.seed, top=args.top)
    progress.timings["total"] = time.perf_counter() - args.start
    _write_summary(out, title, setup, settings, sections, record, progress)
    return record


def _subset(setup: _Setup, index: Tensor) -> _Setup:
    data = _Data(
        setup.data.inputs[index],
        None if setup.data.labels is None else setup.data.labels[index],
        setup.data.names,
        setup.data.source,
    )
    return _Setup(setup.model, setup.model_name, data, setup.n_classes, setup.levels, setup.command)


def _demo(args: argparse.Namespace, progress: _Progress) -> Path:
    from stepwise.models import digits_cnn, digits_data

    out = _output_folder(args.out)
    _check_checkpoint_folder(args.checkpoint)
    with progress.stage("loading"):
        dtype = _DTYPES[args.dtype]
        model = digits_cnn().to(dtype)
        digits = digits_data()
        data = _Data(digits.images.to(dtype), digits.labels, source="stepwise.models.digits_data()")
        levels = _check_levels(model, data.inputs[:2], args.levels, "stepwise.models:digits_cnn")
    setup = _Setup(model, "stepwise.models.digits_cnn()", data, 10, levels, _command_line(args))
    split = {"train": digits.train, "test": digits.test, "all": None}[args.split]
    pool = f"the {args.split} split, {len(split)} images" if split is not None else "all images"
    _run_analysis(
        setup,
        args,
        out,
        progress,
        title="stepwise demo: the shipped digits CNN",
        perturbation=True,
        select_from=split,
        pool=f"{pool}; input numbers index digits_data().images",
    )
    return out


def _analyse(args: argparse.Namespace, progress: _Progress) -> Path:
    out = _output_folder(args.out)
    _check_checkpoint_folder(args.checkpoint)
    with progress.stage("loading"):
        setup = _setup(args)
    _run_analysis(setup, args, out, progress, title=f"stepwise analyse: {setup.model_name}", perturbation=False)
    return out


def _perturb(args: argparse.Namespace, progress: _Progress) -> Path:
    out = _output_folder(args.out)
    with progress.stage("loading"):
        setup = _setup(args)
    if args.indices is not None:
        wrong = [i for i in args.indices if not 0 <= i < len(setup.data.inputs)]
        if wrong:
            raise _UsageError(
                f"--indices {wrong}: the data holds {len(setup.data.inputs)} inputs (0 to "
                f"{len(setup.data.inputs) - 1})."
            )
        if args.target is not None and not 0 <= args.target < setup.n_classes:
            raise _UsageError(f"--target {args.target}: the model scores classes 0 to {setup.n_classes - 1}.")
        with torch.no_grad():
            predicted = _predict(setup.model, setup.data.inputs[args.indices], args.batch_size, progress).argmax(1)
        chosen = []
        for i, index in enumerate(args.indices):
            if args.target is not None:
                chosen.append((index, args.target))
            elif setup.data.labels is not None:
                chosen.append((index, int(setup.data.labels[index])))
            else:
                chosen.append((index, int(predicted[i])))
    else:
        if args.target is not None:
            raise _UsageError(
                "--target needs --indices (without them, each class's first qualifying input is "
                "ranked for its own class)."
            )
        classes = _check_classes(args.classes, setup)
        with progress.stage("selecting inputs"):
            selection = _select(
                setup,
                classes,
                min_probability=args.min_probability,
                max_images=1,
                batch_size=args.batch_size,
                progress=progress,
            )
        chosen = [(int(index[0]), c) for c, index in selection.indices.items() if len(index)]
        if not chosen:
            raise _UsageError(
                f"no input of classes {classes} is classified correctly with probability >= "
                f"{args.min_probability}: lower --min-probability, or name inputs with --indices."
            )
    out.mkdir(parents=True, exist_ok=True)
    runs = _rankings(setup, chosen, args, progress)
    files = _write_rankings(runs, args.top, out, progress)
    lines, records = _ranking_section(runs, args)
    progress.timings["total"] = time.perf_counter() - args.start
    settings = {"levels": ", ".join(setup.levels), "dtype": args.dtype}
    _write_summary(
        out,
        f"stepwise perturb: {setup.model_name}",
        setup,
        settings,
        [lines],
        {"rankings": records, "files": files},
        progress,
    )
    return out


def _levels(args: argparse.Namespace, progress: _Progress) -> None:
    model, _ = _load_model(args.model)
    if args.weights is not None:
        _load_weights(model, args.weights)
    model = model.eval()
    if args.data is not None:
        data = _load_data(args)
        example = data.inputs[:2]
        _probe(model, data)
    else:
        parameter = next(model.parameters(), None)
        dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
        example = torch.zeros(2, *args.input_shape, dtype=dtype)
        try:
            with torch.no_grad():
                model(example)
        except Exception as error:  # the model rejects the shape given
            raise _UsageError(
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


# ------------------------------------------------------------------------------------------------ parser

_DESCRIPTION = """\
Explain a trained PyTorch classifier from the inside: which neurons drive each class, layer by layer, as
dependency graphs (step-wise sensitivity analysis), and which neurons matter for one input under noise
(perturbation rankings). Every command writes its files atomically and a summary.md of what it measured."""

_EPILOG = """\
examples:
  stepwise demo                                   the shipped digits model, all 10 classes -> results/demo/
  stepwise demo --classes 0 1 --max-images 5      a quick look
  stepwise levels --model stepwise.models:digits_cnn --input-shape 1 16 16
  stepwise analyse --model mypackage.nets:build --weights net.pt --data test.pt --out results/mine
  stepwise perturb --model mypackage.nets:build --weights net.pt --data images/ --image-size 224 --indices 0 7
"""


class _Formatter(argparse.HelpFormatter):
    """Adds each option's default to its help, unless there is none or the help already speaks of it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        absent = action.default is None or action.default is False or action.default is argparse.SUPPRESS
        if not action.option_strings or "default" in text or absent:
            return text
        return text + " (default: %(default)s)"


class _MainFormatter(_Formatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of the main description and the examples."""


def _add_model_options(parser: argparse.ArgumentParser, *, levels: bool = True) -> None:
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
    data_help = (
        "the inputs: a .pt file holding a tensor (N, ...) or an (inputs, labels) pair of tensors, read "
        "with torch.load(weights_only=True); or an image folder with one sub-folder per class (named by "
        "class index, 0/ 1/ ..., or by name, indexed in sorted order). Without labels, an input's class "
        "is the model's prediction."
    )
    if levels:
        group.add_argument("--data", type=Path, required=True, metavar="PATH", help=data_help)
    else:
        source = group.add_mutually_exclusive_group(required=True)
        source.add_argument("--data", type=Path, metavar="PATH", help=data_help + " Two inputs are run.")
        source.add_argument(
            "--input-shape",
            type=_positive_int,
            nargs="+",
            metavar="N",
            help="the shape of one input without the batch dimension, e.g. 3 224 224; the model "
            "runs on zeros of that shape",
        )
    images = parser.add_argument_group("image folders (--data FOLDER)")
    images.add_argument(
        "--image-size",
        type=_positive_int,
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
    if levels:
        _add_levels_option(parser)


def _add_levels_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--levels",
        nargs="+",
        metavar="LEVEL",
        help="the analysed levels, bottom to top: module names as in model.named_modules() "
        "(e.g. features.3), 'input' first and 'softmax' or 'output' last if wanted; "
        "default: stepwise.default_levels (Conv/Linear outputs after their activation, "
        "softmax on top). 'stepwise levels' lists the candidates.",
    )


def _add_common_options(parser: argparse.ArgumentParser, out: str) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(out),
        metavar="DIR",
        help="folder for the files (created if needed; files of the same names are replaced)",
    )
    parser.add_argument(
        "--dtype",
        choices=tuple(_DTYPES),
        default="float64",
        help="precision of the analysis. float64 keeps ω exact on confidently classified inputs, "
        "whose softmax rounds to exactly 1 in float32 and loses its derivative; float32 "
        "halves time and memory for large models",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        metavar="N",
        help="inputs per forward pass (default: chosen from the size of the activations)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars or notes; errors still show")


def _add_selection_options(parser: argparse.ArgumentParser, *, max_images: bool = True) -> None:
    group = parser.add_argument_group("which inputs")
    group.add_argument(
        "--classes",
        type=_non_negative_int,
        nargs="+",
        metavar="C",
        help="class indices to explain (default: every class present in the data)",
    )
    group.add_argument(
        "--min-probability",
        type=_float_in(0.0, 1.0),
        default=0.99,
        metavar="P",
        help="use only inputs the model classifies correctly with at least this probability (the SSA paper used 0.99)",
    )
    if max_images:
        group.add_argument(
            "--max-images",
            type=_positive_int,
            default=100,
            metavar="N",
            help="inputs per class at most, the first that qualify in data order (the paper used 100)",
        )


def _add_ssa_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dependency graphs (step-wise sensitivity analysis)")
    group.add_argument(
        "--branching",
        type=_positive_int,
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
        type=_float_in(0.0, None, open_low=True),
        default=1.5,
        metavar="F",
        help="Tukey's fence: outliers lie beyond F inter-quartile ranges from the quartiles",
    )
    group.add_argument(
        "--clusters",
        type=_positive_int,
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


def _add_perturb_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("perturbation rankings (input resampling)")
    group.add_argument("--samples", type=_at_least_two, default=50, metavar="N", help="noisy resamples per input")
    group.add_argument(
        "--sigma",
        type=_float_in(0.0, None),
        default=0.1,
        metavar="S",
        help="standard deviation of the multiplicative noise 1 + N(0, S²)",
    )
    group.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the noise")
    group.add_argument(
        "--top",
        type=_positive_int,
        default=5,
        metavar="K",
        help="neurons per level compared (Jaccard) and drawn as patches",
    )


def _at_least_two(text: str) -> int:
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected at least 2 resamples, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``stepwise`` command, with its subcommands ``demo``, ``analyse``, ``perturb``
    and ``levels``.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="stepwise", description=_DESCRIPTION, epilog=_EPILOG, formatter_class=_MainFormatter
    )
    parser.add_argument("--version", action="version", version=f"stepwise {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        formatter_class=_Formatter,
        help="the shipped digits CNN end to end, offline",
        description="The shipped digits CNN (stepwise.models.digits_cnn) on scikit-learn's bundled digits, offline: "
        "for each class, a dependency graph from up to --max-images inputs classified correctly with probability "
        ">= --min-probability; the bag-of-nodes clustering of the graphs; a perturbation ranking of the first of "
        "those inputs per class. Writes per class the graph (GraphML, JSON), its layered drawing and the outlier "
        "frequencies of the class neuron; the clustermap; the perturbation table and patches figure; summary.md and summary.json.",
    )
    demo.add_argument(
        "--split",
        choices=("train", "test", "all"),
        default="train",
        help="which images to choose from (the SSA paper chose training images)",
    )
    _add_selection_options(demo)
    _add_levels_option(demo)
    _add_ssa_options(demo)
    _add_perturb_options(demo)
    _add_common_options(demo, "results/demo")
    demo.set_defaults(run=_demo, parser=demo)

    analyse = commands.add_parser(
        "analyse",
        formatter_class=_Formatter,
        help="dependency graphs of your model and data",
        description="Dependency graphs of your classifier, one per class, from the inputs it classifies correctly "
        "with probability >= --min-probability, then their bag-of-nodes clustering. Writes per class the graph "
        "(GraphML, JSON), its layered drawing and the outlier frequencies of the class neuron; the clustermap and "
        "bag-of-nodes table; summary.md and summary.json.",
    )
    _add_model_options(analyse)
    _add_selection_options(analyse)
    _add_ssa_options(analyse)
    _add_common_options(analyse, "results/analyse")
    analyse.set_defaults(run=_analyse, parser=analyse)

    ranks = commands.add_parser(
        "perturb",
        formatter_class=_Formatter,
        help="perturbation neuron rankings of some of your inputs",
        description="Rank every neuron of every level by how it behaves over noisy resamples of one input "
        "(activation-output correlation, activation precision and APPLE's baselines), for the inputs named by "
        "--indices or, by default, the first input of each class classified correctly with probability >= "
        "--min-probability. Writes perturbation.csv (every score and rank), agreement.csv (Jaccard of the "
        "correlation and precision top neurons per level), patches.png, summary.md and summary.json.",
    )
    _add_model_options(ranks)
    ranks.add_argument(
        "--indices",
        type=_non_negative_int,
        nargs="+",
        metavar="I",
        help="positions of the inputs to rank in the data (default: one input per class)",
    )
    ranks.add_argument(
        "--target",
        type=_non_negative_int,
        metavar="C",
        help="the class whose probability is followed, for every input of --indices (default: "
        "each input's label, or its predicted class without labels)",
    )
    _add_selection_options(ranks, max_images=False)
    _add_perturb_options(ranks)
    _add_common_options(ranks, "results/perturb")
    ranks.set_defaults(run=_perturb, parser=ranks)

    levels = commands.add_parser(
        "levels",
        formatter_class=_Formatter,
        help="list a model's candidate levels",
        description="Print every module output that can be a level, bottom to top, with its shape for one "
        "input; the levels stepwise.default_levels proposes are marked with *.",
    )
    _add_model_options(levels, levels=False)
    levels.set_defaults(run=_levels, parser=levels, quiet=True)
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
    progress = _Progress(args.quiet)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            out = args.run(args, progress)
    except _UsageError as error:
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


if __name__ == "__main__":
    sys.exit(main())
