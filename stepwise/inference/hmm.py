"""The HMM over dense levels (paper 001, Sec. 3.1): rectified-Gaussian emissions, transitions, Viterbi in log space.

A dense level's observed activity x = max(y, 0) is a rectified diagonal Gaussian given its hidden word h = k: each
coordinate has the density N(x_d | mu_dk, sigma_dk) where x_d > 0 and the mass Phi(-mu_dk / sigma_dk) of the
normal below 0 where x_d = 0 (Eqs. 1-2). A level whose activity takes negative values (a tanh, the logits) is not
rectified, so its coordinates below 0 keep the plain density. The MAP path (Eq. 17) maximises
sum_l [log P(h^l | h^{l-1}) + log p(x^l | h^l)], with P(h^1 | h^0) = P(h^1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["HMM", "rectified_log_emissions", "soft_transitions", "viterbi_paths"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass
class HMM:
    """The fitted level HMM.

    Attributes
    ----------
    levels : list of str
        The dense levels, bottom to top.
    start : Tensor of shape (K_1,)
        P(h^1).
    transitions : list of Tensor of shape (K_l, K_{l-1})
        P(h^l = k | h^{l-1} = j), one per level above the first; each column sums to 1.
    means, stds : list of Tensor of shape (K_l, D_l)
        The parameters of the Gaussian before rectification.
    rectified : list of bool
        Whether each level's activity is rectified (never negative on the fitted inputs).
    """

    levels: list[str]
    start: Tensor
    transitions: list[Tensor]
    means: list[Tensor]
    stds: list[Tensor]
    rectified: list[bool]


def rectified_log_emissions(x: Tensor, means: Tensor, stds: Tensor, *, rectified: bool = True) -> Tensor:
    """log p(x | h = k) under a rectified diagonal Gaussian, for every input and word.

    Parameters
    ----------
    x : Tensor of shape (N, D)
    means, stds : Tensor of shape (K, D)
    rectified : bool, default=True
        ``False``: the plain diagonal Gaussian everywhere.

    Returns
    -------
    Tensor of shape (N, K)
    """
    z = (x[:, None, :] - means[None]) / stds[None]  # (N, K, D)
    density = -0.5 * z * z - stds.log()[None] - _HALF_LOG_2PI
    if not rectified:
        return density.sum(2)
    mass = torch.special.log_ndtr(-means / stds)[None].expand_as(density)  # log P(y <= 0)
    return torch.where((x > 0)[:, None, :], density, mass).sum(2)


def soft_transitions(upper: Tensor, lower: Tensor) -> Tensor:
    """P(h^l = k | h^{l-1} = j) from posteriors: sum_n g_nk g'_nj / sum_n g'_nj.

    Parameters
    ----------
    upper : Tensor of shape (N, K_l)
        Posteriors of the upper level.
    lower : Tensor of shape (N, K_{l-1})

    Returns
    -------
    Tensor of shape (K_l, K_{l-1})
        Columns sum to 1 (a uniform column for a lower word with no mass).
    """
    joint = upper.T.to(torch.float64) @ lower.to(torch.float64)
    mass = joint.sum(0, keepdim=True)
    uniform = torch.full_like(joint, 1.0 / joint.shape[0])
    return torch.where(mass > 0, joint / mass.clamp_min(1e-300), uniform)


def viterbi_paths(start: Tensor, transitions: list[Tensor], emissions: list[Tensor]) -> tuple[Tensor, Tensor]:
    """The MAP word path of every input (Eq. 17), in log space.

    Parameters
    ----------
    start : Tensor of shape (K_1,)
    transitions : list of Tensor of shape (K_l, K_{l-1})
    emissions : list of Tensor of shape (N, K_l)
        log p(x^l | h^l), one per level, bottom to top.

    Returns
    -------
    paths : LongTensor of shape (N, L)
    log_probability : Tensor of shape (N,), float64
        max over paths of the joint log probability of path and activity.
    """
    with torch.no_grad():
        delta = start.to(torch.float64).log()[None] + emissions[0].to(torch.float64)  # (N, K_1)
        back = []
        for table, emission in zip(transitions, emissions[1:]):
            # candidate[n, k, j] = delta[n, j] + log P(k | j)
            candidate = delta[:, None, :] + table.to(torch.float64).log()[None]
            best, arg = candidate.max(2)
            back.append(arg)
            delta = best + emission.to(torch.float64)
        score, last = delta.max(1)
        path = [last]
        for arg in reversed(back):
            last = arg.gather(1, last[:, None]).squeeze(1)
            path.append(last)
    return torch.stack(path[::-1], dim=1), score
