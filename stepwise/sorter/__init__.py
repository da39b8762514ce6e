"""The neuron activation sorter (paper 004): every neuron's values on a few inputs per class, as class-stacked
histograms aligned on zero.

- :mod:`~stepwise.sorter.values`: the streamed capture of neuron values into preallocated float32 arrays;
- :mod:`~stepwise.sorter.bins`: zero-aligned bins, class counts, the three width classes;
- :mod:`~stepwise.sorter.kinds`: kinds of neurons, with their documented thresholds;
- :mod:`~stepwise.sorter.summary`: :class:`LayerSummary` and its figure;
- :mod:`~stepwise.sorter.view`: :class:`NeuronView` and its thumbnails;
- :mod:`~stepwise.sorter.sorter`: :class:`ActivationSorter`, which ties them together.
"""

from stepwise._lazy import lazy_exports

_EXPORTS = {
    "ActivationSorter": "stepwise.sorter.sorter",
    "NotFittedError": "stepwise.sorter.sorter",
    "LayerSummary": "stepwise.sorter.summary",
    "NeuronView": "stepwise.sorter.view",
    "KINDS": "stepwise.sorter.kinds",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
