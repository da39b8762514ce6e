"""The per-level k-means of ``algorithm="full"``: no temporary as large as the features, and a strict fixed point."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from stepwise.paths.clustering import fit_full


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> None:
    with threadpool_limits(1):
        yield


def blobs(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    return (centres[rng.integers(k, size=n)] + rng.normal(size=(n, d))).astype(np.float32)


def test_the_features_are_not_copied() -> None:
    import sklearn.cluster  # noqa: F401  (imported before tracing: only the fit's own allocations count)

    x = blobs(20_000, 128, 5)
    kept = x.copy()
    tracemalloc.start()
    try:
        fit_full("level", x, 5, n_init=2, seed=0, input_index=np.arange(len(x)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # k-means' own arrays are O(N) and O(k x D) (about 2 MB here); the variance scikit-learn computes for a
    # tolerance (tol > 0) would take another x.nbytes (10 MB)
    assert peak < 0.5 * x.nbytes, peak / x.nbytes
    assert np.allclose(x, kept, rtol=0, atol=1e-5 * np.abs(kept).max())  # centred in place, then restored


def test_the_clusters_are_a_fixed_point() -> None:
    x = blobs(3_000, 16, 6, seed=1)
    clusters, labels = fit_full("level", x, 6, n_init=3, seed=0, input_index=np.arange(len(x)))
    assert clusters.estimator.n_iter_ < clusters.estimator.max_iter  # stopped because no assignment changed
    x64 = x.astype(np.float64)
    d = ((x64[:, None, :] - clusters.centroids[None].astype(np.float64)) ** 2).sum(-1)
    assert np.all(d[np.arange(len(x)), labels] <= d.min(1) + 1e-5 * d.max())  # every sample at its nearest centroid
    for j in range(6):  # every centroid the mean of its samples
        assert np.abs(x64[labels == j].mean(0) - clusters.centroids[j]).max() <= 1e-5 * np.abs(x64).max()
