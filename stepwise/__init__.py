"""stepwise: explain trained PyTorch networks from the inside.

Five methods share one core (``docs/design.md``): step-wise sensitivity analysis (:mod:`stepwise.ssa`: single
back-propagation steps between adjacent analysed levels, Tukey outliers, frequency ranking and a branching
traversal from a class neuron down, returned as a :class:`DependencyGraph`), perturbation neuron rankings
(the package :mod:`perturb`), and the graphs, their collections and files (:mod:`stepwise.graphs`).

Every public name below is imported on first use, so ``import stepwise`` is fast and ``stepwise --help``
answers at once.
"""

from ._lazy import lazy_exports
from ._version import __version__

_EXPORTS = {
    "DependencyGraph": "stepwise.graphs.dependency",
    "StepwiseSensitivity": "stepwise.ssa.traverse",
    "default_levels": "stepwise.core.levels",
    "list_levels": "stepwise.core.levels",
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
    "plot": "",
}

__all__ = ["__version__", *_EXPORTS]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
