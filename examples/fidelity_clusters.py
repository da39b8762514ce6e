"""SSA paper, Fig. 4a and section 4.2.1, re-measured on digits: which classes' graphs cluster together, and
whether that survives re-training with another seed.

The paper turns the 10 class graphs of VGG16 into bag-of-nodes vectors, clusters them with Ward's method on cosine
distance and finds three small clusters, two of semantically similar classes (the sharks, the elephants).

Here the shipped model (seed 0) and four models trained the same way with seeds 1 to 4
(``examples/train_digits.py``) each give 10 class graphs (branching 3, the first 100 training images per class
classified correctly with probability >= 0.99), clustered with :func:`stepwise.cluster_graphs` and cut into 3
flat clusters. Neuron indices mean nothing across seeds, so only the class structure is compared:

- per seed: the flat clusters, the first pair merged (the two most similar graphs), the held-out accuracy, the
  graph sizes and which traversals stopped before the bottom level;
- stability: the adjusted Rand index (ARI) of the flat clusters between every two seeds, beside its distribution
  when one seed's labels are permuted at random (1000 permutations: what chance agreement looks like), the
  co-clustering matrix (in how many seeds two classes share a flat cluster; how many pairs share one in all seeds
  but one, beside that count when each seed's labels are shuffled), and the Spearman correlation of the
  45 pairwise graph similarities (cosine of bag-of-nodes vectors) between seeds;
- meaning: the Spearman correlation between a seed's graph similarities and the pixel-space cosine similarity of
  the class mean images (do visually similar digits get similar graphs?).

Writes ``results/fidelity/clusters.json`` and ``results/fidelity/coclustering.png``. Run from the repository root:
``python examples/fidelity_clusters.py`` (four trainings of seconds to minutes each, then a minute).
"""

from __future__ import annotations

import itertools
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from fidelity_common import LEVELS, confident_inputs, float64_model, save_json, save_png
from scipy.stats import spearmanr
from sklearn.metrics import adjusted_rand_score

import stepwise
from stepwise.models import DigitsData, digits_data

SEEDS = (0, 1, 2, 3, 4)
N_CLUSTERS = 3
PERMUTATIONS = 1000
CLASSES = [str(c) for c in range(10)]


def cosine_similarity(frame: np.ndarray) -> np.ndarray:
    unit = frame / np.linalg.norm(frame, axis=1, keepdims=True)
    return unit @ unit.T


def analyse(model: torch.nn.Module, data: DigitsData) -> dict[str, object]:
    """Class graphs of one model, their clustering and pairwise similarities."""
    ssa = stepwise.StepwiseSensitivity(model, LEVELS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        graphs = {str(c): ssa.dependency_graph(x, target=c) for c, x in confident_inputs(model, data).items()}
    result = stepwise.cluster_graphs(graphs, n_clusters=N_CLUSTERS)
    first = [CLASSES[int(i)] for i in result.linkage[0, :2]]
    with torch.no_grad():
        predictions = model(data.images[data.test].double()).argmax(1)
    return {
        "test_accuracy": float((predictions == data.labels[data.test]).double().mean()),
        "nodes": {label: len(graph) for label, graph in graphs.items()},
        "stopped_at": {
            label: graph.attrs["stopped_at"] for label, graph in graphs.items() if "stopped_at" in graph.attrs
        },
        "labels": [int(result.labels[label]) for label in CLASSES],
        "clusters": _groups([int(result.labels[label]) for label in CLASSES]),
        "leaf_order": [str(label) for label in result.leaf_labels],
        "first_merge": first,
        "similarity": cosine_similarity(result.frame.loc[CLASSES].to_numpy(dtype=np.float64)).tolist(),
    }


def _groups(labels: list[int]) -> list[list[str]]:
    groups: dict[int, list[str]] = {}
    for label, cluster in zip(CLASSES, labels):
        groups.setdefault(cluster, []).append(label)
    return sorted(groups.values(), key=lambda g: (-len(g), g))


def _pairs(matrix: np.ndarray) -> np.ndarray:
    rows, columns = np.triu_indices(len(matrix), k=1)
    return np.asarray(matrix)[rows, columns]


def main() -> dict:
    from train_digits import train

    data = digits_data()
    runs = {}
    for seed in SEEDS:
        if seed == 0:
            model = float64_model()  # the shipped model is seed 0 of the same recipe
        else:
            print(f"training seed {seed} ...")
            model = train(seed, log=None).model.double().eval()
        runs[seed] = analyse(model, data)
        print(
            f"seed {seed}: accuracy {runs[seed]['test_accuracy']:.4f}, clusters {runs[seed]['clusters']}, "
            f"first merge {runs[seed]['first_merge']}, {10 - len(runs[seed]['stopped_at'])} of 10 graphs reach the "
            "bottom level"
        )

    generator = np.random.default_rng(0)
    ari, null = {}, []
    for a, b in itertools.combinations(SEEDS, 2):
        ari[f"{a}-{b}"] = adjusted_rand_score(runs[a]["labels"], runs[b]["labels"])
        null += [
            adjusted_rand_score(runs[a]["labels"], generator.permutation(runs[b]["labels"]))
            for _ in range(PERMUTATIONS // 10)
        ]
    together = np.zeros((10, 10))
    for run in runs.values():
        labels = np.array(run["labels"])
        together += labels[:, None] == labels[None, :]
    similarity_rho = {
        f"{a}-{b}": float(spearmanr(_pairs(runs[a]["similarity"]), _pairs(runs[b]["similarity"]))[0])
        for a, b in itertools.combinations(SEEDS, 2)
    }
    means = torch.stack([data.images[data.train][data.labels[data.train] == c].mean(0).flatten() for c in range(10)])
    pixels = cosine_similarity(means.double().numpy())
    pixel_rho = {seed: float(spearmanr(_pairs(run["similarity"]), _pairs(pixels))[0]) for seed, run in runs.items()}
    chance_pairs = []  # pairs together in at least all seeds but one, when each seed's labels are shuffled
    for _ in range(PERMUTATIONS):
        shuffled = np.zeros((10, 10))
        for run in runs.values():
            labels = generator.permutation(run["labels"])
            shuffled += labels[:, None] == labels[None, :]
        chance_pairs.append(int((_pairs(shuffled) >= len(SEEDS) - 1).sum()))
    stable_pairs = [
        [CLASSES[i], CLASSES[j], int(together[i, j])]
        for i, j in zip(*np.triu_indices(10, k=1))
        if together[i, j] >= len(SEEDS) - 1
    ]
    record = {
        "seeds": {str(seed): run for seed, run in runs.items()},
        "ari_between_seeds": ari,
        "ari_mean": float(np.mean(list(ari.values()))),
        "ari_chance_mean": float(np.mean(null)),
        "ari_chance_95th_percentile": float(np.quantile(null, 0.95)),
        "coclustering": together.astype(int).tolist(),
        "pairs_together_in_at_least_4_seeds": stable_pairs,
        "pairs_together_in_at_least_4_seeds_chance_mean": float(np.mean(chance_pairs)),
        "pairs_together_in_at_least_4_seeds_chance_95th_percentile": float(np.quantile(chance_pairs, 0.95)),
        "similarity_spearman_between_seeds": similarity_rho,
        "similarity_spearman_mean": float(np.mean(list(similarity_rho.values()))),
        "pixel_similarity_spearman": pixel_rho,
        "closest_pixel_pairs": [
            [CLASSES[i], CLASSES[j], float(pixels[i, j])]
            for i, j in sorted(zip(*np.triu_indices(10, k=1)), key=lambda p: -pixels[p])[:5]
        ],
    }
    save_json("clusters.json", record)

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    sns.heatmap(
        together,
        annot=True,
        fmt=".0f",
        cmap="Reds",
        vmin=0,
        vmax=len(SEEDS),
        xticklabels=CLASSES,
        yticklabels=CLASSES,
        cbar_kws={"label": "seeds"},
        ax=ax,
    )
    ax.set_title(f"Classes in one of {N_CLUSTERS} flat clusters, over {len(SEEDS)} training seeds", fontsize=10)
    save_png(fig, "coclustering.png")

    print(
        f"\nARI of the flat clusters between seeds: mean {record['ari_mean']:.2f} (chance: mean "
        f"{record['ari_chance_mean']:.2f}, 95th percentile {record['ari_chance_95th_percentile']:.2f})"
    )
    print(
        f"pairs in one cluster in at least {len(SEEDS) - 1} of {len(SEEDS)} seeds: {stable_pairs} (chance: "
        f"{np.mean(chance_pairs):.1f} such pairs on average, 95th percentile {np.quantile(chance_pairs, 0.95):.0f})"
    )
    print(f"Spearman of graph similarities between seeds: mean {record['similarity_spearman_mean']:.2f}")
    print(f"Spearman of graph similarity with pixel similarity of class means, per seed: {pixel_rho}")
    return record


if __name__ == "__main__":
    main()
