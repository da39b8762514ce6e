"""The one fixture every test shares: torch seeded before each test (helpers live in tests/helpers.py)."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import SEED


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(SEED)
