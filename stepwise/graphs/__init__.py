"""Layered graphs of every kind, their collections, files and figures; no torch.

- :mod:`~stepwise.graphs.layered`: :class:`LayeredGraph`, the structure every kind shares (levels,
  ``"level:index"`` keys, depth, edges downward, no cycle) and the registry of kinds;
- :mod:`~stepwise.graphs.dependency`: :class:`DependencyGraph`, the kind ``"dependency"`` (SSA);
- :mod:`~stepwise.graphs.collections`: bag of nodes, clustering, shared subgraphs, Jaccard matrices;
- :mod:`~stepwise.graphs.readwrite`: GraphML, GEXF, node-link JSON and DOT, read safely;
- :mod:`~stepwise.graphs.draw`: figures of graphs and clustermaps.
"""

from stepwise._lazy import lazy_exports

_EXPORTS = {
    "LayeredGraph": "stepwise.graphs.layered",
    "graph_class": "stepwise.graphs.layered",
    "node_key": "stepwise.graphs.layered",
    "DependencyGraph": "stepwise.graphs.dependency",
    "PathsGraph": "stepwise.graphs.paths",
    "InferenceGraph": "stepwise.graphs.inference",
    "read_graph": "stepwise.graphs.readwrite",
    "write_graph": "stepwise.graphs.readwrite",
    "bag_of_nodes": "stepwise.graphs.collections",
    "cluster_graphs": "stepwise.graphs.collections",
    "jaccard_matrix": "stepwise.graphs.collections",
    "node_occurrence": "stepwise.graphs.collections",
    "shared_subgraph": "stepwise.graphs.collections",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
