"""The figures draw what the graph holds, and the field heat map equals a direct count."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import stepwise  # noqa: E402
from stepwise.inference.figures import field_heatmap, plot_field_heatmaps  # noqa: E402
from tests.inference.nets import SKIP_LEVELS, SkipNet, hand_field, skip_data  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    data = skip_data(50)
    ig = stepwise.InferenceGraphs(SkipNet(), SKIP_LEVELS, n_words=4, max_iter=8).fit(data)
    target = int(ig.words(data)["softmax"].mode().values)
    return ig, ig.class_graph(data, target, z=2)


def test_heatmap_equals_a_count_over_full_fields(fitted) -> None:
    ig, _ = fitted
    up, low = ig.validation_words_["act2"].numpy(), ig.validation_words_["act1"].numpy().reshape(-1, 9, 9)
    field = hand_field("act2", "act1")
    s, t = int(np.bincount(up.ravel()).argmax()), 1
    total, count = np.zeros((7, 7)), 0
    for p in range(16):  # interior positions have the full 7 x 7 field (pool 3/2 under a 3x3 conv)
        rows, cols = np.nonzero(field[p].reshape(9, 9))
        if rows.max() - rows.min() + 1 != 7 or cols.max() - cols.min() + 1 != 7:
            continue
        for n in range(up.shape[0]):
            if up[n, p] == s:
                total += low[n, rows.min() : rows.min() + 7, cols.min() : cols.min() + 7] == t
                count += 1
    assert count > 0
    np.testing.assert_allclose(field_heatmap(ig, "act2", s, "act1", t), total / count, rtol=1e-12)


def test_graph_figure_shows_every_word_with_its_patches(fitted, tmp_path) -> None:
    ig, graph = fitted
    fig = ig.plot_graph(graph, tmp_path / "graph.png", k=3)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    for key in graph.nodes:
        assert any(text.startswith(key + "\n") for text in texts), key
    images = [ax for ax in fig.axes if ax.images]
    expected = sum(len(ig.representatives(d["level"], d["index"], k=3)) for _, d in graph.nodes(data=True))
    assert len(images) == expected
    assert (tmp_path / "graph.png").stat().st_size > 1000
    shown = [t for t in fig.axes[0].texts if " | " in t.get_text() and t.get_text()[0].isdigit()]
    assert len(shown) == sum(1 for _, _, d in graph.edges(data=True) if d["log_ratio"] > 0)


def test_heatmaps_figure_skips_dense_fields(fitted, tmp_path) -> None:
    ig, graph = fitted
    fig = plot_field_heatmaps(ig, graph, tmp_path / "heat.png")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert all(not title.startswith(("fc:", "softmax:")) for title in titles)
    assert (tmp_path / "heat.png").exists()


def test_representatives_are_the_most_typical_columns(fitted) -> None:
    ig, _ = fitted
    data = ig._validation
    level = "act2"
    gmm = ig.gmms_[level]
    captured = []  # the level's activation, captured independently of the library
    handle = ig.model.act2.register_forward_hook(lambda m, a, out: captured.append(out.detach()))
    with torch.no_grad():
        ig.model(data)
    handle.remove()
    x = captured[0].flatten(2).transpose(1, 2).reshape(-1, 4)
    joint = gmm.log_joint(x)
    words = joint.argmax(1)
    word = int(torch.bincount(words).argmax())
    own = joint[:, word]
    rest = torch.logsumexp(torch.cat([joint[:, :word], joint[:, word + 1 :]], 1), 1)
    key = torch.where(words == word, own - rest, torch.tensor(-float("inf")))
    best = torch.argsort(key, descending=True, stable=True)[:5]
    got = ig.representatives(level, word, k=5)
    assert [(r.input, r.position) for r in got] == [(int(i) // 16, int(i) % 16) for i in best]
