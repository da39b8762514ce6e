"""Candidate and default levels, and capturing them."""

from __future__ import annotations

import pytest
import torch
from tests.helpers import PermuteMLP, ResNetStyle, VGGStyle, sequential_cnn
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


def test_default_levels_without_activation_module_take_the_layer_output() -> None:
    # ResNet: conv -> BatchNorm -> shared ReLU, so each conv's own output is the level (DESIGN.md).
    levels = stepwise.default_levels(ResNetStyle(), torch.randn(2, 3, 16, 16))
    assert levels[:3] == ["conv1", "layer1.0.conv1", "layer1.0.conv2"]
    assert "layer2.0.downsample.0" in levels and "fc" not in levels and levels[-1] == "softmax"
    assert stepwise.default_levels(PermuteMLP(), torch.randn(2, 12)) == ["act1", "act2", "softmax"]


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
