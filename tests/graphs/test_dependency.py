"""DependencyGraph: schema checks, accessors, subgraphs, the three relevance metrics."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from stepwise import DependencyGraph
from stepwise.graphs.dependency import node_key

LEVELS = ["input", "fc1", "fc2", "softmax"]


def make_graph(edges: dict[tuple[str, str], tuple[int, float, float]], *, target=3) -> nx.DiGraph:
    """A DiGraph of the schema: edges {(upper, lower): (count, frequency, relevance)}, nodes from their keys."""
    g = nx.DiGraph(levels=list(LEVELS), target=target, n_inputs=10)
    for key in {k for edge in edges for k in edge}:
        level, index = key.rsplit(":", 1)
        g.add_node(key, level=level, index=int(index), depth=len(LEVELS) - 1 - LEVELS.index(level))
    for (u, v), (count, frequency, relevance) in edges.items():
        g.add_edge(u, v, count=count, frequency=frequency, relevance=relevance, sign=1 if relevance >= 0 else -1)
    return g


# softmax:3 -> fc2:{1, 2}; both fc2 neurons -> fc1:5 (two parents); fc2:2 -> fc1:0 (inhibitory); fc1:5 -> input:4
EDGES = {
    ("softmax:3", "fc2:1"): (9, 0.9, 0.30),
    ("softmax:3", "fc2:2"): (6, 0.6, 0.50),
    ("fc2:1", "fc1:5"): (4, 0.4, 0.10),
    ("fc2:2", "fc1:5"): (7, 0.7, -0.20),
    ("fc2:2", "fc1:0"): (8, 0.8, -0.05),
    ("fc1:5", "input:4"): (2, 0.2, 0.01),
}


@pytest.fixture
def graph() -> DependencyGraph:
    return DependencyGraph(make_graph(EDGES))


# ------------------------------------------------------------------------------------------- accessors


def test_accessors_and_repr(graph):
    assert graph.levels == LEVELS
    assert graph.target == 3
    assert len(graph) == 6
    assert set(graph.nodes) == {"softmax:3", "fc2:1", "fc2:2", "fc1:5", "fc1:0", "input:4"}
    assert graph.nodes["fc1:5"] == {"level": "fc1", "index": 5, "depth": 2}
    assert graph.edges["fc2:2", "fc1:5"] == {"count": 7, "frequency": 0.7, "relevance": -0.2, "sign": -1}
    assert repr(graph) == "DependencyGraph(target=3, levels=4, nodes=6, edges=6)"
    assert "\n" not in repr(DependencyGraph(make_graph(EDGES, target=[["fc2", 1], ["fc2", 2]])))
    assert node_key("features.28", 41) == "features.28:41"


def test_to_networkx_is_a_copy(graph):
    g = graph.to_networkx()
    g.remove_node("fc1:0")
    g.graph["levels"].append("extra")
    assert "fc1:0" in graph.nodes and graph.levels == LEVELS


def test_from_networkx_copies_and_normalises_values():
    g = make_graph(EDGES, target=(("fc2", np.int64(1)),))
    g.nodes["fc1:5"]["index"] = np.int64(5)
    g.edges["fc2:1", "fc1:5"]["count"] = np.int32(4)
    g.edges["fc2:1", "fc1:5"]["frequency"] = np.float32(0.5)
    g.graph["levels"] = tuple(LEVELS)
    graph = DependencyGraph.from_networkx(g)
    assert graph.target == [["fc2", 1]] and graph.levels == LEVELS
    assert type(graph.nodes["fc1:5"]["index"]) is int
    assert type(graph.edges["fc2:1", "fc1:5"]["count"]) is int
    assert type(graph.edges["fc2:1", "fc1:5"]["frequency"]) is float
    assert type(g.nodes["fc1:5"]["index"]) is np.int64  # the caller's graph is not modified
    assert DependencyGraph.from_networkx(graph.to_networkx()) == graph


def test_equality():
    assert DependencyGraph(make_graph(EDGES)) == DependencyGraph(make_graph(EDGES))
    changed = make_graph(EDGES)
    changed.edges["fc2:1", "fc1:5"]["count"] = 5
    assert DependencyGraph(make_graph(EDGES)) != DependencyGraph(changed)
    assert DependencyGraph(make_graph(EDGES)) != make_graph(EDGES)


# ------------------------------------------------------------------------------------------ schema


def test_missing_graph_attributes_are_named():
    g = make_graph(EDGES)
    del g.graph["levels"], g.graph["target"]
    with pytest.raises(ValueError, match=r"lacks the graph attribute\(s\) 'levels', 'target'"):
        DependencyGraph.from_networkx(g)


def test_missing_node_attributes_are_named():
    g = make_graph(EDGES)
    del g.nodes["fc1:5"]["depth"], g.nodes["fc1:0"]["index"]
    with pytest.raises(ValueError, match=r"2 of 6 nodes lack the node attribute\(s\) 'depth', 'index'"):
        DependencyGraph.from_networkx(g)


def test_missing_edge_attributes_are_named():
    g = make_graph(EDGES)
    del g.edges["fc2:1", "fc1:5"]["sign"]
    with pytest.raises(ValueError, match=r"1 of 6 edges lack the edge attribute\(s\) 'sign'.*\('fc2:1', 'fc1:5'\)"):
        DependencyGraph.from_networkx(g)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda g: g.nodes["fc1:5"].update(index="5"),
            r"Node 'fc1:5' has index='5' \(str\); index must be an int",
        ),
        (lambda g: g.nodes["fc1:5"].update(index=6), r"its key must be 'fc1:6'"),
        (lambda g: g.nodes["fc1:5"].update(depth=1), r"depth 1, but level 'fc1' lies at depth 2"),
        (lambda g: g.nodes["fc1:5"].update(level="fc9"), r"level 'fc9', which is not in the graph's levels"),
        (lambda g: g.edges["fc2:1", "fc1:5"].update(count=4.0), r"count=4.0 \(float\); count must be an int"),
        (lambda g: g.edges["fc2:1", "fc1:5"].update(frequency="x"), r"frequency must be a finite float"),
        (
            lambda g: g.edges["fc2:1", "fc1:5"].update(relevance=float("nan")),
            r"relevance=nan .* a finite float",
        ),
        (lambda g: g.edges["fc2:1", "fc1:5"].update(sign=0), r"sign=0; sign must be \+1 or -1"),
        (
            lambda g: g.add_edge("input:4", "fc1:5", count=1, frequency=0.1, relevance=0.1, sign=1),
            r"The graph has a cycle, 'fc1:5' -> 'input:4' -> 'fc1:5': edges run from a node to one of a lower level",
        ),
        (
            lambda g: (
                g.add_edge("input:4", "fc2:9", count=1, frequency=0.1, relevance=0.1, sign=1)
                or g.nodes["fc2:9"].update(level="fc2", index=9, depth=1)
            ),
            r"Edge 'input:4' -> 'fc2:9' runs from depth 3 to depth 1",
        ),
        (
            lambda g: g.nodes["fc1:5"].update(index=-5) or nx.relabel_nodes(g, {"fc1:5": "fc1:-5"}, copy=False),
            r"Node 'fc1:-5' has index -5; an index is at least 0",
        ),
        (lambda g: g.edges["fc2:1", "fc1:5"].update(count=0), r"count=0; count is the number of inputs"),
        (lambda g: g.edges["fc2:1", "fc1:5"].update(frequency=1.5), r"frequency=1.5; .* in \(0, 1\]"),
        (lambda g: g.edges["fc2:1", "fc1:5"].update(frequency=0), r"frequency=0.0; .* in \(0, 1\]"),
        (lambda g: g.edges["fc2:1", "fc1:5"].update(sign=-1), r"sign=-1 but relevance=0.1; sign is the sign"),
        (lambda g: g.graph.update(n_inputs="10"), r"'n_inputs' is '10' \(str\): it must be an int"),
        (lambda g: g.graph.update(fence=float("inf")), r"'fence' is inf \(float\): it must be a finite float"),
        (lambda g: g.graph.update(rule=None), r"'rule' is None \(NoneType\): it must be a str"),
        (lambda g: g.graph.update(target="3"), r"'target' is '3' \(str\)"),
        (lambda g: g.graph.update(target=[["fc7", 1]]), r"names level 'fc7'"),
        (lambda g: g.graph.update(target=[["fc2"]]), r"must be a \[level, index\] pair"),
        (lambda g: g.graph.update(levels=["a", "a"]), r"distinct level names"),
        (lambda g: g.graph.update(levels="fc1"), r"non-empty list of level names"),
    ],
)
def test_schema_violations_are_explained(change, message):
    g = make_graph(EDGES)
    change(g)
    with pytest.raises(ValueError, match=message):
        DependencyGraph(g)


def test_not_a_digraph_is_a_type_error():
    with pytest.raises(TypeError, match="needs a networkx.DiGraph; got MultiDiGraph"):
        DependencyGraph(nx.MultiDiGraph(make_graph(EDGES)))
    with pytest.raises(TypeError, match="got dict"):
        DependencyGraph.from_networkx({})


# ----------------------------------------------------------------------------------------- subgraph


def test_subgraph_keeps_the_levels_asked_for(graph):
    sub = graph.subgraph(levels=["fc2", "fc1"])
    assert set(sub.nodes) == {"fc2:1", "fc2:2", "fc1:5", "fc1:0"}
    assert set(sub.edges) == {("fc2:1", "fc1:5"), ("fc2:2", "fc1:5"), ("fc2:2", "fc1:0")}
    assert sub.edges["fc2:2", "fc1:0"] == graph.edges["fc2:2", "fc1:0"]
    assert sub.attrs == graph.attrs and sub.nodes["fc1:5"]["depth"] == 2
    sub.to_networkx().add_node("fc1:9")  # a plain graph, not a frozen view
    one = graph.subgraph(levels="softmax")
    assert list(one.nodes) == ["softmax:3"] and one.to_networkx().number_of_edges() == 0


def test_subgraph_unknown_level_suggests_names(graph):
    with pytest.raises(ValueError, match=r"No level 'fc3' in this graph\. Did you mean 'fc2'"):
        graph.subgraph(levels=["fc3"])


# ------------------------------------------------------------------------------------------ metrics


def test_node_metrics_by_hand(graph):
    table = graph.node_metrics()
    assert list(table.index) == [
        "softmax:3",
        "fc2:1",
        "fc2:2",
        "fc1:0",
        "fc1:5",
        "input:4",
    ]  # top first, by index
    assert list(table.columns) == ["level", "index", "depth", "interconnectedness", "frequency", "relevance"]
    assert table.loc["fc1:5", "interconnectedness"] == 2
    assert table.loc["fc1:5", "frequency"] == 0.7  # the larger of 0.4 and 0.7
    assert table.loc["fc1:5", "relevance"] == -0.2  # the larger |ω| of 0.1 and -0.2, sign kept
    assert table.loc["softmax:3", "interconnectedness"] == 0
    assert table.loc["softmax:3", "frequency"] == 1.0 and np.isnan(table.loc["softmax:3", "relevance"])
    assert table["interconnectedness"].dtype == np.int64 and table["index"].dtype == np.int64


def test_metrics_of_a_graph_without_edges():
    g = nx.DiGraph(levels=LEVELS, target=3)
    g.add_node("softmax:3", level="softmax", index=3, depth=0)
    table = DependencyGraph(g).node_metrics()
    row = table.loc["softmax:3"].to_dict()
    assert np.isnan(row.pop("relevance"))
    assert row == {"level": "softmax", "index": 3, "depth": 0, "interconnectedness": 0, "frequency": 1.0}
    assert DependencyGraph(g).top_neurons("relevance").empty
    empty = DependencyGraph(nx.DiGraph(levels=LEVELS, target=3)).node_metrics()
    assert empty.empty and empty["frequency"].dtype == np.float64 and empty["index"].dtype == np.int64


def test_top_neurons_by_each_metric(graph):
    assert list(graph.top_neurons("frequency").index) == ["fc2:1", "fc1:0", "fc1:5", "fc2:2", "input:4"]
    # |relevance|: 0.5, 0.3, 0.2 (fc1:5, inhibitory), 0.05, 0.01
    assert list(graph.top_neurons("relevance", k=3).index) == ["fc2:2", "fc2:1", "fc1:5"]
    # ties at one parent go to the upper level, then to the smaller index
    assert list(graph.top_neurons("interconnectedness").index) == [
        "fc1:5",
        "fc2:1",
        "fc2:2",
        "fc1:0",
        "input:4",
    ]
    assert list(graph.top_neurons("frequency", level="fc1").index) == ["fc1:0", "fc1:5"]
    assert graph.top_neurons("frequency", k=2).loc["fc2:1", "frequency"] == 0.9


def test_top_neurons_checks_its_parameters(graph):
    with pytest.raises(
        ValueError,
        match=r"'metric' parameter of DependencyGraph.top_neurons must be one of .*"
        r"Did you mean 'frequency'",
    ):
        graph.top_neurons("frequence")
    with pytest.raises(ValueError, match=r"'k' parameter .* range \[1, inf\)\. Got 0"):
        graph.top_neurons("frequency", k=0)
    with pytest.raises(ValueError, match="No level 'fc9'"):
        graph.top_neurons("frequency", level="fc9")


# ------------------------------------------------------------------------------------------- imports


def test_a_cycle_is_named_the_same_whatever_the_order_of_the_nodes() -> None:
    # A cycle through three levels; the message starts at its top-most neuron whatever order the graph was built in.
    messages = set()
    for order in (1, -1):
        g = nx.DiGraph(levels=list(LEVELS), target=3, n_inputs=10)
        nodes = [
            ("softmax:3", "softmax", 3, 0),
            ("fc2:1", "fc2", 1, 1),
            ("fc1:5", "fc1", 5, 2),
            ("input:4", "input", 4, 3),
        ]
        for key, level, index, depth in nodes[::order]:
            g.add_node(key, level=level, index=index, depth=depth)
        edges = [("softmax:3", "fc2:1"), ("fc2:1", "fc1:5"), ("fc1:5", "input:4"), ("input:4", "fc2:1")]
        for u, v in edges[::order]:
            g.add_edge(u, v, count=1, frequency=0.1, relevance=0.1, sign=1)
        with pytest.raises(ValueError, match="The graph has a cycle") as error:
            DependencyGraph(g)
        messages.add(str(error.value))
    assert len(messages) == 1
    assert "The graph has a cycle, 'fc2:1' -> 'fc1:5' -> 'input:4' -> 'fc2:1'" in messages.pop()


def test_kind_and_stop_are_properties(graph):
    assert graph.kind == "dependency" and graph.attrs["kind"] == "dependency"
    assert graph.stopped_at is None and graph.stop_reason is None  # reached the bottom level
    g = make_graph(EDGES)
    g.graph.update(stopped_at="fc1 <- fc2", stop_reason="no neuron of 'fc1' is a positive Tukey outlier")
    stopped = DependencyGraph(g)
    assert (stopped.stopped_at, stopped.stop_reason) == ("fc1 <- fc2", g.graph["stop_reason"])
    g.graph["stopped_at"] = 3
    with pytest.raises(ValueError, match=r"The graph attribute 'stopped_at' is 3 \(int\): it must be a str"):
        DependencyGraph(g)
    g = make_graph(EDGES)
    g.graph["kind"] = "dependency"
    assert DependencyGraph(g) == graph  # an explicit kind is the same graph
