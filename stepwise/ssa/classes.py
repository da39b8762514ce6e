"""A dependency graph per class: the inputs of each class chosen as the SSA paper did, one traversal per class,
in this process or on many workers (:mod:`stepwise.core.executors`), with nothing lost when a run stops.

:func:`class_graphs` chooses each class's inputs with :func:`stepwise.core.selection.select_inputs` (correctly
classified with probability >= ``min_probability``, the first ``max_per_class``), then runs
:meth:`StepwiseSensitivity.dependency_graph` from the class's neuron of the top level for every class.
:func:`graphs_for` runs the traversals of inputs already chosen per class (as the command line chooses them).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from stepwise._version import __version__
from stepwise.core.executors import KeyFailures, ResultFolder, check_executor, check_result_folder, run_per_key
from stepwise.core.hooks import model_device_dtype
from stepwise.core.levels import OUTPUT, SOFTMAX, resolve_levels
from stepwise.core.inputs import KeywordInputs, as_batch
from stepwise.core.selection import select_inputs
from stepwise.core.validation import check_bool, check_float, check_int
from stepwise.graphs.dependency import DependencyGraph
from stepwise.graphs.readwrite import read_json, write_json

from .checkpoint import model_digest, tensor_digest
from .traverse import StepwiseSensitivity

__all__ = ["SSA_OPTIONS", "class_graphs", "graphs_for"]

_OWNER = "class_graphs"
#: The options of StepwiseSensitivity that class_graphs passes on (``progress`` is the class_graphs' own).
SSA_OPTIONS = ("branching", "rule", "fence", "sign", "batch_size", "channel_dim", "closed_form")


@dataclass
class _Job:
    """What every class's task needs: the model, the levels (names) and the options; pickled once."""

    model: nn.Module
    levels: list[str]
    options: dict[str, Any]
    analysis: StepwiseSensitivity | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"model": self.model, "levels": self.levels, "options": self.options, "analysis": None}


def _class_graph(job: _Job, target: int, inputs: Tensor) -> DependencyGraph:
    """One class's traversal; a worker builds the analysis once for all the classes it runs."""
    if job.analysis is None:
        job.analysis = StepwiseSensitivity(job.model, job.levels, **job.options)
    return job.analysis.dependency_graph(inputs, target=target)


def _file_name(target: int) -> str:
    return f"class_{target}.json"


def _check_options(ssa_options: Mapping[str, Any], owner: str) -> dict[str, Any]:
    unknown = sorted(set(ssa_options) - set(SSA_OPTIONS))
    if unknown:
        raise TypeError(
            f"{owner} got unknown options {unknown}: the options passed on to StepwiseSensitivity are "
            f"{list(SSA_OPTIONS)}."
        )
    return dict(ssa_options)


def graphs_for(
    analysis: StepwiseSensitivity,
    per_class: Mapping[int, Tensor],
    *,
    executor: object = None,
    checkpoint_dir: str | PathLike | None = None,
    progress: bool = False,
    on_graph: Callable[[int, DependencyGraph], None] | None = None,
) -> dict[int, DependencyGraph]:
    """One dependency graph per class, from inputs already chosen per class.

    Parameters
    ----------
    analysis : StepwiseSensitivity
        Its model, levels and options serve every class; its levels must be named (not ``None``), so that every
        worker analyses the same ones.
    per_class : mapping of int to Tensor of shape (n_c, ...)
        Each class (the neuron of the top level the traversal starts from) to its inputs, n_c >= 1.
    executor, checkpoint_dir, progress
        As in :func:`class_graphs`.
    on_graph : callable, optional
        Called in this process with each class and its graph as it finishes (after it is written to
        ``checkpoint_dir``), for example to write its files and report progress; not for classes read back from
        ``checkpoint_dir``.

    Returns
    -------
    dict of int to DependencyGraph
        In the order of ``per_class``.

    Raises
    ------
    KeyFailures
        If the traversals of some classes failed; the others finished (``.results``) and, with
        ``checkpoint_dir``, were saved.
    """
    owner = "graphs_for"
    if not isinstance(analysis, StepwiseSensitivity) or analysis.levels is None:
        raise TypeError(f"{owner} needs a StepwiseSensitivity with named levels; got {analysis!r}.")
    pool = check_executor(executor, owner)
    folder_path = check_result_folder(checkpoint_dir, owner)
    check_bool(progress, "progress", owner)
    per_class = {c: as_batch(x) for c, x in per_class.items()}
    for c, x in per_class.items():
        check_int(c, "per_class", owner, low=0)
        if not isinstance(x, (Tensor, KeywordInputs)) or x.dim() < 1 or len(x) == 0:
            raise ValueError(
                f"The inputs of class {c} in the 'per_class' parameter of {owner} must be a Tensor of shape (n, ...) "
                f"with n >= 1. Got {type(x).__name__} of shape {tuple(getattr(x, 'shape', ()))} instead."
            )
    return _graphs(analysis, per_class, pool, folder_path, progress, owner, on_graph)


def _graphs(
    analysis: StepwiseSensitivity,
    per_class: Mapping[int, Tensor],
    pool: Executor | None,
    folder_path: Path | None,
    progress: bool,
    owner: str,
    on_graph: Callable[[int, DependencyGraph], None] | None = None,
) -> dict[int, DependencyGraph]:
    options = {name: getattr(analysis, name) for name in SSA_OPTIONS}
    job = _Job(analysis.model, list(analysis.levels), options, analysis)
    keys = list(per_class)
    found: dict[int, DependencyGraph] = {}
    folder: ResultFolder[int, DependencyGraph] | None = None
    digests: dict[int, Any] = {}
    if folder_path is not None:
        folder = _folder(folder_path, job, owner, create=True)
        digests = {c: {"shape": list(x.shape), "dtype": str(x.dtype), "sha256": tensor_digest(x)} for c, x in
                   per_class.items()}  # fmt: skip
        found, keys = folder.split(keys, digests, "class")

    def save(target: int, graph: DependencyGraph) -> None:
        if folder is not None:
            folder.record(target, digests[target], graph)
        if on_graph is not None:
            on_graph(target, graph)

    try:
        computed = run_per_key(
            _class_graph,
            keys,
            per_class.__getitem__,
            shared=job,
            executor=pool,
            owner=owner,
            noun="class",
            on_result=save,
            progress=progress,
            stacklevel=3,  # the user's call of class_graphs or graphs_for
        )
    except KeyFailures as failures:  # the classes read back from the folder finished too
        done = {**found, **failures.results}
        merged = {c: done[c] for c in per_class if c in done}
        raise KeyFailures(owner, "class", failures.errors, merged) from None
    return {c: found[c] if c in found else computed[c] for c in per_class}


def _folder(path: Path, job: _Job, owner: str, *, create: bool) -> ResultFolder[int, DependencyGraph]:
    """The checkpoint folder of these settings (refused when it holds another analysis's results)."""
    device, _ = model_device_dtype(job.model)
    fingerprint = {
        "version": __version__,
        "settings": {"levels": job.levels, **job.options, "device": device.type},
        "model": {"class": type(job.model).__name__, "sha256": model_digest(job.model)},
    }
    return ResultFolder(path, fingerprint, name=_file_name, write=write_json, read=_read_graph, owner=owner,
                        create=create)  # fmt: skip


def _read_graph(path: Path) -> DependencyGraph:
    graph = read_json(path)
    if not isinstance(graph, DependencyGraph):
        raise ValueError(f"{path} holds a graph of kind {getattr(graph, 'kind', '?')!r}, not a dependency graph")
    return graph


def class_graphs(
    model: nn.Module,
    inputs: Tensor | Mapping[str, Tensor],
    labels: Tensor | None = None,
    *,
    classes: int | Sequence[int] | None = None,
    levels: Sequence[str] | None = None,
    min_probability: float = 0.99,
    max_per_class: int = 100,
    executor: object = None,
    checkpoint_dir: str | PathLike | None = None,
    progress: bool = False,
    **ssa_options: Any,
) -> dict[int, DependencyGraph]:
    """A dependency graph per class, each from the inputs the model classifies correctly and confidently.

    For every class c, the inputs of c (by label, or without labels by prediction) that the model predicts as c
    with a softmax probability of at least ``min_probability``, the first ``max_per_class`` of them
    (:func:`stepwise.select_inputs`), are traversed from neuron c of the top level down
    (:meth:`StepwiseSensitivity.dependency_graph`). The classes run one after the other in this process, or as
    tasks of ``executor``; the graphs are the same either way (see :mod:`stepwise.core.executors` on threads).

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning class scores of shape (N, C), C >= 2. With an executor, it is pickled once and
        sent to the workers: its class must be importable there.
    inputs : Tensor of shape (N, ...), or dict of str to Tensor
        A dict (a tokenizer's output) as for :meth:`StepwiseSensitivity.dependency_graph`.
    labels : Tensor of shape (N,), optional
        Integer class indices in [0, C).
    classes : int or sequence of int, optional
        The classes to explain; by default every class present in the labels (without labels: predicted).
    levels : list of str, optional
        Level names bottom to top, ending with ``'softmax'`` or ``'output'``; by default
        :func:`stepwise.default_levels`.
    min_probability : float in [0, 1], default=0.99
    max_per_class : int >= 1, default=100
    executor : None, concurrent.futures.Executor or distributed.Client, optional
        ``None`` runs in this process; a ``ProcessPoolExecutor``, a Dask client or its ``get_executor()`` runs one
        task per class (:mod:`stepwise.core.executors`).
    checkpoint_dir : str or path-like, optional
        A folder (created if missing) that keeps each class's graph (``class_{c}.json``) as it finishes, written
        atomically, with a manifest of the settings; a rerun returns the graphs already there without computing
        them, and refuses a folder made with other settings, another model or other inputs of a class.
    progress : bool, default=False
        A bar over the classes, moved as each finishes.
    **ssa_options
        ``branching``, ``rule``, ``fence``, ``sign``, ``batch_size``, ``channel_dim``, ``closed_form``: as in
        :class:`StepwiseSensitivity`.

    Returns
    -------
    dict of int to DependencyGraph
        For each class that has qualifying inputs, ascending. A class without any is left out, with a warning
        that names it.

    Raises
    ------
    TypeError, ValueError
        Before any traversal: a bad argument or option, an executor that is not one, a checkpoint folder that is
        a file, levels that do not end at the class scores, classes the model does not score, no class with a
        qualifying input, a checkpoint folder of another analysis.
    KeyFailures
        If the traversals of some classes failed; the others finished (``.results``) and, with
        ``checkpoint_dir``, were saved.

    Examples
    --------
    >>> import stepwise
    >>> from stepwise.models import digits_cnn, digits_data
    >>> data = digits_data()
    >>> graphs = stepwise.class_graphs(digits_cnn(), data.images[:200], data.labels[:200], classes=[0, 1])
    >>> sorted(graphs), graphs[0].target
    ([0, 1], 0)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"The 'model' parameter of {_OWNER} must be a torch.nn.Module. Got {type(model).__name__} instead."
        )
    pool = check_executor(executor, _OWNER)
    folder = check_result_folder(checkpoint_dir, _OWNER)
    check_bool(progress, "progress", _OWNER)
    min_probability = check_float(min_probability, "min_probability", _OWNER, low=0.0, high=1.0)
    max_per_class = check_int(max_per_class, "max_per_class", _OWNER, low=1)
    options = _check_options(ssa_options, _OWNER)
    analysis = StepwiseSensitivity(model, levels, **options)  # checks the options
    inputs = as_batch(inputs)
    if not isinstance(inputs, (Tensor, KeywordInputs)) or inputs.dim() < 1 or len(inputs) == 0:
        raise TypeError(
            f"The 'inputs' parameter of {_OWNER} must be a Tensor of shape (N, ...) or a dict of tensors, with N >= 1. Got "
            f"{type(inputs).__name__} instead."
        )
    device, dtype = model_device_dtype(model)
    if inputs.is_floating_point() and dtype is not None and inputs.dtype != dtype:
        raise TypeError(
            f"inputs are {inputs.dtype} but the model computes in {dtype}: convert one of them, for example "
            f"inputs.to({dtype}) or model.to({inputs.dtype})."
        )
    infos = resolve_levels(model, inputs[:2].to(device), levels, channel_dim=analysis.channel_dim, steps=True)
    top = infos[-1]
    if top.name not in (SOFTMAX, OUTPUT):
        raise ValueError(
            f"{_OWNER} starts each traversal at the class's neuron of the top level, which must be the class "
            f"scores ('softmax' or 'output'); the levels end at {top.name!r}. Add 'softmax' on top, or pass "
            "levels=None for the default levels."
        )
    wanted = _check_classes(classes, top.n_neurons)
    analysis.levels = [info.name for info in infos]
    if folder is not None:  # another analysis's folder is refused before the selection's passes
        options = {name: getattr(analysis, name) for name in SSA_OPTIONS}
        _folder(folder, _Job(model, analysis.levels, options), _OWNER, create=False)
    chosen = select_inputs(model, inputs, labels, classes=wanted, min_probability=min_probability,
                           max_per_class=max_per_class, batch_size=analysis.batch_size)  # fmt: skip
    empty = [c for c, index in chosen.items() if len(index) == 0]
    if len(empty) == len(chosen):
        raise ValueError(
            f"No input qualifies for any of the classes {empty}: none is classified as its class with probability "
            f">= {min_probability}. Pass more inputs of these classes, or a lower min_probability."
        )
    for c in empty:
        warnings.warn(
            f"{_OWNER}: class {c} has no input that the model classifies as {c} with probability >= "
            f"{min_probability}; it gets no graph, the other classes do. Pass more inputs of class {c}, or a "
            "lower min_probability.",
            UserWarning,
            stacklevel=2,
        )
    per_class = {c: inputs[index] for c, index in chosen.items() if len(index)}
    return _graphs(analysis, per_class, pool, folder, progress, _OWNER)


def _check_classes(classes: object, n_classes: int) -> list[int] | None:
    """The classes asked for, checked against the number the model scores, before the selection's passes."""
    if classes is None:
        return None
    listed = [classes] if isinstance(classes, int) and not isinstance(classes, bool) else classes
    if isinstance(listed, Tensor):
        listed = listed.flatten().tolist()
    if not isinstance(listed, Sequence) or isinstance(listed, str) or not listed:
        raise TypeError(
            f"The 'classes' parameter of {_OWNER} must be a class index or a non-empty sequence of them. Got "
            f"{classes!r} instead."
        )
    checked = sorted({check_int(c, "classes", _OWNER, low=0) for c in listed})
    wrong = [c for c in checked if c >= n_classes]
    if wrong:
        raise ValueError(
            f"The 'classes' parameter of {_OWNER} names {wrong}, but the model scores {n_classes} classes (0 to "
            f"{n_classes - 1}): pass classes the model scores."
        )
    return checked
