"""Every command on sentences: ``--data`` holding a tokenizer's dict of token ids (and labels), a tiny BERT
(tests/helpers.py) as the model. Each command's numbers equal the Python API's on the same inputs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tests.helpers import BERT_LEVELS, sentences, tiny_bert

import perturb
import stepwise
from stepwise.cli import main

pytest.importorskip("transformers", reason="the transformer tests need the transformers package")

MODEL = "tests.helpers:tiny_bert"
MLP = BERT_LEVELS[1:3]
EMBEDDINGS = BERT_LEVELS[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor], torch.Tensor]:
    """24 padded sentences labelled with the float32 model's predictions, saved as (dict, labels)."""
    batch = sentences(24)
    with torch.no_grad():
        labels = tiny_bert().float()(**batch).argmax(1)
    path = tmp_path_factory.mktemp("sentences") / "sentences.pt"
    torch.save((batch, labels), path)
    return path, batch, labels


def command(name: str, path: Path, out: Path, *extra: str) -> int:
    return main([name, "--model", MODEL, "--data", str(path), "--out", str(out), "--quiet", *extra])


def test_levels_lists_the_token_levels(data, capsys) -> None:
    assert main(["levels", "--model", MODEL, "--data", str(data[0])]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in MLP)


def test_paths_on_sentences_are_the_api_s(data, tmp_path: Path) -> None:
    path, batch, labels = data
    assert command("paths", path, tmp_path, "--levels", *MLP, "--clusters", "3", "--features", "mean") == 0
    written = pd.read_csv(tmp_path / "assignments.csv")
    dp = stepwise.DecisionPaths(tiny_bert().float(), MLP, n_clusters=3, features="mean", seed=0).fit(batch, labels)
    for level in MLP:
        assert np.array_equal(written[level].to_numpy(), dp.assignments_[level].to_numpy())


def test_sort_on_sentences_is_the_api_s(data, tmp_path: Path) -> None:
    path, batch, labels = data
    assert command("sort", path, tmp_path, "--levels", MLP[1], "--per-class", "4") == 0
    sorter = stepwise.ActivationSorter(tiny_bert().float(), [MLP[1]], per_class=4, seed=0).fit(batch, labels)
    values = np.load(next(tmp_path.glob("values_*.npy")))
    assert np.allclose(values, sorter.values_[MLP[1]], rtol=1e-5, atol=1e-6 * np.abs(values).max())
    assert not (tmp_path / "thumbnails.npz").exists()  # token ids are no picture


def test_inference_on_sentences_is_the_api_s(data, tmp_path: Path) -> None:
    path, batch, labels = data
    assert command("inference", path, tmp_path, "--levels", *MLP, "softmax", "--words", "3", "--max-iter", "10") == 0
    ig = stepwise.InferenceGraphs(tiny_bert().float(), MLP, n_words=3, max_iter=10, seed=0).fit(batch, labels)
    for c in sorted(set(labels.tolist())):
        written = stepwise.read_graph(tmp_path / f"class_{c}.json")
        graph = ig.class_graph(batch, c, z=3)
        assert sorted(written.nodes) == sorted(graph.nodes)
        assert all(written.nodes[n]["size"] == graph.nodes[n]["size"] for n in graph.nodes)
    representatives = pd.read_csv(tmp_path / "representatives.csv")
    assert representatives["position"].max() < batch["input_ids"].shape[1]


def test_perturb_on_sentences_is_the_api_s(data, tmp_path: Path) -> None:
    path, batch, labels = data
    args = ["--levels", *MLP, "--indices", "2", "--samples", "10", "--input-level", EMBEDDINGS]
    assert command("perturb", path, tmp_path, *args) == 0
    table = pd.read_csv(tmp_path / "perturbation.csv")
    sentence = {key: value[2:3] for key, value in batch.items()}
    ranking = perturb.rank_neurons(tiny_bert(), sentence, MLP, target=int(labels[2]), n_samples=10,
                                   input_level=EMBEDDINGS)  # fmt: skip
    for level in MLP:
        written = table[table["level"] == level].sort_values("neuron")["correlation"].to_numpy()
        expected = ranking.scores("correlation", level).numpy()
        assert np.allclose(written, expected, rtol=1e-5, atol=1e-6, equal_nan=True)  # 6 significant digits
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["rankings"][0]["target"] == int(labels[2])


def test_analyse_on_sentences_is_the_api_s(data, tmp_path: Path) -> None:
    path, batch, labels = data
    args = ["--levels", *MLP, "softmax", "--max-images", "6", "--min-probability", "0.5", "--fence", "0.5"]
    assert command("analyse", path, tmp_path, *args) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # classes with few sentences
        expected = stepwise.class_graphs(tiny_bert(), batch, labels=labels, levels=[*MLP, "softmax"],
                                         min_probability=0.5, max_per_class=6, fence=0.5)  # fmt: skip
    assert expected
    for c, graph in expected.items():
        written = stepwise.read_graph(tmp_path / f"class_{c}.graphml")
        assert len(written) > 1 and sorted(written.edges) == sorted(graph.edges)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--levels", *MLP], "--data holds token ids, which take no noise: name the module"),
        (["--levels", *MLP, "--input-level", "embedings"], "No module 'embedings' in the model"),
    ],
)
def test_perturb_on_sentences_needs_the_embeddings(data, tmp_path: Path, capsys, args, message) -> None:
    with pytest.raises(SystemExit) as stop:
        command("perturb", data[0], tmp_path, "--indices", "0", *args)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_input_level_is_for_sentences_only(tmp_path: Path, capsys) -> None:
    path = tmp_path / "images.pt"
    torch.save(torch.rand(6, 1, 16, 16), path)
    model = "stepwise.models:digits_cnn"
    with pytest.raises(SystemExit) as stop:
        main(
            ["perturb", "--model", model, "--data", str(path), "--input-level", "x", "--out", str(tmp_path), "--quiet"]
        )
    assert stop.value.code == 2 and "--input-level x: it is for sentences" in capsys.readouterr().err
