"""The most typical columns of each visual word, kept while the columns stream by.

A word's representatives are the columns assigned to it whose posterior P(h = k | x) is the highest (paper 001,
Fig. 5). Posteriors saturate at 1 in floating point, so columns are ranked by the log-odds of their word,
log P(k | x) - log(1 - P(k | x)) = log pi_k N(x | k) - logsumexp_{j != k} log pi_j N(x | j), which orders them as the
posterior does without ties at 1.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = ["KEEP", "Representative", "TypicalColumns", "log_odds"]

#: Representatives kept per word.
KEEP = 32


def log_odds(joint: Tensor, words: Tensor) -> Tensor:
    """log P(w | x) - log(1 - P(w | x)) of each column's word ``w``, from the log joint (M, K); shape (M,)."""
    own = joint.gather(1, words[:, None]).squeeze(1)
    if joint.shape[1] == 1:
        return torch.full_like(own, float("inf"))
    others = joint.scatter(1, words[:, None], float("-inf"))
    return own - torch.logsumexp(others, dim=1)


class Representative(NamedTuple):
    """One typical column of a word: the validation input it comes from, its position at the level (row-major),
    the box of its receptive field in input pixels (top, left, bottom, right; bottom and right exclusive; ``None``
    for inputs that are not images), and its log-odds key."""

    input: int
    position: int
    box: tuple[int, int, int, int] | None
    key: float


class TypicalColumns:
    """The :data:`KEEP` best columns of each of ``k`` words: their input, position and key.

    Parameters
    ----------
    k : int
        The number of words.
    """

    def __init__(self, k: int) -> None:
        self.key = np.full((k, KEEP), -np.inf)
        self.input = np.full((k, KEEP), -1, dtype=np.int64)
        self.position = np.full((k, KEEP), -1, dtype=np.int64)

    def add(self, words: Tensor, keys: Tensor, start: int) -> None:
        """Offer a batch's columns.

        Parameters
        ----------
        words : LongTensor of shape (B, P)
        keys : Tensor of shape (B, P)
            :func:`log_odds` of each column.
        start : int
            The index of the batch's first input.
        """
        b, p = words.shape
        w = words.reshape(-1).cpu().numpy()
        key = keys.reshape(-1).to(torch.float64).cpu().numpy()
        # only a column better than its word's worst kept one can enter (a tie loses: it comes later)
        flat = np.flatnonzero(key > self.key[w, KEEP - 1])
        w, key = w[flat], key[flat]
        order = np.lexsort((flat, -key, w))  # by word, then best first, then by column
        w_sorted = w[order]
        first = np.searchsorted(w_sorted, w_sorted, side="left")
        rank = np.arange(len(order)) - first
        keep = order[rank < KEEP]
        kw, slot = w[keep], rank[rank < KEEP]
        cand_key = np.full_like(self.key, -np.inf)
        cand_input = np.full_like(self.input, -1)
        cand_pos = np.full_like(self.position, -1)
        cand_key[kw, slot] = key[keep]
        cand_input[kw, slot] = start + flat[keep] // p
        cand_pos[kw, slot] = flat[keep] % p
        keys_all = np.concatenate([self.key, cand_key], 1)
        inputs_all = np.concatenate([self.input, cand_input], 1)
        pos_all = np.concatenate([self.position, cand_pos], 1)
        # best first; among equal keys the earlier column (smaller input, then position) first
        best = np.lexsort((pos_all, np.where(inputs_all < 0, np.iinfo(np.int64).max, inputs_all), -keys_all), axis=1)
        best = best[:, :KEEP]
        rows = np.arange(len(self.key))[:, None]
        self.key, self.input, self.position = keys_all[rows, best], inputs_all[rows, best], pos_all[rows, best]

    def of(self, word: int, k: int) -> list[tuple[int, int, float]]:
        """The ``k`` (or fewer) best ``(input, position, key)`` of ``word``, best first."""
        found = self.input[word] >= 0
        return [
            (int(i), int(q), float(s))
            for i, q, s in zip(self.input[word][found][:k], self.position[word][found][:k], self.key[word][found][:k])
        ]
