"""Train the digits GRU that ships with stepwise (``stepwise.models.digits_gru``).

The model (:class:`stepwise.models.DigitsGRU`, one GRU layer of 50 units as the Paths paper's, then a linear layer
on the last hidden state) reads scikit-learn's bundled 8x8 digits row by row, 8 time steps of 8 pixels
(:func:`stepwise.models.digits_sequences`), and learns from the train split only: Adam, mini-batches drawn with a
seeded generator, a fixed number of epochs, float32 on the CPU (well under a minute on two shared cores). The
script prints the held-out accuracy, records it with the training settings in ``results/digits_gru_model.json``
and writes the weights into the package (``stepwise/models/digits_gru.pt``), both atomically.

Run from the repository root: ``python examples/train_digits_gru.py`` (``--seed``, ``--epochs``; ``--weights``
and ``--record`` choose other destinations, for a trial run that leaves the shipped model alone).
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

import stepwise
from stepwise.core.io import write_file
from stepwise.models import DigitsGRU, digits_sequences

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "stepwise" / "models" / "digits_gru.pt"
RECORD = ROOT / "results" / "digits_gru_model.json"
SEED = 0
EPOCHS = 60
BATCH_SIZE = 32
LEARNING_RATE = 3e-3


def accuracy(model: nn.Module, inputs: Tensor, labels: Tensor) -> float:
    """The share of ``inputs`` that ``model`` classifies as ``labels``."""
    with torch.no_grad():
        return (model(inputs).argmax(1) == labels).double().mean().item()


def train(seed: int = SEED, *, epochs: int = EPOCHS, log: bool = True) -> tuple[DigitsGRU, list[float], int, float]:
    """Train a fresh :class:`DigitsGRU` on the train split; return it (eval mode), the held-out accuracy after
    each epoch, the number of optimiser steps and the seconds taken."""
    data = digits_sequences()
    x_train, y_train = data.images[data.train], data.labels[data.train]
    x_test, y_test = data.images[data.test], data.labels[data.test]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DigitsGRU()
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    step, history, start = 0, [], time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for first in range(0, len(order), BATCH_SIZE):
            batch = order[first : first + BATCH_SIZE]
            optimiser.zero_grad()
            loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimiser.step()
            step += 1
        model.eval()
        history.append(accuracy(model, x_test, y_test))
        if log:
            print(f"epoch {epoch + 1:2d}/{epochs}: held-out accuracy {history[-1]:.4f}")
    return model.eval(), history, step, time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=SEED, help=f"seed of the weights and batches (default {SEED})")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"passes over the train split (default {EPOCHS})")
    parser.add_argument("--weights", type=Path, default=WEIGHTS, help="where the state dict goes")
    parser.add_argument("--record", type=Path, default=RECORD, help="where the accuracy record goes (JSON)")
    args = parser.parse_args(argv)

    model, history, steps, seconds = train(args.seed, epochs=args.epochs)
    data = digits_sequences()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    args.weights.parent.mkdir(parents=True, exist_ok=True)
    write_file(args.weights, buffer.getvalue())
    weights = args.weights.resolve()
    record = {
        "model": "stepwise.models.DigitsGRU",
        "weights": str(weights.relative_to(ROOT)) if weights.is_relative_to(ROOT) else str(args.weights),
        "weights_bytes": len(buffer.getvalue()),
        "parameters": sum(p.numel() for p in model.parameters()),
        "data": "sklearn.datasets.load_digits, 8x8 read row by row (8 steps of 8 pixels), pixels / 16",
        "train_sequences": len(data.train),
        "test_sequences": len(data.test),
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": BATCH_SIZE,
        "optimiser": f"Adam, learning rate {LEARNING_RATE}",
        "optimiser_steps": steps,
        "test_accuracy": history[-1],
        "test_accuracy_per_epoch": history,
        "train_accuracy": accuracy(model, data.images[data.train], data.labels[data.train]),
        "training_seconds": round(seconds, 1),
        "torch": torch.__version__,
        "stepwise": stepwise.__version__,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
    }
    args.record.parent.mkdir(parents=True, exist_ok=True)
    write_file(args.record, json.dumps(record, indent=2) + "\n")
    print(
        f"held-out accuracy {history[-1]:.4f} on {len(data.test)} sequences after {args.epochs} epochs "
        f"({seconds:.0f} s); wrote {args.weights} ({len(buffer.getvalue()) // 1024} KiB) and {args.record}"
    )
    return record


if __name__ == "__main__":
    main()
