"""Diagonal-covariance Gaussian mixtures in torch: log densities, posteriors, and EM streamed over batches.

The model of one level (paper 001, Sec. 3.2): every column x (a spatial position's channel vector of a conv level,
or the vector of a dense level) arises from a mixture of K diagonal Gaussians,

    p(x) = sum_k pi_k N(x | mu_k, diag(sigma_k^2)).

:func:`em_step_statistics` accumulates, over one batch of columns, the sufficient statistics of an EM step
(responsibility sums, first and second moments, the log-likelihood); :func:`em_update` turns them into the new
parameters. Streaming a level's columns batch by batch through the first and calling the second once per pass is
EM on all columns with memory bounded by the batch. The updates are those of
``sklearn.mixture.GaussianMixture(covariance_type="diag")``, except that the variance is floored at
``min_var`` where scikit-learn adds ``reg_covar`` to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["DiagonalGMM", "EMStatistics", "class_gmm", "em_step_statistics", "em_update", "log_gaussians"]

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class DiagonalGMM:
    """A mixture of K diagonal Gaussians in D dimensions.

    Attributes
    ----------
    means : Tensor of shape (K, D)
    variances : Tensor of shape (K, D)
        Positive.
    weights : Tensor of shape (K,)
        The mixing proportions pi, summing to 1.
    """

    means: Tensor
    variances: Tensor
    weights: Tensor

    @property
    def n_components(self) -> int:
        """K."""
        return int(self.means.shape[0])

    @property
    def stds(self) -> Tensor:
        """The standard deviations, shape (K, D)."""
        return self.variances.sqrt()

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> DiagonalGMM:
        """The same mixture on another device or in another dtype."""
        return DiagonalGMM(*(t.to(device=device, dtype=dtype or t.dtype) for t in self.tensors()))

    def tensors(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(means, variances, weights)``."""
        return self.means, self.variances, self.weights

    def log_joint(self, x: Tensor) -> Tensor:
        """log pi_k + log N(x | mu_k, sigma_k^2) for every column and component.

        Parameters
        ----------
        x : Tensor of shape (M, D)

        Returns
        -------
        Tensor of shape (M, K)
        """
        return log_gaussians(x, self.means, self.variances) + self.weights.clamp_min(1e-300).log()

    def log_likelihood(self, x: Tensor) -> Tensor:
        """log p(x) of every column, shape (M,)."""
        return torch.logsumexp(self.log_joint(x), dim=1)

    def posteriors(self, x: Tensor) -> Tensor:
        """P(h = k | x) of every column, shape (M, K); rows sum to 1."""
        return torch.softmax(self.log_joint(x), dim=1)


def log_gaussians(x: Tensor, means: Tensor, variances: Tensor) -> Tensor:
    """log N(x_m | mu_k, diag(var_k)) for all m, k, by two matrix products (no (M, K, D) tensor).

    Parameters
    ----------
    x : Tensor of shape (M, D)
    means, variances : Tensor of shape (K, D)

    Returns
    -------
    Tensor of shape (M, K)
    """
    precision = 1.0 / variances
    constant = -0.5 * (x.shape[1] * _LOG_2PI + variances.log().sum(1) + (means * means * precision).sum(1))
    quadratic = (x * x) @ precision.T - 2.0 * (x @ (means * precision).T)
    return constant - 0.5 * quadratic


def class_gmm(n_classes: int, *, std: float = 0.1, dtype: torch.dtype = torch.float32) -> DiagonalGMM:
    """The paper's fixed mixture of the class output: component m has the one-hot mean e_m and std ``std``.

    Word m of the top level is then "predicted class m": with equal variances and weights, the component of the
    highest posterior is the nearest one-hot vector, the class of the largest probability.
    """
    eye = torch.eye(n_classes, dtype=dtype)
    return DiagonalGMM(eye, torch.full_like(eye, std * std), torch.full((n_classes,), 1.0 / n_classes, dtype=dtype))


@dataclass
class EMStatistics:
    """Sums over the columns seen so far: ``count`` (M), ``resp`` (K,), ``first`` (K, D), ``second`` (K, D),
    ``log_likelihood`` (the sum of log p(x) under the current parameters, float64); and the E-step's work arrays,
    (M, 2D) and (M, K) for the largest batch seen, kept between batches (allocating them afresh for every batch
    costs more than the arithmetic in them)."""

    count: int
    resp: Tensor
    first: Tensor
    second: Tensor
    log_likelihood: float
    work: tuple[Tensor, Tensor] | None = field(default=None, repr=False, compare=False)

    def workspace(self, m: int, d: int, k: int, like: Tensor) -> tuple[Tensor, Tensor]:
        """Views of shape (m, 2d) and (m, k) into the work arrays, grown when a batch is larger."""
        if self.work is None or self.work[0].shape[0] < m or self.work[0].dtype != like.dtype:
            self.work = (like.new_empty(m, 2 * d), like.new_empty(m, k))
        return self.work[0][:m], self.work[1][:m]

    @classmethod
    def zeros(cls, gmm: DiagonalGMM) -> EMStatistics:
        """Empty statistics for ``gmm``'s shapes, device and dtype."""
        k, d = gmm.means.shape
        like = gmm.means
        return cls(0, like.new_zeros(k), like.new_zeros(k, d), like.new_zeros(k, d), 0.0)


def em_step_statistics(gmm: DiagonalGMM, x: Tensor, stats: EMStatistics) -> None:
    """The E-step on one batch of columns, added to ``stats`` in place.

    Parameters
    ----------
    gmm : DiagonalGMM
        The current parameters.
    x : Tensor of shape (M, D)
        Columns in the mixture's dtype, on its device.
    stats : EMStatistics
    """
    m, d = x.shape
    both, resp = stats.workspace(m, d, gmm.means.shape[0], x)
    both[:, :d] = x  # (M, 2D) = [x, x²]: one product for the E-step, one for the statistics
    torch.mul(x, x, out=both[:, d:])
    precision = 1.0 / gmm.variances
    constant = -0.5 * (d * _LOG_2PI + gmm.variances.log().sum(1) + (gmm.means**2 * precision).sum(1))
    constant = constant + gmm.weights.clamp_min(1e-300).log()
    torch.addmm(constant[None], both, torch.cat([gmm.means * precision, -0.5 * precision], dim=1).T, out=resp)
    top = resp.amax(dim=1, keepdim=True)  # the joint log-probabilities, turned into responsibilities in place:
    resp.sub_(top).exp_()  # one exponential serves the normaliser and the responsibilities
    total = resp.sum(dim=1, keepdim=True)
    resp.div_(total)
    norm = top + total.log()
    moments = resp.T @ both
    stats.count += x.shape[0]
    stats.resp += resp.sum(0)
    stats.first += moments[:, :d]
    stats.second += moments[:, d:]
    stats.log_likelihood += float(norm.sum(dtype=torch.float64))


def em_update(stats: EMStatistics, min_var: Tensor | float) -> DiagonalGMM:
    """The M-step: the parameters that maximise the expected log-likelihood of the statistics.

    Parameters
    ----------
    stats : EMStatistics
        From :func:`em_step_statistics` over all columns.
    min_var : float or Tensor of shape (D,)
        The variance floor.

    Returns
    -------
    DiagonalGMM
        ``pi_k = N_k / M``, ``mu_k = S1_k / N_k``, ``var_k = max(S2_k / N_k - mu_k^2, min_var)``; as scikit-learn,
        ``N_k`` gets ten machine epsilons, so that a component no column chose stays finite.
    """
    eps = torch.finfo(stats.resp.dtype).eps
    nk = stats.resp + 10 * eps
    means = stats.first / nk[:, None]
    variances = stats.second / nk[:, None] - means * means
    floor = torch.as_tensor(min_var, dtype=variances.dtype, device=variances.device)
    variances = torch.maximum(variances, floor.expand_as(variances))
    return DiagonalGMM(means, variances, nk / nk.sum())
