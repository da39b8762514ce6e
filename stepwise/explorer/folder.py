"""The page of a results folder, from the files the commands write: ``demo``, ``analyse``, ``perturb``, ``paths``,
``inference`` and ``sort`` (the folder itself and the folders one level below it, as ``demo`` nests them).

What is read, per folder:

- graph files (``*.json``, or ``*.graphml`` without a JSON twin): dependency graphs, inference graphs and the
  paths graph, by their kind;
- ``perturbation.csv`` (with ``agreement.csv``, ``patches.csv`` and ``patches.png``);
- ``assignments.csv``, ``paths.csv``, ``rare.csv`` beside the paths graph;
- ``representatives.csv`` beside inference graphs;
- ``sort.json``, ``inputs.csv`` and ``values_*.npy`` of the activation sorter;
- ``thumbnails.npz``: the pixels of the inputs the folder's views show.

A damaged file is named in the error; a folder with nothing of these is an error too.
"""

from __future__ import annotations

import contextlib
import json
import re
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stepwise.core.io import file_part
from stepwise.graphs.layered import LayeredGraph
from stepwise.graphs.readwrite import read_graph

from .images import THUMBNAILS, figure_uri, png_uri, read_thumbnails
from .page import View

__all__ = ["SORTER_FILE", "NoResultsError", "folder_views"]

#: The file of ``stepwise sort`` that names its levels, bottom to top.
SORTER_FILE = "sort.json"
_NOT_GRAPHS = {"summary.json", "timings.json", SORTER_FILE}


class NoResultsError(ValueError):
    """A folder holds no result stepwise knows."""


def _damaged(path: Path, error: BaseException) -> ValueError:
    text = str(error)
    where = "" if str(path) in text else f"{path}: "
    return ValueError(f"{where}{text} Rewrite the file with the command that made it, or remove it.")


def _csv(path: Path, needed: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise _damaged(path, ValueError(f"not a readable CSV table ({error}).")) from error
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise _damaged(path, ValueError(f"the table lacks the columns {missing}."))
    return frame


_CLASS_FILE = re.compile(r"class_(-?\d+)")


def _label(path: Path) -> str:
    match = _CLASS_FILE.fullmatch(path.stem)
    return f"class {match.group(1)}" if match else path.stem


def _order(path: Path) -> tuple:
    match = _CLASS_FILE.fullmatch(path.stem)
    return (0, int(match.group(1)), "") if match else (1, 0, path.name)


def _is_graph_file(path: Path) -> bool:
    """Whether a JSON file holds a graph: node-link data (``nodes`` and ``edges`` or ``links``). Other JSON files
    (a checkpoint, notes, the figures of a script) are left alone; a file that is not JSON at all is damaged when
    its name is one the commands give graphs (``class_N.json``, ``paths.json``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        if _CLASS_FILE.fullmatch(path.stem) or path.stem == "paths":
            raise _damaged(path, ValueError(f"not a readable graph file ({error}).")) from error
        return False
    return isinstance(data, dict) and "nodes" in data and ("edges" in data or "links" in data)


def _graphs(folder: Path) -> dict[str, dict[str, LayeredGraph]]:
    """The graphs of one folder by kind, each labelled by its file (``class_3.json`` -> ``class 3``)."""
    files = [p for p in folder.glob("*.json") if p.name not in _NOT_GRAPHS and _is_graph_file(p)]
    files += [p for p in folder.glob("*.graphml") if not p.with_suffix(".json").exists()]
    found: dict[str, dict[str, LayeredGraph]] = {}
    for path in sorted(files, key=_order):
        try:
            graph = read_graph(path)
        except (OSError, ValueError) as error:
            raise _damaged(path, error) from error
        found.setdefault(graph.kind, {})[_label(path)] = graph
    return found


def _clusters(folder: Path, graphs: dict[str, LayeredGraph]) -> Any:
    """The clustering of a folder's dependency graphs, cut into as many flat clusters as its ``summary.json``
    records (``stepwise analyse --clusters``); None for fewer than two non-empty graphs."""
    from stepwise.graphs.collections import cluster_graphs

    non_empty = {label: g for label, g in graphs.items() if len(g.nodes)}
    if len(non_empty) < 2:
        return None
    n_clusters = None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
        labels = json.loads((folder / "summary.json").read_text(encoding="utf-8"))["clusters"]["labels"]
        n_clusters = min(len(set(labels.values())), len(non_empty)) if labels else None
    return cluster_graphs(non_empty, n_clusters=n_clusters)


def _thumbnails(folder: Path) -> dict[int, tuple[np.ndarray, tuple[int, int]]]:
    path = folder / THUMBNAILS
    return read_thumbnails(path) if path.exists() else {}


def _perturbation(folder: Path) -> View:
    from .perturbation import perturbation_view

    table = _csv(folder / "perturbation.csv", ("input", "target", "level", "neuron"))
    agreement = None
    if (folder / "agreement.csv").exists():
        agreement = _csv(folder / "agreement.csv", ("input", "level", "jaccard"))
    patches: dict[int, list] = {}
    if (folder / "patches.csv").exists():
        boxes = _csv(folder / "patches.csv", ("input", "level", "neuron", "box"))
        try:
            for row in boxes.itertuples(index=False):
                if isinstance(row.box, str):
                    patches.setdefault(int(row.input), []).append((row.level, int(row.neuron), _box(row.box)))
        except (TypeError, ValueError) as error:
            raise _damaged(folder / "patches.csv", ValueError(f"a row does not hold a patch ({error}).")) from error
    images = {n: (png_uri(pixels), side) for n, (pixels, side) in _thumbnails(folder).items()}
    figure = figure_uri(folder / "patches.png") if (folder / "patches.png").exists() and not images else None
    return perturbation_view(table, agreement, images, patches, figure)


def _box(text: str) -> tuple[int, int, int, int]:
    top, left, bottom, right = (int(v) for v in text.split())
    return top, left, bottom, right


def _paths(folder: Path, graph: LayeredGraph) -> View:
    from .paths import paths_view

    assignments = _csv(folder / "assignments.csv", ("input",))
    columns = [c for c in graph.levels if c in assignments.columns]
    if columns != list(graph.levels):
        raise _damaged(folder / "assignments.csv", ValueError(f"its columns do not hold the levels {graph.levels}."))
    paths = _csv(folder / "paths.csv", ("class", "path", "count", "coverage"))
    rare = _csv(folder / "rare.csv", ("input",)) if (folder / "rare.csv").exists() else pd.DataFrame()
    return paths_view(assignments.set_index("input")[columns], columns, paths, rare, graph)


def _inference(folder: Path, graphs: dict[str, LayeredGraph]) -> View:
    from .inference import inference_view

    reps: dict[str, dict[str, list]] = {}
    path = folder / "representatives.csv"
    if path.exists():
        table = _csv(path, ("class", "level", "word", "rank", "input", "box"))
        try:
            for row in table.sort_values(["class", "level", "word", "rank"], kind="stable").itertuples(index=False):
                box = _box(row.box) if isinstance(row.box, str) else None
                key = f"{row.level}:{int(row.word)}"
                reps.setdefault(f"class {row[0]}", {}).setdefault(key, []).append((int(row.input), box, None))
        except (TypeError, ValueError) as error:
            raise _damaged(path, ValueError(f"a row does not hold a word's representative ({error}).")) from error
    images = {n: (png_uri(pixels), side) for n, (pixels, side) in _thumbnails(folder).items()}
    return inference_view(graphs, reps, images)


def _sorter(folder: Path) -> View:
    from stepwise.sorter.sorter import ActivationSorter

    from .sorter import sorter_view

    try:
        settings = json.loads((folder / SORTER_FILE).read_text(encoding="utf-8"))
        levels, bins = list(settings["levels"]), int(settings.get("bins", 30))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise _damaged(folder / SORTER_FILE, ValueError(f"not the levels file of stepwise sort ({error}).")) from error
    inputs = _csv(folder / "inputs.csv", ("input", "label"))
    values: dict[str, Any] = {}
    for level in levels:
        path = folder / f"values_{file_part(level)}.npy"
        try:
            values[level] = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            raise _damaged(path, ValueError(f"not a readable array of neuron values ({error}).")) from error
        if values[level].ndim != 2 or len(values[level]) != len(inputs):
            raise _damaged(
                path, ValueError(f"it holds shape {values[level].shape}, not one row per input of inputs.csv.")
            )
    predicted = inputs["predicted"].to_numpy() if "predicted" in inputs.columns else None
    sorter = ActivationSorter.from_values(values, inputs["label"].to_numpy(), predicted)
    images = {n: png_uri(pixels) for n, (pixels, _) in _thumbnails(folder).items()}
    return sorter_view(sorter, numbers=inputs["input"].tolist(), images=images, bins=bins)


def folder_views(folder: str | PathLike) -> list[View]:
    """The views of every result in a folder and the folders one level below it.

    Parameters
    ----------
    folder : str or path-like

    Returns
    -------
    list of View
        Dependency graphs, perturbation, decision paths, inference graphs, activation sorter: those present.

    Raises
    ------
    FileNotFoundError
        If ``folder`` is not a folder.
    NoResultsError
        If it holds no result stepwise knows (a ValueError).
    ValueError
        If it holds a damaged file (named).
    """
    from .dependency import dependency_view

    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder: give the folder a stepwise command wrote its results into.")
    found: dict[str, View] = {}
    for here in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        graphs = _graphs(here)
        if "dependency" in graphs and "dependency" not in found:
            found["dependency"] = dependency_view(graphs["dependency"], _clusters(here, graphs["dependency"]))
        if (here / "perturbation.csv").exists() and "perturbation" not in found:
            found["perturbation"] = _perturbation(here)
        if "paths" in graphs and "paths" not in found:
            found["paths"] = _paths(here, next(iter(graphs["paths"].values())))
        if "inference" in graphs and "inference" not in found:
            found["inference"] = _inference(here, graphs["inference"])
        if (here / SORTER_FILE).exists() and "sorter" not in found:
            found["sorter"] = _sorter(here)
    if not found:
        raise NoResultsError(
            f"{root} holds no results stepwise knows: no graph file (class_*.json), perturbation.csv, decision "
            f"paths (paths.json), inference graphs or {SORTER_FILE} there or one folder below. Give the folder of "
            "stepwise demo, analyse, perturb, paths, inference or sort."
        )
    order = ["dependency", "perturbation", "paths", "inference", "sorter"]
    return [found[name] for name in order if name in found]
