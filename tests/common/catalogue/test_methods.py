"""The catalogue of bad inputs, continued: the methods beyond SSA and perturbation (decision paths, inference graphs,
the activation sorter) and the executors of many classes, checked as test_api.py checks its cases."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tests.helpers import sequential_cnn
from torch import Tensor

import perturb
import stepwise
from stepwise import DependencyGraph
from stepwise.models import digits_cnn, digits_data
from stepwise.paths.decision_paths import NotFittedError
from stepwise.sorter.sorter import NotFittedError as SorterNotFittedError

from tests.common.catalogue.bench import (
    DIGITS,
    LEVELS,
    N_INPUTS,
    PROBE,
    RANGE_1,
    assert_no_hooks,
    assert_quick,
    assert_same_state,
    Bad,
    BadCommand,
    Bench,
    check_api,
    check_command,
    counting,
    global_hooks,
    prepared,
    state_of,
    timed,
    with_value,
)


API: dict[str, Bad] = {}  # every method's Python cases, by name
COMMANDS: dict[str, BadCommand] = {}  # every method's command lines, by name

# ------------------------------------------------------------------------------------------------ decision paths


def paths_of(b: Bench, levels: object = ("features.3", "classifier.1"), **kwargs: Any) -> stepwise.DecisionPaths:
    return stepwise.DecisionPaths(b.model, levels, **kwargs)


RANGE_2 = "must be an int in the range [2, inf)"
DECISION_PATHS = {
    "DecisionPaths: n_clusters=1": Bad(lambda b: paths_of(b, n_clusters=1), ValueError, RANGE_2),
    "DecisionPaths: n_clusters={level: 1}": Bad(
        lambda b: paths_of(b, n_clusters={"classifier.1": 1}), ValueError, RANGE_2
    ),
    "DecisionPaths: more clusters than inputs": Bad(
        lambda b: paths_of(b, n_clusters=10).fit(b.inputs[:5]),
        ValueError,
        "more clusters than its 5 samples (5 inputs): pass more inputs or a smaller n_clusters",
        probes=1,
    ),
    "DecisionPaths: a level name with a typo": Bad(
        lambda b: paths_of(b, ["classifer.1"]).fit(b.inputs), ValueError, "Did you mean 'classifier.1'", probes=1
    ),
    "DecisionPaths: levels out of forward order": Bad(
        lambda b: paths_of(b, ["classifier.1", "features.3"]).fit(b.inputs),
        ValueError,
        "List levels bottom to top",
        probes=1,
    ),
    "DecisionPaths: features='flat'": Bad(
        lambda b: paths_of(b, features="flat"), ValueError, "Did you mean 'flatten'?"
    ),
    "DecisionPaths: top='labels'": Bad(lambda b: paths_of(b, top="labels"), ValueError, "Did you mean 'label'?"),
    "DecisionPaths: algorithm='minibach'": Bad(
        lambda b: paths_of(b, algorithm="minibach"), ValueError, "Did you mean 'minibatch'?"
    ),
    "DecisionPaths: n_init=0": Bad(lambda b: paths_of(b, n_init=0), ValueError, RANGE_1),
    "DecisionPaths: seed=-1": Bad(lambda b: paths_of(b, seed=-1), ValueError, "must be an int in the range [0, "),
    "DecisionPaths: labels of another length": Bad(
        lambda b: paths_of(b).fit(b.inputs, torch.zeros(5, dtype=torch.int64)),
        ValueError,
        "Found 5 labels for 1024 inputs: pass one label per input.",
    ),
    "DecisionPaths: top='label' without labels": Bad(
        lambda b: paths_of(b, top="label").fit(b.inputs), ValueError, "pass labels=... (one class per input)"
    ),
    "DecisionPaths: time_dim on a 2-D level": Bad(
        lambda b: paths_of(b, ["classifier.1"], time_dim=1).fit(b.inputs),
        ValueError,
        "a recurrent level has shape (N, T, H) (time_dim=1)",
        probes=1,
    ),
    "DecisionPaths: inputs with a NaN": Bad(
        lambda b: paths_of(b).fit(with_value(b.inputs, 12345, float("nan"))),
        ValueError,
        "hold NaN or Inf values (1 of 1024 inputs): remove or repair those inputs",
    ),
    "DecisionPaths: predict before fit": Bad(
        lambda b: paths_of(b).predict(b.inputs), NotFittedError, "not fitted yet, so predict is not available"
    ),
    "DecisionPaths: flows before fit": Bad(
        lambda b: paths_of(b).flows("features.3", "class"), NotFittedError, "Call fit(inputs, labels) first"
    ),
    "DecisionPaths: minibatch batches smaller than k": Bad(
        lambda b: paths_of(b, n_clusters=10, algorithm="minibatch", batch_size=4).fit(b.inputs),
        ValueError,
        "pass a larger batch_size",
        probes=1,
    ),
}
API.update(DECISION_PATHS)


PATHS = ("paths", *DIGITS, "--data", "{data}", "--out", "{tmp}/out")
PATHS_COMMANDS = {
    "paths --clusters 1": BadCommand((*PATHS, "--clusters", "1"), "expected at least 2 clusters, got 1"),
    "paths --clusters for three levels of two": BadCommand(
        (*PATHS, "--levels", "features.6", "classifier.1", "--clusters", "3", "4", "5"),
        "give one K for every level, or one K per level",
    ),
    "paths --clusters more than the inputs": BadCommand(
        (*PATHS, "--levels", "classifier.1", "--clusters", "400"), "more clusters than its 300 samples"
    ),
    "paths --levels with a typo": BadCommand((*PATHS, "--levels", "classifer.1"), "Did you mean 'classifier.1'"),
    "paths --time-dim on a 2-D level": BadCommand(
        (*PATHS, "--levels", "classifier.1", "--time-dim", "1"), "a recurrent level has shape (N, T, H)"
    ),
    "paths --features flat": BadCommand((*PATHS, "--features", "flat"), "choose from 'flatten', 'mean'"),
    "paths --max-fraction 2": BadCommand((*PATHS, "--max-fraction", "2"), "give a share of the inputs"),
    "paths --data with a NaN input": BadCommand(
        ("paths", *DIGITS, "--data", "{nan}", "--out", "{tmp}/out"), "(positions 7); remove or replace them"
    ),
}
COMMANDS.update(PATHS_COMMANDS)


# ------------------------------------------------------------------------------------------------ inference graphs


def inference_of(b: Bench, levels: object = ("features.3", "classifier.1"), **kwargs: Any) -> object:
    return stepwise.InferenceGraphs(b.model, levels, **kwargs)


INFERENCE_NOT_FITTED = __import__("stepwise.inference.checks", fromlist=["NotFittedError"]).NotFittedError
INFERENCE = {
    "InferenceGraphs: n_words=1": Bad(lambda b: inference_of(b, n_words=1), ValueError, RANGE_2),
    "InferenceGraphs: n_words={level: 1}": Bad(
        lambda b: inference_of(b, n_words={"features.3": 1}), ValueError, RANGE_2
    ),
    "InferenceGraphs: more words than columns": Bad(
        lambda b: inference_of(b, ["classifier.1"], n_words=2000).fit(b.inputs),
        ValueError,
        "is more words than its 1024 columns (1024 inputs x 1 positions): pass more inputs or fewer words",
        probes=1,
    ),
    "InferenceGraphs: loss='generativ'": Bad(
        lambda b: inference_of(b, loss="generativ"), ValueError, "Did you mean 'generative'?"
    ),
    "InferenceGraphs: max_iter=0": Bad(lambda b: inference_of(b, max_iter=0), ValueError, RANGE_1),
    "InferenceGraphs: min_std=0": Bad(
        lambda b: inference_of(b, min_std=0.0), ValueError, "must be a float in the range (0, inf)"
    ),
    "InferenceGraphs: discriminative without labels": Bad(
        lambda b: inference_of(b, loss="discriminative").fit(b.inputs),
        ValueError,
        "so it needs labels: pass fit(inputs, labels), or use loss='generative'",
    ),
    "InferenceGraphs: validation inputs of another shape": Bad(
        lambda b: inference_of(b).fit(b.inputs, validation=torch.zeros(4, 3, 32, 32)),
        ValueError,
        "pass validation inputs shaped as the training inputs",
    ),
    "InferenceGraphs: inputs with a NaN": Bad(
        lambda b: inference_of(b).fit(with_value(b.inputs, 4321, float("nan"))),
        ValueError,
        "hold NaN or Inf values (1 of 1024 inputs): remove or repair those inputs",
    ),
    "InferenceGraphs: 'output' as the top": Bad(
        lambda b: inference_of(b, ["features.3", "output"]).fit(b.inputs),
        ValueError,
        "replace 'output' by 'softmax' in levels",
    ),
    "InferenceGraphs: class_graph with z=0": Bad(
        lambda b: inference_of(b).class_graph(b.inputs, 0, z=0), ValueError, RANGE_1
    ),
    "InferenceGraphs: words before fit": Bad(
        lambda b: inference_of(b).words(b.inputs), INFERENCE_NOT_FITTED, "Call fit(inputs, labels) first"
    ),
    "InferenceGraphs: class_graph before fit": Bad(
        lambda b: inference_of(b).class_graph(b.inputs, 0),
        INFERENCE_NOT_FITTED,
        "not fitted yet, so class_graph is not available",
    ),
}
API.update(INFERENCE)


@functools.cache
def fitted_inference() -> tuple[Any, Tensor]:
    """Inference graphs of a small CNN (conv levels), fitted once; the inputs they were fitted on."""
    data = torch.randn(40, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    model = sequential_cnn()
    return stepwise.InferenceGraphs(model, ["1", "4", "softmax"], n_words=3, max_iter=2).fit(data), data


INFERENCE_FITTED = {
    "class_graph: a target the model does not score": (
        lambda ig, x: ig.class_graph(x, 5),
        ValueError,
        "but the model scores 5 classes (0 to 4): pass one of them",
    ),
    "class_graph: a bool target": (lambda ig, x: ig.class_graph(x, True), TypeError, "target must be an int class"),
    "viterbi on conv levels": (
        lambda ig, x: ig.viterbi(x),
        ValueError,
        "needs dense levels (N, D) only, as in an MLP, but ['1', '4'] have positions (conv maps or tokens)",
    ),
    "words of inputs of another shape": (
        lambda ig, x: ig.words(torch.zeros(3, 3, 9, 9)),
        ValueError,
        "pass inputs shaped as the inputs given to fit",
    ),
    "posteriors of inputs with an Inf": (
        lambda ig, x: ig.posteriors(with_value(x, 7, float("inf"))),
        ValueError,
        "hold NaN or Inf values (1 of 40 inputs)",
    ),
    "representatives of a word that does not exist": (
        lambda ig, x: ig.representatives("4", 3),
        ValueError,
        "The 'word' parameter of InferenceGraphs.representatives must be an int in the range [0, 2]",
    ),
    "cooccurrence of levels that are not consecutive": (
        lambda ig, x: ig.cooccurrence("softmax", "1"),
        ValueError,
        "are not consecutive levels",
    ),
    "transitions of an unknown level": (
        lambda ig, x: ig.transitions("5", "4"),
        ValueError,
        "No level '5' in this InferenceGraphs.",
    ),
}


@pytest.mark.parametrize("name", list(INFERENCE_FITTED))
def test_inference_graphs_after_fit(name: str) -> None:
    call, error, fix = INFERENCE_FITTED[name]
    ig, data = fitted_inference()
    pristine = data.clone()
    sizes: list[int] = []
    ig.model.forward = counting(type(ig.model).forward.__get__(ig.model), sizes)
    try:
        before, hooks = state_of(ig.model), global_hooks()
        with pytest.raises(error) as caught, timed() as clock:
            call(ig, data)
    finally:
        del ig.model.forward
    assert type(caught.value) is error and fix in str(caught.value), str(caught.value)
    assert sizes == [], f"forward passes on {sizes} inputs"
    assert_quick(clock)
    assert_no_hooks(ig.model)
    assert global_hooks() == hooks
    assert_same_state(before, state_of(ig.model))
    assert torch.equal(data, pristine)


INFERENCE_COMMAND = ("inference", *DIGITS, "--data", "{data}", "--out", "{tmp}/out")
INFERENCE_COMMANDS = {
    "inference --words 1": BadCommand((*INFERENCE_COMMAND, "--words", "1"), "a level needs at least 2 visual words"),
    "inference --words for 3 of 4 levels": BadCommand(
        (*INFERENCE_COMMAND, "--words", "4", "5", "6"), "give one K for all of them, or one per level"
    ),
    "inference --loss discrimnative": BadCommand(
        (*INFERENCE_COMMAND, "--loss", "discrimnative"), "choose from 'generative', 'discriminative'"
    ),
    "inference --z 0": BadCommand((*INFERENCE_COMMAND, "--z", "0"), "expected a number of at least 1"),
    "inference --classes 10": BadCommand((*INFERENCE_COMMAND, "--classes", "10"), "the model scores 10 classes"),
}
COMMANDS.update(INFERENCE_COMMANDS)


# ------------------------------------------------------------------------------------------------ many classes, executors


def classes_of(b: Bench, **kwargs: Any) -> object:
    return stepwise.class_graphs(b.model, b.inputs, **kwargs)


EXECUTORS = {
    "class_graphs: an executor that is not one": Bad(
        lambda b: classes_of(b, executor=4),
        TypeError,
        "a concurrent.futures.Executor (for example concurrent.futures.ProcessPoolExecutor(4)",
    ),
    "class_graphs: classes the model does not score": Bad(
        lambda b: classes_of(b, classes=[2, 6]),
        ValueError,
        "names [6], but the model scores 6 classes (0 to 5): pass classes the model scores",
        probes=1,
    ),
    "class_graphs: a checkpoint folder that is a file": Bad(
        lambda b: classes_of(b, checkpoint_dir=Path(__file__)),
        ValueError,
        "which is a file, not a folder: pass a folder (it is created if missing)",
    ),
    "class_graphs: levels that end below the class scores": Bad(
        lambda b: classes_of(b, levels=LEVELS[:-1]),
        ValueError,
        "Add 'softmax' on top, or pass levels=None",
        probes=1,
    ),
    "class_graphs: an option StepwiseSensitivity does not have": Bad(
        lambda b: classes_of(b, branchng=2), TypeError, "the options passed on to StepwiseSensitivity are"
    ),
    "rank_many: an executor that is not one": Bad(
        lambda b: perturb.rank_many(b.model, b.inputs[:4], [0, 1, 2, 3], executor="dask"),
        TypeError,
        "or a distributed.Client. Got str instead",
    ),
    "rank_many: a target the model does not score": Bad(
        lambda b: perturb.rank_many(b.model, b.inputs[:4], [0, 1, 6, 3]),
        ValueError,
        "names [6], but the model scores 6 classes (0 to 5)",
        probes=1,
    ),
    "rank_many: fewer targets than inputs": Bad(
        lambda b: perturb.rank_many(b.model, b.inputs[:4], [0, 1]),
        ValueError,
        "Found 2 targets for 4 inputs: pass one target class per input.",
    ),
}
API.update(EXECUTORS)


def test_class_graphs_reports_a_class_without_qualifying_inputs_and_runs_the_others() -> None:
    """Per class: a class no input qualifies for gets a warning that names it and no graph; the others run. When
    no class has a qualifying input, the error comes before any traversal."""
    data = digits_data()
    images, labels = data.images[:300], data.labels[:300]
    kept = labels != 3
    with pytest.warns(UserWarning, match=r"class 3 has no input .* Pass more inputs of class 3, or a lower"):
        graphs = stepwise.class_graphs(digits_cnn(), images[kept], labels[kept], classes=[1, 3], max_per_class=5)
    assert list(graphs) == [1]
    model = prepared(digits_cnn())
    sizes: list[int] = []
    model.forward = counting(model.forward, sizes)
    with pytest.raises(ValueError, match="Pass more inputs of these classes, or a lower min_probability"):
        stepwise.class_graphs(model, images[kept], labels[kept], classes=[3])
    assert sum(sizes) <= 3 * PROBE + len(images)  # the checks and the selection's pass, no traversal


# ------------------------------------------------------------------------------------------------ activation sorter


SORTER_LABELS = torch.arange(N_INPUTS) % 6


@functools.lru_cache(maxsize=1)
def sorted_values() -> stepwise.ActivationSorter:
    """A fitted sorter over values (1024 inputs x 4096 neurons): what its methods refuse is a summary of them."""
    values = np.random.default_rng(0).normal(size=(N_INPUTS, 4096)).astype(np.float32)
    return stepwise.ActivationSorter.from_values({"features.1": values}, SORTER_LABELS.numpy())


def sorter(b: Bench, levels: object = ("features.1", "features.6"), **kwargs: Any) -> stepwise.ActivationSorter:
    return stepwise.ActivationSorter(b.model, None if levels is None else list(levels), **kwargs)


SORTER = {
    "ActivationSorter.fit: labels missing": Bad(
        lambda b: sorter(b).fit(b.inputs), ValueError, "or labels=model(inputs).argmax(1) to sort by the model's"
    ),
    "ActivationSorter.fit: labels of another length": Bad(
        lambda b: sorter(b).fit(b.inputs, SORTER_LABELS[:1000]),
        ValueError,
        "Found 1000 labels for 1024 inputs: pass one label per input.",
    ),
    "ActivationSorter.fit: float labels": Bad(
        lambda b: sorter(b).fit(b.inputs, SORTER_LABELS.float()), TypeError, "must be integer class numbers"
    ),
    "ActivationSorter.fit: NaN in the inputs": Bad(
        lambda b: sorter(b).fit(with_value(b.inputs, -1, float("nan")), SORTER_LABELS),
        ValueError,
        "remove or replace them",
    ),
    "ActivationSorter.fit: a level that does not exist": Bad(
        lambda b: sorter(b, ["featurs.1"]).fit(b.inputs, SORTER_LABELS),
        ValueError,
        "Did you mean 'features.1'",
        probes=1,
    ),
    "ActivationSorter.fit: levels out of forward order": Bad(
        lambda b: sorter(b, ["features.6", "features.1"]).fit(b.inputs, SORTER_LABELS),
        ValueError,
        "List levels bottom to top",
        probes=1,
    ),
    "ActivationSorter: levels as one string": Bad(
        lambda b: stepwise.ActivationSorter(b.model, "features.1"), TypeError, "Write levels=['features.1']"
    ),
    "ActivationSorter: levels=[]": Bad(lambda b: sorter(b, []), ValueError, "name at least one level"),
    "ActivationSorter: per_class=0": Bad(lambda b: sorter(b, per_class=0), ValueError, RANGE_1),
    "ActivationSorter: reduce='median'": Bad(
        lambda b: sorter(b, reduce="median"), ValueError, "must be one of {'mean', 'max', None}. Got 'median'"
    ),
    "ActivationSorter: seed=-1": Bad(lambda b: sorter(b, seed=-1), TypeError, "must be an int in the range [0, inf)"),
    "ActivationSorter: batch_size=0": Bad(lambda b: sorter(b, batch_size=0), ValueError, RANGE_1),
    "ActivationSorter: values_ before fit": Bad(
        lambda b: sorter(b).values_, SorterNotFittedError, "call fit(inputs, labels) first"
    ),
    "ActivationSorter.layer_summary: before fit": Bad(
        lambda b: sorter(b).layer_summary("features.1"), SorterNotFittedError, "is not fitted yet"
    ),
    "ActivationSorter.neuron_types: before fit": Bad(
        lambda b: sorter(b).neuron_types("features.1"), SorterNotFittedError, "is not fitted yet"
    ),
    "ActivationSorter.layer_summary: bins=1": Bad(
        lambda b: sorted_values().layer_summary("features.1", bins=1),
        ValueError,
        "must be an int in the range [2, inf)",
    ),
    "ActivationSorter.layer_summary: widths not increasing": Bad(
        lambda b: sorted_values().layer_summary("features.1", widths=(11, 3)),
        ValueError,
        "must be a pair of increasing ints (small, medium)",
    ),
    "ActivationSorter.layer_summary: a level not sorted": Bad(
        lambda b: sorted_values().layer_summary("features.2"),
        ValueError,
        "Did you mean 'features.1'? Name a sorted level, or fit again",
    ),
    "ActivationSorter.layer_summary: a neuron out of range": Bad(
        lambda b: sorted_values().layer_summary("features.1", neurons=[0, 4096]),
        ValueError,
        "which has 4096 neurons (0 to 4095)",
    ),
    "ActivationSorter.neuron_view: a neuron out of range": Bad(
        lambda b: sorted_values().neuron_view("features.1", -1), ValueError, "which has 4096 neurons (0 to 4095)"
    ),
    "ActivationSorter.neuron_view: bins=0": Bad(
        lambda b: sorted_values().neuron_view("features.1", 3, bins=0), ValueError, "in the range [2, inf)"
    ),
    "ActivationSorter.neuron_types: dominant=2": Bad(
        lambda b: sorted_values().neuron_types("features.1", dominant=2),
        ValueError,
        "'dominant' parameter of ActivationSorter.neuron_types must be a float in the range [0, 1]",
    ),
    "ActivationSorter.from_values: NaN values": Bad(
        lambda b: stepwise.ActivationSorter.from_values(
            {"l": with_value(b.inputs.flatten(1), 5, float("nan"))}, SORTER_LABELS
        ),
        ValueError,
        "holds NaN, Inf or non-numbers (dtype float32): remove or replace them",
    ),
    "ActivationSorter.from_values: labels of another length": Bad(
        lambda b: stepwise.ActivationSorter.from_values({"l": b.inputs.flatten(1)}, SORTER_LABELS[:7]),
        ValueError,
        "Found 7 labels for 1024 inputs",
    ),
}
API.update(SORTER)


SORT = ("sort", *DIGITS, "--data", "{data}", "--out", "{tmp}/out")
SORT_COMMANDS = {
    "sort --bins 1": BadCommand((*SORT, "--bins", "1"), "expected at least 2"),
    "sort --per-class 0": BadCommand((*SORT, "--per-class", "0"), "expected a number of at least 1"),
    "sort --reduce median": BadCommand((*SORT, "--reduce", "median"), "choose from 'mean', 'max', 'none'"),
    "sort --levels with a typo": BadCommand((*SORT, "--levels", "classifer.1"), "Did you mean 'classifier.1'"),
    "sort --seed -1": BadCommand((*SORT, "--seed", "-1"), "give a seed of at least 0"),
    "sort --data with fewer labels than inputs": BadCommand(
        ("sort", *DIGITS, "--data", "{few_labels}", "--out", "{tmp}/out"), "pass one label per input"
    ),
    "sort --data with a NaN input": BadCommand(
        ("sort", *DIGITS, "--data", "{nan}", "--out", "{tmp}/out"), "(positions 7); remove or replace them"
    ),
    "sort --out an existing file": BadCommand(
        ("sort", *DIGITS, "--data", "{data}", "--out", "{tmp}/taken"), "name a folder"
    ),
}
COMMANDS.update(SORT_COMMANDS)


# ------------------------------------------------------------------------------------------------ every case above


@pytest.mark.parametrize("name", [pytest.param(name, marks=case.marks) for name, case in API.items()])
def test_python_api(name: str, inputs: Tensor, graphs: list[DependencyGraph], tmp_path: Path) -> None:
    check_api(API[name], inputs, graphs, tmp_path)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_line(
    name: str,
    command_files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    check_command(COMMANDS[name], command_files, tmp_path, capsys, monkeypatch)
