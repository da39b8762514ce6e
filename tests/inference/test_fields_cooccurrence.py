"""Receptive fields read from the model against the arithmetic of the layers; co-occurrence, transitions and the
selection scores against direct loops over inputs and positions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import stepwise
from stepwise.inference.cooccurrence import cooccurrence_counts
from stepwise.inference.fields import field_boxes, field_index
from tests.inference.nets import SKIP_LEVELS, SkipNet, hand_field, skip_data

PAIRS = [("act2", "act1"), ("act3", "act2"), ("fc", "act3"), ("softmax", "fc")]


@pytest.fixture(scope="module")
def fitted() -> tuple[stepwise.InferenceGraphs, torch.Tensor]:
    model = SkipNet()
    validation = skip_data(40, seed=6)
    ig = stepwise.InferenceGraphs(model, SKIP_LEVELS, n_words={"act1": 5, "act2": 4, "act3": 4, "fc": 3}, max_iter=15)
    return ig.fit(skip_data(60), validation=validation), validation


@pytest.mark.parametrize("pair", PAIRS)
def test_receptive_field_equals_the_layer_arithmetic(fitted, pair) -> None:
    ig, _ = fitted
    np.testing.assert_array_equal(ig.receptive_field(*pair), hand_field(*pair))


def test_field_of_the_input_gives_pixel_boxes(fitted) -> None:
    ig, _ = fitted
    # act1 position (0, 0): the 3x3 conv with padding 1 reads pixels rows 0..1, cols 0..1; (4, 4): rows 3..5
    box = ig.representatives("act1", int(ig.validation_words_["act1"][0, 0]), k=1)[0]
    assert len(box.box) == 4
    boxes = ig._boxes["act1"]
    assert tuple(boxes[0]) == (0, 0, 2, 2) and tuple(boxes[4 * 9 + 4]) == (3, 3, 6, 6)
    assert tuple(ig._boxes["fc"][0]) == (0, 0, 9, 9)


def loop_cooccurrence(upper_words, lower_words, field, k_upper, k_lower) -> np.ndarray:
    """Eq. 4 by a loop over inputs, upper positions and lower positions."""
    counts = np.zeros((k_upper, k_lower), dtype=np.int64)
    for n in range(upper_words.shape[0]):
        for p in range(upper_words.shape[1]):
            for q in range(lower_words.shape[1]):
                if field[p, q]:
                    counts[upper_words[n, p], lower_words[n, q]] += 1
    return counts


@pytest.mark.parametrize("pair", PAIRS)
def test_cooccurrence_equals_a_loop_over_positions(fitted, pair) -> None:
    ig, validation = fitted
    words = ig.words(validation)
    up, low = pair
    u = words[up].reshape(len(validation), -1).numpy()
    w = words[low].reshape(len(validation), -1).numpy()
    expected = loop_cooccurrence(u, w, hand_field(*pair), ig.n_words_[up], ig.n_words_[low])
    np.testing.assert_array_equal(ig.cooccurrence(up, low), expected)
    assert expected.sum() == len(validation) * hand_field(*pair).sum()


def test_transitions_are_eq_6(fitted) -> None:
    ig, _ = fitted
    counts = ig.cooccurrence("act2", "act1").astype(float)
    table = ig.transitions("act2", "act1")
    for k in range(counts.shape[0]):
        total = counts[k].sum()
        for j in range(counts.shape[1]):
            assert table[k, j] == pytest.approx(counts[k, j] / total if total else 0.0, rel=1e-12)


def test_words_are_the_argmax_of_the_posteriors(fitted) -> None:
    ig, validation = fitted
    posteriors, words = ig.posteriors(validation), ig.words(validation)
    for name in ig.levels_:
        assert torch.equal(words[name], posteriors[name].argmax(1))
        sums = posteriors[name].sum(1)
        assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5)
    assert posteriors["act1"].shape == (40, 5, 9, 9) and posteriors["fc"].shape == (40, 3)
    predicted = SkipNet()(validation).argmax(1)
    assert torch.equal(words["softmax"], predicted)


def test_class_graph_scores_are_eqs_15_and_16(fitted) -> None:
    ig, validation = fitted
    words = ig.words(validation)
    target = int(torch.mode(words["softmax"]).values)
    graph = ig.class_graph(validation, target, z=2)
    omega = (words["softmax"] == target).nonzero().flatten()
    assert graph.n_inputs == len(omega)
    chosen = [target]
    for up, low in PAIRS[::-1]:
        field = hand_field(up, low)
        u = words[up][omega].reshape(len(omega), -1).numpy()
        w = words[low][omega].reshape(len(omega), -1).numpy()
        k_up, k_low = ig.n_words_[up], ig.n_words_[low]
        q = loop_cooccurrence(u, w, field, k_up, k_low)  # Q'[s, t] of Eq. 15
        n = ig.cooccurrence(up, low).astype(float)
        p_t = n.sum(0) / n.sum()
        scores = []
        for t in range(k_low):
            total = 0.0
            for s in chosen:
                if q[s, t]:
                    p_ts = n[s, t] / n[s].sum() if n[s].sum() else 0.0
                    total += q[s, t] * (math.log2(p_ts / p_t[t]) if p_ts > 0 else -math.inf)
            scores.append(total)
        order = sorted(range(k_low), key=lambda t: (-scores[t], t))
        expected = [t for t in order[:2] if scores[t] > 0]
        assert graph.words(low) == sorted(expected, key=lambda t: (-scores[t], t))
        for t in expected:
            node = graph.nodes[f"{low}:{t}"]
            assert node["score"] == pytest.approx(scores[t], rel=1e-9)
            assert node["size"] == int((w == t).sum())
        for s in chosen:
            for t in expected:
                key = (f"{up}:{s}", f"{low}:{t}")
                if q[s, t] == 0:
                    assert key not in graph.edges
                    continue
                edge = graph.edges[key]
                ratio = math.log2((n[s, t] / n[s].sum()) / p_t[t])
                assert edge["count"] == q[s, t]
                assert edge["frequency"] == pytest.approx(q[s, t] / q[s].sum(), rel=1e-12)
                assert edge["log_ratio"] == pytest.approx(ratio, rel=1e-9)
                assert edge["score"] == pytest.approx(q[s, t] * ratio, rel=1e-9)
        chosen = expected
        if not chosen:
            break


def test_image_graph_is_the_class_graph_of_one_input(fitted) -> None:
    ig, validation = fitted
    one = ig.image_graph(validation[3])
    target = int(ig.words(validation[3:4])["softmax"][0])
    assert one.target == target and one.n_inputs == 1 and one.attrs["scope"] == "image"
    again = ig.class_graph(validation[3:4], target)
    assert {n: d["score"] for n, d in one.nodes(data=True)} == {n: d["score"] for n, d in again.nodes(data=True)}


def test_field_index_and_boxes_by_hand() -> None:
    field = np.array([[True, False, True, False], [False, False, False, True]])
    np.testing.assert_array_equal(field_index(field), [[0, 2], [3, 4]])
    np.testing.assert_array_equal(field_boxes(field, (2, 2)), [[0, 0, 2, 1], [1, 1, 2, 2]])
    words_up = torch.tensor([[1, 0]])
    words_low = torch.tensor([[2, 0, 1, 2]])
    counts = cooccurrence_counts(words_up, words_low, field_index(field), 2, 3)
    np.testing.assert_array_equal(counts, [[0, 0, 1], [0, 1, 1]])
