"""EM against scikit-learn, the Gaussian densities against scipy, the rectified emissions and Viterbi against brute
force, the seed, the discriminative loss and the typical columns."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import stats

import stepwise
from stepwise.inference.gmm import DiagonalGMM, EMStatistics, em_step_statistics, em_update, log_gaussians
from stepwise.inference.hmm import rectified_log_emissions, soft_transitions, viterbi_paths
from stepwise.inference.typical import KEEP, TypicalColumns
from tests.inference.nets import MLP, SKIP_LEVELS, SkipNet, skip_data


def mixture_data(n: int, d: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (k, d))
    scales = rng.uniform(0.5, 1.5, (k, d))
    labels = rng.integers(k, size=n)
    return (centres[labels] + scales[labels] * rng.normal(size=(n, d))).astype(np.float32)


def test_em_equals_scikit_learn_from_the_same_start() -> None:
    from sklearn.mixture import GaussianMixture

    x = mixture_data(3000, 8, 5, seed=1)
    rng = np.random.default_rng(2)
    means = x[rng.choice(len(x), 5, replace=False)]
    variances = np.tile(x[rng.choice(len(x), 1000, replace=False)].var(0), (5, 1))
    weights = np.full(5, 0.2, dtype=np.float32)
    iterations = 15
    reference = GaussianMixture(5, covariance_type="diag", weights_init=weights, means_init=means,
                                precisions_init=1.0 / variances, max_iter=iterations, tol=0.0, reg_covar=0.0,
                                init_params="random_from_data")  # fmt: skip
    with pytest.warns(Warning):  # did not converge within max_iter: the iterations are fixed on purpose
        reference.fit(x)
    gmm = DiagonalGMM(torch.tensor(means), torch.tensor(variances), torch.tensor(weights))
    data = torch.tensor(x)
    for _ in range(iterations):
        stats_ = EMStatistics.zeros(gmm)
        for start in range(0, len(data), 1000):  # streamed over batches
            em_step_statistics(gmm, data[start : start + 1000], stats_)
        gmm = em_update(stats_, 1e-30)
    ours = float(gmm.log_likelihood(data).double().mean())
    theirs = float(reference.score(x))
    assert abs(ours - theirs) <= 1e-4 * abs(theirs)
    scale = float(np.abs(reference.means_).max())
    np.testing.assert_allclose(gmm.means.numpy(), reference.means_, atol=1e-3 * scale)
    np.testing.assert_allclose(gmm.weights.numpy(), reference.weights_, atol=1e-4)


def test_log_gaussians_equal_scipy() -> None:
    rng = np.random.default_rng(3)
    x, means = rng.normal(size=(7, 4)), rng.normal(size=(3, 4))
    variances = rng.uniform(0.2, 2.0, (3, 4))
    ours = log_gaussians(torch.tensor(x), torch.tensor(means), torch.tensor(variances)).numpy()
    for k in range(3):
        expected = stats.multivariate_normal(means[k], np.diag(variances[k])).logpdf(x)
        np.testing.assert_allclose(ours[:, k], expected, rtol=1e-10)


def test_batch_statistics_add_up_to_the_full_pass() -> None:
    x = torch.tensor(mixture_data(500, 3, 2, seed=4), dtype=torch.float64)
    gmm = DiagonalGMM(x[:2].clone(), torch.ones(2, 3, dtype=torch.float64), torch.full((2,), 0.5, dtype=torch.float64))
    whole, parts = EMStatistics.zeros(gmm), EMStatistics.zeros(gmm)
    em_step_statistics(gmm, x, whole)
    for start in range(0, 500, 77):
        em_step_statistics(gmm, x[start : start + 77], parts)
    resp = gmm.posteriors(x)
    torch.testing.assert_close(whole.first, resp.T @ x, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(parts.second, resp.T @ (x * x), rtol=1e-10, atol=1e-10)
    assert parts.log_likelihood == pytest.approx(float(gmm.log_likelihood(x).sum()), rel=1e-12)


def test_rectified_emissions_equal_scipy() -> None:
    rng = np.random.default_rng(5)
    x = np.maximum(rng.normal(size=(6, 4)), 0.0)
    means, stds = rng.normal(size=(3, 4)), rng.uniform(0.3, 1.5, (3, 4))
    ours = rectified_log_emissions(torch.tensor(x), torch.tensor(means), torch.tensor(stds)).numpy()
    expected = np.zeros((6, 3))
    for n, k, d in itertools.product(range(6), range(3), range(4)):
        if x[n, d] > 0:
            expected[n, k] += stats.norm(means[k, d], stds[k, d]).logpdf(x[n, d])
        else:
            expected[n, k] += stats.norm(means[k, d], stds[k, d]).logcdf(0.0)
    np.testing.assert_allclose(ours, expected, rtol=1e-10)


def brute_force(start, transitions, emissions) -> tuple[np.ndarray, np.ndarray]:
    sizes = [len(start)] + [t.shape[0] for t in transitions]
    best_paths, best_scores = [], []
    for n in range(emissions[0].shape[0]):
        best, arg = -np.inf, None
        for path in itertools.product(*[range(k) for k in sizes]):
            score = np.log(start[path[0]]) + emissions[0][n, path[0]]
            for level, table in enumerate(transitions, start=1):
                score += np.log(table[path[level], path[level - 1]]) + emissions[level][n, path[level]]
            if score > best:
                best, arg = score, path
        best_paths.append(arg)
        best_scores.append(best)
    return np.array(best_paths), np.array(best_scores)


def test_viterbi_equals_brute_force_over_all_paths() -> None:
    rng = np.random.default_rng(6)
    sizes = [3, 4, 2, 3]
    start = rng.dirichlet(np.ones(3))
    transitions = [rng.dirichlet(np.ones(sizes[i]), size=sizes[i - 1]).T for i in range(1, 4)]
    emissions = [rng.normal(size=(9, k)) * 2 for k in sizes]
    paths, scores = viterbi_paths(torch.tensor(start), [torch.tensor(t) for t in transitions],
                                  [torch.tensor(e) for e in emissions])  # fmt: skip
    expected_paths, expected_scores = brute_force(start, transitions, emissions)
    np.testing.assert_array_equal(paths.numpy(), expected_paths)
    np.testing.assert_allclose(scores.numpy(), expected_scores, rtol=1e-12)


@pytest.fixture(scope="module")
def mlp_fit() -> tuple[stepwise.InferenceGraphs, torch.Tensor]:
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(7))
    return stepwise.InferenceGraphs(MLP(), ["h1", "h2"], n_words=3, max_iter=30).fit(x), x


def test_inference_viterbi_is_the_map_path_of_its_hmm(mlp_fit) -> None:
    ig, x = mlp_fit
    hmm = ig.hmm_
    assert hmm.levels == ["h1", "h2", "softmax"] and hmm.rectified == [True, True, True]
    emissions = ig.log_emissions(x[:12])
    paths = ig.viterbi(x[:12])
    expected, _ = brute_force(hmm.start.numpy(), [t.numpy() for t in hmm.transitions],
                              [emissions[name].numpy() for name in hmm.levels])  # fmt: skip
    np.testing.assert_array_equal(paths.numpy(), expected)
    for table in hmm.transitions:
        torch.testing.assert_close(table.sum(0), torch.ones(table.shape[1], dtype=table.dtype))


def test_soft_transitions_are_posterior_counts() -> None:
    rng = np.random.default_rng(8)
    up, low = rng.dirichlet(np.ones(3), 20), rng.dirichlet(np.ones(2), 20)
    expected = np.array([[sum(up[n, k] * low[n, j] for n in range(20)) / low[:, j].sum() for j in range(2)]
                         for k in range(3)])  # fmt: skip
    np.testing.assert_allclose(soft_transitions(torch.tensor(up), torch.tensor(low)).numpy(), expected, rtol=1e-12)


def test_one_seed_gives_identical_output() -> None:
    data, validation = skip_data(40), skip_data(20, seed=9)
    fits = [stepwise.InferenceGraphs(SkipNet(), SKIP_LEVELS, n_words=3, max_iter=5, seed=4).fit(data, validation=validation)
            for _ in range(2)]  # fmt: skip
    for name in fits[0].levels_:
        for a, b in zip(fits[0].gmms_[name].tensors(), fits[1].gmms_[name].tensors()):
            assert torch.equal(a, b)
        assert torch.equal(fits[0].validation_words_[name], fits[1].validation_words_[name])
    assert fits[0].image_graph(validation[0]) == fits[1].image_graph(validation[0])
    other = stepwise.InferenceGraphs(SkipNet(), SKIP_LEVELS, n_words=3, max_iter=5, seed=5).fit(data)
    assert not torch.equal(other.gmms_["act1"].means, fits[0].gmms_["act1"].means)


def test_discriminative_loss_falls_and_keeps_a_valid_mixture() -> None:
    x = torch.randn(120, 5, generator=torch.Generator().manual_seed(10))
    y = MLP()(x).argmax(1)
    ig = stepwise.InferenceGraphs(MLP(), ["h1", "h2"], n_words=4, max_iter=8, loss="discriminative").fit(x, y)
    losses = ig.report_.cross_entropy["h2"]
    assert len(losses) == 8 and losses[-1] < losses[0]
    gmm = ig.gmms_["h2"]
    assert float(gmm.weights.sum()) == pytest.approx(1.0, abs=1e-5) and bool((gmm.variances > 0).all())


def test_typical_columns_equal_a_full_sort() -> None:
    rng = np.random.default_rng(11)
    words = rng.integers(0, 3, size=(50, 6))
    keys = rng.normal(size=(50, 6))
    typical = TypicalColumns(3)
    for start in range(0, 50, 7):
        typical.add(torch.tensor(words[start : start + 7]), torch.tensor(keys[start : start + 7]), start)
    for w in range(3):
        found = [(keys[n, p], n, p) for n in range(50) for p in range(6) if words[n, p] == w]
        expected = [(n, p) for _, n, p in sorted(found, key=lambda c: (-c[0], c[1], c[2]))][:KEEP]
        assert [(i, q) for i, q, _ in typical.of(w, KEEP)] == expected
