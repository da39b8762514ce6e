"""The neuron activation sorter (thesis: the Neuron Activation Sorter): every neuron's values on a few inputs
per class, sorted into class-stacked histograms (:class:`~stepwise.sorter.summary.LayerSummary`), shown input by
input (:class:`~stepwise.sorter.view.NeuronView`) and read as kinds of neurons
(:mod:`~stepwise.sorter.kinds`)."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from stepwise.core.hooks import all_finite, check_has_values, check_model_has_values, model_device_dtype
from stepwise.core.inputs import Batch, KeywordInputs, as_batch
from stepwise.core.levels import INPUT, OUTPUT, SOFTMAX, LevelInfo, resolve_levels
from stepwise.core.validation import NotFittedError, check_bool, check_float, check_int, unknown_name_message

from .bins import WIDTHS, bin_index, class_counts, zero_aligned_edges
from .kinds import Thresholds, neuron_kinds
from .summary import LayerSummary
from .values import REDUCTIONS, capture_values
from .view import NeuronView

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ActivationSorter", "NotFittedError"]

_OWNER = "ActivationSorter"
_BATCH_BYTES = 1 << 30  # activations of the levels per batch, counted twice (the model's own and the copies)
_FRACTIONS = ("zeroing", "top", "dominant", "cover", "separation", "overlap")


def _as_labels(labels: object, n: int, name: str = "labels") -> np.ndarray:
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one label per input, shape (n,); got shape {array.shape}.")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.bool_)):
        raise TypeError(
            f"{name} must be integer class numbers; got dtype {array.dtype}. Convert them, for example "
            f"{name}.long() or numpy.asarray({name}, dtype=int)."
        )
    if len(array) != n:
        raise ValueError(f"Found {len(array)} {name} for {n} inputs: pass one label per input.")
    return array.astype(np.int64)


def _rng(seed: object) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, torch.Generator):
        return np.random.default_rng(int(torch.randint(2**62, (1,), generator=seed)))
    return np.random.default_rng(seed)  # an int >= 0 or None (checked by the constructor)


class ActivationSorter:
    """Sort every neuron's values on a few inputs per class into class-stacked, zero-aligned histograms.

    The thesis's pipeline: ``per_class`` inputs of each class, one streamed forward pass recording every neuron's
    value, then per neuron a histogram of m bins over its own range, aligned on zero, whose bars stack the classes
    of the inputs that fell there.

    Values are the levels' activations *as captured*: for the default levels, after the elementwise activation
    function (so a level followed by a ReLU holds no negative value, and its zeros are the inputs the ReLU cut).
    Name a Conv/Linear module itself as a level to see the values before the activation.

    Parameters
    ----------
    model : torch.nn.Module
        The network (any device, float32 or float64); analysed in eval mode and left as it was.
    levels : list of str, optional
        Level names bottom to top (``model.named_modules()`` names, ``"input"``, ``"softmax"``, ``"output"``);
        one is enough. Default: :func:`stepwise.default_levels`.
    per_class : int, default=100
        Inputs per class, drawn without replacement with ``seed`` (all of a class when it has fewer).
    reduce : {"mean", "max", None}, default="mean"
        A channel's value: its mean over positions (the library's neuron), its maximum, or ``None`` to keep every
        unit (channel x position; neuron ``c * P + p``), as the thesis's VGG16 tables hold them.
    seed : int, numpy.random.Generator, torch.Generator or None, default=0
        Draws the inputs per class; the same int gives the same inputs.
    batch_size : int, optional
        Inputs per forward pass (default: as many as fit about 1 GiB of the levels' activations).
    progress : bool, default=False
        Show a progress bar over the inputs.

    Attributes
    ----------
    values_ : dict of str to ndarray of shape (n_used, n_neurons), float32
        Every level's neuron values, rows in the order of ``indices_``.
    indices_ : ndarray of shape (n_used,), int64
        Which inputs (positions in the inputs given to ``fit``) were used, ascending.
    labels_ : ndarray of shape (n_used,), int64
        Their labels.
    predicted_ : ndarray of shape (n_used,), int64, or None
        The model's predictions (argmax of its output), or None when the output is not class scores (N, C).
    classes_ : ndarray of shape (n_classes,)
        The classes present, ascending.
    levels_ : list of str
        The levels sorted, bottom to top.

    Examples
    --------
    >>> import stepwise
    >>> from stepwise.models import digits_cnn, digits_data
    >>> images, labels, train, test = digits_data()
    >>> sorter = stepwise.ActivationSorter(digits_cnn(), ["features.6"], per_class=20).fit(images, labels)
    >>> sorter.values_["features.6"].shape
    (200, 64)
    >>> summary = sorter.layer_summary("features.6")
    >>> summary.counts.shape
    (64, 30, 10)
    """

    model: nn.Module | None  # None for a sorter built from values

    def __init__(
        self,
        model: nn.Module,
        levels: Sequence[str] | None = None,
        *,
        per_class: int = 100,
        reduce: str | None = "mean",
        seed: int | np.random.Generator | torch.Generator | None = 0,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
        if levels is not None:
            if isinstance(levels, str) or not isinstance(levels, Sequence):
                raise TypeError(
                    f"levels must be a list of level names bottom to top, or None for the default levels; got "
                    f"{levels!r}. Write levels=[{levels!r}] for one level."
                )
            if not all(isinstance(name, str) for name in levels):
                raise TypeError(f"levels must be a list of str; got {levels!r}.")
            if not levels:
                raise ValueError("levels is empty: name at least one level, or pass None for the default levels.")
        if reduce not in REDUCTIONS:
            raise ValueError(
                f"The 'reduce' parameter of {_OWNER} must be one of {{'mean', 'max', None}}. Got {reduce!r} instead."
            )
        valid_seed = seed is None or isinstance(seed, (np.random.Generator, torch.Generator))
        valid_seed |= isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0
        if not valid_seed:
            raise TypeError(
                f"The 'seed' parameter of {_OWNER} must be an int in the range [0, inf), a numpy.random.Generator, "
                f"a torch.Generator or None. Got {seed!r} instead."
            )
        self.model = model
        self.levels = None if levels is None else list(levels)
        self.per_class = check_int(per_class, "per_class", _OWNER, low=1)
        self.reduce = reduce
        self.seed = seed
        self.batch_size = None if batch_size is None else check_int(batch_size, "batch_size", _OWNER, low=1)
        self.progress = check_bool(progress, "progress", _OWNER)
        self._inputs: Any = None
        self._kinds: dict[tuple[str, Thresholds], dict[str, Any]] = {}

    def __repr__(self) -> str:
        if self.model is None:
            return f"ActivationSorter(from_values, levels={self.levels!r})"
        return (
            f"ActivationSorter({type(self.model).__name__}, levels={self.levels!r}, per_class={self.per_class}, "
            f"reduce={self.reduce!r}, seed={self.seed!r})"
        )

    def __getattr__(self, name: str) -> Any:
        if name.endswith("_") and not name.startswith("_"):
            raise NotFittedError(
                f"This {_OWNER} is not fitted yet, so it has no {name!r}: call fit(inputs, labels) first, or build "
                f"one from values with {_OWNER}.from_values({{level: values}}, labels)."
            )
        raise AttributeError(f"{_OWNER!r} object has no attribute {name!r}")

    # ------------------------------------------------------------------------------------------------ fitting

    def fit(self, inputs: Tensor | Mapping[str, Tensor], labels: object = None) -> ActivationSorter:
        """Draw ``per_class`` inputs per class and record every neuron's value on them, in one streamed pass.

        Parameters
        ----------
        inputs : Tensor of shape (N, ...), or dict of str to Tensor
            On any device (batches are moved to the model's); the sorter keeps a reference to a tensor for the
            thumbnails of :meth:`neuron_view`. A dict (a tokenizer's output,
            :class:`~stepwise.core.inputs.KeywordInputs`) is passed as keyword arguments; the neurons of its (N, T, D)
            token levels are means (``reduce='max'``: maxima) over the real tokens.
        labels : Tensor, ndarray or sequence of int, shape (N,)
            Each input's class. Inputs without labels can be sorted by the model's own predictions:
            ``labels=model(inputs).argmax(1)``.

        Returns
        -------
        ActivationSorter
            ``self``, fitted.

        Raises
        ------
        ValueError
            Missing labels, labels of another length, NaN or Inf in the inputs, an unknown level (close matches
            named), levels out of forward order, non-finite activations; all but the last before the pass.
        TypeError
            Inputs that are not a tensor, labels that are not integers, inputs of another dtype than the model.
        """
        inputs = as_batch(inputs)
        codes, infos, device = self._prepare(inputs, labels)
        rows = self._draw(codes)
        batch_size = self.batch_size
        if batch_size is None:
            per_input = 2 * inputs.element_size() * sum(int(np.prod(info.shape)) for info in infos)
            batch_size = max(1, min(len(rows), _BATCH_BYTES // max(per_input, 1)))
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(rows), desc="sorting", unit="input")
        try:
            values, predicted = capture_values(
                self.model, inputs, rows, infos, reduce=self.reduce, batch_size=batch_size, device=device, bar=bar
            )
        finally:
            if bar is not None:
                bar.close()
        self._set_fitted(values, rows, codes[rows], predicted, inputs if isinstance(inputs, Tensor) else None)
        return self

    def check(self, inputs: Tensor | Mapping[str, Tensor], labels: object = None) -> None:
        """Make every check of :meth:`fit` without the long pass: the inputs, the labels, and the levels on the
        first two inputs (one short forward pass). Nothing is drawn: a generator ``seed`` is not advanced.

        Raises
        ------
        ValueError, TypeError
            As :meth:`fit` would, before its pass.
        """
        self._prepare(as_batch(inputs), labels)

    def _prepare(self, inputs: Batch, labels: object) -> tuple[np.ndarray, list[LevelInfo], torch.device]:
        if self.model is None:
            raise ValueError(
                f"This {_OWNER} was built from values (from_values) and has no model to run: build one with "
                f"{_OWNER}(model, levels) to fit on inputs."
            )
        if not isinstance(inputs, (Tensor, KeywordInputs)):
            raise TypeError(
                f"inputs must be a torch.Tensor batch (N, ...) or a dict of tensors; got {type(inputs).__name__}. Stack "
                "the inputs along a first batch dimension, for example torch.stack(list_of_inputs)."
            )
        if inputs.dim() == 0 or len(inputs) == 0:
            raise ValueError("inputs is empty: pass at least one input (batch dimension first).")
        if labels is None:
            raise ValueError(
                f"{_OWNER}.fit needs the labels of the inputs (the classes its histograms stack): pass one label per "
                "input, or labels=model(inputs).argmax(1) to sort by the model's own predictions."
            )
        codes = _as_labels(labels, len(inputs))
        check_model_has_values(self.model)
        if isinstance(inputs, Tensor):
            check_has_values(inputs, "inputs")
        device, dtype = model_device_dtype(self.model)
        if inputs.is_floating_point() and dtype is not None and inputs.dtype != dtype:
            raise TypeError(
                f"inputs are {inputs.dtype} but the model computes in {dtype}: convert one of them, for example "
                f"inputs.to({dtype}) or model.to({inputs.dtype})."
            )
        if isinstance(inputs, Tensor) and not all_finite(inputs):
            raise ValueError("inputs hold NaN or Inf values: remove or replace them before sorting.")
        infos = self._resolve(inputs[:2].to(device))
        if isinstance(inputs, KeywordInputs) and self.reduce is None:
            tokens = [info.name for info in infos if len(info.shape) == 2 and info.shape[0] == inputs.shape[1]]
            if tokens:
                raise ValueError(
                    f"reduce=None keeps every token position of the token levels {tokens}, padding included, so "
                    "padding would change the values: pass reduce='mean' (or 'max'), which runs over the real tokens."
                )
        return codes, infos, device

    def _draw(self, labels: np.ndarray) -> np.ndarray:
        """Up to ``per_class`` positions per class, drawn without replacement, ascending."""
        rng = _rng(self.seed)
        chosen = []
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            if len(members) > self.per_class:
                members = rng.choice(members, self.per_class, replace=False)
            chosen.append(members)
        return np.sort(np.concatenate(chosen)).astype(np.int64)

    def _resolve(self, example: Batch) -> list[LevelInfo]:
        """Resolve the levels on two inputs; one level is resolved with ``input`` beneath it (with the model output
        above it for keyword inputs, which have no ``input`` level), then alone."""
        if self.levels is not None and len(self.levels) == 1:
            (name,) = self.levels
            if isinstance(example, KeywordInputs) and name not in (SOFTMAX, OUTPUT):
                return resolve_levels(self.model, example, [name, OUTPUT])[:1]
            if name == INPUT:
                if example.dim() < 2:
                    raise ValueError(f"'input' of shape {tuple(example.shape)} needs a batch and a channel dimension.")
                return [LevelInfo(INPUT, None, tuple(example.shape[1:]), 1)]
            return resolve_levels(self.model, example, [INPUT, name])[1:]
        return resolve_levels(self.model, example, self.levels)

    def _set_fitted(
        self,
        values: dict[str, np.ndarray],
        rows: np.ndarray,
        labels: np.ndarray,
        predicted: np.ndarray | None,
        inputs: Any,
    ) -> None:
        self.values_ = values
        self.indices_ = rows
        self.labels_ = labels
        self.predicted_ = predicted
        self.classes_ = np.unique(labels)
        self.levels_ = list(values)
        self._codes = np.searchsorted(self.classes_, labels)
        self._inputs = inputs
        self._kinds = {}

    @classmethod
    def from_values(
        cls,
        values: Mapping[str, object],
        labels: object,
        predicted: object = None,
        *,
        inputs: Any = None,
    ) -> ActivationSorter:
        """A fitted sorter over values one already has (no model is run).

        Parameters
        ----------
        values : mapping of str to array of shape (n, n_neurons)
            Per level, one row per input (ndarray, tensor or nested lists); stored as float32.
        labels : array of int, shape (n,)
        predicted : array of int, shape (n,), optional
            The model's predictions, to mark misclassified inputs in the neuron view.
        inputs : Tensor or ndarray of shape (n, ...), optional
            The inputs themselves, for the thumbnails of the neuron view.

        Returns
        -------
        ActivationSorter
            With ``indices_ = arange(n)``.

        Raises
        ------
        ValueError
            No level, values that are not 2-D, hold NaN or Inf, or disagree in their number of rows; labels,
            predictions or inputs of another length.
        """
        if not isinstance(values, Mapping) or not values:
            raise ValueError("values must be a non-empty dict {level: array of shape (n_inputs, n_neurons)}.")
        arrays: dict[str, np.ndarray] = {}
        for level, array in values.items():
            if not isinstance(level, str):
                raise TypeError(f"values must be keyed by level names (str); got the key {level!r}.")
            if hasattr(array, "detach"):
                array = array.detach().cpu().numpy()
            array = np.asarray(array)
            if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
                raise ValueError(
                    f"values[{level!r}] must have shape (n_inputs, n_neurons) with both at least 1; got shape "
                    f"{array.shape}."
                )
            if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
                raise ValueError(
                    f"values[{level!r}] holds NaN, Inf or non-numbers (dtype {array.dtype}): remove or replace them "
                    "before sorting."
                )
            arrays[level] = np.ascontiguousarray(array, dtype=np.float32)
        sizes = {level: len(array) for level, array in arrays.items()}
        n = next(iter(sizes.values()))
        if len(set(sizes.values())) > 1:
            raise ValueError(f"values have different numbers of rows per level ({sizes}): pass one row per input.")
        codes = _as_labels(labels, n)
        guesses = None if predicted is None else _as_labels(predicted, n, "predictions")
        if inputs is not None and len(inputs) != n:
            raise ValueError(f"Found {len(inputs)} inputs for {n} rows of values: pass one input per row.")
        sorter = cls.__new__(cls)
        sorter.model = None
        sorter.levels = list(arrays)
        sorter.per_class, sorter.reduce, sorter.seed = n, None, None
        sorter.batch_size, sorter.progress = None, False
        sorter._set_fitted(arrays, np.arange(n, dtype=np.int64), codes, guesses, inputs)
        return sorter

    # ------------------------------------------------------------------------------------------------ results

    def _level(self, level: object, owner: str) -> np.ndarray:
        values = self.values_  # NotFittedError before fit
        if not isinstance(level, str):
            raise TypeError(f"The 'level' parameter of {owner} must be a level name (str). Got {level!r} instead.")
        if level not in values:
            raise ValueError(
                unknown_name_message(
                    "level",
                    level,
                    f"this {_OWNER} (sorted levels: {list(values)})",
                    values,
                    "Name a sorted level, or fit again with levels=[...] naming it.",
                )
            )
        return values[level]

    def _neuron(self, neuron: object, level: str, n_neurons: int, owner: str) -> int:
        if isinstance(neuron, bool) or not isinstance(neuron, numbers.Integral):
            raise TypeError(f"The 'neuron' parameter of {owner} must be an int. Got {neuron!r} instead.")
        if not 0 <= neuron < n_neurons:
            raise ValueError(
                f"Neuron {neuron} is out of range for level {level!r}, which has {n_neurons} neurons (0 to "
                f"{n_neurons - 1}): pass an index in that range."
            )
        return int(neuron)

    def _kinds_of(self, level: str, thresholds: Thresholds) -> dict[str, Any]:
        key = (level, thresholds)
        if key not in self._kinds:
            self._kinds[key] = neuron_kinds(self.values_[level], self._codes, self.classes_, thresholds)
        return self._kinds[key]

    def layer_summary(
        self,
        level: str,
        *,
        bins: int = 30,
        widths: tuple[int, int] = WIDTHS,
        neurons: Sequence[int] | None = None,
    ) -> LayerSummary:
        """Class counts per zero-aligned bin for the neurons of one level (the thesis's Layer Summary mode).

        Parameters
        ----------
        level : str
            A sorted level.
        bins : int, default=30
            m, bins per neuron (the thesis's 30); at least 2.
        widths : pair of int, default=(3, 11)
            Upper counts of the small and medium bar widths, increasing (the thesis's 1-3, 4-11, 12 or more).
        neurons : sequence of int, optional
            Which neurons, in this order (default: all).

        Returns
        -------
        LayerSummary
            ``counts`` of shape (n_neurons, bins, n_classes), ``edges``, ``width_class``, ``percentages``, the
            kinds, and ``plot()``.
        """
        owner = f"{_OWNER}.layer_summary"
        values = self._level(level, owner)
        bins = check_int(bins, "bins", owner, low=2)
        if (
            not isinstance(widths, Sequence)
            or len(widths) != 2
            or not all(isinstance(w, numbers.Integral) and not isinstance(w, bool) for w in widths)
            or not 1 <= widths[0] < widths[1]
        ):
            raise ValueError(
                f"The 'widths' parameter of {owner} must be a pair of increasing ints (small, medium) with "
                f"1 <= small < medium, such as the thesis's (3, 11). Got {widths!r} instead."
            )
        if neurons is None:
            chosen = np.arange(values.shape[1])
        else:
            if isinstance(neurons, numbers.Integral):
                neurons = [int(neurons)]
            chosen = np.array([self._neuron(n, level, values.shape[1], owner) for n in neurons], dtype=np.int64)
            if len(chosen) == 0:
                raise ValueError(f"neurons is empty: name at least one neuron of level {level!r}, or pass None.")
        edges, counts = class_counts(values[:, chosen], self._codes, len(self.classes_), bins)
        kinds = self._kinds_of(level, Thresholds())
        preferred = np.array([-1 if kinds["top_class"][n] is None else kinds["top_class"][n] for n in chosen])
        return LayerSummary(
            level=level,
            neurons=chosen,
            edges=edges,
            classes=self.classes_.copy(),
            counts=counts,
            widths=(int(widths[0]), int(widths[1])),
            kinds=[kinds["kind"][n] for n in chosen],
            preferred=preferred,
            n_inputs=len(self.indices_),
        )

    def neuron_view(self, level: str, neuron: int, *, bins: int = 30) -> NeuronView:
        """One neuron's inputs bin by bin, with labels and predictions (the thesis's Individual Neuron mode).

        Parameters
        ----------
        level : str
        neuron : int
        bins : int, default=30
            The bins of :meth:`layer_summary` (the same edges for the same ``bins``).

        Returns
        -------
        NeuronView
            ``edges``, ``members`` (per bin the input indices, largest value first), ``plot()``.
        """
        owner = f"{_OWNER}.neuron_view"
        values = self._level(level, owner)
        neuron = self._neuron(neuron, level, values.shape[1], owner)
        bins = check_int(bins, "bins", owner, low=2)
        v = values[:, neuron]
        edges = zero_aligned_edges(v.min(), v.max(), bins)
        index = bin_index(v, edges)
        order = np.lexsort((self.indices_, -v.astype(np.float64)))  # largest value first, then input order
        predicted = self.predicted_ if self.predicted_ is not None else np.full(len(v), -1, dtype=np.int64)
        groups = [order[index[order] == b] for b in range(len(edges) - 1)]
        return NeuronView(
            level=level,
            neuron=neuron,
            kind=self._kinds_of(level, Thresholds())["kind"][neuron],
            edges=edges,
            members=[self.indices_[g] for g in groups],
            values=[v[g] for g in groups],
            labels=[self.labels_[g] for g in groups],
            predicted=[predicted[g] for g in groups],
            classes=self.classes_.copy(),
            inputs=self._inputs,
        )

    def neuron_types(self, level: str, **thresholds: float) -> pd.DataFrame:
        """The kind of every neuron of a level, with the numbers that decided it.

        The kinds and their rules are this library's reading of the thesis (whose text stops before defining
        them): see :mod:`stepwise.sorter.kinds`.

        Parameters
        ----------
        level : str
        **thresholds : float
            Any of ``zeroing`` (0.05), ``top`` (0.1), ``dominant`` (0.6), ``cover`` (0.8), ``max_classes`` (4),
            ``separation`` (0.5), ``overlap`` (0.1).

        Returns
        -------
        pandas.DataFrame
            One row per neuron: ``neuron``, ``kind``, ``evidence`` (the deciding numbers, in words), then the
            numbers: ``positive_fraction``, ``top_size``, ``top_class``, ``top_share``, ``top_two_share``,
            ``top_needed``, ``bottom_class``, ``bottom_share``, ``low_class``, ``high_class``, ``separation``,
            ``overlap``.
        """
        import pandas as pd

        owner = f"{_OWNER}.neuron_types"
        self._level(level, owner)
        known = Thresholds.__dataclass_fields__
        unknown = sorted(set(thresholds) - set(known))
        if unknown:
            raise TypeError(
                f"{owner} got unknown threshold(s) {unknown}: the thresholds are {sorted(known)} (see "
                "stepwise.sorter.kinds)."
            )
        checked: dict[str, Any] = {}
        for name, value in thresholds.items():
            if name == "max_classes":
                checked[name] = check_int(value, name, owner, low=3)
            elif name == "top":
                checked[name] = check_float(value, name, owner, low=0, high=0.5, closed_low=False)
            else:
                checked[name] = check_float(value, name, owner, low=0, high=1)
        columns = self._kinds_of(level, Thresholds(**checked))
        return pd.DataFrame({"neuron": np.arange(len(columns["kind"])), **columns})
