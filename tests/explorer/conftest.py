"""A small results folder written by ``stepwise demo`` (two classes, every method), shared by the explorer's tests,
and a parser of the page it writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from stepwise.cli import main

#: The views of a page with every kind of result, in the order of its tabs.
VIEWS = ["dependency", "perturbation", "paths", "inference", "sorter"]


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    graph: str | None  # the data-graph of the drawing it sits in
    panel: str | None  # the data-panel of the view it sits in


class Page(HTMLParser):
    """What the tests read from a page: every element with its attributes, and the text of each script."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.scripts: list[tuple[dict[str, str], str]] = []
        self._stack: list[tuple[str, dict[str, str]]] = []
        self._script: tuple[dict[str, str], list[str]] | None = None

    def _element(self, tag: str, attrs: list[tuple[str, str | None]]) -> dict[str, str]:
        """Record an element with the drawing and the view it sits in (its own, when it is one)."""
        values = {k: v or "" for k, v in attrs}
        inside = [a for _, a in self._stack] + [values]
        graph = next((a["data-graph"] for a in reversed(inside) if "data-graph" in a), None)
        panel = next((a["data-panel"] for a in reversed(inside) if "data-panel" in a), None)
        self.elements.append(Element(tag, values, graph, panel))
        return values

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = self._element(tag, attrs)
        if tag == "script":
            self._script = (values, [])
        elif tag not in ("meta", "img", "circle", "line", "rect", "input", "br", "link"):
            self._stack.append((tag, values))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._element(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script[0], "".join(self._script[1])))
            self._script = None
            return
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script[1].append(data)

    @property
    def data(self) -> dict:
        blocks = [text for attrs, text in self.scripts if attrs.get("id") == "stepwise-data"]
        assert len(blocks) == 1, f"{len(blocks)} data blocks"
        assert attrs_of_data(self)["type"] == "application/json"
        return json.loads(blocks[0])


def attrs_of_data(page: Page) -> dict[str, str]:
    return next(attrs for attrs, _ in page.scripts if attrs.get("id") == "stepwise-data")


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


@pytest.fixture(scope="session")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``stepwise demo`` on two classes: dependency graphs, rankings, paths, inference graphs, the sorter, and
    the page (``report.html``)."""
    out = tmp_path_factory.mktemp("explorer") / "demo"
    argv = ["demo", "--classes", "0", "1", "--max-images", "5", "--samples", "8", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="session")
def demo_page(demo_folder: Path) -> Page:
    return parse(demo_folder / "report.html")
