"""ActivationSorter on the shipped digits CNN: values against an independent capture, counts against
numpy.histogram, the neuron view's bins, the draw per class, seeds, figures and the estimator contract."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from torch import Tensor, nn

import stepwise
from stepwise import ActivationSorter
from stepwise.models import DigitsCNN, digits_cnn, digits_data
from stepwise.sorter import NotFittedError

matplotlib.use("Agg")

LEVELS = ["features.0", "features.3", "features.6", "classifier.1", "softmax"]
PER_CLASS = 30


@pytest.fixture(scope="module")
def data() -> tuple[Tensor, Tensor]:
    d = digits_data()
    return d.images, d.labels


@pytest.fixture(scope="module")
def fitted(data: tuple[Tensor, Tensor]) -> ActivationSorter:
    images, labels = data
    return ActivationSorter(digits_cnn(), LEVELS, per_class=PER_CLASS, batch_size=64).fit(images, labels)


def reference_values(model: DigitsCNN, x: Tensor, reduce: str | None) -> dict[str, np.ndarray]:
    """The levels computed by running the model's modules by hand, in float64, and reduced with numpy."""
    model = model.double()
    with torch.no_grad():
        a0 = model.features[0](x.double())
        a3 = model.features[1:4](a0)
        a6 = model.features[4:7](a3)
        h1 = model.classifier[:2](torch.flatten(model.features[7](a6), 1))
        soft = torch.softmax(model.classifier[2](h1), dim=1)
    out = {}
    for name, a in zip(LEVELS, (a0, a3, a6, h1, soft)):
        array = a.numpy()
        if array.ndim == 4:
            flat = array.reshape(array.shape[0], array.shape[1], -1)
            array = (
                flat.mean(2) if reduce == "mean" else flat.max(2) if reduce == "max" else flat.reshape(len(flat), -1)
            )
        out[name] = array
    return out


def test_draws_per_class_inputs_and_records_labels_and_predictions(fitted: ActivationSorter, data) -> None:
    images, labels = data
    idx = fitted.indices_
    assert np.all(np.diff(idx) > 0)  # sorted, each once
    assert np.bincount(labels.numpy()[idx]).tolist() == [PER_CLASS] * 10
    assert np.array_equal(fitted.labels_, labels.numpy()[idx])
    with torch.no_grad():
        predicted = digits_cnn()(images[idx]).argmax(1).numpy()
    assert np.array_equal(fitted.predicted_, predicted)
    assert fitted.classes_.tolist() == list(range(10)) and fitted.levels_ == LEVELS


@pytest.mark.parametrize("reduce", ["mean", "max", None])
def test_values_equal_an_independent_capture(reduce: str | None, data) -> None:
    images, labels = data
    sorter = ActivationSorter(digits_cnn(), LEVELS, per_class=8, reduce=reduce, batch_size=16).fit(images, labels)
    expected = reference_values(digits_cnn(), images[sorter.indices_], reduce)
    for level in LEVELS:
        got = sorter.values_[level]
        assert got.dtype == np.float32 and got.shape == expected[level].shape
        scale = np.abs(expected[level]).max()
        np.testing.assert_allclose(got, expected[level], rtol=0, atol=1e-5 * scale)
    if reduce is None:
        assert sorter.values_["features.0"].shape == (80, 16 * 16 * 16)


def test_counts_equal_numpy_histogram_of_independently_captured_values(fitted: ActivationSorter, data) -> None:
    images, _ = data
    expected = reference_values(digits_cnn(), images[fitted.indices_], "mean")
    labels = fitted.labels_
    exact = 0
    for level in LEVELS:
        summary = fitted.layer_summary(level)
        tolerance = 2 * np.abs(fitted.values_[level] - expected[level]).max(axis=0)  # per neuron, as measured
        assert np.all(tolerance <= 2e-5 * np.abs(expected[level]).max())
        for n, edges in enumerate(summary.edges):
            # the same numbers: the histogram of the stored values is exact
            for c in summary.classes:
                hist, _ = np.histogram(fitted.values_[level][labels == c, n], bins=edges)
                assert summary.counts[n, : len(edges) - 1, c].tolist() == hist.tolist()
            # the independent values: exact wherever none of them lies within the capture's tolerance of an edge
            ref = expected[level][:, n]
            inner = edges[1:-1]
            if len(inner) and np.min(np.abs(ref[:, None] - inner[None, :])) <= tolerance[n]:
                continue
            clipped = np.clip(ref, edges[0], edges[-1])  # float64 values may pass the float32 extremes
            for c in summary.classes:
                hist, _ = np.histogram(clipped[labels == c], bins=edges)
                assert summary.counts[n, : len(edges) - 1, c].tolist() == hist.tolist()
            exact += 1
    assert exact >= 0.8 * sum(fitted.values_[level].shape[1] for level in LEVELS)


def test_zero_is_an_edge_whenever_the_range_spans_it(fitted: ActivationSorter, data) -> None:
    units = ActivationSorter(digits_cnn(), ["features.0"], per_class=5, reduce=None).fit(*data)
    summary = units.layer_summary("features.0", bins=30)  # a convolution's units before its ReLU: both signs
    spans, negative = 0, summary.n_negative
    for n, edges in enumerate(summary.edges):
        v = units.values_["features.0"][:, n]
        if v.min() <= 0 <= v.max():
            assert 0.0 in edges
            spans += 1
        if v.min() < 0 < v.max():
            expected = min(max(round(30 * -float(v.min()) / (float(v.max()) - float(v.min()))), 1), 29)
            assert negative[n] == expected
    assert spans >= 100
    for level in fitted.levels_:
        for edges, v in zip(fitted.layer_summary(level).edges, fitted.values_[level].T):
            assert (0.0 in edges) or not (v.min() <= 0 <= v.max())


def test_widths_and_percentages_follow_from_the_counts(fitted: ActivationSorter) -> None:
    summary = fitted.layer_summary("features.6", widths=(2, 9))
    percentages = summary.percentages
    for n in range(len(summary.neurons)):
        for b in range(summary.bins):
            total = int(summary.counts[n, b].sum())
            assert summary.width_class[n, b] == (0 if total == 0 else 1 if total <= 2 else 2 if total <= 9 else 3)
            for c in range(10):
                expected = 0.0 if total == 0 else 100.0 * summary.counts[n, b, c] / total
                assert percentages[n, b, c] == pytest.approx(expected, abs=1e-12)
    assert summary.counts.sum(axis=(1, 2)).tolist() == [len(fitted.indices_)] * 64


def test_a_subset_of_neurons_in_the_order_given(fitted: ActivationSorter) -> None:
    full = fitted.layer_summary("features.3")
    part = fitted.layer_summary("features.3", neurons=[5, 2])
    assert part.neurons.tolist() == [5, 2]
    assert np.array_equal(part.counts, full.counts[[5, 2]])
    assert part.kinds == [full.kinds[5], full.kinds[2]]


def test_every_input_is_in_exactly_one_bin_of_the_neuron_view(fitted: ActivationSorter) -> None:
    values = fitted.values_["classifier.1"]
    for neuron in range(0, 64, 7):
        view = fitted.neuron_view("classifier.1", neuron)
        members = np.concatenate(view.members)
        assert sorted(members.tolist()) == fitted.indices_.tolist()
        assert np.array_equal(
            view.counts, fitted.layer_summary("classifier.1", neurons=[neuron]).totals[0, : len(view.counts)]
        )
        position = {int(i): p for p, i in enumerate(fitted.indices_)}
        last = len(view.edges) - 2
        for b, group in enumerate(view.members):
            v = values[[position[int(i)] for i in group], neuron]
            low, high = view.edges[b], view.edges[b + 1]
            assert np.all((v >= low) & ((v < high) | ((b == last) & (v <= high))))
            assert np.all(np.diff(v) <= 0)  # largest value first
            assert np.array_equal(view.values[b], v)


def test_same_seed_same_output_another_seed_other_inputs(data) -> None:
    images, labels = data
    runs = [ActivationSorter(digits_cnn(), ["features.6"], per_class=10, seed=s).fit(images, labels) for s in (3, 3, 4)]
    assert np.array_equal(runs[0].indices_, runs[1].indices_)
    assert np.array_equal(runs[0].values_["features.6"], runs[1].values_["features.6"])
    assert np.array_equal(runs[0].layer_summary("features.6").counts, runs[1].layer_summary("features.6").counts)
    assert runs[0].neuron_types("features.6").equals(runs[1].neuron_types("features.6"))
    assert not np.array_equal(runs[0].indices_, runs[2].indices_)


def test_all_inputs_of_a_class_with_fewer_than_per_class(data) -> None:
    images, labels = data
    keep = torch.cat([torch.nonzero(labels == 0)[:5, 0], torch.nonzero(labels == 1)[:40, 0]])
    sorter = ActivationSorter(digits_cnn(), ["classifier.1"], per_class=12).fit(images[keep], labels[keep])
    assert np.bincount(sorter.labels_).tolist() == [5, 12]
    assert set(range(5)) <= set(sorter.indices_.tolist())


def test_input_level_alone_and_default_levels(data) -> None:
    images, labels = data
    sorter = ActivationSorter(digits_cnn(), ["input"], per_class=3).fit(images, labels)
    expected = images[sorter.indices_].flatten(1).mean(1, keepdim=True).numpy()
    np.testing.assert_allclose(sorter.values_["input"], expected, rtol=1e-6)
    default = ActivationSorter(digits_cnn(), per_class=2).fit(images, labels)
    assert default.levels_ == stepwise.default_levels(digits_cnn(), images[:2])


def test_model_left_as_it_was(data) -> None:
    images, labels = data
    model = digits_cnn().train()
    model.features[0].weight.requires_grad_(False)
    with pytest.warns(UserWarning, match="train mode"):
        ActivationSorter(model, ["features.3"], per_class=2).fit(images, labels)
    assert model.training and all(m.training for m in model.modules())
    assert not model.features[0].weight.requires_grad and model.classifier[0].weight.requires_grad
    assert all(not m._forward_hooks for m in model.modules())


def test_from_values_and_not_fitted() -> None:
    sorter = ActivationSorter(nn.Linear(3, 2))
    with pytest.raises(NotFittedError, match=r"not fitted yet, so it has no 'values_': call fit\(inputs, labels\)"):
        sorter.values_
    with pytest.raises(NotFittedError, match="not fitted yet"):
        sorter.layer_summary("0")
    built = ActivationSorter.from_values({"a": np.arange(12.0).reshape(6, 2)}, [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0])
    assert built.indices_.tolist() == list(range(6)) and built.values_["a"].dtype == np.float32
    view = built.neuron_view("a", 1, bins=3)
    assert [m.tolist() for m in view.members] == [[1, 0], [3, 2], [5, 4]]
    assert [view.misclassified(b).tolist() for b in range(3)] == [[True, False], [False, False], [True, False]]
    assert repr(built.layer_summary("a")) == "LayerSummary(level='a', neurons=2, bins=30, classes=3, inputs=6)"


def test_layer_summary_figure_rows_pages_and_order(tmp_path) -> None:
    rng = np.random.default_rng(1)
    values = np.maximum(rng.normal(size=(90, 100)), 0) * rng.uniform(0.5, 3, size=100)
    values[:, 7] -= 0.5  # both signs: a row starting left of the zero line
    sorter = ActivationSorter.from_values({"l": values}, rng.integers(0, 4, size=90))
    summary = sorter.layer_summary("l")
    assert summary.n_pages() == 2 and summary.n_pages(per_page=100) == 1
    fig = summary.plot(page=1, order="kind", class_names={0: "zero"})
    ax = fig.axes[0]
    rows = [int(t.get_text()) for t in ax.get_yticklabels()]
    assert len(rows) == 36 and rows == summary.neurons[summary.order("kind")[64:]].tolist()
    assert any(line.get_linewidth() > 2 and line.get_xdata()[0] == 0 for line in ax.get_lines())  # the zero line
    assert "zero" in [t.get_text() for t in ax.get_legend().get_texts()]
    first = summary.plot(order="index")
    assert first.axes[0].get_xlim()[0] < -0.5  # neuron 7 reaches below zero
    by_class = summary.order("class")
    assert np.all(np.diff(summary.preferred[by_class]) >= 0)
    with pytest.raises(ValueError, match=r"must be an int in the range \[0, 1\]"):
        summary.plot(page=2)
    with pytest.raises(ValueError, match="must be one of {'index', 'kind', 'class'}"):
        summary.plot(order="size")


def test_neuron_view_figure_marks_misclassified_inputs(fitted: ActivationSorter) -> None:
    view = fitted.neuron_view("softmax", 3)
    fig = view.plot(per_bin=5)
    shown = [b for b in range(len(view.members)) if len(view.members[b])][::-1]
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == sum(min(5, len(view.members[b])) for b in shown)
    wrong = sum(int(view.misclassified(b)[:5].sum()) for b in shown)
    red = [ax for ax in fig.axes if ax.get_title() and ax.title.get_color() == "#d62728"]
    assert len(red) == wrong
    assert all("→" in t for t in titles)


def test_check_runs_one_probe_on_two_inputs_and_progress_shows_a_bar(data, capsys: pytest.CaptureFixture) -> None:
    images, labels = data
    sizes: list[int] = []
    model = digits_cnn()
    forward = model.forward
    model.forward = lambda x: (sizes.append(len(x)), forward(x))[1]
    sorter = ActivationSorter(model, ["features.6"], per_class=5, progress=True)
    sorter.check(images, labels)
    assert sizes == [2]
    with pytest.raises(ValueError, match="Did you mean 'features.6'"):
        ActivationSorter(model, ["feature.6"]).check(images, labels)
    sorter.fit(images, labels)
    assert sizes == [2, 2, 2, 50] and "sorting" in capsys.readouterr().err  # probes, then one batch of 50


def test_non_finite_activation_in_a_later_batch_names_the_level_and_the_inputs() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3)).eval()
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    data = torch.ones(6, 3)
    data[5] = 2e38  # finite, but 3 * 2e38 overflows float32 in the first layer
    sorter = ActivationSorter(model, ["1"], batch_size=2)
    with pytest.raises(ValueError, match=r"Level '1' holds NaN or Inf values for the inputs \[5\]"):
        sorter.fit(data, torch.tensor([0, 1, 0, 1, 0, 1]))


def test_neuron_view_draws_images_vectors_or_indices() -> None:
    values = np.arange(8.0).reshape(8, 1)
    labels = [0, 1, 0, 1, 0, 1, 0, 1]
    for inputs, drawn in ((np.random.default_rng(0).random((8, 1, 5, 5)), (5, 5)), (np.ones((8, 6)), (1, 6))):
        view = ActivationSorter.from_values({"l": values}, labels, inputs=inputs).neuron_view("l", 0, bins=2)
        images = [im for ax in view.plot().axes for im in ax.get_images()]
        assert len(images) == 8 and all(im.get_array().shape == drawn for im in images)
    view = ActivationSorter.from_values({"l": values}, labels).neuron_view("l", 0, bins=2)
    texts = [t.get_text() for ax in view.plot().axes for t in ax.texts]
    assert {f"#{i}" for i in range(8)} <= set(texts)
    with pytest.raises(ValueError, match="Found 3 inputs for 8 rows of values"):
        ActivationSorter.from_values({"l": values}, labels, inputs=np.ones((3, 2)))
