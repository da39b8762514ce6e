"""Every method on a real pretrained transformer: MiniLM (all-MiniLM-L6-v2) with the shipped topic probe.

The classifier (:func:`stepwise.models.minilm.minilm_classifier`) reads token ids and their attention mask; its
neurons are the MLP units of each of its six layers (``transformer.encoder.layer.{i}.intermediate``, 1,536 each),
each unit's value being its mean over the real tokens of a sentence, so that padding changes nothing. On the shipped
sentences (400, four topics, :func:`stepwise.models.minilm.sentence_data`), the script runs, offline:

1. a dependency graph (SSA) of the topic ``sport`` from the probe's softmax down to layer 0, on the 100 sport
   sentences, written as ``dependency_sport.graphml``;
2. a perturbation ranking of one sport sentence, the multiplicative noise applied to the token embeddings
   (``input_level="transformer.embeddings"``), written as ``ranking.csv``; how many of the graph's neurons of each
   layer are among the ranking's 20 most correlated;
3. decision paths over the six layers' token-averaged MLP activations of all 400 sentences (four clusters a layer),
   written as ``paths.html`` (a Sankey diagram) and ``paths.csv``; how well each layer's clusters match the topics
   (adjusted Rand index);
4. the activation sorter's layer summary of the last layer's MLP neurons on 25 sentences a topic, written as
   ``sorter_layer5.png``, and the count of each neuron kind;
5. inference graphs over the MLP activations of layers 0, 2 and 5, whose columns are the real tokens of the 400
   sentences (eight words a layer), and the class graph of the topic, written as ``inference_sport.graphml``; the
   tokens most typical of each of its words, and its commonest tokens in the topic's sentences;
6. the explorer page of all of it, ``report.html`` (not committed: ``stepwise.report`` rebuilds it).

Run: ``python examples/transformers_minilm.py`` (about a minute on two CPU cores). Results go to
``results/transformers/`` with the figures it printed in ``summary.json``.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections import Counter
from pathlib import Path

import torch
from sklearn.metrics import adjusted_rand_score

import perturb
import stepwise
from stepwise.core.io import save_figure, write_file
from stepwise.models.minilm import minilm_classifier, minilm_tokenizer, sentence_data, tokenize

os.environ.setdefault("HF_HUB_OFFLINE", "1")

OUT = Path(__file__).resolve().parent.parent / "results" / "transformers"
MLP = [f"transformer.encoder.layer.{i}.intermediate" for i in range(6)]
EMBEDDINGS = "transformer.embeddings"
TOPIC = "sport"
WORD_LEVELS = [MLP[0], MLP[2], MLP[5]]  # the levels of the inference graphs
N_WORDS = 8


def main() -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model, data, tokenizer = minilm_classifier(), sentence_data(), minilm_tokenizer()
    topic = data.classes.index(TOPIC)
    rows = torch.nonzero(data.labels == topic).flatten()
    sentences = tokenize([data.texts[i] for i in rows], tokenizer)
    summary: dict = {"levels": MLP, "topic": TOPIC, "sentences": len(rows)}

    # 1. the dependency graph of the topic
    analysis = stepwise.StepwiseSensitivity(model, [*MLP, "softmax"])
    graph = analysis.dependency_graph(sentences, target=topic)
    graph.write(OUT / f"dependency_{TOPIC}.graphml")
    per_level = {level: sorted(graph.nodes[n]["index"] for n in graph.nodes if graph.nodes[n]["level"] == level)
                 for level in graph.levels}  # fmt: skip
    summary["graph"] = {"repr": repr(graph), "neurons_per_level": {k: len(v) for k, v in per_level.items()}}
    print(f"1. {graph}; neurons per layer: " + ", ".join(str(len(per_level[level])) for level in MLP))

    # 2. the perturbation ranking of one sentence, noise on the token embeddings
    sentence = {key: value[:1] for key, value in sentences.items()}
    ranking = perturb.rank_neurons(model, sentence, MLP, target=topic, n_samples=200, sigma=0.1, seed=0,
                                   input_level=EMBEDDINGS)  # fmt: skip
    write_file(OUT / "ranking.csv", ranking.table().to_csv(index=False))
    top = ranking.top("correlation", 20)
    shared = {level: len(set(top[level]) & set(per_level[level])) for level in MLP}
    summary["ranking"] = {"sentence": data.texts[int(rows[0])], "clean_probability": ranking.clean_output,
                          "graph_neurons_in_top_20_correlation": shared}  # fmt: skip
    print(f"2. ranking of {data.texts[int(rows[0])]!r} (p = {ranking.clean_output:.3f}); graph neurons among the 20 "
          "most correlated, per layer: " + ", ".join(str(shared[level]) for level in MLP))  # fmt: skip

    # 3. decision paths over the layers' token-averaged activations
    everything = tokenize(data.texts, tokenizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        paths = stepwise.DecisionPaths(model, MLP, n_clusters=4, features="mean", seed=0).fit(everything, data.labels)
    paths.plot_sankey(OUT / "paths.html")
    write_file(OUT / "paths.csv", paths.assignments_.to_csv(index=False))
    agreement = {level: adjusted_rand_score(data.labels.numpy(), paths.assignments_[level]) for level in MLP}
    summary["paths"] = {"adjusted_rand_index_with_topics": agreement}
    print("3. decision paths: adjusted Rand index of each layer's clusters with the topics: "
          + ", ".join(f"{agreement[level]:.2f}" for level in MLP))  # fmt: skip

    # 4. the activation sorter's layer summary of the last layer's MLP neurons
    sorter = stepwise.ActivationSorter(model, [MLP[-1]], per_class=25, seed=0).fit(everything, data.labels)
    layer = sorter.layer_summary(MLP[-1])
    save_figure(layer.plot(order="kind", class_names=dict(enumerate(data.classes))), OUT / "sorter_layer5.png")
    kinds = sorter.neuron_types(MLP[-1])["kind"].value_counts().to_dict()
    summary["sorter"] = {"inputs": layer.n_inputs, "kinds": kinds}
    print(f"4. sorter, layer 5 on {layer.n_inputs} sentences: neuron kinds {kinds}")

    # 5. inference graphs: words of real tokens in three layers, the class graph of the topic
    ig = stepwise.InferenceGraphs(model, WORD_LEVELS, n_words=N_WORDS, max_iter=50, seed=0).fit(everything)
    word_graph = ig.class_graph(everything, topic, z=3)
    word_graph.write(OUT / f"inference_{TOPIC}.graphml")
    tokens = [tokenizer.convert_ids_to_tokens(ids) for ids in everything["input_ids"].tolist()]
    words = ig.words(everything)
    predicted = words["softmax"] == topic
    typical, in_topic = {}, {}
    for key in word_graph.nodes:
        level, word = key.rsplit(":", 1)
        if level in WORD_LEVELS:  # its most typical columns over all sentences, and its tokens in the topic's
            reps = ig.representatives(level, int(word), k=6)
            typical[key] = [tokens[r.input][r.position] for r in reps]
            found = Counter(tokens[n][t] for n, t in (words[level] == int(word)).nonzero().tolist() if predicted[n])
            in_topic[key] = [token for token, _ in found.most_common(6)]
    summary["inference"] = {"graph": repr(word_graph), "iterations": ig.n_iter_, "typical_tokens": typical,
                            "commonest_tokens_in_topic": in_topic,
                            "columns": int(everything["attention_mask"].sum())}  # fmt: skip
    print(f"5. {word_graph} over {summary['inference']['columns']} real tokens; per word, its most typical tokens "
          f"| its commonest tokens in {TOPIC} sentences:")  # fmt: skip
    for key, found in typical.items():
        print(f"   {key}: {' '.join(found)} | {' '.join(in_topic[key])}")

    # 6. the page of everything
    stepwise.report(OUT / "report.html", graphs=[graph], ranking=[ranking], paths=paths, sorter=sorter,
                    inference=(ig, {f"class {TOPIC}": word_graph}, tokens), title="MiniLM: every method")  # fmt: skip
    print(f"6. wrote {OUT / 'report.html'}")

    summary["seconds"] = round(time.perf_counter() - start, 1)
    write_file(OUT / "summary.json", json.dumps(summary, indent=2) + "\n")
    print(f"wrote {OUT} in {summary['seconds']} s")
    return summary


if __name__ == "__main__":
    main()
