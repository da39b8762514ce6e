"""A small trained CNN for scikit-learn's bundled handwritten digits, and the data it was trained on.

Everything here runs offline: the images come from :func:`sklearn.datasets.load_digits` (bundled with
scikit-learn) and the weights ship inside the package (``digits_cnn.pt``, a state dict written by
``examples/train_digits.py``), loaded with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

from importlib import resources
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["IMAGE_SIZE", "WEIGHTS", "DigitsCNN", "DigitsData", "digits_cnn", "digits_data"]

#: Side of the square images the model reads: the 8x8 digits upsampled bilinearly.
IMAGE_SIZE = 16
#: File name of the shipped state dict, inside the ``stepwise.models`` package.
WEIGHTS = "digits_cnn.pt"
#: Every ``_HOLD_OUT``-th image of each class (in ``load_digits`` order) is held out for testing.
_HOLD_OUT = 4


class DigitsCNN(nn.Module):
    """A torchvision-style CNN for 16x16 greyscale digits: ``features`` (three Conv/ReLU, two max pools), then
    ``classifier`` (Linear/ReLU/Linear) on the flattened maps.

    Every ReLU is its own module, so :func:`stepwise.default_levels` proposes ``features.1``, ``features.3``,
    ``features.6``, ``classifier.1`` and ``softmax``.

    Parameters
    ----------
    n_classes : int, default=10

    Examples
    --------
    >>> import torch
    >>> DigitsCNN()(torch.zeros(2, 1, 16, 16)).shape
    torch.Size([2, 10])
    """

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),   # 16 x 16 x 16
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),  # 32 x 16 x 16
            nn.MaxPool2d(2),                             # 32 x 8 x 8
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),  # 64 x 8 x 8
            nn.MaxPool2d(2),                             # 64 x 4 x 4
        )  # fmt: skip
        self.classifier = nn.Sequential(nn.Linear(64 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, n_classes))

    def forward(self, x: Tensor) -> Tensor:
        """Class scores (logits) of shape (N, n_classes) for images of shape (N, 1, 16, 16)."""
        return self.classifier(torch.flatten(self.features(x), 1))


class DigitsData(NamedTuple):
    """The digits as the model reads them, with a fixed train/test split.

    Attributes
    ----------
    images : Tensor of shape (1797, 1, 16, 16), float32
        Pixel values in [0, 1]: ``load_digits``' 0..16 grey levels divided by 16, upsampled bilinearly from 8x8.
    labels : Tensor of shape (1797,), int64
        The digit, 0 to 9.
    train, test : Tensor of shape (n,), int64
        Indices into ``images``: every fourth image of each class (in ``load_digits`` order) is in ``test``, the
        others in ``train``; no randomness is involved.
    """

    images: Tensor
    labels: Tensor
    train: Tensor
    test: Tensor


def digits_data() -> DigitsData:
    """Load scikit-learn's bundled digits as 16x16 images in [0, 1], with the train/test split of the model.

    Returns
    -------
    DigitsData
        ``images`` (1797, 1, 16, 16), ``labels`` (1797,), and the index tensors ``train`` and ``test``; the same
        values on every call.

    Examples
    --------
    >>> from stepwise.models import digits_data
    >>> images, labels, train, test = digits_data()
    >>> images.shape, len(train) + len(test)
    (torch.Size([1797, 1, 16, 16]), 1797)
    """
    from sklearn.datasets import load_digits  # bundled with scikit-learn: nothing is downloaded

    digits = load_digits()
    small = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(small, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    labels = torch.as_tensor(digits.target, dtype=torch.int64)
    rank = torch.zeros_like(labels)  # position of each image among the images of its class
    for c in labels.unique():
        members = (labels == c).nonzero().flatten()
        rank[members] = torch.arange(len(members))
    held_out = rank % _HOLD_OUT == _HOLD_OUT - 1
    return DigitsData(
        images.clamp(0.0, 1.0).contiguous(),
        labels,
        (~held_out).nonzero().flatten(),
        held_out.nonzero().flatten(),
    )


def digits_cnn() -> DigitsCNN:
    """The trained :class:`DigitsCNN`, in eval mode, on the CPU, in float32.

    The weights are the package's ``digits_cnn.pt`` (written by ``examples/train_digits.py``; its held-out
    accuracy is recorded in ``results/digits_model.json``), loaded with ``torch.load(..., weights_only=True)``.

    Returns
    -------
    DigitsCNN

    Raises
    ------
    FileNotFoundError
        If the weights file is missing from the installed package (re-install it, or run
        ``python examples/train_digits.py`` to write it).

    Examples
    --------
    >>> from stepwise.models import digits_cnn, digits_data
    >>> model = digits_cnn()
    >>> images, labels, train, test = digits_data()
    >>> accuracy = (model(images[test]).argmax(1) == labels[test]).float().mean().item()
    >>> accuracy > 0.95
    True
    """
    weights = resources.files(__package__).joinpath(WEIGHTS)
    if not weights.is_file():
        raise FileNotFoundError(
            f"The weights file {WEIGHTS} is missing from the stepwise.models package: re-install stepwise, or "
            "run 'python examples/train_digits.py' from the repository root to write it."
        )
    with resources.as_file(weights) as path:
        state = torch.load(path, map_location="cpu", weights_only=True)
    model = DigitsCNN()
    model.load_state_dict(state)
    return model.eval()
