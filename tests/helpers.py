"""Test helpers: seeded test models whose steps can be written out by hand, their chains, tensor comparisons and
small data files."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from stepwise.models import digits_data

SEED = 0


def assert_rows_close(actual: Tensor, expected: Tensor, rtol: float) -> None:
    """Compare ω tensors (..., K) with an error relative to each row's largest |value|."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = expected.abs().amax(dim=-1, keepdim=True).clamp_min(torch.finfo(expected.dtype).tiny)
    error = ((actual - expected).abs() / scale).max().item()
    assert error <= rtol, f"max relative error {error:.3g} > {rtol:g}"


def max_relative_error(actual: Tensor, expected: Tensor) -> float:
    scale = expected.abs().amax(dim=-1, keepdim=True).clamp_min(torch.finfo(expected.dtype).tiny)
    return ((actual - expected).abs() / scale).max().item()


# ------------------------------------------------------------------------------------------------ models


def sequential_cnn() -> nn.Sequential:
    """Conv/ReLU(in place)/MaxPool/Dropout/Flatten/Linear; input (N, 3, 8, 8)."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Flatten(),
        nn.Linear(12 * 4 * 4, 20),
        nn.ReLU(inplace=True),
        nn.Linear(20, 5),
    ).eval()


class VGGStyle(nn.Module):
    """torchvision-style VGG: ``features`` / ``avgpool`` / ``classifier``, in-place ReLUs; input (N, 3, 16, 16)."""

    def __init__(self, num_classes: int = 6) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
        )  # fmt: skip
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(
            nn.Linear(16 * 2 * 2, 24), nn.ReLU(True), nn.Dropout(),
            nn.Linear(24, 24), nn.ReLU(True), nn.Dropout(),
            nn.Linear(24, num_classes),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: one ReLU module used twice, BatchNorm, optional downsample on the skip."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """torchvision's Bottleneck: 1x1, 3x3 (with the stride), 1x1 expanding by 4, one ReLU used three times."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        width = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, width, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != width:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, width, 1, stride, bias=False), nn.BatchNorm2d(width))

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class TorchvisionResNet(nn.Module):
    """torchvision's ResNet layout and names (conv1, bn1, relu, maxpool, layer1-4, avgpool, fc) with a narrower
    base width; ``TorchvisionResNet(BasicBlock, [2, 2, 2, 2])`` is ResNet-18. Input (N, 3, H, W), H, W >= 32."""

    def __init__(
        self, block: type[nn.Module], layers: Sequence[int], *, width: int = 16, num_classes: int = 10
    ) -> None:
        super().__init__()
        expansion = getattr(block, "expansion", 1)
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = width
        for stage, blocks in enumerate(layers):
            planes = width * 2**stage
            modules = []
            for i in range(blocks):
                modules.append(block(inplanes, planes, 2 if stage > 0 and i == 0 else 1))
                inplanes = planes * expansion
            setattr(self, f"layer{stage + 1}", nn.Sequential(*modules))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        generator = torch.Generator().manual_seed(2)
        for m in self.modules():  # non-trivial running statistics, as in a trained network
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=generator))

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in range(1, 5):
            layer = getattr(self, f"layer{stage}", None)
            if layer is not None:
                x = layer(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


class Residual(nn.Module):
    """A skip added in ``forward`` code, with no block type to recognise: ``x + f(x)``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, width))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.f(x)


class ResNetStyle(nn.Module):
    """A small ResNet: stem, two stages of two BasicBlocks, average pool, fc; input (N, 3, 16, 16)."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(2)
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, stride=2), BasicBlock(16, 16))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, num_classes)
        generator = torch.Generator().manual_seed(1)
        for m in self.modules():  # non-trivial running statistics, as in a trained network
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=generator))
                m.weight.data.copy_(1 + 0.3 * torch.randn(m.num_features, generator=generator))
                m.bias.data.copy_(0.1 * torch.randn(m.num_features, generator=generator))

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class PermuteMLP(nn.Module):
    """An MLP with PReLU and GELU, a view and a permute inside its steps; input (N, 12)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(12, 16)
        self.act1 = nn.PReLU()
        self.fc2 = nn.Linear(16, 16)
        self.act2 = nn.GELU()
        self.fc3 = nn.Linear(16, 4)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act1(self.fc1(x))
        h = h.view(-1, 4, 4).permute(0, 2, 1).reshape(-1, 16)
        h = self.act2(self.fc2(h))
        return self.fc3(h)


# A model's "chain": (name, function) pairs whose composition is the forward pass, written out by hand so that
# the reference computation of a step does not use the library's hooks.
Chain = list[tuple[str, Callable[[Tensor], Tensor]]]


def sequential_chain(model: nn.Sequential) -> Chain:
    return [(name, module) for name, module in model.named_children()]


def vgg_chain(model: VGGStyle) -> Chain:
    chain: Chain = [(f"features.{n}", m) for n, m in model.features.named_children()]
    chain += [("avgpool", model.avgpool), ("flatten", lambda x: torch.flatten(x, 1))]
    chain += [(f"classifier.{n}", m) for n, m in model.classifier.named_children()]
    return chain


def resnet_chain(model: ResNetStyle) -> Chain:
    chain: Chain = [("conv1", model.conv1), ("bn1", model.bn1), ("relu", model.relu), ("maxpool", model.maxpool)]
    chain += [(f"layer1.{n}", m) for n, m in model.layer1.named_children()]
    chain += [(f"layer2.{n}", m) for n, m in model.layer2.named_children()]
    chain += [("avgpool", model.avgpool), ("flatten", lambda x: torch.flatten(x, 1)), ("fc", model.fc)]
    return chain


def mlp_chain(model: PermuteMLP) -> Chain:
    return [
        ("fc1", model.fc1),
        ("act1", model.act1),
        ("mix", lambda h: h.view(-1, 4, 4).permute(0, 2, 1).reshape(-1, 16)),
        ("fc2", model.fc2),
        ("act2", model.act2),
        ("fc3", model.fc3),
    ]


def with_softmax(chain: Chain) -> Chain:
    return chain + [("softmax", lambda z: torch.softmax(z, dim=1))]


CASES = {
    # name: (model factory, chain factory, input shape, levels)
    "sequential": (
        sequential_cnn,
        sequential_chain,
        (3, 8, 8),
        ["input", "1", "4", "8", "softmax"],
    ),
    "vgg": (
        VGGStyle,
        vgg_chain,
        (3, 16, 16),
        ["features.1", "features.3", "features.6", "classifier.1", "classifier.4", "softmax"],
    ),
    "resnet": (
        ResNetStyle,
        resnet_chain,
        (3, 16, 16),
        ["relu", "layer1.0", "layer1.1", "layer2.0", "layer2.1", "softmax"],
    ),
    "mlp": (
        PermuteMLP,
        mlp_chain,
        (12,),
        ["input", "act1", "act2", "softmax"],
    ),
}


def heavy_tailed(model: nn.Module) -> nn.Module:
    """Scale each weight by a log-normal factor, keeping each row's norm: heavy-tailed rows, as trained networks
    have, give Tukey outliers."""
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                w = m.weight.flatten(1)
                scaled = w * torch.exp(1.5 * torch.randn(w.shape, generator=generator))
                m.weight.copy_(
                    (scaled * w.norm(dim=1, keepdim=True) / scaled.norm(dim=1, keepdim=True)).view_as(m.weight)
                )
    return model


def build_case(name: str, dtype: torch.dtype = torch.float64) -> tuple[nn.Module, Chain, Tensor, list[str]]:
    factory, chain_of, shape, levels = CASES[name]
    model = heavy_tailed(factory()).to(dtype).eval()
    inputs = torch.randn((5,) + shape, dtype=dtype)
    return model, with_softmax(chain_of(model)), inputs, levels


def digits_subset(classes: Sequence[int], per_class: int) -> tuple[Tensor, Tensor]:
    """The first ``per_class`` training images of each of ``classes`` in the shipped digits data, and their labels."""
    images, labels, train, _ = digits_data()
    chosen = torch.cat([train[labels[train] == c][:per_class] for c in classes])
    return images[chosen], labels[chosen]


def trained_mlp(n_classes: int = 5) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A small MLP with heavy-tailed weights (as trained networks have), trained briefly on Gaussian blobs."""
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(n_classes, 10, generator=generator)
    labels = torch.arange(n_classes).repeat_interleave(30)
    inputs = centres[labels] + torch.randn(len(labels), 10, generator=generator)
    model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, n_classes))
    with torch.no_grad():
        for layer in model[::2]:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) / layer.in_features**0.5)
            layer.weight.mul_(torch.exp(1.5 * torch.randn(layer.weight.shape, generator=generator)))
            layer.bias.zero_()
    for _ in range(30):  # plain gradient descent (torch.optim's first step is slow to set up)
        model.zero_grad()
        nn.functional.cross_entropy(model(inputs), labels).backward()
        with torch.no_grad():
            for parameter in model.parameters():
                parameter -= 0.05 * parameter.grad
    return model.eval(), inputs, labels


# ------------------------------------------------------------------------------------------------ transformers

#: Real tokens per sentence of :func:`sentences` (cycled): a batch of them is padded to 7.
LENGTHS = (7, 5, 3, 7, 2, 6)
#: Levels of :func:`tiny_bert`, bottom to top: embeddings, the MLP activations of both layers, the softmax.
BERT_LEVELS = [
    "transformer.embeddings",
    "transformer.encoder.layer.0.intermediate",
    "transformer.encoder.layer.1.intermediate",
    "softmax",
]


def tiny_bert(dtype: torch.dtype = torch.float64) -> nn.Module:
    """A :class:`~stepwise.models.minilm.SentenceClassifier` on a BERT built from a config (nothing downloaded):
    two layers, hidden 32, four heads, MLP 48, three classes; seeded random weights, eval mode. Needs transformers."""
    import transformers

    from stepwise.models.minilm import SentenceClassifier

    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
        max_position_embeddings=32, attn_implementation="eager",
    )  # fmt: skip
    model = SentenceClassifier(transformers.BertModel(config, add_pooling_layer=False), 32, 3)
    with torch.no_grad():
        model.probe.weight.mul_(20.0)  # class scores that vary between sentences
    return model.to(dtype).eval()


def sentences(n: int = len(LENGTHS), seed: int = 1) -> dict[str, Tensor]:
    """Token ids and mask of ``n`` sentences of the lengths in :data:`LENGTHS` (cycled), padded with id 0."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([LENGTHS[i % len(LENGTHS)] for i in range(n)])
    mask = (torch.arange(int(lengths.max())) < lengths[:, None]).to(torch.int64)
    ids = torch.randint(1, 60, mask.shape, generator=generator) * mask
    return {"input_ids": ids, "attention_mask": mask}


def alone(batch: dict[str, Tensor], i: int) -> dict[str, Tensor]:
    """Sentence ``i`` of a padded batch on its own, without padding."""
    length = int(batch["attention_mask"][i].sum())
    return {key: value[i : i + 1, :length] for key, value in batch.items()}
