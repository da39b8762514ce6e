"""The ``stepwise`` command as a whole: its parser composed of the command modules, help, exit statuses, bad
arguments that stop it with status 2, and a start that imports no heavy library."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from tests.cli.common import make_files, model_args, run_command

import stepwise
from stepwise.cli import build_parser, main
from stepwise.cli.options import UsageError, add_common_options
from stepwise.core.io import write_file


# the module stepwise.cli.main (the package's attribute of that name is the function)
main_module = importlib.import_module("stepwise.cli.main")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_files(tmp_path_factory.mktemp("inputs"))


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


# -------------------------------------------------------------------------------------- help and options


def test_every_option_of_every_command_is_explained() -> None:
    parser = build_parser()
    commands = subparsers(parser)
    assert {"demo", "analyse", "perturb", "levels"} <= set(commands)
    assert len(commands) == len(main_module.COMMANDS)  # one command per module named
    for name, command in [("stepwise", parser), *commands.items()]:
        assert command.description, name
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help and len(action.help) > 10, (name, action.option_strings)


@pytest.mark.parametrize("command", [[], ["demo"], ["analyse"], ["perturb"], ["levels"]])
def test_help_exits_zero(command: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        main([*command, "--help"])
    assert stop.value.code == 0
    assert "usage: stepwise" in capsys.readouterr().out


def dtype_help(command: str) -> str:
    action = next(a for a in subparsers(build_parser())[command]._actions if "--dtype" in a.option_strings)
    return action.help or ""


def test_dtype_is_explained_in_each_commands_own_terms() -> None:
    for command in ("demo", "analyse"):
        assert "ω" in dtype_help(command)
    ranking = dtype_help("perturb")
    assert "ω" not in ranking and "probability" in ranking and "correlates" in ranking


# -------------------------------------------------------------------------------------- the register pattern


def hello_command(behaviour: dict[str, BaseException | None]) -> types.ModuleType:
    """A command module as another developer would write it: ``register`` and ``run``."""
    module = types.ModuleType("stepwise.cli.hello")

    def run(args: argparse.Namespace, progress: object) -> None:
        error = behaviour["raise"]
        if error is not None:
            raise error
        print(f"hello {args.name}")

    def register(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
        parser = commands.add_parser("hello", help="say hello to a name", description="Say hello.")
        parser.add_argument("name", help="whom to greet, by name")
        add_common_options(parser, "results/hello")
        parser.set_defaults(run=run, parser=parser)
        return parser

    module.register = register  # type: ignore[attr-defined]
    return module


@pytest.mark.parametrize(
    ("error", "status"),
    [(None, 0), (UsageError("--name: no such person"), 2), (ValueError("it broke"), 1), (KeyboardInterrupt(), 130)],
)
def test_a_command_module_added_to_the_list_is_a_command_with_the_exit_statuses(
    error: BaseException | None, status: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    behaviour: dict[str, BaseException | None] = {"raise": error}
    monkeypatch.setitem(sys.modules, "stepwise.cli.hello", hello_command(behaviour))
    monkeypatch.setattr(main_module, "COMMANDS", [*main_module.COMMANDS, "hello"])
    assert "hello" in subparsers(build_parser())
    if status == 2:
        with pytest.raises(SystemExit) as stop:
            main(["hello", "Ada"])
        code = stop.value.code
    else:
        code = main(["hello", "Ada"])
    captured = capsys.readouterr()
    assert code == status, captured.err
    expected = {
        0: ("hello Ada", ""),
        2: ("", "usage: stepwise hello"),
        1: ("", "stepwise hello: error: it broke"),
        130: ("", "stepwise: interrupted; the files written so far are complete."),
    }[status]
    assert expected[0] in captured.out and expected[1] in captured.err
    if status == 2:
        assert "stepwise hello: error: --name: no such person" in captured.err


# -------------------------------------------------------------------------------------- bad arguments

# case: (options replaced in a good command line, options added, what the message says)
BAD = {
    "missing data file": ({"--data": "{tmp}/nowhere.pt"}, [], "no such file or folder"),
    "missing model file": ({"--model": "{tmp}/nowhere.pt2"}, [], "no such file"),
    "module without the factory": ({"--model": "stepwise.models:digits_cn"}, [], "Did you mean 'digits_cnn'"),
    "module that does not import": ({"--model": "no_such_package.nets:build"}, [], "cannot import module"),
    "level typo": ({}, ["--levels", "features.11", "softmax"], "Did you mean 'features.1'"),
    "data the model rejects": ({"--data": "{rgb}"}, [], "the model rejects inputs of shape (3, 16, 16)"),
    "weights of another architecture": ({"--weights": "{linear}"}, [], "does not match the architecture"),
    "a pickled model as weights": ({"--weights": "{pickled}"}, [], "weights_only=True"),
    "a TorchScript model": ({"--model": "{scripted}"}, [], "TorchScript"),
    "labels the model does not score": ({"--data": "{bad_labels}"}, [], "labels run from 10 to 12"),
    "a class the model does not score": ({}, ["--classes", "12"], "--classes [12]"),
    "an image folder without a size": ({"--data": "{images}"}, [], "--image-size"),
    "branching below 1": ({}, ["--branching", "0"], "expected a number of at least 1"),
    "min-images below 1": ({}, ["--min-images", "0"], "expected a number of at least 1"),
    "a rule that does not exist": ({}, ["--rule", "gradiant"], "invalid choice: 'gradiant'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_analyse_arguments_stop_with_status_2(
    case: str, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    replaced, added, message = BAD[case]
    names = {"tmp": tmp_path, **files}
    options = {"--model": "stepwise.models:DigitsCNN", "--weights": str(files["weights"])}
    options["--data"] = str(files["data"])
    options.update({key: value.format(**names) for key, value in replaced.items()})
    out = tmp_path / "out"
    argv = ["analyse", *[part for pair in options.items() for part in pair], *added, "--out", str(out)]
    start = time.perf_counter()
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "usage: stepwise analyse" in error and message in error, error
    assert not out.exists(), "the command wrote files before it found the bad argument"
    assert time.perf_counter() - start < 20


def test_bad_argument_exit_status_of_the_installed_command(files: dict[str, Path], tmp_path: Path) -> None:
    result = run_command(*model_args("analyse", files, "--data", str(tmp_path / "missing.pt")))
    assert result.returncode == 2
    assert "stepwise analyse: error: --data" in result.stderr and "no such file" in result.stderr
    assert "Traceback" not in result.stderr


def test_python_dash_m_runs_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stepwise", "--version"], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"stepwise {stepwise.__version__}"


# -------------------------------------------------------------------------------------- a light start

HEAVY = (
    "pandas",
    "matplotlib",
    "seaborn",
    "scipy",
    "captum",
    "perturb",
    "sklearn",
    "networkx",
    "PIL",
)  # torch imports tqdm
IMPORTED = """
import sys
from stepwise.cli import main
try:
    main({argv!r})
except SystemExit as stop:
    code = stop.code
print("status", code)
print("heavy", sorted({{name.split('.')[0] for name in sys.modules}} & set({heavy!r})))
"""


@pytest.mark.parametrize("argv", [["--help"], ["analyse", "--help"], ["analyse", "--fence", "0"], ["perturb"]])
def test_help_and_usage_errors_import_no_heavy_library(argv: list[str]) -> None:
    code = IMPORTED.format(argv=argv, heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if line.startswith(("status", "heavy")))
    assert lines["status"] == ("0" if "--help" in argv else "2"), result.stderr
    assert lines["heavy"] == "[]", f"{argv}: imported {lines['heavy']}"


def test_write_file_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "note.md"
    write_file(target, "first")
    with pytest.raises(TypeError):
        write_file(target, 3)  # type: ignore[arg-type]
    assert target.read_text() == "first"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_file(tmp_path / "missing" / "note.md", b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["note.md"]
