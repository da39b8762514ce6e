"""Figures render headless from real traversals and show what they should: values, labels a user can read
(inside the figure, inside their circles, one per column), legends, stopped levels, bounded sizes."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.patches import FancyArrowPatch, Rectangle
from matplotlib.text import Text
from scipy.cluster.hierarchy import leaves_list

import stepwise
from tests.helpers import trained_mlp
from stepwise import cluster_graphs, cosine_ward_linkage
from stepwise.graphs.draw import edge_width
from stepwise.graphs.paths import PathsGraph
from stepwise.plot import plot_clustermap, plot_graph, plot_outlier_frequency, plot_relevance_heatmap

matplotlib.use("Agg")  # headless
pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning:seaborn", "ignore::PendingDeprecationWarning:seaborn"
)
N_CLASSES = 5
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def analysis() -> dict:
    model, inputs, labels = trained_mlp()
    ssa = stepwise.StepwiseSensitivity(model, ["input", "1", "3", "softmax"], sign="both")
    own = inputs[labels == 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # some class graphs stop early, and say so
        graphs = {f"class {c}": ssa.dependency_graph(inputs[labels == c], target=c) for c in range(N_CLASSES)}
    return {
        "counts": ssa.outlier_counts(own, upper="softmax", lower="3", neurons=[0, 1]),
        "omega": ssa.relevance(own[:4], upper="softmax", lower="3", neurons=0)[0],
        "graph": graphs["class 0"],
        "stopped": graphs["class 1"],
        "graphs": graphs,
    }


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def saved(fig: plt.Figure, path: Path) -> bytes:
    fig.savefig(path, dpi=50)
    return path.read_bytes()


def drawn_texts(fig: plt.Figure) -> list[tuple[Text, object]]:
    """Every visible, non-empty text of the figure with its extent in pixels, after drawing with a renderer."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    undrawn = set()  # labels of ticks outside the view limits, which matplotlib keeps but does not draw
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks():
                if not low - 1e-9 <= tick.get_loc() <= high + 1e-9:
                    undrawn |= {id(tick.label1), id(tick.label2)}
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in undrawn]
    return [(t, t.get_window_extent(renderer)) for t in texts]


def assert_inside_the_figure(fig: plt.Figure) -> int:
    """Every text lies inside the figure (to a pixel); returns how many there are."""
    box = fig.bbox
    texts = drawn_texts(fig)
    for text, e in texts:
        inside = box.x0 - 1 <= e.x0 and e.x1 <= box.x1 + 1 and box.y0 - 1 <= e.y0 and e.y1 <= box.y1 + 1
        assert inside, f"{text.get_text()!r} at {e} leaves the figure {box}"
    return len(texts)


def assert_apart(labels: list[Text], fig: plt.Figure) -> None:
    """Tick labels along x do not overlap (to half a pixel)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    extents = sorted((t.get_window_extent(renderer) for t in labels), key=lambda e: e.x0)
    for left, right in zip(extents, extents[1:]):
        assert left.x1 <= right.x0 + 0.5, (left, right)


# ------------------------------------------------------------------------------------------ Fig. 2a


def test_outlier_frequency_bars(analysis, tmp_path):
    row = analysis["counts"][0]
    counts = row.numpy()
    assert counts.max() >= 1 and (counts == 0).any()  # the test is about something
    fig = plot_outlier_frequency(row, level="3", neuron="softmax:0")
    (ax,) = fig.axes
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    outliers = np.flatnonzero(counts >= 1)
    assert len(bars) == len(outliers)
    heights = [bar.get_height() for bar in bars]
    assert heights == sorted(counts[outliers], reverse=True)
    expected_order = sorted(outliers, key=lambda k: (-counts[k], k))
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(k) for k in expected_order]
    share = len(outliers) / 48
    assert ax.get_title() == f"{len(outliers)} unique outliers ({share:.1%} of the 48 neurons of 3) for softmax:0"
    assert saved(fig, tmp_path / "bars.png").startswith(PNG)


def test_outlier_frequency_accepts_arrays_and_axes(analysis):
    row = analysis["counts"][1]
    from_tensor = [p.get_height() for p in plot_outlier_frequency(row).axes[0].patches]
    fig, ax = plt.subplots()
    assert plot_outlier_frequency(row.numpy().tolist(), ax=ax) is fig
    assert [p.get_height() for p in ax.patches] == from_tensor
    many = plot_outlier_frequency(np.arange(60)).axes[0]
    assert len(many.patches) == 59 and many.get_title() == "59 unique outliers (98.3% of the 60 neurons)"
    assert [t.get_text() for t in many.get_xticklabels()] == [str(k) for k in range(59, 0, -1)]  # every bar
    assert many.get_xlabel() == "lower neurons"
    assert_apart(many.get_xticklabels(), many.figure)
    assert_inside_the_figure(many.figure)


def test_outlier_frequency_of_a_wide_level_labels_every_kth_bar():
    counts = np.arange(400) % 7 + 1  # 400 outliers, highest count first, ties by index
    fig = plot_outlier_frequency(counts, level="model.layers.11.mlp.down_proj", neuron="model.layers.11:3")
    (ax,) = fig.axes
    assert len(ax.patches) == 400 and fig.get_figwidth() <= 16.0
    order = sorted(range(400), key=lambda k: (-counts[k], k))
    labels = [t.get_text() for t in ax.get_xticklabels()]
    stride = int(re.search(r"one label every (\d+) bars", ax.get_xlabel()).group(1))
    assert stride > 1 and labels == [str(k) for k in order[::stride]]
    assert_apart(ax.get_xticklabels(), fig)
    assert_inside_the_figure(fig)  # the long title is broken into lines inside the figure


def test_outlier_frequency_rejects_bad_rows(analysis):
    with pytest.raises(ValueError, match=r"must have 1 dimension\(s\); got shape \(2, 48\)"):
        plot_outlier_frequency(analysis["counts"])
    with pytest.raises(ValueError, match="non-negative integer counts"):
        plot_outlier_frequency([1, -2, 3])
    with pytest.raises(ValueError, match="non-negative integer counts"):
        plot_outlier_frequency([1.5, 2])


# ------------------------------------------------------------------------------------------ Fig. 2b


def test_relevance_heatmap(analysis, tmp_path):
    omega = analysis["omega"].numpy()
    fig = plot_relevance_heatmap(analysis["omega"], level="3")
    ax, colorbar = fig.axes
    np.testing.assert_allclose(np.asarray(ax.collections[0].get_array()).reshape(omega.shape), omega)
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"input {i}" for i in range(4)]
    assert colorbar.get_ylabel() == "ω" and ax.get_xlabel() == "neurons of 3"
    limit = np.abs(omega).max()
    assert ax.collections[0].get_clim() == pytest.approx((-limit, limit))  # centred on ω = 0
    zeros = plot_relevance_heatmap(np.zeros((2, 5))).axes[0]  # a saturated softmax gives rows of zeros
    assert zeros.collections[0].get_clim() == (-1.0, 1.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(k) for k in range(48)]  # every neuron labelled
    assert_apart(ax.get_xticklabels(), fig)
    assert_inside_the_figure(fig)
    assert saved(fig, tmp_path / "heatmap.png").startswith(PNG)


def test_relevance_heatmap_of_a_wide_level_labels_every_kth_column():
    fig = plot_relevance_heatmap(np.random.default_rng(0).normal(size=(3, 512)), level="layer4.1")
    ax = fig.axes[0]
    assert fig.get_figwidth() <= 16.0
    stride = int(re.search(r"one label every (\d+) columns", ax.get_xlabel()).group(1))
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(k) for k in range(0, 512, stride)]
    assert_apart(ax.get_xticklabels(), fig)
    assert_inside_the_figure(fig)


def test_relevance_heatmap_per_row(analysis):
    omega = analysis["omega"].numpy()
    fig = plot_relevance_heatmap(omega, per_row=True, row_labels=["a", "b", "c", "d"])
    ax, colorbar = fig.axes
    shown = np.asarray(ax.collections[0].get_array()).reshape(omega.shape)
    largest = np.abs(omega).max(axis=1, keepdims=True)
    np.testing.assert_allclose(shown, omega / np.where(largest > 0, largest, 1.0))  # a row of zeros stays zero
    assert colorbar.get_ylabel() == "ω / max |ω| of the row"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="Found 2 row labels for 4 rows"):
        plot_relevance_heatmap(omega, row_labels=["a", "b"])
    with pytest.raises(TypeError, match="'per_row' parameter of plot_relevance_heatmap must be a bool"):
        plot_relevance_heatmap(omega, per_row=1)
    with pytest.raises(ValueError, match="must have 2 dimension"):
        plot_relevance_heatmap(omega[0])


# ------------------------------------------------------------------------------------------- Fig. 3

NODE_DIAMETER = 24.0  # points: the circles of plot_graph


def node_labels(ax: plt.Axes) -> dict[str, Text]:
    """The index label of every drawn neuron, by node key."""
    return {t.get_gid(): t for t in ax.texts if t.get_gid()}


def rows(ax: plt.Axes) -> dict[str, float]:
    """The y of every row, by level name, top row first."""
    return {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks())}


def notes(ax: plt.Axes) -> dict[float, str]:
    """The italic notes of empty rows, by row."""
    return {t.get_position()[1]: t.get_text().replace("\n", " ") for t in ax.texts if t.get_style() == "italic"}


def assert_labels_inside_their_circles(fig: plt.Figure, ax: plt.Axes) -> None:
    diameter = NODE_DIAMETER * fig.dpi / 72
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for text in node_labels(ax).values():
        e = text.get_window_extent(renderer)
        cx, cy = ax.transData.transform(text.get_position())
        assert e.width < 0.9 * diameter and e.height < 0.9 * diameter, text.get_text()
        assert abs((e.x0 + e.x1) / 2 - cx) < 1 and abs((e.y0 + e.y1) / 2 - cy) < 2


def layered(sizes: list[int], *, seed: int = 0, names: list[str] | None = None, **attrs) -> stepwise.DependencyGraph:
    """A random layered graph, ``sizes[d]`` neurons at depth d (one target on top), each with one to two
    parents in the level above, frequencies in (0, 1] and random signs."""
    rng = np.random.default_rng(seed)
    names = names or [f"conv_layers.{i}" for i in range(len(sizes) - 1)] + ["softmax"]
    g = nx.DiGraph(levels=names, target=3, model="Synthetic", **attrs)
    above: list[str] = []
    for depth, size in enumerate(sizes):
        level = names[len(names) - 1 - depth]
        indices = [3] if depth == 0 else sorted(int(i) for i in rng.choice(40_000, size, replace=False))
        keys = [f"{level}:{i}" for i in indices]
        for index, key in zip(indices, keys):
            g.add_node(key, level=level, index=index, depth=depth)
            for parent in rng.choice(above, min(len(above), int(rng.integers(1, 3))), replace=False) if above else []:
                count, relevance = int(rng.integers(1, 51)), float(rng.normal())
                g.add_edge(
                    parent,
                    key,
                    count=count,
                    frequency=count / 50,
                    relevance=relevance,
                    sign=1 if relevance >= 0 else -1,
                )
        above = keys
    return stepwise.DependencyGraph(g)


def test_graph_drawing(analysis, tmp_path):
    graph = analysis["graph"]
    g = graph.to_networkx()
    fig = plot_graph(graph)
    (ax,) = fig.axes
    labels = node_labels(ax)
    assert set(labels) == set(g)  # every neuron drawn, labelled by its index (its level names the row)
    assert all(labels[n].get_text() == str(g.nodes[n]["index"]) for n in g)
    y = {n: labels[n].get_position()[1] for n in g}
    for u, v in g.edges:
        assert y[u] > y[v]  # edges run down, the top level on top
    ticks = rows(ax)
    assert set(ticks) == {"input", "1", "3", "softmax"}
    assert all(y[n] == ticks[g.nodes[n]["level"]] for n in g)  # one row per level, named on the side
    assert ticks["softmax"] > ticks["3"] > ticks["1"] > ticks["input"]
    offsets = ax.collections[0].get_offsets()  # the circles, centred on the labels
    assert sorted(map(tuple, offsets)) == sorted(labels[n].get_position() for n in g)
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == g.number_of_edges()
    expected_widths = sorted(edge_width(d["frequency"]) for _, _, d in g.edges(data=True))
    np.testing.assert_allclose(sorted(a.get_linewidth() for a in arrows), expected_widths)
    assert expected_widths[0] == 0.5 + 4.0 * min(d["frequency"] for _, _, d in g.edges(data=True))
    red = sum(a.get_edgecolor()[:3] == to_rgba("tab:red")[:3] for a in arrows)
    assert red == sum(d["sign"] == 1 for _, _, d in g.edges(data=True))
    assert 0 < red < len(arrows)  # sign="both": both colours ...
    legend = ax.get_legend()  # ... and both explained, with the widths
    entries = [t.get_text() for t in legend.get_texts()]
    assert entries == ["excitatory (ω > 0)", "inhibitory (ω < 0)", "frequency 0.1", "frequency 0.5", "frequency 1"]
    handles = legend.legend_handles
    assert [to_rgba(h.get_color())[:3] for h in handles[:2]] == [to_rgba("tab:red")[:3], to_rgba("tab:blue")[:3]]
    assert [h.get_linewidth() for h in handles[2:]] == [edge_width(f) for f in (0.1, 0.5, 1.0)]
    assert "frequency" in legend.get_title().get_text() and "sign" in legend.get_title().get_text()
    assert ax.get_title() == "Dependency graph of target 0 (Sequential)" and not notes(ax)
    assert assert_inside_the_figure(fig) >= len(g) + 4 + len(entries) + 1
    assert_labels_inside_their_circles(fig, ax)
    assert saved(fig, tmp_path / "graph.png").startswith(PNG)


def test_graph_labels_of_long_levels_and_large_indices_stay_readable():
    names = ["conv_layers.0", "conv_layers.3", "conv_layers.7", "classifier.fc_final", "softmax"]
    graph = layered([1, 3, 5, 4, 6], names=names)
    assert max(graph.nodes[n]["index"] for n in graph.nodes) >= 10_000  # five digits
    fig = plot_graph(graph)
    ax = fig.axes[0]
    assert set(rows(ax)) == set(names)
    assert_inside_the_figure(fig)  # "conv_layers.7" is not cut at the edge
    assert_labels_inside_their_circles(fig, ax)  # nor does "26" or "31337" overflow its circle


def test_graph_marks_the_level_where_the_traversal_stopped(analysis):
    graph = analysis["stopped"]
    assert graph.attrs["stopped_at"] == "1 <- 3" and {graph.nodes[n]["level"] for n in graph.nodes} == {"3", "softmax"}
    fig = plot_graph(graph)
    ax = fig.axes[0]
    ticks = rows(ax)
    assert list(ticks) == ["softmax", "3", "1", "input"]  # the stopped level and the one below are drawn
    by_row = notes(ax)
    assert set(by_row) == {ticks["1"], ticks["input"]}
    assert by_row[ticks["1"]] == f"traversal stopped here: {graph.attrs['stop_reason']}"
    assert by_row[ticks["input"]] == "not reached: the traversal stopped above"
    colour = {t.get_text(): to_rgba(t.get_color()) for t in ax.get_yticklabels()}
    assert colour["1"] == to_rgba("tab:red") and colour["3"] == to_rgba("black")
    assert len(node_labels(ax)) == len(graph)
    assert_inside_the_figure(fig)  # the reason is broken into lines inside the figure

    stopped_at_bottom = layered([1, 2, 3], names=["a", "b", "top"], stopped_at="a <- b").subgraph(levels=["top", "b"])
    ax = plot_graph(stopped_at_bottom).axes[0]
    assert list(rows(ax)) == ["top", "b", "a"]
    assert list(notes(ax).values()) == [
        "traversal stopped here: no neuron of this level is an outlier for the level above"
    ]


def test_large_graph_draws_the_most_frequent_neurons_and_counts_the_rest(tmp_path):
    sizes = [1, 8, 30, 15, 40, 22, 35, 20, 29]  # 200 neurons over 9 levels
    graph = layered(sizes)
    g = graph.to_networkx()
    assert len(g) == 200
    fig = plot_graph(graph)
    ax = fig.axes[0]
    assert fig.get_figwidth() <= 0.62 * 13 + 5 and fig.get_figheight() <= 0.85 * 9 + 1.1  # bounded
    drawn = node_labels(ax)
    per_level = {name: [n for n in drawn if g.nodes[n]["level"] == name] for name in graph.levels}
    levels = graph.levels[::-1]  # top first, as sizes
    assert [len(per_level[name]) for name in levels] == [min(12, n) for n in sizes]
    more = {t.get_position()[1]: t.get_text() for t in ax.texts if t.get_text().startswith("+ ")}
    ticks = rows(ax)
    assert more == {ticks[name]: f"+ {n - 12} more" for name, n in zip(levels, sizes) if n > 12}
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    shown_edges = g.subgraph(drawn).number_of_edges()
    assert len(arrows) == shown_edges < g.number_of_edges()
    assert f"{len(drawn)} of 200 neurons, {shown_edges} of {g.number_of_edges()} edges" in ax.get_title()

    def from_drawn(node: str) -> float:
        return max((d["frequency"] for u, _, d in g.in_edges(node, data=True) if u in drawn), default=0.0)

    for name in levels[1:]:  # the children of what is drawn above come first, the most frequent of them
        hidden = [n for n, level in g.nodes(data="level") if level == name and n not in drawn]
        if hidden:
            assert min(map(from_drawn, per_level[name])) >= max(map(from_drawn, hidden))
    assert_inside_the_figure(fig)
    assert_labels_inside_their_circles(fig, ax)
    fig.savefig(tmp_path / "large.png", dpi=110, bbox_inches="tight")
    width, height = plt.imread(tmp_path / "large.png").shape[1::-1]
    assert width <= 1500 and height <= 1000  # not a strip thousands of pixels wide

    everything = plot_graph(graph, max_per_level=None).axes[0]
    assert len(node_labels(everything)) == 200 and "+ " not in "".join(t.get_text() for t in everything.texts)
    assert len(node_labels(plot_graph(graph, max_per_level=3).axes[0])) == 1 + 3 * 8
    with pytest.raises(ValueError, match="'max_per_level' parameter of plot_graph must be an int in the range"):
        plot_graph(graph, max_per_level=0)
    with pytest.raises(TypeError, match="'max_per_level' parameter of plot_graph"):
        plot_graph(graph, max_per_level="12")


def test_graph_drawing_edge_cases(analysis):
    graph = analysis["graph"]
    fig, ax = plt.subplots()
    assert graph.plot(ax=ax) is fig and len(node_labels(ax)) == len(graph)
    lone = plot_graph(graph.subgraph(levels="softmax")).axes[0]
    assert [t.get_text() for t in lone.texts] == ["0"] and lone.get_legend() is None
    assert list(rows(lone)) == ["softmax"]
    gap = plot_graph(graph.subgraph(levels=["softmax", "1"])).axes[0]  # level "3" left out: an empty row
    assert list(rows(gap)) == ["softmax", "3", "1"] and list(notes(gap).values()) == ["no neuron"]
    empty = plot_graph(stepwise.DependencyGraph(nx.DiGraph(levels=graph.levels, target=0))).axes[0]
    assert [t.get_text() for t in empty.texts] == ["no neuron in this graph"] and empty.get_legend() is None
    positive = layered([1, 3], names=["fc", "softmax"]).to_networkx()
    for _, _, d in positive.edges(data=True):
        d["relevance"], d["sign"] = abs(d["relevance"]), 1
    legend = plot_graph(stepwise.DependencyGraph(positive)).axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()][0] == "excitatory (ω > 0)" and len(legend.get_texts()) == 4
    with pytest.raises(TypeError, match="plot_graph needs a DependencyGraph or another layered graph; got DiGraph"):
        plot_graph(graph.to_networkx())


def test_graph_drawing_of_another_kind():
    g = nx.DiGraph(levels=["fc", "class"], n_inputs=4, classes=[0, 1], model="MLP")
    g.add_node("fc:0", level="fc", index=0, depth=1, size=4, class_0=3, class_1=1)
    g.add_node("class:0", level="class", index=0, depth=0, size=3, class_0=3, class_1=0)
    g.add_node("class:1", level="class", index=1, depth=0, size=1, class_0=0, class_1=1)
    g.add_edge("class:0", "fc:0", count=3, frequency=0.75)
    g.add_edge("class:1", "fc:0", count=1, frequency=0.25)
    fig = PathsGraph(g).plot()
    ax = fig.axes[0]
    assert ax.get_title() == "Decision paths (MLP)" and set(node_labels(ax)) == set(g)
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert sorted(a.get_linewidth() for a in arrows) == [edge_width(0.25), edge_width(0.75)]
    assert all(a.get_edgecolor()[:3] == to_rgba("0.45")[:3] for a in arrows)  # no sign: grey
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["frequency 0.1", "frequency 0.5", "frequency 1"]
    assert ax.get_legend().get_title().get_text() == "edges: width = frequency"
    assert_inside_the_figure(fig)


# ------------------------------------------------------------------------------------------ Fig. 4a


def heatmap_axes(fig: plt.Figure):
    return next(ax for ax in fig.axes if ax.collections and ax.get_ylabel() == "graph")


def test_clustermap(analysis, tmp_path):
    result = cluster_graphs(analysis["graphs"], n_clusters=2)
    fig = plot_clustermap(result, figsize=(6, 4))
    assert len(fig.axes) == 3  # two dendrograms and the heatmap: 0/1 presence has a legend, not a colour bar
    ax = heatmap_axes(fig)
    assert [t.get_text() for t in ax.get_yticklabels()] == result.leaf_labels
    frame = result.frame
    neurons = [c for c in frame.columns if not c.startswith("softmax:")]  # each graph's target left out
    assert len(neurons) < frame.shape[1] - 4
    columns = leaves_list(cosine_ward_linkage(frame[neurons].to_numpy().T))
    assert [t.get_text() for t in ax.get_xticklabels()] == [neurons[k] for k in columns]  # every column labelled
    shown = np.asarray(ax.collections[0].get_array()).reshape(len(frame), len(neurons))
    np.testing.assert_array_equal(shown, frame[neurons].to_numpy()[result.leaf_order][:, columns])
    (legend,) = fig.legends
    assert legend.get_title().get_text() == "neuron in graph"
    assert [t.get_text() for t in legend.get_texts()] == ["absent", "present"]
    cmap = plt.get_cmap("coolwarm")
    assert [tuple(p.get_facecolor()) for p in legend.get_patches()] == [cmap(0.0), cmap(1.0)]
    assert ax.collections[0].cmap.N == 2  # two colours, nothing in between
    assert_apart(ax.get_xticklabels(), fig)
    assert_inside_the_figure(fig)
    assert saved(fig, tmp_path / "clustermap.png").startswith(PNG)


def test_clustermap_of_a_weighted_frame_keeps_a_colour_bar(analysis):
    frame = stepwise.bag_of_nodes(analysis["graphs"], weight="frequency")
    fig = plot_clustermap(frame)
    ax = heatmap_axes(fig)
    order = leaves_list(cosine_ward_linkage(frame.to_numpy()))
    assert [t.get_text() for t in ax.get_yticklabels()] == list(frame.index[order])
    colour_bar = next(a for a in fig.axes if a.get_ylabel() == "frequency")
    assert len(fig.axes) == 4 and colour_bar is not ax and not fig.legends
    assert {t.get_text() for t in ax.get_xticklabels()} == {c for c in frame.columns if not c.startswith("softmax")}
    assert heatmap_axes(cluster_graphs(analysis["graphs"]).plot())
    with pytest.raises(TypeError, match="needs a ClusterResult .* or a bag-of-nodes DataFrame; got list"):
        plot_clustermap([analysis["graph"]])


def test_clustermap_targets_and_size(analysis):
    result = cluster_graphs(analysis["graphs"])
    every = heatmap_axes(plot_clustermap(result, targets=[]))
    assert {t.get_text() for t in every.get_xticklabels()} == set(result.frame.columns)
    chosen = ["softmax:0", "input:1"]
    some = heatmap_axes(plot_clustermap(result, targets=chosen))
    assert {t.get_text() for t in some.get_xticklabels()} == set(result.frame.columns) - set(chosen)
    with pytest.raises(TypeError, match="targets must be a list of node keys"):
        plot_clustermap(result, targets="softmax:0")
    # 150 neurons: the figure grows to label each one, even below a figsize asked for
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        (rng.random((6, 151)) < 0.3).astype("int64"),
        index=pd.Index([f"class {c}" for c in range(6)], name="graph"),
        columns=pd.Index(["softmax:0"] + [f"features.{k % 5}:{k}" for k in range(150)], name="node"),
    )
    for k in range(151):
        frame.iloc[k % 6, k] = 1  # no empty row or column
    fig = plot_clustermap(frame, figsize=(6, 4))
    ax = heatmap_axes(fig)
    assert len(ax.get_xticklabels()) == 150 and fig.get_figwidth() > 20
    assert_apart(ax.get_xticklabels(), fig)
    assert_inside_the_figure(fig)
