"""Levels: which activations are analysed, found and checked in one probing forward pass.

A *level* is a named activation (``docs/design.md``): the output of a module, named as in
``model.named_modules()``, or one of the special names ``"input"`` (the model input, always the bottom),
``"softmax"`` (the softmax of the model output over its channel dimension) and ``"output"`` (the model output
itself), both only on top.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.autograd.graph import Node

from .hooks import (
    all_finite,
    analysis_mode,
    check_has_values,
    check_model_has_values,
    hooked,
    model_device_dtype,
    run_model,
)
from .dataflow import depends_on, grad_node, merges_paths
from .inputs import Batch, KeywordInputs, as_batch
from .validation import unknown_name_message

__all__ = [
    "ACTIVATIONS",
    "NORMALISATIONS",
    "INPUT",
    "OUTPUT",
    "SOFTMAX",
    "WEIGHT_LAYERS",
    "LevelInfo",
    "default_levels",
    "list_levels",
    "resolve_levels",
]

INPUT = "input"
SOFTMAX = "softmax"
OUTPUT = "output"

#: Modules taken as "the elementwise activation that directly follows" a Conv/Linear layer.
ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Softsign, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Tanhshrink,
    nn.LogSigmoid,
)  # fmt: skip
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Bilinear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)  # fmt: skip
_PROBABILITY_MODULES = (nn.Softmax, nn.LogSoftmax)
#: Normalisation layers that may stand between a weight layer and its activation (conv -> BatchNorm -> ReLU).
NORMALISATIONS: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d,
    nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LocalResponseNorm,
)  # fmt: skip


@dataclass(frozen=True)
class LevelInfo:
    """What one level is: its name, the module producing it (``None`` for special levels), its shape.

    Attributes
    ----------
    name : str
        The level name.
    module : torch.nn.Module or None
        The module whose output the level is; ``None`` for ``input``, ``softmax`` and ``output``.
    shape : tuple of int
        The shape of the level's activation for one input, without the batch dimension.
    channel_dim : int
        The dimension of ``shape`` (counting the batch dimension as 0) that indexes neurons.
    rewritten : bool
        Whether a later operation of the forward pass changes the activation in place (an in-place ReLU after a
        convolution level, say), so that :func:`capture` must copy it when the level's module returns.
    """

    name: str
    module: nn.Module | None
    shape: tuple[int, ...]
    channel_dim: int
    rewritten: bool = True

    @property
    def n_neurons(self) -> int:
        """Number of neurons (channels or units) of the level."""
        return self.shape[self.channel_dim - 1]


@dataclass(eq=False)  # calls compare by identity
class _Call:
    name: str
    module: nn.Module
    args: tuple
    output: object
    version: int  # the output's version counter when the call returned: in-place ops later bump it
    source: Node | None  # the autograd node of the first argument when the call began
    node: Node | None  # the autograd node of the output when the call returned


@dataclass
class _Trace:
    calls: list[_Call]  # in order of completion
    output: object  # the model output
    counts: dict[str, int]
    input_node: Node | None  # the autograd node of the model input (None for inputs that are not floats)


def _has_children(module: nn.Module) -> bool:
    return any(True for _ in module.children())


def _trace(model: nn.Module, example: Batch) -> _Trace:
    """One forward pass with a hook on every module, recording autograd nodes (see :mod:`.dataflow`)."""
    names = {m: n for n, m in model.named_modules() if n}
    calls: list[_Call] = []
    counts = dict.fromkeys(names.values(), 0)
    sources: dict[str, Node | None] = {}

    def begin(module: nn.Module, args: tuple) -> None:
        sources[names[module]] = grad_node(args[0]) if args else None

    def record(module: nn.Module, args: tuple, output: object) -> None:
        name = names[module]
        counts[name] += 1
        version = output._version if isinstance(output, Tensor) else -1
        calls.append(_Call(name, module, args, output, version, sources.get(name), grad_node(output)))

    x = example
    if (
        isinstance(example, Tensor) and example.is_floating_point()
    ):  # a non-leaf copy: the model may change its input in place
        x = example.detach().clone().requires_grad_(True).clone()
    with analysis_mode(model, warn=False), torch.enable_grad():
        with hooked(forward=[(m, record) for m in names], forward_pre=[(m, begin) for m in names]):
            output = run_model(model, x)
    return _Trace(calls, output, counts, grad_node(x))


def _residual_blocks(trace: _Trace) -> list[str]:
    """The innermost modules whose output reaches their input along two paths (a skip connection), in order."""
    merging = [
        call.name
        for call in trace.calls
        if trace.counts[call.name] == 1
        and _has_children(call.module)
        and isinstance(call.output, Tensor)
        and merges_paths(call.node, call.source)
    ]
    return [name for name in merging if not any(other.startswith(name + ".") for other in merging)]


def _enclosing(name: str, blocks: Sequence[str]) -> str | None:
    return next((block for block in blocks if name.startswith(block + ".")), None)


def _is_classifier_output(output: object) -> bool:
    return isinstance(output, Tensor) and output.dim() == 2 and output.shape[1] >= 2 and output.is_floating_point()


def _candidate_calls(trace: _Trace) -> list[_Call]:
    """Module calls usable as levels: called once, tensor output. A container returning the previous candidate's
    output unchanged (the same tensor, not changed in place since) is one level with it: a ``Sequential`` (or
    module list) is dropped, any other container (a transformer's ``intermediate``, say) names the level instead
    of the module inside it."""
    seen: list[_Call] = []
    for call in trace.calls:
        if trace.counts[call.name] != 1 or not isinstance(call.output, Tensor) or call.output.dim() < 2:
            continue
        repeats = bool(seen) and seen[-1].output is call.output and seen[-1].version == call.version
        if repeats and _has_children(call.module):
            if not isinstance(call.module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
                seen[-1] = call
            continue
        seen.append(call)
    return seen


def _as_example(model: nn.Module, example_input: Batch | Mapping[str, Tensor]) -> Batch:
    """Check the model and the example batch before the forward pass that probes the levels."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    example_input = as_batch(example_input)
    if not isinstance(example_input, (Tensor, KeywordInputs)):
        raise TypeError(
            f"example_input must be a torch.Tensor batch (N, ...); got {type(example_input).__name__}. "
            "Pass a few inputs stacked along a first batch dimension, or a dict of tensors as a tokenizer returns them."
        )
    if example_input.dim() == 0 or example_input.shape[0] == 0:
        raise ValueError("example_input is empty: pass at least one input (batch dimension first).")
    check_model_has_values(model)
    if isinstance(example_input, Tensor):
        check_has_values(example_input, "example_input")
    device, dtype = model_device_dtype(model)
    if dtype is not None and example_input.device != device:
        raise ValueError(
            f"example_input is on {example_input.device} but the model is on {device}: move one of them, for "
            f"example example_input.to('{device}') or model.to('{example_input.device}')."
        )
    return example_input


def list_levels(model: nn.Module, example_input: Batch | Mapping[str, Tensor]) -> list[str]:
    """List the names that can serve as levels of ``model``, in forward order.

    One forward pass of ``example_input`` (in eval mode, parameters frozen) finds every module that runs
    exactly once and returns a tensor with a batch and a channel dimension. Modules that run several times per
    forward pass (a shared ``nn.ReLU``) cannot be levels and are left out.

    Parameters
    ----------
    model : torch.nn.Module
        The network.
    example_input : Tensor of shape (N, ...), or dict of str to Tensor
        A batch the model accepts: a tensor, or keyword tensors with a batch dimension (a tokenizer's output, see
        :class:`~stepwise.core.inputs.KeywordInputs`), passed as ``model(**example_input)``.

    Returns
    -------
    list of str
        ``"input"`` (unless the inputs are a dict: token ids are no level), the module names in the order their
        outputs are produced, then ``"softmax"`` when the model
        outputs class scores of shape (N, C) with C >= 2, else ``"output"`` when the output is a tensor.

    Examples
    --------
    >>> import torch, stepwise
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> stepwise.list_levels(net, torch.randn(2, 4))
    ['input', '0', '1', '2', 'softmax']
    """
    example = _as_example(model, example_input)
    trace = _trace(model, example)
    names = [] if isinstance(example, KeywordInputs) else [INPUT]  # token ids are no level
    names += [call.name for call in _candidate_calls(trace)]
    if _is_classifier_output(trace.output):
        names.append(SOFTMAX)
    elif isinstance(trace.output, Tensor):
        names.append(OUTPUT)
    return names


def default_levels(model: nn.Module, example_input: Batch | Mapping[str, Tensor]) -> list[str]:
    """Propose levels as ``docs/design.md`` defines them, bottom to top.

    Every Conv/Linear layer's output, taken after the elementwise activation module that directly follows it
    (through normalisation layers in between: conv -> BatchNorm -> ReLU gives the ReLU) when that module runs
    once; on residual networks the output of each residual block instead of the layers inside it, so that no
    level lies on a skip branch (a block is a module whose output reaches its input along two paths of the
    autograd graph, found in the probing pass: torchvision's BasicBlock and Bottleneck, or any module whose
    ``forward`` adds a skip); on top ``"softmax"`` when the model outputs class scores (N, C), C >= 2 (the layer
    producing those scores is then replaced by ``softmax``), else the model output itself. Pooling, flatten,
    dropout and normalisation are never levels; ``"input"`` is not included.

    Parameters
    ----------
    model : torch.nn.Module
        The network.
    example_input : Tensor of shape (N, ...), or dict of str to Tensor
        A batch the model accepts: a tensor, or keyword tensors with a batch dimension (a tokenizer's output, see
        :class:`~stepwise.core.inputs.KeywordInputs`), passed as ``model(**example_input)``.

    Returns
    -------
    list of str

    Examples
    --------
    >>> import torch, stepwise
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> stepwise.default_levels(net, torch.randn(2, 4))
    ['1', 'softmax']
    """
    return _default_levels(_trace(model, _as_example(model, example_input)))


def _after_activation(call: _Call, leaf_calls: list[_Call], counts: dict[str, int]) -> _Call:
    """The call whose output is ``call``'s level: the activation that directly follows the weight layer (through
    normalisation layers in between, conv -> BatchNorm -> ReLU), else the weight layer itself."""
    current = call
    for nxt in leaf_calls[leaf_calls.index(call) + 1 :]:
        direct = counts[nxt.name] == 1 and bool(nxt.args) and nxt.args[0] is current.output
        if direct and isinstance(nxt.module, NORMALISATIONS):
            current = nxt
            continue
        if direct and isinstance(nxt.module, ACTIVATIONS + _PROBABILITY_MODULES):
            return nxt
        break
    return call


def _default_levels(trace: _Trace) -> list[str]:
    blocks = _residual_blocks(trace)
    leaf_calls = [c for c in trace.calls if not _has_children(c.module)]
    levels: list[tuple[str, object]] = []
    for call in trace.calls:
        if call.name in blocks:
            levels.append((call.name, call.output))
        elif (
            call in leaf_calls
            and isinstance(call.module, WEIGHT_LAYERS)
            and trace.counts[call.name] == 1
            and _enclosing(call.name, blocks) is None
        ):
            chosen = _after_activation(call, leaf_calls, trace.counts)
            levels.append((chosen.name, chosen.output))
    output = trace.output
    if _is_classifier_output(output):
        last = leaf_calls[-1] if leaf_calls else None
        if last is not None and isinstance(last.module, _PROBABILITY_MODULES) and last.output is output:
            if trace.counts[last.name] == 1 and not (levels and levels[-1][0] == last.name):
                levels.append((last.name, output))
        else:
            if levels and levels[-1][1] is output:
                levels.pop()
            levels.append((SOFTMAX, None))
    elif isinstance(output, Tensor) and not (levels and levels[-1][1] is output):
        levels.append((OUTPUT, None))
    return [name for name, _ in levels]


def resolve_levels(
    model: nn.Module,
    example_input: Batch | Mapping[str, Tensor],
    levels: Sequence[str] | None,
    *,
    channel_dim: int | None = None,
    steps: bool = False,
) -> list[LevelInfo]:
    """Check a list of level names against one forward pass and describe each level.

    Parameters
    ----------
    model : torch.nn.Module
    example_input : Tensor of shape (N, ...), or dict of str to Tensor
        As for :func:`list_levels`.
    levels : sequence of str or None
        Level names bottom to top; ``None`` means :func:`default_levels`.
    channel_dim : int, optional
        The dimension that indexes neurons in levels with more than two dimensions. By default 1, except on the
        token levels of inputs given as a dict, (N, T, D) activations whose T is the length of the token ids, where
        it is 2: each unit is a neuron, its value the mean over the real tokens (channel_dim=1 is refused there).
    steps : bool, default=False
        Also check that each level depends on the level below it (a step between them has a derivative), as
        a traversal needs; found in the same forward pass (:mod:`stepwise.core.dataflow`), for float inputs.

    Returns
    -------
    list of LevelInfo
        One entry per level, bottom to top.

    Raises
    ------
    ValueError
        For an unknown name (close matches are suggested), a repeated name, names out of forward order, a level
        that never runs or runs several times per forward pass, a level whose output is not a tensor with a
        batch and a channel dimension, fewer than two levels, or non-finite activations; ``levels=None`` for a
        model that returns no tensor; a model or an example on the meta device, or on different devices; with
        ``steps``, a level that does not depend on the level below it (the message names the enclosing block).
    TypeError
        If ``model`` is not a module, ``example_input`` not a tensor, or ``levels`` not a sequence of strings.
    """
    example = _as_example(model, example_input)
    trace = _trace(model, example)
    names = _checked_names(model, trace, levels)
    modules = {n: m for n, m in model.named_modules() if n}
    infos = [_level_info(model, trace, example, modules, name, channel_dim) for name in names]
    _check_forward_order(names, trace)
    if steps:
        _check_steps(names, trace)
    return infos


def _checked_names(model: nn.Module, trace: _Trace, levels: Sequence[str] | None) -> list[str]:
    """The level names, defaults filled in, checked for type, number, repeats, position and existence."""
    model_name = type(model).__name__
    if levels is None:
        if not isinstance(trace.output, Tensor):
            raise ValueError(
                f"{model_name} returns a {type(trace.output).__name__}, not a tensor, so the default levels have no "
                "top. Wrap the model so that it returns one tensor (the class scores), or name the levels, bottom "
                "to top, with the module whose output you want on top last (see stepwise.list_levels(model, "
                "example_input))."
            )
        return _default_levels(trace)
    if isinstance(levels, str) or not isinstance(levels, Sequence):
        raise TypeError(
            f"levels must be a list of level names, bottom to top; got {type(levels).__name__}. "
            "See stepwise.list_levels(model, example_input)."
        )
    names = list(levels)
    if not all(isinstance(name, str) for name in names):
        raise TypeError(
            f"levels must be a list of str; got {names!r}. Name each level as in model.named_modules() (see "
            "stepwise.list_levels(model, example_input))."
        )
    if len(names) < 2:
        raise ValueError(
            f"At least two levels are needed for one step; got {names!r}. "
            "See stepwise.list_levels(model, example_input) for the candidates."
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"Level(s) {repeated} appear more than once in levels: name each level once.")
    modules = [n for n, _ in model.named_modules() if n]
    for position, name in enumerate(names):
        if name == INPUT and position != 0:
            raise ValueError(f"'input' can only be the first (bottom) level; it is at position {position}.")
        if name in (SOFTMAX, OUTPUT) and position != len(names) - 1:
            raise ValueError(f"{name!r} can only be the last (top) level; it is at position {position}.")
        if name not in (INPUT, SOFTMAX, OUTPUT) and name not in modules:
            raise ValueError(
                unknown_name_message(
                    "module",
                    name,
                    model_name,
                    modules + [INPUT, SOFTMAX, OUTPUT],
                    "See stepwise.list_levels(model, example_input).",
                )
            )
    return names


def _top_tensor(trace: _Trace, name: str) -> Tensor:
    """The model output as the ``softmax`` or ``output`` level, checked."""
    tensor = trace.output
    if not isinstance(tensor, Tensor):
        raise ValueError(
            f"The model output is a {type(tensor).__name__}, not a tensor, so {name!r} cannot be a level. "
            "Wrap the model so that it returns one tensor, or name the module whose output you want on top "
            "instead (see stepwise.list_levels)."
        )
    if name == SOFTMAX and (tensor.dim() < 2 or tensor.shape[1] < 2):
        raise ValueError(
            f"'softmax' needs class scores of shape (N, C) with C >= 2; the model output has shape "
            f"{tuple(tensor.shape)}. Use 'output' (the raw model output) as the top level."
        )
    return tensor


def _module_call(model: nn.Module, trace: _Trace, name: str) -> _Call:
    """The one call of the module ``name``, whose output is a tensor."""
    model_name = type(model).__name__
    count = trace.counts[name]
    if count == 0:
        raise ValueError(
            f"Level {name!r} never runs in a forward pass of {model_name}: choose a module that runs "
            "(see stepwise.list_levels(model, example_input))."
        )
    if count > 1:
        raise ValueError(
            f"Level {name!r} runs {count} times per forward pass of {model_name} (a module reused, such "
            "as a shared nn.ReLU), so its output is ambiguous. Use a separate module instance for each "
            "use, or take the enclosing block's output as the level."
        )
    call = next(call for call in trace.calls if call.name == name)
    if not isinstance(call.output, Tensor):
        raise ValueError(
            f"Level {name!r} returns a {type(call.output).__name__}, not a tensor. Choose a module that "
            "returns a tensor (see stepwise.list_levels(model, example_input))."
        )
    return call


def _level_info(
    model: nn.Module,
    trace: _Trace,
    example: Batch,
    modules: dict[str, nn.Module],
    name: str,
    channel_dim: int | None,
) -> LevelInfo:
    """Describe one level from its tensor in the probing pass: shape, channel dimension, finiteness, rewrites."""
    if name == INPUT and isinstance(example, KeywordInputs):
        raise ValueError(
            f"'input' cannot be a level of inputs given as a dict ({sorted(example.tensors)}): token ids have no "
            "derivative and cannot be perturbed. Take the embeddings as the bottom level instead, the module whose "
            "output they are (for a BERT-style model 'embeddings'; see stepwise.list_levels(model, inputs))."
        )
    if name == INPUT:
        tensor, rewritten = example, True
    elif name in (SOFTMAX, OUTPUT):
        tensor, rewritten = _top_tensor(trace, name), False
    else:
        call = _module_call(model, trace, name)
        tensor, rewritten = call.output, call.output._version != call.version
    if tensor.dim() < 2:
        raise ValueError(
            f"Level {name!r} has shape {tuple(tensor.shape)}: a level needs a batch and a channel dimension."
        )
    if not all_finite(tensor.detach()):
        raise ValueError(
            f"Level {name!r} holds NaN or Inf values for the given inputs: check the inputs and the model "
            "weights for non-finite values."
        )
    tokens = isinstance(example, KeywordInputs) and tensor.dim() == 3 and tensor.shape[:2] == example.shape[:2]
    if channel_dim is None:
        channel_dim = 2 if tokens else 1
    dim = channel_dim if tensor.dim() > 2 else 1
    if not 1 <= dim < tensor.dim():
        raise ValueError(
            f"channel_dim={channel_dim} does not fit level {name!r} of shape {tuple(tensor.shape)}: "
            "pass a dimension between 1 and the number of dimensions minus one."
        )
    if tokens and dim == 1:
        raise ValueError(
            f"channel_dim=1 makes the {tensor.shape[1]} token positions of level {name!r} (shape "
            f"{tuple(tensor.shape[1:])} per input) its neurons, so padding would change them. Pass channel_dim=2: "
            f"each of the {tensor.shape[2]} units is then a neuron, its value the mean over the real tokens."
        )
    return LevelInfo(name, modules.get(name), tuple(tensor.shape[1:]), dim, rewritten)


def _check_forward_order(names: list[str], trace: _Trace) -> None:
    order = {call.name: i for i, call in enumerate(trace.calls) if trace.counts[call.name] == 1}
    module_levels = [name for name in names if name in order]
    forward = sorted(module_levels, key=order.__getitem__)
    if module_levels != forward:
        raise ValueError(
            f"Levels are not in forward order (bottom to top): got {module_levels}, the model computes them in "
            f"the order {forward}. List levels bottom to top."
        )


def _level_node(trace: _Trace, name: str) -> Node | None:
    if name == INPUT:
        return trace.input_node
    if name in (SOFTMAX, OUTPUT):
        return grad_node(trace.output)
    return next(call.node for call in trace.calls if call.name == name)


def _check_steps(names: list[str], trace: _Trace) -> None:
    """Each level depends on the one below it: a step between two parallel branches has no derivative."""
    if trace.input_node is None:  # inputs that are not floats: autograd recorded nothing to check with
        return
    blocks = _residual_blocks(trace)
    for lower, upper in zip(names, names[1:]):
        lower_node = _level_node(trace, lower)
        if lower_node is None or depends_on(_level_node(trace, upper), lower_node):
            continue
        block = _enclosing(lower, blocks) or _enclosing(upper, blocks)
        fix = (
            f"Take the output of the enclosing block, {block!r}, as the level instead"
            if block
            else "Choose levels that lie on one path of the forward pass"
        )
        raise ValueError(
            f"The upper level {upper!r} does not depend on the lower level {lower!r}: no path of the forward pass "
            f"leads from {lower!r} to {upper!r} (one of them lies on a skip or parallel branch), so the step between "
            f"them has no derivative to follow. {fix} (stepwise.default_levels(model, example_input) proposes block "
            "outputs on residual networks)."
        )
