"""One example of each figure of ``stepwise.plot``, from real traversals of a small trained network.

A seeded float64 MLP (10 -> 96 -> 64 -> 8 classes; heavy-tailed initial weights, as trained networks have) is
trained briefly on Gaussian blobs; each class's dependency graph is traced with ``sign="both"``. The script writes
into ``results/figures/``:

- ``outlier_frequency.png`` (paper Fig. 2a): how often each neuron of level ``3`` is a Tukey outlier of ω for
  the softmax neuron of one class (the class with the largest graph), over the inputs of that class;
- ``relevance_heatmap.png`` (Fig. 2b): ω of that softmax neuron over level ``3``, on four of those inputs
  (each row divided by its largest |ω|: the softmax saturates on confidently classified inputs);
- ``dependency_graph.png`` (Fig. 3): the dependency graph of that class;
- ``dependency_graph_stopped.png``: the graph of a class whose traversal stopped (the smallest graph): the level
  where it stopped is an empty row with the reason, the levels below it are marked as not reached;
- ``dependency_graph_large.png``: a large graph, the traversal of a ResNet-18-shaped network with random weights
  (``examples/networks.py``; fence 1.0, 16 random inputs, ten levels: the stem, the eight blocks, the softmax):
  each level shows its 12 most frequent neurons and counts the others;
- ``clustermap.png`` (Fig. 4a): the bag-of-nodes vectors of the eight class graphs, Ward on cosine geometry, each
  graph's target left out of the columns.

Run from the repository root: ``python examples/figures.py``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from networks import resnet18_shaped  # noqa: E402

import stepwise  # noqa: E402
from stepwise.core.io import save_figure  # noqa: E402
from stepwise.plot import (  # noqa: E402
    plot_clustermap,
    plot_graph,
    plot_outlier_frequency,
    plot_relevance_heatmap,
)

SEED = 0
N_CLASSES = 8
PER_CLASS = 40
OUT = Path(__file__).resolve().parent.parent / "results" / "figures"


def trained_mlp(generator: torch.Generator) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The model and its training data (inputs (N, 10), labels (N,)), in float64: the softmax of a confidently
    classified input does not round to exactly 1, so its ω is small but not zero."""
    f64 = {"generator": generator, "dtype": torch.float64}
    centres = torch.randn(N_CLASSES, 10, **f64)
    labels = torch.arange(N_CLASSES).repeat_interleave(PER_CLASS)
    inputs = centres[labels] + torch.randn(len(labels), 10, **f64)
    model = nn.Sequential(nn.Linear(10, 96), nn.ReLU(), nn.Linear(96, 64), nn.ReLU(), nn.Linear(64, N_CLASSES))
    model = model.double()
    with torch.no_grad():
        for layer in (model[0], model[2], model[4]):
            layer.weight.copy_(torch.randn(layer.weight.shape, **f64) / layer.in_features**0.5)
            layer.weight.mul_(torch.exp(1.5 * torch.randn(layer.weight.shape, **f64)))  # heavy-tailed rows
            layer.bias.zero_()
    for _ in range(30):  # plain gradient descent (torch.optim's first step is slow to set up)
        model.zero_grad()
        nn.functional.cross_entropy(model(inputs), labels).backward()
        with torch.no_grad():
            for parameter in model.parameters():
                parameter -= 0.05 * parameter.grad
    return model.eval(), inputs, labels


def resnet_graph() -> stepwise.DependencyGraph:
    """The dependency graph of class 3 of a ResNet-18-shaped network with random weights, on 16 random inputs
    (float64): the stem's activation, the eight block outputs and the softmax, fence 1.0 (some 400 neurons)."""
    generator = torch.Generator().manual_seed(SEED)
    model = resnet18_shaped(num_classes=10, seed=SEED).double()
    inputs = torch.randn(16, 3, 32, 32, generator=generator, dtype=torch.float64)
    blocks = [f"layer{stage}.{block}" for stage in range(1, 5) for block in range(2)]
    ssa = stepwise.StepwiseSensitivity(model, ["relu", *blocks, "softmax"], fence=1.0)
    return ssa.dependency_graph(inputs, target=3)


def save(fig: Figure, name: str) -> None:
    path = OUT / name
    save_figure(fig, path, dpi=100)  # atomically; closes the figure
    print(f"wrote {path.relative_to(OUT.parent.parent)}")


def main() -> None:
    generator = torch.Generator().manual_seed(SEED)
    model, inputs, labels = trained_mlp(generator)
    accuracy = (model(inputs).argmax(1) == labels).float().mean().item()
    print(f"training accuracy {accuracy:.2f} on {len(labels)} inputs, {N_CLASSES} classes")
    ssa = stepwise.StepwiseSensitivity(model, ["input", "1", "3", "softmax"], sign="both")
    with warnings.catch_warnings(record=True):  # some traversals stop early; their graphs say where and why
        warnings.simplefilter("always", UserWarning)
        graphs = {f"class {c}": ssa.dependency_graph(inputs[labels == c], target=c) for c in range(N_CLASSES)}
    for name, graph in graphs.items():
        stopped = graph.attrs.get("stopped_at")
        print(f"{name}: {graph}" + (f", stopped at {stopped}" if stopped else ""))

    OUT.mkdir(parents=True, exist_ok=True)
    focus = max(range(N_CLASSES), key=lambda c: len(graphs[f"class {c}"]))
    print(f"figures of one class: class {focus}, whose graph is the largest")
    own = inputs[labels == focus]
    counts = ssa.outlier_counts(own, upper="softmax", lower="3", neurons=focus)
    save(plot_outlier_frequency(counts[0], level="3", neuron=f"softmax:{focus}"), "outlier_frequency.png")
    omega = ssa.relevance(own[:4], upper="softmax", lower="3", neurons=focus)
    save(plot_relevance_heatmap(omega[0], level="3", per_row=True), "relevance_heatmap.png")
    save(plot_graph(graphs[f"class {focus}"]), "dependency_graph.png")
    stopped = [name for name, graph in graphs.items() if "stopped_at" in graph.attrs]
    if stopped:
        smallest = min(stopped, key=lambda name: (len(graphs[name]), name))
        print(f"a traversal that stopped: {smallest}, at {graphs[smallest].attrs['stopped_at']}")
        save(plot_graph(graphs[smallest]), "dependency_graph_stopped.png")
    large = resnet_graph()
    print(f"a large graph: {large}")
    save(plot_graph(large), "dependency_graph_large.png")
    result = stepwise.cluster_graphs(graphs, n_clusters=3)
    print(f"{result}; clusters: {result.labels.to_dict()}")
    save(plot_clustermap(result), "clustermap.png")  # sized to label every column


if __name__ == "__main__":
    main()
