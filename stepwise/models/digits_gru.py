"""A small trained GRU that reads scikit-learn's bundled digits row by row, and the sequences it reads.

Each 8x8 digit is a sequence of 8 time steps of 8 pixels (its rows, top to bottom), as the Paths paper's GRU reads
pen strokes step by step. Everything runs offline: the digits come from :func:`sklearn.datasets.load_digits` and
the weights ship inside the package (``digits_gru.pt``, a state dict written by ``examples/train_digits_gru.py``),
loaded with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

from importlib import resources

import torch
from torch import Tensor, nn

from .digits import DigitsData, digits_data

__all__ = ["GRU_WEIGHTS", "HIDDEN", "STEPS", "DigitsGRU", "digits_gru", "digits_sequences"]

#: File name of the shipped state dict, inside the ``stepwise.models`` package.
GRU_WEIGHTS = "digits_gru.pt"
#: Time steps (rows) per digit, and pixels per step.
STEPS = 8
#: Hidden units of the GRU (the paper's GRU has 50).
HIDDEN = 50


class DigitsGRU(nn.Module):
    """One GRU layer over the rows of a digit, then a linear layer on the last hidden state.

    The hidden states of every step pass through the module ``states`` (an ``nn.Identity``), so that they are a
    level of shape (N, 8, hidden): ``DecisionPaths(model, ["states"], time_dim=1)`` clusters them.

    Parameters
    ----------
    hidden : int, default=50
    n_classes : int, default=10

    Examples
    --------
    >>> import torch
    >>> DigitsGRU()(torch.zeros(2, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, hidden: int = HIDDEN, n_classes: int = 10) -> None:
        super().__init__()
        self.gru = nn.GRU(STEPS, hidden, batch_first=True)
        self.states = nn.Identity()
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Class scores (logits) of shape (N, n_classes) for sequences of shape (N, 8, 8): (input, step, pixel)."""
        states, _ = self.gru(x)
        return self.classifier(self.states(states)[:, -1])


def digits_sequences() -> DigitsData:
    """scikit-learn's bundled digits as sequences of rows, with the train/test split of :func:`digits_data`.

    Returns
    -------
    DigitsData
        ``images`` of shape (1797, 8, 8), float32 in [0, 1] (the 0..16 grey levels divided by 16; dimension 1 is
        the time step, a row of the digit), ``labels`` (1797,), and the index tensors ``train`` and ``test``.

    Examples
    --------
    >>> from stepwise.models import digits_sequences
    >>> digits_sequences().images.shape
    torch.Size([1797, 8, 8])
    """
    from sklearn.datasets import load_digits  # bundled with scikit-learn: nothing is downloaded

    split = digits_data()
    rows = torch.as_tensor(load_digits().images, dtype=torch.float32) / 16.0
    return DigitsData(rows.contiguous(), split.labels, split.train, split.test)


def digits_gru() -> DigitsGRU:
    """The trained :class:`DigitsGRU`, in eval mode, on the CPU, in float32.

    The weights are the package's ``digits_gru.pt`` (written by ``examples/train_digits_gru.py``; its held-out
    accuracy is recorded in ``results/digits_gru_model.json``).

    Raises
    ------
    FileNotFoundError
        If the weights file is missing from the installed package.

    Examples
    --------
    >>> from stepwise.models import digits_gru, digits_sequences
    >>> model, data = digits_gru(), digits_sequences()
    >>> accuracy = (model(data.images[data.test]).argmax(1) == data.labels[data.test]).float().mean().item()
    >>> accuracy > 0.9
    True
    """
    weights = resources.files(__package__).joinpath(GRU_WEIGHTS)
    if not weights.is_file():
        raise FileNotFoundError(
            f"The weights file {GRU_WEIGHTS} is missing from the stepwise.models package: re-install stepwise, or "
            "run 'python examples/train_digits_gru.py' from the repository root to write it."
        )
    with resources.as_file(weights) as path:
        state = torch.load(path, map_location="cpu", weights_only=True)
    model = DigitsGRU()
    model.load_state_dict(state)
    return model.eval()
