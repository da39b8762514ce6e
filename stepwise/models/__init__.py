"""Trained models that ship with stepwise, for demonstrations and tests that run offline.

Import it explicitly (``import stepwise.models``); ``import stepwise`` does not load it.

- :func:`digits_cnn`: a small CNN trained on scikit-learn's bundled handwritten digits (16x16 greyscale);
- :func:`digits_data`: those digits as the model reads them, with the train/test split it was trained on.
"""

from .digits import IMAGE_SIZE, DigitsCNN, DigitsData, digits_cnn, digits_data

__all__ = ["IMAGE_SIZE", "DigitsCNN", "DigitsData", "digits_cnn", "digits_data"]
