"""The bench every case of the catalogue works on (tests/common/catalogue/bench.py builds it), once per module."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import Tensor

from stepwise import DependencyGraph
from tests.common.catalogue.bench import bench_graphs, bench_inputs, make_command_files, warm


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    warm()


@pytest.fixture(scope="module")
def inputs() -> Tensor:
    return bench_inputs()


@pytest.fixture(scope="module")
def graphs() -> list[DependencyGraph]:
    return bench_graphs()


@pytest.fixture(scope="module")
def command_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_command_files(tmp_path_factory)
