"""perturb: which neurons matter for one input, measured over noisy resamples of it.

The method of the input-resampling paper: resample one input with small multiplicative noise, rank every
neuron of every level by the magnitude of the correlation of its activation with the output and by the
precision of its activation (with APPLE's activation and weight baselines beside them), compare the metrics'
choices with the Jaccard index, and locate the chosen neurons in the input with deconvnet patches. Levels are
captured with :mod:`stepwise.levels`.
"""

from .deconvnet import Patch, patches, plot_patches, top_patches
from .many import rank_many
from .ranking import METRICS, OUTPUTS, NeuronRanking, rank_neurons, resample
from .similarity import agreement, jaccard

__all__ = [
    "METRICS",
    "OUTPUTS",
    "NeuronRanking",
    "Patch",
    "agreement",
    "jaccard",
    "patches",
    "plot_patches",
    "rank_many",
    "rank_neurons",
    "resample",
    "top_patches",
]
