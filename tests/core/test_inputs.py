"""The checks perturb shares with the rest of the library: one neuron check, seeds, one input as a batch of one."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import perturb
import stepwise
from stepwise.core.inputs import make_generator, single_input
from stepwise.core.validation import check_neurons

# ------------------------------------------------------------------------------------------------ neurons


@pytest.mark.parametrize(
    "neurons, expected",
    [
        (3, [3]),
        (np.int64(7), [7]),
        (np.uint8(0), [0]),
        (torch.tensor(5), [5]),
        (np.array(2), [2]),
        ([0, 7, 0], [0, 7, 0]),  # order and repeats kept
        ((1, 2), [1, 2]),
        (range(2, 5), [2, 3, 4]),
        (torch.tensor([6, 1]), [6, 1]),
        (torch.tensor([4]), [4]),
        (np.array([3, 3], dtype=np.int32), [3, 3]),
        ([torch.tensor(1), np.int16(2), 3], [1, 2, 3]),
    ],
)
def test_check_neurons_accepts_integers_of_every_kind(neurons: object, expected: list[int]) -> None:
    checked = check_neurons(neurons, 8, level="features.3")
    assert checked == expected and all(type(n) is int for n in checked)


@pytest.mark.parametrize(
    "neurons, error, message",
    [
        (1.5, TypeError, "The 'neurons' parameter of Owner.f must be an int or a sequence of ints. Got 1.5 (float)"),
        (True, TypeError, "must be an int or a sequence of ints. Got True (bool)"),
        (torch.tensor(True), TypeError, "must be an int or a sequence of ints. Got tensor(True)"),
        (torch.tensor(2.0), TypeError, "must be an int or a sequence of ints. Got tensor(2.)"),
        ("12", TypeError, "Got '12' (str) instead. Pass neuron indices of level 'features.3', for example 3 or [0, 7]"),
        ({1: 2}, TypeError, "must be an int or a sequence of ints. Got {1: 2} (dict)"),
        (None, TypeError, "Got None (NoneType)"),
        ([1, 2.0], TypeError, "neurons must be ints, but entry 1 of the 'neurons' parameter of Owner.f is 2.0 (float)"),
        ([1.5], TypeError, "int() converts a float that holds a whole number"),
        ([True], TypeError, "entry 0 of the 'neurons' parameter of Owner.f is True (bool)"),
        (np.array([True, False]), TypeError, "is True (bool)"),
        (torch.tensor([1.0, 2.0]), TypeError, "is 1.0 (float)"),
        (torch.tensor([[1, 2]]), ValueError, "has shape (1, 2). Flatten it first, e.g. neurons.flatten()"),
        ([], ValueError, "is empty: name at least one neuron of level 'features.3', for example 3 or [0, 7]"),
        (torch.tensor([], dtype=torch.long), ValueError, "is empty"),
        ([0, 8], ValueError, "Neuron 8 is out of range for level 'features.3', which has 8 neurons (0 to 7): pass"),
        (-1, ValueError, "Neuron -1 is out of range for level 'features.3', which has 8 neurons (0 to 7)"),
        (np.int64(-1), ValueError, "a negative index does not count from the end"),
    ],
)
def test_check_neurons_says_what_is_wrong_and_the_fix(neurons: object, error: type, message: str) -> None:
    with pytest.raises(error) as caught:
        check_neurons(neurons, 8, level="features.3", owner="Owner.f")
    assert type(caught.value) is error
    assert message in str(caught.value)


def test_check_neurons_names_the_parameter_it_checks() -> None:
    with pytest.raises(ValueError, match=r"^The 'target' parameter is empty"):
        check_neurons([], 3, level="softmax", name="target")
    with pytest.raises(TypeError, match=r"^target must be ints, but entry 0 of the 'target' parameter is"):
        check_neurons([0.5], 3, level="softmax", name="target")


def test_validation_needs_no_torch() -> None:
    code = "import sys, stepwise.core.validation as v; assert 'torch' not in sys.modules, 'torch'; print(v.check_neurons(2, 3, level='x'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[2]"


def test_import_perturb_stays_light() -> None:
    """captum, pandas and matplotlib load inside the functions that use them."""
    heavy = ("captum", "pandas", "matplotlib", "seaborn", "plotly", "scipy.cluster")
    code = f"import sys, perturb; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _conv_net() -> nn.Sequential:
    generator = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
    return net


@pytest.mark.parametrize("neurons", [[0, 4], [1.0], "1", [], torch.tensor([[0]])])
def test_perturb_and_ssa_check_neurons_alike(neurons: object) -> None:
    """patches and StepwiseSensitivity.relevance raise the same error for the same neurons of the same level."""
    net = _conv_net()
    image = torch.rand(3, 6, 6, generator=torch.Generator().manual_seed(1))
    messages = []
    for call in (
        lambda: perturb.patches(net, image, "1", neurons),
        lambda: stepwise.StepwiseSensitivity(net, ["input", "1", "softmax"]).relevance(
            image[None].repeat(2, 1, 1, 1), upper="1", lower="input", neurons=neurons
        ),
    ):
        with pytest.raises((TypeError, ValueError)) as caught:
            call()
        messages.append((type(caught.value), str(caught.value).split(" parameter of ")[-1].split(" ", 1)[-1]))
    assert messages[0] == messages[1], messages


def test_numpy_and_tensor_neurons_give_the_same_patches() -> None:
    net = _conv_net()
    image = torch.rand(3, 6, 6, generator=torch.Generator().manual_seed(1))
    boxes = [
        [p.box for p in perturb.patches(net, image, "1", n)] for n in ([2, 0], np.array([2, 0]), torch.tensor([2, 0]))
    ]
    assert boxes[0] == boxes[1] == boxes[2]
    assert [p.box for p in perturb.patches(net, image, "1", torch.tensor(2))] == boxes[0][:1]


# ------------------------------------------------------------------------------------------------ seeds


def test_make_generator_from_an_int_draws_as_a_seeded_generator_and_leaves_global_state() -> None:
    state = torch.random.get_rng_state()
    drawn = torch.rand(5, generator=make_generator(11, "f"))
    assert torch.equal(drawn, torch.rand(5, generator=torch.Generator().manual_seed(11)))
    assert torch.equal(torch.random.get_rng_state(), state)


def test_make_generator_uses_a_generator_as_it_is_and_seeds_from_numpy() -> None:
    generator = torch.Generator().manual_seed(3)
    assert make_generator(generator, "f") is generator
    first = torch.rand(4, generator=make_generator(np.random.default_rng(5), "f"))
    again = torch.rand(4, generator=make_generator(np.random.default_rng(5), "f"))
    assert torch.equal(first, again)
    fresh = [torch.rand(4, generator=make_generator(None, "f")) for _ in range(2)]
    assert not torch.equal(fresh[0], fresh[1])  # from the operating system: two fresh seeds


@pytest.mark.parametrize("seed", [-1, True, 1.5, "a", np.random.RandomState(0)])
def test_make_generator_refuses_other_seeds(seed: object) -> None:
    with pytest.raises(TypeError, match=r"The 'seed' parameter of owner\.f must be an int in the range \[0, inf\)"):
        make_generator(seed, "owner.f")


# ------------------------------------------------------------------------------------------------ one input


@pytest.mark.parametrize(
    "shape, batched", [((3, 4, 4), (1, 3, 4, 4)), ((1, 3, 4, 4), (1, 3, 4, 4)), ((5,), (1, 5)), ((1, 5), (1, 5))]
)
def test_single_input_is_a_detached_batch_of_one(shape: tuple[int, ...], batched: tuple[int, ...]) -> None:
    image = torch.rand(shape, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    x = single_input(image, "f")
    assert x.shape == batched and not x.requires_grad
    assert torch.equal(x.reshape(shape), image.detach())
    x += 1  # a copy: the image is left alone
    assert not torch.equal(x.reshape(shape), image.detach())


@pytest.mark.parametrize(
    "image, error, message",
    [
        (np.zeros((3, 4, 4)), TypeError, "Convert arrays with torch.as_tensor"),
        (torch.zeros(2, 3, 4, 4), ValueError, "a batch of 2 inputs. Pass one input shaped"),
        (torch.zeros(1, 1, 3, 4, 4), ValueError, "got shape (1, 1, 3, 4, 4)"),
        (torch.zeros(3, 0, 4), ValueError, "'image' is empty"),
        (torch.zeros(3, 4, 4, dtype=torch.long), TypeError, "Convert it, e.g. image.float()"),
        (torch.zeros(3, 4, 4, dtype=torch.float64), TypeError, "for example image.to(torch.float32)"),
        (torch.full((3, 4, 4), float("nan")), ValueError, "holds NaN or Inf values"),
    ],
)
def test_single_input_refuses_what_is_not_one_input(image: object, error: type, message: str) -> None:
    with pytest.raises(error) as caught:
        single_input(image, "f", nn.Linear(2, 2))
    assert message in str(caught.value)
