"""``stepwise.report`` on results held as Python objects: a tab each, their numbers in the data block."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import perturb
import stepwise
from stepwise.models import digits_cnn
from tests.explorer.conftest import parse
from tests.helpers import digits_subset

LEVELS = ["features.3", "features.6", "classifier.1", "softmax"]


@pytest.fixture(scope="module")
def digits() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    images, labels = digits_subset([0, 1, 2], 12)
    return digits_cnn().double(), images.double(), labels


@pytest.fixture(scope="module")
def page(digits: tuple, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    model, images, labels = digits
    ssa = stepwise.StepwiseSensitivity(model, LEVELS, branching=2)
    with warnings.catch_warnings():  # a traversal that stops early is drawn too: keep its warning out
        warnings.simplefilter("ignore", UserWarning)
        graphs = [ssa.dependency_graph(images[labels == c], target=c) for c in (0, 1, 2)]
    clusters = stepwise.cluster_graphs(graphs, n_clusters=2)
    rankings = {7: perturb.rank_neurons(model, images[7], LEVELS[:-1], target=0, n_samples=8)}
    dp = stepwise.DecisionPaths(model, ["features.6", "classifier.1"], n_clusters=3, n_init=2).fit(images, labels)
    ig = stepwise.InferenceGraphs(model, ["features.6", "classifier.1", "softmax"], n_words=3, max_iter=3).fit(images)
    inference = (ig, {f"class {c}": ig.class_graph(images, c, z=2) for c in (0, 1)})
    sorter = stepwise.ActivationSorter(model, ["classifier.1"], per_class=5).fit(images, labels)
    path = stepwise.report(tmp_path_factory.mktemp("report") / "page.html", graphs=graphs, clusters=clusters,
                           ranking=rankings, paths=dp, inference=inference, sorter=sorter, title="objects")  # fmt: skip
    return parse(path), graphs, clusters, rankings, dp, inference, sorter


def test_a_tab_per_result_given(page: tuple) -> None:
    assert page[0].data["views"] == ["dependency", "perturbation", "paths", "inference", "sorter"]
    assert page[0].data["title"] == "objects"


def test_graphs_and_their_clustering(page: tuple) -> None:
    parsed, graphs, clusters = page[:3]
    held = parsed.data["dependency"]
    assert [g["label"] for g in held["graphs"].values()] == ["class 0", "class 1", "class 2"]
    for graph, (gid, entry) in zip(graphs, held["graphs"].items()):
        metrics = graph.node_metrics()
        for key, m in entry["metrics"].items():
            assert m["frequency"] == metrics.loc[key, "frequency"]
            assert m["interconnectedness"] == metrics.loc[key, "interconnectedness"]
        keys = [e.attrs["data-key"] for e in parsed.elements if e.graph == gid and "data-key" in e.attrs]
        assert sorted(keys) == sorted(graph.nodes)
    order = list(clusters.leaf_order)
    assert held["clusters"]["graphs"] == [str(clusters.frame.index[i]) for i in order]
    assert np.array_equal(np.array(held["clusters"]["values"]), clusters.frame.to_numpy()[order])
    assert held["clusters"]["flat"] == [int(clusters.labels.iloc[i]) for i in order]


def test_ranking_rows_are_its_table(page: tuple) -> None:
    parsed, rankings = page[0], page[3]
    table = rankings[7].table()
    rows = parsed.data["perturbation"]["inputs"]["7"]["rows"]
    assert list(rows) == [f"{lv}:{n}" for lv, n in zip(table["level"], table["neuron"])]
    for (_, expected), shown in zip(table.iterrows(), rows.values()):
        assert shown["correlation"] == pytest.approx(float(expected["correlation"]), rel=1e-12, nan_ok=True)
        assert shown["correlation_rank"] == int(expected["correlation_rank"])


def test_paths_graph_is_the_fitted_one(page: tuple) -> None:
    parsed, dp = page[0], page[4]
    graph = dp.graph()
    assert parsed.data["paths"]["graph"]["nodes"] == {k: dict(d) for k, d in graph.nodes(data=True)}
    assert set(parsed.data["paths"]["figures"]) == {"all", "0", "1", "2"}


def test_words_show_their_representatives(page: tuple) -> None:
    parsed, (ig, graphs) = page[0], page[5]
    held = parsed.data["inference"]
    for (label, graph), (gid, entry) in zip(graphs.items(), held["graphs"].items()):
        assert entry["label"] == label
        for key in graph.nodes:
            level, word = key.rsplit(":", 1)
            expected = [
                [r.input, None if r.box is None else list(r.box), None]
                for r in ig.representatives(level, int(word), k=4)
            ]
            assert held["representatives"][gid][key] == expected
    assert held["images"] and all(v["src"].startswith("data:image/png") for v in held["images"].values())


def test_sorter_counts_are_its_layer_summary(page: tuple) -> None:
    parsed, sorter = page[0], page[6]
    summary = sorter.layer_summary("classifier.1", bins=30)
    held = parsed.data["sorter"]["levels"]["classifier.1"]
    for i, neuron in enumerate(summary.neurons):
        assert held[f"classifier.1:{neuron}"]["counts"] == summary.counts[i].tolist()
    shown = {n for entry in held.values() for members in entry["members"] for n in members}
    assert set(parsed.data["sorter"]["images"]) == {str(n) for n in shown}  # thumbnails of the inputs fitted on


def test_a_failed_write_keeps_the_old_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: tuple) -> None:
    """The page written whole into a temporary file, then renamed: a failure at the rename keeps the old one."""
    import stepwise.core.io as io

    out = tmp_path / "page.html"
    out.write_text("the old page")

    def refuse(source: object, target: object) -> None:
        assert Path(source).read_text().startswith("<!DOCTYPE html>")  # written whole, beside the page
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        stepwise.report(out, graphs=page[1])
    assert out.read_text() == "the old page" and [p.name for p in tmp_path.iterdir()] == ["page.html"]


def test_inputs_that_are_not_images(tmp_path: Path) -> None:
    """An MLP on vectors: every view, the words' representatives shown as one-row strips."""
    from tests.helpers import trained_mlp

    model, inputs, labels = trained_mlp(3)
    levels = ["1", "3", "softmax"]
    ig = stepwise.InferenceGraphs(model, levels, n_words=3, max_iter=3).fit(inputs)
    graphs = {f"class {c}": ig.class_graph(inputs, c, z=2) for c in (0, 1)}
    sorter = stepwise.ActivationSorter(model, ["3"], per_class=5).fit(inputs, labels)
    ranking = perturb.rank_neurons(model, inputs[0], levels, target=int(labels[0]), n_samples=8)
    page = parse(stepwise.report(tmp_path / "page.html", ranking=[ranking], inference=(ig, graphs), sorter=sorter))
    assert page.data["views"] == ["perturbation", "inference", "sorter"]
    images = page.data["inference"]["images"]
    assert images and all(v["height"] == 1 and v["width"] == inputs.shape[1] for v in images.values())


def test_sentences_show_their_typical_tokens(tmp_path: Path) -> None:
    """A tiny BERT's results: a word's representatives are sentences, the typical token marked; no view draws
    token ids as an image."""
    pytest.importorskip("transformers", reason="the transformer tests need the transformers package")
    from tests.helpers import sentences, tiny_bert

    model, batch = tiny_bert(), sentences(40)
    levels = ["transformer.encoder.layer.0.intermediate", "pool"]
    ig = stepwise.InferenceGraphs(model, levels, n_words=3, max_iter=5).fit(batch)
    graphs = {f"class {c}": ig.class_graph(batch, c, z=2) for c in (0, 1)}
    tokens = [[f"t{int(t)}" for t in ids] for ids in batch["input_ids"]]
    sorter = stepwise.ActivationSorter(model, levels[:1], per_class=5).fit(batch, torch.arange(40) % 3)
    sentence = {key: value[:1] for key, value in batch.items()}
    ranking = perturb.rank_neurons(model, sentence, levels[:1], target=0, n_samples=8,
                                   input_level="transformer.embeddings")  # fmt: skip
    page = parse(stepwise.report(tmp_path / "page.html", inference=(ig, graphs, tokens), sorter=sorter,
                                 ranking=[ranking]))  # fmt: skip
    assert page.data["views"] == ["perturbation", "inference", "sorter"]
    assert page.data["sorter"]["images"] == {} and page.data["sorter"]["inputs"]
    held = page.data["inference"]
    assert held["images"] == {}
    lengths = batch["attention_mask"].sum(1).tolist()
    marked = 0
    for i, graph in enumerate(graphs.values()):
        reps = held["representatives"][f"inference-{i}"]
        for key in graph.nodes:
            level, word = key.rsplit(":", 1)
            expected = [[r.input, None, r.position if level == levels[0] else None]
                        for r in ig.representatives(level, int(word), k=4)]  # fmt: skip
            assert reps[key] == expected
            for number, _, token in expected:
                shown = held["texts"][str(number)]  # by position, None at padding
                assert shown == [t if j < lengths[number] else None for j, t in enumerate(tokens[number])]
                marked += token is not None
    assert marked > 0
    figure = ig.plot_graph(graphs["class 0"], tmp_path / "graph.png", k=2)
    assert (tmp_path / "graph.png").stat().st_size > 0 and any("sentence" in t.get_text() for ax in figure.axes
                                                                for t in ax.texts)  # fmt: skip
    with pytest.raises(TypeError, match="one list of str per sentence"):
        stepwise.report(tmp_path / "bad.html", inference=(ig, graphs, tokens[:3]))
    with pytest.raises(ValueError, match="give one str per token id, padding included"):
        stepwise.report(tmp_path / "bad.html", inference=(ig, graphs, [t[:2] for t in tokens]))


def test_a_level_name_with_quotes_and_brackets(tmp_path: Path) -> None:
    import networkx as nx

    level = "fe\"a<t>&'x"
    g = nx.DiGraph(levels=[level, "softmax"], target=0)
    g.add_node("softmax:0", level="softmax", index=0, depth=0)
    g.add_node(f"{level}:3", level=level, index=3, depth=1)
    g.add_edge("softmax:0", f"{level}:3", count=1, frequency=1.0, relevance=0.5, sign=1)
    page = parse(stepwise.report(tmp_path / "page.html", graphs=[stepwise.DependencyGraph(g)]))
    keys = [e.attrs["data-key"] for e in page.elements if "data-key" in e.attrs]
    assert f"{level}:3" in keys and set(page.data["dependency"]["graphs"]["dependency-0"]["nodes"]) == set(keys)
