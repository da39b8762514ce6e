"""Candidate and default levels, and capturing them."""

from __future__ import annotations

import pytest
import torch
from tests.helpers import (
    BasicBlock,
    Bottleneck,
    PermuteMLP,
    Residual,
    ResNetStyle,
    TorchvisionResNet,
    VGGStyle,
    sequential_cnn,
)
from torch import Tensor, nn

import stepwise
from stepwise.core.hooks import all_finite
from stepwise.core.capture import capture
from stepwise.core.levels import resolve_levels


def test_list_levels_sequential_in_forward_order() -> None:
    names = stepwise.list_levels(sequential_cnn(), torch.randn(2, 3, 8, 8))
    assert names == ["input"] + [str(i) for i in range(10)] + ["softmax"]


def test_list_levels_leaves_out_reused_modules_and_repeated_containers() -> None:
    names = stepwise.list_levels(ResNetStyle(), torch.randn(2, 3, 16, 16))
    assert "layer1.0.relu" not in names  # one nn.ReLU used twice per block
    assert "layer1.0" in names and "layer1.0.bn2" in names and "layer1.0.downsample" not in names
    assert "layer1" not in names  # a Sequential's output is its last block's output
    assert names.index("layer1.0.conv1") < names.index("layer1.0") < names.index("layer1.1") < names.index("fc")
    assert names[0] == "input" and names[-1] == "softmax"


def test_default_levels_vgg_follow_design() -> None:
    levels = stepwise.default_levels(VGGStyle(), torch.randn(2, 3, 16, 16))
    assert levels == ["features.1", "features.3", "features.6", "classifier.1", "classifier.4", "softmax"]


def test_default_levels_of_a_resnet_are_the_stem_activation_and_the_block_outputs() -> None:
    # conv -> BatchNorm -> ReLU: the ReLU; inside residual blocks nothing, the blocks' outputs instead.
    levels = stepwise.default_levels(ResNetStyle(), torch.randn(2, 3, 16, 16))
    assert levels == ["relu", "layer1.0", "layer1.1", "layer2.0", "layer2.1", "softmax"]
    assert stepwise.default_levels(PermuteMLP(), torch.randn(2, 12)) == ["act1", "act2", "softmax"]


def test_default_levels_never_take_a_module_on_a_skip_branch() -> None:
    blocks = [f"layer{stage}.{i}" for stage in range(1, 5) for i in range(2)]
    resnet18 = TorchvisionResNet(BasicBlock, [2, 2, 2, 2])
    assert stepwise.default_levels(resnet18, torch.randn(2, 3, 32, 32)) == ["relu", *blocks, "softmax"]
    bottleneck = TorchvisionResNet(Bottleneck, [2, 1, 1, 1], width=8)
    assert stepwise.default_levels(bottleneck, torch.randn(2, 3, 32, 32)) == [
        "relu", "layer1.0", "layer1.1", "layer2.0", "layer3.0", "layer4.0", "softmax"
    ]  # fmt: skip


def test_a_skip_added_in_forward_code_makes_a_block() -> None:
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), Residual(8), Residual(8), nn.Linear(8, 3)).eval()
    assert stepwise.default_levels(model, torch.randn(2, 6)) == ["1", "2", "3", "softmax"]
    plain = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 8), nn.Tanh()), nn.Linear(8, 3))
    assert stepwise.default_levels(plain, torch.randn(2, 6)) == ["1", "2.1", "softmax"]  # one path: no block


def test_a_step_between_parallel_branches_is_refused_naming_the_block() -> None:
    model = TorchvisionResNet(BasicBlock, [2, 2, 2, 2]).eval()
    x = torch.randn(2, 3, 32, 32)
    levels = ["layer3.1", "layer4.0.conv2", "layer4.0.downsample.0", "softmax"]
    assert [info.name for info in resolve_levels(model, x, levels)] == levels  # fine for capturing
    with pytest.raises(ValueError, match=r"'layer4.0.downsample.0' does not depend on .*'layer4.0.conv2'.*'layer4.0'"):
        resolve_levels(model, x, levels, steps=True)
    resolve_levels(model, x, ["relu", "layer2.0", "layer4.1", "softmax"], steps=True)  # along one path: fine


def test_default_levels_of_a_non_classifier_end_in_its_output() -> None:
    regressor = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1))
    assert stepwise.default_levels(regressor, torch.randn(2, 3)) == ["1", "2"]
    scores = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Flatten())  # the ReLU output is the class scores
    assert stepwise.default_levels(scores, torch.randn(2, 3)) == ["softmax"]


def test_default_levels_respect_a_softmax_module_on_top() -> None:
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 4), nn.Softmax(dim=1))
    assert stepwise.default_levels(model, torch.randn(2, 3)) == ["1", "3"]


def test_capture_returns_values_before_later_in_place_ops() -> None:
    model = sequential_cnn()
    x = torch.randn(4, 3, 8, 8)
    infos = resolve_levels(model, x, ["input", "0", "1", "softmax"])
    captured = capture(model, x, infos)
    conv = model[0](x)
    assert torch.allclose(captured["0"], conv)  # the conv output, not overwritten by the in-place ReLU
    assert torch.allclose(captured["1"], conv.relu())
    assert torch.allclose(captured["softmax"], model(x).softmax(1))
    assert torch.equal(captured["input"], x)


def test_level_info_shapes() -> None:
    infos = resolve_levels(ResNetStyle(), torch.randn(2, 3, 16, 16), ["relu", "layer2.1", "softmax"])
    assert [(i.name, i.shape, i.n_neurons) for i in infos] == [
        ("relu", (8, 16, 16), 8),
        ("layer2.1", (16, 4, 4), 16),
        ("softmax", (5,), 5),
    ]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_all_finite_agrees_with_isfinite(dtype: torch.dtype) -> None:
    x = torch.randn(5, 7).to(dtype)
    assert all_finite(x)
    for bad in (float("nan"), float("inf"), -float("inf")):
        y = x.clone()
        y[3, 2] = bad
        assert all_finite(y) == bool(torch.isfinite(y).all()) is False
    assert all_finite(x[:0]) and all_finite(torch.arange(3))


class SometimesInPlace(nn.Module):
    """Doubles the first layer's output in place, but only for inputs whose first value is positive."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc(x)
        if x[0, 0] > 0:
            h.mul_(2.0)
        return self.head(h)


def test_capture_copies_only_levels_changed_in_place_later() -> None:
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(inplace=True), nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    x = torch.randn(5, 2, 8, 8)
    infos = resolve_levels(model, x[:2], ["0", "1", "3"])
    assert [info.rewritten for info in infos] == [True, False, False]  # the in-place ReLU rewrites conv 0's output
    captured = capture(model, x, infos)
    with torch.no_grad():
        conv = model[0](x)
        assert torch.equal(captured["0"], conv)  # the values before the ReLU
        assert torch.equal(captured["1"], conv.relu())
        assert torch.equal(captured["3"], model(x))


def test_capture_copies_a_level_changed_in_place_on_some_inputs_only() -> None:
    model = SometimesInPlace().eval()
    negative = -torch.rand(2, 3)
    infos = resolve_levels(model, negative, ["fc", "head"])
    assert not infos[0].rewritten  # the probe did not see the in-place change
    x = torch.rand(2, 3)
    with torch.no_grad():
        assert torch.equal(capture(model, x, infos)["fc"], model.fc(x))
