"""graphviz DOT: written without extra packages, read with the optional package ``pydot``.

DOT has no types: numbers are written as numerals and read back as ``int`` or ``float``, and a text value that
reads like a number is marked JSON (except the node attribute ``level``, always text), as is text with a control
character.
"""

from __future__ import annotations

import contextlib
import io
import re
from os import PathLike
from typing import Any

import networkx as nx

from stepwise.core.io import atomic_write

from ..layered import DEFAULT_KIND, LayeredGraph
from .codec import MARKER, decoded_value, json_text, marked
from .safety import MAX_BYTES, as_path, check_graph, read_bytes, validated

__all__ = ["read_dot", "write_dot"]

_DOT_INT = re.compile(r"-?[0-9]+\Z")
_DOT_FLOAT = re.compile(r"-?(?:[0-9]+\.[0-9]*(?:e[-+]?[0-9]+)?|[0-9]+e[-+]?[0-9]+|inf|nan)\Z")
_DOT_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\Z")
_DOT_KEYWORDS = {"node", "edge", "graph", "digraph", "subgraph", "strict"}
_DOT_TEXT = frozenset({"level"})  # node attributes always str: a level named "8" is written as it is


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
    return _dot_quote(json_text(value, where))


def _dot_attrs(data: dict, where: str, text: frozenset[str] = frozenset()) -> str:
    """``name="value"`` pairs; the values of the names in ``text`` are str and written as they are."""
    return ", ".join(
        f"{_dot_name(k)}={_dot_quote(v) if k in text else _dot_value(v, f'attribute {k!r} of {where}')}"
        for k, v in data.items()
    )


def write_dot(graph: LayeredGraph, path: str | PathLike) -> None:
    """Write ``graph`` as a graphviz DOT digraph, atomically (no extra package needed).

    Graph attributes are top-level ``name="value";`` statements, and every value is quoted text: numbers as
    numerals, other non-text values as marked JSON (see the module docstring), so :func:`read_dot` restores them.

    Parameters
    ----------
    graph : LayeredGraph
        A graph of any kind, such as a DependencyGraph; its ``kind`` is written with the graph attributes.
    path : str or path-like

    Raises
    ------
    TypeError
        If ``graph`` is not a LayeredGraph, or an attribute value cannot be stored.
    FileNotFoundError
        If the destination folder does not exist.
    """
    path = as_path(path, "write")
    g = check_graph(graph, "write_dot").to_networkx()
    lines = [f"digraph {_dot_name(str(g.graph.get('kind', DEFAULT_KIND)) + '_graph')} {{"]
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
    return decoded_value(text, f"{where}, attribute {name!r}") if marked(text) else text


def _dot_read_attrs(raw: dict[str, Any], where: str, text: frozenset[str] = frozenset()) -> dict[str, object]:
    """The attributes of ``where`` (the file and the graph, a node or an edge), decoded."""
    attrs = {_dot_text(k): v for k, v in raw.items()}
    return {k: _dot_text(v) if k in text else _dot_read_value(v, where, k) for k, v in attrs.items()}


def read_dot(path: str | PathLike, *, max_bytes: int | None = MAX_BYTES) -> LayeredGraph:
    """Read a DOT file written by :func:`write_dot`; needs the optional package ``pydot``.

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
    ImportError
        If pydot is not installed.
    ValueError
        If the file is larger than ``max_bytes``, not DOT (for example truncated), not one directed graph, or
        not of a known kind following its schema (the message names the problem and where).
    TypeError
        If ``max_bytes`` is neither an int nor None (a ValueError when it is below 1).
    """
    path = as_path(path, "read")
    try:
        import pydot
    except ImportError:
        raise ImportError(
            f"Reading {path} needs pydot, which is not installed: pip install pydot. Writing DOT needs nothing; "
            "GraphML, GEXF and JSON files read without extra packages."
        ) from None
    try:
        text = read_bytes(path, max_bytes, "read_dot").decode("utf-8")
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
    return validated(path, "DOT", g, nodes, edges)
