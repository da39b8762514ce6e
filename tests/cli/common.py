"""What the command-line tests share: the installed command in a subprocess, small data files, file checks."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import torch
from PIL import Image
from tests.helpers import digits_subset
from torch import nn

import stepwise
from stepwise.models import digits_cnn

SCRIPT = Path(sys.executable).parent / "stepwise"
PNG = b"\x89PNG\r\n\x1a\n"
SHIPPED_LEVELS = ["features.1", "features.3", "features.6", "classifier.1", "softmax"]


def run_command(*args: str, timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The installed console script, in a subprocess, as a user runs it."""
    if not SCRIPT.exists():
        raise RuntimeError(f"{SCRIPT} is missing: install the package with 'pip install -e .'.")
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd)


def make_files(folder: Path) -> dict[str, Path]:
    """A small labelled data file (4 training images of each of classes 0, 1, 2), the same images without labels,
    12 unlabelled images of class 3 only, the shipped weights as a state dict, files that are wrong in one way
    each, and an image folder (3 images of each of classes 0 and 1)."""
    inputs, labels = digits_subset((0, 1, 2), 4)
    threes, _ = digits_subset((3,), 12)
    names = ("data", "unlabelled", "threes", "weights", "rgb", "bad_labels", "linear", "pickled", "scripted")
    paths = {name: folder / f"{name}.pt" for name in names}
    torch.save((inputs, labels), paths["data"])
    torch.save(inputs, paths["unlabelled"])
    torch.save(threes, paths["threes"])
    torch.save(digits_cnn().state_dict(), paths["weights"])
    torch.save(inputs.repeat(1, 3, 1, 1), paths["rgb"])
    torch.save((inputs, labels + 10), paths["bad_labels"])
    torch.save(nn.Linear(3, 2).state_dict(), paths["linear"])
    torch.save(nn.Linear(3, 2), paths["pickled"])
    with warnings.catch_warnings():  # TorchScript is deprecated; users still have such files
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(nn.Sequential(nn.Linear(3, 2))), paths["scripted"])
    paths["images"] = folder / "images"
    folder_images, folder_labels = digits_subset((0, 1), 3)
    for c in (0, 1):
        (paths["images"] / str(c)).mkdir(parents=True)
        for position, image in enumerate(folder_images[folder_labels == c]):
            pixels = (image[0] * 255).round().to(torch.uint8).numpy()
            Image.fromarray(pixels, mode="L").save(paths["images"] / str(c) / f"{position}.png")
    return paths


def model_args(command: str, files: dict[str, Path], *extra: str) -> list[str]:
    """``command`` on the untrained architecture with the shipped weights loaded from a state dict."""
    return [command, "--model", "stepwise.models:DigitsCNN", "--weights", str(files["weights"]), *extra]


def check_graph_files(out: Path, labels: list[str]) -> None:
    """Each class's graph in GraphML and JSON (equal), its drawing and outlier frequencies; no temporary file."""
    for label in labels:
        graphml = stepwise.read_graph(out / f"class_{label}.graphml")
        assert stepwise.read_graph(out / f"class_{label}.json") == graphml
        assert graphml.target == int(label) and len(graphml) >= 1
        for figure in (f"class_{label}.png", f"class_{label}_outlier_frequency.png"):
            assert (out / figure).read_bytes().startswith(PNG)
    assert not list(out.glob(".*.tmp")), "a temporary file was left behind"
