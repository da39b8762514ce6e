"""``stepwise levels``: the candidate levels of a model, the defaults marked."""

from __future__ import annotations

import pytest
from tests.cli.common import SHIPPED_LEVELS

from stepwise.cli import main


def test_levels_lists_the_candidates_and_marks_the_defaults(capsys: pytest.CaptureFixture) -> None:
    assert main(["levels", "--model", "stepwise.models:digits_cnn", "--input-shape", "1", "16", "16"]) == 0
    lines = capsys.readouterr().out.splitlines()
    marked = [line.split()[1] for line in lines[1:] if line.startswith("*")]
    assert marked == SHIPPED_LEVELS
    assert any(line.split()[:2] == ["features.0", "(16,"] for line in lines[1:] if not line.startswith("*"))
