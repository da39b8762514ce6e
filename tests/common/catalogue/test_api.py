"""The catalogue of bad inputs: every public entry point, in Python and on the command line, refuses each bad input
with a message that says how to fix it, before any long computation, and leaves no trace.

Each case names the call, the bad input, the exception and a fragment of the message that tells the user the fix.
The calls get real work: 1024 inputs of shape (3, 64, 64) for a VGG-style network, on which a dependency graph takes
about 3 s of CPU time and a ranking of 1024 resamples about 6 s; on the command line, 300 digits (the demo: 1797)
for the shipped CNN. That a bad input is refused *before* that work is proved by counting the model's forward
passes: none for a parameter check, else only the checking passes that probe the levels on at most two inputs. The
time is measured as the CPU time of the process, which a busy machine does not inflate, and must stay under a
second; the wall-clock time, which a busy machine does inflate, only under a bound ten times as large.

After each case no hook is left on any module nor registered globally, gradient mode is on as it was, and the
model's training flags, ``requires_grad`` flags, gradients, parameters and buffers are as they were (the models
come with one module in train mode, one frozen parameter and one gradient, so that restoring them is not trivial).
On the command line the exit status is 2, stderr holds the usage line and the fix, and the output folder was
neither created nor touched.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.helpers import ResNetStyle, VGGStyle
from torch import Tensor

import perturb
import stepwise
from stepwise import DependencyGraph
from stepwise.core.levels import resolve_levels

from tests.common.catalogue.bench import (
    LEVELS,
    RANGE_1,
    Bad,
    check_api,
    graph_of,
    infinite_weight,
    on_gpu,
    on_meta,
    Packed,
    rank,
    SpareModules,
    ssa,
    with_value,
)


# ------------------------------------------------------------------------------------------------ Python API


CONSTRUCTION = {
    "StepwiseSensitivity: a function as model": Bad(
        lambda b: stepwise.StepwiseSensitivity(lambda x: x), TypeError, "model must be a torch.nn.Module"
    ),
    "StepwiseSensitivity: levels as one string": Bad(
        lambda b: ssa(b, "features.1"), TypeError, "levels must be a list of level names bottom to top"
    ),
    "StepwiseSensitivity: branching=0": Bad(lambda b: ssa(b, branching=0), ValueError, RANGE_1),
    "StepwiseSensitivity: branching=2.5": Bad(lambda b: ssa(b, branching=2.5), TypeError, RANGE_1),
    "StepwiseSensitivity: branching=True": Bad(lambda b: ssa(b, branching=True), TypeError, RANGE_1),
    "StepwiseSensitivity: fence=0": Bad(lambda b: ssa(b, fence=0), ValueError, "must be a float in the range (0, inf)"),
    "StepwiseSensitivity: fence=-1.5": Bad(lambda b: ssa(b, fence=-1.5), ValueError, "in the range (0, inf)"),
    "StepwiseSensitivity: fence=nan": Bad(lambda b: ssa(b, fence=float("nan")), ValueError, "in the range (0, inf)"),
    "StepwiseSensitivity: sign='postive'": Bad(
        lambda b: ssa(b, sign="postive"), ValueError, "Did you mean 'positive'?"
    ),
    "StepwiseSensitivity: rule='guide'": Bad(lambda b: ssa(b, rule="guide"), ValueError, "Did you mean 'guided'?"),
    "StepwiseSensitivity: batch_size=0": Bad(lambda b: ssa(b, batch_size=0), ValueError, RANGE_1),
    "StepwiseSensitivity: progress='yes'": Bad(lambda b: ssa(b, progress="yes"), TypeError, "must be a bool"),
    "StepwiseSensitivity: channel_dim=0": Bad(lambda b: ssa(b, channel_dim=0), ValueError, RANGE_1),
    "StepwiseSensitivity: closed_form='no'": Bad(lambda b: ssa(b, closed_form="no"), TypeError, "must be a bool"),
}

LEVEL_NAMES = {
    "dependency_graph: a level name with a typo": Bad(
        lambda b: graph_of(b, levels=["feature.1", "softmax"]), ValueError, "Did you mean 'features.1'", probes=1
    ),
    "dependency_graph: levels out of forward order": Bad(
        lambda b: graph_of(b, levels=["features.3", "features.1", "softmax"]),
        ValueError,
        "List levels bottom to top",
        probes=1,
    ),
    "dependency_graph: a level named twice": Bad(
        lambda b: graph_of(b, levels=["features.1", "features.1", "softmax"]),
        ValueError,
        "name each level once",
        probes=1,
    ),
    "dependency_graph: 'input' above another level": Bad(
        lambda b: graph_of(b, levels=["features.1", "input", "softmax"]),
        ValueError,
        "'input' can only be the first (bottom) level",
        probes=1,
    ),
    "dependency_graph: 'softmax' below another level": Bad(
        lambda b: graph_of(b, levels=["features.1", "softmax", "classifier.4"]),
        ValueError,
        "'softmax' can only be the last (top) level",
        probes=1,
    ),
    "dependency_graph: one level": Bad(
        lambda b: graph_of(b, levels=["softmax"]),
        ValueError,
        "See stepwise.list_levels(model, example_input) for the candidates",
        probes=1,
    ),
    "dependency_graph: levels given as ints": Bad(
        lambda b: graph_of(b, levels=[1, 6]), TypeError, "Name each level as in model.named_modules()", probes=1
    ),
    "dependency_graph: channel_dim=4 for 4-D levels": Bad(
        lambda b: graph_of(b, channel_dim=4),
        ValueError,
        "pass a dimension between 1 and the number of dimensions minus one",
        probes=1,
    ),
    "dependency_graph: a module that runs twice per forward pass": Bad(
        lambda b: graph_of(b, levels=["layer1.0.relu", "softmax"]),
        ValueError,
        "Use a separate module instance for each use",
        probes=1,
        model=ResNetStyle,
    ),
    "dependency_graph: a module that never runs": Bad(
        lambda b: graph_of(b, levels=["unused", "softmax"]),
        ValueError,
        "choose a module that runs",
        probes=1,
        model=SpareModules,
    ),
    "dependency_graph: a module that returns a tuple": Bad(
        lambda b: graph_of(b, levels=["features.1", "pair", "softmax"]),
        ValueError,
        "Choose a module that returns a tensor",
        probes=1,
        model=SpareModules,
    ),
    "dependency_graph: 'softmax' on one score per input": Bad(
        lambda b: graph_of(b, levels=["classifier.1", "softmax"]),
        ValueError,
        "Use 'output' (the raw model output)",
        probes=1,
        model=lambda: VGGStyle(num_classes=1),
    ),
    "dependency_graph: 'softmax' on a model that returns a tuple": Bad(
        lambda b: graph_of(b, levels=["inner.features.1", "softmax"]),
        ValueError,
        "Wrap the model so that it returns one tensor",
        probes=1,
        model=lambda: Packed(VGGStyle()),
    ),
    "dependency_graph: default levels of a model that returns a tuple": Bad(
        lambda b: graph_of(b, levels=None),
        ValueError,
        "Wrap the model so that it returns one tensor (the class scores), or name the levels",
        probes=1,
        model=lambda: Packed(VGGStyle()),
    ),
    "dependency_graph: default levels of a model that returns a dict": Bad(
        lambda b: graph_of(b, levels=None),
        ValueError,
        "Wrap the model so that it returns one tensor (the class scores), or name the levels",
        probes=1,
        model=lambda: Packed(VGGStyle(), "dict"),
    ),
    "dependency_graph: weights holding Inf": Bad(
        lambda b: graph_of(b),
        ValueError,
        "check the inputs and the model weights for non-finite values",
        probes=1,
        model=infinite_weight,
    ),
}

TARGETS = {
    "dependency_graph: target=6 of 6 classes": Bad(
        lambda b: graph_of(b, target=6), ValueError, "which has 6 neurons (0 to 5)", probes=1
    ),
    "dependency_graph: target=-1": Bad(lambda b: graph_of(b, target=-1), ValueError, "(0 to 5)", probes=1),
    "dependency_graph: target at a level not analysed": Bad(
        lambda b: graph_of(b, target=[("classifier.9", 0)]),
        ValueError,
        "is not one of the analysed levels ['features.1'",
        probes=1,
    ),
    "dependency_graph: target neuron out of range at a lower level": Bad(
        lambda b: graph_of(b, target=[("classifier.1", 24)]), ValueError, "which has 24 neurons (0 to 23)", probes=1
    ),
    "dependency_graph: target='softmax'": Bad(
        lambda b: graph_of(b, target="softmax"), TypeError, "or a list of (level, index) pairs", probes=1
    ),
    "dependency_graph: target=[]": Bad(
        lambda b: graph_of(b, target=[]),
        ValueError,
        "name a class index or at least one (level, index) neuron",
        probes=1,
    ),
    "dependency_graph: target=[3]": Bad(
        lambda b: graph_of(b, target=[3]), TypeError, "target entries must be (level, index) pairs", probes=1
    ),
    "dependency_graph: target=1.0": Bad(lambda b: graph_of(b, target=1.0), TypeError, "Pass a Python int", probes=1),
    "dependency_graph: target=torch.tensor(1)": Bad(
        lambda b: graph_of(b, target=torch.tensor(1)),
        TypeError,
        "int(target) converts a one-element tensor",
        probes=1,
    ),
}

INPUTS = {
    "dependency_graph: an empty batch": Bad(
        lambda b: graph_of(b, inputs=b.inputs[:0]), ValueError, "pass at least one input"
    ),
    "dependency_graph: an empty list of batches": Bad(
        lambda b: graph_of(b, inputs=[]), ValueError, "pass at least one input"
    ),
    "dependency_graph: inputs of the wrong shape": Bad(
        lambda b: graph_of(b, inputs=b.inputs[:, 0]),
        ValueError,
        "Pass inputs shaped and typed as the model expects (batch dimension first)",
        probes=1,
    ),
    "dependency_graph: integer inputs": Bad(
        lambda b: graph_of(b, inputs=b.inputs.to(torch.int32)),
        ValueError,
        "Pass inputs shaped and typed as the model expects",
        probes=1,
    ),
    "dependency_graph: a numpy array": Bad(
        lambda b: graph_of(b, inputs=b.inputs.numpy()), TypeError, "Convert arrays with torch.as_tensor"
    ),
    "dependency_graph: a batch list holding a str": Bad(
        lambda b: graph_of(b, inputs=[b.inputs, "x"]), TypeError, "expected tensors or (x, y) batches of tensors"
    ),
    "dependency_graph: batches of two input shapes": Bad(
        lambda b: graph_of(b, inputs=[b.inputs[:512], b.inputs[512:, :, :32, :32]]),
        ValueError,
        "pass batches of one input shape",
    ),
    "dependency_graph: float64 inputs, float32 model": Bad(
        lambda b: graph_of(b, inputs=b.inputs.double()),
        TypeError,
        "convert one of them, for example inputs.to(torch.float32) or model.to(torch.float64)",
    ),
    "dependency_graph: NaN in the last input": Bad(
        lambda b: graph_of(b, inputs=with_value(b.inputs, -1, float("nan"))), ValueError, "remove or replace them"
    ),
    "dependency_graph: Inf in the first input": Bad(
        lambda b: graph_of(b, inputs=with_value(b.inputs, 0, float("inf"))), ValueError, "remove or replace them"
    ),
    "dependency_graph: inputs on the meta device": Bad(
        lambda b: graph_of(b, inputs=b.inputs.to("meta")), ValueError, "pass inputs holding values"
    ),
    "dependency_graph: a model on the meta device": Bad(
        lambda b: graph_of(b),
        ValueError,
        "materialise them first, for example model.to_empty(device='cpu')",
        model=on_meta,
    ),
}

STEPS = {
    "relevance: lower above upper": Bad(
        lambda b: ssa(b).relevance(b.inputs, upper="features.3", lower="softmax", neurons=[0]),
        ValueError,
        "must be below upper='features.3'",
        probes=1,
    ),
    "relevance: an upper level not analysed": Bad(
        lambda b: ssa(b).relevance(b.inputs, upper="fc", lower="features.1", neurons=[0]),
        ValueError,
        "is not one of the analysed levels ['features.1'",
        probes=1,
    ),
    "relevance: no neurons": Bad(
        lambda b: ssa(b).relevance(b.inputs, upper="features.3", lower="features.1", neurons=[]),
        ValueError,
        "name at least one neuron of level 'features.3'",
        probes=1,
    ),
    "relevance: a float neuron": Bad(
        lambda b: ssa(b).relevance(b.inputs, upper="features.3", lower="features.1", neurons=[1.5]),
        TypeError,
        "neurons must be ints",
        probes=1,
    ),
    "outlier_counts: neuron 8 of 8": Bad(
        lambda b: ssa(b).outlier_counts(b.inputs, upper="features.3", lower="features.1", neurons=[1, 8]),
        ValueError,
        "which has 8 neurons (0 to 7)",
        probes=1,
    ),
    "outlier_counts: neurons as a str": Bad(
        lambda b: ssa(b).outlier_counts(b.inputs, upper="features.3", lower="features.1", neurons="1"),
        TypeError,
        "must be an int or a sequence of ints",
        probes=1,
    ),
}

PROBING = {
    "list_levels: a list as example": Bad(
        lambda b: stepwise.list_levels(b.model, [1, 2]),
        TypeError,
        "Pass a few inputs stacked along a first batch dimension",
    ),
    "default_levels: an empty example": Bad(
        lambda b: stepwise.default_levels(b.model, b.inputs[:0]),
        ValueError,
        "pass at least one input (batch dimension first)",
    ),
    "list_levels: a function as model": Bad(
        lambda b: stepwise.list_levels(lambda x: x, b.inputs[:2]), TypeError, "model must be a torch.nn.Module"
    ),
    "default_levels: the example on the meta device, the model on the CPU": Bad(
        lambda b: stepwise.default_levels(b.model, b.inputs[:2].to("meta")),
        ValueError,
        "pass example_input holding values",
    ),
    "list_levels: the example on the CPU, the model on a GPU": Bad(
        lambda b: stepwise.list_levels(b.model, b.inputs[:2]),
        ValueError,
        "move one of them, for example example_input.to('cuda:0')",
        model=on_gpu,
        marks=(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU; the meta device case runs"),),
    ),
    "resolve_levels: levels as one string": Bad(
        lambda b: resolve_levels(b.model, b.inputs[:2], "features.1"),
        TypeError,
        "levels must be a list of level names, bottom to top",
        probes=1,
    ),
}

GRAPHS = {
    "cluster_graphs: n_clusters=2.5": Bad(
        lambda b: stepwise.cluster_graphs(b.graphs, n_clusters=2.5), TypeError, "must be an int in the range [1, 3]"
    ),
    "cluster_graphs: weight='count'": Bad(
        lambda b: stepwise.cluster_graphs(b.graphs, weight="count"), ValueError, "must be one of {'frequency'}"
    ),
    "shared_subgraph: min_fraction=1.5": Bad(
        lambda b: stepwise.shared_subgraph(b.graphs, min_fraction=1.5),
        ValueError,
        "must be a float in the range (0, 1]",
    ),
    "jaccard_matrix: a str among the graphs": Bad(
        lambda b: stepwise.jaccard_matrix([*b.graphs, "graph.json"]), TypeError, "needs DependencyGraph objects"
    ),
    "node_occurrence: no graphs": Bad(lambda b: stepwise.node_occurrence({}), ValueError, "needs at least 1 graph"),
    "DependencyGraph.top_neurons: k=2.5": Bad(lambda b: b.graphs[0].top_neurons("frequency", 2.5), TypeError, RANGE_1),
    "DependencyGraph.subgraph: a level as an int": Bad(
        lambda b: b.graphs[0].subgraph(levels=3), TypeError, "must be a level name or a list of level names"
    ),
    "read_graph: a path that is not a str": Bad(
        lambda b: stepwise.read_graph(7), TypeError, "path must be a str or os.PathLike"
    ),
    "write_graph: a networkx graph": Bad(
        lambda b: stepwise.write_graph(b.graphs[0].to_networkx(), b.folder / "graph.graphml"),
        TypeError,
        "Wrap a networkx.DiGraph with stepwise.DependencyGraph.from_networkx(g)",
    ),
}

SAMPLES_SHAPE = "must be stacked as (n, 3, 64, 64) with n >= 2"
RANKING = {
    "rank_neurons: a function as model": Bad(
        lambda b: perturb.rank_neurons(lambda x: x, b.image, target=0), TypeError, "must be a torch.nn.Module"
    ),
    "rank_neurons: sigma=-0.1": Bad(lambda b: rank(b, sigma=-0.1), ValueError, "must be a float in the range [0, inf)"),
    "rank_neurons: sigma=inf": Bad(lambda b: rank(b, sigma=float("inf")), ValueError, "in the range [0, inf)"),
    "rank_neurons: n_samples=1": Bad(
        lambda b: rank(b, n_samples=1), ValueError, "must be an int in the range [2, inf)"
    ),
    "rank_neurons: threshold=-1": Bad(
        lambda b: rank(b, threshold=-1.0), ValueError, "must be a float in the range [0, inf)"
    ),
    "rank_neurons: output='probabilty'": Bad(
        lambda b: rank(b, output="probabilty"), ValueError, "Did you mean 'probability'?"
    ),
    "rank_neurons: a batch of four images": Bad(
        lambda b: rank(b, image=b.inputs[:4]), ValueError, "Pass one input shaped (C, H, W)"
    ),
    "rank_neurons: a 5-D image": Bad(
        lambda b: rank(b, image=b.inputs[:1, None]), ValueError, "must be one input shaped (C, H, W) or (1, C, H, W)"
    ),
    "rank_neurons: an integer image": Bad(
        lambda b: rank(b, image=b.image.to(torch.uint8)), TypeError, "Convert it, e.g. image.float()"
    ),
    "rank_neurons: a float64 image, float32 model": Bad(
        lambda b: rank(b, image=b.image.double()), TypeError, "for example image.to(torch.float32)"
    ),
    "rank_neurons: NaN in the image": Bad(
        lambda b: rank(b, image=with_value(b.image, 0, float("nan"))), ValueError, "remove or replace them"
    ),
    "rank_neurons: the image on the meta device": Bad(
        lambda b: rank(b, image=b.image.to("meta")), ValueError, "pass 'image' holding values"
    ),
    "rank_neurons: a model on the meta device": Bad(
        lambda b: rank(b), ValueError, "for example model.to_empty(device='cpu')", model=on_meta
    ),
    "rank_neurons: samples of another shape": Bad(
        lambda b: rank(b, samples=b.inputs[:, :, :32]), ValueError, SAMPLES_SHAPE
    ),
    "rank_neurons: samples without a batch dimension": Bad(
        lambda b: rank(b, samples=b.image), ValueError, SAMPLES_SHAPE
    ),
    "rank_neurons: one sample": Bad(
        lambda b: rank(b, samples=b.inputs[:1]), ValueError, "Stack at least two resamples"
    ),
    "rank_neurons: float64 samples": Bad(
        lambda b: rank(b, samples=b.inputs.double()), TypeError, "are torch.float32: convert it"
    ),
    "rank_neurons: NaN in the samples": Bad(
        lambda b: rank(b, samples=with_value(b.inputs, -1, float("nan"))), ValueError, "remove or replace them"
    ),
    "rank_neurons: target=1.0": Bad(lambda b: rank(b, target=1.0), TypeError, "must be an int in the range [0, inf)"),
    "rank_neurons: target=-1": Bad(lambda b: rank(b, target=-1), ValueError, "must be an int in the range [0, inf)"),
    "rank_neurons: target=6 of 6 classes": Bad(
        lambda b: rank(b, target=6), ValueError, "must be an int in the range [0, 5]", probes=1
    ),
    "rank_neurons: seed='a'": Bad(
        lambda b: rank(b, seed="a"), TypeError, "must be an int in the range [0, inf), a torch.Generator"
    ),
    "rank_neurons: levels as one string": Bad(
        lambda b: rank(b, levels="features.1"), TypeError, "levels must be a list of level names"
    ),
    "rank_neurons: levels=[]": Bad(
        lambda b: rank(b, levels=[]), ValueError, "name at least one level, or pass None for the default levels"
    ),
    "rank_neurons: levels out of forward order": Bad(
        lambda b: rank(b, levels=["features.6", "features.1"]), ValueError, "List levels bottom to top", probes=1
    ),
    "rank_neurons: a level name with a typo": Bad(
        lambda b: rank(b, levels=["featurs.1"]), ValueError, "Did you mean 'features.1'", probes=1
    ),
    "rank_neurons: batch_size=0": Bad(lambda b: rank(b, batch_size=0), ValueError, RANGE_1),
    "rank_neurons: progress=1": Bad(lambda b: rank(b, progress=1), TypeError, "must be a bool"),
    "rank_neurons: a model that returns a tuple": Bad(
        lambda b: rank(b),
        ValueError,
        "Wrap the model so that it returns one tensor",
        probes=1,
        model=lambda: Packed(VGGStyle()),
    ),
    "resample: seed=-1": Bad(
        lambda b: perturb.resample(b.image, seed=-1), TypeError, "must be an int in the range [0, inf)"
    ),
    "NeuronRanking.scores: metric='corelation'": Bad(
        lambda b: b.ranking.scores("corelation", "features.1"), ValueError, "Did you mean 'correlation'?", ranked=True
    ),
    "NeuronRanking.scores: a level not ranked": Bad(
        lambda b: b.ranking.scores("correlation", "features.2"),
        ValueError,
        "Ranked levels: ['features.1'",
        ranked=True,
    ),
    "NeuronRanking.top: metric='mean'": Bad(
        lambda b: b.ranking.top("mean"), ValueError, "must be one of {'correlation', 'precision'", ranked=True
    ),
    "NeuronRanking.top: k=0": Bad(lambda b: b.ranking.top("correlation", k=0), ValueError, RANGE_1, ranked=True),
    "agreement: a str as ranking": Bad(
        lambda b: perturb.agreement("ranking.csv"), TypeError, "must be a NeuronRanking (from perturb.rank_neurons)"
    ),
    "agreement: one metric": Bad(
        lambda b: perturb.agreement(b.ranking, metrics=("correlation",)),
        ValueError,
        "must be a pair of metric names",
        ranked=True,
    ),
    "agreement: metric='precission'": Bad(
        lambda b: perturb.agreement(b.ranking, metrics=("correlation", "precission")),
        ValueError,
        "Did you mean 'precision'?",
        ranked=True,
    ),
    "agreement: k=0": Bad(lambda b: perturb.agreement(b.ranking, k=0), ValueError, RANGE_1, ranked=True),
    "jaccard: an int as a set": Bad(
        lambda b: perturb.jaccard(3, [3]), TypeError, "must be a collection of neurons (ints, or (level, index) pairs)"
    ),
}

PATCHES = {
    "patches: level 'softmax'": Bad(
        lambda b: perturb.patches(b.model, b.image, "softmax", 0), ValueError, "name a module level such as"
    ),
    "patches: level 'input'": Bad(
        lambda b: perturb.patches(b.model, b.image, "input", 0), ValueError, "name a module level such as"
    ),
    "patches: a level as an int": Bad(
        lambda b: perturb.patches(b.model, b.image, 3, 0), TypeError, "must be a level name (str)"
    ),
    "patches: a level name with a typo": Bad(
        lambda b: perturb.patches(b.model, b.image, "featurs.3", 0), ValueError, "Did you mean 'features.3'", probes=1
    ),
    "patches: neuron 8 of 8": Bad(
        lambda b: perturb.patches(b.model, b.image, "features.3", [0, 8]),
        ValueError,
        "which has 8 neurons (0 to 7)",
        probes=1,
    ),
    "patches: no neurons": Bad(
        lambda b: perturb.patches(b.model, b.image, "features.3", []),
        ValueError,
        "name at least one neuron of level 'features.3'",
        probes=1,
    ),
    "patches: a float neuron": Bad(
        lambda b: perturb.patches(b.model, b.image, "features.3", 1.5),
        TypeError,
        "must be an int or a sequence of ints",
        probes=1,
    ),
    "patches: a vector, not an image": Bad(
        lambda b: perturb.patches(b.model, b.image.flatten()[:12], "features.3", 0),
        ValueError,
        "must be one image shaped (C, H, W) or (1, C, H, W)",
    ),
    "plot_patches: another image than the ranking's": Bad(
        lambda b: perturb.plot_patches(b.inputs[1], b.ranking), ValueError, "pass that image", ranked=True
    ),
    "plot_patches: a level not ranked": Bad(
        lambda b: perturb.plot_patches(b.image, b.ranking, levels=["features.2"]),
        ValueError,
        "whose levels are ['features.1'",
        ranked=True,
    ),
    "plot_patches: a str as ranking": Bad(
        lambda b: perturb.plot_patches(b.image, "ranking.csv"), TypeError, "(from perturb.rank_neurons)"
    ),
    "plot_patches: metric='precison'": Bad(
        lambda b: perturb.plot_patches(b.image, b.ranking, metric="precison"),
        ValueError,
        "Did you mean 'precision'?",
        ranked=True,
    ),
    "plot_patches: k=0": Bad(lambda b: perturb.plot_patches(b.image, b.ranking, k=0), ValueError, RANGE_1, ranked=True),
    "top_patches: a table for a ranking": Bad(
        lambda b: perturb.top_patches("ranking.csv"), TypeError, "must be a NeuronRanking (from perturb.rank_neurons)"
    ),
    "top_patches: k=0": Bad(lambda b: perturb.top_patches(b.ranking, k=0), ValueError, RANGE_1, ranked=True),
    "top_patches: a level not ranked": Bad(
        lambda b: perturb.top_patches(b.ranking, levels=["features.2"]),
        ValueError,
        "are not in the ranking",
        ranked=True,
    ),
}

REPORT = {
    "report with nothing to show": Bad(lambda b: stepwise.report(b.folder / "page.html"), ValueError, "pass graphs="),
    "report: graphs of another kind": Bad(
        lambda b: stepwise.report(b.folder / "page.html", graphs=[b.graphs[0], "class_0.json"]),
        TypeError,
        "it takes DependencyGraph objects",
    ),
    "report: an empty list of graphs": Bad(
        lambda b: stepwise.report(b.folder / "page.html", graphs=[]), ValueError, "leave graphs=None"
    ),
    "report: graphs labelled alike": Bad(
        lambda b: stepwise.report(b.folder / "page.html", graphs=[b.graphs[0], b.graphs[0]]),
        ValueError,
        "pass a mapping of distinct labels",
    ),
    "report: clusters not a ClusterResult": Bad(
        lambda b: stepwise.report(b.folder / "page.html", graphs=b.graphs, clusters="ward"),
        TypeError,
        "clusters takes a ClusterResult (stepwise.cluster_graphs)",
    ),
    "report: clusters without graphs": Bad(
        lambda b: stepwise.report(b.folder / "page.html", clusters=stepwise.cluster_graphs(b.graphs)),
        ValueError,
        "pass the graphs it clusters as graphs= too",
    ),
    "report: a fitted InferenceGraphs alone": Bad(
        lambda b: stepwise.report(b.folder / "page.html", inference=stepwise.InferenceGraphs(b.model)),
        TypeError,
        "pass (ig, {label: ig.class_graph(inputs, c)})",
    ),
    "report: paths not fitted": Bad(
        lambda b: stepwise.report(b.folder / "page.html", paths=stepwise.DecisionPaths(b.model, LEVELS[-3:])),
        TypeError,
        "Call .fit(inputs) first",
    ),
    "report: a sorter not fitted": Bad(
        lambda b: stepwise.report(b.folder / "page.html", sorter=stepwise.ActivationSorter(b.model, LEVELS[-2:])),
        TypeError,
        "Call .fit first",
    ),
}

API = {**CONSTRUCTION, **LEVEL_NAMES, **TARGETS, **INPUTS, **STEPS, **PROBING, **GRAPHS, **RANKING, **PATCHES, **REPORT}


@pytest.mark.parametrize("name", [pytest.param(name, marks=case.marks) for name, case in API.items()])
def test_python_api(name: str, inputs: Tensor, graphs: list[DependencyGraph], tmp_path: Path) -> None:
    check_api(API[name], inputs, graphs, tmp_path)
