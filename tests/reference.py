"""Independent computations of SSA quantities: per-(neuron, input) autograd through a hand-written step."""

from __future__ import annotations

import copy

import numpy as np
import torch
from captum.attr import NeuronGuidedBackprop
from torch import Tensor, nn

from tests.helpers import Chain


def _positions(chain: Chain, name: str) -> int:
    names = [n for n, _ in chain]
    return -1 if name == "input" else names.index(name)


def run(chain: Chain, x: Tensor, start: int, stop: int) -> Tensor:
    """Apply chain elements start+1 .. stop (inclusive) to x."""
    for _, fn in chain[start + 1 : stop + 1]:
        x = fn(x)
    return x


def neuron_scalar(out: Tensor, n: int) -> Tensor:
    """The neuron's value per input: its channel averaged over positions, shape (N,)."""
    channel = out[:, n]
    return channel.flatten(1).mean(1) if channel.dim() > 1 else channel


def spatial_mean(t: Tensor) -> Tensor:
    return t.flatten(2).mean(2) if t.dim() > 2 else t


def naive_relevance(chain: Chain, inputs: Tensor, lower: str, upper: str, neurons, rule: str = "gradient") -> Tensor:
    """ω[n, i, k] by one torch.autograd.grad per (neuron, input) through the step, on one input at a time."""
    lo, up = _positions(chain, lower), _positions(chain, upper)
    rows = []
    for n in neurons:
        per_input = []
        for i in range(len(inputs)):
            with torch.no_grad():
                a = run(chain, inputs[i : i + 1].clone(), -1, lo).clone()
            a.requires_grad_(True)
            with torch.enable_grad():
                (g,) = torch.autograd.grad(neuron_scalar(run(chain, a, lo, up), n).sum(), a)
            if rule == "grad_x_activation":
                g = g * a.detach()
            per_input.append(spatial_mean(g)[0])
        rows.append(torch.stack(per_input))
    return torch.stack(rows)


class _Step(nn.Module):
    def __init__(self, chain: Chain) -> None:
        super().__init__()
        self.parts = nn.ModuleList(fn if isinstance(fn, nn.Module) else _Lambda(fn) for _, fn in chain)

    def forward(self, x: Tensor) -> Tensor:
        for part in self.parts:
            x = part(x)
        return x


class _Lambda(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)


def captum_guided(chain: Chain, inputs: Tensor, lower: str, upper: str, neurons) -> Tensor:
    """ω by captum's NeuronGuidedBackprop applied to the step as a sub-model (ReLUs made out-of-place)."""
    lo, up = _positions(chain, lower), _positions(chain, upper)
    with torch.no_grad():
        a = run(chain, inputs.clone(), -1, lo).clone()
    step = copy.deepcopy(_Step(chain[lo + 1 : up + 1]))
    for m in step.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    explainer = NeuronGuidedBackprop(step, step.parts[-1])
    rows = []
    for n in neurons:
        attribution = explainer.attribute(a, neuron_selector=lambda out, n=n: neuron_scalar(out, n))
        rows.append(spatial_mean(attribution))
    return torch.stack(rows)


def numpy_counts(omega: np.ndarray, fence: float = 1.5, sign: str = "positive") -> np.ndarray:
    """Outlier counts from ω (n, N, K) with numpy.percentile, row by row."""
    counts = np.zeros((omega.shape[0], omega.shape[2]), dtype=np.int64)
    for n in range(omega.shape[0]):
        for i in range(omega.shape[1]):
            row = omega[n, i].astype(np.float64)
            q1, q3 = np.percentile(row, [25, 75])
            high = row > q3 + fence * (q3 - q1)
            low = row < q1 - fence * (q3 - q1)
            counts[n] += {"positive": high, "negative": low, "both": high | low}[sign]
    return counts


def python_children(counts: np.ndarray, mean: np.ndarray, branching: int, sign: str) -> list[list[int]]:
    """Top-b children with docs/design.md's tie-breaks, by Python's sorted()."""
    direction = {"positive": lambda v: v, "negative": lambda v: -v, "both": abs}[sign]
    result = []
    for row_counts, row_mean in zip(counts, mean):
        order = sorted(range(len(row_counts)), key=lambda k: (-row_counts[k], -direction(row_mean[k]), k))
        result.append([k for k in order[:branching] if row_counts[k] > 0])
    return result


def token_relevance(model: nn.Module, batch: dict[str, Tensor], lower: str, upper: str, neurons: list[int]) -> Tensor:
    """ω[n, i, k] by one torch.autograd.grad per (neuron, input) of the masked token mean, through the padded batch."""
    modules = dict(model.named_modules())
    found: dict[str, Tensor] = {}

    def as_leaf(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
        found["lower"] = output.detach().requires_grad_(True)
        return found["lower"]

    def keep(module: nn.Module, args: tuple, output: Tensor) -> None:
        found["upper"] = output

    handles = [modules[lower].register_forward_hook(as_leaf)]
    if upper != "softmax":
        handles.append(modules[upper].register_forward_hook(keep))
    try:
        scores = model(**batch)
    finally:
        for handle in handles:
            handle.remove()
    up = torch.softmax(scores, dim=1) if upper == "softmax" else found["upper"]
    mask = batch["attention_mask"].to(up.dtype)
    omega = torch.empty(len(neurons), len(mask), found["lower"].shape[2], dtype=up.dtype)
    for row, n in enumerate(neurons):
        for i in range(len(mask)):
            value = up[i, n] if up.dim() == 2 else (up[i, :, n] * mask[i]).sum() / mask[i].sum()
            (grad,) = torch.autograd.grad(value, found["lower"], retain_graph=True)
            omega[row, i] = (grad[i] * mask[i, :, None]).sum(dim=0) / mask[i].sum()
    return omega
