"""Networks shaped like well-known architectures, with random weights, for benchmarks and examples.

Each builder returns a model with the layer structure and attribute names of its torchvision counterpart,
initialised from a fixed seed without touching the global random state, in eval mode and float32. Nothing
is downloaded: the weights are random, so the networks measure speed and exercise code paths, not accuracy.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["resnet18_shaped", "vgg16_shaped"]

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


class _BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock: conv-BN-ReLU-conv-BN, plus the (downsampled) input, then ReLU."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class _ResNet(nn.Module):
    """torchvision's ResNet layout: ``conv1``, ``bn1``, ``relu``, ``maxpool``, ``layer1``..``layer4``, ``fc``."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths, inplanes = (64, 128, 256, 512), 64
        for index, planes in enumerate(widths, start=1):
            stride = 1 if index == 1 else 2
            setattr(
                self, f"layer{index}", nn.Sequential(_BasicBlock(inplanes, planes, stride), _BasicBlock(planes, planes))
            )
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18_shaped(num_classes: int = 1000, *, seed: int = 0) -> nn.Module:
    """A ResNet-18-shaped network with random He-initialised weights and non-trivial BatchNorm statistics.

    The stem (7x7 convolution, BatchNorm, ReLU, 3x3 max-pool), four stages of two BasicBlocks (64, 128, 256 and
    512 channels; skip connections, a 1x1 downsampling convolution where the shape changes), global average
    pooling and ``Linear(512, num_classes)``, under torchvision's attribute names (``maxpool``, ``layer1.0``, ...,
    ``layer4.1``, ``fc``). BatchNorm running means, variances, scales and shifts are drawn at random, as a trained
    network has them, so that no BatchNorm layer is the identity.

    Parameters
    ----------
    num_classes : int, default=1000
    seed : int, default=0
        Seed of the private generator that draws the weights and statistics.

    Returns
    -------
    torch.nn.Module
        In eval mode, float32, on the CPU; inputs (N, 3, H, W) with H, W >= 32, logits (N, num_classes).

    Examples
    --------
    >>> resnet18_shaped(num_classes=10)(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 10])
    """
    model = _ResNet(num_classes)
    _kaiming_init(model, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                module.weight.copy_(0.5 + 0.5 * torch.rand(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))
    return model.eval()
