"""Files: lossless round trips on real traversals, atomic writes, other readers, files written before kinds (the
safety checks and the schema in every format: test_readwrite_safety.py)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import networkx as nx
import pytest
from tests.faults import FullDisk, files_in
from networkx.readwrite.gexf import GEXFWriter

import stepwise
from tests.helpers import trained_mlp
from stepwise.core import io as core_io
from stepwise import DependencyGraph, read_graph, write_graph
from stepwise.graphs import readwrite

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pydot")  # pydot's use of old pyparsing names
FORMATS = [".graphml", ".gexf", ".json", ".dot"]
N_CLASSES = 5
DATA = Path(__file__).parent.parent / "data"


def real_graphs() -> dict[str, DependencyGraph]:
    """Graphs of real traversals of a trained MLP: positive, both signs, explicit neurons, one that stops."""
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


@pytest.fixture(scope="module")
def graphs() -> dict[str, DependencyGraph]:
    return real_graphs()


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
    with pytest.raises(
        TypeError, match=r"write_json needs a stepwise graph \(a LayeredGraph such as a DependencyGraph\); got DiGraph"
    ):
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
    ("suffix", "owner", "name"), [(".graphml", nx, "write_graphml"), (".gexf", GEXFWriter, "write")]
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


# ----------------------------------------------------------------------------------- files before kinds

# tests/data/class_3.{json,graphml}: the demo's graph of class 3 as written before graphs had a kind.


@pytest.mark.parametrize("name", ["class_3.json", "class_3.graphml"])
def test_a_file_written_before_kinds_reads_as_a_dependency_graph(name, tmp_path):
    path = DATA / name
    text = path.read_text()
    assert "kind" not in text  # written before graphs had a kind
    if name.endswith(".json"):
        raw = nx.node_link_graph(json.loads(text), edges="edges" if '"edges"' in text else "links")
    else:
        raw = nx.read_graphml(path)  # networkx's own reader, not stepwise's
    graph = read_graph(path)
    assert type(graph) is DependencyGraph and graph.kind == "dependency" and graph.attrs["kind"] == "dependency"
    assert set(graph.nodes) == set(raw.nodes) and len(graph) == 15
    assert {n: d for n, d in graph.nodes(data=True)} == {n: d for n, d in raw.nodes(data=True)}
    assert {(u, v): d for u, v, d in graph.edges(data=True)} == {(u, v): d for u, v, d in raw.edges(data=True)}
    assert graph.target == 3 and graph.levels == ["features.1", "features.3", "features.6", "classifier.1", "softmax"]
    assert graph.stopped_at is None and graph.stop_reason is None
    write_graph(graph, tmp_path / name)  # written again, the file has the kind
    assert '"kind"' in (tmp_path / name).read_text() or ">dependency<" in (tmp_path / name).read_text()
    assert read_graph(tmp_path / name) == graph


def test_the_two_old_files_hold_the_same_graph():
    assert read_graph(DATA / "class_3.json") == read_graph(DATA / "class_3.graphml")


@pytest.mark.parametrize("suffix", FORMATS)
def test_every_file_records_the_kind(graphs, suffix, tmp_path):
    needs_pydot(suffix)
    path = tmp_path / f"graph{suffix}"
    write_graph(graphs["positive"], path)
    text = path.read_text()
    assert {".graphml": ">dependency</data>", ".gexf": '"kind": "dependency"', ".json": '"kind": "dependency"'}.get(
        suffix, 'kind="dependency";'
    ) in text
    g = graphs["positive"].to_networkx()
    del g.graph["kind"]
    assert DependencyGraph(g) == graphs["positive"]  # a graph without kind gets it


def test_the_stop_is_a_property(graphs):
    stopped = graphs["stopped"]
    assert stopped.stopped_at == stopped.attrs["stopped_at"] and " <- " in stopped.stopped_at
    assert stopped.stop_reason == stopped.attrs["stop_reason"] and "Tukey outlier" in stopped.stop_reason
    assert graphs["both"].stopped_at is None and graphs["both"].stop_reason is None
