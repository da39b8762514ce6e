"""stepwise: explain trained PyTorch networks from the inside.

Step-wise sensitivity analysis (SSA): single back-propagation steps between adjacent analysed levels, positive
Tukey outliers as the relevant neurons, frequency ranking across inputs, and a branching traversal from a class
neuron down to the first level, returned as a :class:`DependencyGraph`.
"""

from ._version import __version__
from .cluster import (
    ClusterResult,
    bag_of_nodes,
    cluster_graphs,
    cosine_ward_linkage,
    interconnectedness,
    jaccard_matrix,
    node_occurrence,
    shared_subgraph,
)
from .graph import DependencyGraph
from .levels import default_levels, list_levels
from .readwrite import read_graph, write_graph
from .traverse import StepwiseSensitivity

__all__ = [
    "__version__",
    "DependencyGraph",
    "StepwiseSensitivity",
    "default_levels",
    "list_levels",
    "read_graph",
    "write_graph",
    "ClusterResult",
    "bag_of_nodes",
    "cluster_graphs",
    "cosine_ward_linkage",
    "interconnectedness",
    "jaccard_matrix",
    "node_occurrence",
    "shared_subgraph",
]
