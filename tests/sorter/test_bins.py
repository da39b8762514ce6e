"""Zero-aligned bins, class counts and width classes against numpy.histogram and brute-force loops."""

from __future__ import annotations

import numpy as np
import pytest

from stepwise.sorter.bins import (
    bin_index,
    class_counts,
    n_negative_bins,
    width_classes,
    zero_aligned_edges,
)

RANGES = [(-1.0, 3.0), (-3.0, 1.0), (-0.001, 5.0), (-5.0, 0.001), (0.0, 2.0), (-2.0, 0.0), (0.5, 2.5), (-4.0, -1.0)]


@pytest.mark.parametrize("bins", [2, 3, 30])
@pytest.mark.parametrize(("low", "high"), RANGES)
def test_edges_span_the_range_with_zero_an_edge_whenever_the_range_reaches_it(
    low: float, high: float, bins: int
) -> None:
    edges = zero_aligned_edges(low, high, bins)
    assert len(edges) == bins + 1
    assert edges[0] == low and edges[-1] == high
    assert np.all(np.diff(edges) > 0)
    if low <= 0 <= high:
        assert 0.0 in edges
    if low < 0 < high:  # the thesis's split, computed here with plain arithmetic
        expected = min(max(round(bins * -low / (high - low)), 1), bins - 1)
        assert n_negative_bins(edges) == expected
        assert edges[expected] == 0.0
        neg, pos = np.diff(edges[: expected + 1]), np.diff(edges[expected:])
        np.testing.assert_allclose(neg, -low / expected, rtol=1e-12)
        np.testing.assert_allclose(pos, high / (bins - expected), rtol=1e-12)
    else:
        np.testing.assert_allclose(np.diff(edges), (high - low) / bins, rtol=1e-12)
        assert n_negative_bins(edges) == (bins if high <= 0 else 0)


def test_a_constant_neuron_has_one_bin() -> None:
    assert zero_aligned_edges(-2.0, -2.0, 30).tolist() == [-2.0, -2.0]
    assert n_negative_bins(np.array([-2.0, -2.0])) == 1 and n_negative_bins(np.array([0.0, 0.0])) == 0
    assert bin_index(np.array([3.0, 3.0]), np.array([3.0, 3.0])).tolist() == [0, 0]


def _values(rng: np.random.Generator) -> np.ndarray:
    """Neurons of every shape of range, with ties, repeated extremes and values exactly on edges."""
    n = 240
    columns = [
        rng.normal(size=n),
        np.maximum(rng.normal(size=n), 0),  # a ReLU: many zeros
        -np.abs(rng.normal(size=n)),
        rng.integers(-3, 4, size=n).astype(float),  # every value on an edge
        np.full(n, 1.5),  # constant
        np.round(rng.uniform(-1, 9, size=n), 1),
        rng.exponential(size=n) - 0.05,  # a sliver below zero: one negative bin
    ]
    return np.stack(columns, axis=1).astype(np.float32)


@pytest.mark.parametrize("bins", [2, 7, 30])
def test_counts_equal_numpy_histogram_per_class_with_the_returned_edges(bins: int) -> None:
    rng = np.random.default_rng(0)
    values = _values(rng)
    codes = rng.integers(0, 4, size=len(values))
    edges, counts = class_counts(values, codes, 4, bins)
    assert counts.shape == (values.shape[1], bins, 4)
    for neuron, e in enumerate(edges):
        assert e[0] == values[:, neuron].min() and e[-1] == values[:, neuron].max()
        for c in range(4):
            expected, _ = np.histogram(values[codes == c, neuron], bins=e)
            assert counts[neuron, : len(e) - 1, c].tolist() == expected.tolist()
        assert counts[neuron, len(e) - 1 :].sum() == 0  # a constant neuron: bin 0 only
        assert counts[neuron].sum() == len(values)


def test_bin_index_is_half_open_with_the_last_bin_closed() -> None:
    edges = np.array([-1.0, 0.0, 1.0, 2.0])
    values = np.array([-1.0, -0.5, 0.0, 0.999, 1.0, 2.0])
    assert bin_index(values, edges).tolist() == [0, 0, 1, 1, 2, 2]
    for value, b in zip(values, bin_index(values, edges)):  # brute force: the bin whose interval holds it
        inside = [k for k in range(3) if edges[k] <= value < edges[k + 1] or (k == 2 and value == edges[3])]
        assert inside == [b]


def test_width_classes_follow_from_the_counts() -> None:
    totals = np.arange(0, 40).reshape(4, 10)
    for widths in [(3, 11), (1, 2), (5, 30)]:
        got = width_classes(totals, widths)
        for count, w in zip(totals.ravel(), got.ravel()):
            expected = 0 if count == 0 else 1 if count <= widths[0] else 2 if count <= widths[1] else 3
            assert w == expected


def test_values_on_and_next_to_every_edge_are_binned_as_numpy_histogram_bins_them() -> None:
    """Float32 values at the float32 neighbours of every interior edge: where a first guess from the bin widths is
    most likely to be one bin off."""
    rng = np.random.default_rng(5)
    columns = []
    for _ in range(120):
        low, high = sorted(rng.normal(scale=rng.uniform(0.01, 100), size=2))
        if rng.random() < 0.2:  # a ReLU's range, from exactly 0
            low, high = 0.0, abs(high) + 0.1
        v = rng.uniform(low, high, size=300).astype(np.float32)
        v[:2] = np.float32(low), np.float32(high)
        e = zero_aligned_edges(v.min(), v.max(), 30)
        near = []
        for edge in e[1:-1]:
            f = np.float32(edge)
            near += [f, np.nextafter(f, np.float32(-np.inf)), np.nextafter(f, np.float32(np.inf))]
        near = np.clip(np.array(near, dtype=np.float32), v.min(), v.max())
        v[2 : 2 + len(near)] = near
        columns.append(v)
    values = np.stack(columns, axis=1)
    codes = rng.integers(0, 3, size=len(values))
    edges, counts = class_counts(values, codes, 3, 30)
    for neuron, e in enumerate(edges):
        assert np.array_equal(e, zero_aligned_edges(values[:, neuron].min(), values[:, neuron].max(), 30))
        for c in range(3):
            expected, _ = np.histogram(values[codes == c, neuron], bins=e)
            assert counts[neuron, :, c].tolist() == expected.tolist()
