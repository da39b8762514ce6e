"""Reading and writing dependency graphs: GraphML, GEXF, networkx node-link JSON and DOT.

One reader and one writer per format, in the spirit of ``networkx.readwrite``; :func:`read_graph` and
:func:`write_graph` pick the format from the file suffix.

**Lossless.** Writing then reading gives an equal graph — nodes, edges, every attribute and its type — for
GraphML, GEXF, JSON and DOT. Values a format cannot store natively (lists such as the graph attributes ``levels``
and ``target``, ``None``, dicts) are written as text that starts with the marker ``"stepwise-json:"`` followed by
their JSON, and decoded back when read; a text value that itself starts with the marker is encoded the same way.
GEXF has no graph attributes, so they are kept, marked the same way, as JSON in the file's
``<meta><description>``; and as GEXF declares one type per node (or edge) attribute, an attribute whose values
mix types across nodes (or edges) is JSON-encoded on every one. DOT has no types: numbers are written as
numerals and read back as ``int`` or ``float``, and a text value that reads like a number is JSON-encoded
(except the node attribute ``level``, always text). Text with a character XML cannot hold as it is (control
characters but tab and newline, a carriage return, which XML reads back as a newline) is JSON-encoded in GraphML
and GEXF, and so is text with a control character in DOT; node keys and attribute names are written as they are,
so GraphML and GEXF refuse one with such a character (JSON stores any).

**Atomic.** A writer writes a temporary file in the destination folder, flushes it to disk and renames it over
the destination: a failed write leaves any previous file untouched and no temporary file behind.

**Safe.** GraphML and GEXF are parsed with ``defusedxml``: a file with a DTD, entity declarations (the "billion
laughs" and quadratic blow-up expansions) or external entities (``file://``, ``http://``) is refused with a
``ValueError``, and so is XML or JSON nested deeper than any graph file. Every reader takes ``max_bytes``, the
largest file it reads (default :data:`MAX_BYTES`, 100 MiB), checked before parsing: a file sent by someone else
cannot exhaust memory or time (parsing XML takes about twenty times the file's size in memory). A traversal's
graph takes far less, a few hundred bytes per edge; pass ``max_bytes=None`` to read a larger file you trust.

**Checked.** Every reader applies the same check before it returns: each node is declared once, each edge once,
and every edge names declared nodes; then the graph must follow the schema of :mod:`stepwise.graph` (attributes,
their types, keys, depths, no cycle). The ``ValueError`` names the problem and where (file, node, edge,
attribute). Reading DOT needs ``pydot`` (an optional dependency); writing it does not.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import reprlib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

import defusedxml
import defusedxml.ElementTree
import networkx as nx
from networkx.readwrite.gexf import GEXFWriter

from stepwise.core.io import atomic_write
from stepwise.core.validation import check_int

from .dependency import DependencyGraph

__all__ = [
    "FORMATS",
    "MARKER",
    "MAX_BYTES",
    "read_dot",
    "read_gexf",
    "read_graph",
    "read_graphml",
    "read_json",
    "write_dot",
    "write_gexf",
    "write_graph",
    "write_graphml",
    "write_json",
]

#: The file suffixes understood by :func:`read_graph` and :func:`write_graph`.
FORMATS = (".graphml", ".gexf", ".json", ".dot")
#: Prefix of a text value that holds a JSON-encoded value.
MARKER = "stepwise-json:"
#: The default ``max_bytes`` of the readers: the largest file they read, 100 MiB.
MAX_BYTES = 100 * 2**20
_XML_DEPTH = 32  # elements nest at most 6 deep in GEXF, 4 in GraphML

# Attribute names a format uses for its own fields: writing them as data would not read back as written.
_RESERVED: dict[str, dict[str, set[str]]] = {
    "GraphML": {"graph": {"node_default", "edge_default"}, "node": set(), "edge": set()},
    "GEXF": {
        "graph": set(),
        "node": {"id", "label", "pid", "parents", "start", "end", "viz", "slices", "spells"},
        "edge": {"id", "label", "weight", "type", "start", "end", "viz", "slices", "spells", "networkx_key"},
    },
    "JSON": {"graph": set(), "node": {"id"}, "edge": {"source", "target", "key"}},
    "DOT": {"graph": set(), "node": set(), "edge": set()},
}
_DOT_INT = re.compile(r"-?[0-9]+\Z")
_DOT_FLOAT = re.compile(r"-?(?:[0-9]+\.[0-9]*(?:e[-+]?[0-9]+)?|[0-9]+e[-+]?[0-9]+|inf|nan)\Z")
_DOT_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\Z")
_DOT_KEYWORDS = {"node", "edge", "graph", "digraph", "subgraph", "strict"}
_DOT_TEXT = frozenset({"level"})  # node attributes always str: a level named "8" is written as it is
# A character XML 1.0 cannot hold, or a carriage return, which XML parsers read back as a newline.
_NOT_XML = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# ------------------------------------------------------------------------------------------------ helpers


def _as_path(path: object, action: str) -> Path:
    if not isinstance(path, (str, PathLike)):
        raise TypeError(f"Cannot {action} a graph: path must be a str or os.PathLike; got {type(path).__name__}.")
    return Path(path)


def _check_graph(graph: object, owner: str) -> DependencyGraph:
    if not isinstance(graph, DependencyGraph):
        raise TypeError(
            f"{owner} needs a DependencyGraph; got {type(graph).__name__}. Wrap a networkx.DiGraph with "
            "stepwise.DependencyGraph.from_networkx(g)."
        )
    return graph


def _attribute_dicts(g: nx.DiGraph) -> Iterator[tuple[str, object, dict]]:
    """Every attribute dictionary of ``g``: ('graph', None, attrs), ('node', key, attrs), ('edge', (u, v), attrs)."""
    yield "graph", None, g.graph
    for node, data in g.nodes(data=True):
        yield "node", node, data
    for u, v, data in g.edges(data=True):
        yield "edge", (u, v), data


def _check_reserved(g: nx.DiGraph, fmt: str, path: Path) -> None:
    for kind, item, data in _attribute_dicts(g):
        clash = sorted(set(data) & _RESERVED[fmt][kind])
        if clash:
            where = "the graph" if item is None else f"{kind} {item!r}"
            raise ValueError(
                f"Cannot write {path}: {where} has the attribute(s) {clash}, which {fmt} uses for its own fields, so "
                "they would not read back as written. Rename them, or write GraphML, which keeps any name."
            )


def _check_xml_names(g: nx.DiGraph, fmt: str, path: Path) -> None:
    """Node keys and attribute names are written as they are: refuse a character XML cannot hold."""

    def check(name: object, what: str) -> None:
        found = _NOT_XML.search(str(name))
        if found:
            raise ValueError(
                f"Cannot write {path}: {what} holds the character {found.group()!r}, which {fmt} (XML) cannot store "
                "as it is. Rename it, or write JSON, which stores any text."
            )

    for node in g:
        check(node, f"the node key {node!r}")
    for kind, item, data in _attribute_dicts(g):
        for name in data:
            check(name, f"the attribute name {name!r} of " + ("the graph" if item is None else f"{kind} {item!r}"))


def _json_text(value: object, where: str) -> str:
    try:
        return MARKER + json.dumps(value)
    except TypeError as error:
        raise TypeError(
            f"The value of {where} cannot be written ({error}): store numbers, text, booleans, None, or lists "
            "and dicts of them."
        ) from error


def _encoded(
    g: nx.DiGraph, native: tuple[type, ...], *, one_type_per_name: bool = False, xml: bool = False
) -> nx.DiGraph:
    """A copy of ``g`` whose values of other types than ``native`` (and marked text) are JSON text.

    With ``one_type_per_name`` (GEXF declares one type per node or edge attribute), every value of an attribute
    whose values would be stored with different types on different nodes (or edges) is JSON text too. With
    ``xml``, so is text with a character XML cannot hold as it is (JSON writes it as an ASCII escape).
    """
    g = g.copy()

    def plain(value: object) -> bool:
        if isinstance(value, str):
            return str in native and not _marked(value) and not (xml and _NOT_XML.search(value))
        return isinstance(value, native)

    stored: dict[tuple[str, str], set[type]] = {}
    for kind, _, data in _attribute_dicts(g):
        for name, value in data.items():
            stored.setdefault((kind, name), set()).add(type(value) if plain(value) else str)
    mixed = {key for key, types in stored.items() if one_type_per_name and len(types) > 1}
    for kind, item, data in _attribute_dicts(g):
        for name, value in data.items():
            if (kind, name) in mixed or not plain(value):
                where = f"attribute {name!r} of " + ("the graph" if item is None else f"{kind} {item!r}")
                data[name] = _json_text(value, where)
    return g


def _marked(value: object) -> bool:
    return isinstance(value, str) and value.startswith(MARKER)


def _decoded_value(value: str, where: str) -> object:
    """The value a marked text holds; ``where`` names the value (and the file) in the error."""
    try:
        return json.loads(value[len(MARKER) :])
    except (ValueError, RecursionError) as error:
        raise ValueError(
            f"Cannot read {where}: text marked {MARKER!r} but not JSON after the marker ({error}); the file was "
            "damaged or not written by stepwise."
        ) from error


def _decoded(g: nx.DiGraph, path: Path) -> nx.DiGraph:
    for kind, item, data in _attribute_dicts(g):
        for name, value in data.items():
            if _marked(value):
                owner = "the graph" if item is None else f"{kind} {item!r}"
                data[name] = _decoded_value(value, f"{path}: attribute {name!r} of {owner}")
    return g


def _check_max_bytes(max_bytes: int | None, owner: str) -> None:
    if max_bytes is not None:
        check_int(max_bytes, "max_bytes", owner, low=1)


def _read_bytes(path: Path, max_bytes: int | None, owner: str) -> bytes:
    """The content of ``path``, refused without being read when it is larger than ``max_bytes``."""
    _check_max_bytes(max_bytes, owner)
    with open(path, "rb") as stream:
        if max_bytes is None:
            return stream.read()
        size = os.fstat(stream.fileno()).st_size
        data = b"" if size > max_bytes else stream.read(max_bytes + 1)  # a pipe or a growing file has no size
    if size > max_bytes or len(data) > max_bytes:
        held = f"{size:,} bytes" if size > max_bytes else "more"
        raise ValueError(
            f"Refused to read {path}: it holds {held}, more than max_bytes={max_bytes:,}. A dependency graph takes a "
            "few hundred bytes per edge, and a file from someone else may be built to exhaust memory. If you trust "
            "it, pass a larger max_bytes, or max_bytes=None for no limit."
        )
    return data


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _too_deep(root: ET.Element, limit: int) -> bool:
    """Whether elements nest more than ``limit`` deep under ``root`` (counted without recursion)."""
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in element)
    return False


def _safe_xml(path: Path, fmt: str, max_bytes: int | None, owner: str) -> ET.Element:
    """Parse an XML file with defusedxml: no DTD, no entities, no external references, no deep nesting."""
    data = _read_bytes(path, max_bytes, owner)
    try:
        root = defusedxml.ElementTree.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as error:
        raise ValueError(
            f"Refused to read {path}: {type(error).__name__} ({error}). The file declares a DTD, entities or "
            f"external references, which can expand without bound ('billion laughs') or read other files; {fmt} "
            "files never need them. If you trust the file, remove its <!DOCTYPE ...> block."
        ) from error
    except ET.ParseError as error:
        raise ValueError(
            f"Cannot read {path}: it is not well-formed XML ({error}); the file may be truncated or corrupted. "
            "Write it again."
        ) from error
    if _too_deep(root, _XML_DEPTH):
        raise ValueError(
            f"Refused to read {path}: its XML elements nest more than {_XML_DEPTH} deep; {fmt} files nest a few "
            "levels, so the file is damaged or built to exhaust the reader."
        )
    return root


def _xml_items(root: ET.Element) -> tuple[list[object], list[tuple[object, object]]]:
    """The node ids and the (source, target) pairs of the edges that a GraphML or GEXF document declares."""
    elements = list(root.iter())
    nodes = [element.get("id") for element in elements if _local(element.tag) == "node"]
    edges = [(e.get("source"), e.get("target")) for e in elements if _local(e.tag) == "edge"]
    return nodes, edges


def _check_items(path: Path, nodes: list[object], edges: list[tuple[object, object]]) -> None:
    """Each node declared once, each edge given once, and every edge between declared nodes."""
    declared: set[object] = set()
    for node in nodes:
        if node in declared:
            raise ValueError(
                f"Cannot read {path}: it declares the node {node!r} twice; a dependency graph declares each neuron "
                "once, with its attributes."
            )
        declared.add(node)
    given: set[tuple[object, object]] = set()
    for u, v in edges:
        for end in (u, v):
            if end not in declared:
                raise ValueError(
                    f"Cannot read {path}: the edge {u!r} -> {v!r} names the node {end!r}, which the file does not "
                    "declare; every neuron on an edge is declared with its attributes (level, index, depth)."
                )
        if (u, v) in given:
            raise ValueError(
                f"Cannot read {path}: it has two edges {u!r} -> {v!r}; a dependency graph has at most one edge from "
                "a neuron to another."
            )
        given.add((u, v))


def _validated(
    path: Path, fmt: str, g: nx.Graph, nodes: list[object], edges: list[tuple[object, object]]
) -> DependencyGraph:
    """The one check of every reader: the DependencyGraph read from ``path``, or a ValueError saying why the file
    is not one. ``nodes`` and ``edges`` are the node ids and (source, target) pairs as the file declares them."""
    _check_items(path, nodes, edges)
    if not g.is_directed():
        raise ValueError(f"Cannot read {path}: its {fmt} graph is undirected; a stepwise dependency graph is directed.")
    if g.is_multigraph():
        raise ValueError(
            f"Cannot read {path}: its {fmt} graph has parallel edges; a stepwise dependency graph has at most one "
            "edge from a neuron to another."
        )
    try:
        return DependencyGraph(g)
    except ValueError as error:
        raise ValueError(f"{path} is not a stepwise dependency graph: {error}") from error


def _suffix(path: Path, action: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"Cannot {action} {path}: unknown format {suffix or '(no suffix)'!r}. Use one of "
            f"{', '.join(FORMATS)} (.json is networkx node-link)."
        )
    return suffix


# ----------------------------------------------------------------------------------------------- GraphML


def write_graphml(graph: DependencyGraph, path: str | PathLike) -> None:
    """Write ``graph`` as GraphML, atomically.

    Parameters
    ----------
    graph : DependencyGraph
    path : str or path-like

    Raises
    ------
    TypeError
        If ``graph`` is not a DependencyGraph, or an attribute value cannot be stored.
    ValueError
        If a node key or an attribute name holds a character XML cannot store (a control character).
    FileNotFoundError
        If the destination folder does not exist.
    """
    path = _as_path(path, "write")
    g = _check_graph(graph, "write_graphml").to_networkx()
    _check_reserved(g, "GraphML", path)
    _check_xml_names(g, "GraphML", path)
    g = _encoded(g, (str, bool, int, float), xml=True)
    atomic_write(path, lambda stream: nx.write_graphml(g, stream))


def read_graphml(path: str | PathLike, *, max_bytes: int | None = MAX_BYTES) -> DependencyGraph:
    """Read a GraphML file written by :func:`write_graphml` (or by another tool, if it keeps the schema).

    Parameters
    ----------
    path : str or path-like
    max_bytes : int or None, default=MAX_BYTES
        The largest file read (100 MiB); a larger one is refused before it is parsed. ``None``: no limit, for
        files you trust.

    Returns
    -------
    DependencyGraph

    Raises
    ------
    ValueError
        If the file is larger than ``max_bytes``, declares a DTD or entities, is not well-formed, is not GraphML,
        or is not a stepwise dependency graph (the message names the problem and where).
    TypeError
        If ``max_bytes`` is neither an int nor None (a ValueError when it is below 1).
    """
    path = _as_path(path, "read")
    root = _safe_xml(path, "GraphML", max_bytes, "read_graphml")
    try:
        g = nx.parse_graphml(ET.tostring(root, encoding="unicode"), node_type=str)
    except (nx.NetworkXError, KeyError, ValueError, TypeError) as error:
        raise ValueError(f"Cannot read {path} as GraphML: {error}") from error
    for name in ("node_default", "edge_default"):  # the reader adds them; they are empty for our files
        if g.graph.get(name) == {}:
            del g.graph[name]
    return _validated(path, "GraphML", _decoded(g, path), *_xml_items(root))


# -------------------------------------------------------------------------------------------------- GEXF


def write_gexf(graph: DependencyGraph, path: str | PathLike) -> None:
    """Write ``graph`` as GEXF 1.2, atomically; the graph attributes go into ``<meta><description>``.

    Parameters
    ----------
    graph : DependencyGraph
    path : str or path-like

    Raises
    ------
    TypeError
        If ``graph`` is not a DependencyGraph, or an attribute value cannot be stored.
    ValueError
        If a node or edge attribute uses a name GEXF reserves (node ``label``, edge ``weight``, ...), or a node
        key or an attribute name holds a character XML cannot store (a control character).
    FileNotFoundError
        If the destination folder does not exist.
    """
    path = _as_path(path, "write")
    g = _check_graph(graph, "write_gexf").to_networkx()
    _check_reserved(g, "GEXF", path)
    _check_xml_names(g, "GEXF", path)
    attrs = _json_text(g.graph, "the graph attributes")
    g = _encoded(g, (str, bool, int, float), one_type_per_name=True, xml=True)
    g.graph.clear()  # GEXF has no graph attributes; a few names would change the writer's output

    def dump(stream: BinaryIO) -> None:
        writer = GEXFWriter(encoding="utf-8", prettyprint=True, version="1.2draft")
        writer.add_graph(g)
        meta = next(child for child in writer.xml if child.tag == "meta")
        meta.attrib.pop("lastmodifieddate", None)  # today's date: the same graph would give another file tomorrow
        ET.SubElement(meta, "description").text = attrs
        writer.write(stream)

    atomic_write(path, dump)


def read_gexf(path: str | PathLike, *, max_bytes: int | None = MAX_BYTES) -> DependencyGraph:
    """Read a GEXF file written by :func:`write_gexf`.

    Parameters
    ----------
    path : str or path-like
    max_bytes : int or None, default=MAX_BYTES
        The largest file read (100 MiB); a larger one is refused before it is parsed. ``None``: no limit, for
        files you trust.

    Returns
    -------
    DependencyGraph

    Raises
    ------
    ValueError
        If the file is larger than ``max_bytes``, declares a DTD or entities, is not well-formed, is not GEXF, or
        is not a stepwise dependency graph (the message names the problem and where; the graph attributes are
        expected in ``<meta><description>``).
    TypeError
        If ``max_bytes`` is neither an int nor None (a ValueError when it is below 1).
    """
    path = _as_path(path, "read")
    root = _safe_xml(path, "GEXF", max_bytes, "read_gexf")
    try:
        g = nx.read_gexf(io.BytesIO(ET.tostring(root)), node_type=None, relabel=False)
    except (nx.NetworkXError, KeyError, ValueError, TypeError) as error:
        raise ValueError(f"Cannot read {path} as GEXF: {error}") from error
    descriptions = [
        element.text or ""
        for meta in root
        if _local(meta.tag) == "meta"
        for element in meta
        if _local(element.tag) == "description"
    ]
    marked = [text for text in descriptions if text.startswith(MARKER)]
    attrs = _decoded_value(marked[0], f"{path}: <meta><description>") if marked else {}
    if not isinstance(attrs, dict):
        raise ValueError(f"Cannot read {path}: its <meta><description> holds a {type(attrs).__name__}, not attributes.")
    for _, data in g.nodes(data=True):
        data.pop("label", None)  # GEXF gives every node a label: the writer's is the key (a reserved name)
    for _, _, data in g.edges(data=True):
        data.pop("id", None)  # GEXF numbers the edges
    g.graph.clear()
    g = _decoded(g, path)
    g.graph.update(attrs)  # decoded already, as one JSON object
    return _validated(path, "GEXF", g, *_xml_items(root))


# -------------------------------------------------------------------------------------------------- JSON


def write_json(graph: DependencyGraph, path: str | PathLike) -> None:
    """Write ``graph`` as networkx node-link JSON (``nx.node_link_data(g, edges="edges")``), atomically.

    Parameters
    ----------
    graph : DependencyGraph
    path : str or path-like

    Raises
    ------
    TypeError
        If ``graph`` is not a DependencyGraph, or an attribute value cannot be stored.
    ValueError
        If a node attribute is named ``id`` or an edge attribute ``source``, ``target`` or ``key``.
    FileNotFoundError
        If the destination folder does not exist.
    """
    path = _as_path(path, "write")
    g = _check_graph(graph, "write_json").to_networkx()
    _check_reserved(g, "JSON", path)
    g = _encoded(g, (str, bool, int, float, list, dict, type(None)))
    data = nx.node_link_data(g, edges="edges")
    try:
        text = json.dumps(data, indent=1)
    except TypeError as error:
        raise TypeError(
            f"Cannot write {path}: {error}. Store numbers, text, booleans, None, lists or dicts."
        ) from error
    atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))


def _node_link_items(path: Path, data: dict, edges: str) -> tuple[list[object], list[tuple[object, object]]]:
    """The node ids and (source, target) pairs of node-link data, once its entries are known to be objects that
    name nodes by text."""
    if not isinstance(data.get("graph", {}), dict):
        raise ValueError(
            f"Cannot read {path}: its 'graph' is {reprlib.repr(data['graph'])}, not an object of attributes."
        )
    for name in ("nodes", edges):
        if not isinstance(data[name], list):
            raise ValueError(f"Cannot read {path}: its {name!r} is {reprlib.repr(data[name])}, not a list.")
    for i, item in enumerate(data["nodes"]):
        if not (isinstance(item, dict) and isinstance(item.get("id"), str)):
            raise ValueError(
                f"Cannot read {path}: nodes[{i}] is {reprlib.repr(item)}; each entry of 'nodes' is an object whose "
                "'id' is the node's key, text such as 'fc1:7'."
            )
    for i, item in enumerate(data[edges]):
        if not (isinstance(item, dict) and all(isinstance(item.get(end), str) for end in ("source", "target"))):
            raise ValueError(
                f"Cannot read {path}: {edges}[{i}] is {reprlib.repr(item)}; each entry of {edges!r} is an object "
                "whose 'source' and 'target' are node keys."
            )
    return [item["id"] for item in data["nodes"]], [(item["source"], item["target"]) for item in data[edges]]


def read_json(path: str | PathLike, *, max_bytes: int | None = MAX_BYTES) -> DependencyGraph:
    """Read a networkx node-link JSON file written by :func:`write_json`.

    Parameters
    ----------
    path : str or path-like
    max_bytes : int or None, default=MAX_BYTES
        The largest file read (100 MiB); a larger one is refused before it is parsed. ``None``: no limit, for
        files you trust.

    Returns
    -------
    DependencyGraph

    Raises
    ------
    ValueError
        If the file is larger than ``max_bytes``, not JSON (for example truncated), not node-link data, or not
        a stepwise dependency graph (the message names the problem and where).
    TypeError
        If ``max_bytes`` is neither an int nor None (a ValueError when it is below 1).
    """
    path = _as_path(path, "read")
    text = _read_bytes(path, max_bytes, "read_json")
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError(
            f"Refused to read {path}: its JSON nests arrays or objects too deeply for Python's parser; node-link "
            "files nest a few levels, so the file is damaged or built to exhaust the reader."
        ) from None
    except (ValueError, UnicodeDecodeError) as error:  # ValueError: a JSONDecodeError, or a number too long
        raise ValueError(
            f"Cannot read {path}: it is not valid JSON ({error}); the file may be truncated or damaged."
        ) from error
    if not isinstance(data, dict) or "nodes" not in data or not ({"edges", "links"} & set(data)):
        raise ValueError(
            f"Cannot read {path}: it is JSON but not networkx node-link data (an object with 'nodes' and 'edges')."
        )
    edges = "edges" if "edges" in data else "links"  # files from networkx < 3.4 say "links"
    nodes, pairs = _node_link_items(path, data, edges)
    try:
        g = nx.node_link_graph(data, directed=True, multigraph=False, edges=edges)
    except (nx.NetworkXError, KeyError, TypeError) as error:
        raise ValueError(f"Cannot read {path} as node-link data: missing or invalid entry {error}.") from error
    return _validated(path, "node-link JSON", _decoded(g, path), nodes, pairs)


# --------------------------------------------------------------------------------------------------- DOT


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_name(name: object) -> str:
    text = str(name)
    return text if _DOT_NAME.match(text) and text.lower() not in _DOT_KEYWORDS else _dot_quote(text)


def _dot_value(value: object, where: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _dot_quote(repr(value))
    if isinstance(value, str) and not (
        _DOT_INT.match(value)
        or _DOT_FLOAT.match(value)
        or value.startswith(MARKER)
        or value.endswith("\\")
        or any(ord(char) < 32 for char in value)
    ):
        return _dot_quote(value)
    return _dot_quote(_json_text(value, where))


def _dot_attrs(data: dict, where: str, text: frozenset[str] = frozenset()) -> str:
    """``name="value"`` pairs; the values of the names in ``text`` are str and written as they are."""
    return ", ".join(
        f"{_dot_name(k)}={_dot_quote(v) if k in text else _dot_value(v, f'attribute {k!r} of {where}')}"
        for k, v in data.items()
    )


def write_dot(graph: DependencyGraph, path: str | PathLike) -> None:
    """Write ``graph`` as a graphviz DOT digraph, atomically (no extra package needed).

    Graph attributes are top-level ``name="value";`` statements, and every value is quoted text: numbers as
    numerals, other non-text values as marked JSON (see the module docstring), so :func:`read_dot` restores them.

    Parameters
    ----------
    graph : DependencyGraph
    path : str or path-like

    Raises
    ------
    TypeError
        If ``graph`` is not a DependencyGraph, or an attribute value cannot be stored.
    FileNotFoundError
        If the destination folder does not exist.
    """
    path = _as_path(path, "write")
    g = _check_graph(graph, "write_dot").to_networkx()
    lines = ["digraph dependency_graph {"]
    lines += [f"{_dot_name(k)}={_dot_value(v, f'graph attribute {k!r}')};" for k, v in g.graph.items()]
    lines += [f"{_dot_quote(str(n))} [{_dot_attrs(d, f'node {n!r}', _DOT_TEXT)}];" for n, d in g.nodes(data=True)]
    lines += [
        f"{_dot_quote(str(u))} -> {_dot_quote(str(v))} [{_dot_attrs(d, f'edge {u!r} -> {v!r}')}];"
        for u, v, d in g.edges(data=True)
    ]
    text = "\n".join(lines + ["}", ""])
    atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))


def _dot_text(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return re.sub(r"\\(.)", r"\1", raw[1:-1], flags=re.DOTALL)
    return raw


def _dot_read_value(raw: str, where: str, name: str) -> object:
    text = _dot_text(raw)
    if _DOT_INT.match(text):
        return int(text)
    if _DOT_FLOAT.match(text):
        return float(text)
    return _decoded_value(text, f"{where}, attribute {name!r}") if _marked(text) else text


def _dot_read_attrs(raw: dict[str, Any], where: str, text: frozenset[str] = frozenset()) -> dict[str, object]:
    """The attributes of ``where`` (the file and the graph, a node or an edge), decoded."""
    attrs = {_dot_text(k): v for k, v in raw.items()}
    return {k: _dot_text(v) if k in text else _dot_read_value(v, where, k) for k, v in attrs.items()}


def read_dot(path: str | PathLike, *, max_bytes: int | None = MAX_BYTES) -> DependencyGraph:
    """Read a DOT file written by :func:`write_dot`; needs the optional package ``pydot``.

    Parameters
    ----------
    path : str or path-like
    max_bytes : int or None, default=MAX_BYTES
        The largest file read (100 MiB); a larger one is refused before it is parsed. ``None``: no limit, for
        files you trust.

    Returns
    -------
    DependencyGraph

    Raises
    ------
    ImportError
        If pydot is not installed.
    ValueError
        If the file is larger than ``max_bytes``, not DOT (for example truncated), not one directed graph, or
        not a stepwise dependency graph (the message names the problem and where).
    TypeError
        If ``max_bytes`` is neither an int nor None (a ValueError when it is below 1).
    """
    path = _as_path(path, "read")
    try:
        import pydot
    except ImportError:
        raise ImportError(
            f"Reading {path} needs pydot, which is not installed: pip install pydot. Writing DOT needs nothing; "
            "GraphML, GEXF and JSON files read without extra packages."
        ) from None
    try:
        text = _read_bytes(path, max_bytes, "read_dot").decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"Cannot read {path}: it is not UTF-8 text, so not a DOT file written by stepwise.") from error
    try:
        with contextlib.redirect_stdout(io.StringIO()) as printed:  # pydot prints its parse errors
            parsed = pydot.graph_from_dot_data(text)
    except Exception as error:  # pydot's parser raises several types, depending on its version
        raise ValueError(f"Cannot read {path}: it is not valid DOT ({error}); the file may be truncated.") from error
    if not parsed:
        detail = " ".join(printed.getvalue().split()[-12:]) or "no graph found"
        raise ValueError(f"Cannot read {path}: it is not valid DOT ({detail}); the file may be truncated or empty.")
    if len(parsed) != 1 or parsed[0].get_type() != "digraph":
        raise ValueError(f"Cannot read {path}: it must hold exactly one directed graph (digraph).")
    dot = parsed[0]
    g = nx.DiGraph()
    g.graph.update(_dot_read_attrs(dot.get_attributes(), f"{path}: the graph"))
    nodes, edges = [], []
    for node in dot.get_nodes():
        name = _dot_text(node.get_name())
        if name not in _DOT_KEYWORDS:  # 'node [...]' and 'graph [...]' are defaults, not nodes
            nodes.append(name)
            g.add_node(name, **_dot_read_attrs(node.get_attributes(), f"{path}: node {name!r}", _DOT_TEXT))
    for edge in dot.get_edges():
        u, v = _dot_text(str(edge.get_source())), _dot_text(str(edge.get_destination()))
        edges.append((u, v))
        g.add_edge(u, v, **_dot_read_attrs(edge.get_attributes(), f"{path}: edge {u!r} -> {v!r}"))
    return _validated(path, "DOT", g, nodes, edges)


# ------------------------------------------------------------------------------------------- by suffix

_WRITERS: dict[str, Callable[[DependencyGraph, Path], None]] = {
    ".graphml": write_graphml,
    ".gexf": write_gexf,
    ".json": write_json,
    ".dot": write_dot,
}
_READERS: dict[str, Callable[..., DependencyGraph]] = {
    ".graphml": read_graphml,
    ".gexf": read_gexf,
    ".json": read_json,
    ".dot": read_dot,
}


def write_graph(graph: DependencyGraph, path: str | PathLike) -> None:
    """Write ``graph`` to ``path`` atomically, in the format its suffix names.

    Parameters
    ----------
    graph : DependencyGraph
    path : str or path-like
        Ending in ``.graphml``, ``.gexf``, ``.json`` (networkx node-link) or ``.dot`` (any case).

    Raises
    ------
    ValueError
        For an unknown suffix.

    Examples
    --------
    >>> import networkx as nx, stepwise, tempfile, os
    >>> g = nx.DiGraph(levels=["fc1", "softmax"], target=1)
    >>> g.add_node("softmax:1", level="softmax", index=1, depth=0)
    >>> graph = stepwise.DependencyGraph(g)
    >>> path = os.path.join(tempfile.mkdtemp(), "graph.graphml")
    >>> stepwise.write_graph(graph, path)
    >>> stepwise.read_graph(path) == graph
    True
    """
    path = _as_path(path, "write")
    _WRITERS[_suffix(path, "write")](graph, path)


def read_graph(path: str | PathLike, *, max_bytes: int | None = MAX_BYTES) -> DependencyGraph:
    """Read a dependency graph from ``path``, in the format its suffix names.

    Reading is safe for files from others: see the module docstring (no entity expansion, no external
    references, a size limit, the schema checked).

    Parameters
    ----------
    path : str or path-like
        Ending in ``.graphml``, ``.gexf``, ``.json`` (networkx node-link) or ``.dot`` (needs pydot).
    max_bytes : int or None, default=MAX_BYTES
        The largest file read (100 MiB, :data:`stepwise.readwrite.MAX_BYTES`); a larger one is refused before
        it is parsed. ``None``: no limit, for files you trust.

    Returns
    -------
    DependencyGraph

    Raises
    ------
    ValueError
        For an unknown suffix, a file larger than ``max_bytes``, an unsafe, truncated or foreign file, or one that
        breaks the schema; the message says which, and where.
    TypeError
        If ``max_bytes`` is neither an int nor None (a ValueError when it is below 1).
    """
    path = _as_path(path, "read")
    _check_max_bytes(max_bytes, "read_graph")
    return _READERS[_suffix(path, "read")](path, max_bytes=max_bytes)
