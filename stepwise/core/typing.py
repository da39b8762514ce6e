"""The aliases of the public signatures: what the analyses accept as inputs, targets, neurons and seeds.

They describe the types the runtime checks accept (those checks stay, and say what is wrong when a value does
not fit); they carry no behaviour. Like :mod:`stepwise.core.hooks`, this module needs torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Union

import numpy as np
import torch
from torch import Tensor

__all__ = ["Inputs", "Neurons", "Seed", "Target"]

#: A batch of inputs: one tensor of shape (N, ...), or an iterable of tensors or of ``(x, y)`` batches (what a
#: ``torch.utils.data.DataLoader`` yields), concatenated along the first dimension.
Inputs = Union[Tensor, Iterable[Union[Tensor, Sequence[Tensor]]]]

#: Where a traversal starts: a neuron index of the top level (the class for ``softmax``), or ``(level, index)``
#: pairs at any analysed levels.
Target = Union[int, Sequence[tuple[str, int]]]

#: Neurons (channels or units) of one level: one index or several, in ``[0, n_neurons)``.
Neurons = Union[int, Sequence[int]]

#: The source of randomness: an int seeds a fresh generator, a generator is used (and advances) as it is, ``None``
#: seeds a fresh generator from the operating system. Global random state is never touched.
Seed = Union[int, torch.Generator, np.random.Generator, None]
