"""Trained models that ship with stepwise, for demonstrations and tests that run offline.

Import it explicitly (``import stepwise.models``); ``import stepwise`` does not load it.

- :func:`digits_cnn`: a small CNN trained on scikit-learn's bundled handwritten digits (16x16 greyscale);
- :func:`digits_data`: those digits as the model reads them, with the train/test split it was trained on;
- :func:`digits_gru`: a small GRU trained on the same digits read row by row (8 steps of 8 pixels);
- :func:`digits_sequences`: the digits as those sequences, with the same split;
- :mod:`~stepwise.models.minilm`: the pretrained MiniLM sentence encoder with a shipped linear probe on four topics
  (:func:`~stepwise.models.minilm.minilm_classifier`, needs the ``stepwise[transformers]`` extra), and the labelled
  sentences it learnt from (:func:`~stepwise.models.minilm.sentence_data`).
"""

from .digits import IMAGE_SIZE, DigitsCNN, DigitsData, digits_cnn, digits_data
from .digits_gru import DigitsGRU, digits_gru, digits_sequences

__all__ = [
    "IMAGE_SIZE",
    "DigitsCNN",
    "DigitsData",
    "DigitsGRU",
    "digits_cnn",
    "digits_data",
    "digits_gru",
    "digits_sequences",
]
