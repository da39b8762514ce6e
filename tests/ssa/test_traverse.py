"""The traversal: docs/design.md's graph schema, an independent re-computation, the early stop on a trained model."""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pytest
import torch
from tests.helpers import BasicBlock, Bottleneck, TorchvisionResNet, build_case
from tests.reference import naive_relevance, numpy_counts, python_children
from sklearn.datasets import load_digits
from torch import nn

import stepwise


@pytest.fixture(scope="module")
def digits_mlp() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A small MLP trained on scikit-learn's bundled digits (99 % training accuracy, two seconds)."""
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    generator = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    for p in model.parameters():
        nn.init.normal_(p, std=0.2, generator=generator)
    optimiser = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(150):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    model.eval()
    assert (model(x).argmax(1) == y).float().mean() > 0.97
    return model, x, y


def test_graph_schema() -> None:
    model, _, inputs, levels = build_case("sequential", torch.float32)
    inputs = torch.randn(30, 3, 8, 8)
    graph = stepwise.StepwiseSensitivity(model, levels, branching=2, fence=0.5).dependency_graph(inputs, target=3)
    g = graph.to_networkx()
    assert isinstance(g, nx.DiGraph)
    assert g.graph == {
        "kind": "dependency",
        "model": "Sequential",
        "levels": levels,
        "target": 3,
        "rule": "gradient",
        "branching": 2,
        "fence": 0.5,
        "sign": "positive",
        "n_inputs": 30,
        "version": stepwise.__version__,
    }
    assert "softmax:3" in g
    for key, data in g.nodes(data=True):
        assert set(data) == {"level", "index", "depth"}
        assert key == f"{data['level']}:{data['index']}"
        assert type(data["index"]) is int and type(data["depth"]) is int
        assert data["depth"] == len(levels) - 1 - levels.index(data["level"])
    assert g.number_of_edges() > 0
    for u, v, data in g.edges(data=True):
        assert set(data) == {"count", "frequency", "relevance", "sign"}
        assert levels.index(g.nodes[u]["level"]) == levels.index(g.nodes[v]["level"]) + 1  # upper -> lower
        assert type(data["count"]) is int and 1 <= data["count"] <= 30
        assert data["frequency"] == data["count"] / 30
        assert data["sign"] in (1, -1) and type(data["relevance"]) is float
    assert all(g.out_degree(n) <= 2 for n in g)
    assert repr(graph) == f"DependencyGraph(target=3, levels=5, nodes={len(g)}, edges={g.number_of_edges()})"


@pytest.mark.parametrize("sign", ["positive", "both"])
def test_graph_equals_independent_traversal(sign: str) -> None:
    """Rebuild the graph with per-(neuron, input) autograd, numpy.percentile and Python sorting."""
    model, chain, _, levels = build_case("vgg", torch.float64)
    inputs = torch.randn(12, 3, 16, 16, dtype=torch.float64)
    target = 2
    graph = stepwise.StepwiseSensitivity(model, levels, sign=sign).dependency_graph(inputs, target=target)

    expected = nx.DiGraph()
    current = [target]
    for position in range(len(levels) - 1, 0, -1):
        upper, lower = levels[position], levels[position - 1]
        omega = naive_relevance(chain, inputs, lower, upper, current).numpy()
        counts = numpy_counts(omega, sign=sign)
        mean = omega.mean(axis=1)
        children = python_children(counts, mean, 3, sign)
        for row, (parent, kids) in enumerate(zip(current, children)):
            for k in kids:
                expected.add_edge(f"{upper}:{parent}", f"{lower}:{k}", count=int(counts[row, k]))
                assert np.isclose(graph.edges[f"{upper}:{parent}", f"{lower}:{k}"]["relevance"], mean[row, k])
        current = sorted({k for kids in children for k in kids})
        if not current:
            break
    assert expected.number_of_edges() > 5
    assert set(graph.edges) == set(expected.edges)
    for u, v, data in expected.edges(data=True):
        assert graph.edges[u, v]["count"] == data["count"]


def test_batch_size_gives_the_identical_graph() -> None:
    model, _, _, levels = build_case("resnet", torch.float32)
    inputs = torch.randn(15, 3, 16, 16)
    graphs = [
        stepwise.StepwiseSensitivity(model, levels, batch_size=b).dependency_graph(inputs, target=1)
        for b in (1, 7, None)
    ]
    assert graphs[0].edges and set(graphs[0].edges) == set(graphs[1].edges) == set(graphs[2].edges)
    for u, v, data in graphs[0].edges(data=True):
        for other in graphs[1:]:
            assert other.edges[u, v]["count"] == data["count"]
            assert other.edges[u, v]["relevance"] == pytest.approx(data["relevance"], rel=1e-5)


def test_target_neurons_below_the_top_start_the_traversal_there() -> None:
    model, _, inputs, levels = build_case("vgg", torch.float64)
    inputs = torch.randn(10, 3, 16, 16, dtype=torch.float64)
    ssa = stepwise.StepwiseSensitivity(model, levels)
    graph = ssa.dependency_graph(inputs, target=[("classifier.1", 4), ("classifier.1", 7)])
    assert graph.target == [["classifier.1", 4], ["classifier.1", 7]]
    levels_seen = {data["level"] for _, data in graph.nodes(data=True)}
    assert "softmax" not in levels_seen and "classifier.4" not in levels_seen
    assert {"classifier.1:4", "classifier.1:7"} <= set(graph.nodes)
    assert graph.nodes["classifier.1:4"]["depth"] == 2


def test_several_top_targets_share_one_graph() -> None:
    model, _, inputs, levels = build_case("sequential", torch.float32)
    inputs = torch.randn(20, 3, 8, 8)
    ssa = stepwise.StepwiseSensitivity(model, levels)
    both = ssa.dependency_graph(inputs, target=[("softmax", 0), ("softmax", 1)])
    single = ssa.dependency_graph(inputs, target=0)
    top_edges = {e for e in single.edges if e[0] == "softmax:0"}
    assert top_edges <= set(both.edges)


def test_logits_top_on_a_trained_model_stops_with_advice(digits_mlp) -> None:
    """From the logits, ω is one weight row for every input; trained rows have no Tukey outlier here."""
    model, x, y = digits_mlp
    images = x[y == 4][:50]
    row = model[2].weight[4].detach().double().numpy()
    q1, q3 = np.percentile(row, [25, 75])
    assert not (row > q3 + 1.5 * (q3 - q1)).any()
    ssa = stepwise.StepwiseSensitivity(model, ["input", "1", "2"])
    with pytest.warns(
        UserWarning,
        match=r"Step 1 <- 2: .*What usually helps, most first: the 'softmax' top level .*, then a smaller fence than "
        r"1.5 \(for example 0.75\), then more inputs, then sign='both'\.",
    ):
        graph = ssa.dependency_graph(images, target=4)
    assert list(graph.nodes) == ["2:4"] and not graph.edges
    assert graph.attrs["stopped_at"] == "1 <- 2"
    assert "no neuron of '1' is a positive Tukey outlier" in graph.attrs["stop_reason"]
    # The advice holds: through the softmax, the first step depends on the input and the traversal goes on.
    softmax = stepwise.StepwiseSensitivity(model, ["input", "1", "softmax"], sign="both")
    deeper = softmax.dependency_graph(images, target=4)
    assert any(data["level"] == "input" for _, data in deeper.nodes(data=True))
    assert "stopped_at" not in deeper.attrs


def test_progress_bar_writes_to_stderr(capsys) -> None:
    model, _, inputs, levels = build_case("mlp", torch.float32)
    stepwise.StepwiseSensitivity(model, levels, progress=True).dependency_graph(inputs, target=0)
    assert "dependency graph" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("block", "layers", "width"),
    [(BasicBlock, [2, 2, 2, 2], 16), (Bottleneck, [2, 1, 1, 1], 8)],
    ids=["resnet18", "bottleneck"],
)
def test_default_levels_of_residual_networks_traverse_to_the_bottom(block: type, layers: list, width: int) -> None:
    inputs = torch.randn(12, 3, 32, 32, generator=torch.Generator().manual_seed(3)).double()
    model = TorchvisionResNet(block, layers, width=width).double().eval()  # weights from the seeded generator
    ssa = stepwise.StepwiseSensitivity(model, fence=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no traversal stop
        graph = ssa.dependency_graph(inputs, target=0)
    assert graph.levels == stepwise.default_levels(model, inputs[:2])
    assert "stopped_at" not in graph.attrs
    assert {level for _, level in graph.nodes(data="level")} == set(graph.levels)  # every level reached


def test_advice_deep_in_the_network_leaves_out_the_softmax_top() -> None:
    """A stop below the top step, under a softmax top: the softmax hint would be wrong twice over."""
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)).double().eval()
    with torch.no_grad():
        model[2].weight.fill_(0.25)  # every lower neuron alike: no Tukey outlier at the step 1 <- 3
        model[2].bias.fill_(0.1)
        model[4].weight.zero_()
        model[4].weight[0, 2] = 4.0  # neuron 2 of '3' stands out for class 0: the top step finds it
    inputs = torch.rand(10, 6, dtype=torch.float64) + 0.5
    ssa = stepwise.StepwiseSensitivity(model, ["1", "3", "softmax"], fence=1.5)
    with pytest.warns(UserWarning, match=r"Step 1 <- 3: .*most first: a smaller fence") as caught:
        graph = ssa.dependency_graph(inputs, target=0)
    assert "softmax' top level" not in str(caught[0].message)
    assert graph.attrs["stopped_at"] == "1 <- 3" and set(graph.nodes) == {"softmax:0", "3:2"}
