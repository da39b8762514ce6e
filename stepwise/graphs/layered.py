"""LayeredGraph: the structure every kind of graph shares, and the registry of kinds; no torch.

Every graph of the library is a layered graph, a thin typed face over a ``networkx.DiGraph``:

- graph attributes ``levels`` (a non-empty list of distinct level names, bottom to top) and ``kind`` (the name
  of the kind, such as ``"dependency"``; a graph without it gets the kind of the class that checks it);
- nodes keyed ``"{level}:{index}"`` (:func:`node_key`) with attributes ``level`` (str, one of ``levels``),
  ``index`` (int, at least 0) and ``depth`` (int, ``len(levels) - 1 - levels.index(level)``: 0 is the top);
- edges that run downward, from a node to one of a lower level (smaller depth to larger depth), so no cycle;
  each node and each edge once (a ``networkx.DiGraph``, never a multigraph).

**A new kind** is a subclass that declares its own schema, and only its own, as class attributes, and checks its
own values in one method; the base class checks the shared structure above, the types of the declared
attributes, and registers the kind so that :func:`graph_class` and the readers of :mod:`stepwise.graphs.readwrite`
find it::

    class PathsGraph(LayeredGraph):
        KIND = "paths"                                # the value of the graph attribute 'kind'
        GRAPH_ATTRS = {"n_inputs": "the number of inputs"}   # required graph attributes: name -> what it is
        RECORDED_ATTRS = {"seed": int}                # optional graph attributes: name -> type, when present
        NODE_ATTRS = {"size": int}                    # required node attributes beyond level, index, depth
        EDGE_ATTRS = {"count": int, "frequency": float}   # required edge attributes: name -> type
        MADE_BY = "stepwise.paths.DecisionPaths"      # what builds such graphs, named in error messages

        @classmethod
        def _check_values(cls, graph):                # the kind's own value checks (ranges, agreements)
            ...

The contract:

- Types are ``str``, ``int``, ``float`` (finite), ``bool``, ``list`` or ``dict``. Numbers are made plain Python
  values (a numpy integer becomes an ``int``, an ``int`` given for a ``float`` a ``float``), a sequence given for
  a ``list`` a ``list``; a value of the wrong type is a ``ValueError`` that names it. Attributes a kind does not
  declare are kept as they are.
- ``_check_values(graph)`` receives the checked deep copy (structure and declared types already checked) and
  raises ``ValueError`` naming what is wrong and where; it may normalise values in place. It is the only method
  a kind has to write. Optional: ``_repr_items()`` adds fields to the one-line ``repr``; ``_shared_attrs(graphs)``
  and ``_merged(what, found)`` say how :func:`~stepwise.graphs.collections.shared_subgraph` combines the graph
  attributes, and the attributes of a node or an edge that several graphs hold (by default: graph attributes
  equal in all; declared ints summed, floats averaged, other values kept when equal).
- Registering happens on subclassing (``__init_subclass__``): a class whose body sets ``KIND`` is the class of
  that kind. The kinds the library ships are imported by name on first use (:data:`KIND_MODULES`), so
  ``graph_class("paths")`` works before anything imported :mod:`stepwise.graphs.paths`.
- A kind's class refuses a graph whose ``kind`` names another kind, naming the right class;
  :meth:`LayeredGraph.from_networkx` on the base class picks the class by the graph's ``kind`` (a graph without
  one is a dependency graph, as every file written before kinds existed).
"""

from __future__ import annotations

import copy
import importlib
import math
import numbers
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import networkx as nx
import numpy as np

from stepwise.core.validation import unknown_name_message

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["DEFAULT_KIND", "KIND_MODULES", "LayeredGraph", "coerce", "graph_class", "listed", "node_key", "type_name"]

#: The module of each kind the library ships, imported on first use by :func:`graph_class`.
KIND_MODULES = {
    "dependency": "stepwise.graphs.dependency",
    "paths": "stepwise.graphs.paths",
    "inference": "stepwise.graphs.inference",
}
#: The kind of a graph (or a file) that names none: files written before kinds existed are dependency graphs.
DEFAULT_KIND = "dependency"

_LAYER_NODE_ATTRS: dict[str, type] = {"level": str, "index": int, "depth": int}
_TYPES = (str, int, float, bool, list, dict)
_TYPE_NAMES = {str: "a str", int: "an int", float: "a finite float", bool: "a bool", list: "a list", dict: "a dict"}
_SHOWN = 5  # offending nodes or edges named in an error message
_REGISTRY: dict[str, type[LayeredGraph]] = {}
_G = TypeVar("_G", bound="LayeredGraph")


def node_key(level: str, index: int) -> str:
    """The key of neuron ``(level, index)``: ``"{level}:{index}"``.

    Examples
    --------
    >>> node_key("features.28", 41)
    'features.28:41'
    """
    return f"{level}:{index}"


def listed(items: Sequence[object]) -> str:
    """At most five items as reprs, and how many more: ``'a', 'b' and 3 more``."""
    shown = ", ".join(repr(item) for item in list(items)[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def type_name(kind: type) -> str:
    """How an error message names a type of the schema: ``int`` -> ``'an int'``."""
    return _TYPE_NAMES[kind]


def coerce(value: object, kind: type) -> object:
    """``value`` as a plain ``kind`` of the schema (numpy scalars included), or ``None`` when it is not one.

    A ``float`` must be finite; a ``bool`` is neither an ``int`` nor a ``float``; a sequence (not text) is a
    ``list``, a mapping a ``dict``.
    """
    if kind is str:
        return value if isinstance(value, str) else None
    if kind is list:
        return list(value) if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) else None
    if kind is dict:
        return dict(value) if isinstance(value, Mapping) else None
    if kind is bool:
        return bool(value) if isinstance(value, (bool, np.bool_)) else None
    if isinstance(value, (bool, np.bool_)):
        return None
    if kind is int:
        return int(value) if isinstance(value, numbers.Integral) else None
    if isinstance(value, numbers.Real) and math.isfinite(value):
        return float(value)
    return None


def _known_kinds() -> list[str]:
    return sorted(set(KIND_MODULES) | set(_REGISTRY))


def graph_class(kind: str) -> type[LayeredGraph]:
    """The class of a kind of graph, importing the module of a kind the library ships on first use.

    Parameters
    ----------
    kind : str
        A graph's ``kind`` attribute: ``"dependency"``, ``"paths"``, ``"inference"``, or a kind registered by
        subclassing :class:`LayeredGraph`.

    Returns
    -------
    type
        The :class:`LayeredGraph` subclass of that kind.

    Raises
    ------
    TypeError
        If ``kind`` is not a str.
    ValueError
        For a kind no class is registered for; the message lists the known kinds.

    Examples
    --------
    >>> graph_class("dependency").__name__
    'DependencyGraph'
    """
    if not isinstance(kind, str):
        raise TypeError(f"A graph's kind is a str such as {DEFAULT_KIND!r}; got {kind!r} ({type(kind).__name__}).")
    if kind not in _REGISTRY and kind in KIND_MODULES:
        try:
            importlib.import_module(KIND_MODULES[kind])
        except ModuleNotFoundError as error:
            if error.name != KIND_MODULES[kind]:
                raise
            raise ValueError(
                f"Graphs of kind {kind!r} are read by {KIND_MODULES[kind]}, which this version of stepwise does "
                "not have yet: install the version that wrote the graph."
            ) from None
    if kind not in _REGISTRY:
        fix = (
            f"The known kinds are {_known_kinds()}; a new kind is a subclass of stepwise.LayeredGraph with "
            "KIND set, defined before the graph is read."
        )
        raise ValueError(unknown_name_message("kind", kind, "stepwise", _known_kinds(), fix))
    return _REGISTRY[kind]


def _missing(items: list[tuple[object, dict]], required: dict[str, type], what: str, kind: str) -> None:
    """Raise for items (nodes or edges) that lack required attributes."""
    lacking = [(item, sorted(set(required) - set(data))) for item, data in items if set(required) - set(data)]
    if not lacking:
        return
    names = sorted({name for _, missing in lacking for name in missing})
    needs = ", ".join(f"{name!r} ({t.__name__})" for name, t in required.items())
    raise ValueError(
        f"{len(lacking)} of {len(items)} {what}s lack the {what} attribute(s) {listed(names)} of a stepwise "
        f"{kind} graph (first: {lacking[0][0]!r}, which lacks {listed(lacking[0][1])}). Every {what} needs "
        f"{needs}."
    )


def _first_cycle(graph: nx.DiGraph) -> list[tuple[str, str]]:
    """A cycle of ``graph`` as a list of edges, the same whatever order the nodes and edges were added in: found
    from the top-most node on a cycle (smallest depth, then key), in a copy of its strongly connected component
    with sorted edges."""
    on_cycles = [c for c in nx.strongly_connected_components(graph) if len(c) > 1 or graph.has_edge(*[min(c)] * 2)]
    start = min((n for c in on_cycles for n in c), key=lambda n: (graph.nodes[n]["depth"], n))
    component = next(c for c in on_cycles if start in c)
    canonical = nx.DiGraph(sorted(graph.subgraph(component).edges()))
    return nx.find_cycle(canonical, source=start)


class LayeredGraph:
    """A graph of neurons (or clusters, or visual words) level by level; the base of every kind.

    Use a kind's class (:class:`~stepwise.graphs.dependency.DependencyGraph`, ...) to build a graph, or
    :meth:`LayeredGraph.from_networkx`, which picks the class by the graph's ``kind``. See the module docstring
    for the structure every kind shares and the contract of a new kind.

    Parameters
    ----------
    graph : networkx.DiGraph
        A graph following the shared structure and the kind's schema; it is checked and deep-copied.

    Raises
    ------
    TypeError
        If ``graph`` is not a ``networkx.DiGraph`` (a multigraph is not accepted), or when the base class itself
        is instantiated.
    ValueError
        If ``graph`` does not follow the structure or the schema; the message names what is missing or wrong.
    """

    #: The kind of the class: the value of the graph attribute ``kind``.
    KIND: ClassVar[str] = ""
    #: Required graph attributes of the kind (besides ``levels`` and ``kind``): name -> what it holds.
    GRAPH_ATTRS: ClassVar[dict[str, str]] = {}
    #: Optional graph attributes of the kind with the type they have when present.
    RECORDED_ATTRS: ClassVar[dict[str, type]] = {}
    #: Required node attributes of the kind (besides ``level``, ``index``, ``depth``) and their types.
    NODE_ATTRS: ClassVar[dict[str, type]] = {}
    #: Required edge attributes of the kind and their types.
    EDGE_ATTRS: ClassVar[dict[str, type]] = {}
    #: What builds graphs of the kind, named in the message for a missing graph attribute.
    MADE_BY: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "KIND" not in cls.__dict__:
            return  # a subclass of a kind: the kind keeps its class
        if not isinstance(cls.KIND, str) or not cls.KIND:
            raise TypeError(f"{cls.__name__}.KIND must be a non-empty str naming the kind; got {cls.KIND!r}.")
        for name in ("RECORDED_ATTRS", "NODE_ATTRS", "EDGE_ATTRS"):
            bad = {k: t for k, t in getattr(cls, name).items() if t not in _TYPES}
            if bad:
                raise TypeError(f"{cls.__name__}.{name} holds {bad}: the types are str, int, float, bool, list, dict.")
        clash = sorted(set(cls.NODE_ATTRS) & set(_LAYER_NODE_ATTRS)) + sorted({"levels", "kind"} & set(cls.GRAPH_ATTRS))
        if clash:
            raise TypeError(f"{cls.__name__} redeclares {clash}, which every layered graph has already.")
        known = _REGISTRY.get(cls.KIND)
        if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
            raise TypeError(
                f"The kind {cls.KIND!r} is already the kind of {known.__module__}.{known.__qualname__}; choose "
                f"another KIND for {cls.__qualname__}."
            )
        _REGISTRY[cls.KIND] = cls  # a module imported again replaces its own class

    def __init__(self, graph: nx.DiGraph) -> None:
        if not type(self).KIND:
            raise TypeError(
                f"{type(self).__name__} is the base of the kinds of graph and has no kind of its own: build a "
                "graph with its kind's class, or with LayeredGraph.from_networkx(g), which picks the class by "
                "g.graph['kind']."
            )
        if not isinstance(graph, nx.DiGraph) or graph.is_multigraph():
            raise TypeError(
                f"{type(self).__name__} needs a networkx.DiGraph; got {type(graph).__name__}. Convert a multigraph "
                "with nx.DiGraph(g) once parallel edges are merged."
            )
        self._graph = self._checked(graph)

    @classmethod
    def from_networkx(cls: type[_G], graph: nx.DiGraph) -> _G:
        """Check ``graph`` and wrap a copy of it.

        On :class:`LayeredGraph` itself, the class is picked by ``graph.graph["kind"]`` (a graph without one is
        a dependency graph); on a kind's class, the graph must be of that kind.

        Parameters
        ----------
        graph : networkx.DiGraph

        Returns
        -------
        LayeredGraph
            An instance of the kind's class.

        Raises
        ------
        TypeError
            If ``graph`` is not a ``networkx.DiGraph``.
        ValueError
            For an unknown kind, or a graph that does not follow the structure or the kind's schema.
        """
        if cls.KIND:
            return cls(graph)
        if not isinstance(graph, nx.DiGraph) or graph.is_multigraph():
            raise TypeError(f"LayeredGraph.from_networkx needs a networkx.DiGraph; got {type(graph).__name__}.")
        return cast(_G, graph_class(graph.graph.get("kind", DEFAULT_KIND))(graph))

    # ------------------------------------------------------------------------------------------- checks

    @classmethod
    def _checked(cls, graph: nx.DiGraph) -> nx.DiGraph:
        """A deep copy of ``graph`` with the structure and the kind's schema checked, its typed attributes made
        plain Python values; each step raises a ValueError naming what is wrong and where."""
        graph = copy.deepcopy(graph)
        cls._check_kind(graph)
        cls._check_graph_attrs(graph)
        cls._check_nodes(graph)
        cls._check_edges(graph)
        cls._check_acyclic(graph)
        cls._check_downward(graph)
        cls._check_values(graph)
        return graph

    @classmethod
    def _check_kind(cls, graph: nx.DiGraph) -> None:
        kind = graph.graph.setdefault("kind", cls.KIND)
        if kind == cls.KIND:
            return
        if not isinstance(kind, str):
            raise ValueError(f"The graph attribute 'kind' is {kind!r}: it must be a str such as {cls.KIND!r}.")
        right = graph_class(kind)  # a ValueError for an unknown kind
        raise ValueError(
            f"The graph is of kind {kind!r}, so it is a {right.__name__}, not a {cls.__name__} (kind "
            f"{cls.KIND!r}): build it with {right.__name__}(g), or LayeredGraph.from_networkx(g), which picks the "
            "class by the kind."
        )

    @classmethod
    def _check_graph_attrs(cls, graph: nx.DiGraph) -> None:
        required = {"levels": "the level names, bottom to top", **cls.GRAPH_ATTRS}
        missing = [name for name in required if name not in graph.graph]
        if missing:
            needs = "; ".join(f"{name!r}: {required[name]}" for name in missing)
            made = f"Graphs from {cls.MADE_BY} have them; for" if cls.MADE_BY else "For"
            sets = " and ".join(f"g.graph[{name!r}]" for name in missing)
            raise ValueError(
                f"The graph lacks the graph attribute(s) {listed(missing)} of a stepwise {cls.KIND} graph ({needs}). "
                f"{made} a graph built by hand set {sets}."
            )
        levels = graph.graph["levels"]
        if not (isinstance(levels, Sequence) and not isinstance(levels, str) and levels):
            raise ValueError(f"The graph attribute 'levels' is {levels!r}: it must be a non-empty list of level names.")
        levels = list(levels)
        if not all(isinstance(name, str) for name in levels) or len(set(levels)) != len(levels):
            raise ValueError(f"The graph attribute 'levels' is {levels!r}: it must list distinct level names (str).")
        graph.graph["levels"] = levels
        for name, kind in cls.RECORDED_ATTRS.items():
            if name in graph.graph:
                value = coerce(graph.graph[name], kind)
                if value is None:
                    raise ValueError(
                        f"The graph attribute {name!r} is {graph.graph[name]!r} ({type(graph.graph[name]).__name__}):"
                        f" it must be {type_name(kind)}, as a stepwise {cls.KIND} graph records it."
                    )
                graph.graph[name] = value

    @classmethod
    def _check_nodes(cls, graph: nx.DiGraph) -> None:
        nodes = list(graph.nodes(data=True))
        schema = {**_LAYER_NODE_ATTRS, **cls.NODE_ATTRS}
        _missing(nodes, schema, "node", cls.KIND)
        levels = graph.graph["levels"]
        top = len(levels) - 1
        for key, data in nodes:
            for name, kind in schema.items():
                value = coerce(data[name], kind)
                if value is None:
                    raise ValueError(
                        f"Node {key!r} has {name}={data[name]!r} ({type(data[name]).__name__}); {name} must be "
                        f"{type_name(kind)}."
                    )
                data[name] = value
            if data["index"] < 0:
                raise ValueError(f"Node {key!r} has index {data['index']}; an index is at least 0.")
            if data["level"] not in levels:
                raise ValueError(
                    f"Node {key!r} has level {data['level']!r}, which is not in the graph's levels {levels}."
                )
            if key != node_key(data["level"], data["index"]):
                raise ValueError(
                    f"Node {key!r} has level {data['level']!r} and index {data['index']}, so its key must be "
                    f"{node_key(data['level'], data['index'])!r}."
                )
            depth = top - levels.index(data["level"])
            if data["depth"] != depth:
                raise ValueError(
                    f"Node {key!r} has depth {data['depth']}, but level {data['level']!r} lies at depth {depth} of "
                    f"levels {levels} (0 = top level)."
                )

    @classmethod
    def _check_edges(cls, graph: nx.DiGraph) -> None:
        edges = [((u, v), d) for u, v, d in graph.edges(data=True)]
        _missing(edges, cls.EDGE_ATTRS, "edge", cls.KIND)
        for (u, v), data in edges:
            for name, kind in cls.EDGE_ATTRS.items():
                value = coerce(data[name], kind)
                if value is None:
                    raise ValueError(
                        f"Edge {u!r} -> {v!r} has {name}={data[name]!r} ({type(data[name]).__name__}); {name} must "
                        f"be {type_name(kind)}."
                    )
                data[name] = value

    @classmethod
    def _check_acyclic(cls, graph: nx.DiGraph) -> None:
        if nx.is_directed_acyclic_graph(graph):  # linear time; the rest only names one cycle
            return
        cycle = _first_cycle(graph)
        path = " -> ".join(repr(u) for u, _ in cycle) + f" -> {cycle[0][0]!r}"
        raise ValueError(
            f"The graph has a cycle, {path}: edges run from a node to one of a lower level, so a layered graph "
            "has none."
        )

    @classmethod
    def _check_downward(cls, graph: nx.DiGraph) -> None:
        depth = graph.nodes(data="depth")
        for u, v in graph.edges:
            if depth[u] >= depth[v]:
                raise ValueError(
                    f"Edge {u!r} -> {v!r} runs from depth {depth[u]} to depth {depth[v]}: edges run from an upper "
                    "node to a lower one."
                )

    @classmethod
    def _check_values(cls, graph: nx.DiGraph) -> None:
        """The kind's own value checks, on the checked copy (structure and declared types already checked).

        Override in a kind: raise a ValueError naming what is wrong and where; values may be normalised in place.
        """

    @classmethod
    def _shared_attrs(cls, graphs: Sequence[LayeredGraph]) -> dict[str, Any]:
        """The graph attributes of the subgraph that several graphs of the kind share (``shared_subgraph``):
        by default those equal in every graph. A kind with a required attribute that may differ overrides it."""
        first = graphs[0].attrs
        return {k: v for k, v in first.items() if all(k in g._graph.graph and g._graph.graph[k] == v for g in graphs)}

    @classmethod
    def _merged(cls, what: str, found: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The attributes of a node (``what="node"``) or an edge (``"edge"``) that several graphs of the kind
        hold, as their shared subgraph keeps them: each declared attribute (``NODE_ATTRS``, ``EDGE_ATTRS``) that
        all of them hold, an int summed, a float averaged, any other kept when it is equal in all. A kind whose
        attributes combine otherwise overrides it."""
        schema = cls.NODE_ATTRS if what == "node" else cls.EDGE_ATTRS
        merged: dict[str, Any] = {}
        for name, kind in schema.items():
            values = [data[name] for data in found if name in data]
            if len(values) < len(found):
                continue
            if kind is int:
                merged[name] = sum(values)
            elif kind is float:
                merged[name] = float(np.mean(values))
            elif all(value == values[0] for value in values):
                merged[name] = copy.deepcopy(values[0])
        return merged

    # ---------------------------------------------------------------------------------------------- API

    @property
    def nodes(self) -> Any:
        """The nodes with their attributes (a networkx NodeView: ``graph.nodes["fc1:7"]["level"]``)."""
        return self._graph.nodes

    @property
    def edges(self) -> Any:
        """The edges upper -> lower with their attributes (a networkx OutEdgeView)."""
        return self._graph.edges

    @property
    def levels(self) -> list[str]:
        """The levels, bottom to top."""
        return list(self._graph.graph["levels"])

    @property
    def kind(self) -> str:
        """The kind of the graph (its class's ``KIND``): ``"dependency"``, ``"paths"``, ..."""
        return self._graph.graph["kind"]

    @property
    def attrs(self) -> dict[str, Any]:
        """The graph attributes (``levels``, ``kind``, and those of the kind), as a new dict."""
        return copy.deepcopy(self._graph.graph)

    def to_networkx(self) -> nx.DiGraph:
        """Return a deep copy of the graph as a ``networkx.DiGraph``."""
        return copy.deepcopy(self._graph)

    def subgraph(self: _G, *, levels: str | Sequence[str]) -> _G:
        """The nodes of some levels and the edges between them.

        Parameters
        ----------
        levels : str or sequence of str
            Names among :attr:`levels`.

        Returns
        -------
        LayeredGraph
            The induced subgraph, of the same class; graph attributes and node depths are those of this graph.

        Raises
        ------
        TypeError
            If ``levels`` is not a str or a sequence of str.
        ValueError
            If a name is not one of the graph's levels.
        """
        names = [levels] if isinstance(levels, str) else levels
        if not isinstance(names, Sequence) or not all(isinstance(name, str) for name in names):
            raise TypeError(
                f"levels must be a level name or a list of level names (str); got {levels!r}. "
                f"This graph's levels are {self.levels}."
            )
        for name in names:
            if name not in self.levels:
                raise ValueError(
                    unknown_name_message("level", name, "this graph", self.levels, f"Its levels are {self.levels}.")
                )
        keep = [n for n, level in self._graph.nodes(data="level") if level in names]
        return type(self)(self._graph.subgraph(keep).copy())

    def write(self, path: str | PathLike) -> None:
        """Write the graph to ``path``, atomically; the format follows the suffix.

        Parameters
        ----------
        path : str or path-like
            Ending in ``.graphml``, ``.gexf``, ``.json`` (networkx node-link) or ``.dot``.

        See Also
        --------
        stepwise.read_graph, stepwise.write_graph
        """
        from .readwrite import write_graph

        write_graph(self, path)

    def plot(self, *, ax: Axes | None = None) -> Figure:
        """Draw the graph level by level, top level on top (see :func:`stepwise.plot.plot_graph`).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw; a new figure by default.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .draw import plot_graph

        return plot_graph(self, ax=ax)

    def __len__(self) -> int:
        return self._graph.number_of_nodes()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LayeredGraph):
            return NotImplemented
        a, b = self._graph, other._graph
        return (
            type(self) is type(other)
            and a.graph == b.graph
            and dict(a.nodes(data=True)) == dict(b.nodes(data=True))
            and {(u, v): d for u, v, d in a.edges(data=True)} == {(u, v): d for u, v, d in b.edges(data=True)}
        )

    def __hash__(self) -> int:
        raise TypeError(f"unhashable type: {type(self).__name__!r} (a graph changes through its nodes and edges)")

    def _repr_items(self) -> list[str]:
        """Fields a kind shows first in its ``repr``, as ``"name=value"`` strings."""
        return []

    def __repr__(self) -> str:
        items = [
            *self._repr_items(),
            f"levels={len(self._graph.graph['levels'])}",
            f"nodes={self._graph.number_of_nodes()}",
            f"edges={self._graph.number_of_edges()}",
        ]
        return f"{type(self).__name__}({', '.join(items)})"
