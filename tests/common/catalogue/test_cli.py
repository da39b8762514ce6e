"""The catalogue of bad inputs on the command line: each bad argument of a command stops it with exit status 2 and
the fix on stderr, before any long work, writing nothing (see test_api.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


from tests.common.catalogue.bench import (
    ANALYSE,
    DIGITS,
    PERTURB,
    BadCommand,
    check_command,
)


# ------------------------------------------------------------------------------------------------ command line

COMMANDS = {
    "demo --fence 0": BadCommand(("demo", "--fence", "0"), "expected a number in (0, inf)"),
    "demo --sign up": BadCommand(("demo", "--sign", "up"), "choose from 'positive', 'negative', 'both'"),
    "demo --min-probability 1.5": BadCommand(("demo", "--min-probability", "1.5"), "expected a number in [0, 1]"),
    "demo --samples 1": BadCommand(("demo", "--samples", "1"), "expected at least 2 resamples"),
    "demo --clusters 0": BadCommand(("demo", "--clusters", "0"), "expected a number of at least 1"),
    "demo --dtype float16": BadCommand(("demo", "--dtype", "float16"), "choose from 'float32', 'float64'"),
    "demo --max-images 0": BadCommand(("demo", "--max-images", "0"), "expected a number of at least 1"),
    "demo --split val": BadCommand(("demo", "--split", "val"), "choose from 'train', 'test', 'all'"),
    "demo --levels out of order": BadCommand(
        ("demo", "--levels", "features.3", "features.1", "softmax"), "List levels bottom to top"
    ),
    "demo --classes 12": BadCommand(("demo", "--classes", "3", "12"), "the model scores 10 classes, 0 to 9"),
    "demo --out an existing file": BadCommand(("demo", "--out", "{tmp}/taken"), "name a folder"),
    "analyse --data of one dimension": BadCommand(
        ("analyse", *DIGITS, "--data", "{flat}"), "expected a batch (N, ...) with N >= 1"
    ),
    "analyse --data of integer pixels": BadCommand(
        ("analyse", *DIGITS, "--data", "{uint8}"), "save floating-point inputs, scaled as the model expects"
    ),
    "analyse --data with fewer labels than inputs": BadCommand(
        ("analyse", *DIGITS, "--data", "{few_labels}"), "pass one label per input"
    ),
    "analyse --data of float labels": BadCommand(
        ("analyse", *DIGITS, "--data", "{float_labels}"), "labels must be one integer class index per input"
    ),
    "analyse --data holding a dict": BadCommand(
        ("analyse", *DIGITS, "--data", "{dict}"),
        "the model rejects the keys ['inputs']. Save a dict whose keys are the arguments of the model's forward",
    ),
    "analyse --data with a NaN input": BadCommand(
        ("analyse", *DIGITS, "--data", "{nan}"), "(positions 7); remove or replace them"
    ),
    "analyse --model of an unknown form": BadCommand(
        ("analyse", "--model", "mynet", "--data", "{data}"), "Pass package.module:factory"
    ),
    "analyse --model without a factory name": BadCommand(
        ("analyse", "--model", "stepwise.models:", "--data", "{data}"), "write package.module:factory"
    ),
    "analyse --model naming a constant": BadCommand(
        ("analyse", "--model", "stepwise.models:IMAGE_SIZE", "--data", "{data}"),
        "'IMAGE_SIZE' is an int, not a callable that returns",
    ),
    "analyse --model whose factory returns data": BadCommand(
        ("analyse", "--model", "stepwise.models:digits_data", "--data", "{data}"), "it must return a torch.nn.Module"
    ),
    "analyse --model whose factory needs arguments": BadCommand(
        ("analyse", "--model", "torch.nn:Linear", "--data", "{data}"), "must build the model without arguments"
    ),
    "analyse --model that returns a tuple": BadCommand(
        ("analyse", "--model", "tests.common.catalogue.bench:digits_pair", "--data", "{data}"),
        "Use the Python API for other",
    ),
    "analyse --model whose torchvision does not match torch": BadCommand(
        ("analyse", "--model", "tests.common.catalogue.bench:mismatched_torchvision", "--data", "{data}"),
        "Install torch and torchvision as a matching pair from the same index, e.g. pip install torch==2.14.1",
    ),
    "analyse --min-images 0": BadCommand((*ANALYSE, "--min-images", "0"), "expected a number of at least 1"),
    "analyse --model a state dict file": BadCommand(
        ("analyse", "--model", "{weights}", "--data", "{data}"), "save model.state_dict() and pass it with --weights"
    ),
    "analyse --weights a data file": BadCommand(
        (*ANALYSE, "--weights", "{data}"), "Save it with torch.save(model.state_dict(), path)"
    ),
    "analyse --mean of two numbers for RGB": BadCommand(
        ("analyse", *DIGITS, "--data", "{images}", "--image-size", "16", "--mean", "0.5", "0.5"),
        "--mean takes 1 or 3 numbers (one per channel)",
    ),
    "analyse --std 0": BadCommand(
        ("analyse", *DIGITS, "--data", "{images}", "--image-size", "16", "--std", "0"), "--std must be positive"
    ),
    "analyse without --model": BadCommand(
        ("analyse", "--data", "{data}"), "the following arguments are required: --model"
    ),
    "perturb --indices 300 of 300": BadCommand((*PERTURB, "--indices", "0", "300"), "(0 to 299)"),
    "perturb --target without --indices": BadCommand((*PERTURB, "--target", "3"), "--target needs --indices"),
    "perturb --target 10 of 10 classes": BadCommand(
        (*PERTURB, "--indices", "0", "--target", "10"), "the model scores classes 0 to 9"
    ),
    "perturb --sigma -1": BadCommand((*PERTURB, "--sigma", "-1"), "expected a number in [0, inf)"),
    "perturb --top 0": BadCommand((*PERTURB, "--top", "0"), "expected a number of at least 1"),
    "perturb --seed -3": BadCommand((*PERTURB, "--seed", "-3"), "expected a number of at least 0"),
    "levels --input-shape the model rejects": BadCommand(
        ("levels", *DIGITS, "--input-shape", "3", "8", "8"), "Give the shape of one input as the model expects it"
    ),
    "levels --input-shape 0 16": BadCommand(
        ("levels", *DIGITS, "--input-shape", "0", "16"), "expected a number of at least 1"
    ),
    "levels with both --data and --input-shape": BadCommand(
        ("levels", *DIGITS, "--data", "{data}", "--input-shape", "1", "16", "16"), "not allowed with argument"
    ),
    "levels with neither --data nor --input-shape": BadCommand(
        ("levels", *DIGITS), "one of the arguments --data --input-shape is required"
    ),
    "report on a folder with nothing it knows": BadCommand(("report", "{tmp}"), "holds no results stepwise knows"),
    "report on a file": BadCommand(("report", "{tmp}/taken"), "is not a folder: give the folder a stepwise command"),
    "report --out a folder": BadCommand(("report", "{tmp}", "--out", "{tmp}"), "give the path of the HTML file"),
    "report --out in a missing folder": BadCommand(
        ("report", "{tmp}", "--out", "{tmp}/missing/page.html"), "does not exist; create it first"
    ),
    "an unknown command": BadCommand(
        ("analyze", *DIGITS), "invalid choice: 'analyze' (choose from 'demo', 'analyse', 'perturb',"
    ),
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_line(
    name: str,
    command_files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    check_command(COMMANDS[name], command_files, tmp_path, capsys, monkeypatch)
