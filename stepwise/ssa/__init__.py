"""Step-wise sensitivity analysis (SSA paper): one module per stage.

- :mod:`~stepwise.ssa.step`: the forward pass of one step, the lower level as a leaf;
- :mod:`~stepwise.ssa.relevance`: ω of one step by batched autograd (``gradient``, ``guided``,
  ``grad_x_activation``);
- :mod:`~stepwise.ssa.closed_form`: the same ω and outlier counts in closed form, from one forward pass;
- :mod:`~stepwise.ssa.select`: Tukey outliers, quartiles, children by frequency;
- :mod:`~stepwise.ssa.traverse`: :class:`StepwiseSensitivity`, the branching traversal into a dependency graph;
- :mod:`~stepwise.ssa.checkpoint`: resumable traversals;
- :mod:`~stepwise.ssa.plot`: outlier frequencies and relevance heatmaps.
"""

from stepwise._lazy import lazy_exports

_EXPORTS = {"StepwiseSensitivity": "stepwise.ssa.traverse"}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
