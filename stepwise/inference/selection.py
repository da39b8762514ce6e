"""Node selection (Algorithm 1): the words of each level that best explain the chosen words of the level above.

For a set S of upper words and the co-occurrence Q' over the explained inputs Omega (Eq. 15), lower word t scores

    score(t) = sum_{s in S} Q'_{t,s}(Omega) * log2( P(t | s) / P(t) )                        (Eq. 16)

with P(t | s) the transition of Eq. 6 and P(t) the column marginal of the validation co-occurrence, so that the
log ratio is the table's pointwise mutual information. The z highest-scoring words with a positive score are kept,
ties broken by the smaller word.
"""

from __future__ import annotations

import numpy as np

from .cooccurrence import marginals, transition_table

__all__ = ["edge_scores", "log_ratio", "select_words", "word_scores"]


def log_ratio(counts: np.ndarray) -> np.ndarray:
    """log2(P(t | s) / P(t)) for every upper word s and lower word t, from the validation co-occurrence N.

    Returns
    -------
    ndarray of shape (K_upper, K_lower), float64
        ``-inf`` where N(s, t) = 0 (a pair never seen), including rows and columns of words that never occur.
    """
    transitions = transition_table(counts)
    _, lower = marginals(counts)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log2(transitions / lower[None, :])
    ratio[~(np.asarray(counts) > 0)] = -np.inf
    return ratio


def word_scores(q: np.ndarray, ratio: np.ndarray, chosen: list[int]) -> np.ndarray:
    """Eq. 16 for every lower word.

    Parameters
    ----------
    q : ndarray of shape (K_upper, K_lower)
        Q'[s, t]: the occurrences of lower word t in the fields of upper word s over Omega.
    ratio : ndarray of shape (K_upper, K_lower)
        :func:`log_ratio`.
    chosen : list of int
        S, the upper words.

    Returns
    -------
    ndarray of shape (K_lower,), float64
        A term with Q' = 0 adds nothing (even where the ratio is ``-inf``).
    """
    terms = edge_scores(q, ratio)[chosen]
    return terms.sum(0) if len(chosen) else np.zeros(q.shape[1])


def edge_scores(q: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Q'[s, t] * log2(P(t | s) / P(t)), 0 where Q' is 0."""
    q = np.asarray(q, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        terms = q * ratio
    terms[q == 0] = 0.0
    return terms


def select_words(scores: np.ndarray, z: int) -> list[int]:
    """The at most ``z`` words of the highest positive scores, best first (ties: the smaller word first)."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    return [int(t) for t in order[:z] if scores[t] > 0]
