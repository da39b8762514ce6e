"""Every figure of the library in one namespace: ``stepwise.plot.plot_graph(graph)`` and the others.

The figures live beside what they draw (:mod:`stepwise.graphs.draw`, :mod:`stepwise.ssa.plot`); this module
gathers them. Each returns a matplotlib ``Figure``; save it atomically with ``stepwise.core.io.save_figure``.
"""

from __future__ import annotations

from stepwise.graphs.draw import plot_clustermap, plot_graph
from stepwise.ssa.plot import plot_outlier_frequency, plot_relevance_heatmap

__all__ = ["plot_clustermap", "plot_graph", "plot_outlier_frequency", "plot_relevance_heatmap"]
