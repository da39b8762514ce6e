"""Files: lossless round trips on real traversals, atomic writes, safe XML, clear errors for foreign files."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import warnings

import networkx as nx
import pytest
import torch
from torch import nn

import stepwise
from stepwise import DependencyGraph, read_graph, readwrite, write_graph

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning:pydot"
)  # pydot's use of old pyparsing names
FORMATS = [".graphml", ".gexf", ".json", ".dot"]
N_CLASSES = 5


def trained_mlp() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A small MLP with heavy-tailed weights (as trained networks have), trained briefly on Gaussian blobs."""
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(N_CLASSES, 10, generator=generator)
    labels = torch.arange(N_CLASSES).repeat_interleave(30)
    inputs = centres[labels] + torch.randn(len(labels), 10, generator=generator)
    model = nn.Sequential(
        nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, N_CLASSES)
    )
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
def graphs() -> dict[str, DependencyGraph]:
    model, inputs, labels = trained_mlp()
    levels = ["input", "1", "3", "softmax"]
    own = inputs[labels == 0]
    found = {
        "positive": stepwise.StepwiseSensitivity(model, levels).dependency_graph(own, target=0),
        "both": stepwise.StepwiseSensitivity(model, levels, sign="both").dependency_graph(own, target=0),
        "neurons": stepwise.StepwiseSensitivity(model, levels, sign="both", branching=2).dependency_graph(
            own, target=[("3", 5), ("3", 7), ("softmax", 0)]
        ),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the traversal stops and says so
        found["stopped"] = stepwise.StepwiseSensitivity(model, levels, fence=50.0).dependency_graph(
            own, target=0
        )
    return found


def typed(value: object) -> object:
    """A value with the type of every part spelled out: 1, 1.0 and True compare equal, their typed forms do not."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def assert_identical(actual: DependencyGraph, expected: DependencyGraph) -> None:
    a, b = actual.to_networkx(), expected.to_networkx()
    assert typed(a.graph) == typed(b.graph)
    assert {n: typed(d) for n, d in a.nodes(data=True)} == {n: typed(d) for n, d in b.nodes(data=True)}
    assert {(u, v): typed(d) for u, v, d in a.edges(data=True)} == {
        (u, v): typed(d) for u, v, d in b.edges(data=True)
    }
    assert actual == expected


def needs_pydot(suffix: str) -> None:
    if suffix == ".dot":
        pytest.importorskip("pydot")


def test_real_graphs_cover_the_cases(graphs):
    both = graphs["both"]
    assert {d["sign"] for _, _, d in both.edges(data=True)} == {1, -1}
    assert {both.nodes[n]["level"] for n in both.nodes} == {"input", "1", "3", "softmax"}
    assert graphs["neurons"].target == [["3", 5], ["3", 7], ["softmax", 0]]
    assert graphs["stopped"].attrs["stopped_at"] in {"3 <- softmax", "1 <- 3", "input <- 1"}
    assert "Tukey outlier" in graphs["stopped"].attrs["stop_reason"]
    assert "stopped_at" not in both.attrs


# ------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("kind", ["positive", "both", "neurons", "stopped"])
def test_round_trip_of_real_traversals(graphs, kind, suffix, tmp_path):
    needs_pydot(suffix)
    path = tmp_path / f"graph{suffix}"
    write_graph(graphs[kind], path)
    assert_identical(read_graph(path), graphs[kind])
    assert os.listdir(tmp_path) == [path.name]


def awkward(graph: DependencyGraph) -> DependencyGraph:
    """The graph with extra attributes whose values test every encoding rule."""
    g = graph.to_networkx()
    g.graph.update(
        marked=readwrite.MARKER + "[1, 2]",
        int_text="12",
        float_text="1e-05",
        inf_text="inf",
        empty="",
        flag=True,
        nothing=None,
        nested={"a": [1, 2.5, None], "b": "ω → ü"},
        quotes='say "hi" \\ back\\',
        lines="one\ntwo\ttab",
        big=2**62,
        tiny=1e-300,
        sum=0.1 + 0.2,
    )
    node = next(iter(g))
    g.nodes[node].update(text="8", flag=False, values=[3, 4])
    u, v = next(iter(g.edges))
    g.edges[u, v].update(note="-3.5", ratio=2 / 3)
    for (node, data), score in zip(g.nodes(data=True), [1, 0.5, "high", True, None, [1], 2]):
        data["score"] = score  # one attribute, values of several types
    for (_, _, data), score in zip(g.edges(data=True), [7, 0.25, "x"]):
        data["score"] = score
    return DependencyGraph(g)


@pytest.mark.parametrize("suffix", FORMATS)
def test_round_trip_keeps_every_value_and_type(graphs, suffix, tmp_path):
    needs_pydot(suffix)
    graph = awkward(graphs["both"])
    graph.write(tmp_path / f"graph{suffix}")
    assert_identical(read_graph(tmp_path / f"graph{suffix}"), graph)


def test_suffix_is_case_insensitive_and_checked(graphs, tmp_path):
    write_graph(graphs["both"], tmp_path / "GRAPH.GraphML")
    assert read_graph(tmp_path / "GRAPH.GraphML") == graphs["both"]
    with pytest.raises(ValueError, match=r"unknown format '\.xml'\. Use one of \.graphml, \.gexf, \.json"):
        write_graph(graphs["both"], tmp_path / "graph.xml")
    with pytest.raises(ValueError, match=r"unknown format '\(no suffix\)'"):
        read_graph(tmp_path / "graph")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike; got int"):
        read_graph(3)
    with pytest.raises(TypeError, match="write_json needs a DependencyGraph; got DiGraph"):
        readwrite.write_json(graphs["both"].to_networkx(), tmp_path / "g.json")


@pytest.mark.parametrize(
    ("suffix", "kind", "name"),
    [
        (".gexf", "node", "label"),
        (".gexf", "edge", "weight"),
        (".json", "node", "id"),
        (".json", "edge", "source"),
    ],
)
def test_names_a_format_reserves_are_refused(graphs, suffix, kind, name, tmp_path):
    g = graphs["both"].to_networkx()
    item = next(iter(g.nodes)) if kind == "node" else next(iter(g.edges))
    (g.nodes if kind == "node" else g.edges)[item][name] = 1
    with pytest.raises(
        ValueError, match=rf"has the attribute\(s\) \['{name}'\], which .* uses for its own fields"
    ):
        write_graph(DependencyGraph(g), tmp_path / f"g{suffix}")
    assert os.listdir(tmp_path) == []
    write_graph(DependencyGraph(g), tmp_path / "g.graphml")  # GraphML keeps any name
    assert read_graph(tmp_path / "g.graphml") == DependencyGraph(g)


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_value_that_cannot_be_stored_is_a_type_error(graphs, suffix, tmp_path):
    g = graphs["both"].to_networkx()
    g.graph["classes"] = {"cat", "dog"}
    with pytest.raises(TypeError, match="set"):
        write_graph(DependencyGraph(g), tmp_path / f"g{suffix}")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------------- other readers


def test_other_readers_open_the_files(graphs, tmp_path):
    graph = graphs["both"]
    for suffix in (".graphml", ".gexf", ".json"):
        graph.write(tmp_path / f"g{suffix}")
    plain = nx.read_graphml(tmp_path / "g.graphml")
    assert set(plain.edges) == set(graph.edges)
    assert all(plain.edges[e]["relevance"] == graph.edges[e]["relevance"] for e in graph.edges)
    assert plain.graph["levels"] == readwrite.MARKER + json.dumps(graph.levels)
    gexf = nx.read_gexf(tmp_path / "g.gexf")
    assert {n: d["depth"] for n, d in gexf.nodes(data=True)} == {
        n: d["depth"] for n, d in graph.nodes(data=True)
    }
    data = json.loads((tmp_path / "g.json").read_text())
    assert data["graph"]["levels"] == graph.levels and data["directed"] is True
    assert nx.node_link_graph(data, edges="edges").edges == graph.to_networkx().edges


def test_dot_opens_with_pydot_and_graphviz(graphs, tmp_path):
    pydot = pytest.importorskip("pydot")
    graph = graphs["both"]
    path = tmp_path / "g.dot"
    graph.write(path)
    text = path.read_text()
    assert '"softmax:0" [level="softmax", index="0", depth="0"];' in text
    assert 'level="3"' in text  # a level's name is written as it is, though it reads like a number
    (dot,) = pydot.graph_from_dot_file(path)
    assert len(dot.get_edges()) == graph.to_networkx().number_of_edges()
    if shutil.which("dot") is None:
        pytest.skip("graphviz's dot is not installed")
    svg = subprocess.run(["dot", "-Tsvg", str(path)], capture_output=True, text=True, check=True).stdout
    assert all(f"<title>{node}</title>" in svg for node in graph.nodes)


def test_dot_is_written_without_pydot_and_read_says_how_to_get_it(graphs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pydot", None)  # import pydot now raises ImportError
    graphs["both"].write(tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text().startswith("digraph dependency_graph {")
    with pytest.raises(ImportError, match=r"needs pydot, which is not installed: pip install pydot"):
        read_graph(tmp_path / "g.dot")


# ------------------------------------------------------------------------------------------- atomic


@pytest.mark.parametrize("suffix", FORMATS)
def test_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(graphs, suffix, tmp_path, monkeypatch):
    path = tmp_path / f"g{suffix}"
    graphs["positive"].write(path)
    before = path.read_bytes()

    def broken_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(readwrite.os, "fsync", broken_disk)
    with pytest.raises(OSError, match="No space left"):
        graphs["both"].write(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]


def test_serializer_failing_mid_write_keeps_the_old_file(graphs, tmp_path, monkeypatch):
    path = tmp_path / "g.graphml"
    graphs["positive"].write(path)
    before = path.read_bytes()

    def half_written(g: nx.DiGraph, stream) -> None:
        stream.write(b"<?xml version='1.0'?><graphml><graph>")
        raise RuntimeError("serializer crashed")

    monkeypatch.setattr(nx, "write_graphml", half_written)
    with pytest.raises(RuntimeError, match="serializer crashed"):
        graphs["both"].write(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["g.graphml"]
    assert read_graph(path) == graphs["positive"]


def test_written_file_has_the_usual_permissions(graphs, tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    path = tmp_path / "g.json"
    graphs["both"].write(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # as open() would create it
    path.chmod(0o600)
    graphs["positive"].write(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # a replaced file keeps its mode


def test_missing_folder_is_named(graphs, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"the folder .*missing does not exist\. Create it first"):
        graphs["both"].write(tmp_path / "missing" / "g.graphml")


# --------------------------------------------------------------------------------------- hostile XML

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE graphml [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
 <key id="d0" for="graph" attr.name="model" attr.type="string"/>
 <graph edgedefault="directed"><data key="d0">&lol9;</data></graph>
</graphml>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE graphml [<!ENTITY secret SYSTEM "file://{path}">]>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
 <key id="d0" for="graph" attr.name="model" attr.type="string"/>
 <graph edgedefault="directed"><data key="d0">&secret;</data></graph>
</graphml>
"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE graphml SYSTEM "http://example.invalid/graphml.dtd">
<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph edgedefault="directed"/></graphml>
"""


@pytest.mark.parametrize("suffix", [".graphml", ".gexf"])
@pytest.mark.parametrize("attack", ["billion laughs", "external entity", "external DTD"])
def test_hostile_xml_is_refused(attack, suffix, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    text = {
        "billion laughs": BILLION_LAUGHS,
        "external entity": EXTERNAL_ENTITY.format(path=secret),
        "external DTD": EXTERNAL_DTD,
    }[attack]
    path = tmp_path / f"hostile{suffix}"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"Refused to read .*DTDForbidden.*billion laughs") as caught:
        read_graph(path)
    assert "TOP-SECRET" not in str(caught.value)


# ------------------------------------------------------------------------------ truncated and foreign


@pytest.mark.parametrize("suffix", FORMATS)
def test_truncated_file_is_a_clear_error(graphs, suffix, tmp_path):
    needs_pydot(suffix)
    path = tmp_path / f"g{suffix}"
    graphs["both"].write(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    expected = {
        ".graphml": "not well-formed XML",
        ".gexf": "not well-formed XML",
        ".json": "not valid JSON",
        ".dot": "not valid DOT",
    }[suffix]
    with pytest.raises(ValueError, match=rf"Cannot read .*g\{suffix}: it is {expected}.*truncated"):
        read_graph(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=f"it is {expected}"):
        read_graph(path)


def foreign_graph() -> nx.DiGraph:
    g = nx.DiGraph(name="roads")
    g.add_edge("a", "b", length=3.5)
    return g


@pytest.mark.parametrize("suffix", [".graphml", ".gexf", ".json"])
def test_a_graph_from_another_tool_names_what_is_missing(suffix, tmp_path):
    path = tmp_path / f"roads{suffix}"
    writer = {
        ".graphml": nx.write_graphml,
        ".gexf": nx.write_gexf,
        ".json": lambda g, p: p.write_text(json.dumps(nx.node_link_data(g, edges="edges"))),
    }[suffix]
    writer(foreign_graph(), path)
    with pytest.raises(
        ValueError,
        match=r"roads.* is not a stepwise dependency graph: .*lacks the graph attribute\(s\) "
        r"'levels', 'target'",
    ):
        read_graph(path)


def write_plainly(g: nx.DiGraph, path) -> None:
    """Write with networkx alone, as another tool would."""
    if path.suffix == ".graphml":
        nx.write_graphml(g, path)
    else:
        path.write_text(json.dumps(nx.node_link_data(g, edges="edges")))


@pytest.mark.parametrize("suffix", [".graphml", ".json"])
def test_missing_node_and_edge_attributes_are_named(graphs, suffix, tmp_path):
    path = tmp_path / f"g{suffix}"
    attrs = {"levels": readwrite.MARKER + json.dumps(graphs["both"].levels), "target": 1}
    g = graphs["both"].to_networkx()
    g.graph = dict(attrs)
    for _, data in g.nodes(data=True):
        del data["depth"]
    write_plainly(g, path)
    with pytest.raises(ValueError, match=rf"{len(g)} of {len(g)} nodes lack the node attribute\(s\) 'depth'"):
        read_graph(path)
    g = graphs["both"].to_networkx()
    g.graph = dict(attrs)
    for _, _, data in g.edges(data=True):
        del data["relevance"], data["sign"]
    write_plainly(g, path)
    with pytest.raises(ValueError, match=r"edges lack the edge attribute\(s\) 'relevance', 'sign'"):
        read_graph(path)


def test_other_foreign_files(tmp_path):
    (tmp_path / "page.graphml").write_text("<html><body>not a graph</body></html>")
    with pytest.raises(ValueError, match=r"Cannot read .*page\.graphml as GraphML"):
        read_graph(tmp_path / "page.graphml")
    undirected = nx.Graph(levels="x")
    undirected.add_edge("a", "b")
    nx.write_graphml(undirected, tmp_path / "undirected.graphml")
    with pytest.raises(ValueError, match="undirected; a stepwise dependency graph is directed"):
        read_graph(tmp_path / "undirected.graphml")
    (tmp_path / "numbers.json").write_text("[1, 2, 3]")
    with pytest.raises(ValueError, match="JSON but not networkx node-link data"):
        read_graph(tmp_path / "numbers.json")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_graph(tmp_path / "binary.json")
    with pytest.raises(FileNotFoundError):
        read_graph(tmp_path / "absent.gexf")


def test_foreign_dot_files(tmp_path):
    pytest.importorskip("pydot")
    (tmp_path / "u.dot").write_text("graph g { a -- b }")
    with pytest.raises(ValueError, match=r"exactly one directed graph \(digraph\)"):
        read_graph(tmp_path / "u.dot")
    (tmp_path / "plain.dot").write_text('digraph g { "a" -> "b" [weight=2] }')
    with pytest.raises(ValueError, match=r"lacks the graph attribute\(s\) 'levels', 'target'"):
        read_graph(tmp_path / "plain.dot")
