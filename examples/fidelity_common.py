"""What the fidelity experiments share: where results go, how inputs are chosen, how results are written.

Inputs are chosen as the SSA paper chose them and as ``stepwise demo`` does, with :func:`stepwise.select_inputs`: per
class, the first (in data order) ``n`` training images that the model classifies correctly with probability at least
0.99. Every analysis runs in float64, where the softmax of a confident input does not round to exactly 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

from torch import Tensor, nn

import stepwise
from stepwise.core.io import save_figure, write_file
from stepwise.models import DigitsCNN, DigitsData, digits_cnn

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "results" / "fidelity"
LEVELS = ["features.1", "features.3", "features.6", "classifier.1", "softmax"]
LOGITS = "classifier.2"  # the last Linear module: the logits, as a top level instead of the softmax
MIN_PROBABILITY = 0.99
PER_CLASS = 100

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_digits, for the scripts that re-train


def float64_model(state: Mapping[str, Tensor] | None = None) -> DigitsCNN:
    """The shipped model, or the architecture with ``state`` loaded, in float64 and eval mode."""
    model = digits_cnn() if state is None else DigitsCNN()
    if state is not None:
        model.load_state_dict(state)
    return model.double().eval()


def confident_inputs(model: nn.Module, data: DigitsData, n: int = PER_CLASS) -> dict[int, Tensor]:
    """Per class c, up to ``n`` training images labelled c that the model classifies as c with probability >= 0.99,
    the first in data order (:func:`stepwise.select_inputs`): {c: images of shape (k, 1, 16, 16), float64}."""
    images = data.images[data.train].double()
    chosen = stepwise.select_inputs(
        model, images, data.labels[data.train], classes=range(10), min_probability=MIN_PROBABILITY, max_per_class=n
    )
    return {c: images[index] for c, index in chosen.items()}


def save_json(name: str, record: object) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    write_file(path, json.dumps(record, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def save_png(fig: object, name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    save_figure(fig, path)
    print(f"wrote {path.relative_to(ROOT)}")
    return path
