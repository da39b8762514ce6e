"""The transformer tests: a tiny BERT classifier (tests/helpers.py) and padded sentences. Each test module skips,
with the reason, without transformers."""

from __future__ import annotations

import pytest
from torch import Tensor, nn

from tests.helpers import sentences, tiny_bert


@pytest.fixture
def model() -> nn.Module:
    return tiny_bert()


@pytest.fixture
def batch() -> dict[str, Tensor]:
    return sentences()
