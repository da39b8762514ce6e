"""What :func:`perturb.rank_neurons` runs through the model: the resamples, drawn or given, and the levels.

One input and seeds are checked by :mod:`stepwise.core.inputs`, neuron indices by
:func:`stepwise.core.validation.check_neurons`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from stepwise.core.capture import capture
from stepwise.core.hooks import all_finite, analysis_mode, check_has_values, model_device_dtype
from stepwise.core.inputs import Batch, KeywordInputs, as_batch, single_input
from stepwise.core.levels import INPUT, OUTPUT, SOFTMAX, LevelInfo, default_levels, resolve_levels

__all__ = ["AnalysisInput", "analysis_input", "batches", "check_samples", "noisy_batches", "resolve_ranked"]


def noisy_batches(
    x: Tensor, n_samples: int, sigma: float, generator: torch.Generator, batch_size: int
) -> Iterator[Tensor]:
    """Yield the resamples ``x * (1 + sigma * z)``, z ~ N(0, 1) per element, in batches.

    Sample ``i`` uses the ``i``-th draw ``torch.randn(x.shape[1:], generator=generator)`` in ``x``'s dtype on
    the generator's device, whatever the batch size, so the resamples do not depend on ``batch_size``.

    Parameters
    ----------
    x : Tensor of shape (1, ...)
    n_samples, batch_size : int
    sigma : float
    generator : torch.Generator

    Yields
    ------
    Tensor of shape (b, ...)
        ``b = batch_size`` except perhaps in the last batch; on ``x``'s device.
    """
    shape = x.shape[1:]
    for start in range(0, n_samples, batch_size):
        size = min(batch_size, n_samples - start)
        noise = torch.stack(
            [torch.randn(shape, generator=generator, dtype=x.dtype, device=generator.device) for _ in range(size)]
        )
        yield x * (1 + sigma * noise.to(x.device))


def batches(
    x: Tensor, source: Tensor | torch.Generator, n_samples: int, sigma: float, batch_size: int
) -> Iterator[Tensor]:
    """The resamples in batches on ``x``'s device: given ones (a tensor), or drawn from a generator."""
    if isinstance(source, Tensor):
        for start in range(0, n_samples, batch_size):
            yield source[start : start + batch_size].to(x.device)
    else:
        yield from noisy_batches(x, n_samples, sigma, source, batch_size)


def _dims(shape: Sequence[int]) -> str:
    return ", ".join(str(d) for d in shape)


def check_samples(samples: Any, x: Tensor, owner: str) -> Tensor:
    """Check user resamples against the clean input ``x`` of shape (1, ...); return them detached.

    Raises
    ------
    TypeError
        If ``samples`` is not a tensor, or not in ``x``'s dtype.
    ValueError
        If ``samples`` is not shaped (n, *input shape) with n >= 2, is on the meta device or holds NaN or Inf.
    """
    expected = x.shape[1:]
    if not isinstance(samples, Tensor):
        raise TypeError(
            f"The 'samples' parameter of {owner} must be a torch.Tensor of shape (n, {_dims(expected)}) or None. "
            f"Got {type(samples).__name__} instead."
        )
    if samples.dim() != len(expected) + 1 or samples.shape[1:] != expected or len(samples) < 2:
        raise ValueError(
            f"'samples' has shape {tuple(samples.shape)}, but resamples of an input of shape {tuple(expected)} "
            f"must be stacked as (n, {_dims(expected)}) with n >= 2. Stack at least two resamples, each shaped "
            "like the image."
        )
    if samples.dtype != x.dtype:
        raise TypeError(f"'samples' is {samples.dtype} but the image and the model are {x.dtype}: convert it.")
    check_has_values(samples, "'samples'")
    if not all_finite(samples):
        raise ValueError("'samples' holds NaN or Inf values: remove or replace them before the analysis.")
    return samples.detach()


def resolve_ranked(
    model: nn.Module, x: Batch, levels: Sequence[str] | None, below: LevelInfo | None = None
) -> tuple[list[LevelInfo], LevelInfo]:
    """The ranked levels and the model output level (for o), from one checked forward pass.

    ``levels`` are the names to rank, bottom to top (one is enough), or ``None`` for the default levels. The
    model output is resolved with them, as ``'output'``, when they do not end with ``'softmax'`` or
    ``'output'``. With ``below`` (the level that takes the noise), every ranked level must be it or lie above it.
    """
    if levels is None and below is None:
        resolved = ranked = resolve_levels(model, x, None)
        if resolved[-1].name not in (SOFTMAX, OUTPUT):  # the top default level is the model output itself
            resolved = resolve_levels(model, x, [info.name for info in ranked] + [OUTPUT])
    else:
        if levels is None:  # the default levels, above the one that takes the noise
            levels = [name for name in default_levels(model, x) if name not in (SOFTMAX, OUTPUT)]
        if isinstance(levels, str) or not isinstance(levels, Sequence):
            raise TypeError(
                f"levels must be a list of level names, bottom to top, or None; got {type(levels).__name__}. "
                "See stepwise.list_levels(model, example_input)."
            )
        names = list(levels)
        if not names:
            raise ValueError("levels is empty: name at least one level, or pass None for the default levels.")
        padded = names if names[-1] in (SOFTMAX, OUTPUT) else names + [OUTPUT]
        bottom = INPUT if below is None else below.name
        if len(padded) == 1 or (below is not None and padded[0] != bottom):
            padded = [bottom] + padded  # with below: levels out of order below it are refused
        resolved = resolve_levels(model, x, padded)
        ranked = [info for info in resolved if info.name in names]
    return ranked, dataclasses.replace(resolved[-1], name=OUTPUT)  # the top is 'softmax' or 'output'


@dataclasses.dataclass(frozen=True)
class AnalysisInput:
    """What the noise multiplies: the input itself, or the output of ``input_level`` for keyword inputs.

    Attributes
    ----------
    x : Tensor of shape (1, ...)
        The clean analysis input: the image, or the activation of ``input_level`` (the token embeddings, say).
    keyword : KeywordInputs or None
        The one sentence (without its padding) whose ``input_level`` output ``x`` is.
    input_level : LevelInfo or None
    """

    x: Tensor
    keyword: KeywordInputs | None = None
    input_level: LevelInfo | None = None

    @property
    def probe(self) -> Batch:
        """What the levels are resolved on."""
        return self.x if self.keyword is None else self.keyword

    def model_input(self, values: Tensor) -> Batch:
        """The model input whose analysis input is ``values`` (B, ...): ``values`` itself, or the keyword inputs
        with the output of ``input_level`` replaced by them."""
        if self.keyword is None or self.input_level is None or self.input_level.module is None:
            return values
        return self.keyword.replacing(self.input_level.module, values)


def analysis_input(model: nn.Module, image: Any, input_level: object, owner: str) -> AnalysisInput:
    """Check the one input of a ranking; for keyword inputs (one sentence) capture the clean ``input_level``.

    Raises
    ------
    ValueError
        Keyword inputs without ``input_level`` (token ids cannot be perturbed), or of several inputs;
        ``input_level`` with a tensor input, or naming no module of the model.
    TypeError
        As :func:`stepwise.core.inputs.single_input` for a tensor, or an ``input_level`` that is not a str.
    """
    if not isinstance(image, (Mapping, KeywordInputs)):
        if input_level is not None:
            raise ValueError(
                f"input_level={input_level!r} is for inputs given as a dict of token ids, whose embeddings take the "
                "noise; a tensor input takes the noise itself. Leave input_level=None."
            )
        return AnalysisInput(single_input(image, owner, model))
    batch = as_batch(image)
    if len(batch) != 1:
        raise ValueError(
            f"{owner} explains one input, but the dict holds {len(batch)}: pass one sentence, batch dimension kept, "
            "for example {k: v[i : i + 1] for k, v in inputs.items()}."
        )
    if input_level is None:
        raise ValueError(
            f"{owner} cannot perturb token ids, which take no noise: name the module whose output the multiplicative "
            "noise goes into, the token embeddings, with input_level (for a BERT-style model, for example "
            "input_level='embeddings'; see stepwise.list_levels(model, inputs))."
        )
    if not isinstance(input_level, str):
        raise TypeError(f"input_level must be a module name (str) or None; got {type(input_level).__name__}.")
    device, _ = model_device_dtype(model)
    keyword = batch.without_padding().to(device)
    info = resolve_levels(model, keyword, [input_level, OUTPUT])[0]
    with analysis_mode(model, owner=owner, warn=False):
        x = capture(model, keyword, [info])[input_level].detach().clone()
    return AnalysisInput(x, keyword, info)
