"""The SSA wrapper: from the target neuron(s) down to the bottom level, step by step -> DependencyGraph.

Algorithm 1 of the SSA paper with the conventions of docs/design.md. Each step streams the inputs in batches: one
forward pass per batch records the autograd graph of that step only (everything below the lower level runs
without gradients, nothing above the upper level runs), then the upper neurons are back-propagated in chunks.
Only outlier counts and sums of ω are kept between batches.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any

import networkx as nx
import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from stepwise._version import __version__
from .checkpoint import Checkpoint, checkpoint_path, model_digest, tensor_digest
from stepwise.graphs.dependency import DependencyGraph, node_key
from .closed_form import ClosedFormStep, LayerStep, Scratch
from .plan import plan_closed_form
from stepwise.core.levels import SOFTMAX, LevelInfo, resolve_levels
from stepwise.core.hooks import all_finite, analysis_mode, forward_pass, model_device_dtype
from stepwise.core.inputs import Batch, KeywordInputs, batch_mask, stack_inputs
from .step import step_forward
from .relevance import RULES, step_relevance
from .select import SIGNS, outlier_mask, select_children
from stepwise.core.typing import Inputs, Neurons, Target
from stepwise.core.validation import check_bool, check_float, check_int, check_neurons, check_option

__all__ = ["StepwiseSensitivity"]

_OWNER = "StepwiseSensitivity"
_OUTLIER_WORDS = {"positive": "a positive Tukey outlier", "negative": "a negative Tukey outlier",
                  "both": "a Tukey outlier of either sign"}  # fmt: skip
#: Bytes of activations per batch that the automatic batch size aims at.
_BATCH_BYTES = 1 << 30


#: An edge found by a step: (upper neuron, lower neuron, count, mean ω).
_Edge = tuple[int, int, int, float]


@dataclass
class _StepStats:
    counts: Tensor  # (n_neurons, K) int64: inputs in which k is an outlier for n
    omega_sum: Tensor  # (n_neurons, K) float64: sum of ω over inputs
    omega: Tensor | None  # (n_neurons, N, K) when asked for


class StepwiseSensitivity:
    """Step-wise sensitivity analysis (SSA) of a trained network.

    Parameters
    ----------
    model : torch.nn.Module
        The trained network. It is analysed in eval mode (and put back as it was).
    levels : list of str, optional
        Level names bottom to top: module names as in ``model.named_modules()``, optionally ``"input"`` first
        and ``"softmax"`` or ``"output"`` last. ``None`` means :func:`stepwise.default_levels`.
    branching : int, default=3
        Children kept per neuron (the paper's b).
    rule : {'gradient', 'guided', 'grad_x_activation'}, default='gradient'
        How ω is computed: plain gradient, guided backpropagation through the ``nn.ReLU`` modules inside the
        step (as the paper used), or gradient times the lower activation.
    fence : float, default=1.5
        Tukey's fence: outliers lie beyond ``fence`` inter-quartile ranges from the quartiles.
    sign : {'positive', 'negative', 'both'}, default='positive'
        Which outliers count: excitatory, inhibitory or either.
    batch_size : int, optional
        Inputs per forward pass; by default chosen from the size of the activations (about 1 GiB a batch).
    progress : bool, default=False
        Show a progress bar.
    channel_dim : int, optional
        The dimension that indexes neurons in levels with more than two dimensions: by default 1, and 2 on the
        (N, T, D) token levels of inputs given as a dict (a transformer's), where a neuron's value is the mean of
        its unit over the real tokens of the token mask, and ω the mean over the same tokens.
    closed_form : bool, default=True
        Compute single-layer steps (pooling, dropout or flatten, then one Conv or Linear layer with an optional
        BatchNorm and elementwise activation, or the softmax on top) and residual blocks by their exact closed
        form from statistics gathered in one forward pass (:mod:`stepwise.closed_form`): single-layer steps for
        the ``gradient`` and ``guided`` rules, blocks for ``gradient``. ``False`` uses autograd for every step;
        both give the same ω.

    Examples
    --------
    >>> import torch, stepwise
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()
    >>> ssa = stepwise.StepwiseSensitivity(net, ["input", "1", "softmax"])
    >>> graph = ssa.dependency_graph(torch.randn(20, 8), target=2)
    >>> graph.levels
    ['input', '1', 'softmax']
    """

    def __init__(
        self,
        model: nn.Module,
        levels: Sequence[str] | None = None,
        *,
        branching: int = 3,
        rule: str = "gradient",
        fence: float = 1.5,
        sign: str = "positive",
        batch_size: int | None = None,
        progress: bool = False,
        channel_dim: int | None = None,
        closed_form: bool = True,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
        if levels is not None and (isinstance(levels, str) or not isinstance(levels, Sequence)):
            raise TypeError(
                f"levels must be a list of level names bottom to top, or None; got {type(levels).__name__}. "
                "See stepwise.list_levels(model, example_input)."
            )
        self.model = model
        self.levels = None if levels is None else list(levels)
        self.branching = check_int(branching, "branching", _OWNER, low=1)
        self.rule = check_option(rule, "rule", _OWNER, RULES)
        self.fence = check_float(fence, "fence", _OWNER, low=0.0, closed_low=False)
        self.sign = check_option(sign, "sign", _OWNER, SIGNS)
        self.batch_size = None if batch_size is None else check_int(batch_size, "batch_size", _OWNER, low=1)
        self.progress = check_bool(progress, "progress", _OWNER)
        self.channel_dim = None if channel_dim is None else check_int(channel_dim, "channel_dim", _OWNER, low=1)
        self.closed_form = check_bool(closed_form, "closed_form", _OWNER)
        self._resolved: dict[tuple, tuple[list[LevelInfo], dict[int, ClosedFormStep]]] = {}

    def __repr__(self) -> str:
        return (
            f"StepwiseSensitivity({type(self.model).__name__}, levels={self.levels!r}, branching={self.branching}, "
            f"rule={self.rule!r}, fence={self.fence}, sign={self.sign!r})"
        )

    # ---------------------------------------------------------------------------------------------- set-up

    def _prepare(self, inputs: object) -> tuple[Batch, list[LevelInfo], dict[int, ClosedFormStep], int]:
        """Stack and check the inputs, resolve the levels and the closed-form steps (cached per input
        signature), pick the batch size."""
        data = stack_inputs(inputs)
        device, dtype = model_device_dtype(self.model)
        if data.is_floating_point() and dtype is not None and data.dtype != dtype:
            raise TypeError(
                f"inputs are {data.dtype} but the model computes in {dtype}: convert one of them, for example "
                f"inputs.to({dtype}) or model.to({data.dtype})."
            )
        if isinstance(data, Tensor) and not all_finite(data):
            raise ValueError("inputs hold NaN or Inf values: remove or replace them before the analysis.")
        key = (tuple(data.shape[1:]), data.dtype, device, isinstance(data, KeywordInputs))
        if key not in self._resolved:
            example = data[:2].to(device)
            infos = resolve_levels(self.model, example, self.levels, channel_dim=self.channel_dim, steps=True)
            plan = plan_closed_form(self.model, infos) if self.closed_form else {}
            if self.rule != "gradient":  # guided equals the gradient only without an nn.ReLU inside the step
                kept = (LayerStep,) if self.rule == "guided" else ()
                plan = {position: step for position, step in plan.items() if isinstance(step, kept)}
            self._resolved[key] = (infos, plan)
        infos, plan = self._resolved[key]
        batch_size = self.batch_size
        if batch_size is None:
            per_input = 4 * data.element_size() * sum(int(np.prod(info.shape)) for info in infos)
            batch_size = max(1, min(len(data), _BATCH_BYTES // max(per_input, 1)))
        return data, infos, plan, batch_size

    @staticmethod
    def _level(infos: list[LevelInfo], name: object, role: str) -> int:
        names = [info.name for info in infos]
        if not isinstance(name, str) or name not in names:
            raise ValueError(f"{role}={name!r} is not one of the analysed levels {names}.")
        return names.index(name)

    @staticmethod
    def _neurons(info: LevelInfo, neurons: object, *, owner: str = _OWNER, name: str = "neurons") -> list[int]:
        return check_neurons(neurons, info.n_neurons, level=info.name, owner=owner, name=name)

    # ------------------------------------------------------------------------------------------ one step

    def _step(
        self,
        data: Batch,
        batch_size: int,
        lower: LevelInfo,
        upper: LevelInfo,
        neurons: list[int],
        *,
        keep_omega: bool,
        bar: Any,
    ) -> _StepStats:
        device, _ = model_device_dtype(self.model)
        counts = torch.zeros(len(neurons), lower.n_neurons, dtype=torch.int64, device=device)
        omega_sum = torch.zeros(len(neurons), lower.n_neurons, dtype=torch.float64, device=device)
        kept = []
        for start in range(0, len(data), batch_size):
            batch = data[start : start + batch_size].to(device)
            with torch.enable_grad():
                leaf, up = step_forward(self.model, batch, lower, upper, guided=self.rule == "guided")
                for info, value in ((lower, leaf), (upper, up)):
                    if not all_finite(value):
                        raise ValueError(
                            f"Level {info.name!r} holds NaN or Inf values for inputs {start} to "
                            f"{start + len(batch) - 1}: check those inputs and the model weights."
                        )
                omega = step_relevance(
                    leaf,
                    up,
                    neurons,
                    rule=self.rule,
                    lower_channel_dim=lower.channel_dim,
                    upper_channel_dim=upper.channel_dim,
                    mask=batch_mask(batch),
                ).detach()
            del leaf, up
            counts += outlier_mask(omega, fence=self.fence, sign=self.sign).sum(dim=1)
            omega_sum += omega.sum(dim=1, dtype=torch.float64)
            if keep_omega:
                kept.append(omega)
            bar.update(1)
        return _StepStats(counts, omega_sum, torch.cat(kept, dim=1) if keep_omega else None)

    def _collect(self, data: Batch, batch_size: int, steps: dict[int, ClosedFormStep], bar: Any) -> None:
        """One streamed forward pass without gradients that gathers the statistics of the closed-form steps."""
        device, _ = model_device_dtype(self.model)
        top = steps[max(steps)].upper.module  # None when the model output is needed (softmax, output)
        scratch = Scratch()
        hooks = [hook for step in steps.values() for hook in step.hooks(scratch)]
        with torch.no_grad():
            for start in range(0, len(data), batch_size):
                forward_pass(self.model, data[start : start + batch_size].to(device), hooks, stop_after=top)
                bar.update(1)

    def _run_step(self, inputs: object, upper: str, lower: str, neurons: object, *, keep_omega: bool) -> _StepStats:
        data, infos, plan, batch_size = self._prepare(inputs)
        up_index = self._level(infos, upper, "upper")
        low_index = self._level(infos, lower, "lower")
        if low_index >= up_index:
            raise ValueError(
                f"lower={lower!r} must be below upper={upper!r} in levels {[i.name for i in infos]} (bottom to top)."
            )
        chosen = self._neurons(infos[up_index], neurons)
        n_batches = -(-len(data) // batch_size)
        closed_step = plan.get(up_index) if up_index == low_index + 1 else None
        with (
            analysis_mode(self.model, owner=_OWNER),
            tqdm(total=n_batches, disable=not self.progress, desc=f"{lower} <- {upper}") as bar,
        ):
            if closed_step is None:
                return self._step(
                    data, batch_size, infos[low_index], infos[up_index], chosen, keep_omega=keep_omega, bar=bar
                )
            try:
                self._collect(data, batch_size, {up_index: closed_step}, bar)
                return self._closed_step(closed_step, chosen, len(data), keep_omega=keep_omega)
            finally:
                closed_step.clear()

    def _closed_step(self, step: ClosedFormStep, neurons: list[int], n_inputs: int, *, keep_omega: bool) -> _StepStats:
        device, _ = model_device_dtype(self.model)
        index = torch.tensor(neurons, dtype=torch.long, device=device)
        if keep_omega:
            omega = step.relevance(index, n_inputs)
            counts = outlier_mask(omega, fence=self.fence, sign=self.sign).sum(dim=1)
            return _StepStats(counts, omega.sum(dim=1, dtype=torch.float64), omega)
        counts, omega_sum = step.statistics(index, n_inputs, fence=self.fence, sign=self.sign)
        return _StepStats(counts, omega_sum, None)

    def relevance(self, inputs: Inputs, *, upper: str, lower: str, neurons: Neurons) -> Tensor:
        """Relevance ω of every neuron of ``lower`` for each of ``neurons`` of ``upper``, on every input.

        Parameters
        ----------
        inputs : Tensor of shape (N, ...), dict of str to Tensor, or iterable of tensors or (x, y) batches
            A dict (a tokenizer's output, :class:`~stepwise.core.inputs.KeywordInputs`) is passed to the model as
            keyword arguments; its token mask makes the neurons of (N, T, D) levels means over the real tokens.
        upper, lower : str
            Levels of this analysis; ``lower`` below ``upper`` (usually adjacent: one step).
        neurons : int or sequence of int
            Neurons (channels or units) of ``upper``.

        Returns
        -------
        Tensor of shape (len(neurons), N, n_lower)
            ``omega[n, i, k]``: mean over the positions of lower channel k of the derivative of neuron
            ``neurons[n]``'s scalar with respect to the lower activation, at input i (docs/design.md), in the model's
            dtype and on its device.

        Raises
        ------
        ValueError, TypeError
            For unknown levels, levels out of order, neurons out of range, empty inputs, inputs the model
            rejects, or non-finite activations.
        """
        stats = self._run_step(inputs, upper, lower, neurons, keep_omega=True)
        assert stats.omega is not None
        return stats.omega

    def outlier_counts(self, inputs: Inputs, *, upper: str, lower: str, neurons: Neurons) -> Tensor:
        """How many inputs make each lower neuron an outlier of ω for each upper neuron.

        Parameters
        ----------
        inputs, upper, lower, neurons
            As in :meth:`relevance`.

        Returns
        -------
        Tensor of shape (len(neurons), n_lower), int64
            ``counts[n, k]``: the number of inputs i for which ω[n, i, k] is an outlier of its row (of the sign
            chosen by ``sign``).
        """
        return self._run_step(inputs, upper, lower, neurons, keep_omega=False).counts

    # ------------------------------------------------------------------------------------------ traversal

    def _targets(self, infos: list[LevelInfo], target: object) -> dict[int, set[int]]:
        """Target neurons per level index."""
        top, owner = infos[-1], f"{_OWNER}.dependency_graph"
        if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
            return {len(infos) - 1: set(self._neurons(top, int(target), owner=owner, name="target"))}
        if isinstance(target, Iterable) and not isinstance(target, (str, bytes, Tensor, np.ndarray)):
            chosen: dict[int, set[int]] = {}
            pairs = list(target)
            if not pairs:
                raise ValueError("target is empty: name a class index or at least one (level, index) neuron.")
            for pair in pairs:
                if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                    raise TypeError(f"target entries must be (level, index) pairs; got {pair!r}.")
                position = self._level(infos, pair[0], "target level")
                chosen.setdefault(position, set()).update(
                    self._neurons(infos[position], pair[1], owner=owner, name="target")
                )
            return chosen
        raise TypeError(
            f"target must be a class index (int) of the top level {top.name!r} or a list of (level, index) pairs; "
            f"got {type(target).__name__}. Pass a Python int (int(target) converts a one-element tensor or array)."
        )

    def _advice(self, upper: LevelInfo, *, top: bool) -> str:
        """What usually helps when the step below ``upper`` finds no outlier, most helpful first.

        A smaller fence admits the most outliers (on a ResNet-18 with random weights a traversal that stopped at
        fence 1.5 reached the bottom at 1.0 with 25 nodes and at 0.5 with 45), then more inputs; ``sign='both'``
        adds inhibitory outliers but ranks them with the excitatory ones, so it can give fewer children. The
        ``softmax`` top helps only at the top step, and only when the top is another level (``docs/design.md``).
        """
        advice = []
        if top and upper.name != SOFTMAX:
            advice.append(
                "the 'softmax' top level (from the logits the first step's row is one weight row, which on trained "
                "models often has no Tukey outlier)"
            )
        advice += [f"a smaller fence than {self.fence} (for example {self.fence / 2:g})", "more inputs"]
        if self.sign != "both":
            advice.append("sign='both'")
        return ", then ".join(advice)

    def dependency_graph(
        self, inputs: Inputs, *, target: Target, checkpoint: str | PathLike | None = None
    ) -> DependencyGraph:
        """Traverse the network from ``target`` down to the bottom level and return the dependency graph.

        At each step from an upper level to the one below it, every neuron of the current set gets as children
        the ``branching`` lower neurons that are Tukey outliers of ω in the most inputs (docs/design.md); the union of
        the children is the next set. When a step finds no child for any neuron, the traversal ends there with a
        warning, and the graph records where (``stopped_at``) and why (``stop_reason``).

        Parameters
        ----------
        inputs : Tensor of shape (N, ...), dict of str to Tensor, or iterable of tensors or (x, y) batches
            Inputs of one class, usually; a dict as for :meth:`relevance`.
        target : int or list of (str, int)
            A neuron index of the top level (the class for ``softmax``), or neurons ``(level, index)`` at any
            levels; the traversal starts at the highest level named.
        checkpoint : str or path-like, optional
            A JSON file (:mod:`stepwise.checkpoint`) that records each finished step, rewritten atomically after
            every step. When it exists, the steps it records are not computed again: a rerun with the same
            arguments after an interruption resumes where the run stopped and returns the identical graph (with
            the same warnings). When the traversal ends, the file is kept, marked complete, so that a rerun
            returns the graph at once; delete it to compute afresh.

        Returns
        -------
        DependencyGraph

        Raises
        ------
        ValueError
            If ``checkpoint`` names a folder, is not a checkpoint (for example damaged), or was made by another
            analysis: another stepwise version, other settings (levels, target, rule, branching, fence, sign,
            batch size, ...), other model parameters or buffers, or other inputs. Nothing is mixed in.
        TypeError
            If ``checkpoint`` is not a str or path-like.
        FileNotFoundError
            If the folder of ``checkpoint`` does not exist.
        """
        path = None if checkpoint is None else checkpoint_path(checkpoint, f"{_OWNER}.dependency_graph")
        data, infos, plan, batch_size = self._prepare(inputs)
        targets = self._targets(infos, target)
        start = max(targets)
        n_batches = -(-len(data) // batch_size)
        graph = nx.DiGraph(
            model=type(self.model).__name__,
            levels=[info.name for info in infos],
            target=int(target) if isinstance(target, (int, np.integer)) else [[str(a), int(b)] for a, b in target],
            rule=self.rule,
            branching=self.branching,
            fence=self.fence,
            sign=self.sign,
            n_inputs=len(data),
            version=__version__,
        )
        journal = None if path is None else Checkpoint(path, self._fingerprint(data, graph.graph, batch_size))
        # Positions start, start - 1, ..., 1 are steps; those a checkpoint records are not computed again.
        first = start
        if journal is not None:
            first = 0 if journal.complete else start - len(journal.steps)
        plan = {position: step for position, step in plan.items() if position <= first}
        passes = (1 if plan else 0) + sum(1 for position in range(first, 0, -1) if position not in plan)
        with (
            analysis_mode(self.model, owner=_OWNER),
            tqdm(total=passes * n_batches, disable=not self.progress, desc="dependency graph") as bar,
        ):
            try:
                if plan:
                    bar.set_postfix_str(f"closed-form statistics of {len(plan)} steps")
                    self._collect(data, batch_size, plan, bar)
                self._traverse(data, batch_size, infos, plan, targets, start, graph, bar, journal)
            finally:
                for step in plan.values():
                    step.clear()
        return DependencyGraph(graph)

    def _fingerprint(self, data: Batch, attrs: dict[str, Any], batch_size: int) -> dict[str, Any]:
        """What a checkpoint must match: the version, the settings, hashes of the model and of the inputs."""
        device, _ = model_device_dtype(self.model)
        names = ("levels", "target", "rule", "branching", "fence", "sign")
        settings = {name: attrs[name] for name in names}
        settings.update(
            channel_dim=self.channel_dim, closed_form=self.closed_form, batch_size=batch_size, device=device.type
        )
        return {
            "version": __version__,
            "settings": settings,
            "model": {"class": type(self.model).__name__, "sha256": model_digest(self.model)},
            "inputs": {"shape": list(data.shape), "dtype": str(data.dtype), "sha256": tensor_digest(data)},
        }

    def _traverse(
        self,
        data: Batch,
        batch_size: int,
        infos: list[LevelInfo],
        plan: dict[int, ClosedFormStep],
        targets: dict[int, set[int]],
        start: int,
        graph: nx.DiGraph,
        bar: Any,
        journal: Checkpoint | None,
    ) -> None:
        """Steps from level ``start`` down, adding nodes and edges to ``graph``. The steps ``journal`` records are
        read from it; the others are computed, and recorded when there is a journal."""
        top = len(infos) - 1

        def add_nodes(position: int, neurons: Iterable[int]) -> None:
            for n in neurons:
                graph.add_node(node_key(infos[position].name, n), level=infos[position].name, index=int(n),
                               depth=top - position)  # fmt: skip

        current = sorted(targets[start])
        add_nodes(start, current)
        for position in range(start, 0, -1):
            upper, lower = infos[position], infos[position - 1]
            explicit = targets.get(position - 1, set())
            if journal is not None and start - position < len(journal.steps):
                edges, following = _recorded_step(journal, start - position, position, infos, current, len(data))
            else:
                bar.set_postfix_str(f"{lower.name} <- {upper.name} ({len(current)} neurons)")
                edges = self._compute_step(data, batch_size, lower, upper, plan.get(position), current, bar)
                following = sorted({child for _, child, _, _ in edges} | explicit)
                if journal is not None:
                    step = {"position": position, "step": f"{lower.name} <- {upper.name}", "edges": edges,
                            "next": following}  # fmt: skip
                    journal.record(step, complete=position == 1 or not following)
            for parent, child, count, relevance in edges:
                add_nodes(position - 1, [child])
                graph.add_edge(
                    node_key(upper.name, parent),
                    node_key(lower.name, child),
                    count=count,
                    frequency=float(count) / len(data),
                    relevance=relevance,
                    sign=1 if relevance >= 0 else -1,
                )
            add_nodes(position - 1, explicit)
            if not edges:
                reason = (
                    f"no neuron of {lower.name!r} is {_OUTLIER_WORDS[self.sign]} of ω (fence "
                    f"{self.fence}) for any of the {len(current)} neuron(s) of {upper.name!r} on any of the "
                    f"{len(data)} inputs"
                )
                graph.graph.setdefault("stopped_at", f"{lower.name} <- {upper.name}")
                graph.graph.setdefault("stop_reason", reason)
                warnings.warn(
                    f"Step {lower.name} <- {upper.name}: {reason}; the traversal ends at {upper.name!r}. "
                    f"What usually helps, most first: {self._advice(upper, top=upper is infos[-1])}.",
                    UserWarning,
                    stacklevel=3,
                )
            current = following
            if not current:
                break
        if journal is not None:
            journal.finish()

    def _compute_step(
        self,
        data: Batch,
        batch_size: int,
        lower: LevelInfo,
        upper: LevelInfo,
        closed: ClosedFormStep | None,
        parents: list[int],
        bar: Any,
    ) -> list[_Edge]:
        """One step of the traversal: the edges from each neuron of ``parents`` to its children."""
        if closed is not None:
            stats = self._closed_step(closed, parents, len(data), keep_omega=False)
        else:
            stats = self._step(data, batch_size, lower, upper, parents, keep_omega=False, bar=bar)
        counts = stats.counts.cpu().numpy()
        mean_omega = (stats.omega_sum / len(data)).cpu().numpy()
        children = select_children(counts, mean_omega, branching=self.branching, sign=self.sign)
        return [
            (parent, int(k), int(counts[row, k]), float(mean_omega[row, k]))
            for row, (parent, kids) in enumerate(zip(parents, children))
            for k in kids
        ]


def _recorded_step(
    journal: Checkpoint, done: int, position: int, infos: list[LevelInfo], parents: list[int], n_inputs: int
) -> tuple[list[_Edge], list[int]]:
    """The edges and the next neuron set of a step a checkpoint records, checked against this analysis."""
    step = journal.steps[done]
    lower, upper = infos[position - 1], infos[position]
    if step.get("position") != position:
        raise journal.corrupt(f"step {done} is at position {step.get('position')!r}, expected {position}")

    def whole(value: object, low: int, high: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    edges, following = step.get("edges"), step.get("next")
    if not isinstance(edges, list) or not all(
        isinstance(edge, list)
        and len(edge) == 4
        and whole(edge[0], 0, upper.n_neurons - 1)
        and edge[0] in parents
        and whole(edge[1], 0, lower.n_neurons - 1)
        and whole(edge[2], 1, n_inputs)
        and isinstance(edge[3], float)
        for edge in edges
    ):
        raise journal.corrupt(
            f"the edges of step {lower.name} <- {upper.name} are not [parent, child, count, mean ω] entries of this "
            "analysis"
        )
    if not isinstance(following, list) or not all(whole(n, 0, lower.n_neurons - 1) for n in following):
        raise journal.corrupt(f"'next' of step {lower.name} <- {upper.name} is not a list of neurons of {lower.name!r}")
    return [(parent, child, count, relevance) for parent, child, count, relevance in edges], following
