"""DecisionPaths: k-means on each level's activations, the flows between clusters, the paths a class takes.

The method of the Paths paper (``papers/000``): record every input's activation vector at each analysed level,
cluster each level separately with k-means, and follow how inputs flow from a cluster of one level to a cluster
of the next, up to the class (the model's prediction, or the given label).
"""

from __future__ import annotations

from stepwise.core.inputs import Batch, check_batch, input_signature

import numbers
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from stepwise._version import __version__
from stepwise.core.hooks import model_device_dtype
from stepwise.core.levels import INPUT, OUTPUT, SOFTMAX, LevelInfo, resolve_levels
from stepwise.core.validation import (
    NotFittedError,
    check_bool,
    check_float,
    check_int,
    check_option,
    unknown_name_message,
)

from .checks import check_labels, check_seed
from .clustering import ALGORITHMS, LevelClusters, finish_minibatch, fit_full, new_minibatch, squared_distances
from .features import FEATURES, LevelFeatures, auto_batch_size, capture_features
from .flows import CLASS, flow_table, path_table, rare_inputs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from stepwise.graphs.paths import PathsGraph

__all__ = ["TOPS", "DecisionPaths", "NotFittedError", "time_column"]

_OWNER = "DecisionPaths"
#: The choices of the ``top`` option.
TOPS = ("predicted", "label")
_PROBE = 2  # inputs of the forward pass that checks the levels


def time_column(level: str, step: int) -> str:
    """The assignments column of time step ``step`` of a recurrent level: ``"gru@t3"``."""
    return f"{level}@t{step}"


class DecisionPaths:
    """Decision paths through clustered hidden-layer activations (the Paths paper).

    Parameters
    ----------
    model : torch.nn.Module
        A trained classifier returning class scores of shape (N, C).
    levels : sequence of str, optional
        The levels to cluster, bottom to top; by default :func:`stepwise.default_levels` without the class
        output. The class (the top column) is added above them.
    n_clusters : int or dict of str to int, default=10
        k of every level, or one k per level (every level named).
    n_init : int, default=10
        k-means restarts; the one with the smallest inertia is kept.
    seed : int, numpy.random.Generator, torch.Generator or None, default=0
        Seeds k-means (``random_state``); the same seed gives the same output.
    features : {'flatten', 'mean'}, default='flatten'
        ``flatten`` clusters the whole activation of an input (the paper); ``mean`` its channel means.
    top : {'predicted', 'label'}, default='predicted'
        The class column: the model's prediction or the label passed to :meth:`fit`.
    time_dim : int, optional
        For recurrent levels of shape (N, T, ...): the time dimension. Each time step becomes a column, and all
        steps of a level are clustered by one shared k-means.
    algorithm : {'full', 'minibatch'}, default='full'
        ``full``: ``KMeans`` on the captured features of all inputs, each restart run until no assignment
        changes (``tol=0``; at most 300 iterations). ``minibatch``: batches streamed into
        ``MiniBatchKMeans.partial_fit``, then a second pass assigns each input; memory does not grow with N.
    batch_size : int, optional
        Inputs per forward pass; by default about 64 MiB of captured activations, at most 256 inputs.
    progress : bool, default=False
        Show progress bars.

    Attributes
    ----------
    assignments_ : pandas.DataFrame of shape (N, n_columns)
        One int column per level (per time step with ``time_dim``), bottom to top, then ``"class"``.
    centroids_ : dict of str to ndarray of shape (k, D), float32
        The centroids of each level, in the reported order (cluster 0 is the largest).
    columns_ : list of str
        The columns of ``assignments_``, bottom to top.
    levels_ : list of str
        The clustered levels.
    n_clusters_ : dict of str to int
    inertia_ : dict of str to float
        Sum of squared distances of the samples of each level to their centroid.
    predictions_ : ndarray of shape (N,), int64
        The model's predictions.
    labels_ : ndarray of shape (N,), int64, or None
    classes_ : ndarray of int64
        The classes that occur in the class column.
    n_inputs_ : int

    Notes
    -----
    Memory with ``algorithm="full"``: the feature arrays (N x D float32 per level), not copied: k-means centres
    them in place, and runs to strict convergence (``tol=0``), which spares the temporary copy that scikit-learn's
    tolerance (the features' variance) would make; k-means' own arrays are O(N) (labels, squared norms) and
    O(k x D). ``"minibatch"`` keeps no features.

    Examples
    --------
    >>> import torch, stepwise
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    >>> dp = stepwise.DecisionPaths(net, n_clusters=3).fit(torch.randn(60, 4))
    >>> list(dp.assignments_.columns)
    ['1', 'class']
    >>> int(dp.paths()["count"].sum())
    60
    """

    def __init__(
        self,
        model: nn.Module,
        levels: Sequence[str] | None = None,
        *,
        n_clusters: int | Mapping[str, int] = 10,
        n_init: int = 10,
        seed: int | np.random.Generator | torch.Generator | None = 0,
        features: str = "flatten",
        top: str = "predicted",
        time_dim: int | None = None,
        algorithm: str = "full",
        batch_size: int | None = None,
        progress: bool = False,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
        if levels is not None and (isinstance(levels, str) or not isinstance(levels, Sequence)):
            raise TypeError(
                f"levels must be a list of level names bottom to top (or None for the defaults); got {levels!r}. "
                "See stepwise.list_levels(model, example_input)."
            )
        self.model = model
        self.levels = None if levels is None else list(levels)
        if isinstance(n_clusters, Mapping):
            if not n_clusters:
                raise ValueError("n_clusters is an empty dict: give one k per level, or one int for every level.")
            self.n_clusters = {
                name: check_int(k, f"n_clusters[{name!r}]", _OWNER, low=2) for name, k in n_clusters.items()
            }
        else:
            self.n_clusters = check_int(n_clusters, "n_clusters", _OWNER, low=2)
        self.n_init = check_int(n_init, "n_init", _OWNER, low=1)
        self.seed = check_seed(seed, _OWNER)
        self.features = check_option(features, "features", _OWNER, FEATURES)
        self.top = check_option(top, "top", _OWNER, TOPS)
        self.time_dim = None if time_dim is None else check_int(time_dim, "time_dim", _OWNER, low=1)
        self.algorithm = check_option(algorithm, "algorithm", _OWNER, ALGORITHMS)
        self.batch_size = None if batch_size is None else check_int(batch_size, "batch_size", _OWNER, low=1)
        self.progress = check_bool(progress, "progress", _OWNER)

    # ------------------------------------------------------------------------------------------ checks

    def _check_inputs(self, inputs: object) -> Batch:
        return check_batch(inputs, self.model)

    def _check_labels(self, labels: object, n: int) -> np.ndarray | None:
        return check_labels(labels, n, self.top)

    def _resolve(self, inputs: Tensor) -> tuple[list[LevelFeatures], LevelInfo]:
        """The clustered levels and the prediction level, from one forward pass on the first inputs."""
        device, _ = model_device_dtype(self.model)
        probe = inputs[:_PROBE].to(device)
        none_message = (
            f"No level to cluster in {type(self.model).__name__}: stepwise.default_levels proposes only the class "
            "output. Name the levels, bottom to top (see stepwise.list_levels(model, example_input))."
        )
        if self.levels is None:
            try:
                infos = resolve_levels(self.model, probe, None)
            except ValueError as error:
                if "At least two levels" in str(error):
                    raise ValueError(none_message) from None
                raise
            top, infos = infos[-1], infos[:-1]  # the defaults end with the class output
        else:
            names = list(self.levels)
            if not names:
                raise ValueError("levels is empty: name at least one level to cluster, or pass None for the defaults.")
            on_top = names[-1] in (SOFTMAX, OUTPUT)
            alone = on_top and len(names) == 1  # the class output alone: resolved above the input, then kept alone
            infos = resolve_levels(
                self.model, probe, [INPUT] + names if alone else names if on_top else names + [OUTPUT]
            )
            top = infos[-1]
            infos = infos[1:] if alone else infos if on_top else infos[:-1]
        if not infos:
            raise ValueError(none_message)
        shape = top.shape
        if len(shape) != 1 or shape[0] < 2:
            raise ValueError(
                f"The model output has shape (N, {', '.join(map(str, shape))}), not class scores (N, C) with C >= 2, "
                "so it gives no prediction: wrap the model so that it returns class scores."
            )
        specs = []
        for info in infos:
            if self.time_dim is not None and (len(info.shape) < 2 or self.time_dim > len(info.shape)):
                raise ValueError(
                    f"time_dim={self.time_dim} does not fit level {info.name!r} of shape (N, "
                    f"{', '.join(map(str, info.shape))}): a recurrent level has shape (N, T, H) (time_dim=1). Leave "
                    "time_dim=None for levels without a time dimension."
                )
            specs.append(LevelFeatures(info, self.features, self.time_dim))
        return specs, top

    def _cluster_numbers(self, specs: Sequence[LevelFeatures], n: int) -> dict[str, int]:
        names = [spec.info.name for spec in specs]
        if isinstance(self.n_clusters, dict):
            unknown = [name for name in self.n_clusters if name not in names]
            if unknown:
                raise ValueError(
                    unknown_name_message(
                        "level", unknown[0], "the clustered levels", names, f"n_clusters names the levels {names}."
                    )
                )
            missing = [name for name in names if name not in self.n_clusters]
            if missing:
                raise ValueError(f"n_clusters gives no k for the level(s) {missing}: give one k per level {names}.")
            ks = dict(self.n_clusters)
        else:
            ks = dict.fromkeys(names, self.n_clusters)
        for spec in specs:
            samples = n * spec.steps
            if ks[spec.info.name] > samples:
                raise ValueError(
                    f"n_clusters={ks[spec.info.name]} for level {spec.info.name!r} is more clusters than its "
                    f"{samples} samples ({n} inputs): pass more inputs or a smaller n_clusters."
                )
        return ks

    def _check_fitted(self, what: str) -> None:
        if not hasattr(self, "assignments_"):
            raise NotFittedError(
                f"This DecisionPaths instance is not fitted yet, so {what} is not available. Call "
                "fit(inputs, labels) first."
            )

    # ------------------------------------------------------------------------------------------ fitting

    def fit(
        self, inputs: Tensor | Mapping[str, Tensor], labels: Tensor | np.ndarray | Sequence[int] | None = None
    ) -> DecisionPaths:
        """Capture the levels' activations of ``inputs``, cluster each level, and assign every input.

        Parameters
        ----------
        inputs : Tensor of shape (N, ...), or dict of str to Tensor
            Moved to the model's device batch by batch. A dict (a tokenizer's output,
            :class:`~stepwise.core.inputs.KeywordInputs`) is passed as keyword arguments; with ``features="mean"``
            the features of its (N, T, D) token levels are each unit's mean over the real tokens.
        labels : Tensor, ndarray or sequence of int of shape (N,), optional
            The true classes; needed with ``top="label"``, else reported beside the predictions.

        Returns
        -------
        DecisionPaths
            ``self``, fitted.

        Raises
        ------
        ValueError
            Before any long computation: inputs with NaN or Inf, labels of another length or missing with
            ``top="label"``, an unknown level, levels out of order, ``time_dim`` on a level without one, more
            clusters than samples.
        """
        inputs, labels_, specs, top, ks, batch_size = self._prepare(inputs, labels)
        n = len(inputs)
        if self.algorithm == "minibatch":
            clusters, columns, predicted, inertia = self._fit_minibatch(inputs, specs, top, ks, batch_size)
        else:
            clusters, columns, predicted, inertia = self._fit_full(inputs, specs, top, ks, batch_size)
        cls = labels_ if self.top == "label" else predicted
        assignments = pd.DataFrame(columns)
        assignments[CLASS] = cls
        self._specs, self._top, self._clusters, self._batch_size = specs, top, clusters, batch_size
        self._input_shape = input_signature(inputs)
        self.levels_ = [spec.info.name for spec in specs]
        self.n_clusters_ = ks
        self.centroids_ = {name: c.centroids for name, c in clusters.items()}
        self.inertia_ = inertia
        self.predictions_ = predicted
        self.labels_ = labels_
        self.classes_ = np.unique(cls)
        self.n_inputs_ = n
        self.columns_ = list(assignments.columns)
        self.assignments_ = assignments
        return self

    def _prepare(self, inputs: object, labels: object) -> tuple:
        """Every check of :meth:`fit`, with one forward pass on the first two inputs."""
        inputs = self._check_inputs(inputs)
        n = len(inputs)
        labels_ = self._check_labels(labels, n)
        specs, top = self._resolve(inputs)
        ks = self._cluster_numbers(specs, n)
        batch_size = self.batch_size or auto_batch_size([spec.info for spec in specs] + [top], n)
        if self.algorithm == "minibatch":
            for spec in specs:
                if batch_size * spec.steps < ks[spec.info.name]:
                    raise ValueError(
                        f"algorithm='minibatch' initialises k-means from the first batch, whose "
                        f"{batch_size * spec.steps} samples of level {spec.info.name!r} are fewer than "
                        f"n_clusters={ks[spec.info.name]}: pass a larger batch_size."
                    )
        return inputs, labels_, specs, top, ks, batch_size

    def check(
        self, inputs: Tensor | Mapping[str, Tensor], labels: Tensor | np.ndarray | Sequence[int] | None = None
    ) -> list[str]:
        """Make every check of :meth:`fit` (one forward pass on the first two inputs) without fitting.

        Parameters
        ----------
        inputs, labels
            As for :meth:`fit`.

        Returns
        -------
        list of str
            The columns :meth:`fit` would give :attr:`assignments_`, bottom to top.

        Raises
        ------
        ValueError, TypeError
            As :meth:`fit` would, before its long work.
        """
        _, _, specs, _, _, _ = self._prepare(inputs, labels)
        columns: list[str] = []
        for spec in specs:
            name = spec.info.name
            columns += [name] if spec.time_dim is None else [time_column(name, t) for t in range(spec.steps)]
        return [*columns, CLASS]

    def _fit_full(self, inputs, specs, top, ks, batch_size):  # type: ignore[no-untyped-def]
        features, predicted = capture_features(
            self.model, inputs, specs, top, batch_size=batch_size, progress=self.progress
        )
        clusters: dict[str, LevelClusters] = {}
        per_level: dict[str, dict[str, np.ndarray]] = {}
        inertia: dict[str, float] = {}
        for spec in sorted(specs, key=lambda spec: spec.dim * spec.steps):  # smallest first: the largest alone at last
            name = spec.info.name
            x = features.pop(name)  # released once clustered
            steps = spec.steps
            samples = x.reshape(len(x) * steps, -1)
            index = np.repeat(np.arange(len(x)), steps)
            clusters[name], labels = fit_full(
                name, samples, ks[name], n_init=self.n_init, seed=self.seed, input_index=index
            )
            inertia[name] = float(clusters[name].estimator.inertia_)
            per_level[name] = self._columns(spec, labels.reshape(len(x), steps))
            del x, samples
        columns = {c: v for spec in specs for c, v in per_level[spec.info.name].items()}  # bottom to top
        return clusters, columns, predicted, inertia

    def _fit_minibatch(self, inputs, specs, top, ks, batch_size):  # type: ignore[no-untyped-def]
        estimators = {
            spec.info.name: new_minibatch(
                ks[spec.info.name], n_init=self.n_init, seed=self.seed, batch_size=batch_size * spec.steps
            )
            for spec in specs
        }

        def feed(start: int, batch: dict[str, Tensor]) -> None:
            for name, values in batch.items():
                x = values.cpu().numpy()
                estimators[name].partial_fit(x.reshape(-1, x.shape[-1]))

        capture_features(self.model, inputs, specs, top, batch_size=batch_size, progress=self.progress, consume=feed)
        n = len(inputs)
        raw = {spec.info.name: np.empty((n, spec.steps), dtype=np.int64) for spec in specs}
        sums = dict.fromkeys(raw, 0.0)

        def assign(start: int, batch: dict[str, Tensor]) -> None:
            for name, values in batch.items():
                x = values.cpu().numpy()
                flat = x.reshape(-1, x.shape[-1])
                ids = estimators[name].predict(flat)
                raw[name][start : start + len(x)] = ids.reshape(len(x), -1)
                sums[name] += squared_distances(flat, estimators[name].cluster_centers_, ids)

        _, predicted = capture_features(
            self.model, inputs, specs, top, batch_size=batch_size, progress=self.progress, consume=assign
        )
        clusters, columns = {}, {}
        for spec in specs:
            name = spec.info.name
            ids = raw[name].reshape(-1)
            index = np.repeat(np.arange(n), spec.steps)
            clusters[name] = finish_minibatch(name, estimators[name], ids, index)
            columns.update(self._columns(spec, clusters[name].order[raw[name]]))
        return clusters, columns, predicted, sums

    @staticmethod
    def _columns(spec: LevelFeatures, labels: np.ndarray) -> dict[str, np.ndarray]:
        """The assignments columns of one level from its ids (N, T)."""
        if spec.time_dim is None:
            return {spec.info.name: labels[:, 0].astype(np.int64)}
        return {time_column(spec.info.name, t): labels[:, t].astype(np.int64) for t in range(spec.steps)}

    def predict(
        self, inputs: Tensor | Mapping[str, Tensor], labels: Tensor | np.ndarray | Sequence[int] | None = None
    ) -> pd.DataFrame:
        """Assign new inputs to the fitted clusters (their nearest centroid at every level).

        Parameters
        ----------
        inputs : Tensor of shape (N, ...), or dict of str to Tensor
            As for :meth:`fit`; keyword inputs may be padded to another length.
        labels : Tensor, ndarray or sequence of int of shape (N,), optional
            Needed with ``top="label"``: they give the class column.

        Returns
        -------
        pandas.DataFrame of shape (N, n_columns)
            The columns of :attr:`assignments_`.
        """
        self._check_fitted("predict")
        inputs = self._check_inputs(inputs)
        labels_ = self._check_labels(labels, len(inputs))
        if input_signature(inputs) != self._input_shape:
            raise ValueError(
                f"inputs have shape {input_signature(inputs)} per input, but the model was fitted on inputs of shape "
                f"{self._input_shape}: pass inputs shaped as those given to fit."
            )
        features, predicted = capture_features(
            self.model, inputs, self._specs, self._top, batch_size=self._batch_size, progress=self.progress
        )
        columns: dict[str, np.ndarray] = {}
        for spec in self._specs:
            x = features.pop(spec.info.name)
            ids = self._clusters[spec.info.name].assign(x.reshape(len(x) * spec.steps, -1))
            columns.update(self._columns(spec, ids.reshape(len(x), spec.steps)))
        table = pd.DataFrame(columns)
        table[CLASS] = labels_ if self.top == "label" else predicted
        return table

    # ------------------------------------------------------------------------------------------ results

    def _column(self, name: object, what: str) -> str:
        if not isinstance(name, str) or name not in self.columns_:
            hint = unknown_name_message(
                "column", str(name), "the assignments", self.columns_, f"The columns are {self.columns_}."
            )
            raise ValueError(f"{what}: {hint}")
        return name

    def flows(self, lower: str, upper: str) -> pd.DataFrame:
        """F[a, b]: inputs in cluster ``a`` of column ``lower`` and in cluster ``b`` of column ``upper``.

        Parameters
        ----------
        lower, upper : str
            Columns of :attr:`assignments_` (a level, a time step ``"level@tT"``, or ``"class"``), ``lower``
            below ``upper``.

        Returns
        -------
        pandas.DataFrame of shape (n_flows, 3 + n_classes)
            ``lower_cluster``, ``upper_cluster``, ``count``, and a count column ``class_{c}`` per class of
            :attr:`classes_`; sorted by ``lower_cluster`` then ``upper_cluster``.
        """
        self._check_fitted("flows")
        lower, upper = self._column(lower, "lower"), self._column(upper, "upper")
        if self.columns_.index(lower) >= self.columns_.index(upper):
            raise ValueError(
                f"lower={lower!r} is not below upper={upper!r}: the columns, bottom to top, are {self.columns_}."
            )
        return flow_table(self.assignments_, lower, upper, [int(c) for c in self.classes_])

    def paths(self, cls: int | None = None) -> pd.DataFrame:
        """The decision paths (clusters bottom to top, then the class), their counts and coverage.

        Parameters
        ----------
        cls : int, optional
            Only the inputs of this class; ``coverage`` is then the share of that class.

        Returns
        -------
        pandas.DataFrame of shape (n_paths, 3)
            ``path`` (tuple of int), ``count``, ``coverage``; sorted by count, largest first, then by path.
        """
        self._check_fitted("paths")
        if cls is not None:
            if isinstance(cls, bool) or not isinstance(cls, numbers.Integral):
                raise TypeError(f"cls must be an int class or None; got {cls!r}.")
            if int(cls) not in set(self.classes_.tolist()):
                raise ValueError(f"No input has class {cls}: the classes are {self.classes_.tolist()}.")
            cls = int(cls)
        return path_table(self.assignments_, self.columns_, cls)

    def rare(self, max_fraction: float = 0.002, *, dominance: float = 0.9) -> pd.DataFrame:
        """Inputs on thin flows (at most ``max_fraction`` of all inputs), and those whose cluster at the last
        hidden column is dominated by another class than their prediction (the paper's Table 2).

        Parameters
        ----------
        max_fraction : float, default=0.002
        dominance : float, default=0.9
            A cluster is dominated by its most frequent class when that class holds at least this share of it.

        Returns
        -------
        pandas.DataFrame
            ``input``, ``level``, ``cluster``, ``count``, ``predicted``, ``label``, ``dominant``, ``reason``
            (see :func:`stepwise.paths.flows.rare_inputs`).
        """
        self._check_fitted("rare")
        fraction = check_float(max_fraction, "max_fraction", "DecisionPaths.rare", low=0.0, high=1.0)
        share = check_float(dominance, "dominance", "DecisionPaths.rare", low=0.5, high=1.0)
        return rare_inputs(
            self.assignments_, self.columns_, self.predictions_, self.labels_, max_fraction=fraction, dominance=share
        )

    def graph(self) -> PathsGraph:
        """The clusters and flows as a layered graph of kind ``"paths"``.

        Returns
        -------
        stepwise.graphs.paths.PathsGraph
            Nodes ``"column:cluster"`` with ``size`` and one ``class_{c}`` count per class; edges upper -> lower
            between consecutive columns with ``count`` and ``frequency`` = count / N.
        """
        self._check_fitted("graph")
        from stepwise.graphs.paths import PathsGraph

        attrs = {
            "model": type(self.model).__name__,
            "top": self.top,
            "features": self.features,
            "algorithm": self.algorithm,
            "seed": -1 if self.seed is None else self.seed,
            "version": __version__,
        }
        return PathsGraph.from_assignments(self.assignments_, self.columns_, [int(c) for c in self.classes_], **attrs)

    def plot_sankey(self, path: str | PathLike | None = None, *, classes: Sequence[int] | None = None) -> Figure | None:
        """Draw the flows as a Sankey diagram: clusters as nodes, one column per level, the class last.

        Parameters
        ----------
        path : str or path-like, optional
            ``*.html``: an interactive plotly page with its JavaScript inlined (works offline); returns None.
            Any other suffix: the matplotlib figure is saved there (atomically) and returned.
        classes : sequence of int, optional
            Only the flows of these classes.

        Returns
        -------
        matplotlib.figure.Figure or None
        """
        self._check_fitted("plot_sankey")
        from .sankey import check_classes, sankey_figure, write_sankey_html

        chosen = check_classes(classes, self.classes_)
        if path is not None and str(path).lower().endswith((".html", ".htm")):
            write_sankey_html(self.assignments_, self.columns_, chosen, path, title=self._title())
            return None
        figure = sankey_figure(self.assignments_, self.columns_, chosen, title=self._title())
        if path is not None:
            from stepwise.core.io import save_figure

            save_figure(figure, path)  # closes the figure in pyplot; the object stays usable
        return figure

    def _title(self) -> str:
        return f"Decision paths of {type(self.model).__name__} ({self.n_inputs_} inputs)"

    def __repr__(self) -> str:
        shown = ["levels", "n_clusters", "n_init", "seed", "features", "top", "time_dim", "algorithm", "batch_size"]
        defaults: dict[str, Any] = {
            "levels": None,
            "n_clusters": 10,
            "n_init": 10,
            "seed": 0,
            "features": "flatten",
            "top": "predicted",
            "time_dim": None,
            "algorithm": "full",
            "batch_size": None,
        }
        parts = [f"{name}={getattr(self, name)!r}" for name in shown if getattr(self, name) != defaults[name]]
        return f"DecisionPaths({type(self.model).__name__}{''.join(', ' + p for p in parts)})"
