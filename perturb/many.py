"""Rankings of many inputs: :func:`perturb.rank_neurons` on each, in this process or on many workers.

The inputs are independent, so each is one task of the executor (:mod:`stepwise.core.executors`): the model and
the settings are sent to the workers once, each task ranks one input, and the rankings come back in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from stepwise.core.executors import KeyFailures, check_executor, run_per_key
from stepwise.core.hooks import analysis_mode
from stepwise.core.inputs import Batch, KeywordInputs, as_batch
from stepwise.core.validation import check_bool, check_float, check_int, check_option

from ._inputs import analysis_input, resolve_ranked
from .ranking import OUTPUTS, NeuronRanking, rank_neurons

__all__ = ["rank_many"]

_OWNER = "perturb.rank_many"


def _rank_one(job: dict[str, Any], index: int, item: tuple[Batch, int]) -> NeuronRanking:
    """One input's ranking, without the model it was computed on (the caller has it)."""
    image, target = item
    ranking = rank_neurons(job["model"], image, job["levels"], target=target, **job["options"])
    ranking.model = None  # type: ignore[assignment]  # put back by rank_many; not sent back with every ranking
    return ranking


def _check_targets(targets: object, n_inputs: int) -> list[int]:
    if isinstance(targets, Tensor):
        targets = targets.flatten().tolist() if targets.dim() <= 1 else targets
    if isinstance(targets, (str, bytes)) or not isinstance(targets, Sequence):
        raise TypeError(
            f"The 'targets' parameter of {_OWNER} must be a sequence of class indices, one per input. Got "
            f"{type(targets).__name__} instead."
        )
    if len(targets) != n_inputs:
        raise ValueError(f"Found {len(targets)} targets for {n_inputs} inputs: pass one target class per input.")
    return [check_int(t, "targets", _OWNER, low=0) for t in targets]


def rank_many(
    model: nn.Module,
    images: Any,
    targets: Sequence[int] | Tensor,
    *,
    levels: Sequence[str] | None = None,
    input_level: str | None = None,
    executor: object = None,
    n_samples: int = 50,
    sigma: float = 0.1,
    threshold: float = 0.1,
    output: str = "probability",
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = False,
) -> list[NeuronRanking]:
    """Rank the neurons of every level around each of many inputs (:func:`perturb.rank_neurons` on each).

    Ranking ``i`` equals ``rank_neurons(model, images[i], levels, target=targets[i], ...)`` with the same
    options, whether it ran here or on a worker (with the same number of torch threads; see
    :mod:`stepwise.core.executors`).

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning scores of shape (N, C). With an executor, it is pickled once and sent to the
        workers: its class must be importable there.
    images : Tensor of shape (N, ...), or dict of tensors (N, T, ...)
        One input per row; a dict (a tokenizer's output, see :class:`~stepwise.core.inputs.KeywordInputs`) holds
        one sentence per row, each ranked without its padding.
    targets : sequence of int or Tensor of shape (N,)
        The class followed for each input, in [0, C).
    levels : list of str, optional
        As in :func:`perturb.rank_neurons`.
    input_level : str, optional
        For sentences: the module whose output takes the noise, the token embeddings, as in
        :func:`perturb.rank_neurons`.
    executor : None, concurrent.futures.Executor or distributed.Client, optional
        ``None`` ranks the inputs one after the other in this process; an executor runs one task per input.
    n_samples, sigma, threshold, output, batch_size
        As in :func:`perturb.rank_neurons`.
    seed : int, default=0
        Every input's resamples are drawn from a generator seeded with ``seed`` (an int: a generator object cannot
        be shared by tasks that run apart).
    progress : bool, default=False
        A bar over the inputs, moved as each finishes.

    Returns
    -------
    list of NeuronRanking
        One per input, in input order.

    Raises
    ------
    TypeError, ValueError
        Before any resample runs: a bad parameter, an executor that is not one, a target out of range, levels
        the model does not have (checked on the first input).
    KeyFailures
        If the rankings of some inputs failed; the others finished (``.results``).

    Examples
    --------
    >>> import torch, perturb
    >>> net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()
    >>> images = torch.rand(3, 6, generator=torch.Generator().manual_seed(0))
    >>> rankings = perturb.rank_many(net, images, [0, 1, 2], n_samples=20)
    >>> [r.target for r in rankings]
    [0, 1, 2]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"The 'model' parameter of {_OWNER} must be a torch.nn.Module. Got {type(model).__name__}.")
    pool = check_executor(executor, _OWNER)
    images = as_batch(images)
    if not isinstance(images, (Tensor, KeywordInputs)) or images.dim() < 2 or len(images) == 0:
        raise TypeError(
            f"The 'images' parameter of {_OWNER} must be a Tensor of shape (N, ...) holding one input per row, "
            f"N >= 1, or a dict of tensors (N, T). Got {type(images).__name__} of shape "
            f"{tuple(getattr(images, 'shape', ()))} instead."
        )
    chosen = _check_targets(targets, len(images))
    options = {
        "n_samples": check_int(n_samples, "n_samples", _OWNER, low=2),
        "sigma": check_float(sigma, "sigma", _OWNER, low=0.0),
        "threshold": check_float(threshold, "threshold", _OWNER, low=0.0),
        "output": check_option(output, "output", _OWNER, OUTPUTS),
        "seed": check_int(seed, "seed", _OWNER),
        "batch_size": None if batch_size is None else check_int(batch_size, "batch_size", _OWNER, low=1),
    }
    check_bool(progress, "progress", _OWNER)
    first = analysis_input(model, images[0], input_level, _OWNER)
    with analysis_mode(model, owner=_OWNER):
        _, top = resolve_ranked(model, first.probe, levels, first.input_level)
    n_classes = top.shape[0] if len(top.shape) == 1 else 0
    wrong = sorted({t for t in chosen if t >= n_classes})
    if wrong:
        raise ValueError(
            f"The 'targets' parameter of {_OWNER} names {wrong}, but the model scores {n_classes} classes (0 to "
            f"{n_classes - 1}): pass target classes the model scores."
        )
    options["input_level"] = input_level
    job = {"model": model, "levels": None if levels is None else list(levels), "options": options}
    try:
        rankings = run_per_key(
            _rank_one,
            list(range(len(images))),
            lambda i: (images[i], chosen[i]),
            shared=job,
            executor=pool,
            owner=_OWNER,
            noun="input",
            progress=progress,
        )
    except KeyFailures as failures:
        for ranking in failures.results.values():
            ranking.model = model
        raise
    for ranking in rankings.values():
        ranking.model = model
    return list(rankings.values())
