"""The graph kind "inference": schema checks, and lossless round trips through every format's shared reader."""

from __future__ import annotations

import networkx as nx
import pytest

import stepwise
from stepwise.graphs.inference import InferenceGraph
from stepwise.graphs.layered import graph_class
from tests.inference.nets import SKIP_LEVELS, SkipNet, skip_data

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pydot")
FORMATS = [".graphml", ".gexf", ".json", ".dot"]


@pytest.fixture(scope="module")
def graph() -> InferenceGraph:
    data = skip_data(50)
    ig = stepwise.InferenceGraphs(SkipNet(), SKIP_LEVELS, n_words=4, max_iter=10).fit(data)
    target = int(ig.words(data)["softmax"].mode().values)
    return ig.class_graph(data, target, z=2)


def test_graph_class_finds_the_kind() -> None:
    assert graph_class("inference") is InferenceGraph


@pytest.mark.parametrize("suffix", FORMATS)
def test_round_trip_through_the_shared_readers(graph: InferenceGraph, suffix: str, tmp_path) -> None:
    assert len(graph.edges) > 0
    path = tmp_path / f"graph{suffix}"
    graph.write(path)
    back = stepwise.read_graph(path)
    assert type(back) is InferenceGraph
    assert back == graph
    for _, data in back.nodes(data=True):
        assert type(data["size"]) is int and type(data["score"]) is float
    for _, _, data in back.edges(data=True):
        assert type(data["count"]) is int and type(data["log_ratio"]) is float
    assert back.attrs["n_words"] == graph.attrs["n_words"] and back.attrs["selected"] == graph.attrs["selected"]


def small() -> nx.DiGraph:
    g = nx.DiGraph(levels=["conv", "softmax"], target=1, n_inputs=3, z=2)
    g.add_node("softmax:1", level="softmax", index=1, depth=0, size=3, score=0.0)
    g.add_node("conv:4", level="conv", index=4, depth=1, size=10, score=2.0)
    g.add_edge("softmax:1", "conv:4", count=4, frequency=0.5, log_ratio=0.5, score=2.0)
    return g


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda g: g.graph.update(z=0), "'z' is 0: it must be an int >= 1"),
        (lambda g: g.edges["softmax:1", "conv:4"].update(count=0), "count=0"),
        (lambda g: g.edges["softmax:1", "conv:4"].update(frequency=1.5), "frequency lies in (0, 1]"),
        (lambda g: g.edges["softmax:1", "conv:4"].update(score=3.0), "count * log_ratio = 2.0"),
        (lambda g: g.nodes["conv:4"].update(size=-1), "size counts columns"),
        (lambda g: g.graph.pop("target"), "lacks the graph attribute(s) 'target'"),
    ],
)
def test_schema_refuses_bad_values(change, message) -> None:
    g = small()
    InferenceGraph(g)
    change(g)
    with pytest.raises(ValueError) as caught:
        InferenceGraph(g)
    assert message in str(caught.value)
