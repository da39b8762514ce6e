"""The machinery of the catalogue of bad inputs (tests/common/catalogue/test_*.py): the bench, the cases' types, and
the checks every case goes through: the exception and its fix, forward passes counted, CPU time, no hook left, the
model's state restored, no file written (see test_api.py's docstring)."""

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
from tests.helpers import VGGStyle, build_case
from torch import Tensor, nn

import perturb
import stepwise
from perturb import NeuronRanking
from stepwise import DependencyGraph
from stepwise.cli import main
from stepwise.models import DigitsCNN, digits_cnn, digits_data

N_INPUTS = 1024
SHAPE = (3, 64, 64)
PROBE = 2  # inputs in a checking pass: the levels are probed on the first two inputs (a ranking: on its one image)
CPU_LIMIT = 1.0  # seconds of CPU time of the process
WALL_LIMIT = 10.0  # seconds of wall-clock time: a loaded machine stretches it, so it only catches real work
RANGE_1 = "must be an int in the range [1, inf)"
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
    """``--model tests.common.catalogue.bench:digits_pair``: the shipped digits CNN returning (scores, input), a tuple."""
    return Packed(digits_cnn())


def mismatched_torchvision() -> nn.Module:
    """``--model tests.common.catalogue.bench:mismatched_torchvision``: a factory that imports a torchvision built for
    another torch, which fails as such a build does."""
    raise RuntimeError("operator torchvision::nms does not exist")


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
    """``forward`` recording the batch size of each call (the batch is the last positional argument, or the first
    keyword argument for keyword inputs)."""

    @functools.wraps(forward)
    def counted(*args: Any, **kwargs: Any) -> Any:
        sizes.append(len(args[-1] if args else next(iter(kwargs.values()))))
        return forward(*args, **kwargs)

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


def warm() -> None:
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


def bench_inputs() -> Tensor:
    return torch.randn((N_INPUTS, *SHAPE), generator=torch.Generator().manual_seed(3))


def bench_graphs() -> list[DependencyGraph]:
    """Three class graphs of a small network."""
    model, _, _, levels = build_case("sequential", torch.float32)
    analysis = stepwise.StepwiseSensitivity(model, levels)
    data = torch.randn(20, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a traversal that ends early is still a graph
        return [analysis.dependency_graph(data, target=c) for c in range(3)]


def check_api(case: Bad, inputs: Tensor, graphs: list[DependencyGraph], tmp_path: Path) -> None:
    """Run one bad Python call on the bench and check everything the catalogue promises (module docstring)."""
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


def make_command_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
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


def check_command(
    case: BadCommand,
    command_files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run one bad command line and check the exit status, the message, the passes, the time and the files."""
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
