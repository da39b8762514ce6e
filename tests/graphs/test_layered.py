"""LayeredGraph: the structure every kind shares, the registry of kinds, and a new kind written here (TrailGraph)
that round-trips through the shared readers and writers of every format."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import networkx as nx
import numpy as np
import pytest

import stepwise
from stepwise import DependencyGraph, LayeredGraph, read_graph, write_graph
from stepwise.graphs import graph_class, node_key
from stepwise.graphs import layered, readwrite

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pydot")  # pydot's use of old pyparsing names
FORMATS = [".graphml", ".gexf", ".json", ".dot"]
READERS = {
    ".graphml": readwrite.read_graphml,
    ".gexf": readwrite.read_gexf,
    ".json": readwrite.read_json,
    ".dot": readwrite.read_dot,
}
LEVELS = ["low", "mid", "high"]


class TrailGraph(LayeredGraph):
    """A kind of the tests: clusters level by level with a size, joined by edges carrying a positive flow."""

    KIND: ClassVar[str] = "trail"
    NODE_ATTRS: ClassVar[dict[str, type]] = {"size": int}
    EDGE_ATTRS: ClassVar[dict[str, type]] = {"flow": float}

    @classmethod
    def _check_values(cls, graph: nx.DiGraph) -> None:
        for u, v, flow in graph.edges(data="flow"):
            if flow <= 0:
                raise ValueError(f"Edge {u!r} -> {v!r} has flow={flow!r}; a trail's flow is above 0.")


def trail(edges: dict[tuple[str, str], float], *, nodes: tuple[str, ...] = (), **attrs: Any) -> nx.DiGraph:
    """A DiGraph of the trail kind over LEVELS: edges {(upper, lower): flow}; a node's size is its index + 1."""
    g = nx.DiGraph(levels=list(LEVELS), **attrs)
    for key in [*nodes, *(k for edge in edges for k in edge)]:
        level, index = key.rsplit(":", 1)
        g.add_node(key, level=level, index=int(index), depth=len(LEVELS) - 1 - LEVELS.index(level), size=int(index) + 1)
    for (u, v), flow in edges.items():
        g.add_edge(u, v, flow=flow)
    return g


EDGES = {("high:0", "mid:1"): 0.5, ("high:0", "mid:2"): 0.25, ("mid:1", "low:3"): 2.0, ("mid:2", "low:3"): 1.0}


def good() -> nx.DiGraph:
    return trail(EDGES, nodes=("high:4",), seed=3)


# ------------------------------------------------------------------------------------------- the registry


def test_graph_class_finds_every_kind():
    assert graph_class("trail") is TrailGraph
    assert graph_class("dependency") is DependencyGraph
    assert layered.DEFAULT_KIND == "dependency"
    assert stepwise.LayeredGraph is LayeredGraph and "LayeredGraph" in stepwise.__all__
    with pytest.raises(ValueError, match=r"No kind 'trial'.*Did you mean 'trail'\?.*known kinds are \[.*'trail'"):
        graph_class("trial")
    with pytest.raises(TypeError, match=r"kind is a str such as 'dependency'; got 3 \(int\)"):
        graph_class(3)


def test_a_shipped_kind_is_imported_on_first_use():
    code = (
        "import sys; from stepwise.graphs.layered import graph_class\n"
        "assert 'stepwise.graphs.dependency' not in sys.modules\n"
        "print(graph_class('dependency').__module__, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.split() == ["stepwise.graphs.dependency", "False"]


def test_a_known_kind_without_its_module_says_so(monkeypatch):
    monkeypatch.setitem(layered.KIND_MODULES, "ghost", "stepwise.graphs.ghost")
    with pytest.raises(ValueError, match=r"kind 'ghost' are read by stepwise.graphs.ghost, which this version"):
        graph_class("ghost")


def test_registering_a_kind_is_checked():
    with pytest.raises(TypeError, match=r"The kind 'dependency' is already the kind of stepwise.graphs.dependency"):
        type("Impostor", (LayeredGraph,), {"KIND": "dependency"})
    with pytest.raises(TypeError, match=r"Bad.KIND must be a non-empty str"):
        type("Bad", (LayeredGraph,), {"KIND": 7})
    with pytest.raises(TypeError, match=r"Odd.EDGE_ATTRS holds \{'when': <class 'complex'>\}"):
        type("Odd", (LayeredGraph,), {"KIND": "odd", "EDGE_ATTRS": {"when": complex}})
    with pytest.raises(TypeError, match=r"Again redeclares \['depth'\]"):
        type("Again", (LayeredGraph,), {"KIND": "again", "NODE_ATTRS": {"depth": int}})
    assert "odd" not in layered._known_kinds() and "again" not in layered._known_kinds()

    class Wider(TrailGraph):  # a subclass of a kind, without KIND: the kind keeps its class
        pass

    assert graph_class("trail") is TrailGraph and Wider(good()).kind == "trail"


def test_the_base_class_has_no_kind_and_dispatches():
    with pytest.raises(
        TypeError, match=r"LayeredGraph is the base of the kinds of graph .* LayeredGraph.from_networkx\(g\)"
    ):
        LayeredGraph(good())
    assert type(LayeredGraph.from_networkx(trail(EDGES, kind="trail"))) is TrailGraph
    dependency = nx.DiGraph(levels=["fc", "softmax"], target=0)  # no kind: a dependency graph, as old files
    dependency.add_node("softmax:0", level="softmax", index=0, depth=0)
    assert type(LayeredGraph.from_networkx(dependency)) is DependencyGraph
    with pytest.raises(ValueError, match=r"No kind 'nosuch' in stepwise"):
        LayeredGraph.from_networkx(trail(EDGES, kind="nosuch"))
    with pytest.raises(TypeError, match=r"needs a networkx.DiGraph; got Graph"):
        LayeredGraph.from_networkx(nx.Graph())


# --------------------------------------------------------------------------------------- the structure


def test_a_graph_of_the_kind():
    graph = TrailGraph(good())
    assert graph.kind == "trail" and graph.attrs == {"levels": LEVELS, "seed": 3, "kind": "trail"}
    assert graph.levels == LEVELS and len(graph) == 5
    assert graph.nodes["mid:2"] == {"level": "mid", "index": 2, "depth": 1, "size": 3}
    assert graph.edges["mid:1", "low:3"] == {"flow": 2.0}
    assert repr(graph) == "TrailGraph(levels=3, nodes=5, edges=4)"
    assert node_key("mid", 2) == "mid:2"
    assert TrailGraph(good()) == graph and TrailGraph.from_networkx(graph.to_networkx()) == graph
    assert graph != TrailGraph(trail(EDGES)) and graph != good()
    sub = graph.subgraph(levels=["mid", "low"])
    assert type(sub) is TrailGraph and set(sub.nodes) == {"mid:1", "mid:2", "low:3"} and sub.attrs == graph.attrs


def test_values_are_made_plain_and_the_input_is_not_modified():
    g = good()
    g.nodes["mid:1"]["size"] = np.int64(2)
    g.nodes["mid:1"]["index"] = np.int32(1)
    g.edges["mid:1", "low:3"]["flow"] = np.float32(2.0)
    g.edges["mid:2", "low:3"]["flow"] = 1  # an int where a float is declared
    graph = TrailGraph(g)
    assert type(graph.nodes["mid:1"]["size"]) is int and type(graph.nodes["mid:1"]["index"]) is int
    assert [type(graph.edges[e]["flow"]) for e in [("mid:1", "low:3"), ("mid:2", "low:3")]] == [float, float]
    assert type(g.nodes["mid:1"]["size"]) is np.int64 and "kind" not in g.graph


def add(g: nx.DiGraph, u: str, v: str, flow: float = 1.0) -> None:
    g.add_edge(u, v, flow=flow)


# case: (how a good graph is spoiled, what the message says)
BAD = {
    "a key that is not level:index": (
        lambda g: g.nodes["mid:1"].update(index=5),
        r"Node 'mid:1' has level 'mid' and index 5, so its key must be 'mid:5'",
    ),
    "a depth that is not the level's": (
        lambda g: g.nodes["mid:1"].update(depth=0),
        r"Node 'mid:1' has depth 0, but level 'mid' lies at depth 1 of levels \['low', 'mid', 'high'\]",
    ),
    "a cycle": (
        lambda g: add(g, "low:3", "high:0"),
        r"The graph has a cycle, 'high:0' -> 'mid:1' -> 'low:3' -> 'high:0': edges run from a node to one of a lower",
    ),
    "an edge that runs upwards": (lambda g: add(g, "low:3", "high:4"), r"Edge 'low:3' -> 'high:4' runs from depth 2"),
    "an edge within a level": (lambda g: add(g, "mid:1", "mid:2"), r"Edge 'mid:1' -> 'mid:2' runs from depth 1 to"),
    "a level not among the levels": (
        lambda g: g.nodes["mid:1"].update(level="top"),
        r"Node 'mid:1' has level 'top', which is not in the graph's levels",
    ),
    "a negative index": (
        lambda g: nx.relabel_nodes(g.nodes["mid:1"].update(index=-1) or g, {"mid:1": "mid:-1"}, copy=False),
        r"Node 'mid:-1' has index -1; an index is at least 0",
    ),
    "no levels": (lambda g: g.graph.pop("levels"), r"lacks the graph attribute\(s\) 'levels' of a stepwise trail"),
    "levels repeated": (lambda g: g.graph.update(levels=["low", "low"]), r"must list distinct level names"),
    "a missing node attribute of the kind": (
        lambda g: g.nodes["low:3"].pop("size"),
        r"1 of 5 nodes lack the node attribute\(s\) 'size' of a stepwise trail graph \(first: 'low:3'.*'size' \(int\)",
    ),
    "a node attribute of the wrong type": (
        lambda g: g.nodes["low:3"].update(size=2.5),
        r"Node 'low:3' has size=2.5 \(float\); size must be an int",
    ),
    "a missing edge attribute": (
        lambda g: g.edges["mid:1", "low:3"].pop("flow"),
        r"1 of 4 edges lack the edge attribute\(s\) 'flow' of a stepwise trail graph",
    ),
    "an edge attribute that is not finite": (
        lambda g: g.edges["mid:1", "low:3"].update(flow=float("nan")),
        r"Edge 'mid:1' -> 'low:3' has flow=nan \(float\); flow must be a finite float",
    ),
    "a recorded attribute of the wrong type": (
        lambda g: g.graph.update(seed="3"),
        r"The graph attribute 'seed' is '3' \(str\): it must be an int, as a stepwise trail graph records it",
    ),
    "a value the kind refuses": (
        lambda g: g.edges["mid:1", "low:3"].update(flow=-1.0),
        r"Edge 'mid:1' -> 'low:3' has flow=-1.0; a trail's flow is above 0",
    ),
    "another kind": (
        lambda g: g.graph.update(kind="dependency"),
        r"The graph is of kind 'dependency', so it is a DependencyGraph, not a RecordedTrail \(kind 'trail'\)",
    ),
    "an unknown kind": (lambda g: g.graph.update(kind="paht"), r"No kind 'paht' in stepwise"),
    "a kind that is not text": (lambda g: g.graph.update(kind=1), r"The graph attribute 'kind' is 1: it must be a str"),
}


class RecordedTrail(TrailGraph):
    RECORDED_ATTRS: ClassVar[dict[str, type]] = {"seed": int}


@pytest.mark.parametrize("case", list(BAD))
def test_the_structure_is_checked(case):
    spoil, message = BAD[case]
    RecordedTrail(good())  # good before it is spoiled
    g = good()
    spoil(g)
    with pytest.raises(ValueError, match=message):
        RecordedTrail(g)


@pytest.mark.parametrize("case", [case for case in BAD if "recorded" not in case and "kind" not in case])
def test_the_readers_refuse_the_bad_graphs_of_a_kind(case, tmp_path):
    spoil, message = BAD[case]
    g = good()
    g.graph["kind"] = "trail"
    spoil(g)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(nx.node_link_data(g, edges="edges")))
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}.*{message}"):
        read_graph(path)


def test_the_dependency_kind_refuses_a_graph_of_another_kind():
    g = nx.DiGraph(levels=["fc", "softmax"], target=0, kind="trail")
    with pytest.raises(ValueError, match=r"of kind 'trail', so it is a TrailGraph, not a DependencyGraph"):
        DependencyGraph(g)


def test_not_a_digraph_is_a_type_error():
    with pytest.raises(TypeError, match=r"TrailGraph needs a networkx.DiGraph; got MultiDiGraph"):
        TrailGraph(nx.MultiDiGraph(good()))


# ------------------------------------------------------------------------------------------------- files


def needs_pydot(suffix: str) -> None:
    if suffix == ".dot":
        pytest.importorskip("pydot")


def typed(value: object) -> object:
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_new_kind_round_trips_in_every_format(suffix, tmp_path):
    needs_pydot(suffix)
    g = good()
    g.graph.update(note="8", ratio=0.1 + 0.2, tags=["a", None])  # attributes the kind does not declare
    g.nodes["high:4"]["label_text"] = "4.5"
    graph = TrailGraph(g)
    path = tmp_path / f"trail{suffix}"
    write_graph(graph, path)
    assert "trail" in path.read_text()  # the kind is in the file
    read = read_graph(path)
    assert type(read) is TrailGraph and read == graph and read.kind == "trail"
    assert typed(read.attrs) == typed(graph.attrs)
    assert {n: typed(d) for n, d in read.nodes(data=True)} == {n: typed(d) for n, d in graph.nodes(data=True)}
    assert {e: typed(read.edges[e]) for e in read.edges} == {e: typed(graph.edges[e]) for e in graph.edges}
    assert type(READERS[suffix](path)) is TrailGraph
    graph.write(tmp_path / f"again{suffix}")
    assert read_graph(tmp_path / f"again{suffix}") == graph


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_file_of_an_unknown_kind_is_refused(suffix, tmp_path):
    needs_pydot(suffix)
    path = tmp_path / f"trail{suffix}"
    write_graph(TrailGraph(good()), path)
    path.write_text(path.read_text().replace("trail", "nosuch"))
    with pytest.raises(
        ValueError, match=rf"Cannot read {re.escape(str(path))}: the file holds a graph of kind 'nosuch'"
    ):
        read_graph(path)


def test_a_file_whose_kind_is_not_text_is_refused(tmp_path):
    g = good()
    g.graph["kind"] = ["trail"]
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(nx.node_link_data(g, edges="edges")))
    with pytest.raises(ValueError, match=r"its graph attribute 'kind' is \['trail'\] \(list\), not the name of a kind"):
        read_graph(path)


def test_reading_graphs_and_their_collections_imports_nothing_heavy():
    """A graph file reads, and the collections module imports, without torch, pandas, scipy or matplotlib."""
    code = (
        "import sys; import stepwise.graphs.collections; from stepwise import read_graph\n"
        "graph = read_graph('tests/data/class_3.graphml')\n"
        "heavy = ('torch', 'pandas', 'scipy', 'matplotlib', 'seaborn')\n"
        "print(type(graph).__name__, [name for name in heavy if name in sys.modules])"
    )
    root = Path(__file__).parent.parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120, cwd=root
    )
    assert done.stdout.split() == ["DependencyGraph", "[]"]


def test_a_graph_of_any_kind_draws_itself():
    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        assert TrailGraph(good()).plot(ax=ax) is fig
        shown = {text.get_text() for text in ax.texts}
        assert {"0", "1", "2", "3", "4"} <= shown  # every node's index is drawn
    finally:
        plt.close("all")
