"""Imports run one way, read from the source: one table of the rooms each room may import, checked once.

A *room* is a part of the layout (``docs/design.md``): ``core`` (what every method shares), ``graphs`` (no torch),
one package per method (``ssa``, ``perturb``, ``paths``, ``inference``, ``sorter``), ``models``, the ``explorer``
and ``cli``, which see every method, and ``top`` (the package's lazy ``__init__``, ``stepwise.plot`` and the
version). Every import of a module of the library is an edge between two rooms; the table lists the allowed ones.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("stepwise", "perturb")
METHODS = {"ssa", "perturb", "paths", "inference", "sorter"}
#: room -> the rooms it may import (besides itself).
ALLOWED = {
    "core": set(),
    "graphs": {"core"},
    **{method: {"core", "graphs"} for method in METHODS},
    "models": set(),
    "explorer": {"core", "graphs", "models", *METHODS},
    "cli": {"core", "graphs", "models", "explorer", "top", *METHODS},
    "top": {"core", "graphs", "ssa"},  # stepwise.plot gathers the figures of graphs and ssa
}
#: The modules of core that graphs may use: they import no torch.
TORCH_FREE_CORE = {"stepwise.core.validation", "stepwise.core.io"}
#: Shared by every room: the version string and the lazy re-exports.
EVERYWHERE = {"stepwise._version", "stepwise._lazy"}


@dataclass(frozen=True)
class Edge:
    file: str  # relative to the repository
    line: int
    importer: str  # dotted module name
    imported: str  # dotted module name
    names: tuple[str, ...]  # names taken from it (``from X import a, b``), empty for ``import X``
    runtime: bool  # False inside ``if TYPE_CHECKING:``


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolved(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path) -> Iterator[Edge]:
    """Every import statement of ``path``, anywhere in the file (functions included)."""
    importer = module_name(path)
    is_package = path.name == "__init__.py"
    file = path.relative_to(ROOT).as_posix()

    def visit(node: ast.AST, runtime: bool) -> Iterator[Edge]:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.body:
                yield from visit(child, False)
            for child in node.orelse:
                yield from visit(child, runtime)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Edge(file, node.lineno, importer, alias.name, (), runtime)
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names)
            yield Edge(file, node.lineno, importer, resolved(node, importer, is_package), names, runtime)
        for child in ast.iter_child_nodes(node):
            yield from visit(child, runtime)

    yield from visit(ast.parse(path.read_text(encoding="utf-8")), True)


def library_files() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def room(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "perturb":
        return "perturb"
    if len(parts) == 1 or parts[1] in ("plot", "__main__"):
        return "top" if parts[1:] != ["__main__"] else "cli"
    return parts[1] if not parts[1].startswith("_") else "top"


def internal(edge: Edge) -> bool:
    return edge.imported.split(".")[0] in PACKAGES


def module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def public_names(path: Path) -> set[str] | None:
    """The literal ``__all__`` of a module, or None when it has none."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value is not None:
            try:
                return set(ast.literal_eval(node.value))
            except ValueError:  # ["__version__", *_EXPORTS]: the lazy exports' table
                return {e.value for e in node.value.elts if isinstance(e, ast.Constant)} | lazy_exports(path)
    return None


def lazy_exports(path: Path) -> set[str]:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


EDGES = [edge for path in library_files() for edge in imports_of(path)]


def test_the_scan_reads_the_layout() -> None:
    rooms = {room(module_name(path)) for path in library_files()}
    assert {"core", "graphs", "ssa", "perturb", "cli", "models", "top"} <= rooms
    assert room("stepwise.core.levels") == "core" and room("stepwise.graphs.readwrite.gexf") == "graphs"
    assert (
        room("stepwise.plot") == "top" and room("stepwise.__main__") == "cli" and room("perturb.ranking") == "perturb"
    )
    assert any(e.imported == "stepwise.core.levels" and e.importer.startswith("stepwise.ssa") for e in EDGES)
    edge = next(imports_of(ROOT / "stepwise" / "ssa" / "__init__.py"))
    assert edge.imported == "stepwise._lazy" and edge.names == ("lazy_exports",)


def test_rooms_import_only_what_the_table_allows() -> None:
    wrong = [
        f"{e.file}:{e.line}: {room(e.importer)} imports {e.imported} ({room(e.imported)})"
        for e in EDGES
        if internal(e)
        and e.imported not in EVERYWHERE
        and room(e.imported) != room(e.importer)
        and room(e.imported) not in ALLOWED[room(e.importer)]
    ]
    assert not wrong, "Imports against the layout (docs/design.md):\n" + "\n".join(wrong)


def test_graphs_use_only_the_torch_free_core_and_import_no_torch() -> None:
    wrong = [
        f"{e.file}:{e.line}: imports {e.imported}"
        for e in EDGES
        if room(e.importer) == "graphs"
        and e.runtime
        and (
            e.imported.split(".")[0] == "torch"
            or (room(e.imported) == "core" and e.imported not in TORCH_FREE_CORE and internal(e))
        )
    ]
    assert not wrong, "stepwise.graphs must run without torch:\n" + "\n".join(wrong)
    modules = sorted(
        module_name(path) for path in (ROOT / "stepwise" / "graphs").rglob("*.py") if path.name != "draw.py"
    )
    code = "import sys, importlib; [importlib.import_module(m) for m in sys.argv[1:]]; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", modules


def test_only_the_command_line_and_the_explorer_import_perturb() -> None:
    """DESIGN.md: only the command line and the explorer see every method."""
    wrong = [
        f"{e.file}:{e.line}: {e.importer} imports {e.imported}"
        for e in EDGES
        if e.imported.split(".")[0] == "perturb" and room(e.importer) not in ("perturb", "cli", "explorer")
    ]
    assert not wrong, "\n".join(wrong)


def test_every_name_imported_across_modules_is_public() -> None:
    wrong = []
    for e in EDGES:
        target = module_file(e.imported) if internal(e) and e.imported != e.importer else None
        if target is None:
            continue
        public = public_names(target)
        for name in e.names:
            if module_file(f"{e.imported}.{name}") is not None:
                continue  # a sub-module
            if public is None or name not in public:
                wrong.append(f"{e.file}:{e.line}: {name} from {e.imported}")
    assert not wrong, "Names imported across modules must be in the module's __all__:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("code", "absent"),
    [
        ("import stepwise", {"torch", "matplotlib", "pandas", "scipy", "sklearn", "stepwise.cli", "stepwise.models"}),
        ("import stepwise.models", {"matplotlib", "sklearn"}),
        ("import stepwise, perturb", {"matplotlib", "seaborn", "captum", "scipy.cluster", "stepwise.cli"}),
        ("import stepwise; stepwise.DependencyGraph", {"torch", "matplotlib"}),
    ],
)
def test_imports_stay_light(code: str, absent: set[str]) -> None:
    probe = f"import sys; {code}; print(sorted(set({sorted(absent)!r}) & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_public_names_of_the_package_import() -> None:
    import stepwise

    for name in stepwise.__all__:
        assert getattr(stepwise, name) is not None, name
    assert "plot_graph" in dir(stepwise.plot)
