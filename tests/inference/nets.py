"""Small networks for the inference-graph tests, with receptive fields written out by hand."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


class SkipNet(nn.Module):
    """Input (N, 2, 9, 9). Levels: ``act1`` (4 x 9 x 9, conv 3x3 padding 1), ``act2`` (4 x 4 x 4: max pool 3/2,
    then conv 3x3 padding 1 plus a skip from the pooled map), ``act3`` (3 x 2 x 2: conv 3x3 stride 2 padding 1),
    ``fc`` (6), then 3 classes."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(11)
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.act1 = nn.ReLU()
        self.pool = nn.MaxPool2d(3, stride=2)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.act2 = nn.ReLU()
        self.conv3 = nn.Conv2d(4, 3, 3, stride=2, padding=1)
        self.act3 = nn.ReLU()
        self.linear = nn.Linear(12, 6)
        self.fc = nn.ReLU()
        self.out = nn.Linear(6, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.pool(self.act1(self.conv1(x)))
        second = self.act2(self.conv2(pooled) + pooled)
        third = self.act3(self.conv3(second))
        return self.out(self.fc(self.linear(third.flatten(1))))


SKIP_LEVELS = ["act1", "act2", "act3", "fc", "softmax"]


def _rows(field: list[tuple[range, range]], size: tuple[int, int]) -> np.ndarray:
    h, w = size
    out = np.zeros((len(field), h * w), dtype=bool)
    for p, (rows, cols) in enumerate(field):
        for r in rows:
            for c in cols:
                if 0 <= r < h and 0 <= c < w:
                    out[p, r * w + c] = True
    return out


def hand_field(upper: str, lower: str) -> np.ndarray:
    """The receptive fields of SkipNet by the arithmetic of its layers (no model involved)."""
    if (upper, lower) == ("act2", "act1"):  # conv2 (pad 1) over pool windows 3/2, and the skip (a subset)
        field = []
        for i in range(4):
            for j in range(4):
                a0, a1 = max(i - 1, 0), min(i + 1, 3)
                b0, b1 = max(j - 1, 0), min(j + 1, 3)
                field.append((range(2 * a0, 2 * a1 + 3), range(2 * b0, 2 * b1 + 3)))
        return _rows(field, (9, 9))
    if (upper, lower) == ("act3", "act2"):  # stride 2, padding 1: rows 2i - 1 .. 2i + 1, clipped
        field = [(range(2 * i - 1, 2 * i + 2), range(2 * j - 1, 2 * j + 2)) for i in range(2) for j in range(2)]
        return _rows(field, (4, 4))
    if (upper, lower) == ("fc", "act3"):
        return np.ones((1, 4), dtype=bool)
    if (upper, lower) == ("softmax", "fc"):
        return np.ones((1, 1), dtype=bool)
    raise KeyError((upper, lower))


def skip_data(n: int, seed: int = 5) -> Tensor:
    return torch.randn(n, 2, 9, 9, generator=torch.Generator().manual_seed(seed))


class MLP(nn.Module):
    """Input (N, 5): ``h1`` (7, ReLU), ``h2`` (6, ReLU), then 3 classes."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(12)
        self.l1, self.h1 = nn.Linear(5, 7), nn.ReLU()
        self.l2, self.h2 = nn.Linear(7, 6), nn.ReLU()
        self.out = nn.Linear(6, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.h2(self.l2(self.h1(self.l1(x)))))
