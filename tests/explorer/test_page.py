"""The page of a results folder, read as HTML: offline, the data block equal to the files, one element per node."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import stepwise
from stepwise.cli import main
from tests.explorer.conftest import VIEWS, Page, parse


def test_the_page_has_a_tab_per_result_and_the_details_panel(demo_page: Page) -> None:
    tabs = [e.attrs["data-tab"] for e in demo_page.elements if "data-tab" in e.attrs]
    assert tabs == VIEWS and demo_page.data["views"] == VIEWS
    assert [e.attrs["data-panel"] for e in demo_page.elements if "data-panel" in e.attrs] == VIEWS
    assert sum(e.attrs.get("id") == "details" for e in demo_page.elements) == 1


def test_nothing_is_fetched_from_the_network(demo_folder: Path, demo_page: Page) -> None:
    for element in demo_page.elements:
        for name in ("src", "href", "action", "data", "poster"):
            value = element.attrs.get(name, "")
            assert not re.match(r"\s*(https?:|//)", value, re.I), f"<{element.tag} {name}={value[:80]}>"
    sources = [e.attrs["src"] for e in demo_page.elements if "src" in e.attrs]
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not any(e.tag in ("link", "iframe") for e in demo_page.elements)
    assert all("src" not in attrs for attrs, _ in demo_page.scripts)  # every script inline
    text = (demo_folder / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"url\(\s*['\"]?https?:", text), "a style loads something from the network"


def test_the_page_stays_small(demo_folder: Path) -> None:
    assert (demo_folder / "report.html").stat().st_size < 15 * 2**20


def graph_files(folder: Path) -> dict[str, stepwise.LayeredGraph]:
    return {path.stem: stepwise.read_graph(path) for path in sorted(folder.glob("class_*.json"))}


@pytest.mark.parametrize("view, folder", [("dependency", "."), ("inference", "inference")])
def test_the_data_block_holds_the_numbers_of_the_graph_files(
    demo_folder: Path, demo_page: Page, view: str, folder: str
) -> None:
    files = graph_files(demo_folder / folder)
    held = {g["label"]: g for g in demo_page.data[view]["graphs"].values()}
    assert sorted(held) == sorted(stem.replace("_", " ") for stem in files)
    for stem, graph in files.items():
        entry = held[stem.replace("_", " ")]
        assert entry["nodes"] == {key: dict(data) for key, data in graph.nodes(data=True)}
        edges = {
            (e["source"], e["target"]): {k: v for k, v in e.items() if k not in ("source", "target")}
            for e in entry["edges"]
        }
        assert edges == {(u, v): dict(data) for u, v, data in graph.edges(data=True)}
        assert entry["attrs"] == graph.attrs


def test_the_paths_graph_and_its_tables(demo_folder: Path, demo_page: Page) -> None:
    graph = stepwise.read_graph(demo_folder / "paths" / "paths.json")
    held = demo_page.data["paths"]["graph"]
    assert held["nodes"] == {key: dict(data) for key, data in graph.nodes(data=True)}
    assert len(held["edges"]) == len(graph.edges)
    keys = [e.attrs["data-key"] for e in demo_page.elements if e.panel == "paths" and "data-key" in e.attrs]
    assert sorted(keys) == sorted(graph.nodes)  # one clickable row per cluster
    figure = demo_page.data["paths"]["figures"]["all"]
    sankey = next(trace for trace in figure["data"] if trace["type"] == "sankey")
    assignments = pd.read_csv(demo_folder / "paths" / "assignments.csv")
    assert sum(sankey["link"]["value"]) == len(assignments) * (len(graph.levels) - 1)  # every input in every flow
    for c in (0, 1):
        one = next(t for t in demo_page.data["paths"]["figures"][str(c)]["data"] if t["type"] == "sankey")
        assert sum(one["link"]["value"]) == int((assignments["class"] == c).sum()) * (len(graph.levels) - 1)


def test_one_element_per_node_of_every_graph_drawn(demo_page: Page) -> None:
    for view in ("dependency", "inference"):
        for gid, entry in demo_page.data[view]["graphs"].items():
            keys = [e.attrs["data-key"] for e in demo_page.elements if e.graph == gid and "data-key" in e.attrs]
            assert sorted(keys) == sorted(entry["nodes"]), gid
            assert all(re.fullmatch(r".+:\d+", k) for k in keys)


def test_the_perturbation_rows_are_the_table_of_the_folder(demo_folder: Path, demo_page: Page) -> None:
    table = pd.read_csv(demo_folder / "perturbation.csv")
    held = demo_page.data["perturbation"]["inputs"]
    assert sorted(int(i) for i in held) == sorted(set(table["input"]))
    for number, rows in table.groupby("input"):
        entry = held[str(number)]
        assert list(entry["rows"]) == [f"{lv}:{n}" for lv, n in zip(rows["level"], rows["neuron"])]
        for (_, row), (key, shown) in zip(rows.iterrows(), entry["rows"].items()):
            for column in ("correlation", "precision", "weight_sum", "correlation_rank"):
                expected = row[column]
                assert (
                    (shown[column] is None)
                    if pd.isna(expected)
                    else shown[column] == pytest.approx(expected, rel=1e-12)
                ), (key, column)
    rows = [
        e.attrs["data-key"]
        for e in demo_page.elements
        if e.panel == "perturbation" and e.tag == "tr" and "data-key" in e.attrs
    ]
    assert len(rows) == len(table)
    patches = pd.read_csv(demo_folder / "patches.csv")
    boxes = [e for e in demo_page.elements if e.panel == "perturbation" and e.tag == "span" and "data-key" in e.attrs]
    assert sorted(e.attrs["data-key"] for e in boxes) == sorted(
        f"{lv}:{n}" for lv, n in zip(patches["level"], patches["neuron"])
    )
    assert patches["input"].isin(table["input"]).all() and set(patches["level"]) < set(table["level"])


def test_the_sorter_counts_are_histograms_of_the_saved_values(demo_folder: Path, demo_page: Page) -> None:
    folder = demo_folder / "sort"
    inputs = pd.read_csv(folder / "inputs.csv")
    levels = json.loads((folder / "sort.json").read_text())["levels"]
    held = demo_page.data["sorter"]
    assert list(held["levels"]) == levels and held["classes"] == sorted(set(inputs["label"]))
    known = {str(n): [int(a), int(b)] for n, a, b in zip(inputs["input"], inputs["label"], inputs["predicted"])}
    assert held["inputs"] and all(known[n] == pair for n, pair in held["inputs"].items())
    for level in levels:
        values = np.load(folder / f"values_{level}.npy")
        for key, neuron in held["levels"][level].items():
            n = neuron["neuron"]
            assert key == f"{level}:{n}"
            edges = np.array(neuron["edges"])
            counts = np.array(neuron["counts"])
            if len(edges) == 2 and edges[0] == edges[1]:  # a constant neuron: every input in bin 0
                assert counts[0].sum() == len(values) and counts[1:].sum() == 0
                continue
            for k, c in enumerate(held["classes"]):
                direct, _ = np.histogram(values[inputs["label"].to_numpy() == c, n], bins=edges)
                assert counts[:, k].tolist() == direct.tolist(), (key, c)
            for b, numbers in enumerate(neuron["members"]):
                assert len(numbers) == min(neuron["sizes"][b], 12)
                rows = inputs.index[inputs["input"].isin(numbers)]
                assert all(edges[b] <= v <= edges[b + 1] for v in values[rows, n])


def test_the_word_representatives_come_with_their_pixels(demo_folder: Path, demo_page: Page) -> None:
    held = demo_page.data["inference"]
    reps = pd.read_csv(demo_folder / "inference" / "representatives.csv")
    for gid, entry in held["graphs"].items():
        c = int(entry["label"].split()[1])
        for key in entry["nodes"]:
            level, word = key.rsplit(":", 1)
            rows = reps[(reps["class"] == c) & (reps["level"] == level) & (reps["word"] == int(word))]
            assert [r[0] for r in held["representatives"][gid][key]] == rows["input"].tolist()
    assert set(held["images"]) == {str(i) for i in reps["input"]}


def test_a_string_cannot_close_the_data_block(tmp_path: Path) -> None:
    import networkx as nx

    hostile = "</script><script>alert(1)</script><!-- -->"
    g = nx.DiGraph(levels=["fc", "softmax"], target=1, model=hostile)
    g.add_node("softmax:1", level="softmax", index=1, depth=0)
    g.add_node("fc:0", level="fc", index=0, depth=1)
    g.add_edge("softmax:1", "fc:0", count=3, frequency=0.75, relevance=-0.125, sign=-1)
    page_path = stepwise.report(tmp_path / "page.html", graphs={"mine": stepwise.DependencyGraph(g)}, title=hostile)
    page = parse(page_path)
    assert page.data["dependency"]["graphs"]["dependency-0"]["attrs"]["model"] == hostile
    assert page.data["title"] == hostile
    types = [attrs.get("type") for attrs, _ in page.scripts]
    assert types == ["application/json", "text/plain", None]  # the data, plotly's code, the page's script
    assert "alert(1)" not in "".join(text for attrs, text in page.scripts if attrs.get("type") != "application/json")


def test_report_replaces_an_existing_page_whole(
    demo_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "page.html"
    out.write_text("an old page")
    assert main(["report", str(demo_folder / "paths"), "--out", str(out), "--quiet"]) == 0
    page = parse(out)
    assert page.data["views"] == ["paths"]
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]  # no temporary file left


def test_a_damaged_graph_file_is_named(demo_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import shutil

    folder = tmp_path / "results"
    shutil.copytree(demo_folder, folder, ignore=shutil.ignore_patterns("paths", "inference", "sort", "*.png"))
    text = (folder / "class_1.json").read_text()
    (folder / "class_1.json").write_text(text[: len(text) // 2])
    (folder / "report.html").write_text("the page of before")
    assert main(["report", str(folder), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "class_1.json" in err and "error:" in err
    assert (folder / "report.html").read_text() == "the page of before"  # nothing half-written


def test_a_folder_of_one_command(demo_folder: Path, tmp_path: Path) -> None:
    """``stepwise sort`` and ``stepwise inference`` folders alone: their own tab, nothing else."""
    for name, view in (("sort", "sorter"), ("inference", "inference")):
        out = tmp_path / f"{name}.html"
        assert main(["report", str(demo_folder / name), "--out", str(out), "--quiet"]) == 0
        assert parse(out).data["views"] == [view]


def test_the_patches_file_holds_the_boxes_of_the_top_neurons(demo_folder: Path) -> None:
    """``patches.csv`` of the demo against the ranking computed again (same model, input, resamples and seed)."""
    import perturb
    from stepwise.models import digits_cnn, digits_data

    table = pd.read_csv(demo_folder / "perturbation.csv")
    number, target = (int(v) for v in table[["input", "target"]].iloc[0])
    levels = json.loads((demo_folder / "summary.json").read_text())["levels"]
    ranking = perturb.rank_neurons(digits_cnn().double(), digits_data().images[number].double(), levels,
                                   target=target, n_samples=8, sigma=0.1, seed=0)  # fmt: skip
    expected = [(level, p.neuron, " ".join(map(str, p.box)) if p.box else "")
                for level, found in perturb.top_patches(ranking, 5).items() for p in found]  # fmt: skip
    written = pd.read_csv(demo_folder / "patches.csv", keep_default_na=False)
    written = written[written["input"] == number]
    assert list(zip(written["level"], written["neuron"], written["box"])) == expected


def test_other_json_files_are_left_alone(demo_folder: Path, tmp_path: Path) -> None:
    """A checkpoint or a script's figures beside the results are not graphs: the page is built without them."""
    import shutil

    folder = tmp_path / "results"
    shutil.copytree(demo_folder / "inference", folder)
    (folder / "notes.json").write_text('{"seconds": [1, 2]}')
    (folder / "class_0.checkpoint.json").write_text("[]")
    assert main(["report", str(folder), "--quiet"]) == 0
    assert parse(folder / "report.html").data["views"] == ["inference"]


def test_a_damaged_thumbnails_file_is_named(demo_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import shutil

    folder = tmp_path / "sort"
    shutil.copytree(demo_folder / "sort", folder)
    data = (folder / "thumbnails.npz").read_bytes()
    (folder / "thumbnails.npz").write_bytes(data[: len(data) // 3])
    assert main(["report", str(folder), "--quiet"]) == 1
    assert "thumbnails.npz: a damaged thumbnails file" in capsys.readouterr().err


def test_the_flat_clusters_of_the_folder(demo_folder: Path, demo_page: Page) -> None:
    """The clustermap is cut into as many clusters as the folder's summary records (``--clusters``)."""
    recorded = json.loads((demo_folder / "summary.json").read_text())["clusters"]["labels"]
    held = demo_page.data["dependency"]["clusters"]
    assert dict(zip(held["graphs"], held["flat"])) == {f"class {c}": k for c, k in recorded.items()}


def test_each_picker_shows_one_choice_at_first(demo_page: Page) -> None:
    """The blocks a picker switches: one shown, the one of its first option, the others hidden."""
    pickers = {e.attrs["data-select"] for e in demo_page.elements if "data-select" in e.attrs}
    for name in pickers - {"paths-class"}:  # the Sankey's class filter redraws one chart
        blocks = [e for e in demo_page.elements if e.attrs.get("data-choice") == name]
        shown = [e.attrs["data-value"] for e in blocks if "hidden" not in e.attrs]
        assert len(blocks) >= 1 and shown == [blocks[0].attrs["data-value"]], name
