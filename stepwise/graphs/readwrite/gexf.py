"""GEXF 1.2: node and edge attributes typed per name; the graph attributes, which GEXF has not, as marked JSON
in ``<meta><description>``."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from os import PathLike
from typing import BinaryIO

import networkx as nx
from networkx.readwrite.gexf import GEXFWriter

from stepwise.core.io import atomic_write

from ..layered import LayeredGraph
from .codec import MARKER, check_reserved, check_xml_names, decoded, decoded_value, encoded, json_text
from .safety import MAX_BYTES, as_path, check_graph, local, safe_xml, validated, xml_items

__all__ = ["read_gexf", "write_gexf"]


def write_gexf(graph: LayeredGraph, path: str | PathLike) -> None:
    """Write ``graph`` (of any kind) as GEXF 1.2, atomically; the graph attributes go into ``<meta><description>``.

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
        If a node or edge attribute uses a name GEXF reserves (node ``label``, edge ``weight``, ...), or a node
        key or an attribute name holds a character XML cannot store (a control character).
    FileNotFoundError
        If the destination folder does not exist.
    """
    path = as_path(path, "write")
    g = check_graph(graph, "write_gexf").to_networkx()
    check_reserved(g, "GEXF", path)
    check_xml_names(g, "GEXF", path)
    attrs = json_text(g.graph, "the graph attributes")
    g = encoded(g, (str, bool, int, float), one_type_per_name=True, xml=True)
    g.graph.clear()  # GEXF has no graph attributes; a few names would change the writer's output

    def dump(stream: BinaryIO) -> None:
        writer = GEXFWriter(encoding="utf-8", prettyprint=True, version="1.2draft")
        writer.add_graph(g)
        meta = next(child for child in writer.xml if child.tag == "meta")
        meta.attrib.pop("lastmodifieddate", None)  # today's date: the same graph would give another file tomorrow
        ET.SubElement(meta, "description").text = attrs
        writer.write(stream)

    atomic_write(path, dump)


def read_gexf(path: str | PathLike, *, max_bytes: int | None = MAX_BYTES) -> LayeredGraph:
    """Read a GEXF file written by :func:`write_gexf`.

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
        If the file is larger than ``max_bytes``, declares a DTD or entities, is not well-formed, is not GEXF, is
        of an unknown kind, or does not follow its kind's schema (the message names the problem and where; the
        graph attributes are expected in ``<meta><description>``).
    TypeError
        If ``max_bytes`` is neither an int nor None (a ValueError when it is below 1).
    """
    path = as_path(path, "read")
    root = safe_xml(path, "GEXF", max_bytes, "read_gexf")
    try:
        g = nx.read_gexf(io.BytesIO(ET.tostring(root)), node_type=None, relabel=False)
    except (nx.NetworkXError, KeyError, ValueError, TypeError) as error:
        raise ValueError(f"Cannot read {path} as GEXF: {error}") from error
    descriptions = [
        element.text or ""
        for meta in root
        if local(meta.tag) == "meta"
        for element in meta
        if local(element.tag) == "description"
    ]
    texts = [text for text in descriptions if text.startswith(MARKER)]
    attrs = decoded_value(texts[0], f"{path}: <meta><description>") if texts else {}
    if not isinstance(attrs, dict):
        raise ValueError(f"Cannot read {path}: its <meta><description> holds a {type(attrs).__name__}, not attributes.")
    for _, data in g.nodes(data=True):
        data.pop("label", None)  # GEXF gives every node a label: the writer's is the key (a reserved name)
    for _, _, data in g.edges(data=True):
        data.pop("id", None)  # GEXF numbers the edges
    g.graph.clear()
    g = decoded(g, path)
    g.graph.update(attrs)  # decoded already, as one JSON object
    return validated(path, "GEXF", g, *xml_items(root))
