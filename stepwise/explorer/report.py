"""``stepwise.report``: the page of results one holds as Python objects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd

from stepwise.graphs.collections import ClusterResult
from stepwise.graphs.layered import LayeredGraph

from .images import input_side, png_uri, thumbnail
from .page import View, write_page

__all__ = ["report"]


def _labelled(items: Any, name: str, kinds: tuple[type, ...], label: Any) -> dict[str, Any]:
    """``items`` (one object, a sequence or a mapping) as an ordered label -> object mapping, each checked."""
    if isinstance(items, Mapping):
        pairs = [(str(k), v) for k, v in items.items()]
    elif isinstance(items, Sequence) and not isinstance(items, str):
        pairs = [(str(i), v) for i, v in enumerate(items)]
    else:
        pairs = [("0", items)]
    if not pairs:
        raise ValueError(f"{name} is empty: pass at least one, or leave {name}=None.")
    for key, value in pairs:
        if not isinstance(value, kinds):
            wanted = " or ".join(k.__name__ for k in kinds)
            raise TypeError(f"{name} holds {type(value).__name__} (at {key}): it takes {wanted} objects.")
    if not isinstance(items, Mapping):
        pairs = [(label(v, i), v) for i, (_, v) in enumerate(pairs)]
    labels = [k for k, _ in pairs]
    if len(set(labels)) < len(labels):
        raise ValueError(f"{name} holds two results labelled alike ({labels}): pass a mapping of distinct labels.")
    return dict(pairs)


def _graph_label(graph: LayeredGraph, i: int) -> str:
    target = graph.attrs.get("target")
    return f"class {target}" if isinstance(target, int) else f"graph {i}"


def _perturbation(ranking: Any) -> View:
    from perturb import NeuronRanking, agreement, top_patches

    from .perturbation import perturbation_view

    if isinstance(ranking, pd.DataFrame):
        return perturbation_view(ranking)
    runs = _labelled(ranking, "ranking", (NeuronRanking,), lambda r, i: str(i))
    tables, agreements, images, patches = [], [], {}, {}
    for i, (label, run) in enumerate(runs.items()):
        number = int(label) if label.lstrip("-").isdigit() else i
        target = run.target if isinstance(run.target, int) else str(run.target)
        tables.append(run.table().assign(input=number, target=target))
        for level, value in agreement(run).items():
            agreements.append({"input": number, "target": target, "level": level, "jaccard": value})
        if run.image.dim() == 4:  # an image (1, C, H, W): its top neurons' patches drawn on it
            images[number] = (png_uri(thumbnail(run.image[0])), input_side(run.image[0]))
            patches[number] = [(level, p.neuron, p.box) for level, found in top_patches(run).items()
                               for p in found if p.box is not None]  # fmt: skip
    table = pd.concat(tables, ignore_index=True)
    return perturbation_view(table, pd.DataFrame(agreements), images, patches)


def _paths(dp: Any) -> View:
    from stepwise.paths.decision_paths import DecisionPaths

    from .paths import paths_view

    if not isinstance(dp, DecisionPaths) or not hasattr(dp, "assignments_"):
        raise TypeError(f"paths takes a fitted DecisionPaths; got {type(dp).__name__}. Call .fit(inputs) first.")
    tables = []
    for c in dp.classes_.tolist():
        part = dp.paths(int(c))
        part.insert(0, "class", int(c))
        tables.append(part.assign(path=["-".join(map(str, p)) for p in part["path"]]))
    return paths_view(dp.assignments_, dp.columns_, pd.concat(tables, ignore_index=True), dp.rare(), dp.graph())


def _inference(inference: Any) -> View:
    from stepwise.graphs.inference import InferenceGraph
    from stepwise.inference.inference_graphs import InferenceGraphs

    from .inference import inference_view

    ig, graphs, tokens = None, inference, None
    if isinstance(inference, tuple) and len(inference) in (2, 3) and isinstance(inference[0], InferenceGraphs):
        ig, graphs, tokens = (*inference, None)[:3]
    elif isinstance(inference, InferenceGraphs):
        raise TypeError(
            "inference takes class graphs: pass (ig, {label: ig.class_graph(inputs, c)}) to show their words' "
            "representative patches, or the graphs alone."
        )
    graphs = _labelled(graphs, "inference", (InferenceGraph,), lambda g, i: _graph_label(g, i))
    if ig is None:
        return inference_view(graphs)
    from stepwise.core.inputs import KeywordInputs

    validation = ig.validation_inputs_
    keyword = isinstance(validation, KeywordInputs)
    texts = _texts(tokens, validation) if keyword else None
    reps: dict[str, dict[str, list]] = {}
    images = {}
    for label, graph in graphs.items():
        reps[label] = {}
        for key in graph.nodes:
            level, word = key.rsplit(":", 1)
            rows = [(r.input, r.box, r.position if level in ig.token_levels_ else None)
                    for r in ig.representatives(level, int(word), k=4)]  # fmt: skip
            reps[label][key] = rows
            for number, _, _ in rows:
                if number not in images and not keyword:
                    image = validation[number]
                    images[number] = (png_uri(thumbnail(image)), input_side(image))
    return inference_view(graphs, reps, images, texts)


def _texts(tokens: Any, validation: Any) -> dict[int, list[str]] | None:
    """Each validation sentence's tokens as strings by position, ``None`` where the mask has no real token, from
    ``tokens`` (one list of str per sentence, one per position)."""
    if tokens is None:
        return None
    if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Sequence) or len(tokens) != len(validation):
        raise TypeError(
            f"The third item of inference= gives the tokens of the {len(validation)} validation sentences: one list "
            "of str per sentence, e.g. [tokenizer.convert_ids_to_tokens(ids) for ids in inputs['input_ids']]."
        )
    mask, width = validation.mask, validation.shape[1]
    texts = {}
    for i, sentence in enumerate(tokens):
        words = [str(t) for t in sentence]
        if len(words) != width:
            raise ValueError(
                f"Sentence {i} has {len(words)} token strings for its {width} positions: give one str per token id, "
                "padding included, as tokenizer.convert_ids_to_tokens(ids) does."
            )
        texts[i] = [w if mask is None or mask[i, j] else None for j, w in enumerate(words)]  # None: no real token
    return texts


def _sorter(sorter: Any) -> View:
    from stepwise.sorter.sorter import ActivationSorter

    from .sorter import sorter_view

    if not isinstance(sorter, ActivationSorter) or not hasattr(sorter, "values_"):
        raise TypeError(f"sorter takes a fitted ActivationSorter; got {type(sorter).__name__}. Call .fit first.")
    return sorter_view(sorter)


def report(
    path: str | PathLike,
    *,
    graphs: Any = None,
    clusters: ClusterResult | None = None,
    ranking: Any = None,
    paths: Any = None,
    inference: Any = None,
    sorter: Any = None,
    title: str | None = None,
) -> Path:
    """Write one self-contained HTML page that shows the results given, a tab per kind (offline: every script,
    style, image and number inline).

    Parameters
    ----------
    path : str or path-like
        The page to write (replaced atomically when it exists).
    graphs : DependencyGraph, sequence or mapping of label to DependencyGraph, optional
        Dependency graphs; a sequence is labelled by each graph's target (``"class 3"``).
    clusters : ClusterResult, optional
        Their clustering (:func:`stepwise.cluster_graphs`); computed from two or more graphs when not given.
    ranking : NeuronRanking, sequence or mapping of input number to NeuronRanking, or pandas.DataFrame, optional
        Perturbation rankings (:func:`perturb.rank_neurons`), their images shown with the patches of each level's
        top 5 neurons by correlation; or the table ``stepwise perturb`` writes.
    paths : DecisionPaths, optional
        Fitted.
    inference : (InferenceGraphs, graphs), (InferenceGraphs, graphs, tokens), or InferenceGraph, sequence or mapping of them, optional
        Class graphs; with the fitted ``InferenceGraphs`` they come from, their words show representative patches.
        For sentences (keyword inputs), ``tokens`` holds each validation sentence's tokens as strings, and a word's
        representatives are its sentences with the typical token marked.
    sorter : ActivationSorter, optional
        Fitted.
    title : str, optional
        The page's title and heading (default "stepwise results").

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        If no result is given, a sequence or mapping of results is empty, two results have the same label, or
        ``clusters`` comes without ``graphs``.
    TypeError
        If a result is not of the kind its parameter takes, or a method's object is not fitted.

    Examples
    --------
    >>> import stepwise, tempfile, os
    >>> from stepwise.models import digits_cnn, digits_data
    >>> digits = digits_data()
    >>> sorter = stepwise.ActivationSorter(digits_cnn(), ["classifier.1"], per_class=3).fit(digits.images, digits.labels)
    >>> page = stepwise.report(os.path.join(tempfile.mkdtemp(), "page.html"), sorter=sorter)
    >>> 'data-tab="sorter"' in page.read_text(encoding="utf-8")
    True
    """
    from stepwise.graphs.dependency import DependencyGraph

    from .dependency import dependency_view

    if clusters is not None and graphs is None:
        raise ValueError("clusters is given without graphs: pass the graphs it clusters as graphs= too.")
    if all(v is None for v in (graphs, ranking, paths, inference, sorter)):
        raise ValueError(
            "report has nothing to show: pass graphs=, ranking=, paths=, inference= or sorter= (at least one)."
        )
    if clusters is not None and not isinstance(clusters, ClusterResult):
        raise TypeError(f"clusters takes a ClusterResult (stepwise.cluster_graphs); got {type(clusters).__name__}.")
    views = []
    if graphs is not None:
        views.append(dependency_view(_labelled(graphs, "graphs", (DependencyGraph,), _graph_label), clusters))
    if ranking is not None:
        views.append(_perturbation(ranking))
    if paths is not None:
        views.append(_paths(paths))
    if inference is not None:
        views.append(_inference(inference))
    if sorter is not None:
        views.append(_sorter(sorter))
    path = Path(path)
    write_page(path, views, title or "stepwise results")
    return path
