"""Networks shaped like well-known architectures, with random weights, for benchmarks and examples.

Each builder returns a model with the layer structure and attribute names of its torchvision counterpart,
initialised from a fixed seed without touching the global random state, in eval mode and float32. Nothing
is downloaded: the weights are random, so the networks measure speed and exercise code paths, not accuracy.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["vgg16_shaped"]

#: VGG16's convolution widths ("configuration D"); "M" is a 2x2 max-pool.
VGG16_CONFIG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip


def _kaiming_init(model: nn.Module, seed: int) -> None:
    """He (kaiming normal, fan-out, ReLU gain) weights and zero biases, drawn from a private generator."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                weight = module.weight
                fan_out = weight.shape[0] * weight[0][0].numel()
                std = (2.0 / fan_out) ** 0.5
                weight.copy_(torch.randn(weight.shape, generator=generator) * std)
                if module.bias is not None:
                    module.bias.zero_()


def vgg16_shaped(num_classes: int = 1000, *, seed: int = 0) -> nn.Module:
    """A VGG16-shaped network with random He-initialised weights.

    Thirteen 3x3 convolutions (padding 1) each followed by an in-place ReLU, with VGG16's widths, five 2x2
    max-pools, an adaptive average pool to 7x7, then ``Linear(25088, 4096) - ReLU - Dropout - Linear(4096,
    4096) - ReLU - Dropout - Linear(4096, num_classes)``, under torchvision's attribute names ``features``,
    ``avgpool`` and ``classifier`` (so levels are named ``features.1``, ..., ``classifier.6`` as in
    torchvision's ``vgg16``).

    Parameters
    ----------
    num_classes : int, default=1000
        Number of output classes.
    seed : int, default=0
        Seed of the private generator that draws the weights.

    Returns
    -------
    torch.nn.Module
        In eval mode, float32, on the CPU. Takes inputs of shape (N, 3, H, W) with H, W >= 32 and returns
        logits of shape (N, num_classes).

    Examples
    --------
    >>> net = vgg16_shaped(num_classes=10)
    >>> net(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 10])
    """
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG16_CONFIG:
        if isinstance(item, int):
            layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = item
        else:
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    model = _VGG(nn.Sequential(*layers), num_classes)
    _kaiming_init(model, seed)
    return model.eval()


class _VGG(nn.Module):
    """torchvision's VGG layout: ``features``, ``avgpool``, flatten, ``classifier``."""

    def __init__(self, features: nn.Sequential, num_classes: int) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)
