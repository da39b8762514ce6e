"""How far two metrics choose the same neurons: the Jaccard index |A ∩ B| / |A ∪ B| (paper, section 5.2)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np
from torch import Tensor

from stepwise.core.validation import check_int, check_option

from .ranking import METRICS, NeuronRanking

__all__ = ["agreement", "jaccard"]


def _as_set(neurons: object, name: str) -> set[Hashable]:
    if isinstance(neurons, (Tensor, np.ndarray)):
        neurons = neurons.tolist()
    if not isinstance(neurons, Iterable) or isinstance(neurons, (str, bytes)):
        raise TypeError(
            f"The {name!r} parameter of perturb.jaccard must be a collection of neurons (ints, or (level, index) "
            f"pairs). Got {type(neurons).__name__} instead."
        )
    return {tuple(n) if isinstance(n, list) else n for n in neurons}


def jaccard(a: Iterable[Hashable], b: Iterable[Hashable]) -> float:
    """The Jaccard index of two sets of neurons, |A ∩ B| / |A ∪ B|.

    Parameters
    ----------
    a, b : iterable of int or of (level, index) pairs, or Tensor / ndarray of shape (k,)
        Neurons; repeated entries count once.

    Returns
    -------
    float
        In [0, 1]; 1.0 when both sets are empty (two empty sets are equal).

    Examples
    --------
    >>> jaccard([1, 2, 3], [2, 3, 4])
    0.5
    """
    first, second = _as_set(a, "a"), _as_set(b, "b")
    union = first | second
    if not union:
        return 1.0
    return len(first & second) / len(union)


def agreement(
    ranking: NeuronRanking, *, metrics: Sequence[str] = ("correlation", "precision"), k: int = 5
) -> dict[str, float]:
    """Per level, the Jaccard index of the top ``k`` neurons chosen by two metrics.

    Parameters
    ----------
    ranking : NeuronRanking
    metrics : pair of str, default=('correlation', 'precision')
        Two of :data:`perturb.METRICS`.
    k : int, default=5
        Neurons taken per level and metric (see :meth:`NeuronRanking.top`; neurons with a NaN score are left
        out).

    Returns
    -------
    dict of str to float
        For each level of the ranking, bottom to top, ``jaccard(top_a[level], top_b[level])``.

    Raises
    ------
    ValueError
        For an unknown metric, a number of metrics other than two, ``k < 1``, or a weight metric on a level
        without a single Conv/Linear module.
    """
    owner = "perturb.agreement"
    if not isinstance(ranking, NeuronRanking):
        raise TypeError(
            f"The 'ranking' parameter of {owner} must be a NeuronRanking (from perturb.rank_neurons). "
            f"Got {type(ranking).__name__} instead."
        )
    if isinstance(metrics, str) or not isinstance(metrics, Sequence) or len(metrics) != 2:
        raise ValueError(f"The 'metrics' parameter of {owner} must be a pair of metric names. Got {metrics!r} instead.")
    first, second = (check_option(m, "metrics", owner, METRICS) for m in metrics)
    k = check_int(k, "k", owner, low=1)
    top_a, top_b = ranking.top(first, k), ranking.top(second, k)
    return {level: jaccard(top_a[level], top_b[level]) for level in ranking.levels}
