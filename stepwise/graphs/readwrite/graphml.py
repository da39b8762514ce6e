"""GraphML: every attribute with its type; lists, dicts, ``None`` and marked text as marked JSON."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from os import PathLike

import networkx as nx

from stepwise.core.io import atomic_write

from ..layered import LayeredGraph
from .codec import check_reserved, check_xml_names, decoded, encoded
from .safety import MAX_BYTES, as_path, check_graph, safe_xml, validated, xml_items

__all__ = ["read_graphml", "write_graphml"]


def write_graphml(graph: LayeredGraph, path: str | PathLike) -> None:
    """Write ``graph`` (of any kind) as GraphML, atomically.

    Parameters
    ----------
    graph : LayeredGraph
        A graph of any kind, such as a DependencyGraph; its ``kind`` is written with the graph attributes.
    path : str or path-like

    Raises
    ------
    TypeError
        If ``graph`` is not a LayeredGraph, or an attribute value cannot be stored.
    ValueError
        If a node key or an attribute name holds a character XML cannot store (a control character).
    FileNotFoundError
        If the destination folder does not exist.
    """
    path = as_path(path, "write")
    g = check_graph(graph, "write_graphml").to_networkx()
    check_reserved(g, "GraphML", path)
    check_xml_names(g, "GraphML", path)
    g = encoded(g, (str, bool, int, float), xml=True)
    atomic_write(path, lambda stream: nx.write_graphml(g, stream))


def read_graphml(path: str | PathLike, *, max_bytes: int | None = MAX_BYTES) -> LayeredGraph:
    """Read a GraphML file written by :func:`write_graphml` (or by another tool, if it keeps the schema).

    Parameters
    ----------
    path : str or path-like
    max_bytes : int or None, default=MAX_BYTES
        The largest file read (100 MiB); a larger one is refused before it is parsed. ``None``: no limit, for
        files you trust.

    Returns
    -------
    LayeredGraph
        Of the class of the file's ``kind``: a DependencyGraph for a file without one.

    Raises
    ------
    ValueError
        If the file is larger than ``max_bytes``, declares a DTD or entities, is not well-formed, is not GraphML,
        is of an unknown kind, or does not follow its kind's schema (the message names the problem and where).
    TypeError
        If ``max_bytes`` is neither an int nor None (a ValueError when it is below 1).
    """
    path = as_path(path, "read")
    root = safe_xml(path, "GraphML", max_bytes, "read_graphml")
    try:
        g = nx.parse_graphml(ET.tostring(root, encoding="unicode"), node_type=str)
    except (nx.NetworkXError, KeyError, ValueError, TypeError) as error:
        raise ValueError(f"Cannot read {path} as GraphML: {error}") from error
    for name in ("node_default", "edge_default"):  # the reader adds them; they are empty for our files
        if g.graph.get(name) == {}:
            del g.graph[name]
    return validated(path, "GraphML", decoded(g, path), *xml_items(root))
