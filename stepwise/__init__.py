"""stepwise: explain trained PyTorch networks from the inside.

Five methods share one core (``docs/design.md``):

- step-wise sensitivity analysis (:class:`StepwiseSensitivity`, :mod:`stepwise.ssa`): single back-propagation
  steps between adjacent levels, Tukey outliers, frequency ranking and a branching traversal from a class neuron
  down, returned as a :class:`DependencyGraph`; many classes at once with :func:`class_graphs`, on Dask if asked;
- perturbation neuron rankings (the package :mod:`perturb`);
- decision paths (:class:`DecisionPaths`, :mod:`stepwise.paths`): k-means per level, flows, Sankey diagrams;
- inference graphs (:class:`InferenceGraphs`, :mod:`stepwise.inference`): Gaussian-mixture visual words per level,
  their transitions, node selection, Viterbi paths;
- the neuron activation sorter (:class:`ActivationSorter`, :mod:`stepwise.sorter`): class-stacked histograms.

Graphs of every kind (:class:`LayeredGraph`), their collections and files are in :mod:`stepwise.graphs`;
:func:`report` writes one offline HTML page over any of the results (:mod:`stepwise.explorer`). Every
public name below is imported on first use, so ``import stepwise`` is fast and ``stepwise --help`` answers at once.
"""

from ._lazy import lazy_exports
from ._version import __version__

_EXPORTS = {
    "DependencyGraph": "stepwise.graphs.dependency",
    "LayeredGraph": "stepwise.graphs.layered",
    "StepwiseSensitivity": "stepwise.ssa.traverse",
    "class_graphs": "stepwise.ssa.classes",
    "DecisionPaths": "stepwise.paths.decision_paths",
    "ActivationSorter": "stepwise.sorter.sorter",
    "InferenceGraphs": "stepwise.inference.inference_graphs",
    "default_levels": "stepwise.core.levels",
    "list_levels": "stepwise.core.levels",
    "select_inputs": "stepwise.core.selection",
    "read_graph": "stepwise.graphs.readwrite",
    "write_graph": "stepwise.graphs.readwrite",
    "ClusterResult": "stepwise.graphs.collections",
    "bag_of_nodes": "stepwise.graphs.collections",
    "cluster_graphs": "stepwise.graphs.collections",
    "cosine_ward_linkage": "stepwise.graphs.collections",
    "interconnectedness": "stepwise.graphs.collections",
    "jaccard_matrix": "stepwise.graphs.collections",
    "node_occurrence": "stepwise.graphs.collections",
    "shared_subgraph": "stepwise.graphs.collections",
    "report": "stepwise.explorer.report",
    "plot": "",
}

__all__ = ["__version__", *_EXPORTS]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
