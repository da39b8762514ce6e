"""Neuron rankings from noisy resamples of one input (the input-resampling paper, section 4).

For one input, ``n_samples`` resamples ``image * (1 + eps)``, eps ~ N(0, sigma^2) per element, run through the
model in one batched pass (streamed in batches) with every level captured at once by
:func:`stepwise.levels.capture`. Only sufficient statistics are kept between batches, in float64: per level and
position the sums of the activation, of its square and of its product with the output o, each shifted by the
first resample's value (which keeps the sums well conditioned); see :mod:`perturb._statistics`.

Conventions
-----------
- Every variance is the population variance (divide by the count, numpy's default ``ddof=0``): across the
  resamples for ``precision``, over a neuron's activation map for ``activation_variance`` and over its weights
  for ``weight_variance``.
- A value does not vary across the resamples when its variance is within the rounding noise of its magnitude
  (a bound from the dtype's epsilon, the values' mean square and the number of resamples; see
  :mod:`perturb._statistics`), never by bitwise equality: the rows of one batch may round differently.
- Larger is better for every metric. Ties keep the smaller neuron index first; a NaN score (``precision`` below
  the threshold) ranks after every number.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from stepwise.core.capture import capture
from stepwise.core.hooks import analysis_mode
from stepwise.core.inputs import Batch, make_generator, single_input
from stepwise.core.levels import OUTPUT, LevelInfo
from stepwise.core.typing import Seed
from stepwise.core.validation import check_bool, check_float, check_int, check_option, unknown_name_message

from ._inputs import analysis_input, batches, check_samples, noisy_batches, resolve_ranked
from ._statistics import Sums, finish, flat, output_moments, row_sum_and_variance, target_output
from ._weights import Feeding, feeding_modules, neuron_weights

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["METRICS", "OUTPUTS", "NeuronRanking", "rank_neurons", "resample"]

#: The metrics every ranking holds, in table order.
METRICS = (
    "correlation",
    "precision",
    "activation_sum",
    "activation_variance",
    "weight_sum",
    "weight_variance",
)
#: What o, the output followed across resamples, can be.
OUTPUTS = ("probability", "logit")
_WEIGHT_METRICS = ("weight_sum", "weight_variance")
_OWNER = "perturb.rank_neurons"
#: Bytes of captured activations held at once: the statistics are updated once per group of this size.
_GROUP_BYTES = 1 << 30
#: Largest captured activation of one batch that the automatic batch size aims at. Larger blocks are mapped
#: afresh from the operating system at each allocation (glibc's largest recycled block is 32 MiB), and the
#: page faults then cost more than bigger batches save.
_ALLOCATION_BYTES = 32 << 20


class NeuronRanking:
    """Scores of every neuron of every level under six metrics, for one input; returned by :func:`rank_neurons`.

    Attributes
    ----------
    levels : list of str
        The ranked levels, bottom to top.
    shapes : dict of str to tuple of int
        Each level's activation shape for one input, without the batch dimension (neurons first).
    target : int
        The class whose output o was followed.
    output : {'probability', 'logit'}
        What o was: the target's softmax probability or its logit.
    n_samples : int
        Number of resamples.
    sigma : float or None
        Standard deviation of the multiplicative noise; ``None`` when the resamples were given (``samples=``).
    seed : int, torch.Generator, numpy.random.Generator or None
        The seed as given; ``None`` when the resamples were given.
    threshold : float
        The mean activation a neuron needs for a ``precision`` score.
    batch_size : int
        Resamples per forward pass.
    model : torch.nn.Module
        The model analysed (a reference, used by :func:`perturb.plot_patches`).
    image : Tensor of shape (1, ...)
        The clean input, as a batch of one.
    outputs : Tensor of shape (n_samples,), float64
        o on each resample.
    clean_output : float
        o on the clean input.
    weight_modules : dict of str to str or None
        The Conv/Linear module that produces each level's neurons, ``None`` where there is no single one.
    """

    def __init__(
        self,
        *,
        levels: Sequence[str],
        shapes: dict[str, tuple[int, ...]],
        scores: dict[str, dict[str, Tensor]],
        target: int,
        output: str,
        n_samples: int,
        sigma: float | None,
        seed: Seed,
        threshold: float,
        batch_size: int,
        model: nn.Module,
        image: Tensor,
        outputs: Tensor,
        clean_output: float,
        feeding: dict[str, Feeding],
    ) -> None:
        self.levels = list(levels)
        self.shapes = dict(shapes)
        self.target = target
        self.output = output
        self.n_samples = n_samples
        self.sigma = sigma
        self.seed = seed
        self.threshold = threshold
        self.batch_size = batch_size
        self.model = model
        self.image = image
        self.outputs = outputs
        self.clean_output = clean_output
        self.weight_modules = {name: feeding[name].module for name in self.levels}
        self._scores = scores
        self._feeding = feeding

    def __repr__(self) -> str:
        neurons = sum(len(self._scores["correlation"][name]) for name in self.levels)
        return (
            f"NeuronRanking(model={type(self.model).__name__}, target={self.target}, output={self.output!r}, "
            f"levels={len(self.levels)}, neurons={neurons}, n_samples={self.n_samples})"
        )

    def _check_metric(self, metric: object, owner: str) -> str:
        return check_option(metric, "metric", owner, METRICS)

    def _check_level(self, level: object) -> str:
        if not isinstance(level, str) or level not in self.levels:
            raise ValueError(
                unknown_name_message("level", str(level), "this ranking", self.levels, f"Ranked levels: {self.levels}.")
            )
        return level

    def _check_defined(self, metric: str, level: str) -> None:
        if metric in _WEIGHT_METRICS and self._feeding[level].module is None:
            raise ValueError(
                f"{metric!r} is undefined for level {level!r}: {self._feeding[level].reason}. Use an activation "
                "metric there, or rank levels that directly follow one Conv/Linear layer (for example the ReLU "
                "after it)."
            )

    def scores(self, metric: str, level: str) -> Tensor:
        """The scores of every neuron of one level under one metric.

        Parameters
        ----------
        metric : {'correlation', 'precision', 'activation_sum', 'activation_variance', 'weight_sum', \
'weight_variance'}
        level : str
            One of :attr:`levels`.

        Returns
        -------
        Tensor of shape (n_neurons,), float64
            A copy; larger is better. ``precision`` is NaN for neurons below the threshold and +inf for a
            neuron above it whose activation does not vary across resamples (beyond rounding noise).

        Raises
        ------
        ValueError
            For an unknown metric or level, or a weight metric on a level that no single Conv/Linear module
            produces.
        """
        metric = self._check_metric(metric, "NeuronRanking.scores")
        level = self._check_level(level)
        self._check_defined(metric, level)
        return self._scores[metric][level].clone()

    def top(self, metric: str, k: int = 5) -> dict[str, list[int]]:
        """The best ``k`` neurons of every level under one metric.

        Parameters
        ----------
        metric : str
            One of :data:`METRICS`.
        k : int, default=5
            Neurons per level.

        Returns
        -------
        dict of str to list of int
            For each level, bottom to top, up to ``k`` neuron indices, best first (ties: smaller index first).
            Neurons with a NaN score (``precision`` below the threshold) are left out, so a level may list
            fewer than ``k``.

        Raises
        ------
        ValueError
            For an unknown metric, ``k < 1``, or a weight metric when a level has no single Conv/Linear module.
        """
        metric = self._check_metric(metric, "NeuronRanking.top")
        k = check_int(k, "k", "NeuronRanking.top", low=1)
        for level in self.levels:
            self._check_defined(metric, level)
        chosen: dict[str, list[int]] = {}
        for level in self.levels:
            values = self._scores[metric][level].numpy()
            order = _order(values)
            chosen[level] = [int(i) for i in order[~np.isnan(values[order])][:k]]
        return chosen

    def table(self) -> pd.DataFrame:
        """Every neuron's scores and ranks, one row per neuron.

        Returns
        -------
        pandas.DataFrame
            Columns ``level``, ``neuron``, one float column per metric of :data:`METRICS`, then
            ``{metric}_rank`` for each (nullable Int64, 1 = best within the level; NaN scores rank last). A
            weight metric on a level without a single Conv/Linear module has NaN scores and missing ranks.
        """
        import pandas as pd

        parts = []
        for level in self.levels:
            n = len(self._scores["correlation"][level])
            part: dict[str, object] = {"level": [level] * n, "neuron": np.arange(n)}
            ranks = {}
            for metric in METRICS:
                values = self._scores[metric][level].numpy()
                part[metric] = values
                rank = pd.array([pd.NA] * n, dtype="Int64")
                if not (metric in _WEIGHT_METRICS and self._feeding[level].module is None):
                    rank = pd.array(np.argsort(_order(values)) + 1, dtype="Int64")
                ranks[f"{metric}_rank"] = rank
            parts.append(pd.DataFrame({**part, **ranks}))
        return pd.concat(parts, ignore_index=True)


def _order(values: np.ndarray) -> np.ndarray:
    """Indices best first: larger values first, NaN last, ties by smaller index."""
    nan = np.isnan(values)
    return np.lexsort((np.arange(len(values)), -np.where(nan, 0.0, values), nan))


# ------------------------------------------------------------------------------------------------------------
# The public functions
# ------------------------------------------------------------------------------------------------------------


def resample(image: Tensor, *, n_samples: int = 50, sigma: float = 0.1, seed: Seed = 0) -> Tensor:
    """The noisy resamples of one input that :func:`rank_neurons` draws.

    Resample ``i`` is ``image * (1 + sigma * z_i)`` with ``z_i = torch.randn(image.shape, generator=g)`` (in
    the image's dtype), the ``i``-th draw of a generator ``g`` seeded with ``seed``.

    Parameters
    ----------
    image : Tensor of shape (C, H, W), (1, C, H, W), (D,) or (1, D)
        One input.
    n_samples : int, default=50
        Number of resamples, at least 2.
    sigma : float, default=0.1
        Standard deviation of the noise, at least 0.
    seed : int, torch.Generator, numpy.random.Generator or None, default=0
        Source of the noise; global random state is never touched.

    Returns
    -------
    Tensor of shape (n_samples, ...)
        The resamples, without the image's batch dimension of one if it had one, on the image's device.

    Examples
    --------
    >>> import torch, perturb
    >>> perturb.resample(torch.ones(3, 4, 4), n_samples=8, sigma=0.1, seed=0).shape
    torch.Size([8, 3, 4, 4])
    """
    n_samples = check_int(n_samples, "n_samples", "perturb.resample", low=2)
    sigma = check_float(sigma, "sigma", "perturb.resample", low=0.0)
    generator = make_generator(seed, "perturb.resample")
    x = single_input(image, "perturb.resample")
    return torch.cat(list(noisy_batches(x, n_samples, sigma, generator, n_samples)))


def _auto_batch_size(levels: Sequence[LevelInfo], x: Tensor, n_samples: int) -> int:
    """Resamples per forward pass: the largest captured activation of a batch within ``_ALLOCATION_BYTES``."""
    largest = x.element_size() * max(math.prod(info.shape) for info in levels)
    return max(1, min(n_samples, _ALLOCATION_BYTES // largest))


def _group_size(levels: Sequence[LevelInfo], x: Tensor, batch_size: int) -> int:
    """Resamples whose captured activations are held together: about ``_GROUP_BYTES``, at least one batch."""
    per_input = x.element_size() * sum(math.prod(info.shape) for info in levels)
    return max(batch_size, _GROUP_BYTES // per_input)


def rank_neurons(
    model: nn.Module,
    image: Tensor,
    levels: Sequence[str] | None = None,
    *,
    target: int,
    n_samples: int = 50,
    sigma: float = 0.1,
    threshold: float = 0.1,
    output: str = "probability",
    seed: Seed = 0,
    samples: Tensor | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    input_level: str | None = None,
) -> NeuronRanking:
    """Rank the neurons of every level by how they behave around one input.

    Draws ``n_samples`` resamples ``image * (1 + eps)``, eps ~ N(0, sigma^2) independently per element (see
    :func:`resample`), runs them through the model in one batched pass per batch with every level captured at
    once, and scores each neuron (channel or unit) of each level under six metrics:

    - ``correlation``: the mean over the neuron's spatial positions of \\|Pearson r\\| between its activation
      at that position and o across the resamples. Positions whose activation does not vary are left out; a
      neuron with no varying position scores 0 (as does every neuron when o itself does not vary, with a
      warning). A variance within the rounding noise of the values' magnitude counts as none (the rows of a
      batch may round differently): about ``ROUNDING_ULPS`` (64) units of the dtype's epsilon, relative to
      the values for an activation and to the largest logit for o; the bound is derived in
      :mod:`perturb._statistics`.
    - ``precision``: 1 / (mean over positions of the variance across resamples), for neurons whose mean
      activation over resamples and positions is at least ``threshold``; others score NaN and rank last.
    - ``activation_sum``, ``activation_variance``: the sum and the variance of the neuron's activation map on
      the clean input (APPLE's baselines; a unit's variance is 0).
    - ``weight_sum``, ``weight_variance``: the sum and the variance of the weights that produce the neuron,
      in the Conv/Linear module whose output feeds the level (bias excluded).

    Every variance is the population variance (divides by the count). o is the target's softmax probability
    (``output="probability"``) or its logit (``"logit"``), computed in float64 from the model output. The
    statistics are float64 sums shifted by the first resample's activations, accumulated batch by batch, so
    memory stays bounded whatever ``n_samples``; the clean input runs in front of the first batch.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning scores of shape (N, C). Analysed in eval mode with frozen parameters; both are
        restored afterwards.
    image : Tensor of shape (C, H, W), (1, C, H, W), (D,) or (1, D), or dict of str to Tensor
        One input; or one sentence as a tokenizer gives it, ``{"input_ids": (1, T), "attention_mask": (1, T)}``,
        whose padding is dropped and whose ``input_level`` output takes the noise.
    levels : list of str, optional
        Level names bottom to top (module names, ``"input"``, ``"softmax"``, ``"output"``); ``None`` means
        :func:`stepwise.default_levels`. One level is enough.
    target : int
        The class whose output is followed, in ``[0, C)``.
    n_samples : int, default=50
        Number of resamples, at least 2.
    sigma : float, default=0.1
        Standard deviation of the multiplicative noise, at least 0.
    threshold : float, default=0.1
        Mean activation a neuron needs for a ``precision`` score, at least 0.
    output : {'probability', 'logit'}, default='probability'
        What o is.
    seed : int, torch.Generator, numpy.random.Generator or None, default=0
        Source of the noise; the same seed gives bit-identical scores on the same machine and batch size.
    samples : Tensor of shape (n, ...), optional
        Your own resamples, n >= 2, each shaped like one input; ``n_samples``, ``sigma`` and ``seed`` are then
        unused.
    batch_size : int, optional
        Resamples per forward pass; by default as many as keep the largest captured activation of a batch
        within 32 MiB. Captured activations are held for about 1 GiB (at least one batch) before they are
        added to the statistics. Scores do not depend on the batch size beyond floating-point rounding.
    progress : bool, default=False
        Show a progress bar over the resamples.
    input_level : str, optional
        For a sentence (a dict): the module whose output is the input of the analysis, the token embeddings
        (``"embeddings"`` in a BERT-style model), since token ids cannot be perturbed. The noise multiplies that
        output; ``samples`` are then shaped like it, and the ranked levels must lie above it. Neurons of (1, T, D)
        token levels are indexed by D.

    Returns
    -------
    NeuronRanking
        For a sentence, its ``image`` is the clean output of ``input_level``, (1, T, D).

    Raises
    ------
    ValueError
        Before any resample runs: ``sigma < 0``, ``n_samples < 2``, ``threshold < 0``, an unknown ``output``,
        ``image`` holding a batch of several inputs, ``samples`` not shaped ``(n, *input shape)`` with n >= 2,
        unknown or misordered levels, a model output that is not (N, C) scores, ``target`` out of range.
    TypeError
        For parameters of the wrong type, or an ``image`` or ``samples`` dtype that differs from the model's.

    Examples
    --------
    >>> import torch, perturb
    >>> g = torch.Generator().manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()
    >>> ranking = perturb.rank_neurons(net, torch.rand(6, generator=g), target=1, n_samples=20)
    >>> ranking.levels
    ['1', 'softmax']
    >>> ranking.scores("correlation", "1").shape
    torch.Size([16])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"The 'model' parameter of {_OWNER} must be a torch.nn.Module. Got {type(model).__name__}.")
    if samples is None:
        n_samples = check_int(n_samples, "n_samples", _OWNER, low=2)
        sigma = check_float(sigma, "sigma", _OWNER, low=0.0)
    threshold = check_float(threshold, "threshold", _OWNER, low=0.0)
    output = check_option(output, "output", _OWNER, OUTPUTS)
    target = check_int(target, "target", _OWNER, low=0)
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", _OWNER, low=1)
    progress = check_bool(progress, "progress", _OWNER)
    analysed = analysis_input(model, image, input_level, _OWNER)
    x = analysed.x
    source: Tensor | torch.Generator
    if samples is None:
        source = make_generator(seed, _OWNER)
    else:
        source = check_samples(samples, x, _OWNER)
        n_samples = len(source)

    with analysis_mode(model, owner=_OWNER):
        ranked, top = resolve_ranked(model, analysed.probe, levels, analysed.input_level)
        if len(top.shape) != 1:
            raise ValueError(
                f"rank_neurons needs class scores of shape (N, C) from the model; its output has shape "
                f"(N, {', '.join(map(str, top.shape))}). Wrap the model so that it returns (N, C) scores."
            )
        n_classes = top.shape[0]
        check_int(target, "target", _OWNER, low=0, high=n_classes - 1)
        if output == "probability" and n_classes < 2:
            raise ValueError(
                "output='probability' needs at least two classes, but the model returns one score per input "
                "(its softmax is always 1). Pass output='logit'."
            )
        if batch_size is None:
            batch_size = _auto_batch_size(ranked, x, n_samples)
        feeding, clean = feeding_modules(model, x, ranked, None if analysed.keyword is None else analysed.model_input)
        resamples = map(analysed.model_input, batches(x, source, n_samples, sigma, batch_size))
        with tqdm(total=n_samples, disable=not progress, desc=_OWNER, unit="resample") as bar:
            streamed = _stream(model, resamples, ranked, top, target, output, threshold,
                               _group_size(ranked, x, batch_size), bar)  # fmt: skip
    scores: dict[str, dict[str, Tensor]] = {metric: {} for metric in METRICS}
    scores["correlation"], scores["precision"] = streamed.correlation, streamed.precision
    for info in ranked:
        for metric, values in _baseline_scores(model, clean[info.name], info, feeding[info.name]).items():
            scores[metric][info.name] = values
    return NeuronRanking(
        levels=[info.name for info in ranked],
        shapes={info.name: info.shape for info in ranked},
        scores=scores,
        target=target,
        output=output,
        n_samples=n_samples,
        sigma=None if samples is not None else sigma,
        seed=None if samples is not None else seed,
        threshold=threshold,
        batch_size=batch_size,
        model=model,
        image=x,
        outputs=streamed.outputs,
        clean_output=float(target_output(clean[OUTPUT], target, output)[0][0]),
        feeding=feeding,
    )


@dataclasses.dataclass
class _Streamed:
    """What the streamed pass yields: two metrics per level and o per resample."""

    correlation: dict[str, Tensor]
    precision: dict[str, Tensor]
    outputs: Tensor  # (n_samples,) float64


def _stream(
    model: nn.Module,
    resamples: Iterable[Batch],
    ranked: list[LevelInfo],
    top: LevelInfo,
    target: int,
    output: str,
    threshold: float,
    group_size: int,
    bar: tqdm,
) -> _Streamed:
    """One streamed pass: batches are captured one at a time and their statistics added once ``group_size``
    resamples are held."""
    levels = ranked + [top]
    sums: dict[str, Sums] = {}
    outputs: list[Tensor] = []
    noise: list[Tensor] = []
    group: list[dict[str, Tensor]] = []
    o_shift = 0.0

    def add_group() -> None:
        o = torch.cat(outputs[-len(group) :])
        weights = torch.stack([torch.ones_like(o), o - o_shift])
        for info in ranked:
            sums[info.name].add([flat(acts[info.name], info) for acts in group], weights)
        group.clear()

    for batch in resamples:
        acts = capture(model, batch, levels)
        o, o_noise = target_output(acts[OUTPUT], target, output)
        if not outputs:
            o_shift = float(o[0])
            sums = {info.name: Sums.start(flat(acts[info.name][:1], info)[0]) for info in ranked}
        outputs.append(o)
        noise.append(o_noise)
        group.append(acts)
        if sum(len(acts[OUTPUT]) for acts in group) >= group_size:
            add_group()
        bar.update(len(batch))
    if group:
        add_group()
    o_all = torch.cat(outputs)
    mean_o, var_o = output_moments(o_all, torch.cat(noise), o_shift)
    if var_o == 0:
        warnings.warn(
            f"{_OWNER}: the output o ({output} of class {target}) is the same on every resample (up to rounding), "
            "so no activation correlates with it and every 'correlation' is 0. Increase sigma, or pass "
            "output='logit' when the probability saturates.",
            UserWarning,
            stacklevel=3,
        )
    streamed = _Streamed({}, {}, o_all.cpu())
    for info in ranked:
        correlation, precision = finish(sums[info.name], len(o_all), mean_o, var_o, info.n_neurons, threshold)
        streamed.correlation[info.name] = correlation.cpu()
        streamed.precision[info.name] = precision.cpu()
    return streamed


def _baseline_scores(model: nn.Module, clean: Tensor, info: LevelInfo, feeding: Feeding) -> dict[str, Tensor]:
    """APPLE's baselines for one level: activation sum and variance on the clean input, weight sum and variance."""
    total, variance = row_sum_and_variance(flat(clean, info).reshape(info.n_neurons, -1))
    scores = {"activation_sum": total, "activation_variance": variance}
    if feeding.module is None:
        nan = torch.full((info.n_neurons,), math.nan, dtype=torch.float64)
        scores.update(weight_sum=nan, weight_variance=nan.clone())
    else:
        total, variance = row_sum_and_variance(neuron_weights(model.get_submodule(feeding.module)))
        scores.update(weight_sum=total, weight_variance=variance)
    return scores
