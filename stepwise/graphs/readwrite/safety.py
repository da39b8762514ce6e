"""The safety checks every reader shares, whatever the format and the kind of graph.

- **Size.** :func:`read_bytes` refuses a file larger than ``max_bytes`` (default :data:`MAX_BYTES`, 100 MiB)
  before it is parsed, and reads a pipe or a growing file no further than the limit.
- **XML.** :func:`safe_xml` parses GraphML and GEXF with ``defusedxml``: no DTD, no entity declarations (the
  "billion laughs" and quadratic blow-up expansions), no external entities, and no nesting deeper than any graph
  file has.
- **Structure.** :func:`validated` checks, on what the file declares, that each node is declared once, each edge
  given once, and every edge names declared nodes; then it picks the class of the file's ``kind`` (a file without
  one is a dependency graph, as every file written before kinds existed) and lets it check the rest: the shared
  layered structure and the kind's schema (:mod:`stepwise.graphs.layered`).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from os import PathLike
from pathlib import Path

import defusedxml
import defusedxml.ElementTree
import networkx as nx

from stepwise.core.validation import check_int

from ..layered import DEFAULT_KIND, LayeredGraph, graph_class

__all__ = [
    "MAX_BYTES",
    "as_path",
    "check_graph",
    "check_max_bytes",
    "local",
    "read_bytes",
    "safe_xml",
    "validated",
    "xml_items",
]

#: The default ``max_bytes`` of the readers: the largest file they read, 100 MiB.
MAX_BYTES = 100 * 2**20
_XML_DEPTH = 32  # elements nest at most 6 deep in GEXF, 4 in GraphML


def as_path(path: object, action: str) -> Path:
    """``path`` as a Path; a TypeError for anything else (``action``: 'read' or 'write')."""
    if not isinstance(path, (str, PathLike)):
        raise TypeError(f"Cannot {action} a graph: path must be a str or os.PathLike; got {type(path).__name__}.")
    return Path(path)


def check_graph(graph: object, owner: str) -> LayeredGraph:
    """``graph`` if it is a graph of some kind; a TypeError saying how to make one otherwise."""
    if not isinstance(graph, LayeredGraph):
        raise TypeError(
            f"{owner} needs a stepwise graph (a LayeredGraph such as a DependencyGraph); got {type(graph).__name__}. "
            "Wrap a networkx.DiGraph with stepwise.DependencyGraph.from_networkx(g), or the class of its kind."
        )
    return graph


def check_max_bytes(max_bytes: int | None, owner: str) -> None:
    """``max_bytes`` is None or an int of at least 1."""
    if max_bytes is not None:
        check_int(max_bytes, "max_bytes", owner, low=1)


def read_bytes(path: Path, max_bytes: int | None, owner: str) -> bytes:
    """The content of ``path``, refused without being read when it is larger than ``max_bytes``."""
    check_max_bytes(max_bytes, owner)
    with open(path, "rb") as stream:
        if max_bytes is None:
            return stream.read()
        size = os.fstat(stream.fileno()).st_size
        data = b"" if size > max_bytes else stream.read(max_bytes + 1)  # a pipe or a growing file has no size
    if size > max_bytes or len(data) > max_bytes:
        held = f"{size:,} bytes" if size > max_bytes else "more"
        raise ValueError(
            f"Refused to read {path}: it holds {held}, more than max_bytes={max_bytes:,}. A graph file takes a few "
            "hundred bytes per edge, and a file from someone else may be built to exhaust memory. If you trust it, "
            "pass a larger max_bytes, or max_bytes=None for no limit."
        )
    return data


def local(tag: str) -> str:
    """An XML tag without its namespace."""
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


def safe_xml(path: Path, fmt: str, max_bytes: int | None, owner: str) -> ET.Element:
    """Parse an XML file with defusedxml: no DTD, no entities, no external references, no deep nesting."""
    data = read_bytes(path, max_bytes, owner)
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


def xml_items(root: ET.Element) -> tuple[list[object], list[tuple[object, object]]]:
    """The node ids and the (source, target) pairs of the edges that a GraphML or GEXF document declares."""
    elements = list(root.iter())
    nodes = [element.get("id") for element in elements if local(element.tag) == "node"]
    edges = [(e.get("source"), e.get("target")) for e in elements if local(e.tag) == "edge"]
    return nodes, edges


def _check_items(path: Path, kind: str, nodes: list[object], edges: list[tuple[object, object]]) -> None:
    """Each node declared once, each edge given once, and every edge between declared nodes."""
    declared: set[object] = set()
    for node in nodes:
        if node in declared:
            raise ValueError(
                f"Cannot read {path}: it declares the node {node!r} twice; a {kind} graph declares each node once, "
                "with its attributes."
            )
        declared.add(node)
    given: set[tuple[object, object]] = set()
    for u, v in edges:
        for end in (u, v):
            if end not in declared:
                raise ValueError(
                    f"Cannot read {path}: the edge {u!r} -> {v!r} names the node {end!r}, which the file does not "
                    "declare; every node on an edge is declared with its attributes (level, index, depth)."
                )
        if (u, v) in given:
            raise ValueError(
                f"Cannot read {path}: it has two edges {u!r} -> {v!r}; a {kind} graph has at most one edge from a "
                "node to another."
            )
        given.add((u, v))


def _file_kind(path: Path, g: nx.Graph) -> str:
    kind = g.graph.get("kind", DEFAULT_KIND)
    if not isinstance(kind, str):
        raise ValueError(
            f"Cannot read {path}: its graph attribute 'kind' is {kind!r} ({type(kind).__name__}), not the name of a "
            f"kind of graph such as {DEFAULT_KIND!r}; the file was damaged or not written by stepwise."
        )
    return kind


def validated(
    path: Path, fmt: str, g: nx.Graph, nodes: list[object], edges: list[tuple[object, object]]
) -> LayeredGraph:
    """The one check of every reader: the graph read from ``path``, of the class of its kind, or a ValueError
    saying why the file is not one. ``nodes`` and ``edges`` are the node ids and (source, target) pairs as the
    file declares them."""
    kind = _file_kind(path, g)
    _check_items(path, kind, nodes, edges)
    if not g.is_directed():
        raise ValueError(f"Cannot read {path}: its {fmt} graph is undirected; a stepwise {kind} graph is directed.")
    if g.is_multigraph():
        raise ValueError(
            f"Cannot read {path}: its {fmt} graph has parallel edges; a stepwise {kind} graph has at most one edge "
            "from a node to another."
        )
    try:
        cls = graph_class(kind)
    except ValueError as error:
        raise ValueError(f"Cannot read {path}: the file holds a graph of kind {kind!r}. {error}") from error
    try:
        return cls(g)
    except ValueError as error:
        raise ValueError(f"{path} is not a stepwise {kind} graph: {error}") from error
