"""k-means per level, with cluster ids renumbered by size so that results do not depend on k-means' internal order.

``algorithm="full"`` fits scikit-learn's ``KMeans(n_clusters=k, n_init=n_init, random_state=seed)`` on the
features of every input (Euclidean, no scaling, as the paper), run to strict convergence (``tol=0``: each restart
stops when no assignment changes, a fixed point of k-means, or after ``max_iter`` = 300 iterations).
``algorithm="minibatch"`` feeds the batches of a streamed pass to ``MiniBatchKMeans.partial_fit``, so that memory
does not grow with the number of inputs, and a second pass assigns every input to its nearest centroid. Either
way the ids are then renumbered: the largest cluster is 0, ties go to the cluster whose inputs have the smaller
mean index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ALGORITHMS",
    "LevelClusters",
    "finish_minibatch",
    "fit_full",
    "new_minibatch",
    "renumbered",
    "size_order",
    "squared_distances",
]

#: The choices of the ``algorithm`` option.
ALGORITHMS = ("full", "minibatch")


def size_order(labels: np.ndarray, k: int, input_index: np.ndarray) -> np.ndarray:
    """The new id of every cluster: by size, largest first, ties by the smaller mean input index, then old id.

    Parameters
    ----------
    labels : ndarray of shape (n_samples,), int
        Cluster ids in ``range(k)`` as k-means numbered them.
    k : int
    input_index : ndarray of shape (n_samples,), int
        The input each sample belongs to (its row, or ``row // T`` for the time steps of a recurrent level).

    Returns
    -------
    ndarray of shape (k,), int64
        ``order[old_id]`` is the new id.
    """
    sizes = np.bincount(labels, minlength=k)
    # Equal sizes compare their mean index as their sum: exact integers, no division (float64 holds them exactly).
    sums = np.bincount(labels, weights=input_index.astype(np.float64), minlength=k)
    ranked = np.lexsort((np.arange(k), sums, -sizes))  # last key first: size, then sum, then old id
    order = np.empty(k, dtype=np.int64)
    order[ranked] = np.arange(k)
    return order


def renumbered(centroids: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Centroids (k, D) in the new order (row ``order[old]`` holds old centroid ``old``), as float32."""
    out = np.empty_like(centroids, dtype=np.float32)
    out[order] = centroids
    return out


@dataclass
class LevelClusters:
    """The fitted clusters of one level.

    Attributes
    ----------
    level : str
    k : int
    estimator : sklearn.cluster.KMeans or sklearn.cluster.MiniBatchKMeans
        Fitted; its ids are k-means' own.
    order : ndarray of shape (k,), int64
        ``order[kmeans_id]`` is the id the library reports.
    centroids : ndarray of shape (k, D), float32
        In the reported order.
    sizes : ndarray of shape (k,), int64
        Samples per reported cluster.
    """

    level: str
    k: int
    estimator: Any
    order: np.ndarray
    centroids: np.ndarray
    sizes: np.ndarray

    def assign(self, features: np.ndarray) -> np.ndarray:
        """The reported id of the nearest centroid of each row of ``features`` (n, D)."""
        return self.order[self.estimator.predict(features)]


def fit_full(
    level: str, features: np.ndarray, k: int, *, n_init: int, seed: int | None, input_index: np.ndarray
) -> tuple[LevelClusters, np.ndarray]:
    """Fit ``KMeans`` on all samples of one level and renumber its clusters.

    Parameters
    ----------
    level : str
    features : ndarray of shape (n_samples, D), float32
        Centred in place during the fit and restored up to rounding (scikit-learn's ``copy_x=False``); not copied.
    k : int
    n_init : int
    seed : int or None
    input_index : ndarray of shape (n_samples,)

    Returns
    -------
    clusters : LevelClusters
    labels : ndarray of shape (n_samples,), int64
        The reported id of every sample: its nearest centroid (scikit-learn ends ``fit`` with an assignment step).
    """
    from sklearn.cluster import KMeans

    # copy_x=False: k-means centres the features in place (and adds the mean back) instead of copying them; the
    # caller drops the features once they are clustered. tol=0: a restart stops when no assignment changes (a fixed
    # point: every centroid the mean of its samples, every sample at its nearest centroid), and scikit-learn skips
    # the tolerance relative to the features' variance, whose np.var(features, axis=0) makes a temporary as large
    # as the features
    estimator = KMeans(n_clusters=k, n_init=n_init, random_state=seed, tol=0, copy_x=False).fit(features)
    order = size_order(estimator.labels_, k, input_index)
    labels = order[estimator.labels_]
    clusters = LevelClusters(
        level, k, estimator, order, renumbered(estimator.cluster_centers_, order), np.bincount(labels, minlength=k)
    )
    return clusters, labels


def new_minibatch(k: int, *, n_init: int, seed: int | None, batch_size: int) -> Any:
    """A ``MiniBatchKMeans`` to be fed with ``partial_fit``."""
    from sklearn.cluster import MiniBatchKMeans

    return MiniBatchKMeans(n_clusters=k, n_init=n_init, random_state=seed, batch_size=batch_size)


def finish_minibatch(level: str, estimator: Any, labels: np.ndarray, input_index: np.ndarray) -> LevelClusters:
    """Renumber the clusters of a fed ``MiniBatchKMeans`` from the k-means ids of every sample."""
    k = estimator.n_clusters
    order = size_order(labels, k, input_index)
    sizes = np.bincount(order[labels], minlength=k)
    return LevelClusters(level, k, estimator, order, renumbered(estimator.cluster_centers_, order), sizes)


def squared_distances(features: np.ndarray, centroids: np.ndarray, labels: np.ndarray) -> float:
    """Sum over the rows of ``features`` (n, D) of the squared distance to centroid ``labels`` (reported ids)."""
    difference = features - centroids[labels]
    return float(np.einsum("ij,ij->", difference, difference, dtype=np.float64))
