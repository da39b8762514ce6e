"""Decision paths (the Paths paper, ``papers/000``): k-means on each level's activations, the flows between the
clusters of consecutive levels, the cluster sequences a class follows, Sankey diagrams and rare inputs.

- :mod:`~stepwise.paths.features`: each level's activation vectors, captured in one streamed pass;
- :mod:`~stepwise.paths.clustering`: k-means (or mini-batch k-means) per level, clusters renumbered by size;
- :mod:`~stepwise.paths.flows`: flows, paths and rare inputs from the assignments table;
- :mod:`~stepwise.paths.sankey`: the interactive (plotly) and static (matplotlib) Sankey diagrams;
- :mod:`~stepwise.paths.decision_paths`: :class:`DecisionPaths`, the estimator.
"""

from stepwise._lazy import lazy_exports

_EXPORTS = {"DecisionPaths": "stepwise.paths.decision_paths"}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
