"""perturb: every metric against a direct numpy computation, reproducibility, streaming, errors, hooks, patches."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import perturb
import perturb._statistics
import perturb.ranking
from stepwise.core.capture import capture
from stepwise.core.levels import resolve_levels

# Scores are float64 statistics of the same activations (float32 or float64), computed by shifted sums instead
# of numpy's two-pass formulas: they agree to rounding.
RTOL, ATOL = 1e-9, 1e-12
N_SAMPLES = 24


def _init(model: nn.Module, seed: int) -> nn.Module:
    """Seeded weights (N(0, 1) / sqrt(fan-in)) and small biases, without global random state."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=generator) / fan_in**0.5 * (1.0 if p.dim() > 1 else 0.1))
    return model.eval()


def small_cnn() -> nn.Sequential:
    """Conv/ReLU(in place)/MaxPool/Conv/ReLU/Flatten/Linear on (3, 8, 8) images, 5 classes.

    Channel 4 of the first convolution is dead (zero weights, bias -1: a constant 0 after the ReLU) and channel 5
    is constant (zero weights, bias 0.5).
    """
    net = _init(
        nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(inplace=True),
            nn.Flatten(), nn.Linear(8 * 4 * 4, 5),
        ),
        seed=1,
    )  # fmt: skip
    with torch.no_grad():
        net[0].weight[4:6] = 0.0
        net[0].bias[4], net[0].bias[5] = -1.0, 0.5
    return net


def small_mlp() -> nn.Sequential:
    """Linear/ReLU/Linear/Tanh/Linear on (6,) vectors, 4 classes; unit 0 of the first layer is dead, unit 1 constant."""
    net = _init(nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 4)), seed=2)
    with torch.no_grad():
        net[0].weight[0:2] = 0.0
        net[0].bias[0], net[0].bias[1] = -1.0, 0.7
    return net


def cnn_image() -> Tensor:
    return torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(3)) + 0.2


def mlp_input() -> Tensor:
    return torch.rand(6, generator=torch.Generator().manual_seed(4)) + 0.2


#: The dead and the constant neuron of level "1" in each case.
DEAD_AND_CONSTANT = {"cnn": (4, 5), "mlp": (0, 1)}
CASES = {
    # name: (model factory, input factory, levels that are ranked, target)
    "cnn": (small_cnn, cnn_image, ["input", "1", "4", "softmax"], 2),
    "mlp": (small_mlp, mlp_input, ["input", "1", "3", "softmax"], 1),
}


# ------------------------------------------------------------------------------------------------ reference


def rounding_bound(a: np.ndarray, eps: float) -> np.ndarray:
    """The variance below which values (n, ...) computed in a dtype of epsilon ``eps`` are rounding noise only:
    (R eps)^2 mean(a^2) + 3 n eps64 mean((a - a_1)^2), R = ROUNDING_ULPS (perturb._statistics)."""
    units = perturb._statistics.ROUNDING_ULPS * eps
    return units**2 * (a**2).mean(axis=0) + 3 * len(a) * np.finfo(np.float64).eps * ((a - a[:1]) ** 2).mean(axis=0)


def numpy_scores(acts: np.ndarray, clean: np.ndarray, o: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """The four activation metrics from their definitions; acts (n, C, ...), clean (C, ...), o (n,)."""
    n, channels = acts.shape[:2]
    a = acts.reshape(n, channels, -1).astype(np.float64)
    z = clean.reshape(channels, -1).astype(np.float64)
    centred = a - a.mean(axis=0)
    # (C, P): positions whose activation changes across resamples by more than rounding noise
    varying = (centred**2).mean(axis=0) > rounding_bound(a, float(np.finfo(acts.dtype).eps))
    o_centred = o - o.mean()
    cov = np.einsum("i,icp->cp", o_centred, centred) / n
    var = np.where(varying, (centred**2).mean(axis=0), 0.0)  # population variance, 0 when within rounding
    var_o = (o_centred**2).mean()
    r = np.abs(cov) / np.sqrt(np.where(varying, var, 1.0) * var_o)
    correlation = np.array([r[c][varying[c]].mean() if varying[c].any() else 0.0 for c in range(channels)])
    mean_activation = a.mean(axis=(0, 2))
    with np.errstate(divide="ignore"):
        precision = np.where(mean_activation >= threshold, 1.0 / var.mean(axis=1), np.nan)
    return {
        "correlation": correlation,
        "precision": precision,
        "activation_sum": z.sum(axis=1),
        "activation_variance": z.var(axis=1),
        "_varying": varying,
        "_mean_activation": mean_activation,
    }


def captured(model: nn.Module, batch: Tensor, levels: list[str]) -> dict[str, np.ndarray]:
    infos = resolve_levels(model, batch[:2], levels)
    return {name: t.numpy() for name, t in capture(model, batch, infos).items()}


def target_output(model: nn.Module, batch: Tensor, target: int, output: str) -> np.ndarray:
    with torch.no_grad():
        logits = model(batch).double().numpy()
    if output == "logit":
        return logits[:, target]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True))[:, target]


def check_against_numpy(
    name: str, output: str, threshold: float | None = None, dtype: torch.dtype = torch.float32
) -> tuple[perturb.NeuronRanking, dict[str, dict[str, np.ndarray]]]:
    """Rank on a given set of resamples and compare every activation metric with :func:`numpy_scores`."""
    model_of, input_of, levels, target = CASES[name]
    model, image = model_of().to(dtype), input_of().to(dtype)
    samples = perturb.resample(image, n_samples=N_SAMPLES, sigma=0.2, seed=5)
    # the clean input alone and the resamples in one batch, as rank_neurons runs them (so that a convolution
    # rounds the same way in both computations)
    acts = captured(model, samples, levels)
    clean = captured(model, image[None], levels)
    o = target_output(model, samples, target, output)
    if threshold is None:  # between the mean activations, so that both precision branches occur
        threshold = float(np.median(numpy_scores(acts["1"], clean["1"][0], o, 0.0)["_mean_activation"]))
    ranking = perturb.rank_neurons(
        model, image, levels, target=target, output=output, samples=samples, threshold=threshold
    )
    expected = {}
    for level in levels:
        expected[level] = numpy_scores(acts[level], clean[level][0], o, threshold)
        for metric in ("correlation", "precision", "activation_sum", "activation_variance"):
            np.testing.assert_allclose(
                ranking.scores(metric, level).numpy(), expected[level][metric], rtol=RTOL, atol=ATOL,
                err_msg=f"{name} {level} {metric}",
            )  # fmt: skip
    np.testing.assert_allclose(ranking.outputs.numpy(), o, rtol=1e-12)
    return ranking, expected


# ------------------------------------------------------------------------------------------------ metrics


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("output", ["probability", "logit"])
@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_metrics_equal_numpy(name: str, output: str, dtype: torch.dtype) -> None:
    _, expected = check_against_numpy(name, output, dtype=dtype)
    # the threshold (the median mean activation) splits level '1', so both precision branches were compared
    precision = expected["1"]["precision"]
    assert np.isnan(precision).any() and np.isfinite(precision).any()


@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_zero_variance_and_below_threshold(name: str) -> None:
    ranking, expected = check_against_numpy(name, "probability", threshold=0.1)
    correlation, precision = ranking.scores("correlation", "1"), ranking.scores("precision", "1")
    dead, constant = DEAD_AND_CONSTANT[name]
    # the dead neuron: never varies (correlation 0) and its mean 0 is below the threshold (precision NaN)
    assert correlation[dead] == 0.0 and torch.isnan(precision[dead])
    # the constant neuron: never varies (correlation 0), above the threshold with zero variance (precision inf)
    assert correlation[constant] == 0.0 and precision[constant] == float("inf")
    # in the CNN, some positions of live channels never vary (the ReLU is off on every resample) and are left
    # out of their neuron's mean |r|
    varying = expected["1"]["_varying"]
    assert name == "mlp" or (varying.any(axis=1) & ~varying.all(axis=1)).any()


def test_weight_metrics_equal_numpy() -> None:
    model = small_cnn()
    ranking = perturb.rank_neurons(model, cnn_image(), ["0", "1", "4", "softmax"], target=0, n_samples=4)
    assert ranking.weight_modules == {"0": "0", "1": "0", "4": "3", "softmax": "6"}
    for level, module in ranking.weight_modules.items():
        w = model.get_submodule(module).weight.detach().double().numpy()
        rows = w.reshape(w.shape[0], -1)
        np.testing.assert_allclose(ranking.scores("weight_sum", level).numpy(), rows.sum(1), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(ranking.scores("weight_variance", level).numpy(), rows.var(1), rtol=1e-12)


class Decoder(nn.Module):
    """A grouped transposed convolution, a BatchNorm between it and its ReLU, a functional ReLU, a pool."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2)
        self.norm = nn.BatchNorm2d(6)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x: Tensor) -> Tensor:
        h = self.pool(torch.relu(self.act(self.norm(self.up(x)))))
        return self.fc(h.flatten(1))


def test_weight_rows_of_grouped_transposed_convolution() -> None:
    model = _init(Decoder(), seed=6)
    ranking = perturb.rank_neurons(model, torch.rand(4, 5, 5) + 0.1, ["act", "pool"], target=1, n_samples=4)
    assert ranking.weight_modules == {"act": "up", "pool": "up"}
    w = model.up.weight.detach().double().numpy()  # (in, out / groups, 3, 3), groups of 2 input channels
    rows = np.concatenate([w[2 * g : 2 * g + 2].transpose(1, 0, 2, 3).reshape(3, -1) for g in range(2)])
    np.testing.assert_allclose(ranking.scores("weight_sum", "act").numpy(), rows.sum(1), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ranking.scores("weight_variance", "pool").numpy(), rows.var(1), rtol=1e-12)


class Residual(nn.Module):
    """x -> conv -> relu -> conv, plus a skip from the first ReLU: the block output has two feeding convs."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.block = nn.Identity()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 8 * 8, 3))

    def forward(self, x: Tensor) -> Tensor:
        h = self.relu(self.stem(x))
        return self.head(self.block(h + self.conv(h)))


def test_level_without_weights_raises_for_weight_metrics() -> None:
    ranking = perturb.rank_neurons(_init(Residual(), 7), cnn_image(), ["input", "relu", "block"], target=0, n_samples=4)
    assert ranking.weight_modules == {"input": None, "relu": "stem", "block": None}
    with pytest.raises(
        ValueError, match="'weight_sum' is undefined for level 'input': level 'input' is the model input"
    ):
        ranking.scores("weight_sum", "input")
    with pytest.raises(ValueError, match=r"fed by several Conv/Linear modules \['stem', 'conv'\]"):
        ranking.scores("weight_variance", "block")
    with pytest.raises(ValueError, match="undefined for level 'input'"):
        ranking.top("weight_sum")
    with pytest.raises(ValueError, match="undefined for level 'input'"):
        perturb.agreement(ranking, metrics=("correlation", "weight_variance"))
    assert ranking.scores("correlation", "block").shape == (4,)  # activation metrics stay defined
    table = ranking.table()
    assert table.loc[table.level == "input", "weight_sum"].isna().all()
    assert table.loc[table.level == "input", "weight_sum_rank"].isna().all()


# ------------------------------------------------------------------------------------------------ resamples


def test_resample_is_the_documented_noise() -> None:
    image = cnn_image()
    generator = torch.Generator().manual_seed(11)
    expected = torch.stack([image * (1 + 0.3 * torch.randn(image.shape, generator=generator)) for _ in range(5)])
    assert torch.equal(perturb.resample(image, n_samples=5, sigma=0.3, seed=11), expected)
    assert torch.equal(perturb.resample(image[None], n_samples=5, sigma=0.3, seed=11), expected)


def assert_identical(a: Tensor, b: Tensor) -> None:
    """Bit for bit, NaN equal to NaN."""
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


def test_same_seed_gives_identical_scores_and_the_seed_path_equals_samples() -> None:
    model, image = small_cnn(), cnn_image()
    first = perturb.rank_neurons(model, image, target=1, n_samples=12, seed=9)
    again = perturb.rank_neurons(model, image, target=1, n_samples=12, seed=torch.Generator().manual_seed(9))
    given = perturb.rank_neurons(model, image, target=1, samples=perturb.resample(image, n_samples=12, seed=9))
    other = perturb.rank_neurons(model, image, target=1, n_samples=12, seed=10)
    for metric in perturb.METRICS:
        for level in first.levels:
            assert_identical(first.scores(metric, level), again.scores(metric, level))
            assert_identical(first.scores(metric, level), given.scores(metric, level))
    assert not torch.equal(first.scores("correlation", "4"), other.scores("correlation", "4"))
    assert (first.seed, first.sigma, given.seed, given.sigma, given.n_samples) == (9, 0.1, None, None, 12)


def test_numpy_generator_and_fresh_seeds(capsys: pytest.CaptureFixture) -> None:
    model, image = small_mlp(), mlp_input()
    first = perturb.rank_neurons(model, image, target=0, n_samples=6, seed=np.random.default_rng(3))
    again = perturb.rank_neurons(model, image, target=0, n_samples=6, seed=np.random.default_rng(3))
    assert_identical(first.scores("correlation", "3"), again.scores("correlation", "3"))
    fresh = perturb.rank_neurons(model, image, target=0, n_samples=6, seed=None, progress=True)
    assert fresh.seed is None and len(fresh.outputs) == 6
    assert "6/6" in capsys.readouterr().err  # the progress bar counts resamples


@pytest.mark.parametrize(
    "batch_size, group_bytes, chunk",
    [
        (5, None, None),  # five batches, all held in one group
        (5, 1, None),  # one batch per group
        (3, 12_000, 64),  # groups of one or two batches (12 kB of activations), blocks of a few columns
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_streaming_in_batches_equals_one_batch(
    name: str, dtype: torch.dtype, batch_size: int, group_bytes: int | None, chunk: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    model_of, input_of, levels, target = CASES[name]
    model, image = model_of().to(dtype), input_of().to(dtype)
    whole = perturb.rank_neurons(model, image, levels, target=target, n_samples=N_SAMPLES, batch_size=N_SAMPLES)
    if group_bytes is not None:
        monkeypatch.setattr(perturb.ranking, "_GROUP_BYTES", group_bytes)
    if chunk is not None:
        monkeypatch.setattr(perturb._statistics, "CHUNK", chunk)
    streamed = perturb.rank_neurons(model, image, levels, target=target, n_samples=N_SAMPLES, batch_size=batch_size)
    assert (whole.batch_size, streamed.batch_size) == (N_SAMPLES, batch_size)
    # float64 models: only the summation order differs. float32: a convolution may also round differently for
    # another batch size, which moves activations by about 1e-7 relative.
    rtol = 1e-10 if dtype == torch.float64 else 1e-4
    for metric in perturb.METRICS:
        for level in levels:
            if metric.startswith("weight") and level == "input":
                continue
            np.testing.assert_allclose(streamed.scores(metric, level), whole.scores(metric, level), rtol=rtol,
                                       atol=rtol * 1e-2, err_msg=f"{metric} {level}")  # fmt: skip
    np.testing.assert_allclose(streamed.outputs, whole.outputs, rtol=rtol)


def test_constant_output_warns_and_scores_correlation_zero() -> None:
    with pytest.warns(UserWarning, match="the same on every resample"):
        ranking = perturb.rank_neurons(small_mlp(), mlp_input(), target=0, n_samples=4, sigma=0.0)
    assert all((ranking.scores("correlation", level) == 0).all() for level in ranking.levels)
    precision = ranking.scores("precision", "1")
    assert torch.isinf(precision[~torch.isnan(precision)]).all()


# ------------------------------------------------------------------------------------------------ the result


def test_top_table_and_repr() -> None:
    ranking = perturb.rank_neurons(small_cnn(), cnn_image(), target=2, n_samples=10, threshold=0.1)
    assert ranking.levels == ["1", "4", "softmax"]
    precision = ranking.scores("precision", "1").numpy()
    top = ranking.top("precision", k=6)
    valid = np.flatnonzero(~np.isnan(precision))
    assert sorted(top["1"]) == sorted(valid.tolist())  # NaN scores are left out of the top
    assert list(precision[top["1"]]) == sorted(precision[valid], reverse=True)
    assert ranking.top("correlation", k=2)["4"] == list(
        np.argsort(-ranking.scores("correlation", "4").numpy(), kind="stable")[:2]
    )

    table = ranking.table()
    assert list(table.columns) == [
        "level",
        "neuron",
        *perturb.METRICS,
        *(f"{m}_rank" for m in perturb.METRICS),
    ]
    assert len(table) == 6 + 8 + 5
    rows = table[table.level == "1"].set_index("neuron")
    np.testing.assert_array_equal(rows["correlation"].to_numpy(), ranking.scores("correlation", "1").numpy())
    assert rows["precision_rank"].tolist() == [
        1 + sorted(range(6), key=lambda i: (np.isnan(precision[i]), -np.nan_to_num(precision[i]), i)).index(n)
        for n in range(6)
    ]
    assert rows.loc[4, "precision_rank"] == 6  # the dead channel (NaN) ranks last; the constant one (inf) first
    assert rows.loc[5, "precision_rank"] == 1
    text = repr(ranking)
    assert "\n" not in text and text.startswith("NeuronRanking(model=Sequential, target=2")


def test_single_level_and_softmax_top_with_logits() -> None:
    model, image = small_cnn(), cnn_image()
    one = perturb.rank_neurons(model, image, ["4"], target=3, n_samples=8)
    assert one.levels == ["4"]
    top = perturb.rank_neurons(model, image, ["softmax"], target=3, n_samples=8, output="logit")
    assert top.levels == ["softmax"] and top.output == "logit"
    with torch.no_grad():
        logits = model(perturb.resample(image, n_samples=8)).double()
    np.testing.assert_allclose(top.outputs, logits[:, 3], rtol=1e-12)


def test_jaccard_is_the_true_index() -> None:
    assert perturb.jaccard([1, 2, 3], [2, 3, 4]) == 0.5  # |A∩B| / |A∪B|, not |A∩B| / (|A| + |B|) = 1/3
    assert perturb.jaccard({1, 2}, torch.tensor([2])) == 0.5
    assert perturb.jaccard([], []) == 1.0
    assert perturb.jaccard([("a", 1)], [["a", 1], ("b", 2)]) == 0.5


def test_agreement_per_level() -> None:
    ranking = perturb.rank_neurons(small_cnn(), cnn_image(), target=2, n_samples=10)
    result = perturb.agreement(ranking, k=3)
    a, b = ranking.top("correlation", 3), ranking.top("precision", 3)
    assert result == {level: len(set(a[level]) & set(b[level])) / len(set(a[level]) | set(b[level]))
                      for level in ranking.levels}  # fmt: skip
    assert perturb.agreement(ranking, metrics=("activation_sum", "activation_sum"))["4"] == 1.0


# ------------------------------------------------------------------------------------------------ errors


def test_probability_of_a_single_score_raises() -> None:
    net = _init(nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 1)), seed=8)
    with pytest.raises(ValueError, match="Pass output='logit'"):
        perturb.rank_neurons(net, mlp_input(), target=0)
    assert perturb.rank_neurons(net, mlp_input(), target=0, output="logit", n_samples=4).levels == ["1", "2"]


# ------------------------------------------------------------------------------------------------ side effects


def assert_no_hooks(model: nn.Module) -> None:
    for module in model.modules():
        for hooks in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            assert not getattr(module, hooks), (module, hooks)


class FailsOnBatches(nn.Module):
    """Runs one input, raises on a batch: the checking passes succeed and the resample pass fails."""

    def forward(self, x: Tensor) -> Tensor:
        if len(x) > 1:
            raise RuntimeError("this module takes one input at a time")
        return x


def state_of(model: nn.Module) -> list:
    """Training flags, parameter flags, gradients and values, buffers."""
    return (
        [m.training for m in model.modules()]
        + [(p.requires_grad, None if p.grad is None else p.grad.clone()) for p in model.parameters()]
        + [(True, t.detach().clone()) for t in list(model.parameters()) + list(model.buffers())]
    )


def assert_same_state(before: list, after: list) -> None:
    assert len(before) == len(after)
    for a, b in zip(before, after):
        if isinstance(a, tuple):
            assert a[0] == b[0] and (a[1] is None) == (b[1] is None)
            assert a[1] is None or torch.equal(a[1], b[1])
        else:
            assert a == b


def _train_mode_model(fails: bool = False) -> nn.Module:
    """In train mode but for one ReLU, the first weight frozen, a gradient on the second convolution."""
    net = small_cnn()
    if fails:
        net.insert(1, FailsOnBatches())
    net.train()
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    next(m for m in net if isinstance(m, nn.ReLU)).eval()
    convs[0].weight.requires_grad_(False)
    convs[1].weight.grad = torch.ones_like(convs[1].weight)
    return net


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_weights_and_inputs_are_left_untouched(name: str, dtype: torch.dtype) -> None:
    model_of, input_of, levels, target = CASES[name]
    model, image = model_of().to(dtype), input_of().to(dtype)
    samples = perturb.resample(image, n_samples=6, seed=1)
    before, image_before, samples_before = state_of(model), image.clone(), samples.clone()
    perturb.rank_neurons(model, image, levels[1:], target=target, samples=samples)
    perturb.rank_neurons(model, image, levels[1:], target=target, n_samples=6)
    assert_same_state(before, state_of(model))
    assert torch.equal(image, image_before) and torch.equal(samples, samples_before)


def test_hooks_removed_and_state_restored_after_a_normal_call() -> None:
    net = _train_mode_model()
    before = state_of(net)
    with pytest.warns(UserWarning, match="perturb.rank_neurons: the model is in train mode"):
        perturb.rank_neurons(net, cnn_image(), target=1, n_samples=4)
    assert_no_hooks(net)
    assert_same_state(before, state_of(net))
    with pytest.warns(UserWarning, match="perturb.patches: the model is in train mode"):
        perturb.patches(net, cnn_image(), "4", [0, 1])
    assert_no_hooks(net)
    assert_same_state(before, state_of(net))


def test_hooks_removed_and_state_restored_after_raising_calls() -> None:
    net = _train_mode_model()
    before = state_of(net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="in the range \\[0, 4\\]"):
            perturb.rank_neurons(net, cnn_image(), target=7)
        failing = _train_mode_model(fails=True)
        failing_before = state_of(failing)
        with pytest.raises(ValueError, match="The model raised RuntimeError on inputs of shape \\(4, 3, 8, 8\\)"):
            perturb.rank_neurons(failing, cnn_image(), ["2", "5"], target=1, n_samples=4)
        with pytest.raises(ValueError, match="Neuron 9 is out of range"):
            perturb.patches(net, cnn_image(), "4", [0, 9])
    for model, state in ((net, before), (failing, failing_before)):
        assert_no_hooks(model)
        assert_same_state(state, state_of(model))


# ------------------------------------------------------------------------------------------------ patches


def _positive_conv(*layers: nn.Module) -> nn.Sequential:
    """Convolutions with positive weights: every pixel of a neuron's receptive field gets a positive attribution."""
    net = nn.Sequential(*layers)
    generator = torch.Generator().manual_seed(12)
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(0.1 + torch.rand(m.weight.shape, generator=generator))
                m.bias.zero_()
    return net.eval()


def _clip_box(y0: int, x0: int, y1: int, x1: int, height: int, width: int) -> tuple[int, int, int, int]:
    return max(y0, 0), max(x0, 0), min(y1, height), min(x1, width)


@pytest.mark.parametrize(
    "layers, level, footprint",
    [
        # one 3x3 convolution: the kernel around the maximum at (y, x)
        (lambda: [nn.Conv2d(2, 3, 3, padding=1)], "0", lambda y, x: (y - 1, x - 1, y + 2, x + 2)),
        # a strided 3x3 convolution: output (y, x) reads input rows 2y - 1 .. 2y + 1
        (lambda: [nn.Conv2d(2, 3, 3, stride=2, padding=1)], "0", lambda y, x: (2 * y - 1, 2 * x - 1, 2 * y + 2, 2 * x + 2)),
        # two 3x3 convolutions with a ReLU between them, from the ReLU after the second: a 5x5 field
        (lambda: [nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()], "3",
         lambda y, x: (y - 2, x - 2, y + 3, x + 3)),
    ],
)  # fmt: skip
def test_patch_box_is_the_receptive_field_of_the_maximum(layers, level: str, footprint) -> None:
    net = _positive_conv(*layers())
    image = torch.rand(2, 11, 10, generator=torch.Generator().manual_seed(13))
    image[:, 0, 0] = 20.0  # a bright corner pulls some maxima to the border, where the box is clipped
    info = resolve_levels(net, image[None], ["input", level])[1]
    activation = capture(net, image[None], [info])[level][0]
    found = perturb.patches(net, image, level, list(range(info.n_neurons)))
    clipped = 0
    for neuron, patch in enumerate(found):
        channel = activation[neuron]
        y, x = divmod(int(channel.flatten().argmax()), channel.shape[1])
        assert (patch.level, patch.neuron, patch.location) == (level, neuron, (y, x))
        assert patch.box == _clip_box(*footprint(y, x), 11, 10)
        y0, x0, y1, x1 = patch.box
        assert torch.equal(patch.crop, image[:, y0:y1, x0:x1])
        clipped += patch.box != footprint(y, x)
    assert clipped > 0


def test_patch_of_a_unit_covers_its_whole_receptive_field() -> None:
    (patch,) = perturb.patches(small_cnn(), cnn_image(), "6", 3)  # a logit: every pixel reaches it
    assert (patch.location, patch.box, tuple(patch.crop.shape)) == ((), (0, 0, 8, 8), (3, 8, 8))


def test_patches_of_several_neurons_equal_one_at_a_time() -> None:
    net, image = small_cnn(), cnn_image()
    together = perturb.patches(net, image[None], "4", [3, 0, 3])
    alone = [perturb.patches(net, image, "4", n)[0] for n in (3, 0, 3)]
    assert [(p.neuron, p.location, p.box) for p in together] == [(p.neuron, p.location, p.box) for p in alone]
    assert "\n" not in repr(together[0]) and repr(together[0]).startswith("Patch(level='4', neuron=3")


def test_plot_patches_draws_one_colour_per_level() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    model, image = small_cnn(), cnn_image()
    ranking = perturb.rank_neurons(model, image, ["1", "4", "softmax"], target=2, n_samples=6)
    fig = perturb.plot_patches(image, ranking, k=2)
    boxes = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
    top = ranking.top("correlation", 2)
    assert len(boxes) == len(top["1"]) + len(top["4"])  # softmax has no map, so it is not drawn
    colours = {tuple(b.get_edgecolor()) for b in boxes}
    assert len(colours) == 2
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["1", "4"]
    expected = perturb.patches(model, image, "4", top["4"])
    assert [(b.get_x() + 0.5, b.get_y() + 0.5) for b in boxes[len(top["1"]) :]] == [
        (p.box[1], p.box[0]) for p in expected
    ]
    plt.close(fig)
