"""Figures render headless from real traversals and show what they should."""

from __future__ import annotations

import ast
import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.patches import FancyArrowPatch, Rectangle
from scipy.cluster.hierarchy import leaves_list
from torch import nn

import stepwise
from stepwise import cluster_graphs, cosine_ward_linkage
from stepwise.plot import plot_clustermap, plot_graph, plot_outlier_frequency, plot_relevance_heatmap

matplotlib.use("Agg")  # headless
pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning:seaborn", "ignore::PendingDeprecationWarning:seaborn"
)
N_CLASSES = 5
PNG = b"\x89PNG\r\n\x1a\n"


def trained_mlp() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A small MLP with heavy-tailed weights (as trained networks have), trained briefly on Gaussian blobs."""
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(N_CLASSES, 10, generator=generator)
    labels = torch.arange(N_CLASSES).repeat_interleave(30)
    inputs = centres[labels] + torch.randn(len(labels), 10, generator=generator)
    model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, N_CLASSES))
    with torch.no_grad():
        for layer in model[::2]:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) / layer.in_features**0.5)
            layer.weight.mul_(torch.exp(1.5 * torch.randn(layer.weight.shape, generator=generator)))
            layer.bias.zero_()
    for _ in range(30):  # plain gradient descent (torch.optim's first step is slow to set up)
        model.zero_grad()
        nn.functional.cross_entropy(model(inputs), labels).backward()
        with torch.no_grad():
            for parameter in model.parameters():
                parameter -= 0.05 * parameter.grad
    return model.eval(), inputs, labels


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
        "graphs": graphs,
    }


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def saved(fig: plt.Figure, path: Path) -> bytes:
    fig.savefig(path, dpi=50)
    return path.read_bytes()


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
    assert len(many.patches) == 59 and many.get_xticklabels() == []
    assert many.get_title() == "59 unique outliers (98.3% of the 60 neurons)"


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
    assert saved(fig, tmp_path / "heatmap.png").startswith(PNG)


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


def test_graph_drawing(analysis, tmp_path):
    graph = analysis["graph"]
    g = graph.to_networkx()
    fig = plot_graph(graph)
    (ax,) = fig.axes
    labels = {text.get_text(): text.get_position() for text in ax.texts}
    assert len(ax.texts) == len(g) and set(labels) == set(g)  # one label "level:index" per neuron
    for u, v in g.edges:
        assert labels[u][1] > labels[v][1]  # edges run down, the top level on top
    for level in {d["level"] for _, d in g.nodes(data=True)}:
        assert len({round(labels[n][1], 9) for n in g if g.nodes[n]["level"] == level}) == 1  # one row per level
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == g.number_of_edges()
    expected_widths = sorted(0.5 + 4.0 * d["frequency"] for _, _, d in g.edges(data=True))
    np.testing.assert_allclose(sorted(a.get_linewidth() for a in arrows), expected_widths)
    red = sum(a.get_edgecolor()[:3] == to_rgba("tab:red")[:3] for a in arrows)
    assert red == sum(d["sign"] == 1 for _, _, d in g.edges(data=True)) > 0
    assert 0 < red < len(arrows) and ax.get_legend() is not None  # sign="both": both colours, explained
    ticks = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks())}
    assert set(ticks) == {"input", "1", "3", "softmax"}
    assert ticks["softmax"] > ticks["3"] > ticks["1"] > ticks["input"]
    assert saved(fig, tmp_path / "graph.png").startswith(PNG)


def test_graph_drawing_edge_cases(analysis):
    graph = analysis["graph"]
    fig, ax = plt.subplots()
    assert graph.plot(ax=ax) is fig and len(ax.texts) == len(graph)
    lone = plot_graph(graph.subgraph(levels="softmax")).axes[0]
    assert [t.get_text() for t in lone.texts] == ["softmax:0"] and lone.get_legend() is None
    empty = stepwise.DependencyGraph(nx.DiGraph(levels=graph.levels, target=0))
    assert len(plot_graph(empty).axes[0].texts) == 0
    with pytest.raises(TypeError, match="plot_graph needs a DependencyGraph"):
        plot_graph(graph.to_networkx())


# ------------------------------------------------------------------------------------------ Fig. 4a


def heatmap_axes(fig: plt.Figure):
    return next(ax for ax in fig.axes if ax.collections and ax.get_ylabel() == "graph")


def test_clustermap(analysis, tmp_path):
    result = cluster_graphs(analysis["graphs"], n_clusters=2)
    fig = plot_clustermap(result, figsize=(6, 4))
    assert len(fig.axes) == 4  # two dendrograms, the heatmap, the colour bar
    ax = heatmap_axes(fig)
    assert [t.get_text() for t in ax.get_yticklabels()] == result.leaf_labels
    frame = result.frame
    columns = leaves_list(cosine_ward_linkage(frame.to_numpy().T))
    shown = np.asarray(ax.collections[0].get_array()).reshape(frame.shape)
    np.testing.assert_array_equal(shown, frame.to_numpy()[result.leaf_order][:, columns])
    assert saved(fig, tmp_path / "clustermap.png").startswith(PNG)


def test_clustermap_of_a_frame(analysis):
    frame = stepwise.bag_of_nodes(analysis["graphs"], weight="frequency")
    ax = heatmap_axes(plot_clustermap(frame))
    order = leaves_list(cosine_ward_linkage(frame.to_numpy()))
    assert [t.get_text() for t in ax.get_yticklabels()] == list(frame.index[order])
    assert heatmap_axes(cluster_graphs(analysis["graphs"]).plot())
    with pytest.raises(TypeError, match="needs a ClusterResult .* or a bag-of-nodes DataFrame; got list"):
        plot_clustermap([analysis["graph"]])


# ------------------------------------------------------------------------------------------- imports


def _runtime_imports(path: Path) -> set[str]:
    """Top-level packages a module imports at run time (``if TYPE_CHECKING:`` blocks left out)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return names


def test_only_the_plot_module_imports_matplotlib_and_none_imports_torch():
    package = Path(stepwise.__file__).parent / "graphs"
    for path in sorted(package.rglob("*.py")):
        imports = _runtime_imports(path)
        assert "torch" not in imports, path
        assert bool({"matplotlib", "seaborn"} & imports) == (path.name == "draw.py"), path
    code = "import sys, stepwise; print(sorted({'matplotlib', 'seaborn', 'stepwise.plot'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
