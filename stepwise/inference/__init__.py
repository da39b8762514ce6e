"""Inference graphs (paper 001, "Inference Graphs for CNN Interpretation"): Gaussian-mixture visual words per level,
their transitions through receptive fields, the words that explain a class or an image, and Viterbi paths for MLPs.

- :mod:`~stepwise.inference.columns`: the columns of the levels, streamed batch by batch;
- :mod:`~stepwise.inference.gmm`: diagonal-covariance mixtures in torch and the EM step;
- :mod:`~stepwise.inference.training`: the paper's initialisation, streamed EM, the discriminative loss;
- :mod:`~stepwise.inference.fields`: receptive fields read from the model;
- :mod:`~stepwise.inference.cooccurrence`: Eqs. 4-6 without a loop over positions;
- :mod:`~stepwise.inference.selection` and :mod:`~stepwise.inference.graph_building`: Algorithm 1;
- :mod:`~stepwise.inference.hmm`: rectified-Gaussian emissions and Viterbi for dense levels;
- :mod:`~stepwise.inference.typical`: the most typical columns of each word;
- :mod:`~stepwise.inference.figures`: the class graph with patches, the field heat maps;
- :mod:`~stepwise.inference.inference_graphs`: :class:`InferenceGraphs`, the estimator.
"""

from stepwise._lazy import lazy_exports

_EXPORTS = {
    "InferenceGraphs": "stepwise.inference.inference_graphs",
    "NotFittedError": "stepwise.inference.checks",
    "Representative": "stepwise.inference.typical",
}

__all__ = ["InferenceGraphs", "NotFittedError", "Representative"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
