"""What the source never does, found by reading it: write a file other than atomically, or unpickle a file."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def dotted(node: ast.expr) -> str:
    """``torch.export.load`` for the call ``torch.export.load(...)``; ``?`` stands for what is not a name."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return "?"


def source_nodes(*folders: str) -> Iterator[tuple[str, ast.AST]]:
    """(file relative to the repository, node) of every node of the Python files in ``folders``."""
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                yield path.relative_to(ROOT).as_posix(), node


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


# ------------------------------------------------------------------------------------------- atomic writes

# Calls that write a file: the name called, or how the name ends (".save" is torch.save, PIL's image.save, ...).
WRITERS = {"open", "json.dump", "pickle.dump", "shutil.copy", "shutil.copyfile", "shutil.copy2", "shutil.move"}
WRITER_ENDINGS = (".write_text", ".write_bytes", ".savefig", ".save", ".savez", ".savetxt", ".to_pickle")
PANDAS_WRITERS = (".to_csv", ".to_json", ".to_parquet", ".to_excel", ".to_html", ".to_latex", ".to_markdown")
# (file, call): why the call does not write a file by itself.
NOT_A_FILE = {
    ("stepwise/core/io.py", "fig.savefig"): "renders into a BytesIO, which write_file writes atomically",
    ("examples/train_digits.py", "torch.save"): "saves into a BytesIO, which write_file writes atomically",
    ("examples/train_digits_gru.py", "torch.save"): "saves into a BytesIO, which write_file writes atomically",
    ("examples/train_minilm_probe.py", "torch.save"): "saves into a BytesIO, which write_file writes atomically",
}


def writes_a_file(call: ast.Call, name: str) -> bool:
    if name == "open":
        mode = call.args[1] if len(call.args) > 1 else keyword(call, "mode")
        return mode is not None and not (isinstance(mode, ast.Constant) and set(str(mode.value)) <= set("rbt"))
    if name.endswith(PANDAS_WRITERS):  # with no path, pandas returns the text
        return bool(call.args) or keyword(call, "path_or_buf") is not None
    return name in WRITERS or name.endswith(WRITER_ENDINGS)


def test_every_file_is_written_through_atomic_write():
    found = [
        f"{file}:{node.lineno}: {dotted(node.func)}(...)"
        for file, node in source_nodes("stepwise", "perturb", "examples")
        if isinstance(node, ast.Call)
        and file != "stepwise/core/io.py"  # the atomic writer itself
        and writes_a_file(node, dotted(node.func))
        and (file, dotted(node.func)) not in NOT_A_FILE
    ]
    assert not found, (
        "These calls write a file directly; write it with stepwise.core.io.atomic_write (or write_file "
        "or save_figure), so that a failure never leaves half a file:\n" + "\n".join(found)
    )


# ------------------------------------------------------------------------------------------------ pickles

UNPICKLERS = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "joblib", "shelve", "marshal"}
# (file, call): why the call may unpickle.
TRUSTED_AS_CODE = {
    ("stepwise/cli/loading.py", "torch.export.load"): (
        "--model FILE.pt2 is the user's own model, a program, trusted as --model package.module:factory is: "
        "torch.export.load unpickles parts of the archive"
    ),
}


def unpickles(node: ast.AST) -> str | None:
    """What ``node`` does that can unpickle, or None."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        found = [module for module in modules if module.split(".")[0] in UNPICKLERS]
        return f"imports {found[0]}" if found else None
    if not isinstance(node, ast.Call):
        return None
    name = dotted(node.func)
    if name == "torch.load" and not is_true(keyword(node, "weights_only")):
        return "torch.load without weights_only=True"
    if name in {"np.load", "numpy.load"} and is_true(keyword(node, "allow_pickle")):
        return f"{name}(allow_pickle=True)"
    if name.endswith(".read_pickle") or name == "torch.export.load":
        return name
    return None


def test_nothing_is_unpickled():
    found = [
        f"{file}:{node.lineno}: {what}"
        for file, node in source_nodes("stepwise", "perturb", "examples", "tests")
        if (what := unpickles(node)) and not (isinstance(node, ast.Call) and (file, what) in TRUSTED_AS_CODE)
    ]
    assert not found, (
        "Unpickling runs code from the file. Load tensors with torch.load(..., weights_only=True), graphs with "
        "stepwise.read_graph, tables as text:\n" + "\n".join(found)
    )


def test_the_scans_find_what_they_look_for():
    code = """
import pickle
from joblib import load
open("x.json", "w").write("{}")
fig.savefig("figure.png")
table.to_csv("table.csv")
torch.save(state, "weights.pt")
state = torch.load("weights.pt")
state = torch.load("weights.pt", weights_only=False)
array = np.load("a.npy", allow_pickle=True)
frame = pd.read_pickle("frame.pkl")
"""
    nodes = list(ast.walk(ast.parse(code)))
    calls = [node for node in nodes if isinstance(node, ast.Call)]
    assert sorted(dotted(c.func) for c in calls if writes_a_file(c, dotted(c.func))) == [
        "fig.savefig",
        "open",
        "table.to_csv",
        "torch.save",
    ]
    assert [unpickles(node) for node in nodes if unpickles(node)] == [
        "imports pickle",
        "imports joblib",
        "torch.load without weights_only=True",
        "torch.load without weights_only=True",
        "np.load(allow_pickle=True)",
        "pd.read_pickle",
    ]
    harmless = 'open("x.json").read(); table.to_csv(index=False); torch.load(p, weights_only=True); json.dumps(x)'
    assert not [
        node
        for node in ast.walk(ast.parse(harmless))
        if unpickles(node) or (isinstance(node, ast.Call) and writes_a_file(node, dotted(node.func)))
    ]
