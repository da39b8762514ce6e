"""InferenceGraphs: visual words per level, their transitions through receptive fields, and the words that explain
a class or an image (paper 001, "Inference Graphs for CNN Interpretation")."""

from __future__ import annotations


from collections.abc import Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from stepwise._version import __version__
from stepwise.core.hooks import model_device_dtype
from stepwise.core.inputs import Batch, check_batch, input_signature
from stepwise.core.validation import check_bool, check_float, check_int, check_option, unknown_name_message

from .checks import (
    NotFittedError,
    check_labels,
    check_levels,
    check_like,
    check_seed,
    check_target,
    numbers_of_words,
    resolve,
)
from .columns import CACHE_BYTES, ColumnSource, Level, auto_batch_size, positions_of
from .cooccurrence import cooccurrence_counts, transition_table
from .fields import field_index, input_boxes, receptive_field
from .gmm import DiagonalGMM, class_gmm
from .graph_building import build_graph
from .hmm import HMM, rectified_log_emissions, soft_transitions, viterbi_paths
from .training import FitReport, fit_discriminative, fit_generative, initial_gmms, pooled
from .typical import Representative, TypicalColumns, log_odds

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from stepwise.graphs.inference import InferenceGraph

__all__ = ["LOSSES", "InferenceGraphs", "NotFittedError"]

_OWNER = "InferenceGraphs"
#: The choices of the ``loss`` option.
LOSSES = ("generative", "discriminative")


class InferenceGraphs:
    """Inference graphs of a CNN or an MLP (paper 001).

    Every analysed level's activity is modelled by a Gaussian mixture with diagonal covariances: each spatial column
    of a conv level (N, C, H, W), each real token's vector of a token level (N, T, D) of keyword inputs (a
    transformer's; padding is no column), or the vector of a dense level (N, D), belongs to one of K visual words.
    On top,
    the class output (``softmax``) has the paper's fixed mixture, word m = "predicted class m". Words of consecutive
    levels are related by their co-occurrence inside receptive fields (Eq. 4), and Algorithm 1 picks, level by level
    downward, the words that best explain the chosen words above (Eq. 16).

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning class scores of shape (N, C), C >= 2; analysed in eval mode, never changed.
    levels : sequence of str, optional
        The levels to model, bottom to top; ``softmax`` is added on top when missing. By default
        :func:`stepwise.default_levels`.
    n_words : int or dict of str to int, default=50
        K of every modelled level, or one K per level below the top (the top has one word per class).
    loss : {'generative', 'discriminative'}, default='generative'
        ``generative``: EM on the negative log-likelihood (Eq. 7). ``discriminative``: the generative fit, then Adam
        on the cross-entropy of a linear classifier of each input's pooled posteriors (Eq. 8); needs labels.
    min_std : float, optional
        The floor of every standard deviation. By default ``1e-3`` times the level's typical standard deviation
        (the root of the mean per-channel variance of 1,000 random columns).
    max_iter : int, default=100
        EM iterations (and Adam epochs of the discriminative loss).
    tol : float, default=1e-4
        EM stops when the mean log-likelihood per column changes by less.
    seed : int, numpy.random.Generator, torch.Generator or None, default=0
        Draws the initial columns; the same seed gives the same words.
    batch_size : int, optional
        Inputs per forward pass; by default about 64 MiB of columns.
    device : str or torch.device, optional
        Where the mixtures are computed; the model's device by default.
    progress : bool, default=False
        Show progress bars.

    Examples
    --------
    >>> import torch, stepwise
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    >>> ig = stepwise.InferenceGraphs(net, n_words=3, max_iter=10).fit(torch.randn(60, 4))
    >>> ig.levels_
    ['1', 'softmax']
    >>> ig.words(torch.randn(5, 4))["1"].shape
    torch.Size([5])
    """

    def __init__(
        self,
        model: nn.Module,
        levels: Sequence[str] | None = None,
        *,
        n_words: int | Mapping[str, int] = 50,
        loss: str = "generative",
        min_std: float | None = None,
        max_iter: int = 100,
        tol: float = 1e-4,
        seed: int | np.random.Generator | torch.Generator | None = 0,
        batch_size: int | None = None,
        device: str | torch.device | None = None,
        progress: bool = False,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
        self.model = model
        self.levels = check_levels(levels)
        if isinstance(n_words, Mapping):
            if not n_words:
                raise ValueError("n_words is an empty dict: give one K per level, or one int for every level.")
            self.n_words: int | dict[str, int] = {
                name: check_int(k, f"n_words[{name!r}]", _OWNER, low=2) for name, k in n_words.items()
            }
        else:
            self.n_words = check_int(n_words, "n_words", _OWNER, low=2)
        self.loss = check_option(loss, "loss", _OWNER, LOSSES)
        self.min_std = None if min_std is None else check_float(min_std, "min_std", _OWNER, low=0.0, closed_low=False)
        self.max_iter = check_int(max_iter, "max_iter", _OWNER, low=1)
        self.tol = check_float(tol, "tol", _OWNER, low=0.0)
        self.seed = check_seed(seed, _OWNER)
        self.batch_size = None if batch_size is None else check_int(batch_size, "batch_size", _OWNER, low=1)
        self.device = None if device is None else torch.device(device)
        self.progress = check_bool(progress, "progress", _OWNER)

    # ------------------------------------------------------------------------------------------ helpers

    def _check_fitted(self, what: str) -> None:
        if not hasattr(self, "gmms_"):
            raise NotFittedError(
                f"This InferenceGraphs instance is not fitted yet, so {what} is not available. Call "
                "fit(inputs, labels) first."
            )

    def _level(self, name: object, what: str = "level") -> Level:
        for level in self._levels:
            if level.name == name:
                return level
        fix = f"The modelled levels are {self.levels_}."
        raise ValueError(unknown_name_message("level", str(name), f"this {_OWNER}", self.levels_, fix))

    def _pair(self, upper: object, lower: object) -> tuple[Level, Level]:
        up, low = self._level(upper), self._level(lower)
        i, j = self.levels_.index(up.name), self.levels_.index(low.name)
        if i != j + 1:
            raise ValueError(
                f"upper={up.name!r} and lower={low.name!r} are not consecutive levels: transitions join a level and "
                f"the one just below it. The levels, bottom to top, are {self.levels_}."
            )
        return up, low

    def _source(self, inputs: Batch, levels: Sequence[Level], label: str, *, passes: int = 1) -> ColumnSource:
        """Columns of ``inputs``, kept in memory after the first pass when read more than once (and they fit)."""
        bar = label if self.progress else None
        return ColumnSource(self.model, inputs, levels, batch_size=self._batch_size, device=self._model_device,
                            dtype=self._dtype, progress=bar, cache_bytes=CACHE_BYTES if passes > 1 else 0,
                            target=self._device)  # fmt: skip

    def _checked(self, inputs: object, method: str, what: str = "inputs") -> Batch:
        self._check_fitted(method)
        return check_like(check_batch(inputs, self.model, what), self._signature, what, "the inputs given to fit")

    def _assign(
        self, level: Level, columns: Tensor, mask: Tensor | None, *, keys: bool = False
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Posteriors (B, P, K), words (B, P) and, with ``keys``, the log-odds keys (B, P) of a batch of columns;
        on a token level with a mask (B, P), the padding has posteriors 0, word -1 and key -inf."""
        b, p, d = columns.shape
        joint = self.gmms_[level.name].log_joint(columns.reshape(-1, d).to(self._device))
        posteriors = torch.softmax(joint, dim=1)
        words = posteriors.argmax(1)
        key = log_odds(joint, words).reshape(b, p) if keys else None
        posteriors, words = posteriors.reshape(b, p, -1), words.reshape(b, p)
        if level.tokens and mask is not None:
            padding = ~mask.to(words.device)
            posteriors = posteriors.masked_fill(padding[:, :, None], 0.0)
            words = words.masked_fill(padding, -1)
            key = None if key is None else key.masked_fill(padding, float("-inf"))
        return posteriors, words, key

    def _shaped(self, level: Level, values: Tensor) -> Tensor:
        """(N, P, ...) -> (N, ..., *spatial) for conv levels, (N, T, ...) for token levels, (N, ...) for dense
        levels."""
        if level.dense:
            return values[:, 0]
        if level.tokens:
            return values
        moved = values.movedim(1, -1) if values.dim() == 3 else values
        return moved.reshape(*moved.shape[:-1], *level.spatial)

    # ------------------------------------------------------------------------------------------ fitting

    def fit(self, inputs: Any, labels: Any = None, *, validation: Any = None) -> InferenceGraphs:
        """Fit the mixtures on ``inputs`` and count the transitions on ``validation``.

        Parameters
        ----------
        inputs : Tensor of shape (N, ...), or dict of tensors (N, T, ...)
            The training inputs of the mixtures; a dict (a tokenizer's output) is passed to the model as keyword
            arguments, and its token mask (``attention_mask``, see :class:`~stepwise.core.inputs.KeywordInputs`)
            keeps the padding out of every token level.
        labels : Tensor or sequence of int of shape (N,), optional
            Class indices; needed by ``loss='discriminative'``.
        validation : Tensor of shape (N_V, ...), or dict of tensors, optional
            The inputs of the co-occurrence tables (Eq. 4) and the representatives; ``inputs`` by default. Token
            ids may have another length T than those of ``inputs``.

        Returns
        -------
        InferenceGraphs
            ``self``, fitted.

        Raises
        ------
        ValueError
            Before the long work: NaN or Inf inputs, validation inputs of another shape, missing labels for the
            discriminative loss, an unknown level, fewer columns than words.
        """
        x = check_batch(inputs, self.model, "inputs")
        y = check_labels(labels, len(x))
        if self.loss == "discriminative" and y is None:
            raise ValueError(
                "loss='discriminative' trains a classifier of the word histograms, so it needs labels: pass "
                "fit(inputs, labels), or use loss='generative'."
            )
        v = x if validation is None else check_batch(validation, self.model, "validation")
        check_like(v, input_signature(x), "validation inputs", "the training inputs")
        model_device, dtype = model_device_dtype(self.model)
        self._model_device, self._dtype = model_device, dtype or torch.float32
        self._device = self.device or model_device
        levels, n_classes = resolve(self.model, x, self.levels)
        if y is not None and int(y.max()) >= n_classes:
            raise ValueError(
                f"The labels run up to {int(y.max())}, but the model scores {n_classes} classes (0 to "
                f"{n_classes - 1}): pass labels that index the model's classes."
            )
        ks = numbers_of_words(self.n_words, levels, x, n_classes)
        hidden = [level for level in levels if not level.fixed]
        self._batch_size = self.batch_size or auto_batch_size(levels, torch.empty((), dtype=self._dtype).element_size())
        self._levels, self._input_shape, self._signature = levels, tuple(x.shape[1:]), input_signature(x)
        generator = torch.Generator().manual_seed(self.seed)
        source = self._source(x, hidden, "columns", passes=self.max_iter + 1)
        report = FitReport()
        gmms, floors = initial_gmms(source, hidden, ks, generator, self.min_std)
        gmms = {name: g.to(self._device) for name, g in gmms.items()}
        gmms = fit_generative(source, hidden, gmms, floors, max_iter=self.max_iter, tol=self.tol, report=report)
        if self.loss == "discriminative":
            assert y is not None
            gmms = fit_discriminative(source, hidden, gmms, floors, y, n_classes, epochs=self.max_iter, report=report)
        gmms[levels[-1].name] = class_gmm(n_classes, dtype=self._dtype).to(self._device)
        self.gmms_: dict[str, DiagonalGMM] = gmms
        self.levels_ = [level.name for level in levels]
        self.token_levels_ = [level.name for level in levels if level.tokens]  # positions are tokens (N, T, D)
        self.n_words_ = {level.name: self.gmms_[level.name].n_components for level in levels}
        self.n_classes_ = n_classes
        self.report_, self.n_iter_ = report, dict(report.n_iter)
        self._fit_transitions(v)
        self.hmm_ = self._fit_hmm(x) if all(level.dense for level in levels) else None
        return self

    def _words_of(self, inputs: Batch, label: str, typical: dict[str, TypicalColumns] | None = None) -> dict:
        """The words of every level of ``inputs``: {level: LongTensor (N, P)} on the CPU, -1 at padding."""
        words = {level.name: torch.empty(len(inputs), positions_of(level, inputs), dtype=torch.int64)
                 for level in self._levels}  # fmt: skip
        source = self._source(inputs, self._levels, label)
        for start, batch in source.batches():
            mask = source.mask(start, len(next(iter(batch.values()))))
            for level in self._levels:
                _, w, keys = self._assign(level, batch[level.name], mask, keys=typical is not None)
                words[level.name][start : start + len(w)] = w.cpu()
                if typical is not None and keys is not None:
                    typical[level.name].add(w, keys, start)
        return words

    def _field_indices(self, inputs: Batch) -> dict[tuple[str, str], np.ndarray]:
        """R(p) of every pair of levels as :func:`field_index` lists, for inputs of this many tokens (the positions
        of token levels)."""
        width = tuple(inputs.shape[1:2]) if any(level.tokens for level in self._levels) else ()
        if width not in self._indices:
            example = inputs[:1].to(self._model_device)
            fields = {(up.name, low.name): receptive_field(self.model, example, low, up)
                      for low, up in zip(self._levels[:-1], self._levels[1:])}  # fmt: skip
            self._indices[width] = {key: field_index(field) for key, field in fields.items()}
            if not self.fields_:
                self.fields_.update(fields)  # those of the validation inputs, the first asked for
        return self._indices[width]

    def _fit_transitions(self, validation: Batch) -> None:
        self._indices: dict[tuple[int, ...], dict[tuple[str, str], np.ndarray]] = {}
        self.fields_: dict[tuple[str, str], np.ndarray] = {}
        index = self._field_indices(validation)
        self._boxes = input_boxes(self.model, validation[:1].to(self._model_device), self._levels)
        self._typical = {level.name: TypicalColumns(self.n_words_[level.name]) for level in self._levels}
        self.validation_words_ = self._words_of(validation, "validation", self._typical)
        self._validation = validation
        self.cooccurrence_: dict[tuple[str, str], np.ndarray] = {}
        for low, up in zip(self._levels[:-1], self._levels[1:]):
            key = (up.name, low.name)
            self.cooccurrence_[key] = cooccurrence_counts(
                self.validation_words_[up.name], self.validation_words_[low.name], index[key],
                self.n_words_[up.name], self.n_words_[low.name],
            )  # fmt: skip

    def _fit_hmm(self, inputs: Tensor) -> HMM:
        posteriors: dict[str, list[Tensor]] = {level.name: [] for level in self._levels}
        negative = dict.fromkeys(posteriors, False)
        for _, batch in self._source(inputs, self._levels, "hmm").batches():
            for level in self._levels:
                columns = batch[level.name]
                posteriors[level.name].append(self._assign(level, columns, None)[0][:, 0].cpu())
                negative[level.name] |= bool((columns < 0).any())
        gamma = [torch.cat(posteriors[level.name]) for level in self._levels]
        gmms = [self.gmms_[level.name] for level in self._levels]
        return HMM(
            levels=list(self.levels_),
            start=gamma[0].to(torch.float64).mean(0),
            transitions=[soft_transitions(up, low) for low, up in zip(gamma[:-1], gamma[1:])],
            means=[g.means.detach().cpu() for g in gmms],
            stds=[g.stds.detach().cpu() for g in gmms],
            rectified=[not negative[name] for name in self.levels_],
        )

    # ------------------------------------------------------------------------------------------ words

    def posteriors(self, inputs: Any) -> dict[str, Tensor]:
        """P(h_p = k | x_p) of every level.

        Parameters
        ----------
        inputs : Tensor of shape (N, ...), or dict of tensors (N, T, ...)

        Returns
        -------
        dict of str to Tensor
            Of shape (N, K, H, W) for a conv level, (N, T, K) for a token level (0 at padding), (N, K) for a dense
            level; on the CPU.
        """
        x = self._checked(inputs, "posteriors")
        parts: dict[str, list[Tensor]] = {name: [] for name in self.levels_}
        source = self._source(x, self._levels, "posteriors")
        for start, batch in source.batches():
            mask = source.mask(start, len(next(iter(batch.values()))))
            for level in self._levels:
                parts[level.name].append(self._assign(level, batch[level.name], mask)[0].cpu())
        return {level.name: self._shaped(level, torch.cat(parts[level.name])) for level in self._levels}

    def words(self, inputs: Any) -> dict[str, Tensor]:
        """The visual word of every column: the argmax of :meth:`posteriors`.

        Returns
        -------
        dict of str to LongTensor
            Of shape (N, H, W) for a conv level, (N, T) for a token level (-1 at padding), (N,) for a dense level.
        """
        x = self._checked(inputs, "words")
        found = self._words_of(x, "words")
        return {level.name: self._shaped(level, found[level.name]) for level in self._levels}

    # ------------------------------------------------------------------------------------------ tables

    def cooccurrence(self, upper: str, lower: str) -> np.ndarray:
        """N(k, k') of Eq. 4 over the validation inputs: upper word k with lower word k' in its receptive field.

        Returns
        -------
        ndarray of shape (K_upper, K_lower), int64
        """
        self._check_fitted("cooccurrence")
        up, low = self._pair(upper, lower)
        return self.cooccurrence_[(up.name, low.name)].copy()

    def transitions(self, upper: str, lower: str) -> np.ndarray:
        """P(h_lower = k' | h_upper = k) of Eq. 6; rows sum to 1 (0 for a word no validation column has).

        Returns
        -------
        ndarray of shape (K_upper, K_lower), float64
        """
        return transition_table(self.cooccurrence(upper, lower))

    def receptive_field(self, upper: str, lower: str) -> np.ndarray:
        """R(p) of every upper position: ``field[p, q]`` is True when lower position q enters upper position p.

        Returns
        -------
        ndarray of shape (upper positions, lower positions), bool
            Positions row-major over H·W; a dense level has 1 position.
        """
        self._check_fitted("receptive_field")
        up, low = self._pair(upper, lower)
        return self.fields_[(up.name, low.name)].copy()

    @property
    def validation_inputs_(self) -> Batch:
        """The validation inputs of the fit, (N_V, ...) or keyword inputs: :attr:`Representative.input` indexes
        them."""
        self._check_fitted("validation_inputs_")
        return self._validation

    def representatives(self, level: str, word: int, k: int = 6) -> list[Representative]:
        """The ``k`` most typical validation columns of a word (highest posterior), best first.

        Returns
        -------
        list of Representative
            Fewer than ``k`` when fewer columns have the word.
        """
        self._check_fitted("representatives")
        found = self._level(level)
        word = check_int(word, "word", "InferenceGraphs.representatives", low=0, high=self.n_words_[found.name] - 1)
        from .typical import KEEP

        k = check_int(k, "k", "InferenceGraphs.representatives", low=1, high=KEEP)
        out = []
        for i, q, key in self._typical[found.name].of(word, k):
            box = None if self._boxes is None else tuple(int(v) for v in self._boxes[found.name][q])
            out.append(Representative(i, q, box, key))  # type: ignore[arg-type]
        return out

    # ------------------------------------------------------------------------------------------ graphs

    def class_graph(self, inputs: Any, target: int, *, z: int = 3) -> InferenceGraph:
        """The inference graph of a class (Algorithm 1) over the given inputs the model predicts as ``target``.

        Parameters
        ----------
        inputs : Tensor of shape (N, ...), or dict of tensors (N, T, ...)
        target : int
            A class the model scores.
        z : int, default=3
            Words kept per level.

        Returns
        -------
        stepwise.graphs.inference.InferenceGraph
        """
        z = check_int(z, "z", "InferenceGraphs.class_graph", low=1)
        self._check_fitted("class_graph")
        target = check_target(target, self.n_classes_)
        x = self._checked(inputs, "class_graph")
        words = self._words_of(x, "class graph")
        chosen = (words[self.levels_[-1]][:, 0] == target).nonzero().flatten()
        if len(chosen) == 0:
            raise ValueError(
                f"The model predicts class {target} for none of the {len(x)} inputs: pass inputs of that class."
            )
        omega = {name: w[chosen] for name, w in words.items()}
        return self._graph(omega, self._field_indices(x), target, z, "class")

    def image_graph(self, x: Any, *, z: int = 3) -> InferenceGraph:
        """The inference graph of one input (Omega = {x}), for the class the model predicts for it.

        Parameters
        ----------
        x : Tensor of shape (1, ...) or one input without the batch dimension, or dict of tensors (1, T, ...)
        z : int, default=3

        Returns
        -------
        stepwise.graphs.inference.InferenceGraph
        """
        z = check_int(z, "z", "InferenceGraphs.image_graph", low=1)
        self._check_fitted("image_graph")
        if isinstance(x, Tensor) and tuple(x.shape) == self._input_shape:
            x = x[None]
        batch = self._checked(x, "image_graph", "x")
        if len(batch) != 1:
            raise ValueError(f"image_graph explains one input; got {len(batch)}. Pass one, or use class_graph.")
        words = self._words_of(batch, "image graph")
        return self._graph(words, self._field_indices(batch), int(words[self.levels_[-1]][0, 0]), z, "image")

    def _graph(
        self, omega: dict[str, Tensor], index: dict[tuple[str, str], np.ndarray], target: int, z: int, scope: str
    ) -> InferenceGraph:
        q = {}
        for low, up in zip(self.levels_[:-1], self.levels_[1:]):
            q[(up, low)] = cooccurrence_counts(omega[up], omega[low], index[(up, low)], self.n_words_[up],
                                               self.n_words_[low])  # fmt: skip
        sizes = {name: np.bincount(w[w >= 0].numpy(), minlength=self.n_words_[name]) for name, w in omega.items()}
        attrs = {"scope": scope, "model": type(self.model).__name__, "loss": self.loss, "version": __version__,
                 "seed": self.seed, "n_words": dict(self.n_words_)}  # fmt: skip
        return build_graph(self.levels_, target, z, q, self.cooccurrence_, sizes, len(omega[self.levels_[0]]), attrs)

    # ------------------------------------------------------------------------------------------ MLPs

    def _check_dense(self, what: str) -> HMM:
        self._check_fitted(what)
        if self.hmm_ is None:
            conv = [level.name for level in self._levels if not level.dense]
            raise ValueError(
                f"{what} needs dense levels (N, D) only, as in an MLP, but {conv} have positions (conv maps or "
                "tokens): model only dense levels (levels=[...]), or use class_graph and image_graph."
            )
        return self.hmm_

    def log_emissions(self, inputs: Any) -> dict[str, Tensor]:
        """log p(x^l | h^l = k) of every dense level under its rectified diagonal Gaussians.

        Returns
        -------
        dict of str to Tensor of shape (N, K), float64
        """
        hmm = self._check_dense("log_emissions")
        x = self._checked(inputs, "log_emissions")
        parts: dict[str, list[Tensor]] = {name: [] for name in self.levels_}
        for _, batch in self._source(x, self._levels, "emissions").batches():
            for i, level in enumerate(self._levels):
                columns = batch[level.name][:, 0].cpu().to(torch.float64)
                parts[level.name].append(rectified_log_emissions(
                    columns, hmm.means[i].to(torch.float64), hmm.stds[i].to(torch.float64), rectified=hmm.rectified[i]
                ))  # fmt: skip
        return {name: torch.cat(p) for name, p in parts.items()}

    def viterbi(self, inputs: Any) -> Tensor:
        """The MAP word path of every input under the level HMM (Eq. 17).

        Returns
        -------
        LongTensor of shape (N, n_levels)
            The word of each level, bottom to top.
        """
        hmm = self._check_dense("viterbi")
        emissions = self.log_emissions(inputs)
        paths, _ = viterbi_paths(hmm.start, hmm.transitions, [emissions[name] for name in self.levels_])
        return paths

    # ------------------------------------------------------------------------------------------ measures, figures

    def histograms(self, inputs: Any, level: str) -> Tensor:
        """Each input's word histogram at a level: its posteriors averaged over positions (global pooling), over
        the real tokens on a token level.

        Returns
        -------
        Tensor of shape (N, K), float64; rows sum to 1.
        """
        x = self._checked(inputs, "histograms")
        found = self._level(level)
        parts = []
        source = self._source(x, [found], "histograms")
        for start, batch in source.batches():
            columns = batch[found.name]
            mask = source.mask(start, len(columns)) if found.tokens else None
            parts.append(pooled(self._assign(found, columns, mask)[0], mask).cpu().to(torch.float64))
        return torch.cat(parts)

    def histogram_error(self, level: str, train: tuple[Tensor, Any], test: tuple[Tensor, Any]) -> float:
        """The test error of a linear (multinomial logistic) classifier of the word histograms (paper Fig. 4).

        Parameters
        ----------
        level : str
        train, test : (inputs, labels) pairs

        Returns
        -------
        float
            The fraction of test inputs misclassified.
        """
        self._check_fitted("histogram_error")
        self._level(level)
        from sklearn.linear_model import LogisticRegression

        (xa, ya), (xb, yb) = train, test
        xa, xb = (
            self._checked(xa, "histogram_error", "train inputs"),
            self._checked(xb, "histogram_error", "test inputs"),
        )
        la, lb = check_labels(ya, len(xa)), check_labels(yb, len(xb))
        if la is None or lb is None:
            raise ValueError("histogram_error needs labels for both the train and the test inputs.")
        ha, hb = self.histograms(xa, level).numpy(), self.histograms(xb, level).numpy()
        classifier = LogisticRegression(max_iter=2000).fit(ha, la.numpy())
        return float((classifier.predict(hb) != lb.numpy()).mean())

    def plot_graph(self, graph: InferenceGraph, path: str | PathLike | None = None, *, k: int = 4) -> Figure:
        """Draw an inference graph with each word's ``k`` most typical patches (paper Fig. 5); see
        :func:`stepwise.inference.figures.plot_inference_graph`."""
        self._check_fitted("plot_graph")
        from .figures import plot_inference_graph

        return plot_inference_graph(self, graph, path, k=k)

    def __repr__(self) -> str:
        shown = {"levels": None, "n_words": 50, "loss": "generative", "min_std": None, "max_iter": 100, "tol": 1e-4,
                 "seed": 0, "batch_size": None, "device": None}  # fmt: skip
        parts = [f"{name}={getattr(self, name)!r}" for name, default in shown.items() if getattr(self, name) != default]
        return f"InferenceGraphs({type(self.model).__name__}{''.join(', ' + p for p in parts)})"
