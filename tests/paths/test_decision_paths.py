"""DecisionPaths against independent computations: flows against a pandas cross-tabulation, assignments against the
nearest centroid of features captured by a plain forward hook, paths against a direct count, predict against the
fitted assignments, seeds, mini-batch k-means, recurrent levels on the shipped GRU."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor, nn

import stepwise
from stepwise.models import digits_cnn, digits_data, digits_gru, digits_sequences
from stepwise.paths.clustering import size_order
from stepwise.paths.decision_paths import DecisionPaths, NotFittedError
from stepwise.paths.features import LevelFeatures, capture_features

LEVELS = ["features.6", "classifier.1"]
K = {"features.6": 8, "classifier.1": 6}


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> None:
    """k-means on one thread: its OpenMP threads wait busily, which on a loaded machine costs ten times the work."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def digits() -> tuple[nn.Module, Tensor, Tensor]:
    data = digits_data()
    index = data.train[:300]
    return digits_cnn(), data.images[index], data.labels[index]


@pytest.fixture(scope="module")
def fitted(digits: tuple[nn.Module, Tensor, Tensor]) -> DecisionPaths:
    model, x, y = digits
    return DecisionPaths(model, LEVELS, n_clusters=K, n_init=2, batch_size=64).fit(x, y)


def hooked_features(model: nn.Module, x: Tensor, level: str) -> np.ndarray:
    """The flattened output of one module, by a forward hook of the test's own, in float64."""
    out: list[Tensor] = []
    handle = dict(model.named_modules())[level].register_forward_hook(lambda m, a, o: out.append(o.detach().clone()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return out[0].reshape(len(x), -1).double().numpy()


def nearest_gap(features: np.ndarray, centroids: np.ndarray, assigned: np.ndarray) -> tuple[float, float]:
    """The largest (distance to the assigned centroid - distance to the nearest), and a tolerance for it derived
    from the float32 rounding of squared distances of that size."""
    c = centroids.astype(np.float64)
    d = ((features[:, None, :] - c[None]) ** 2).sum(-1)
    gap = d[np.arange(len(features)), assigned] - d.min(1)
    scale = (features**2).sum(1).max() + (c**2).sum(1).max()
    return float(gap.max()), float(scale * 1e-5)


def test_columns_and_shapes(fitted: DecisionPaths, digits: tuple[nn.Module, Tensor, Tensor]) -> None:
    assert fitted.columns_ == [*LEVELS, "class"]
    assert list(fitted.assignments_.dtypes) == [np.dtype("int64")] * 3
    assert fitted.centroids_["features.6"].shape == (8, 64 * 8 * 8)
    assert fitted.centroids_["classifier.1"].shape == (6, 64)
    assert all(c.dtype == np.float32 for c in fitted.centroids_.values())
    model, x, y = digits
    with torch.no_grad():
        assert np.array_equal(fitted.assignments_["class"].to_numpy(), model(x).argmax(1).numpy())
    assert np.array_equal(fitted.labels_, y.numpy())
    assert "DecisionPaths(DigitsCNN" in repr(fitted) and "n_init=2" in repr(fitted)


def test_assignments_are_the_nearest_centroid(fitted: DecisionPaths, digits: tuple[nn.Module, Tensor, Tensor]) -> None:
    model, x, _ = digits
    for level in LEVELS:
        features = hooked_features(model, x, level)
        assigned = fitted.assignments_[level].to_numpy()
        gap, tolerance = nearest_gap(features, fitted.centroids_[level], assigned)
        assert gap <= tolerance, (level, gap, tolerance)
        # k-means' fixed point (run to strict convergence): each centroid is the mean of its inputs, up to float32
        # rounding
        for j in range(K[level]):
            members = features[assigned == j]
            spread = np.abs(features).max()
            assert np.abs(members.mean(0) - fitted.centroids_[level][j]).max() <= 1e-5 * spread


def test_clusters_are_numbered_by_size(fitted: DecisionPaths) -> None:
    for level in LEVELS:
        sizes = np.bincount(fitted.assignments_[level], minlength=K[level])
        assert np.all(np.diff(sizes) <= 0), sizes


def test_size_order_breaks_ties_by_mean_index() -> None:
    labels = np.array([2, 0, 0, 1, 1, 2, 3])  # sizes 2, 2, 2, 1; mean indices 1.5, 3.5, 2.5, 6
    order = size_order(labels, 4, np.arange(7))
    assert order.tolist() == [0, 2, 1, 3]
    recurrent = np.array([1, 1, 0, 0])  # two inputs of two steps: input 0 is all cluster 1
    assert size_order(recurrent, 2, np.array([0, 0, 1, 1])).tolist() == [1, 0]


def test_flows_equal_a_crosstab(fitted: DecisionPaths) -> None:
    a = fitted.assignments_
    for lower, upper in [("features.6", "classifier.1"), ("classifier.1", "class"), ("features.6", "class")]:
        flows = fitted.flows(lower, upper).set_index(["lower_cluster", "upper_cluster"])
        table = pd.crosstab([a[lower], a[upper]], a["class"])
        assert list(flows.index) == list(table.index)
        assert np.array_equal(flows["count"].to_numpy(), table.sum(axis=1).to_numpy())
        for c in fitted.classes_:
            assert np.array_equal(flows[f"class_{c}"].to_numpy(), table[c].to_numpy())


def test_paths_and_coverage_are_a_direct_count(fitted: DecisionPaths) -> None:
    rows = fitted.assignments_.to_numpy()
    for cls in [None, *fitted.classes_.tolist()]:
        chosen = [tuple(int(v) for v in r) for r in rows if cls is None or r[-1] == cls]
        counts = Counter(chosen)
        expected = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        table = fitted.paths(cls)
        assert list(zip(table["path"], table["count"])) == expected
        assert np.allclose(table["coverage"], table["count"] / len(chosen), rtol=0, atol=1e-15)
        assert table["count"].sum() == len(chosen)


def test_predict_on_the_training_inputs_is_the_assignments(fitted: DecisionPaths, digits) -> None:
    _, x, _ = digits
    pd.testing.assert_frame_equal(fitted.predict(x), fitted.assignments_)


def test_predict_new_inputs_is_the_nearest_centroid(fitted: DecisionPaths, digits) -> None:
    model, _, _ = digits
    new = digits_data().images[digits_data().test[:50]]
    table = fitted.predict(new)
    for level in LEVELS:
        gap, tolerance = nearest_gap(hooked_features(model, new, level), fitted.centroids_[level], table[level])
        assert gap <= tolerance


def test_the_same_seed_gives_the_same_output_another_seed_a_valid_one(digits) -> None:
    model, x, y = digits
    x, y = x[:120], y[:120]
    fits = [DecisionPaths(model, LEVELS, n_clusters=K, n_init=2, seed=s).fit(x, y) for s in (3, 3, 4)]
    pd.testing.assert_frame_equal(fits[0].assignments_, fits[1].assignments_)
    for level in LEVELS:
        assert np.array_equal(fits[0].centroids_[level], fits[1].centroids_[level])
        sizes = np.bincount(fits[2].assignments_[level], minlength=K[level])
        assert sizes.sum() == 120 and np.all(np.diff(sizes) <= 0)
    assert fits[0].graph() == fits[1].graph()


def test_mean_features_are_channel_means(digits) -> None:
    model, x, _ = digits
    dp = DecisionPaths(model, ["features.3", "classifier.1"], n_clusters=4, n_init=1, features="mean").fit(x[:100])
    spec = dp._specs[0]
    features, _ = capture_features(model, x[:100], [spec], dp._top, batch_size=32)
    out: list[Tensor] = []
    handle = model.features[3].register_forward_hook(lambda m, a, o: out.append(o.detach().clone()))
    with torch.no_grad():
        model(x[:100])
    handle.remove()
    expected = out[0].double().mean(dim=(2, 3)).numpy()
    scale = np.abs(expected).max()
    assert features["features.3"].shape == (100, 32)
    assert np.abs(features["features.3"] - expected).max() <= 1e-6 * scale
    assert dp.centroids_["features.3"].shape == (4, 32)


def test_default_levels_drop_the_class_output(digits) -> None:
    model, x, _ = digits
    dp = DecisionPaths(model, n_clusters=3, n_init=1, features="mean").fit(x[:60])
    assert dp.levels_ == ["features.1", "features.3", "features.6", "classifier.1"]
    assert dp.columns_[-1] == "class"


def test_top_label_takes_the_class_from_the_labels(digits) -> None:
    model, x, y = digits
    dp = DecisionPaths(model, ["classifier.1"], n_clusters=4, n_init=1, top="label").fit(x[:80], y[:80])
    assert np.array_equal(dp.assignments_["class"].to_numpy(), y[:80].numpy())
    with pytest.raises(ValueError, match="no labels were given"):
        dp.predict(x[:5])
    assert np.array_equal(dp.predict(x[:5], y[:5])["class"].to_numpy(), y[:5].numpy())


def test_minibatch_assigns_to_the_nearest_centroid_and_is_seeded(digits) -> None:
    model, x, _ = digits
    fits = [
        DecisionPaths(model, ["classifier.1"], n_clusters=5, n_init=1, algorithm="minibatch", batch_size=50).fit(x)
        for _ in range(2)
    ]
    dp = fits[0]
    pd.testing.assert_frame_equal(dp.assignments_, fits[1].assignments_)
    features = hooked_features(model, x, "classifier.1")
    gap, tolerance = nearest_gap(features, dp.centroids_["classifier.1"], dp.assignments_["classifier.1"])
    assert gap <= tolerance
    sizes = np.bincount(dp.assignments_["classifier.1"], minlength=5)
    assert np.all(np.diff(sizes) <= 0)
    pd.testing.assert_frame_equal(dp.predict(x), dp.assignments_)
    c = dp.centroids_["classifier.1"].astype(np.float64)
    inertia = ((features - c[dp.assignments_["classifier.1"]]) ** 2).sum()
    assert abs(dp.inertia_["classifier.1"] - inertia) <= 1e-5 * inertia
    with pytest.raises(ValueError, match="pass a larger batch_size"):
        DecisionPaths(model, ["classifier.1"], n_clusters=5, algorithm="minibatch", batch_size=4).fit(x[:20])


@pytest.fixture(scope="module")
def gru_paths() -> tuple[DecisionPaths, nn.Module, Tensor]:
    data = digits_sequences()
    x = data.images[data.train[:200]]
    model = digits_gru()
    return DecisionPaths(model, ["states"], n_clusters=6, n_init=2, time_dim=1).fit(x), model, x


def test_recurrent_level_gives_one_column_per_step_and_one_shared_kmeans(gru_paths) -> None:
    dp, model, x = gru_paths
    assert dp.columns_ == [f"states@t{t}" for t in range(8)] + ["class"]
    assert dp.centroids_["states"].shape == (6, 50)
    with torch.no_grad():
        states, _ = model.gru(x)  # the hidden states, computed without the library
    states = states.double().numpy()
    assigned = np.stack([dp.assignments_[f"states@t{t}"].to_numpy() for t in range(8)], axis=1)
    gap, tolerance = nearest_gap(states.reshape(-1, 50), dp.centroids_["states"], assigned.reshape(-1))
    assert gap <= tolerance
    sizes = np.bincount(assigned.reshape(-1), minlength=6)  # renumbered over all steps together
    assert np.all(np.diff(sizes) <= 0)
    flows = dp.flows("states@t3", "states@t4")
    assert flows["count"].sum() == len(x)
    graph = dp.graph()
    assert graph.levels == dp.columns_
    assert sum(graph.nodes[n]["size"] for n in graph.nodes if graph.nodes[n]["level"] == "states@t7") == len(x)


def test_rare_inputs_are_a_direct_count(fitted: DecisionPaths) -> None:
    a = fitted.assignments_
    n = len(a)
    fraction = 0.02
    rare = fitted.rare(fraction, dominance=0.8)
    expected = set()
    for low, up in zip(fitted.columns_[:-1], fitted.columns_[1:]):
        pairs = Counter(zip(a[low], a[up]))
        for i in range(n):
            if pairs[(a[low][i], a[up][i])] <= fraction * n:
                expected.add((i, low, "thin flow"))
    last = fitted.columns_[-2]
    for i in range(n):
        members = a["class"][a[last] == a[last][i]]
        counts = members.value_counts()
        dominant = min(counts[counts == counts.max()].index)
        if fitted.predictions_[i] != dominant and counts.max() / len(members) >= 0.8:
            expected.add((i, last, "dominated"))
    assert set(zip(rare["input"], rare["level"], rare["reason"])) == expected
    assert rare["input"].is_monotonic_increasing
    assert (rare["label"].to_numpy() == fitted.labels_[rare["input"]]).all()


def test_errors_before_fit(digits) -> None:
    model, x, _ = digits
    dp = DecisionPaths(model, LEVELS)
    for call in (lambda: dp.predict(x[:2]), lambda: dp.flows("features.6", "class"), lambda: dp.paths(), dp.graph):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()


def test_bad_result_arguments(fitted: DecisionPaths) -> None:
    with pytest.raises(ValueError, match="Did you mean 'classifier.1'"):
        fitted.flows("features.6", "classifier.2")
    with pytest.raises(ValueError, match="is not below"):
        fitted.flows("class", "features.6")
    with pytest.raises(ValueError, match="No input has class 42"):
        fitted.paths(42)
    with pytest.raises(ValueError, match="must be a float in the range"):
        fitted.rare(1.5)


def test_exported_lazily() -> None:
    assert stepwise.DecisionPaths is DecisionPaths
    assert LevelFeatures.__module__ == "stepwise.paths.features"
