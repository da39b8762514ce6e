"""Files from others: hostile XML, truncated and foreign files, the size limit, and the schema checked by every
reader; the messages name the problem and where."""

from __future__ import annotations

import json
import os
import re
import time

import defusedxml.ElementTree
import networkx as nx
import pytest

from stepwise import DependencyGraph, read_graph, write_graph
from stepwise.graphs import readwrite
from tests.graphs.test_readwrite import FORMATS, needs_pydot, real_graphs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pydot")  # pydot's use of old pyparsing names


@pytest.fixture(scope="module")
def graphs() -> dict[str, DependencyGraph]:
    return real_graphs()


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

    for module, name in [(json, "loads"), (defusedxml.ElementTree, "fromstring")]:
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
        for module in (readwrite.graphml, readwrite.gexf, readwrite.json_graph, readwrite.dot):
            patch.setattr(module, "check_graph", lambda graph, owner: graph)
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
