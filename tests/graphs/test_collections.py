"""Collections of graphs: bag-of-nodes, Ward clustering on cosine geometry, shared subgraphs, Jaccard, occurrence."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from scipy.cluster.hierarchy import fcluster, leaves_list, linkage
from scipy.spatial.distance import pdist

import stepwise
from stepwise import (
    DependencyGraph,
    bag_of_nodes,
    cluster_graphs,
    cosine_ward_linkage,
    interconnectedness,
    jaccard_matrix,
    node_occurrence,
    shared_subgraph,
)
from tests.graphs.test_layered import TrailGraph, trail

LEVELS = ["fc1", "fc2", "softmax"]


def graph(target, edges=(), nodes=(), **attrs) -> DependencyGraph:
    """A graph over LEVELS: edges (upper, lower, frequency, relevance) from 10 inputs, plus the target neuron(s)."""
    g = nx.DiGraph(levels=list(LEVELS), target=target, n_inputs=10, rule="gradient", **attrs)
    targets = [("softmax", target)] if isinstance(target, int) else target
    keys = [f"{level}:{index}" for level, index in targets] + list(nodes) + [k for e in edges for k in e[:2]]
    for key in keys:
        level, index = key.split(":")
        g.add_node(key, level=level, index=int(index), depth=2 - LEVELS.index(level))
    for upper, lower, frequency, relevance in edges:
        count = round(10 * frequency)
        g.add_edge(
            upper,
            lower,
            count=count,
            frequency=frequency,
            relevance=relevance,
            sign=1 if relevance >= 0 else -1,
        )
    return DependencyGraph(g)


def random_graphs(n: int, seed: int) -> list[DependencyGraph]:
    """Graphs of n classes whose fc2 and fc1 neurons are drawn at random (some shared, as across classes)."""
    rng = np.random.default_rng(seed)
    graphs = []
    for target in range(n):
        edges = []
        for k in rng.choice(12, size=3, replace=False):
            edges.append((f"softmax:{target}", f"fc2:{k}", float(rng.integers(1, 11)) / 10, float(rng.normal())))
            for j in rng.choice(20, size=2, replace=False):
                edges.append((f"fc2:{k}", f"fc1:{j}", float(rng.integers(1, 11)) / 10, float(rng.normal())))
        graphs.append(graph(target, edges))
    return graphs


# -------------------------------------------------------------------------------------------- bag of nodes


def test_bag_of_nodes_by_hand():
    a = graph(
        0,
        [("softmax:0", "fc2:10", 0.9, 1.0), ("softmax:0", "fc2:2", 0.5, 0.3), ("fc2:10", "fc1:4", 0.2, 0.1)],
    )
    b = graph(
        1,
        [
            ("softmax:1", "fc2:2", 0.7, 0.2),
            ("fc2:2", "fc1:4", 0.4, 0.1),
            ("softmax:1", "fc2:3", 0.3, 0.1),
            ("fc2:3", "fc1:4", 0.6, -0.2),
        ],
    )
    columns = [
        "softmax:0",
        "softmax:1",
        "fc2:2",
        "fc2:3",
        "fc2:10",
        "fc1:4",
    ]  # top level first, indices numerically
    expected = pd.DataFrame([[1, 0, 1, 0, 1, 1], [0, 1, 1, 1, 0, 1]], columns=columns, index=[0, 1])
    expected.index.name, expected.columns.name = "graph", "node"
    pd.testing.assert_frame_equal(bag_of_nodes([a, b]), expected)
    frequency = pd.DataFrame(
        [[1.0, 0.0, 0.5, 0.0, 0.9, 0.2], [0.0, 1.0, 0.7, 0.3, 0.0, 0.6]],  # fc1:4 in b: max(0.4, 0.6)
        columns=expected.columns,
        index=expected.index,
    )
    pd.testing.assert_frame_equal(bag_of_nodes([a, b], weight="frequency"), frequency)


def test_bag_of_nodes_labels():
    a, b = graph(0, nodes=["fc2:1"]), graph(0, nodes=["fc2:2"])
    assert list(bag_of_nodes({"cat": a, "shark": b}).index) == ["cat", "shark"]
    neurons = graph([["fc2", 1], ["softmax", 0]])
    assert list(bag_of_nodes([neurons, graph(1)]).index) == ["fc2:1, softmax:0", 1]
    with pytest.raises(ValueError, match=r"several graphs have the target 0.*Pass a dict \{label: graph\}"):
        bag_of_nodes([a, b])


def test_bag_of_nodes_checks_its_input():
    with pytest.raises(
        ValueError,
        match=r"'weight' parameter of bag_of_nodes must be one of \{'frequency'\}.*"
        r"Did you mean 'frequency'",
    ):
        bag_of_nodes([graph(0)], weight="frequencies")
    with pytest.raises(ValueError, match="at least 1 graph"):
        bag_of_nodes([])
    with pytest.raises(
        TypeError, match=r"needs DependencyGraph objects, or graphs of another kind \(LayeredGraph\); got a DiGraph"
    ):
        bag_of_nodes([graph(0).to_networkx()])
    with pytest.raises(TypeError, match="a list of graphs .* or a dict"):
        bag_of_nodes(graph(0))


# ----------------------------------------------------------------------------------------------- clustering


@pytest.mark.parametrize("weight", [None, "frequency"])
def test_cluster_graphs_equals_scipy_on_the_same_vectors(weight):
    graphs = random_graphs(9, seed=3)
    result = cluster_graphs(graphs, n_clusters=3, weight=weight)
    x = bag_of_nodes(graphs, weight=weight).to_numpy(dtype=float)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    expected = linkage(unit, method="ward", metric="euclidean")
    np.testing.assert_array_equal(result.linkage, expected)
    np.testing.assert_array_equal(result.leaf_order, leaves_list(expected))
    np.testing.assert_array_equal(result.labels.to_numpy(), fcluster(expected, 3, criterion="maxclust"))
    pd.testing.assert_frame_equal(result.frame, bag_of_nodes(graphs, weight=weight))
    # the geometry: squared distances between the unit rows are 2 - 2 cos of the raw rows
    np.testing.assert_allclose(pdist(unit, "sqeuclidean"), 2 * pdist(x, "cosine"), rtol=1e-12, atol=1e-12)


def test_cosine_geometry_is_used_not_euclidean():
    """g2's neurons are a subset of g1's (cos 0.38) and disjoint from g3's (cos 0): cosine joins g1 and g2 first,
    while plain Euclidean Ward on the raw 1/0 vectors joins the two small graphs g2 and g3 (distance² 6 < 8)."""
    big = graph(0, [("softmax:0", f"fc2:{k}", 1.0, 1.0) for k in range(8)])
    subset = graph(1, [("softmax:1", "fc2:0", 1.0, 1.0), ("softmax:1", "fc2:1", 1.0, 1.0)])
    other = graph(2, [("softmax:2", "fc2:20", 1.0, 1.0), ("softmax:2", "fc2:21", 1.0, 1.0)])
    result = cluster_graphs([big, subset, other], n_clusters=2)
    assert set(result.linkage[0, :2]) == {0, 1}
    assert result.labels[0] == result.labels[1] != result.labels[2]
    euclidean = linkage(bag_of_nodes([big, subset, other]).to_numpy(dtype=float), method="ward")
    assert set(euclidean[0, :2]) == {1, 2}


def test_cluster_result():
    graphs = {f"class {i}": g for i, g in enumerate(random_graphs(4, seed=1))}
    result = cluster_graphs(graphs)
    assert result.labels is None
    assert result.leaf_labels == [f"class {i}" for i in result.leaf_order]
    assert repr(result) == f"ClusterResult(graphs=4, nodes={result.frame.shape[1]}, clusters=None)"
    assert repr(cluster_graphs(graphs, n_clusters=2)).endswith("clusters=2)")


def test_cluster_graphs_checks_its_input():
    graphs = random_graphs(3, seed=0)
    with pytest.raises(ValueError, match="cluster_graphs needs at least 2 graph"):
        cluster_graphs(graphs[:1])
    with pytest.raises(
        ValueError,
        match=r"'n_clusters' parameter of cluster_graphs must be an int in the range "
        r"\[1, 3\]\. Got 4",
    ):
        cluster_graphs(graphs, n_clusters=4)
    empty = graph(5).subgraph(levels="fc1")  # no node left
    with pytest.raises(ValueError, match="Row 3 is all zeros"):
        cluster_graphs([*graphs, empty])
    with pytest.raises(ValueError, match="at least two rows"):
        cosine_ward_linkage(np.ones((1, 3)))


# ----------------------------------------------------------------------------------- shared, jaccard, counts

A = graph(
    0,
    [("softmax:0", "fc2:1", 0.8, 0.4), ("softmax:0", "fc2:2", 0.6, 0.2), ("fc2:1", "fc1:5", 0.5, -0.1)],
    model="MLP",
)
B = graph(
    1,
    [
        ("softmax:1", "fc2:1", 0.4, 0.2),
        ("softmax:1", "fc2:2", 1.0, 0.6),
        ("fc2:1", "fc1:5", 0.3, -0.3),
        ("fc2:2", "fc1:6", 0.2, 0.1),
    ],
    model="MLP",
)
C = graph(2, [("softmax:2", "fc2:1", 0.9, 0.5), ("fc2:1", "fc1:6", 0.7, 0.3)], model="CNN")


def test_shared_subgraph_of_all_graphs():
    shared = shared_subgraph([A, B, C])
    assert set(shared.nodes) == {"fc2:1"}
    assert shared.nodes["fc2:1"] == {"level": "fc2", "index": 1, "depth": 1, "graphs": 3}
    assert shared.to_networkx().number_of_edges() == 0
    assert shared.target == [["softmax", 0], ["softmax", 1], ["softmax", 2]]
    assert shared.attrs == {
        "levels": LEVELS,
        "kind": "dependency",
        "target": shared.target,
        "n_inputs": 10,
        "rule": "gradient",
        "n_graphs": 3,
        "min_fraction": 1.0,
    }  # 'model' differs, so it is dropped


def test_shared_subgraph_of_two_thirds():
    shared = shared_subgraph([A, B, C], min_fraction=2 / 3)
    assert set(shared.nodes) == {"fc2:1", "fc2:2", "fc1:5", "fc1:6"}
    assert set(shared.edges) == {("fc2:1", "fc1:5")}  # the only edge in two graphs
    edge = shared.edges["fc2:1", "fc1:5"]
    assert edge == {
        "count": 8,
        "frequency": pytest.approx(0.4),
        "relevance": pytest.approx(-0.2),
        "sign": -1,
        "graphs": 2,
    }
    assert shared.nodes["fc1:6"]["graphs"] == 2 and shared.nodes["fc2:1"]["graphs"] == 3
    assert set(shared_subgraph([A, B, C], min_fraction=0.5).nodes) == set(shared.nodes)  # 0.5 of 3: at least 2
    assert len(shared_subgraph([A, B, C], min_fraction=0.1)) == 7  # everything: 3 targets and 4 neurons


def test_shared_subgraph_keeps_a_common_target_and_checks_its_input():
    same = shared_subgraph({"run 1": A, "run 2": A})
    assert same.target == 0 and set(same.nodes) == set(A.nodes)
    assert same.edges["fc2:1", "fc1:5"]["count"] == 10  # 5 + 5
    with pytest.raises(
        ValueError,
        match=r"'min_fraction' parameter of shared_subgraph must be a float in the "
        r"range \(0, 1\]\. Got 0\.0",
    ):
        shared_subgraph([A, B], min_fraction=0.0)
    other = A.to_networkx()
    other.graph["levels"] = ["fc0", *LEVELS]
    for node in other:
        other.nodes[node]["depth"] = 3 - other.graph["levels"].index(other.nodes[node]["level"])
    with pytest.raises(ValueError, match="needs graphs over the same levels"):
        shared_subgraph([A, DependencyGraph(other)])


def test_jaccard_matrix_by_hand():
    # A: softmax:0 fc2:1 fc2:2 fc1:5; B: softmax:1 fc2:1 fc2:2 fc1:5 fc1:6; C: softmax:2 fc2:1 fc1:6
    expected = pd.DataFrame(
        [[1.0, 3 / 6, 1 / 6], [3 / 6, 1.0, 2 / 6], [1 / 6, 2 / 6, 1.0]],
        index=pd.Index([0, 1, 2], name="graph"),
        columns=[0, 1, 2],
    )
    pd.testing.assert_frame_equal(jaccard_matrix([A, B, C]), expected, rtol=1e-15)


def test_interconnectedness_and_node_occurrence():
    assert interconnectedness(B).to_dict() == {"softmax:1": 0, "fc2:1": 1, "fc2:2": 1, "fc1:5": 1, "fc1:6": 1}
    assert interconnectedness(shared_subgraph([A, B, C], min_fraction=0.1)).to_dict()["fc1:6"] == 2
    counts = node_occurrence([A, B, C, A])  # a repeated target is fine here
    assert counts.to_dict() == {
        "softmax:0": 2,
        "softmax:1": 1,
        "softmax:2": 1,
        "fc2:1": 4,
        "fc2:2": 3,
        "fc1:5": 3,
        "fc1:6": 2,
    }
    assert list(counts.index) == list(bag_of_nodes([A, B, C]).columns) and counts.name == "graphs"
    with pytest.raises(
        TypeError, match=r"interconnectedness needs a graph \(a DependencyGraph or another LayeredGraph\)"
    ):
        interconnectedness([A])


def test_public_names():
    for name in (
        "bag_of_nodes",
        "cluster_graphs",
        "shared_subgraph",
        "jaccard_matrix",
        "interconnectedness",
        "node_occurrence",
        "cosine_ward_linkage",
        "ClusterResult",
    ):
        assert name in stepwise.__all__ and hasattr(stepwise, name)


# ------------------------------------------------------------------------------------------- any kind


def random_trails(n: int, seed: int) -> list[TrailGraph]:
    """Graphs of the test kind (tests/graphs/test_layered.py) with random node sets over its levels."""
    rng = np.random.default_rng(seed)
    graphs = []
    for _ in range(n):
        edges = {}
        for k in rng.choice(6, size=2, replace=False):
            edges[("high:0", f"mid:{k}")] = float(rng.integers(1, 5))
            for j in rng.choice(9, size=2, replace=False):
                edges[(f"mid:{k}", f"low:{j}")] = float(rng.integers(1, 5))
        graphs.append(TrailGraph(trail(edges)))
    return graphs


def test_node_set_functions_take_graphs_of_any_kind():
    graphs = random_trails(6, seed=4)
    sets = [set(g.nodes) for g in graphs]
    place = {n: (d["depth"], d["level"], d["index"]) for g in graphs for n, d in g.nodes(data=True)}
    columns = sorted(set().union(*sets), key=place.__getitem__)
    frame = bag_of_nodes(graphs)
    assert list(frame.index) == list(range(6)) and list(frame.columns) == columns  # no target: rows by position
    assert frame.to_numpy().tolist() == [[int(c in s) for c in columns] for s in sets]
    assert list(bag_of_nodes({f"g{i}": g for i, g in enumerate(graphs)}).index) == [f"g{i}" for i in range(6)]

    jaccard = jaccard_matrix(graphs).to_numpy()
    expected = [[len(a & b) / len(a | b) for b in sets] for a in sets]
    np.testing.assert_allclose(jaccard, expected, rtol=4 * np.finfo(float).eps, atol=0)

    counts = node_occurrence(graphs)
    assert counts.to_dict() == {c: sum(c in s for s in sets) for c in columns} and list(counts.index) == columns

    result = cluster_graphs(graphs, n_clusters=2)
    x = np.array([[float(c in s) for c in columns] for s in sets])
    tree = linkage(x / np.linalg.norm(x, axis=1, keepdims=True), method="ward")
    np.testing.assert_allclose(result.linkage, tree, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(result.labels.to_numpy(), fcluster(tree, 2, criterion="maxclust"))

    for g in graphs:
        parents = interconnectedness(g)
        assert parents.to_dict() == dict(g.to_networkx().in_degree())
        assert list(parents.index) == sorted(g.nodes, key=lambda n: (g.nodes[n]["depth"], g.nodes[n]["index"]))

    with pytest.raises(ValueError, match=r"weight='frequency' needs the edge attribute 'frequency', which the edge"):
        bag_of_nodes(graphs, weight="frequency")


def test_shared_subgraph_of_another_kind():
    one = TrailGraph(trail({("high:0", "mid:1"): 1.0, ("mid:1", "low:3"): 2.0}, seed=1))
    two = TrailGraph(trail({("high:0", "mid:1"): 3.0, ("mid:2", "low:3"): 4.0}, seed=1))
    shared = shared_subgraph([one, two])
    assert type(shared) is TrailGraph and shared.kind == "trail"
    assert shared.attrs == {
        "levels": ["low", "mid", "high"],
        "seed": 1,
        "kind": "trail",
        "n_graphs": 2,
        "min_fraction": 1.0,
    }
    # a node's declared int (size, index + 1 in both) is summed, an edge's float (flow) averaged
    assert dict(shared.nodes(data=True)) == {
        "high:0": {"level": "high", "index": 0, "depth": 0, "size": 2, "graphs": 2},
        "mid:1": {"level": "mid", "index": 1, "depth": 1, "size": 4, "graphs": 2},
        "low:3": {"level": "low", "index": 3, "depth": 2, "size": 8, "graphs": 2},
    }
    assert {e: shared.edges[e] for e in shared.edges} == {("high:0", "mid:1"): {"flow": 2.0, "graphs": 2}}
    half = shared_subgraph([one, two], min_fraction=0.5)
    assert set(half.edges) == {("high:0", "mid:1"), ("mid:1", "low:3"), ("mid:2", "low:3")}
    assert half.edges["mid:2", "low:3"] == {"flow": 4.0, "graphs": 1}
    with pytest.raises(
        ValueError, match=r"shared_subgraph needs graphs of one kind; got a TrailGraph \(kind 'trail'\)"
    ):
        shared_subgraph([one, A])


def test_dependency_results_equal_the_node_metrics():
    for g in random_graphs(5, seed=7):
        metrics = g.node_metrics()
        weights = bag_of_nodes([g], weight="frequency").iloc[0]
        assert weights[metrics.index].to_dict() == metrics["frequency"].to_dict()
        pd.testing.assert_series_equal(interconnectedness(g), metrics["interconnectedness"])
