"""Marked JSON: how a value a format cannot store natively is written as text, and read back.

A value of a type the format does not store (a list such as ``levels``, ``None``, a dict), and a text value that
itself starts with the marker, is written as :data:`MARKER` followed by its JSON; a reader decodes every marked
text back. With ``xml``, text holding a character XML cannot store as it is (control characters but tab and
newline, and a carriage return, which XML reads back as a newline) is marked too, as JSON escapes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import networkx as nx

__all__ = [
    "MARKER",
    "NOT_XML",
    "RESERVED",
    "attribute_dicts",
    "check_reserved",
    "check_xml_names",
    "decoded",
    "decoded_value",
    "encoded",
    "json_text",
    "marked",
]

#: Prefix of a text value that holds a JSON-encoded value.
MARKER = "stepwise-json:"
#: A character XML 1.0 cannot hold, or a carriage return, which XML parsers read back as a newline.
NOT_XML = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: Attribute names each format uses for its own fields: written as data, they would not read back as written.
RESERVED: dict[str, dict[str, set[str]]] = {
    "GraphML": {"graph": {"node_default", "edge_default"}, "node": set(), "edge": set()},
    "GEXF": {
        "graph": set(),
        "node": {"id", "label", "pid", "parents", "start", "end", "viz", "slices", "spells"},
        "edge": {"id", "label", "weight", "type", "start", "end", "viz", "slices", "spells", "networkx_key"},
    },
    "JSON": {"graph": set(), "node": {"id"}, "edge": {"source", "target", "key"}},
    "DOT": {"graph": set(), "node": set(), "edge": set()},
}


def attribute_dicts(g: nx.DiGraph) -> Iterator[tuple[str, object, dict]]:
    """Every attribute dictionary of ``g``: ('graph', None, attrs), ('node', key, attrs), ('edge', (u, v), attrs)."""
    yield "graph", None, g.graph
    for node, data in g.nodes(data=True):
        yield "node", node, data
    for u, v, data in g.edges(data=True):
        yield "edge", (u, v), data


def check_reserved(g: nx.DiGraph, fmt: str, path: Path) -> None:
    """Refuse an attribute named as one of the format's own fields (:data:`RESERVED`)."""
    for kind, item, data in attribute_dicts(g):
        clash = sorted(set(data) & RESERVED[fmt][kind])
        if clash:
            where = "the graph" if item is None else f"{kind} {item!r}"
            raise ValueError(
                f"Cannot write {path}: {where} has the attribute(s) {clash}, which {fmt} uses for its own fields, so "
                "they would not read back as written. Rename them, or write GraphML, which keeps any name."
            )


def check_xml_names(g: nx.DiGraph, fmt: str, path: Path) -> None:
    """Node keys and attribute names are written as they are: refuse a character XML cannot hold."""

    def check(name: object, what: str) -> None:
        found = NOT_XML.search(str(name))
        if found:
            raise ValueError(
                f"Cannot write {path}: {what} holds the character {found.group()!r}, which {fmt} (XML) cannot store "
                "as it is. Rename it, or write JSON, which stores any text."
            )

    for node in g:
        check(node, f"the node key {node!r}")
    for kind, item, data in attribute_dicts(g):
        for name in data:
            check(name, f"the attribute name {name!r} of " + ("the graph" if item is None else f"{kind} {item!r}"))


def json_text(value: object, where: str) -> str:
    """``value`` as marked JSON text; a TypeError naming ``where`` for a value JSON cannot hold."""
    try:
        return MARKER + json.dumps(value)
    except TypeError as error:
        raise TypeError(
            f"The value of {where} cannot be written ({error}): store numbers, text, booleans, None, or lists "
            "and dicts of them."
        ) from error


def marked(value: object) -> bool:
    """Whether ``value`` is text that holds marked JSON."""
    return isinstance(value, str) and value.startswith(MARKER)


def encoded(
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
            return str in native and not marked(value) and not (xml and NOT_XML.search(value))
        return isinstance(value, native)

    stored: dict[tuple[str, str], set[type]] = {}
    for kind, _, data in attribute_dicts(g):
        for name, value in data.items():
            stored.setdefault((kind, name), set()).add(type(value) if plain(value) else str)
    mixed = {key for key, types in stored.items() if one_type_per_name and len(types) > 1}
    for kind, item, data in attribute_dicts(g):
        for name, value in data.items():
            if (kind, name) in mixed or not plain(value):
                where = f"attribute {name!r} of " + ("the graph" if item is None else f"{kind} {item!r}")
                data[name] = json_text(value, where)
    return g


def decoded_value(value: str, where: str) -> object:
    """The value a marked text holds; ``where`` names the value (and the file) in the error."""
    try:
        return json.loads(value[len(MARKER) :])
    except (ValueError, RecursionError) as error:
        raise ValueError(
            f"Cannot read {where}: text marked {MARKER!r} but not JSON after the marker ({error}); the file was "
            "damaged or not written by stepwise."
        ) from error


def decoded(g: nx.DiGraph, path: Path) -> nx.DiGraph:
    """``g`` with every marked text value decoded, in place; ``path`` names the file in errors."""
    for kind, item, data in attribute_dicts(g):
        for name, value in data.items():
            if marked(value):
                owner = "the graph" if item is None else f"{kind} {item!r}"
                data[name] = decoded_value(value, f"{path}: attribute {name!r} of {owner}")
    return g
