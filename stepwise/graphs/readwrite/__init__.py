"""Reading and writing graphs of every kind: GraphML, GEXF, networkx node-link JSON and DOT.

One module per format (:mod:`.graphml`, :mod:`.gexf`, :mod:`.json_graph`, :mod:`.dot`), in the spirit of
``networkx.readwrite``, over the shared marked-JSON codec (:mod:`.codec`) and safety checks (:mod:`.safety`);
:func:`read_graph` and :func:`write_graph` pick the format from the file suffix.

**Any kind.** The writers take a graph of any kind (a :class:`~stepwise.graphs.layered.LayeredGraph`) and write
its ``kind`` with the graph attributes; the readers return the class of the file's kind
(:func:`~stepwise.graphs.layered.graph_class`), and a file without ``kind``, as every file written before kinds
existed, reads as a dependency graph.

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
cannot exhaust memory or time (parsing XML takes about twenty times the file's size in memory). A graph file
takes far less, a few hundred bytes per edge; pass ``max_bytes=None`` to read a larger file you trust.

**Checked.** Every reader applies the same check before it returns (:mod:`.safety`): each node is declared once,
each edge once, and every edge names declared nodes; then the graph must follow the structure every kind shares
and the schema of its kind (:mod:`stepwise.graphs.layered`: attributes, their types, keys, depths, no cycle). The
``ValueError`` names the problem and where (file, node, edge, attribute). Reading DOT needs ``pydot`` (an
optional dependency); writing it does not.
"""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike
from pathlib import Path

from ..layered import LayeredGraph
from .codec import MARKER
from .dot import read_dot, write_dot
from .gexf import read_gexf, write_gexf
from .graphml import read_graphml, write_graphml
from .json_graph import read_json, write_json
from .safety import MAX_BYTES, as_path, check_max_bytes

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


def _suffix(path: Path, action: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"Cannot {action} {path}: unknown format {suffix or '(no suffix)'!r}. Use one of "
            f"{', '.join(FORMATS)} (.json is networkx node-link)."
        )
    return suffix


_WRITERS: dict[str, Callable[[LayeredGraph, Path], None]] = {
    ".graphml": write_graphml,
    ".gexf": write_gexf,
    ".json": write_json,
    ".dot": write_dot,
}
_READERS: dict[str, Callable[..., LayeredGraph]] = {
    ".graphml": read_graphml,
    ".gexf": read_gexf,
    ".json": read_json,
    ".dot": read_dot,
}


def write_graph(graph: LayeredGraph, path: str | PathLike) -> None:
    """Write ``graph`` to ``path`` atomically, in the format its suffix names.

    Parameters
    ----------
    graph : LayeredGraph
        A graph of any kind, such as a DependencyGraph.
    path : str or path-like
        Ending in ``.graphml``, ``.gexf``, ``.json`` (networkx node-link) or ``.dot`` (any case).

    Raises
    ------
    ValueError
        For an unknown suffix, or what the format's writer refuses (a name the format reserves, ...).
    TypeError
        If ``graph`` is not a LayeredGraph, or an attribute value cannot be stored.

    Examples
    --------
    >>> import networkx as nx, stepwise, tempfile, os
    >>> g = nx.DiGraph(levels=["fc1", "softmax"], target=1)
    >>> g.add_node("softmax:1", level="softmax", index=1, depth=0)
    >>> graph = stepwise.DependencyGraph(g)
    >>> path = os.path.join(tempfile.mkdtemp(), "graph.graphml")
    >>> stepwise.write_graph(graph, path)
    >>> stepwise.read_graph(path) == graph, stepwise.read_graph(path).kind
    (True, 'dependency')
    """
    path = as_path(path, "write")
    _WRITERS[_suffix(path, "write")](graph, path)


def read_graph(path: str | PathLike, *, max_bytes: int | None = MAX_BYTES) -> LayeredGraph:
    """Read a graph from ``path``, in the format its suffix names, as the class of its kind.

    Reading is safe for files from others: see the module docstring (no entity expansion, no external
    references, a size limit, the schema checked).

    Parameters
    ----------
    path : str or path-like
        Ending in ``.graphml``, ``.gexf``, ``.json`` (networkx node-link) or ``.dot`` (needs pydot).
    max_bytes : int or None, default=MAX_BYTES
        The largest file read (100 MiB, :data:`stepwise.graphs.readwrite.MAX_BYTES`); a larger one is refused before
        it is parsed. ``None``: no limit, for files you trust.

    Returns
    -------
    LayeredGraph
        Of the class of the file's ``kind`` (a DependencyGraph for a file without one).

    Raises
    ------
    ValueError
        For an unknown suffix, a file larger than ``max_bytes``, an unsafe, truncated or foreign file, a file of an
        unknown kind, or one that breaks its kind's schema; the message says which, and where.
    TypeError
        If ``max_bytes`` is neither an int nor None (a ValueError when it is below 1).
    """
    path = as_path(path, "read")
    check_max_bytes(max_bytes, "read_graph")
    return _READERS[_suffix(path, "read")](path, max_bytes=max_bytes)
