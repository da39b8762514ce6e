"""Checkpoints of a traversal: a JSON file that records each finished step, so that an interrupted run resumes.

:meth:`stepwise.StepwiseSensitivity.dependency_graph` with ``checkpoint=PATH`` rewrites the file atomically
(:func:`stepwise.readwrite.atomic_write`) after every step. The file holds::

    {"format": "stepwise-checkpoint", "format_version": 1,
     "fingerprint": {"version": ..., "settings": {...}, "model": {...}, "inputs": {...}},
     "complete": false,
     "steps": [{"position": ..., "step": "lower <- upper", "edges": [[parent, child, count, mean ω], ...],
                "next": [...]}, ...]}

A step records the edges it found, in the order the graph received them, and the neuron set the traversal
continues from (``next``); a step without edges is where the traversal stopped, so a resumed run rebuilds the
graph's ``stopped_at`` and ``stop_reason`` and issues the same warning. ``complete`` is true once the traversal
has ended; the file is then kept, and a rerun returns the graph without computing anything.

The fingerprint names what produced the steps: the library version, the analysis settings, a SHA-256 of the
model's parameters and buffers and one of the inputs. A rerun whose fingerprint differs is refused, never mixed
in. Nothing in the file is executable: it is plain JSON, read with :func:`json.loads`.
"""

from __future__ import annotations

import hashlib
import json
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from stepwise.core.inputs import KeywordInputs
from stepwise.core.io import atomic_write

__all__ = ["Checkpoint", "checkpoint_path", "model_digest", "tensor_digest"]

FORMAT = "stepwise-checkpoint"
FORMAT_VERSION = 1
_FIX = "Delete the file to start afresh, or pass another checkpoint path."
_PARTS = {
    "version": "another stepwise version",
    "settings": "other settings",
    "model": "another model (its parameters or buffers differ)",
    "inputs": "other inputs",
}


def _update(hasher: Any, name: str, tensor: Tensor) -> None:
    """Feed a tensor's name, dtype, shape and bytes (in C order, on the CPU) to ``hasher``."""
    hasher.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    hasher.update(flat.view(torch.uint8).numpy() if flat.numel() else b"")


def tensor_digest(tensor: Tensor | KeywordInputs) -> str:
    """SHA-256 (hex) of a tensor's dtype, shape and values, or of every tensor of keyword inputs with its key.

    Parameters
    ----------
    tensor : Tensor or KeywordInputs

    Returns
    -------
    str
    """
    hasher = hashlib.sha256()
    if isinstance(tensor, KeywordInputs):
        for key in sorted(tensor.tensors):
            _update(hasher, key, tensor.tensors[key])
        if tensor.mask is not None:
            _update(hasher, "token mask", tensor.mask)
    else:
        _update(hasher, "", tensor)
    return hasher.hexdigest()


def model_digest(model: nn.Module) -> str:
    """SHA-256 (hex) of a model's parameters and buffers: names, dtypes, shapes and values, sorted by name.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    str
    """
    hasher = hashlib.sha256()
    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    for name in sorted(tensors):
        _update(hasher, name, tensors[name])
    return hasher.hexdigest()


def checkpoint_path(value: object, owner: str) -> Path:
    """``value`` as the path of a checkpoint file, or a clear error before any computation.

    Parameters
    ----------
    value : object
        What the user passed as ``checkpoint``.
    owner : str
        The function that takes it, named in the error message.

    Returns
    -------
    Path

    Raises
    ------
    TypeError
        If ``value`` is not a str or path-like.
    ValueError
        If it names a folder or something else than a regular file.
    FileNotFoundError
        If its folder does not exist.
    """
    if not isinstance(value, (str, PathLike)):
        raise TypeError(
            f"The 'checkpoint' parameter of {owner} must be a str or os.PathLike (a file path) or None. Got "
            f"{value!r} instead."
        )
    path = Path(value)
    if path.is_dir():
        raise ValueError(
            f"The checkpoint {path} is a folder: name a file inside it, for example {path / 'checkpoint.json'}."
        )
    if path.exists() and not path.is_file():
        raise ValueError(f"The checkpoint {path} exists but is not a regular file: name a file.")
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"Cannot write the checkpoint {path}: the folder {path.parent} does not exist. Create it first, for "
            "example with Path(folder).mkdir(parents=True)."
        )
    return path


def _differences(stored: dict, current: dict) -> list[str]:
    """One line per part of the fingerprint that differs: what, then the stored and the current value."""
    lines = []
    for part, words in _PARTS.items():
        old, new = stored.get(part), current[part]
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            keys = [k for k in {**old, **new} if old.get(k) != new.get(k)]
            detail = "; ".join(f"{k}: {_shown(old.get(k))} in the checkpoint, {_shown(new.get(k))} now" for k in keys)
        else:
            detail = f"{_shown(old)} in the checkpoint, {_shown(new)} now"
        lines.append(f"{words} ({detail})")
    return lines


def _shown(value: object) -> str:
    """``repr(value)``, with a SHA-256 digest cut to its first 12 digits."""
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return repr(value[:12] + "...")
    return repr(value)


class Checkpoint:
    """The checkpoint file of one traversal: its fingerprint, the finished steps, whether it is complete.

    Parameters
    ----------
    path : Path
        Checked with :func:`checkpoint_path`.
    fingerprint : dict
        JSON-serialisable, with the keys ``version``, ``settings``, ``model`` and ``inputs``.

    Notes
    -----
    Opening reads an existing file and refuses it with a ``ValueError`` when it is not a checkpoint or its
    fingerprint differs; a new checkpoint is written at once (empty), so that a folder that cannot be written to
    fails before the long work.
    """

    def __init__(self, path: Path, fingerprint: dict[str, Any]) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.steps: list[dict[str, Any]] = []
        self.complete = False
        if path.exists():
            self._read()
        else:
            try:
                self._write()
            except OSError as error:
                raise OSError(
                    f"Cannot write the checkpoint {path} ({type(error).__name__}: {error}). Choose a path in a "
                    "folder you can write to."
                ) from error

    def corrupt(self, detail: str) -> ValueError:
        """The error for a file that is not a valid checkpoint, ``detail`` saying why."""
        return ValueError(
            f"Cannot resume from the checkpoint {self.path}: it is not a valid stepwise checkpoint ({detail}); "
            f"the file may be damaged, or it is another file. {_FIX}"
        )

    def _read(self) -> None:
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError, RecursionError) as error:  # ValueError: bad UTF-8 or JSON, huge numbers
            raise self.corrupt(f"{type(error).__name__}: {error}") from error
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise self.corrupt(f"no 'format': {FORMAT!r} entry")
        if data.get("format_version") != FORMAT_VERSION:
            raise self.corrupt(f"format_version {data.get('format_version')!r}, expected {FORMAT_VERSION}")
        stored, steps, complete = data.get("fingerprint"), data.get("steps"), data.get("complete")
        if not isinstance(stored, dict) or not isinstance(steps, list) or not isinstance(complete, bool):
            raise self.corrupt("'fingerprint' must be an object, 'steps' a list and 'complete' a boolean")
        if not all(isinstance(step, dict) for step in steps):
            raise self.corrupt("every entry of 'steps' must be an object")
        # The current fingerprint as JSON reads it back (tuples as lists), so that equal settings compare equal.
        current = json.loads(json.dumps(self.fingerprint))
        differences = _differences(stored, current)
        if differences:
            raise ValueError(
                f"Cannot resume from the checkpoint {self.path}: it was made with {'; and with '.join(differences)}. "
                f"A checkpoint resumes only the same analysis (model, inputs, settings, stepwise version). {_FIX}"
            )
        self.steps, self.complete = steps, complete

    def _write(self) -> None:
        data = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "complete": self.complete,
            "steps": self.steps,
        }
        text = json.dumps(data, indent=1, allow_nan=False)
        atomic_write(self.path, lambda stream: stream.write(text.encode("utf-8")))

    def record(self, step: dict[str, Any], *, complete: bool) -> None:
        """Append a finished step and rewrite the file atomically; ``complete`` when the traversal ends with it."""
        self.steps.append(step)
        self.complete = complete
        self._write()

    def finish(self) -> None:
        """Mark the checkpoint complete (a traversal that had no step to take)."""
        if not self.complete:
            self.complete = True
            self._write()
