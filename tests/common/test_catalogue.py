"""The catalogue of bad inputs: every public entry point, in Python and on the command line, refuses each bad input
with a message that says how to fix it, before any long computation, and leaves no trace.

Each case names the call, the bad input, the exception and a fragment of the message that tells the user the fix.
The calls get real work: 1024 inputs of shape (3, 64, 64) for a VGG-style network, on which a dependency graph takes
about 3 s of CPU time and a ranking of 1024 resamples about 6 s; on the command line, 300 digits (the demo: 1797)
for the shipped CNN. That a bad input is refused *before* that work is proved by counting the model's forward
passes: none for a parameter check, else only the checking passes that probe the levels on at most two inputs. The
time is measured as the CPU time of the process, which a busy machine does not inflate, and must stay under a
second; the wall-clock time, which a busy machine does inflate, only under a bound ten times as large.

After each case no hook is left on any module nor registered globally, gradient mode is on as it was, and the
model's training flags, ``requires_grad`` flags, gradients, parameters and buffers are as they were (the models
come with one module in train mode, one frozen parameter and one gradient, so that restoring them is not trivial).
On the command line the exit status is 2, stderr holds the usage line and the fix, and the output folder was
neither created nor touched.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.helpers import ResNetStyle, VGGStyle, build_case, sequential_cnn
from torch import Tensor, nn

import perturb
import stepwise
from perturb import NeuronRanking
from stepwise import DependencyGraph
from stepwise.cli import main
from stepwise.core.levels import resolve_levels
from stepwise.models import DigitsCNN, digits_cnn, digits_data

N_INPUTS = 1024
SHAPE = (3, 64, 64)
PROBE = 2  # inputs in a checking pass: the levels are probed on the first two inputs (a ranking: on its one image)
CPU_LIMIT = 1.0  # seconds of CPU time of the process
WALL_LIMIT = 10.0  # seconds of wall-clock time: a loaded machine stretches it, so it only catches real work
LEVELS = ["features.1", "features.3", "features.6", "classifier.1", "classifier.4", "softmax"]


# ------------------------------------------------------------------------------------------------ models


class TupleLayer(nn.Module):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x, x


class SpareModules(VGGStyle):
    """VGGStyle with a module on top that returns a tuple, and a module that never runs."""

    def __init__(self) -> None:
        super().__init__()
        self.pair = TupleLayer()
        self.unused = nn.Linear(6, 6)

    def forward(self, x: Tensor) -> Tensor:
        scores, _ = self.pair(super().forward(x))
        return scores


class Packed(nn.Module):
    """Returns the class scores of ``inner`` together with its input, in a tuple or a dict."""

    def __init__(self, inner: nn.Module, kind: str = "tuple") -> None:
        super().__init__()
        self.inner = inner
        self.kind = kind

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor] | dict[str, Tensor]:
        scores = self.inner(x)
        return (scores, x) if self.kind == "tuple" else {"scores": scores, "input": x}


def digits_pair() -> nn.Module:
    """``--model tests.common.test_catalogue:digits_pair``: the shipped digits CNN returning (scores, input), a tuple."""
    return Packed(digits_cnn())


def infinite_weight() -> nn.Module:
    model = VGGStyle()
    with torch.no_grad():
        model.features[0].weight[0, 0, 0, 0] = float("inf")
    return model


def on_meta() -> nn.Module:
    return VGGStyle().to("meta")


def on_gpu() -> nn.Module:
    return VGGStyle().cuda()


def prepared(model: nn.Module) -> nn.Module:
    """A user's model as it may come: in eval mode but for its last module, its first parameter frozen, and a
    gradient left on its last parameter."""
    model.eval()
    list(model.modules())[-1].train()
    parameters = list(model.parameters())
    parameters[0].requires_grad_(False)
    parameters[-1].grad = torch.ones_like(parameters[-1])
    return model


def counting(forward: Callable[..., Any], sizes: list[int]) -> Callable[..., Any]:
    """``forward`` recording the batch size of each call (the batch is the last positional argument)."""

    @functools.wraps(forward)
    def counted(*args: Any) -> Any:
        sizes.append(len(args[-1]))
        return forward(*args)

    return counted


# ------------------------------------------------------------------------------------------------ traces


_MODULE_HOOKS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
)


def global_hooks() -> dict[str, int]:
    """How many hooks of each kind are registered for every module (``torch.nn.modules.module.register_module_*``)."""
    return {name: len(getattr(torch.nn.modules.module, f"_global{name}")) for name in _MODULE_HOOKS}


def assert_no_hooks(model: nn.Module) -> None:
    for name, module in model.named_modules():
        for hooks in _MODULE_HOOKS:
            assert not getattr(module, hooks), f"{hooks} left on {name or 'the model'}"
    for name, parameter in model.named_parameters():
        assert not parameter._backward_hooks, f"a tensor hook left on {name}"


def state_of(model: nn.Module) -> dict[str, list]:
    """Training flags, requires_grad flags, gradients, parameters and buffers (copies)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return {
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grad": [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()],
        "tensors": [t.detach().clone() for t in tensors],
    }


def _same(a: Tensor | None, b: Tensor | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if a.is_meta or b.is_meta:  # no values to compare
        return (a.shape, a.dtype, a.device) == (b.shape, b.dtype, b.device)
    return torch.equal(a, b)


def assert_same_state(before: dict[str, list], after: dict[str, list]) -> None:
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    for kind in ("grad", "tensors"):
        assert len(after[kind]) == len(before[kind])
        assert all(_same(a, b) for a, b in zip(before[kind], after[kind])), f"{kind} changed"


@contextlib.contextmanager
def timed() -> Iterator[dict[str, float]]:
    """The CPU time of the process and the wall-clock time of the block, also when it raises."""
    clock: dict[str, float] = {}
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        yield clock
    finally:
        clock["cpu"], clock["wall"] = time.process_time() - cpu, time.perf_counter() - wall


def assert_quick(clock: dict[str, float]) -> None:
    assert clock["cpu"] < CPU_LIMIT, f"{clock['cpu']:.2f} s of CPU time before the error"
    assert clock["wall"] < WALL_LIMIT, f"{clock['wall']:.2f} s before the error"


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Import and initialise once what the first call of a kind would otherwise pay for inside its timing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401  (plot_patches imports it)
    import PIL.Image  # noqa: F401  (the command reads image folders with it)

    digits_data()
    stepwise.list_levels(VGGStyle().eval(), torch.zeros(PROBE, *SHAPE))


# ------------------------------------------------------------------------------------------------ Python API


@dataclass
class Bench:
    """What a case's call works with."""

    model: nn.Module
    inputs: Tensor  # (N_INPUTS, *SHAPE)
    ranking: NeuronRanking | None
    graphs: list[DependencyGraph]
    folder: Path

    @property
    def image(self) -> Tensor:
        return self.inputs[0]


@dataclass(frozen=True)
class Bad:
    """One bad input: the call that gets it, the exception, a fragment of the message that tells the fix."""

    call: Callable[[Bench], object]
    error: type[Exception]
    fix: str
    probes: int = 0  # checking forward passes allowed before the error, each on at most PROBE inputs
    model: Callable[[], nn.Module] = VGGStyle
    ranked: bool = False  # the call needs a ranking of the model's first input
    marks: tuple = ()


def ssa(b: Bench, levels: object = LEVELS, **kwargs: Any) -> stepwise.StepwiseSensitivity:
    return stepwise.StepwiseSensitivity(b.model, levels, **kwargs)


def graph_of(b: Bench, *, inputs: object = None, target: object = 0, levels: object = LEVELS, **kwargs: Any) -> object:
    return ssa(b, levels, **kwargs).dependency_graph(b.inputs if inputs is None else inputs, target=target)


def rank(b: Bench, **changes: Any) -> NeuronRanking:
    kwargs = {"image": b.image, "levels": None, "target": 2, "n_samples": N_INPUTS, **changes}
    return perturb.rank_neurons(b.model, **kwargs)


def with_value(tensor: Tensor, position: int, value: float) -> Tensor:
    """A copy of ``tensor`` with its element ``position`` (counted over all dimensions) set to ``value``."""
    changed = tensor.clone()
    changed.view(-1)[position] = value
    return changed


RANGE_1 = "must be an int in the range [1, inf)"

CONSTRUCTION = {
    "StepwiseSensitivity: a function as model": Bad(
        lambda b: stepwise.StepwiseSensitivity(lambda x: x), TypeError, "model must be a torch.nn.Module"
    ),
    "StepwiseSensitivity: levels as one string": Bad(
        lambda b: ssa(b, "features.1"), TypeError, "levels must be a list of level names bottom to top"
    ),
    "StepwiseSensitivity: branching=0": Bad(lambda b: ssa(b, branching=0), ValueError, RANGE_1),
    "StepwiseSensitivity: branching=2.5": Bad(lambda b: ssa(b, branching=2.5), TypeError, RANGE_1),
    "StepwiseSensitivity: branching=True": Bad(lambda b: ssa(b, branching=True), TypeError, RANGE_1),
    "StepwiseSensitivity: fence=0": Bad(lambda b: ssa(b, fence=0), ValueError, "must be a float in the range (0, inf)"),
    "StepwiseSensitivity: fence=-1.5": Bad(lambda b: ssa(b, fence=-1.5), ValueError, "in the range (0, inf)"),
    "StepwiseSensitivity: fence=nan": Bad(lambda b: ssa(b, fence=float("nan")), ValueError, "in the range (0, inf)"),
    "StepwiseSensitivity: sign='postive'": Bad(
        lambda b: ssa(b, sign="postive"), ValueError, "Did you mean 'positive'?"
    ),
    "StepwiseSensitivity: rule='guide'": Bad(lambda b: ssa(b, rule="guide"), ValueError, "Did you mean 'guided'?"),
    "StepwiseSensitivity: batch_size=0": Bad(lambda b: ssa(b, batch_size=0), ValueError, RANGE_1),
    "StepwiseSensitivity: progress='yes'": Bad(lambda b: ssa(b, progress="yes"), TypeError, "must be a bool"),
    "StepwiseSensitivity: channel_dim=0": Bad(lambda b: ssa(b, channel_dim=0), ValueError, RANGE_1),
    "StepwiseSensitivity: closed_form='no'": Bad(lambda b: ssa(b, closed_form="no"), TypeError, "must be a bool"),
}

LEVEL_NAMES = {
    "dependency_graph: a level name with a typo": Bad(
        lambda b: graph_of(b, levels=["feature.1", "softmax"]), ValueError, "Did you mean 'features.1'", probes=1
    ),
    "dependency_graph: levels out of forward order": Bad(
        lambda b: graph_of(b, levels=["features.3", "features.1", "softmax"]),
        ValueError,
        "List levels bottom to top",
        probes=1,
    ),
    "dependency_graph: a level named twice": Bad(
        lambda b: graph_of(b, levels=["features.1", "features.1", "softmax"]),
        ValueError,
        "name each level once",
        probes=1,
    ),
    "dependency_graph: 'input' above another level": Bad(
        lambda b: graph_of(b, levels=["features.1", "input", "softmax"]),
        ValueError,
        "'input' can only be the first (bottom) level",
        probes=1,
    ),
    "dependency_graph: 'softmax' below another level": Bad(
        lambda b: graph_of(b, levels=["features.1", "softmax", "classifier.4"]),
        ValueError,
        "'softmax' can only be the last (top) level",
        probes=1,
    ),
    "dependency_graph: one level": Bad(
        lambda b: graph_of(b, levels=["softmax"]),
        ValueError,
        "See stepwise.list_levels(model, example_input) for the candidates",
        probes=1,
    ),
    "dependency_graph: levels given as ints": Bad(
        lambda b: graph_of(b, levels=[1, 6]), TypeError, "Name each level as in model.named_modules()", probes=1
    ),
    "dependency_graph: channel_dim=4 for 4-D levels": Bad(
        lambda b: graph_of(b, channel_dim=4),
        ValueError,
        "pass a dimension between 1 and the number of dimensions minus one",
        probes=1,
    ),
    "dependency_graph: a module that runs twice per forward pass": Bad(
        lambda b: graph_of(b, levels=["layer1.0.relu", "softmax"]),
        ValueError,
        "Use a separate module instance for each use",
        probes=1,
        model=ResNetStyle,
    ),
    "dependency_graph: a module that never runs": Bad(
        lambda b: graph_of(b, levels=["unused", "softmax"]),
        ValueError,
        "choose a module that runs",
        probes=1,
        model=SpareModules,
    ),
    "dependency_graph: a module that returns a tuple": Bad(
        lambda b: graph_of(b, levels=["features.1", "pair", "softmax"]),
        ValueError,
        "Choose a module that returns a tensor",
        probes=1,
        model=SpareModules,
    ),
    "dependency_graph: 'softmax' on one score per input": Bad(
        lambda b: graph_of(b, levels=["classifier.1", "softmax"]),
        ValueError,
        "Use 'output' (the raw model output)",
        probes=1,
        model=lambda: VGGStyle(num_classes=1),
    ),
    "dependency_graph: 'softmax' on a model that returns a tuple": Bad(
        lambda b: graph_of(b, levels=["inner.features.1", "softmax"]),
        ValueError,
        "Wrap the model so that it returns one tensor",
        probes=1,
        model=lambda: Packed(VGGStyle()),
    ),
    "dependency_graph: default levels of a model that returns a tuple": Bad(
        lambda b: graph_of(b, levels=None),
        ValueError,
        "Wrap the model so that it returns one tensor (the class scores), or name the levels",
        probes=1,
        model=lambda: Packed(VGGStyle()),
    ),
    "dependency_graph: default levels of a model that returns a dict": Bad(
        lambda b: graph_of(b, levels=None),
        ValueError,
        "Wrap the model so that it returns one tensor (the class scores), or name the levels",
        probes=1,
        model=lambda: Packed(VGGStyle(), "dict"),
    ),
    "dependency_graph: weights holding Inf": Bad(
        lambda b: graph_of(b),
        ValueError,
        "check the inputs and the model weights for non-finite values",
        probes=1,
        model=infinite_weight,
    ),
}

TARGETS = {
    "dependency_graph: target=6 of 6 classes": Bad(
        lambda b: graph_of(b, target=6), ValueError, "which has 6 neurons (0 to 5)", probes=1
    ),
    "dependency_graph: target=-1": Bad(lambda b: graph_of(b, target=-1), ValueError, "(0 to 5)", probes=1),
    "dependency_graph: target at a level not analysed": Bad(
        lambda b: graph_of(b, target=[("classifier.9", 0)]),
        ValueError,
        "is not one of the analysed levels ['features.1'",
        probes=1,
    ),
    "dependency_graph: target neuron out of range at a lower level": Bad(
        lambda b: graph_of(b, target=[("classifier.1", 24)]), ValueError, "which has 24 neurons (0 to 23)", probes=1
    ),
    "dependency_graph: target='softmax'": Bad(
        lambda b: graph_of(b, target="softmax"), TypeError, "or a list of (level, index) pairs", probes=1
    ),
    "dependency_graph: target=[]": Bad(
        lambda b: graph_of(b, target=[]),
        ValueError,
        "name a class index or at least one (level, index) neuron",
        probes=1,
    ),
    "dependency_graph: target=[3]": Bad(
        lambda b: graph_of(b, target=[3]), TypeError, "target entries must be (level, index) pairs", probes=1
    ),
    "dependency_graph: target=1.0": Bad(lambda b: graph_of(b, target=1.0), TypeError, "Pass a Python int", probes=1),
    "dependency_graph: target=torch.tensor(1)": Bad(
        lambda b: graph_of(b, target=torch.tensor(1)),
        TypeError,
        "int(target) converts a one-element tensor",
        probes=1,
    ),
}

INPUTS = {
    "dependency_graph: an empty batch": Bad(
        lambda b: graph_of(b, inputs=b.inputs[:0]), ValueError, "pass at least one input"
    ),
    "dependency_graph: an empty list of batches": Bad(
        lambda b: graph_of(b, inputs=[]), ValueError, "pass at least one input"
    ),
    "dependency_graph: inputs of the wrong shape": Bad(
        lambda b: graph_of(b, inputs=b.inputs[:, 0]),
        ValueError,
        "Pass inputs shaped and typed as the model expects (batch dimension first)",
        probes=1,
    ),
    "dependency_graph: integer inputs": Bad(
        lambda b: graph_of(b, inputs=b.inputs.to(torch.int32)),
        ValueError,
        "Pass inputs shaped and typed as the model expects",
        probes=1,
    ),
    "dependency_graph: a numpy array": Bad(
        lambda b: graph_of(b, inputs=b.inputs.numpy()), TypeError, "Convert arrays with torch.as_tensor"
    ),
    "dependency_graph: a batch list holding a str": Bad(
        lambda b: graph_of(b, inputs=[b.inputs, "x"]), TypeError, "expected tensors or (x, y) batches of tensors"
    ),
    "dependency_graph: batches of two input shapes": Bad(
        lambda b: graph_of(b, inputs=[b.inputs[:512], b.inputs[512:, :, :32, :32]]),
        ValueError,
        "pass batches of one input shape",
    ),
    "dependency_graph: float64 inputs, float32 model": Bad(
        lambda b: graph_of(b, inputs=b.inputs.double()),
        TypeError,
        "convert one of them, for example inputs.to(torch.float32) or model.to(torch.float64)",
    ),
    "dependency_graph: NaN in the last input": Bad(
        lambda b: graph_of(b, inputs=with_value(b.inputs, -1, float("nan"))), ValueError, "remove or replace them"
    ),
    "dependency_graph: Inf in the first input": Bad(
        lambda b: graph_of(b, inputs=with_value(b.inputs, 0, float("inf"))), ValueError, "remove or replace them"
    ),
    "dependency_graph: inputs on the meta device": Bad(
        lambda b: graph_of(b, inputs=b.inputs.to("meta")), ValueError, "pass inputs holding values"
    ),
    "dependency_graph: a model on the meta device": Bad(
        lambda b: graph_of(b),
        ValueError,
        "materialise them first, for example model.to_empty(device='cpu')",
        model=on_meta,
    ),
}

STEPS = {
    "relevance: lower above upper": Bad(
        lambda b: ssa(b).relevance(b.inputs, upper="features.3", lower="softmax", neurons=[0]),
        ValueError,
        "must be below upper='features.3'",
        probes=1,
    ),
    "relevance: an upper level not analysed": Bad(
        lambda b: ssa(b).relevance(b.inputs, upper="fc", lower="features.1", neurons=[0]),
        ValueError,
        "is not one of the analysed levels ['features.1'",
        probes=1,
    ),
    "relevance: no neurons": Bad(
        lambda b: ssa(b).relevance(b.inputs, upper="features.3", lower="features.1", neurons=[]),
        ValueError,
        "name at least one neuron of level 'features.3'",
        probes=1,
    ),
    "relevance: a float neuron": Bad(
        lambda b: ssa(b).relevance(b.inputs, upper="features.3", lower="features.1", neurons=[1.5]),
        TypeError,
        "neurons must be ints",
        probes=1,
    ),
    "outlier_counts: neuron 8 of 8": Bad(
        lambda b: ssa(b).outlier_counts(b.inputs, upper="features.3", lower="features.1", neurons=[1, 8]),
        ValueError,
        "which has 8 neurons (0 to 7)",
        probes=1,
    ),
    "outlier_counts: neurons as a str": Bad(
        lambda b: ssa(b).outlier_counts(b.inputs, upper="features.3", lower="features.1", neurons="1"),
        TypeError,
        "must be an int or a sequence of ints",
        probes=1,
    ),
}

PROBING = {
    "list_levels: a list as example": Bad(
        lambda b: stepwise.list_levels(b.model, [1, 2]),
        TypeError,
        "Pass a few inputs stacked along a first batch dimension",
    ),
    "default_levels: an empty example": Bad(
        lambda b: stepwise.default_levels(b.model, b.inputs[:0]),
        ValueError,
        "pass at least one input (batch dimension first)",
    ),
    "list_levels: a function as model": Bad(
        lambda b: stepwise.list_levels(lambda x: x, b.inputs[:2]), TypeError, "model must be a torch.nn.Module"
    ),
    "default_levels: the example on the meta device, the model on the CPU": Bad(
        lambda b: stepwise.default_levels(b.model, b.inputs[:2].to("meta")),
        ValueError,
        "pass example_input holding values",
    ),
    "list_levels: the example on the CPU, the model on a GPU": Bad(
        lambda b: stepwise.list_levels(b.model, b.inputs[:2]),
        ValueError,
        "move one of them, for example example_input.to('cuda:0')",
        model=on_gpu,
        marks=(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU; the meta device case runs"),),
    ),
    "resolve_levels: levels as one string": Bad(
        lambda b: resolve_levels(b.model, b.inputs[:2], "features.1"),
        TypeError,
        "levels must be a list of level names, bottom to top",
        probes=1,
    ),
}

GRAPHS = {
    "cluster_graphs: n_clusters=2.5": Bad(
        lambda b: stepwise.cluster_graphs(b.graphs, n_clusters=2.5), TypeError, "must be an int in the range [1, 3]"
    ),
    "cluster_graphs: weight='count'": Bad(
        lambda b: stepwise.cluster_graphs(b.graphs, weight="count"), ValueError, "must be one of {'frequency'}"
    ),
    "shared_subgraph: min_fraction=1.5": Bad(
        lambda b: stepwise.shared_subgraph(b.graphs, min_fraction=1.5),
        ValueError,
        "must be a float in the range (0, 1]",
    ),
    "jaccard_matrix: a str among the graphs": Bad(
        lambda b: stepwise.jaccard_matrix([*b.graphs, "graph.json"]), TypeError, "needs DependencyGraph objects"
    ),
    "node_occurrence: no graphs": Bad(lambda b: stepwise.node_occurrence({}), ValueError, "needs at least 1 graph"),
    "DependencyGraph.top_neurons: k=2.5": Bad(lambda b: b.graphs[0].top_neurons("frequency", 2.5), TypeError, RANGE_1),
    "DependencyGraph.subgraph: a level as an int": Bad(
        lambda b: b.graphs[0].subgraph(levels=3), TypeError, "must be a level name or a list of level names"
    ),
    "read_graph: a path that is not a str": Bad(
        lambda b: stepwise.read_graph(7), TypeError, "path must be a str or os.PathLike"
    ),
    "write_graph: a networkx graph": Bad(
        lambda b: stepwise.write_graph(b.graphs[0].to_networkx(), b.folder / "graph.graphml"),
        TypeError,
        "Wrap a networkx.DiGraph with stepwise.DependencyGraph.from_networkx(g)",
    ),
}

SAMPLES_SHAPE = "must be stacked as (n, 3, 64, 64) with n >= 2"
RANKING = {
    "rank_neurons: a function as model": Bad(
        lambda b: perturb.rank_neurons(lambda x: x, b.image, target=0), TypeError, "must be a torch.nn.Module"
    ),
    "rank_neurons: sigma=-0.1": Bad(lambda b: rank(b, sigma=-0.1), ValueError, "must be a float in the range [0, inf)"),
    "rank_neurons: sigma=inf": Bad(lambda b: rank(b, sigma=float("inf")), ValueError, "in the range [0, inf)"),
    "rank_neurons: n_samples=1": Bad(
        lambda b: rank(b, n_samples=1), ValueError, "must be an int in the range [2, inf)"
    ),
    "rank_neurons: threshold=-1": Bad(
        lambda b: rank(b, threshold=-1.0), ValueError, "must be a float in the range [0, inf)"
    ),
    "rank_neurons: output='probabilty'": Bad(
        lambda b: rank(b, output="probabilty"), ValueError, "Did you mean 'probability'?"
    ),
    "rank_neurons: a batch of four images": Bad(
        lambda b: rank(b, image=b.inputs[:4]), ValueError, "Pass one input shaped (C, H, W)"
    ),
    "rank_neurons: a 5-D image": Bad(
        lambda b: rank(b, image=b.inputs[:1, None]), ValueError, "must be one input shaped (C, H, W) or (1, C, H, W)"
    ),
    "rank_neurons: an integer image": Bad(
        lambda b: rank(b, image=b.image.to(torch.uint8)), TypeError, "Convert it, e.g. image.float()"
    ),
    "rank_neurons: a float64 image, float32 model": Bad(
        lambda b: rank(b, image=b.image.double()), TypeError, "for example image.to(torch.float32)"
    ),
    "rank_neurons: NaN in the image": Bad(
        lambda b: rank(b, image=with_value(b.image, 0, float("nan"))), ValueError, "remove or replace them"
    ),
    "rank_neurons: the image on the meta device": Bad(
        lambda b: rank(b, image=b.image.to("meta")), ValueError, "pass 'image' holding values"
    ),
    "rank_neurons: a model on the meta device": Bad(
        lambda b: rank(b), ValueError, "for example model.to_empty(device='cpu')", model=on_meta
    ),
    "rank_neurons: samples of another shape": Bad(
        lambda b: rank(b, samples=b.inputs[:, :, :32]), ValueError, SAMPLES_SHAPE
    ),
    "rank_neurons: samples without a batch dimension": Bad(
        lambda b: rank(b, samples=b.image), ValueError, SAMPLES_SHAPE
    ),
    "rank_neurons: one sample": Bad(
        lambda b: rank(b, samples=b.inputs[:1]), ValueError, "Stack at least two resamples"
    ),
    "rank_neurons: float64 samples": Bad(
        lambda b: rank(b, samples=b.inputs.double()), TypeError, "are torch.float32: convert it"
    ),
    "rank_neurons: NaN in the samples": Bad(
        lambda b: rank(b, samples=with_value(b.inputs, -1, float("nan"))), ValueError, "remove or replace them"
    ),
    "rank_neurons: target=1.0": Bad(lambda b: rank(b, target=1.0), TypeError, "must be an int in the range [0, inf)"),
    "rank_neurons: target=-1": Bad(lambda b: rank(b, target=-1), ValueError, "must be an int in the range [0, inf)"),
    "rank_neurons: target=6 of 6 classes": Bad(
        lambda b: rank(b, target=6), ValueError, "must be an int in the range [0, 5]", probes=1
    ),
    "rank_neurons: seed='a'": Bad(
        lambda b: rank(b, seed="a"), TypeError, "must be an int in the range [0, inf), a torch.Generator"
    ),
    "rank_neurons: levels as one string": Bad(
        lambda b: rank(b, levels="features.1"), TypeError, "levels must be a list of level names"
    ),
    "rank_neurons: levels=[]": Bad(
        lambda b: rank(b, levels=[]), ValueError, "name at least one level, or pass None for the default levels"
    ),
    "rank_neurons: levels out of forward order": Bad(
        lambda b: rank(b, levels=["features.6", "features.1"]), ValueError, "List levels bottom to top", probes=1
    ),
    "rank_neurons: a level name with a typo": Bad(
        lambda b: rank(b, levels=["featurs.1"]), ValueError, "Did you mean 'features.1'", probes=1
    ),
    "rank_neurons: batch_size=0": Bad(lambda b: rank(b, batch_size=0), ValueError, RANGE_1),
    "rank_neurons: progress=1": Bad(lambda b: rank(b, progress=1), TypeError, "must be a bool"),
    "rank_neurons: a model that returns a tuple": Bad(
        lambda b: rank(b),
        ValueError,
        "Wrap the model so that it returns one tensor",
        probes=1,
        model=lambda: Packed(VGGStyle()),
    ),
    "resample: seed=-1": Bad(
        lambda b: perturb.resample(b.image, seed=-1), TypeError, "must be an int in the range [0, inf)"
    ),
    "NeuronRanking.scores: metric='corelation'": Bad(
        lambda b: b.ranking.scores("corelation", "features.1"), ValueError, "Did you mean 'correlation'?", ranked=True
    ),
    "NeuronRanking.scores: a level not ranked": Bad(
        lambda b: b.ranking.scores("correlation", "features.2"),
        ValueError,
        "Ranked levels: ['features.1'",
        ranked=True,
    ),
    "NeuronRanking.top: metric='mean'": Bad(
        lambda b: b.ranking.top("mean"), ValueError, "must be one of {'correlation', 'precision'", ranked=True
    ),
    "NeuronRanking.top: k=0": Bad(lambda b: b.ranking.top("correlation", k=0), ValueError, RANGE_1, ranked=True),
    "agreement: a str as ranking": Bad(
        lambda b: perturb.agreement("ranking.csv"), TypeError, "must be a NeuronRanking (from perturb.rank_neurons)"
    ),
    "agreement: one metric": Bad(
        lambda b: perturb.agreement(b.ranking, metrics=("correlation",)),
        ValueError,
        "must be a pair of metric names",
        ranked=True,
    ),
    "agreement: metric='precission'": Bad(
        lambda b: perturb.agreement(b.ranking, metrics=("correlation", "precission")),
        ValueError,
        "Did you mean 'precision'?",
        ranked=True,
    ),
    "agreement: k=0": Bad(lambda b: perturb.agreement(b.ranking, k=0), ValueError, RANGE_1, ranked=True),
    "jaccard: an int as a set": Bad(
        lambda b: perturb.jaccard(3, [3]), TypeError, "must be a collection of neurons (ints, or (level, index) pairs)"
    ),
}

PATCHES = {
    "patches: level 'softmax'": Bad(
        lambda b: perturb.patches(b.model, b.image, "softmax", 0), ValueError, "name a module level such as"
    ),
    "patches: level 'input'": Bad(
        lambda b: perturb.patches(b.model, b.image, "input", 0), ValueError, "name a module level such as"
    ),
    "patches: a level as an int": Bad(
        lambda b: perturb.patches(b.model, b.image, 3, 0), TypeError, "must be a level name (str)"
    ),
    "patches: a level name with a typo": Bad(
        lambda b: perturb.patches(b.model, b.image, "featurs.3", 0), ValueError, "Did you mean 'features.3'", probes=1
    ),
    "patches: neuron 8 of 8": Bad(
        lambda b: perturb.patches(b.model, b.image, "features.3", [0, 8]),
        ValueError,
        "which has 8 neurons (0 to 7)",
        probes=1,
    ),
    "patches: no neurons": Bad(
        lambda b: perturb.patches(b.model, b.image, "features.3", []),
        ValueError,
        "name at least one neuron of level 'features.3'",
        probes=1,
    ),
    "patches: a float neuron": Bad(
        lambda b: perturb.patches(b.model, b.image, "features.3", 1.5),
        TypeError,
        "must be an int or a sequence of ints",
        probes=1,
    ),
    "patches: a vector, not an image": Bad(
        lambda b: perturb.patches(b.model, b.image.flatten()[:12], "features.3", 0),
        ValueError,
        "must be one image shaped (C, H, W) or (1, C, H, W)",
    ),
    "plot_patches: another image than the ranking's": Bad(
        lambda b: perturb.plot_patches(b.inputs[1], b.ranking), ValueError, "pass that image", ranked=True
    ),
    "plot_patches: a level not ranked": Bad(
        lambda b: perturb.plot_patches(b.image, b.ranking, levels=["features.2"]),
        ValueError,
        "whose levels are ['features.1'",
        ranked=True,
    ),
    "plot_patches: a str as ranking": Bad(
        lambda b: perturb.plot_patches(b.image, "ranking.csv"), TypeError, "(from perturb.rank_neurons)"
    ),
    "plot_patches: metric='precison'": Bad(
        lambda b: perturb.plot_patches(b.image, b.ranking, metric="precison"),
        ValueError,
        "Did you mean 'precision'?",
        ranked=True,
    ),
    "plot_patches: k=0": Bad(lambda b: perturb.plot_patches(b.image, b.ranking, k=0), ValueError, RANGE_1, ranked=True),
}

API = {**CONSTRUCTION, **LEVEL_NAMES, **TARGETS, **INPUTS, **STEPS, **PROBING, **GRAPHS, **RANKING, **PATCHES}


@pytest.fixture(scope="module")
def inputs() -> Tensor:
    return torch.randn((N_INPUTS, *SHAPE), generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def graphs() -> list[DependencyGraph]:
    """Three class graphs of a small network."""
    model, _, _, levels = build_case("sequential", torch.float32)
    analysis = stepwise.StepwiseSensitivity(model, levels)
    data = torch.randn(20, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a traversal that ends early is still a graph
        return [analysis.dependency_graph(data, target=c) for c in range(3)]


@pytest.mark.parametrize("name", [pytest.param(name, marks=case.marks) for name, case in API.items()])
def test_python_api(name: str, inputs: Tensor, graphs: list[DependencyGraph], tmp_path: Path) -> None:
    case = API[name]
    pristine = inputs.clone()
    model = prepared(case.model())
    ranking = perturb.rank_neurons(model, inputs[0], target=2, n_samples=4) if case.ranked else None
    bench = Bench(model, inputs, ranking, graphs, tmp_path)
    sizes: list[int] = []
    model.forward = counting(model.forward, sizes)
    before, hooks = state_of(model), global_hooks()

    with pytest.raises(case.error) as caught, timed() as clock:
        case.call(bench)

    message = str(caught.value)
    assert type(caught.value) is case.error, message
    assert case.fix in message, message
    assert len(sizes) <= case.probes and all(size <= PROBE for size in sizes), f"forward passes on {sizes} inputs"
    assert_quick(clock)
    assert_no_hooks(model)
    assert global_hooks() == hooks
    assert torch.is_grad_enabled()
    assert_same_state(before, state_of(model))
    assert torch.equal(inputs, pristine)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------ command line


@dataclass(frozen=True)
class BadCommand:
    """A command line with one bad argument (``{name}`` stands for a file of the ``command_files`` fixture, ``{tmp}``
    for the test's folder) and a fragment of the message that tells the fix."""

    argv: tuple[str, ...]
    fix: str


DIGITS = ("--model", "stepwise.models:digits_cnn")
ANALYSE = ("analyse", *DIGITS, "--data", "{data}")
PERTURB = ("perturb", *DIGITS, "--data", "{data}")
N_DATA = 300

COMMANDS = {
    "demo --fence 0": BadCommand(("demo", "--fence", "0"), "expected a number in (0, inf)"),
    "demo --sign up": BadCommand(("demo", "--sign", "up"), "choose from 'positive', 'negative', 'both'"),
    "demo --min-probability 1.5": BadCommand(("demo", "--min-probability", "1.5"), "expected a number in [0, 1]"),
    "demo --samples 1": BadCommand(("demo", "--samples", "1"), "expected at least 2 resamples"),
    "demo --clusters 0": BadCommand(("demo", "--clusters", "0"), "expected a number of at least 1"),
    "demo --dtype float16": BadCommand(("demo", "--dtype", "float16"), "choose from 'float32', 'float64'"),
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
        ("analyse", *DIGITS, "--data", "{dict}"), "expected a tensor of inputs (N, ...) or an (inputs, labels) pair"
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
        ("analyse", "--model", "tests.common.test_catalogue:digits_pair", "--data", "{data}"),
        "Use the Python API for other",
    ),
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
    "an unknown command": BadCommand(("analyze", *DIGITS), "choose from 'demo', 'analyse', 'perturb', 'levels'"),
}


@pytest.fixture(scope="module")
def command_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Data files with one thing wrong each, beside a good one, and the shipped weights as a state dict."""
    folder = tmp_path_factory.mktemp("command")
    images, labels, train, _ = digits_data()
    x, y = images[train[:N_DATA]], labels[train[:N_DATA]]
    nan = x.clone()
    nan[7, 0, 3, 3] = float("nan")
    contents = {
        "data": (x, y),
        "flat": torch.rand(12),
        "uint8": (x * 255).to(torch.uint8),
        "few_labels": (x, y[:200]),
        "float_labels": (x, y.float()),
        "dict": {"inputs": x},
        "nan": (nan, y),
        "weights": digits_cnn().state_dict(),
    }
    paths = {name: folder / f"{name}.pt" for name in contents}
    for name, content in contents.items():
        torch.save(content, paths[name])
    paths["images"] = folder / "images"
    (paths["images"] / "0").mkdir(parents=True)
    return paths


def listing(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in folder.rglob("*")}


COMMANDS_OF_STEPWISE = ("demo", "analyse", "perturb", "levels")


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_line(
    name: str,
    command_files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = COMMANDS[name]
    (tmp_path / "taken").write_text("a file the command must not replace")
    argv = [part.format(tmp=tmp_path, **command_files) for part in case.argv]
    if argv[0] in ("demo", "analyse", "perturb") and "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    monkeypatch.syspath_prepend(os.getcwd())  # the command adds it to import --model; undone after the test
    sizes: list[int] = []
    monkeypatch.setattr(DigitsCNN, "forward", counting(DigitsCNN.forward, sizes))
    before, files, hooks = listing(tmp_path), listing(command_files["data"].parent), global_hooks()

    with pytest.raises(SystemExit) as stop, timed() as clock:
        main(argv)

    captured = capsys.readouterr()
    command = argv[0] if argv[0] in COMMANDS_OF_STEPWISE else ""
    assert stop.value.code == 2, captured.err
    assert f"usage: stepwise {command}".rstrip() in captured.err and "error:" in captured.err, captured.err
    assert case.fix in captured.err, captured.err
    assert captured.out == ""
    # the checking passes: probe the model's output, propose and check the levels, each on two inputs
    assert len(sizes) <= 3 and all(size <= PROBE for size in sizes), f"forward passes on {sizes} inputs"
    assert_quick(clock)
    assert listing(tmp_path) == before, "the command created or changed files"
    assert listing(command_files["data"].parent) == files
    assert global_hooks() == hooks


# ------------------------------------------------------------------------------------------------ during the work


class Explodes(nn.Module):
    """Raises on inputs whose first value is above 100: a failure in the middle of a run."""

    def forward(self, x: Tensor) -> Tensor:
        if (x.flatten(1)[:, 0] > 100).any():
            raise RuntimeError("boom")
        return x


def test_non_finite_activation_in_a_later_batch_is_named() -> None:
    """The levels are checked on the first inputs; later batches are checked as they stream, on every path."""
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3)).eval()
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    data = torch.ones(6, 3)
    data[5] = 2e38  # finite, but 3 · 2e38 overflows float32 in the first layer
    for closed_form in (True, False):
        analysis = stepwise.StepwiseSensitivity(model, ["1", "softmax"], batch_size=2, closed_form=closed_form)
        with pytest.raises(ValueError, match=r"^Level '(0|1|softmax)' holds NaN or Inf values"):
            analysis.dependency_graph(data, target=0)


def _train_mode_resnet() -> tuple[nn.Module, Tensor]:
    model, _, x, _ = build_case("resnet", torch.float32)
    model.train()  # a user's model in train mode, with some parameters frozen and a gradient already there
    model.layer1[0].conv1.weight.requires_grad_(False)
    model.fc.weight.grad = torch.ones_like(model.fc.weight)
    x.requires_grad_(True)
    return model, x


RESNET_LEVELS = ["relu", "layer1.0", "layer1.1", "layer2.0", "layer2.1", "softmax"]


@pytest.mark.parametrize("rule", ["gradient", "guided", "grad_x_activation"])
def test_no_trace_after_normal_calls(rule: str) -> None:
    model, x = _train_mode_resnet()
    before = state_of(model)
    analysis = stepwise.StepwiseSensitivity(model, RESNET_LEVELS, rule=rule, fence=0.5)
    with pytest.warns(UserWarning, match="model is in train mode; it is analysed in eval mode"):
        graph = analysis.dependency_graph(x, target=1)
    with pytest.warns(UserWarning, match="train mode"):
        analysis.relevance(x, upper="layer1.1", lower="layer1.0", neurons=[0, 1])
    assert graph.edges
    assert_no_hooks(model)
    assert_same_state(before, state_of(model))
    assert x.requires_grad and x.grad is None


def test_no_trace_after_a_module_raises_in_the_middle_of_a_run() -> None:
    """The levels check passes on the first inputs; a later batch makes a module raise."""
    exploding = nn.Sequential(Explodes(), sequential_cnn()).train()
    data = torch.randn(6, 3, 8, 8)
    data[4, 0, 0, 0] = 1000.0
    before = state_of(exploding)
    analysis = stepwise.StepwiseSensitivity(exploding, ["1.1", "1.4", "softmax"], batch_size=2)
    with (
        pytest.warns(UserWarning, match="train mode"),
        pytest.raises(ValueError, match="The model raised RuntimeError"),
    ):
        analysis.dependency_graph(data, target=0)
    assert_no_hooks(exploding)
    assert_same_state(before, state_of(exploding))


@pytest.mark.slow
def test_a_good_call_on_the_bench_takes_more_than_a_second(inputs: Tensor) -> None:
    """What the cases of the catalogue refuse to start is real work."""
    model = VGGStyle().eval()
    calls = [
        lambda: stepwise.StepwiseSensitivity(model, LEVELS).dependency_graph(inputs, target=0),
        lambda: perturb.rank_neurons(model, inputs[0], target=2, n_samples=N_INPUTS),
    ]
    for call in calls:
        with timed() as clock:
            call()
        assert clock["cpu"] > CPU_LIMIT
