"""Every file stepwise writes is written atomically (``stepwise.core.io.atomic_write``): a figure, a table or a
summary whose write fails half-way leaves the previous file byte for byte and no temporary file. The graph
writers are tested in test_readwrite.py; test_source.py finds any write that bypasses the atomic writer."""

from __future__ import annotations

import errno
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch
from tests.helpers import digits_subset
from tests.faults import FullDisk, files_in

from stepwise import read_graph
from stepwise.core import io as core_io
from stepwise.cli import main
from stepwise.core.io import save_figure, write_file

matplotlib.use("Agg")  # headless


def figure(title: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [2, 0, 1])
    ax.set_title(title)
    return fig


def test_a_figure_that_fails_to_render_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "figure.png"
    save_figure(figure("first"), path)
    before = path.read_bytes()
    fig = figure("second")

    def half_rendered(stream, **options: object) -> None:
        stream.write(before[: len(before) // 2])
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(fig, "savefig", half_rendered)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        save_figure(fig, path)
    assert files_in(tmp_path) == {"figure.png": before}
    assert not plt.fignum_exists(fig.number)  # closed all the same


@pytest.mark.parametrize("kind", ["figure", "table"])
def test_a_disk_full_in_the_middle_of_a_file_keeps_the_old_one(kind, tmp_path, monkeypatch):
    path = tmp_path / ("figure.png" if kind == "figure" else "table.csv")
    write = {
        "figure": lambda title: save_figure(figure(title), path),
        "table": lambda title: write_file(path, "".join(f"{title},{i},{i * i}\n" for i in range(500))),
    }[kind]
    write("first")
    before = path.read_bytes()
    disk = FullDisk(room=len(before) // 2)
    monkeypatch.setattr(core_io, "os", disk)
    with pytest.raises(OSError, match="No space left on device") as caught:
        write("second")
    assert caught.value.errno == errno.ENOSPC
    assert disk.failed and disk.written == len(before) // 2
    monkeypatch.undo()
    assert files_in(tmp_path) == {path.name: before}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four training images of each of the classes 1 and 2 with their labels."""
    path = tmp_path_factory.mktemp("inputs") / "data.pt"
    torch.save(digits_subset((1, 2), 4), path)
    return path


@pytest.mark.parametrize("name", ["bag_of_nodes.csv", "summary.json"])
def test_a_command_whose_disk_fills_keeps_the_previous_table(name, data_file, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    previous = {"bag_of_nodes.csv": b"graph,previous run\n", "summary.json": b'{"previous": "run"}\n'}
    for file, content in previous.items():
        (out / file).write_bytes(content)
    disk = FullDisk(room=64, names=(name,))
    monkeypatch.setattr(core_io, "os", disk)
    args = ["analyse", "--model", "stepwise.models:digits_cnn", "--data", str(data_file), "--classes", "1", "2"]
    assert main([*args, "--out", str(out), "--quiet"]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert [path.name for path in disk.failed] and disk.written == 64  # the write began and failed half-way
    monkeypatch.undo()
    written = files_in(out)
    assert written[name] == previous[name]
    assert not [file for file in written if file.startswith(".")], "a temporary file was left behind"
    for graph in ("class_1.json", "class_2.graphml"):  # the files written before the failure are whole
        assert read_graph(out / graph).target == int(graph[6])
