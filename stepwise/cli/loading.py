"""Loading what a command analyses: the model (a factory, or a ``.pt2`` file of ``torch.export``), its weights,
the data (a tensor file or an image folder), and the checks of each against the others, all before the long work.

Every problem is a :class:`~stepwise.cli.options.UsageError` that names the argument and says how to fix it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from stepwise.cli.options import DTYPES, UsageError
from stepwise.core.hooks import run_model
from stepwise.core.inputs import Batch, KeywordInputs
from stepwise.core.levels import default_levels, resolve_levels
from stepwise.core.validation import unknown_name_message

__all__ = [
    "Data",
    "Setup",
    "check_checkpoint_folder",
    "check_levels",
    "command_line",
    "load_classifier",
    "load_data",
    "load_model",
    "load_model_file",
    "load_setup",
    "load_weights",
    "output_folder",
    "probe",
    "version_mismatch_hint",
]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}


def _article(noun: str) -> str:
    """``noun`` with its indefinite article: 'an int', 'a tuple'."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def version_mismatch_hint(error: BaseException) -> str:
    """What an error raised while importing or building a model means, when it is the known sign of a torchvision
    built for another torch (its C++ operators fail to register); ``""`` for any other error."""
    text = str(error)
    if "torchvision::" not in text or "does not exist" not in text:
        return ""
    return (
        f" This means the installed torchvision was built for another torch than the installed torch "
        f"{torch.__version__} (for instance a CUDA build of torchvision beside a CPU build of torch), so its "
        "operators cannot register. Install torch and torchvision as a matching pair from the same index, e.g. "
        "pip install torch==2.14.1 torchvision==0.29.1 (each torchvision release names the torch it needs; for a "
        "CPU or CUDA build, pass the same --index-url to both, e.g. https://download.pytorch.org/whl/cpu)."
    )


@dataclass
class Data:
    """Inputs as the model reads them (a tensor, or keyword inputs of token ids), their labels (``None``: use the
    model's predictions), class names."""

    inputs: Batch
    labels: Tensor | None
    names: dict[int, str] = field(default_factory=dict)
    source: str = ""

    def name(self, c: int) -> str:
        return self.names.get(c, str(c))


def load_model(spec: str) -> tuple[nn.Module, str]:
    """The model named by ``--model``: ``package.module:factory``, or a ``.pt2`` file of ``torch.export``."""
    path = Path(spec)
    if ":" in spec and not path.exists():
        module_name, _, factory_name = spec.rpartition(":")
        if not module_name or not factory_name:
            raise UsageError(f"--model {spec!r}: write package.module:factory, for example stepwise.models:digits_cnn.")
        if os.getcwd() not in sys.path:  # a module next to the user, as 'python -m' would find it
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise UsageError(
                f"--model {spec!r}: cannot import module {module_name!r} ({type(error).__name__}: {error})."
                + (
                    version_mismatch_hint(error)
                    or " Check the spelling, and run the command from the folder that holds the module or install "
                    "its package."
                )
            ) from error
        except Exception as error:  # the module itself failed while it was imported: say so, with its message
            raise UsageError(
                f"--model {spec!r}: importing module {module_name!r} raised {type(error).__name__}: {error}."
                + (
                    version_mismatch_hint(error)
                    or " Fix the error in the module (run 'python -c \"import "
                    f"{module_name}\"' to see where it arises)."
                )
            ) from error
        factory = getattr(module, factory_name, None)
        if factory is None:
            callables = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
            raise UsageError(
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
            raise UsageError(
                f"--model {spec!r}: {factory_name!r} is {_article(type(factory).__name__)}, not a callable that returns "
                "the model."
            )
        try:
            model = factory()
        except Exception as error:  # the user's factory failed: say so, with its message
            raise UsageError(
                f"--model {spec!r}: calling {factory_name}() raised {type(error).__name__}: {error}."
                + (version_mismatch_hint(error) or " The factory must build the model without arguments.")
            ) from error
        if not isinstance(model, nn.Module):
            raise UsageError(
                f"--model {spec!r}: {factory_name}() returned a {type(model).__name__}; it must return a "
                "torch.nn.Module."
            )
        return model, spec
    if not path.is_file():
        raise UsageError(
            f"--model {spec!r}: no such file. Pass package.module:factory (a callable returning the model, e.g. "
            "stepwise.models:digits_cnn) or a .pt2 file written by torch.export.save."
        )
    return load_model_file(path), path.name


def load_model_file(path: Path) -> nn.Module:
    """A model file: a ``.pt2`` program of ``torch.export``; anything else is refused with what is accepted."""
    if path.suffix == ".pt2":
        with warnings.catch_warnings():  # torch's own deprecation notices, nothing the user can act on
            warnings.simplefilter("ignore", FutureWarning)
            try:
                program = torch.export.load(path)
            except Exception as error:  # any failure to read the archive is the file's fault
                raise UsageError(
                    f"--model {path}: cannot load it as a torch.export program ({type(error).__name__}: {error})."
                ) from error
            return torch.export.unflatten(program)
    try:
        torch.jit.load(path, map_location="cpu")
    except (RuntimeError, ValueError, OSError):  # not TorchScript either: say what is accepted
        raise UsageError(
            f"--model {path}: not a model file stepwise reads. Pass package.module:factory, or a .pt2 file written "
            "by torch.export.save. (Pickled models are not loaded: they can run arbitrary code; save "
            "model.state_dict() and pass it with --weights.)"
        ) from None
    raise UsageError(
        f"--model {path} is a TorchScript module, which cannot be analysed: stepwise reads levels with forward "
        "hooks, and TorchScript modules do not run hooks. Pass package.module:factory (the Python model, with "
        "--weights for its state dict), or export the model with torch.export.export and torch.export.save to a "
        ".pt2 file."
    )


def load_weights(model: nn.Module, path: Path) -> None:
    """Load the state dict in ``path`` (``--weights``) into ``model``, read with ``weights_only=True``."""
    if not path.is_file():
        raise UsageError(f"--weights {path}: no such file.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling refused or a corrupt file
        raise UsageError(
            f"--weights {path}: cannot be loaded with torch.load(weights_only=True) ({type(error).__name__}: "
            f"{str(error).splitlines()[0]}). Save the state dict, torch.save(model.state_dict(), path), not the "
            "model."
        ) from error
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UsageError(
            f"--weights {path} holds a {type(state).__name__}, not a state dict (names to tensors). Save it with "
            "torch.save(model.state_dict(), path)."
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        details = " ".join(line.strip() for line in str(error).splitlines()[1:4])
        raise UsageError(
            f"--weights {path} does not match the architecture of {type(model).__name__}: {details} Pass the "
            "weights saved from this architecture."
        ) from error


def load_data(args: argparse.Namespace) -> Data:
    """The inputs of ``--data`` (a tensor file or an image folder), checked: finite floats, one label per input."""
    path: Path = args.data
    if path.is_dir():
        return _load_image_folder(path, args.image_size, args.channels, args.mean, args.std)
    if not path.is_file():
        raise UsageError(
            f"--data {path}: no such file or folder. Pass a .pt file holding a tensor or an (inputs, labels) pair, "
            "or an image folder with one sub-folder per class."
        )
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a torch file, or one that needs unpickling of code
        raise UsageError(
            f"--data {path}: cannot be loaded with torch.load(weights_only=True) ({type(error).__name__}). Save a "
            "tensor or an (inputs, labels) pair of tensors with torch.save."
        ) from error
    if isinstance(loaded, (Tensor, Mapping)):
        inputs, labels = loaded, None
    elif (isinstance(loaded, (tuple, list)) and len(loaded) == 2 and isinstance(loaded[0], (Tensor, Mapping))
          and isinstance(loaded[1], Tensor)):  # fmt: skip
        inputs, labels = loaded
    else:
        raise UsageError(
            f"--data {path} holds a {type(loaded).__name__}; expected a tensor of inputs (N, ...), a dict of tensors "
            "(token ids, as a tokenizer returns them) or an (inputs, labels) pair."
        )
    if isinstance(inputs, Mapping):
        try:
            inputs = KeywordInputs(inputs)
        except (TypeError, ValueError) as error:
            raise UsageError(f"--data {path}: {error}") from error
    else:
        _check_tensor_inputs(inputs, path)
    if labels is not None:
        if labels.dim() != 1 or labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise UsageError(
                f"--data {path}: labels must be one integer class index per input (shape (N,)); got "
                f"{labels.dtype} of shape {tuple(labels.shape)}."
            )
        if len(labels) != len(inputs):
            raise UsageError(
                f"--data {path}: found {len(labels)} labels for {len(inputs)} inputs: pass one label per input."
            )
        labels = labels.to(torch.int64)
    return Data(inputs, labels, source=str(path))


def _check_tensor_inputs(inputs: Tensor, path: Path) -> None:
    """Raise a usage error unless ``inputs`` are a batch of finite floats."""
    if inputs.dim() < 2 or len(inputs) == 0:
        raise UsageError(
            f"--data {path}: inputs of shape {tuple(inputs.shape)}; expected a batch (N, ...) with N >= 1."
        )
    if not inputs.is_floating_point():
        raise UsageError(
            f"--data {path}: inputs are {inputs.dtype}; save floating-point inputs, scaled as the model expects."
        )
    finite = torch.isfinite(inputs.flatten(1)).all(dim=1)
    if not finite.all():
        bad = (~finite).nonzero().flatten().tolist()
        raise UsageError(
            f"--data {path}: {len(bad)} of the {len(inputs)} inputs hold NaN or Inf values (positions "
            f"{', '.join(map(str, bad[:5]))}{', ...' if len(bad) > 5 else ''}); remove or replace them."
        )


def _load_image_folder(
    folder: Path,
    size: Sequence[int] | None,
    channels: int,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> Data:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if size is None:
        raise UsageError(f"--data {folder} is an image folder: give --image-size (one side, or height width).")
    height, width = (size[0], size[0]) if len(size) == 1 else size
    for name, values in (("--mean", mean), ("--std", std)):
        if values is not None and len(values) not in (1, channels):
            raise UsageError(f"{name} takes 1 or {channels} numbers (one per channel); got {len(values)}.")
    if std is not None and any(v <= 0 for v in std):
        raise UsageError(f"--std must be positive; got {list(std)}.")
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UsageError(
            f"--data {folder}: no sub-folders. An image folder holds one sub-folder per class (named by the class "
            "index, e.g. 0/ 1/ ..., or by class name, indexed in sorted order)."
        )
    numeric = all(p.name.isdigit() for p in classes)
    ordered = sorted(classes, key=lambda p: int(p.name)) if numeric else classes
    images, labels, names = [], [], {}
    for position, sub in enumerate(ordered):
        label = int(sub.name) if numeric else position
        names[label] = sub.name
        files = sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for file in files:
            try:
                with Image.open(file) as image:
                    converted = image.convert("L" if channels == 1 else "RGB").resize(
                        (width, height), Image.Resampling.BILINEAR
                    )
            except (UnidentifiedImageError, OSError) as error:
                raise UsageError(f"--data: cannot read the image {file} ({error}).") from error
            array = np.asarray(converted, dtype=np.float32) / 255.0
            images.append(torch.from_numpy(array.reshape(height, width, channels)).permute(2, 0, 1))
            labels.append(label)
    if not images:
        raise UsageError(
            f"--data {folder}: no images in its class folders (looked for {', '.join(sorted(IMAGE_SUFFIXES))})."
        )
    inputs = torch.stack(images)
    if mean is not None:
        inputs = inputs - torch.tensor(mean, dtype=inputs.dtype).view(1, -1, 1, 1)
    if std is not None:
        inputs = inputs / torch.tensor(std, dtype=inputs.dtype).view(1, -1, 1, 1)
    return Data(inputs, torch.tensor(labels, dtype=torch.int64), names if not numeric else {}, str(folder))


@dataclass
class Setup:
    """A model and data checked against each other: what every analysing subcommand starts from."""

    model: nn.Module
    model_name: str
    data: Data
    n_classes: int
    levels: list[str]
    command: str


def probe(model: nn.Module, data: Data) -> int:
    """Run the model on two inputs; return the number of classes or raise a usage error."""
    example = data.inputs[:2]
    try:
        with torch.no_grad():
            output = run_model(model, example)
    except Exception as error:  # the user's model rejected the user's inputs
        if isinstance(example, KeywordInputs):
            raise UsageError(
                f"--data holds a dict, which is passed to the model as keyword arguments, model(**data), but the "
                f"model rejects the keys {sorted(example.tensors)}. Save a dict whose keys "
                "are the arguments of the model's forward (a tokenizer's input_ids, attention_mask, ...), or a "
                "tensor for a model that takes one."
            ) from error
        raise UsageError(
            f"--data: the model rejects inputs of shape {tuple(example.shape[1:])} ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}). Pass inputs shaped as the model expects, batch "
            "dimension first (for an image folder: --image-size and --channels)."
        ) from error
    if not (isinstance(output, Tensor) and output.dim() == 2 and output.shape[1] >= 2):
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise UsageError(
            f"--model: the model returns {shape} on a batch of 2; the stepwise command explains classifiers, whose "
            "output is class scores of shape (N, C) with C >= 2. Use the Python API for other models."
        )
    n_classes = int(output.shape[1])
    if data.labels is not None and (data.labels.min() < 0 or data.labels.max() >= n_classes):
        raise UsageError(
            f"--data: labels run from {int(data.labels.min())} to {int(data.labels.max())}, but the model scores "
            f"{n_classes} classes (0 to {n_classes - 1}): check that the labels match the model's classes."
        )
    return n_classes


def check_levels(model: nn.Module, example: Batch, levels: Sequence[str] | None, spec: str) -> list[str]:
    """The levels given, or the default ones, resolved on ``example`` (two inputs)."""
    chosen = list(levels) if levels else default_levels(model, example)
    hint = f" Run 'stepwise levels --model {spec} --data ...' to list them."
    if len(chosen) < 2 and not levels:
        raise UsageError(
            f"--levels: stepwise.default_levels finds {chosen} in this model (it recognises Conv/Linear layers and "
            f"their activations), fewer than the two levels a step needs: name the levels with --levels.{hint}"
        )
    try:
        resolve_levels(model, example, chosen)
    except (ValueError, TypeError) as error:
        raise UsageError(f"--levels: {error}{hint}") from error
    return chosen


def load_setup(args: argparse.Namespace) -> Setup:
    """Load and check the model, its weights, the data and the levels (``analyse``, ``perturb``)."""
    model, name, data = load_classifier(args, DTYPES[args.dtype])
    n_classes = probe(model, data)
    levels = check_levels(model, data.inputs[:2], args.levels, args.model)
    return Setup(model, name, data, n_classes, levels, command_line(args))


def load_classifier(args: argparse.Namespace, dtype: torch.dtype) -> tuple[nn.Module, str, Data]:
    """The model of ``--model`` with its ``--weights``, in eval mode, and the data of ``--data``, both in
    ``dtype`` (token ids stay integers)."""
    model, name = load_model(args.model)
    if args.weights is not None:
        load_weights(model, args.weights)
    model = model.to(dtype).eval()
    data = load_data(args)
    if isinstance(data.inputs, Tensor):
        data.inputs = data.inputs.to(dtype)
    return model, name, data


def command_line(args: argparse.Namespace) -> str:
    """The command as the user typed it, for the summary."""
    return "stepwise " + " ".join(args.argv)


def output_folder(path: Path) -> Path:
    """``--out``, refused if it names a file."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path} is a file; name a folder (it is created if needed).")
    return path


def check_checkpoint_folder(path: Path | None) -> None:
    """``--checkpoint``, refused if it names a file."""
    if path is not None and path.exists() and not path.is_dir():
        raise UsageError(
            f"--checkpoint {path} is a file; name a folder (it is created if needed and holds one checkpoint file "
            "per class)."
        )
