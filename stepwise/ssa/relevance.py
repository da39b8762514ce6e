"""One SSA step: the relevance ω[n, i, k] of lower neuron k for upper neuron n on input i (docs/design.md).

ω[n, i, k] is the mean, over the spatial positions of lower channel k, of the derivative of upper neuron n's
scalar (its channel averaged over positions) with respect to the lower activation, at input i. Upper neurons
are processed in chunks with one batched vector-Jacobian product per chunk (``is_grads_batched``); inputs in
batches, since in eval mode the inputs of a batch do not interact.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from stepwise.core.inputs import is_token_level, token_mean

__all__ = ["RULES", "spatial_mean", "step_relevance"]

RULES = ("gradient", "guided", "grad_x_activation")

#: Elements (of upper and lower activations together) handled per backward chunk; about 256 MB in float32.
_CHUNK_ELEMENTS = 1 << 26


def spatial_mean(t: Tensor, channel_dim: int) -> Tensor:
    """Average ``t`` over every dimension but the first (batch) and ``channel_dim``: (N, C, ...) -> (N, C)."""
    return token_mean(t, channel_dim, None)


def _grad_outputs(upper: Tensor, neurons: Tensor, channel_dim: int, mask: Tensor | None) -> Tensor:
    """One cotangent per neuron: 1 / (number of positions) on the neuron's channel, 0 elsewhere; on a token level
    (:func:`~stepwise.core.inputs.is_token_level`) 1 / (number of real tokens) on the real tokens only."""
    if is_token_level(upper, channel_dim, mask):
        assert mask is not None
        real = mask.to(device=upper.device, dtype=upper.dtype)
        weights = real / real.sum(dim=1, keepdim=True)  # (N, T)
        onehot = torch.zeros(len(neurons), upper.shape[2], dtype=upper.dtype, device=upper.device)
        onehot[torch.arange(len(neurons), device=upper.device), neurons] = 1.0
        return torch.einsum("nt,kd->kntd", weights, onehot).contiguous()
    moved = upper.movedim(channel_dim, 1)
    positions = moved[0, 0].numel()
    onehot = torch.zeros(len(neurons), moved.shape[1], dtype=upper.dtype, device=upper.device)
    onehot[torch.arange(len(neurons), device=upper.device), neurons] = 1.0 / positions
    shape = (len(neurons), 1, moved.shape[1]) + (1,) * (moved.dim() - 2)
    cotangent = onehot.view(shape).expand((len(neurons),) + tuple(moved.shape))
    return cotangent.movedim(2, channel_dim + 1).contiguous()


def step_relevance(
    leaf: Tensor,
    upper: Tensor,
    neurons: Sequence[int] | Tensor,
    *,
    rule: str,
    lower_channel_dim: int = 1,
    upper_channel_dim: int = 1,
    chunk_size: int | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """Relevance of every lower neuron for each of ``neurons``, on every input of a batch.

    Parameters
    ----------
    leaf : Tensor of shape (N, K, ...)
        The lower activation, a leaf requiring grad (from :func:`stepwise.levels.step_forward`).
    upper : Tensor of shape (N, C, ...)
        The upper activation, computed from ``leaf``.
    neurons : sequence of int
        Upper neuron (channel) indices.
    rule : {'gradient', 'guided', 'grad_x_activation'}
        ``guided`` needs a graph recorded with ``guided=True``; it is then the plain gradient of that graph.
    lower_channel_dim, upper_channel_dim : int, default=1
        The channel dimension of each activation.
    chunk_size : int, optional
        Upper neurons per batched backward pass; by default chosen so that a chunk holds about 2**26 elements.
    mask : Tensor of shape (N, T), optional
        The token mask of the batch: on (N, T, D) levels with channel dimension 2 the upper neuron is the mean of
        its unit over the real tokens, and ω the mean over the same tokens of the lower level.

    Returns
    -------
    Tensor of shape (len(neurons), N, K)
        ω in the dtype and on the device of ``leaf``.
    """
    neurons = torch.as_tensor(neurons, dtype=torch.long, device=upper.device).reshape(-1)
    if not upper.requires_grad:
        raise ValueError(
            "The upper level does not depend on the lower level: choose levels where the upper one is computed "
            "from the lower one."
        )
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ELEMENTS // (2 * (upper.numel() + leaf.numel())))
    chunks = []
    for start in range(0, len(neurons), chunk_size):
        part = neurons[start : start + chunk_size]
        cotangents = _grad_outputs(upper, part, upper_channel_dim, mask)
        grads = _batched_vjp(upper, leaf, cotangents)
        if rule == "grad_x_activation":
            grads = grads * leaf.detach()
        if is_token_level(leaf, lower_channel_dim, mask):
            chunks.append(token_mean(grads, lower_channel_dim, mask))
        else:
            chunks.append(spatial_mean(grads.flatten(0, 1), lower_channel_dim).unflatten(0, grads.shape[:2]))
    if not chunks:
        return leaf.new_zeros((0, leaf.shape[0], leaf.shape[lower_channel_dim]))
    return torch.cat(chunks)


def _batched_vjp(upper: Tensor, leaf: Tensor, cotangents: Tensor) -> Tensor:
    """Gradients of ``upper`` for a stack of cotangents; one batched backward, or a loop if vmap cannot.

    Parameters are frozen during the analysis, so ``upper`` requires grad only through ``leaf``.
    """
    try:
        (grads,) = torch.autograd.grad(upper, leaf, cotangents, retain_graph=True, is_grads_batched=True)
    except (RuntimeError, NotImplementedError) as error:  # an op without a batching rule
        warnings.warn(
            f"Batched backward failed ({error}); falling back to one backward pass per neuron, which is slower.",
            RuntimeWarning,
            stacklevel=3,
        )
        grads = torch.stack([torch.autograd.grad(upper, leaf, c, retain_graph=True)[0] for c in cotangents])
    return grads
