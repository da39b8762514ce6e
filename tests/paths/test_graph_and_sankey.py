"""The graph kind "paths" (schema, four file formats through the shared readers) and the Sankey diagrams."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from stepwise.graphs.layered import LayeredGraph, graph_class
from stepwise.graphs.paths import PathsGraph
from stepwise.graphs.readwrite import read_graph
from stepwise.paths.decision_paths import DecisionPaths
from stepwise.paths.sankey import layout


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 4)).eval()


@pytest.fixture(scope="module")
def fitted() -> DecisionPaths:
    x = torch.randn(400, 5, generator=torch.Generator().manual_seed(1))
    labels = torch.randint(0, 4, (400,), generator=torch.Generator().manual_seed(2))
    with threadpool_limits(1):
        return DecisionPaths(small_net(), ["1", "3"], n_clusters={"1": 7, "3": 5}, n_init=2).fit(x, labels)


def test_graph_nodes_and_edges_are_the_assignments_and_flows(fitted: DecisionPaths) -> None:
    graph = fitted.graph()
    a = fitted.assignments_
    assert graph.kind == "paths" and graph.levels == ["1", "3", "class"] and graph.n_inputs == 400
    for column in fitted.columns_:
        sizes = a[column].value_counts()
        nodes = {graph.nodes[k]["index"]: graph.nodes[k] for k in graph.nodes if graph.nodes[k]["level"] == column}
        assert {i: d["size"] for i, d in nodes.items()} == sizes.to_dict()
        for i, data in nodes.items():
            by_class = a["class"][a[column] == i].value_counts()
            assert {c: data[f"class_{c}"] for c in fitted.classes_ if data[f"class_{c}"]} == by_class.to_dict()
    for lower, upper in zip(fitted.columns_[:-1], fitted.columns_[1:]):
        flows = fitted.flows(lower, upper)
        for row in flows.itertuples():
            edge = graph.edges[f"{upper}:{row.upper_cluster}", f"{lower}:{row.lower_cluster}"]
            assert edge["count"] == row.count
            assert edge["frequency"] == row.count / 400
    assert graph.to_networkx().number_of_edges() == sum(
        len(fitted.flows(lo, up)) for lo, up in zip(fitted.columns_[:-1], fitted.columns_[1:])
    )
    assert repr(graph).startswith("PathsGraph(n_inputs=400, classes=")


@pytest.mark.parametrize("suffix", [".graphml", ".gexf", ".json", ".dot"])
def test_round_trip_in_every_format(fitted: DecisionPaths, suffix: str, tmp_path: Path) -> None:
    graph = fitted.graph()
    path = tmp_path / f"paths{suffix}"
    graph.write(path)
    back = read_graph(path)
    assert type(back) is PathsGraph
    assert back == graph
    for key, data in back.nodes(data=True):
        assert all(type(data[f"class_{c}"]) is int for c in back.classes), key
    if suffix != ".json":  # the class counts are native integers in the file, not marked JSON text
        assert "stepwise-json:" not in "".join(
            line for line in path.read_text().splitlines() if "class_" in line and "classes" not in line
        )


def test_kind_is_registered_and_picked_by_from_networkx(fitted: DecisionPaths) -> None:
    assert graph_class("paths") is PathsGraph
    g = fitted.graph().to_networkx()
    assert type(LayeredGraph.from_networkx(g)) is PathsGraph


def _graph() -> nx.DiGraph:
    g = nx.DiGraph(levels=["fc", "class"], n_inputs=4, classes=[0, 1])
    g.add_node("fc:0", level="fc", index=0, depth=1, size=4, class_0=3, class_1=1)
    g.add_node("class:0", level="class", index=0, depth=0, size=3, class_0=3, class_1=0)
    g.add_node("class:1", level="class", index=1, depth=0, size=1, class_0=0, class_1=1)
    g.add_edge("class:0", "fc:0", count=3, frequency=0.75)
    g.add_edge("class:1", "fc:0", count=1, frequency=0.25)
    return g


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda g: g.nodes["fc:0"].update(class_1=2), "its class counts sum to 5"),
        (lambda g: g.nodes["fc:0"].pop("class_0"), "lacks the class count"),
        (lambda g: g.nodes["fc:0"].update(size=0), "holds >= 1 input"),
        (lambda g: g.edges["class:0", "fc:0"].update(count=0), "carries >= 1 input"),
        (lambda g: g.edges["class:0", "fc:0"].update(frequency=1.5), "in (0, 1]"),
        (lambda g: g.graph.update(classes=[0, 0]), "distinct ints"),
        (lambda g: g.graph.pop("n_inputs"), "lacks the graph attribute(s) 'n_inputs'"),
        (lambda g: g.graph.update(n_inputs=0), "an int >= 1"),
    ],
)
def test_schema_errors_name_the_problem(change, message: str) -> None:
    g = _graph()
    PathsGraph(g)
    change(g)
    with pytest.raises(ValueError, match=re.escape(message)):
        PathsGraph(g)


def test_edges_join_consecutive_columns() -> None:
    g = nx.DiGraph(levels=["a", "b", "class"], n_inputs=1, classes=[0])
    g.add_node("a:0", level="a", index=0, depth=2, size=1, class_0=1)
    g.add_node("class:0", level="class", index=0, depth=0, size=1, class_0=1)
    g.add_edge("class:0", "a:0", count=1, frequency=1.0)
    with pytest.raises(ValueError, match="consecutive"):
        PathsGraph(g)


def test_imports_stay_light() -> None:
    """The graph kind needs no torch; the method loads no plotting library until a figure is drawn."""
    code = (
        "import sys, stepwise.graphs.paths; assert 'torch' not in sys.modules, 'torch imported'; "
        "import stepwise.paths.decision_paths, stepwise.paths.sankey; "
        "bad = [m for m in ('plotly', 'matplotlib', 'seaborn', 'scipy.cluster') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sankey_html_is_self_contained(fitted: DecisionPaths, tmp_path: Path) -> None:
    path = tmp_path / "sankey.html"
    assert fitted.plot_sankey(path) is None
    html = path.read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and not [s for s in scripts if "src=" in s], scripts  # no script is loaded from anywhere
    assert not re.search(r"""src=["']?https?://""", html)
    assert "Plotly.newPlot" in html and len(html) > 1_000_000  # plotly.js itself is inlined
    assert '"type":"sankey"' in html.replace(" ", "")
    assert list(tmp_path.iterdir()) == [path]  # written atomically: no temporary file left
    fitted.plot_sankey(tmp_path / "again.html")
    assert (tmp_path / "again.html").read_bytes() == path.read_bytes()  # no random element id: reruns match


def test_sankey_png_and_class_filter(fitted: DecisionPaths, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    figure = fitted.plot_sankey(tmp_path / "sankey.png", classes=[int(fitted.classes_[0])])
    assert (tmp_path / "sankey.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figure is not None and figure.axes
    with pytest.raises(ValueError, match="No input has class 99"):
        fitted.plot_sankey(classes=[99])
    with pytest.raises(TypeError, match="list of int classes"):
        fitted.plot_sankey(classes="0")


def test_sankey_layout_bands_add_up(fitted: DecisionPaths) -> None:
    """Each node's bands tile it exactly, on both sides; the class filter keeps only that class's bands."""
    plan = layout(fitted.assignments_, fitted.columns_, None)
    nodes, links = plan.nodes, plan.links
    heights = nodes["y1"] - nodes["y0"]
    for side, lo, hi in (("source", "s0", "s1"), ("target", "t0", "t1")):
        covered = (links[hi] - links[lo]).groupby(links[side]).sum()
        inner = (
            nodes.index[nodes["column"] < len(fitted.columns_) - 1]
            if side == "source"
            else nodes.index[nodes["column"] > 0]
        )
        assert np.allclose(covered.reindex(inner).to_numpy(), heights[inner].to_numpy(), rtol=1e-12, atol=1e-12)
        assert (links[lo] >= nodes.loc[links[side], "y0"].to_numpy() - 1e-12).all()
    chosen = int(fitted.classes_[0])
    filtered = layout(fitted.assignments_, fitted.columns_, [chosen]).links
    assert set(filtered["cls"]) == {chosen}
    assert filtered["count"].sum() == (fitted.assignments_["class"] == chosen).sum() * (len(fitted.columns_) - 1)
    assert isinstance(plan.nodes, pd.DataFrame)
