"""Fitting the mixture of every analysed level: the paper's initialisation, EM in lockstep over streamed batches
(the generative loss, Eq. 7), and the discriminative loss (Eq. 8) by Adam.

All levels learn from the same passes over the inputs: each EM iteration streams the columns once
(:class:`~stepwise.inference.columns.ColumnSource`), every level that has not converged adds its batch statistics,
and each level is updated at the end of the pass. A level stops when its mean log-likelihood per column changes by
less than ``tol`` (scikit-learn's criterion) or after ``max_iter`` iterations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .columns import ColumnSource, Level, count_columns, real_columns
from .gmm import DiagonalGMM, EMStatistics, em_step_statistics, em_update

__all__ = [
    "MIN_STD_FRACTION",
    "VARIANCE_COLUMNS",
    "FitReport",
    "fit_discriminative",
    "fit_generative",
    "initial_gmms",
    "pooled",
]

#: Columns whose per-dimension variance initialises every component (the paper: 1,000 random examples).
VARIANCE_COLUMNS = 1000
#: The default ``min_std``: this fraction of the level's typical standard deviation (the root of the mean
#: per-dimension variance of the :data:`VARIANCE_COLUMNS` initial columns).
MIN_STD_FRACTION = 1e-3
_SMALLEST_VAR = 1e-12


@dataclass
class FitReport:
    """What fitting did, per level: iterations run, whether it converged, the mean log-likelihood per column after
    each iteration (generative), the cross-entropy per epoch (discriminative)."""

    n_iter: dict[str, int] = field(default_factory=dict)
    converged: dict[str, bool] = field(default_factory=dict)
    log_likelihood: dict[str, list[float]] = field(default_factory=dict)
    cross_entropy: dict[str, list[float]] = field(default_factory=dict)


def pooled(posteriors: Tensor, mask: Tensor | None) -> Tensor:
    """Each input's word histogram: its posteriors (B, P, K) averaged over the positions, or over the real tokens of
    ``mask`` (B, P); shape (B, K)."""
    if mask is None:
        return posteriors.mean(1)
    weights = mask.to(posteriors.dtype)
    return (posteriors * weights[:, :, None]).sum(1) / weights.sum(1, keepdim=True)


def _draw(total: int, k: int, generator: torch.Generator) -> Tensor:
    """``k`` distinct flat column indices out of ``total``, in random order."""
    if total <= 1 << 24:
        return torch.randperm(total, generator=generator)[:k]
    chosen = torch.unique(torch.randint(total, (2 * k + 16,), generator=generator))
    return chosen[torch.randperm(len(chosen), generator=generator)][:k]


def initial_gmms(
    source: ColumnSource,
    levels: Sequence[Level],
    ks: Mapping[str, int],
    generator: torch.Generator,
    min_std: float | None,
) -> tuple[dict[str, DiagonalGMM], dict[str, float]]:
    """The paper's start (Sec. 4): means from K random columns, every variance from the per-dimension variance of
    1,000 random columns, weights 1/K; and each level's variance floor.

    Returns
    -------
    gmms : dict of str to DiagonalGMM
    floors : dict of str to float
        ``min_std ** 2``, or by default ``(MIN_STD_FRACTION * typical std) ** 2``.
    """
    wanted = {}
    for level in levels:
        total = count_columns(level, source.inputs)
        wanted[level.name] = (
            _draw(total, ks[level.name], generator),
            _draw(total, min(VARIANCE_COLUMNS, total), generator),
        )
    picked: dict[str, list[Tensor]] = {}  # the gathered columns, (K, D) and (V, D)
    found: dict[str, list[list[tuple[Tensor, Tensor]]]] = {name: [[], []] for name in wanted}
    seen = dict.fromkeys(wanted, 0)  # columns of the batches before, per level
    for start, batch in source.batches():
        for level in levels:
            columns = batch[level.name]
            flat = real_columns(level, columns, source.mask(start, len(columns)))
            low = seen[level.name]
            high = seen[level.name] = low + len(flat)
            for j, index in enumerate(wanted[level.name]):
                inside = ((index >= low) & (index < high)).nonzero().flatten()
                if len(inside):
                    found[level.name][j].append((inside, flat[(index[inside] - low).to(flat.device)].clone()))
    gmms, floors = {}, {}
    for level in levels:
        for parts in found[level.name]:
            order = torch.cat([p[0] for p in parts])
            values = torch.cat([p[1] for p in parts])
            picked.setdefault(level.name, []).append(values[torch.argsort(order).to(values.device)])
        means, sample = picked[level.name]
        variance = sample.var(dim=0, unbiased=False) if len(sample) > 1 else torch.ones_like(sample[0])
        typical = float(variance.mean())
        floor = min_std**2 if min_std is not None else (MIN_STD_FRACTION**2) * typical
        floor = max(floor, _SMALLEST_VAR)
        k = ks[level.name]
        variances = variance.clamp_min(floor).expand(k, -1).clone()
        gmms[level.name] = DiagonalGMM(means.clone(), variances, torch.full((k,), 1.0 / k, dtype=means.dtype,
                                                                             device=means.device))  # fmt: skip
        floors[level.name] = floor
    return gmms, floors


def fit_generative(
    source: ColumnSource,
    levels: Sequence[Level],
    gmms: dict[str, DiagonalGMM],
    floors: Mapping[str, float],
    *,
    max_iter: int,
    tol: float,
    report: FitReport,
) -> dict[str, DiagonalGMM]:
    """EM (Eq. 7) for every level in lockstep, one pass over the columns per iteration.

    Returns
    -------
    dict of str to DiagonalGMM
        The fitted mixtures; ``report`` records the iterations and the log-likelihood after each.
    """
    active = [level for level in levels]
    previous = {level.name: -float("inf") for level in levels}
    for level in levels:
        report.n_iter[level.name], report.converged[level.name] = 0, False
        report.log_likelihood[level.name] = []
    for _ in range(max_iter):
        if not active:
            break
        stats = {level.name: EMStatistics.zeros(gmms[level.name]) for level in active}
        for start, batch in source.batches():
            for level in active:
                columns = batch[level.name]
                flat = real_columns(level, columns, source.mask(start, len(columns)))
                em_step_statistics(gmms[level.name], flat, stats[level.name])
        still = []
        for level in active:
            name = level.name
            mean = stats[name].log_likelihood / stats[name].count  # under the parameters before this update
            gmms[name] = em_update(stats[name], floors[name])
            report.n_iter[name] += 1
            report.log_likelihood[name].append(mean)
            if abs(mean - previous[name]) < tol:
                report.converged[name] = True
            else:
                still.append(level)
            previous[name] = mean
        active = still
    return gmms


class _Discriminative(nn.Module):
    """A level's mixture as trainable parameters, and the linear classifier of its pooled posteriors (Eq. 8)."""

    def __init__(self, gmm: DiagonalGMM, n_classes: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.means = nn.Parameter(gmm.means.clone() / scale)  # in units of the level's typical std
        self.log_var = nn.Parameter(gmm.variances.log().clone())
        self.logits = nn.Parameter(gmm.weights.clamp_min(1e-30).log().clone())
        self.classifier = nn.Linear(gmm.n_components, n_classes).to(gmm.means)
        nn.init.zeros_(self.classifier.weight)  # no randomness: the same start on every run
        nn.init.zeros_(self.classifier.bias)

    def gmm(self, floor: float) -> DiagonalGMM:
        variances = self.log_var.exp().clamp_min(floor)
        return DiagonalGMM(self.means * self.scale, variances, torch.softmax(self.logits, 0))

    def forward(self, columns: Tensor, floor: float, mask: Tensor | None) -> Tensor:
        b, p, d = columns.shape
        posteriors = self.gmm(floor).posteriors(columns.reshape(-1, d)).reshape(b, p, -1)
        return self.classifier(pooled(posteriors, mask))  # the word histogram by global average pooling


def fit_discriminative(
    source: ColumnSource,
    levels: Sequence[Level],
    gmms: dict[str, DiagonalGMM],
    floors: Mapping[str, float],
    labels: Tensor,
    n_classes: int,
    *,
    epochs: int,
    report: FitReport,
    lr: float = 1e-2,
) -> dict[str, DiagonalGMM]:
    """Train every level's mixture with the discriminative loss (Eq. 8): posteriors pooled into a word histogram,
    a linear softmax classifier on it, cross-entropy minimised by Adam over the mixture and the classifier
    together; the network stays frozen (its activations are data). Starts from ``gmms``.

    Returns
    -------
    dict of str to DiagonalGMM
        The trained mixtures; ``report.cross_entropy`` holds the mean loss of every epoch.
    """
    modules = {}
    for level in levels:
        gmm = gmms[level.name]
        modules[level.name] = _Discriminative(gmm, n_classes, float(gmm.variances.mean().sqrt().clamp_min(1e-12)))
    optimisers = {name: torch.optim.Adam(m.parameters(), lr=lr) for name, m in modules.items()}
    for level in levels:
        report.cross_entropy[level.name] = []
    targets = labels.to(next(iter(modules.values())).means.device)
    with torch.enable_grad():
        for _ in range(epochs):
            totals = dict.fromkeys(modules, 0.0)
            for start, batch in source.batches():
                y = targets[start : start + len(next(iter(batch.values())))]
                for level in levels:
                    name = level.name
                    optimisers[name].zero_grad()
                    mask = source.mask(start, len(y)) if level.tokens else None
                    loss = nn.functional.cross_entropy(modules[name](batch[name], floors[name], mask), y)
                    loss.backward()
                    optimisers[name].step()
                    totals[name] += float(loss.detach()) * len(y)
            for name in modules:
                report.cross_entropy[name].append(totals[name] / source.n_inputs)
    out = {}
    for level in levels:
        with torch.no_grad():
            trained = modules[level.name].gmm(floors[level.name])
            out[level.name] = DiagonalGMM(*(t.detach().clone() for t in trained.tensors()))
    return out
