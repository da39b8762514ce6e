"""Tukey selection, counts and tie-breaks against direct numpy on hand-made rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.reference import numpy_counts, python_children

from stepwise.ssa.select import _float32_bound, outlier_mask, quartiles, select_children

HAND_ROWS = [
    [0.0, 0.0, 0.0, 0.0, 0.0],  # constant: no outlier
    [1.0, 1.0, 1.0, 1.0, 9.0],  # IQR 0: anything above Q3 is an outlier
    [1.0, 2.0, 3.0, 4.0, 100.0],
    [-50.0, 1.0, 2.0, 3.0, 4.0],
    [5.0, 5.0, 5.0, 5.0, 5.0 + 1e-12],
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 2.5],  # fence exactly hit? q3 + 1.5 iqr = 0.6125 + ... checked by numpy
    [3.0],
    [1.0, 2.0],
    [2.0, 1.0, 7.0],
]


@pytest.mark.parametrize("row", HAND_ROWS, ids=range(len(HAND_ROWS)))
def test_quartiles_are_numpy_percentile(row: list[float]) -> None:
    q1, q3 = quartiles(torch.tensor(row, dtype=torch.float64))
    assert q1.item() == np.percentile(row, 25)
    assert q3.item() == np.percentile(row, 75)


def test_quartiles_random_rows_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    for k in [1, 2, 3, 4, 5, 7, 10, 64, 257, 4096]:
        rows = rng.standard_normal((20, k)) * rng.uniform(0.001, 1000)
        rows[::3] = np.round(rows[::3])  # ties
        q1, q3 = quartiles(torch.from_numpy(rows))
        np.testing.assert_array_equal(q1.numpy(), np.percentile(rows, 25, axis=1))
        np.testing.assert_array_equal(q3.numpy(), np.percentile(rows, 75, axis=1))


def test_float32_rows_use_float64_quartiles() -> None:
    rows = np.random.default_rng(1).standard_normal((50, 33)).astype(np.float32)
    q1, q3 = quartiles(torch.from_numpy(rows))
    np.testing.assert_array_equal(q3.numpy(), np.percentile(rows.astype(np.float64), 75, axis=1))


@pytest.mark.parametrize("sign", ["positive", "negative", "both"])
@pytest.mark.parametrize("fence", [0.5, 1.5, 3.0])
def test_outliers_match_numpy(sign: str, fence: float) -> None:
    rng = np.random.default_rng(2)
    omega = rng.standard_normal((4, 9, 30))
    omega[:, :, :3] *= 6  # heavy tails
    omega[0, 0] = 1.0  # constant row
    omega[1, 1, :] = np.round(omega[1, 1, :])  # ties
    mask = outlier_mask(torch.from_numpy(omega), fence=fence, sign=sign)
    np.testing.assert_array_equal(mask.sum(1).numpy(), numpy_counts(omega, fence, sign))
    assert mask[0, 0].sum() == 0


def test_float32_bound_compares_like_float64() -> None:
    rng = np.random.default_rng(5)
    values = torch.from_numpy(rng.standard_normal(400).astype(np.float32))
    exact = values[:50].double()  # thresholds a float32 value equals
    nudged = torch.cat([torch.nextafter(exact, exact + 1), torch.nextafter(exact, exact - 1)])  # between floats
    huge = torch.tensor([1e39, -1e39, 3.4028235e38, -3.4028235e38, 0.0, -0.0], dtype=torch.float64)
    thresholds = torch.cat([exact, nudged, huge, torch.from_numpy(rng.standard_normal(50))]).unsqueeze(1)
    candidates = torch.cat([values, torch.tensor([3.4028235e38, -3.4028235e38, 0.0])]).unsqueeze(0)
    assert torch.equal(candidates > _float32_bound(thresholds, down=True), candidates.double() > thresholds)
    assert torch.equal(candidates < _float32_bound(thresholds, down=False), candidates.double() < thresholds)


@pytest.mark.parametrize("sign", ["positive", "negative", "both"])
def test_float32_outliers_are_those_of_the_float64_values(sign: str) -> None:
    rng = np.random.default_rng(6)
    omega = (rng.standard_normal((3, 40, 25)) * rng.uniform(0.01, 100, (3, 40, 1))).astype(np.float32)
    omega[:, :, :4] *= 5
    omega[2] = np.round(omega[2])  # ties, and fences that fall on values
    counts = outlier_mask(torch.from_numpy(omega), sign=sign).sum(1).numpy()
    np.testing.assert_array_equal(counts, numpy_counts(omega.astype(np.float64), 1.5, sign))


def test_hand_rows_outliers() -> None:
    rows = torch.tensor(HAND_ROWS[2], dtype=torch.float64)
    # q1 = 2, q3 = 4, fences -1 and 7
    assert outlier_mask(rows, sign="positive").tolist() == [False, False, False, False, True]
    rows = torch.tensor(HAND_ROWS[3], dtype=torch.float64)
    assert outlier_mask(rows, sign="negative").tolist() == [True, False, False, False, False]
    assert outlier_mask(rows, sign="positive").tolist() == [False] * 5
    assert outlier_mask(torch.tensor(HAND_ROWS[1]), sign="both").tolist() == [False, False, False, False, True]


def test_value_equal_to_the_fence_is_not_an_outlier() -> None:
    # q1 = 1, q3 = 2 -> upper fence 3.5; numpy agrees.
    row = torch.tensor([0.0, 1.0, 1.0, 2.0, 2.0, 3.5, 1.5, 1.5, 1.0], dtype=torch.float64)
    q1, q3 = np.percentile(row.numpy(), [25, 75])
    assert q3 + 1.5 * (q3 - q1) == 3.5
    assert not outlier_mask(row)[5]
    assert outlier_mask(torch.cat([row, torch.tensor([3.5000001], dtype=torch.float64)]))[-1]


def test_children_tie_breaks_by_hand() -> None:
    counts = np.array(
        [
            [5, 5, 5, 2, 0],  # three tied counts: mean ω decides
            [3, 3, 0, 0, 0],  # tie in count and mean: smaller index
            [0, 0, 0, 0, 0],  # no outlier: no child
            [0, 1, 0, 0, 0],  # fewer positive counts than branching
        ]
    )
    mean = np.array(
        [
            [0.1, 0.3, 0.2, 9.0, 9.0],
            [0.5, 0.5, 1.0, 1.0, 1.0],
            [1.0, 2.0, 3.0, 4.0, 5.0],
            [0.0, -1.0, 0.0, 0.0, 0.0],
        ]
    )
    children = select_children(counts, mean, branching=2, sign="positive")
    assert [c.tolist() for c in children] == [[1, 2], [0, 1], [], [1]]
    negative = select_children(counts, mean, branching=2, sign="negative")
    assert [c.tolist() for c in negative] == [[0, 2], [0, 1], [], [1]]
    both = select_children(counts, -mean, branching=3, sign="both")
    assert both[0].tolist() == [1, 2, 0]


@pytest.mark.parametrize("sign", ["positive", "negative", "both"])
@pytest.mark.parametrize("branching", [1, 3, 7])
def test_children_match_python_sorting(sign: str, branching: int) -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 4, size=(40, 25))
    mean = np.round(rng.standard_normal((40, 25)), 1)  # many ties in mean too
    got = [c.tolist() for c in select_children(counts, mean, branching=branching, sign=sign)]
    assert got == python_children(counts, mean, branching, sign)
