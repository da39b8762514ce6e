"""Files: lossless round trips on real traversals, atomic writes, safe XML, clear errors for foreign files."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import warnings

import networkx as nx
import pytest
import torch
from tests.faults import FullDisk, files_in
from torch import nn

import stepwise
from stepwise.core import io as core_io
from stepwise import DependencyGraph, read_graph, write_graph
from stepwise.graphs import readwrite

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pydot")  # pydot's use of old pyparsing names
FORMATS = [".graphml", ".gexf", ".json", ".dot"]
N_CLASSES = 5


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
        found["stopped"] = stepwise.StepwiseSensitivity(model, levels, fence=50.0).dependency_graph(own, target=0)
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
    assert {(u, v): typed(d) for u, v, d in a.edges(data=True)} == {(u, v): typed(d) for u, v, d in b.edges(data=True)}
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
    with pytest.raises(ValueError, match=rf"has the attribute\(s\) \['{name}'\], which .* uses for its own fields"):
        write_graph(DependencyGraph(g), tmp_path / f"g{suffix}")
    assert os.listdir(tmp_path) == []
    write_graph(DependencyGraph(g), tmp_path / "g.graphml")  # GraphML keeps any name
    assert read_graph(tmp_path / "g.graphml") == DependencyGraph(g)


@pytest.mark.parametrize("suffix", FORMATS)
def test_text_that_xml_cannot_hold_reads_back(graphs, suffix, tmp_path):
    needs_pydot(suffix)
    g = graphs["both"].to_networkx()
    g.graph["note"] = "carriage\r\nreturn, bell \x07, nul \x00, \ufffe"
    g.nodes[next(iter(g))]["note"] = "\x1b[1mbold\x1b[0m\r"
    graph = DependencyGraph(g)
    graph.write(tmp_path / f"g{suffix}")
    assert_identical(read_graph(tmp_path / f"g{suffix}"), graph)


@pytest.mark.parametrize("suffix", [".graphml", ".gexf"])
def test_a_name_that_xml_cannot_hold_is_refused(graphs, suffix, tmp_path):
    g = graphs["both"].to_networkx()
    g.nodes[next(iter(g))]["bad\x01name"] = 1
    with pytest.raises(ValueError, match=r"the attribute name 'bad\\x01name' of node .* holds the character '\\x01'"):
        DependencyGraph(g).write(tmp_path / f"g{suffix}")
    g = graphs["both"].to_networkx()
    g.graph["levels"][0] = "in\x02put"
    g = nx.relabel_nodes(g, {n: n.replace("input:", "in\x02put:") for n in g})
    for _, data in g.nodes(data=True):
        data["level"] = data["level"].replace("input", "in\x02put")
    with pytest.raises(ValueError, match=r"the node key 'in\\x02put:\d+' holds .* Rename it, or write JSON"):
        DependencyGraph(g).write(tmp_path / f"g{suffix}")
    assert os.listdir(tmp_path) == []
    DependencyGraph(g).write(tmp_path / "g.json")
    assert read_graph(tmp_path / "g.json") == DependencyGraph(g)


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
    assert {n: d["depth"] for n, d in gexf.nodes(data=True)} == {n: d["depth"] for n, d in graph.nodes(data=True)}
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

    monkeypatch.setattr(core_io.os, "fsync", broken_disk)
    with pytest.raises(OSError, match="No space left"):
        graphs["both"].write(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]


@pytest.mark.parametrize("suffix", FORMATS)
def test_disk_full_in_the_middle_of_a_write_keeps_the_old_file(graphs, suffix, tmp_path, monkeypatch):
    needs_pydot(suffix)
    path = tmp_path / f"g{suffix}"
    graphs["positive"].write(path)
    before = path.read_bytes()
    disk = FullDisk(room=len(before) // 2)
    monkeypatch.setattr(core_io, "os", disk)
    with pytest.raises(OSError, match="No space left on device") as caught:
        graphs["both"].write(path)
    assert caught.value.errno == errno.ENOSPC
    assert len(disk.failed) == 1 and disk.written == len(before) // 2  # half a file was written, then the disk
    monkeypatch.undo()
    assert files_in(tmp_path) == {path.name: before}  # the old file, byte for byte, and nothing else
    assert read_graph(path) == graphs["positive"]


@pytest.mark.parametrize(
    ("suffix", "owner", "name"), [(".graphml", nx, "write_graphml"), (".gexf", readwrite.GEXFWriter, "write")]
)
def test_serializer_failing_mid_write_keeps_the_old_file(graphs, suffix, owner, name, tmp_path, monkeypatch):
    path = tmp_path / f"g{suffix}"
    graphs["positive"].write(path)
    before = path.read_bytes()

    def half_written(_: object, stream) -> None:  # write_graphml(g, stream), GEXFWriter.write(self, stream)
        stream.write(before[: len(before) // 2])
        raise RuntimeError("serializer crashed")

    monkeypatch.setattr(owner, name, half_written)
    with pytest.raises(RuntimeError, match="serializer crashed"):
        graphs["both"].write(path)
    assert files_in(tmp_path) == {path.name: before}
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

QUADRATIC_BLOWUP = """<?xml version="1.0"?>
<!DOCTYPE graphml [<!ENTITY a "{long}">]>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
 <key id="d0" for="graph" attr.name="model" attr.type="string"/>
 <graph edgedefault="directed"><data key="d0">{references}</data></graph>
</graphml>
""".format(long="x" * 50_000, references="&a;" * 50_000)  # 250 kB that would expand to 2.5 GB

EXTERNAL_HTTP_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE graphml [<!ENTITY remote SYSTEM "http://example.invalid/secret">]>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
 <key id="d0" for="graph" attr.name="model" attr.type="string"/>
 <graph edgedefault="directed"><data key="d0">&remote;</data></graph>
</graphml>
"""

EXTERNAL_PARAMETER_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE graphml [<!ENTITY % remote SYSTEM "http://example.invalid/evil.dtd"> %remote;]>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph edgedefault="directed"/></graphml>
"""

ATTACKS = {
    "billion laughs": BILLION_LAUGHS,
    "quadratic blow-up": QUADRATIC_BLOWUP,
    "external entity (file://)": EXTERNAL_ENTITY,
    "external entity (http://)": EXTERNAL_HTTP_ENTITY,
    "external parameter entity": EXTERNAL_PARAMETER_ENTITY,
    "external DTD": EXTERNAL_DTD,
}


@pytest.mark.parametrize("suffix", [".graphml", ".gexf"])
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_hostile_xml_is_refused(attack, suffix, tmp_path, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    path = tmp_path / f"hostile{suffix}"
    path.write_text(ATTACKS[attack].replace("{path}", str(secret)))

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the reader opened a URL")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"Refused to read .*DTDForbidden.*billion laughs") as caught:
        read_graph(path)
    assert time.perf_counter() - start < 1.0  # refused, not expanded
    assert "TOP-SECRET" not in str(caught.value)


@pytest.mark.parametrize("suffix", [".graphml", ".gexf"])
def test_deeply_nested_xml_is_refused(suffix, tmp_path):
    root = {".graphml": "graphml", ".gexf": "gexf"}[suffix]
    path = tmp_path / f"deep{suffix}"
    path.write_text(f"<{root}>" + "<a>" * 100_000 + "</a>" * 100_000 + f"</{root}>")
    with pytest.raises(ValueError, match=r"Refused to read .*its XML elements nest more than 32 deep"):
        read_graph(path)


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
    (tmp_path / "plain.dot").write_text('digraph g { "a"; "b"; "a" -> "b" [weight=2] }')
    with pytest.raises(ValueError, match=r"lacks the graph attribute\(s\) 'levels', 'target'"):
        read_graph(tmp_path / "plain.dot")


# ------------------------------------------------------------------------------------------ size limit


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_file_larger_than_max_bytes_is_refused_before_it_is_parsed(graphs, suffix, tmp_path, monkeypatch):
    needs_pydot(suffix)
    path = tmp_path / f"g{suffix}"
    graphs["both"].write(path)
    size = path.stat().st_size
    assert read_graph(path, max_bytes=size) == graphs["both"]
    assert getattr(readwrite, f"read_{suffix[1:]}")(path, max_bytes=None) == graphs["both"]

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed a file larger than max_bytes")

    for module, name in [(json, "loads"), (readwrite.defusedxml.ElementTree, "fromstring")]:
        monkeypatch.setattr(module, name, no_parsing)
    message = rf"Refused to read .*g\{suffix}: it holds {size - 0:,} bytes, more than max_bytes={size - 1:,}\. .*"
    message += r"If you trust it, pass a larger max_bytes, or max_bytes=None for no limit\."
    with pytest.raises(ValueError, match=message):
        read_graph(path, max_bytes=size - 1)


def test_the_default_limit_is_max_bytes(tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as stream:  # a sparse file: no disk used
        stream.truncate(readwrite.MAX_BYTES + 1)
    with pytest.raises(ValueError, match=r"it holds 104,857,601 bytes, more than max_bytes=104,857,600"):
        read_graph(path)
    assert readwrite.MAX_BYTES == 100 * 2**20


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_file_without_a_size_is_read_no_further_than_max_bytes(tmp_path):
    path = tmp_path / "endless.json"
    path.symlink_to("/dev/zero")  # its size says 0; reading it never ends
    with pytest.raises(ValueError, match=r"it holds more, more than max_bytes=1,000\."):
        read_graph(path, max_bytes=1000)


@pytest.mark.parametrize(
    ("max_bytes", "error", "message"),
    [
        (0, ValueError, r"The 'max_bytes' parameter of read_graph must be an int in the range \[1, inf\)\. Got 0"),
        (1.5e6, TypeError, r"The 'max_bytes' parameter of read_graph must be an int .* Got 1500000\.0"),
        ("1MB", TypeError, r"The 'max_bytes' parameter of read_graph must be an int .* Got '1MB'"),
    ],
)
def test_max_bytes_is_checked(graphs, max_bytes, error, message, tmp_path):
    graphs["both"].write(tmp_path / "g.json")
    with pytest.raises(error, match=message):
        read_graph(tmp_path / "g.json", max_bytes=max_bytes)
    with pytest.raises(error, match=message.replace("read_graph", "read_json")):
        readwrite.read_json(tmp_path / "g.json", max_bytes=max_bytes)


# --------------------------------------------------------------------------- the schema, in every format


def small_graph() -> nx.DiGraph:
    """softmax:0 -> fc1:3 -> input:2 and softmax:0 -> fc1:5, as the schema has it."""
    g = nx.DiGraph(levels=["input", "fc1", "softmax"], target=0, n_inputs=4)
    for key, depth in [("softmax:0", 0), ("fc1:3", 1), ("fc1:5", 1), ("input:2", 2)]:
        level, index = key.split(":")
        g.add_node(key, level=level, index=int(index), depth=depth)
    edges = [("softmax:0", "fc1:3", 4, 0.5), ("softmax:0", "fc1:5", 2, -0.25), ("fc1:3", "input:2", 1, 2.0)]
    for u, v, count, relevance in edges:
        g.add_edge(u, v, count=count, frequency=count / 4, relevance=relevance, sign=1 if relevance >= 0 else -1)
    return g


def write_unchecked(g: nx.DiGraph, path) -> None:
    """Write ``g`` with stepwise's writer for the suffix, but without the schema check: a file as another tool, or
    someone with bad intent, could write it."""

    class Unchecked:
        def to_networkx(self) -> nx.DiGraph:
            return g.copy()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(readwrite, "_check_graph", lambda graph, owner: graph)
        write_graph(Unchecked(), path)


def edge(g: nx.DiGraph, u: str = "softmax:0", v: str = "fc1:3") -> dict:
    return g.edges[u, v]


# case: (how the graph is spoiled, what the message says)
SEMANTIC = {
    "a missing graph attribute": (lambda g: g.graph.pop("levels"), r"lacks the graph attribute\(s\) 'levels'"),
    "a graph attribute of the wrong type": (
        lambda g: g.graph.update(n_inputs=4.0),
        r"The graph attribute 'n_inputs' is 4\.0 \(float\): it must be an int",
    ),
    "a target on no level": (lambda g: g.graph.update(target=[["fc9", 1]]), r"'target' names level 'fc9'"),
    "a missing node attribute": (
        lambda g: g.nodes["fc1:3"].pop("level"),
        r"1 of 4 nodes lack the node attribute\(s\) 'level' .*\(first: 'fc1:3', which lacks 'level'\)",
    ),
    "a missing edge attribute": (
        lambda g: edge(g).pop("count"),
        r"1 of 3 edges lack the edge attribute\(s\) 'count' .*\(first: \('softmax:0', 'fc1:3'\)",
    ),
    "a count that is text": (
        lambda g: edge(g).update(count="4"),
        r"Edge 'softmax:0' -> 'fc1:3' has count='4' \(str\); count must be an int",
    ),
    "a count that is a float": (lambda g: edge(g).update(count=4.0), r"has count=4\.0 \(float\); count must be an int"),
    "a count of 0": (lambda g: edge(g).update(count=0), r"Edge 'softmax:0' -> 'fc1:3' has count=0; count is the"),
    "a frequency that is text": (
        lambda g: edge(g).update(frequency="1.0"),
        r"Edge 'softmax:0' -> 'fc1:3' has frequency='1\.0' \(str\); frequency must be a finite float",
    ),
    "a frequency above 1": (lambda g: edge(g).update(frequency=4.0), r"has frequency=4\.0; .* in \(0, 1\]"),
    "a relevance that is not finite": (lambda g: edge(g).update(relevance=float("inf")), r"relevance=inf \(float\)"),
    "a sign against the relevance": (lambda g: edge(g).update(sign=-1), r"has sign=-1 but relevance=0\.5"),
    "a level that is a number": (
        lambda g: g.nodes["fc1:3"].update(level=3),
        r"Node 'fc1:3' has level=3 \(int\); level must be a str",
    ),
    "an index that is text": (
        lambda g: g.nodes["fc1:3"].update(index="3"),
        r"Node 'fc1:3' has index='3' \(str\); index must be an int",
    ),
    "a key that is not level:index": (lambda g: g.nodes["fc1:3"].update(index=4), r"its key must be 'fc1:4'"),
    "a depth that is not the level's": (
        lambda g: g.nodes["fc1:3"].update(depth=2),
        r"Node 'fc1:3' has depth 2, but level 'fc1' lies at depth 1",
    ),
    "a level that is not among the levels": (
        lambda g: g.nodes["fc1:3"].update(level="fc9"),
        r"Node 'fc1:3' has level 'fc9', which is not in the graph's levels",
    ),
    "a cycle": (
        lambda g: g.add_edge("input:2", "softmax:0", **edge(g)),
        r"The graph has a cycle, 'softmax:0' -> 'fc1:3' -> 'input:2' -> 'softmax:0'",
    ),
    "an edge that runs upwards": (
        lambda g: g.add_edge("input:2", "fc1:5", **edge(g)),
        r"Edge 'input:2' -> 'fc1:5' runs from depth 2 to depth 1",
    ),
}


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("case", list(SEMANTIC))
def test_every_reader_applies_the_schema(case, suffix, tmp_path):
    needs_pydot(suffix)
    if case == "a level that is a number" and suffix == ".dot":
        pytest.skip("DOT stores a level as text, always")
    spoil, message = SEMANTIC[case]
    g = small_graph()
    DependencyGraph(g)  # the graph is good before it is spoiled
    spoil(g)
    path = tmp_path / f"bad{suffix}"
    write_unchecked(g, path)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))} is not a stepwise dependency graph: .*{message}"):
        read_graph(path)


def edit_text(path, suffix: str, *, drop_node: str | None = None, repeat: str | None = None) -> None:
    """Remove a node's declaration, or repeat the declaration of a node (``"fc1:3"``) or of an edge
    (``"softmax:0 -> fc1:3"``), in a file written by stepwise."""
    text = path.read_text()
    if suffix == ".json":
        data = json.loads(text)
        if drop_node:
            data["nodes"] = [node for node in data["nodes"] if node["id"] != drop_node]
        elif " -> " in repeat:
            u, v = repeat.split(" -> ")
            data["edges"] += [e for e in data["edges"] if (e["source"], e["target"]) == (u, v)]
        else:
            data["nodes"] += [node for node in data["nodes"] if node["id"] == repeat]
        path.write_text(json.dumps(data))
        return
    if suffix == ".dot":
        u, _, v = (drop_node or repeat).partition(" -> ")
        start = f'"{u}" -> "{v}" [' if v else f'"{u}" ['
        lines = text.splitlines()
        found = [line for line in lines if line.startswith(start)]
        kept = [line for line in lines if line not in found] if drop_node else lines[:2] + found + lines[2:]
        path.write_text("\n".join(kept))
        return
    if drop_node or " -> " not in repeat:
        element = re.search(rf'<node id="{re.escape(drop_node or repeat)}".*?</node>\n', text, flags=re.DOTALL).group()
    else:
        u, v = repeat.split(" -> ")
        element = re.search(rf'<edge source="{u}" target="{v}".*?</edge>\n', text, flags=re.DOTALL).group()
    path.write_text(text.replace(element, "" if drop_node else element * 2))


# case: (keyword of edit_text, what the message says)
STRUCTURE = {
    "an edge to an undeclared node": (
        {"drop_node": "input:2"},
        r"the edge 'fc1:3' -> 'input:2' names the node 'input:2', which the file does not declare",
    ),
    "a node declared twice": ({"repeat": "fc1:3"}, r"it declares the node 'fc1:3' twice"),
    "an edge given twice": ({"repeat": "softmax:0 -> fc1:3"}, r"it has two edges 'softmax:0' -> 'fc1:3'"),
}


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("case", list(STRUCTURE))
def test_every_reader_checks_the_nodes_of_the_edges(case, suffix, tmp_path):
    needs_pydot(suffix)
    edit, message = STRUCTURE[case]
    path = tmp_path / f"bad{suffix}"
    DependencyGraph(small_graph()).write(path)
    edit_text(path, suffix, **edit)
    with pytest.raises(ValueError, match=rf"Cannot read {re.escape(str(path))}: {message}"):
        read_graph(path)


def node_link(**changes: object) -> dict:
    """The node-link data of the small graph, with some entries replaced."""
    data = nx.node_link_data(small_graph(), edges="edges")
    data["graph"]["levels"] = readwrite.MARKER + json.dumps(data["graph"]["levels"])
    return {**data, **changes}


# case: (the file's text, what the message says)
JSON_CASES = {
    "nodes that are not a list": (json.dumps(node_link(nodes={"a": 1})), r"its 'nodes' is \{'a': 1\}, not a list"),
    "a node without an id": (
        json.dumps(node_link(nodes=[{"level": "fc1"}])),
        r"nodes\[0\] is \{'level': 'fc1'\}; each entry of 'nodes' is an object whose 'id' is the node's key",
    ),
    "a node whose id is a number": (json.dumps(node_link(nodes=[{"id": 7}])), r"nodes\[0\] is \{'id': 7\}"),
    "a node that is a list": (json.dumps(node_link(nodes=[[1, 2]])), r"nodes\[0\] is \[1, 2\]"),
    "an edge without a target": (
        json.dumps(node_link(edges=[{"source": "softmax:0"}])),
        r"edges\[0\] is \{'source': 'softmax:0'\}; each entry of 'edges' is an object whose 'source' and 'target'",
    ),
    "graph attributes that are a list": (json.dumps(node_link(graph=[1])), r"its 'graph' is \[1\], not an object"),
    "marked text that is not JSON": (
        json.dumps(node_link()).replace('"n_inputs": 4', f'"n_inputs": "{readwrite.MARKER}[1, "'),
        rf"Cannot read .*: attribute 'n_inputs' of the graph: text marked '{readwrite.MARKER}' but not JSON",
    ),
    "an undirected graph": (json.dumps(node_link(directed=False)), r"its node-link JSON graph is undirected"),
    "a multigraph": (json.dumps(node_link(multigraph=True)), r"its node-link JSON graph has parallel edges"),
    "a number of 5000 digits": ('{"nodes": [], "edges": [], "x": ' + "9" * 5000 + "}", r"it is not valid JSON"),
    "arrays nested 100000 deep": ("[" * 100_000 + "]" * 100_000, r"Refused to read .*: its JSON nests arrays"),
    "a node in the edges only": (
        json.dumps(node_link(nodes=node_link()["nodes"][:3])),
        r"the edge 'fc1:3' -> 'input:2' names the node 'input:2', which the file does not declare",
    ),
}


@pytest.mark.parametrize("case", list(JSON_CASES))
def test_json_structure_is_checked_before_a_graph_is_built(case, tmp_path):
    text, message = JSON_CASES[case]
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_graph(path)
