"""Co-occurrence of visual words through receptive fields (Eq. 4), and the statistics drawn from it (Eqs. 5-6).

N(k, k') = |{(I_n, p, q) : h_p(I_n) = k, h'_q(I_n) = k', q in R(p)}| counts, over inputs, upper positions p and the
lower positions q of p's receptive field, the pairs of an upper word and a lower word. It is counted without a loop
over positions: each upper position's field is a padded list of lower positions (:func:`field_index`), the lower
words are gathered through it for a batch of inputs at once, and each (upper word, lower word) pair becomes one code
of a single ``bincount``. The same count over a set Omega of inputs is Q'_{t,s}(Omega) of Eq. 15. A word of -1
marks a position that is no column (the padding of a token level) and enters no pair.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["cooccurrence_counts", "marginals", "transition_table"]

_ENTRIES = 1 << 24  # gathered (input, position, field slot) entries per chunk


def cooccurrence_counts(
    upper_words: Tensor, lower_words: Tensor, index: np.ndarray, k_upper: int, k_lower: int
) -> np.ndarray:
    """N(k, k') of Eq. 4.

    Parameters
    ----------
    upper_words : LongTensor of shape (N, P_upper)
        h_p of every input and upper position; -1 where there is no column (padding).
    lower_words : LongTensor of shape (N, P_lower)
    index : ndarray of shape (P_upper, F), int64
        R(p) of every upper position as lower positions padded with ``P_lower``
        (:func:`stepwise.inference.fields.field_index`).
    k_upper, k_lower : int
        The numbers of words of the two levels.

    Returns
    -------
    ndarray of shape (k_upper, k_lower), int64
    """
    n, p_lower = lower_words.shape
    counts = torch.zeros((k_upper + 1) * (k_lower + 1), dtype=torch.int64)  # row k_upper, column k_lower: no word
    if n == 0:
        return counts.reshape(k_upper + 1, k_lower + 1)[:k_upper, :k_lower].numpy()
    field = torch.as_tensor(index, dtype=torch.int64)
    chunk = max(1, _ENTRIES // max(field.numel(), 1))
    pad = torch.full((1, 1), k_lower, dtype=torch.int64)
    for start in range(0, n, chunk):
        low = lower_words[start : start + chunk].to("cpu", torch.int64)
        up = upper_words[start : start + chunk].to("cpu", torch.int64)
        low = torch.where(low < 0, k_lower, low)
        up = torch.where(up < 0, k_upper, up)
        padded = torch.cat([low, pad.expand(len(low), 1)], dim=1)  # position P_lower holds the pad word k_lower
        gathered = padded[:, field]  # (B, P_upper, F)
        codes = up[:, :, None] * (k_lower + 1) + gathered
        counts += torch.bincount(codes.flatten(), minlength=counts.numel())
    return counts.reshape(k_upper + 1, k_lower + 1)[:k_upper, :k_lower].numpy()


def transition_table(counts: np.ndarray) -> np.ndarray:
    """P(h' = k' | h = k) = N(k, k') / sum_j N(k, j) (Eq. 6); a row of a word that never occurs is all zeros.

    Returns
    -------
    ndarray of shape (K_upper, K_lower), float64
    """
    counts = np.asarray(counts, dtype=np.float64)
    rows = counts.sum(1, keepdims=True)
    return np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)


def marginals(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(h = k) (Eq. 5, the row marginal) and P(h' = k') (the column marginal of the same table).

    Returns
    -------
    upper : ndarray of shape (K_upper,), float64
    lower : ndarray of shape (K_lower,), float64
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return np.zeros(counts.shape[0]), np.zeros(counts.shape[1])
    return counts.sum(1) / total, counts.sum(0) / total
