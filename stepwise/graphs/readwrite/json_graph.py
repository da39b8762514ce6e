"""networkx node-link JSON (``nx.node_link_data(g, edges="edges")``): JSON types as they are, other values and
marked text as marked JSON; files from networkx before 3.4 (``"links"``) read too."""

from __future__ import annotations

import json
import reprlib
from os import PathLike
from pathlib import Path

import networkx as nx

from stepwise.core.io import atomic_write

from ..layered import LayeredGraph
from .codec import check_reserved, decoded, encoded
from .safety import MAX_BYTES, as_path, check_graph, read_bytes, validated

__all__ = ["read_json", "write_json"]


def write_json(graph: LayeredGraph, path: str | PathLike) -> None:
    """Write ``graph`` as networkx node-link JSON (``nx.node_link_data(g, edges="edges")``), atomically.

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
        If a node attribute is named ``id`` or an edge attribute ``source``, ``target`` or ``key``.
    FileNotFoundError
        If the destination folder does not exist.
    """
    path = as_path(path, "write")
    g = check_graph(graph, "write_json").to_networkx()
    check_reserved(g, "JSON", path)
    g = encoded(g, (str, bool, int, float, list, dict, type(None)))
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


def read_json(path: str | PathLike, *, max_bytes: int | None = MAX_BYTES) -> LayeredGraph:
    """Read a networkx node-link JSON file written by :func:`write_json`.

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
        If the file is larger than ``max_bytes``, not JSON (for example truncated), not node-link data, or not
        of a known kind following its schema (the message names the problem and where).
    TypeError
        If ``max_bytes`` is neither an int nor None (a ValueError when it is below 1).
    """
    path = as_path(path, "read")
    text = read_bytes(path, max_bytes, "read_json")
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
    return validated(path, "node-link JSON", decoded(g, path), nodes, pairs)
