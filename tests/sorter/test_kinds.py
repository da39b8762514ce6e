"""Kinds of neurons from hand-made distributions: one test per kind, and neurons on each side of each threshold.

Every neuron here has 200 inputs, 20 of each of 10 classes; a neuron is written as the classes of its inputs in
ascending order of value (values 1 to 200), so its top decile is the last 20 classes written and its bottom decile
the first 20.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from stepwise import ActivationSorter

N_CLASSES, PER_CLASS = 10, 20
SPREAD = [c for c in range(N_CLASSES) for _ in range(2)]  # two of each class: 20 inputs, no class over 10 %
MIDDLE = [c for c in range(1, 9) for _ in range(2)] + [1, 2, 3, 4]  # 20 inputs of classes 1 to 8, none over 15 %


def ordered(bottom: list[int], top: list[int], low_middle: list[int] = (), high_middle: list[int] = ()) -> list[int]:
    """Classes of 200 inputs in ascending order of value: ``bottom``, then ``low_middle``, the remaining inputs (the
    classes interleaved), ``high_middle`` and ``top``."""
    fixed = Counter(bottom) + Counter(top) + Counter(low_middle) + Counter(high_middle)
    assert all(fixed[c] <= PER_CLASS for c in range(N_CLASSES)), fixed
    left = {c: PER_CLASS - fixed[c] for c in range(N_CLASSES)}
    rest = [c for i in range(PER_CLASS) for c in range(N_CLASSES) if i < left[c]]  # interleaved: medians alike
    order = list(bottom) + list(low_middle) + rest + list(high_middle) + list(top)
    assert len(order) == N_CLASSES * PER_CLASS and len(top) == len(bottom) == 20
    return order


def kind(order: list[int], shift: float = 0.0, **thresholds: float) -> dict:
    values = np.arange(1, len(order) + 1, dtype=np.float32) + shift
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(order))  # the input order must not matter
    sorter = ActivationSorter.from_values({"layer": values[perm, None]}, np.array(order)[perm])
    return sorter.neuron_types("layer", **thresholds).iloc[0].to_dict()


def top_of(*groups: tuple[int, int]) -> list[int]:
    """A top (or bottom) decile: ``count`` inputs of each ``class``, filled up to 20 with distinct other classes."""
    chosen = [c for c, count in groups for _ in range(count)]
    others = [c for c in range(N_CLASSES) if c not in {c for c, _ in groups}]
    return chosen + others[: 20 - len(chosen)]


# ------------------------------------------------------------------------------------------------ zeroing


def test_zeroing_at_most_five_percent_positive() -> None:
    row = kind(ordered(SPREAD, SPREAD), shift=-190.0)  # values -189..10: 10 of 200 positive, 5 %
    assert row["kind"] == "zeroing" and row["positive_fraction"] == pytest.approx(0.05)
    assert "5.0% of values > 0" in row["evidence"]


def test_zeroing_borderline_eleven_positive_is_not_zeroing() -> None:
    row = kind(ordered(SPREAD, SPREAD), shift=-189.0)  # 11 positive
    assert row["positive_fraction"] == pytest.approx(0.055) and row["kind"] != "zeroing"


def test_relu_neuron_with_almost_all_zeros_is_zeroing() -> None:
    values = np.zeros((200, 1), dtype=np.float32)
    values[:3] = 1.0
    row = ActivationSorter.from_values({"l": values}, np.arange(200) % 10).neuron_types("l").iloc[0]
    assert row["kind"] == "zeroing"


# ------------------------------------------------------------------------------------------------ specialised


def test_specialised_top_decile_sixty_percent_one_class() -> None:
    row = kind(ordered(SPREAD, top_of((3, 12))))
    assert row["kind"] == "specialised" and row["top_class"] == 3 and row["top_share"] == pytest.approx(0.6)


def test_specialised_borderline_fifty_five_percent_is_bisemantic_with_a_second_class() -> None:
    row = kind(ordered(SPREAD, top_of((3, 11), (5, 9))))
    assert row["top_share"] == pytest.approx(0.55) and row["kind"] == "bisemantic"


def test_sparse_relu_detector_is_specialised_despite_the_zero_floor() -> None:
    """A neuron at 0 for 90 % of inputs: the zeros are left out of its top decile."""
    labels = np.arange(200) % 10
    values = np.zeros(200, dtype=np.float32)
    values[labels == 4] = np.linspace(1, 2, 20)  # class 4 fires, 10 % of inputs
    row = ActivationSorter.from_values({"l": values[:, None]}, labels).neuron_types("l").iloc[0]
    assert row["kind"] == "specialised" and row["top_class"] == 4 and row["top_share"] == 1.0


# ------------------------------------------------------------------------------------------------ bisemantic


def test_bisemantic_two_classes_make_eighty_percent() -> None:
    row = kind(ordered(SPREAD, top_of((1, 10), (6, 6))))
    assert row["kind"] == "bisemantic" and row["top_two_share"] == pytest.approx(0.8)


def test_bisemantic_borderline_seventy_five_percent_needs_a_third_class() -> None:
    row = kind(ordered(SPREAD, top_of((1, 10), (6, 5))))
    assert row["top_two_share"] == pytest.approx(0.75) and row["kind"] == "polysemantic"
    assert row["top_needed"] == 3


# ------------------------------------------------------------------------------------------------ polysemantic


def test_polysemantic_four_classes_needed() -> None:
    row = kind(ordered(SPREAD, top_of((0, 5), (2, 5), (4, 5), (8, 5))))
    assert row["kind"] == "polysemantic" and row["top_needed"] == 4


def test_polysemantic_borderline_five_classes_needed_is_not_polysemantic() -> None:
    row = kind(ordered(SPREAD, top_of((0, 4), (2, 4), (4, 4), (8, 3), (9, 3), (7, 2))))
    assert row["top_needed"] == 5 and row["kind"] == "other"
    assert kind(ordered(SPREAD, top_of((0, 4), (2, 4), (4, 4), (8, 3), (9, 3), (7, 2))), max_classes=5)["kind"] == (
        "polysemantic"
    )


# ------------------------------------------------------------------------------------------------ suppressing


def test_suppressing_bottom_decile_sixty_percent_one_class() -> None:
    row = kind(ordered(top_of((7, 12)), SPREAD))
    assert row["kind"] == "suppressing" and row["bottom_class"] == 7 and row["bottom_share"] == pytest.approx(0.6)


def test_suppressing_borderline_eleven_of_twenty_is_not_suppressing() -> None:
    row = kind(ordered(top_of((7, 11)), SPREAD))
    assert row["bottom_share"] == pytest.approx(0.55) and row["kind"] == "other"


def test_suppressing_needs_another_class_than_the_tops() -> None:
    top = [7, 7, 7] + [c for c in range(N_CLASSES) if c != 7 for _ in range(2)][:17]
    row = kind(ordered(top_of((7, 12)), top))
    assert row["bottom_class"] == 7 and row["top_class"] == 7 and row["kind"] != "suppressing"


# ------------------------------------------------------------------------------------------------ differentiating


def test_differentiating_two_classes_far_apart_with_little_overlap() -> None:
    """Class 0 low, class 9 high, the deciles mixed of classes 1 to 8."""
    row = kind(ordered(MIDDLE, MIDDLE, low_middle=[0] * 20, high_middle=[9] * 20))
    assert (row["low_class"], row["high_class"]) == (0, 9)
    assert row["separation"] >= 0.5 and row["overlap"] == 0.0 and row["kind"] == "differentiating"


@pytest.mark.parametrize(("moved", "expected"), [(4, "differentiating"), (5, "other")])
def test_differentiating_borderline_overlap(moved: int, expected: str) -> None:
    """``moved`` of class 9's inputs put in the bottom decile: 4 of the pair's 40 inputs (10 %) on the wrong side
    still differentiate, 5 do not."""
    bottom = [9] * moved + MIDDLE[: 20 - moved]
    row = kind(ordered(bottom, MIDDLE, low_middle=[0] * 20, high_middle=[9] * (20 - moved)))
    assert row["overlap"] == pytest.approx(moved / 40) and row["kind"] == expected, row


def test_differentiating_borderline_separation() -> None:
    order = ordered(MIDDLE, MIDDLE, low_middle=[0] * 20, high_middle=[9] * 20)
    separation = kind(order)["separation"]
    assert kind(order, separation=separation)["kind"] == "differentiating"
    assert kind(order, separation=separation + 0.01)["kind"] == "other"


# ------------------------------------------------------------------------------------------------ other


def test_other_when_nothing_holds() -> None:
    row = kind(ordered(SPREAD, SPREAD))
    assert row["kind"] == "other" and row["top_needed"] == 8


def test_constant_positive_neuron_is_other() -> None:
    sorter = ActivationSorter.from_values({"l": np.ones((30, 1))}, np.arange(30) % 3)
    row = sorter.neuron_types("l").iloc[0]
    assert row["kind"] == "other" and row["evidence"] == "constant"


def test_kinds_do_not_depend_on_the_input_order_and_evidence_matches_the_numbers() -> None:
    order = ordered(SPREAD, top_of((3, 12)))
    values = np.arange(1, 201, dtype=np.float32)[:, None]
    forward = ActivationSorter.from_values({"l": values}, order).neuron_types("l")
    backward = ActivationSorter.from_values({"l": values[::-1]}, order[::-1]).neuron_types("l")
    assert forward.drop(columns=["neuron"]).equals(backward.drop(columns=["neuron"]))
    assert forward.iloc[0]["evidence"] == "top 0.1: 60% class 3"


def test_unknown_threshold_is_named() -> None:
    sorter = ActivationSorter.from_values({"l": np.ones((4, 1))}, [0, 1, 0, 1])
    with pytest.raises(TypeError, match=r"unknown threshold\(s\) \['dominat'\]"):
        sorter.neuron_types("l", dominat=0.5)
    with pytest.raises(ValueError, match="'cover' parameter .* must be a float in the range \\[0, 1\\]"):
        sorter.neuron_types("l", cover=1.5)
