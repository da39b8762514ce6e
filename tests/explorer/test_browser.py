"""The demo's page in a real browser: Debian's headless Chromium driven by selenium, the page opened from
``file://``. Required where ``CI=true``; elsewhere skipped, with the reason, when no Chromium is installed."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.explorer.conftest import VIEWS, Page

#: Where the screenshot of the browser test goes (not committed: examples/explorer_browser.py takes the README's).
SCREENSHOT = Path(__file__).resolve().parents[2] / "results" / "explorer" / "browser_test.png"


def _browser_paths() -> tuple[str, str]:
    driver = shutil.which("chromedriver")
    browser = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
    if driver is None or browser is None:
        reason = (
            "no Chromium found: install Debian's chromium and chromium-driver packages (apt-get install -y chromium "
            "chromium-driver) to run the browser tests"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; they are required in CI")
        pytest.skip(reason)
    return browser, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    binary, driver = _browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1500,1000", "--disable-background-networking", "--no-first-run"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.set_page_load_timeout(60)
    yield chrome
    chrome.quit()


@pytest.fixture(scope="module")
def opened(browser: object, demo_folder: Path) -> object:
    browser.get((demo_folder / "report.html").resolve().as_uri())  # a fresh browser: its log is this page's
    return browser


def css(browser: object, selector: str) -> list:
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, selector)


def tab(browser: object, name: str) -> None:
    css(browser, f'[data-tab="{name}"]')[0].click()
    panels = {p.get_attribute("data-panel"): p.is_displayed() for p in css(browser, "[data-panel]")}
    assert panels == {view: view == name for view in VIEWS}


def details(browser: object) -> str:
    return css(browser, "#details")[0].text


def number(value: float) -> str:
    """As the page's script writes a number: an int as it is, else 4 significant digits."""
    rounded = float(f"{value:.4g}")
    if rounded.is_integer():
        return str(int(rounded))
    if abs(rounded) < 1e-6:  # JavaScript's Number.toString: 1.235e-7
        mantissa, exponent = f"{rounded:e}".split("e")
        return f"{float(mantissa):g}e{int(exponent)}"
    return np.format_float_positional(rounded, trim="-")


def test_clicking_a_neuron_shows_its_key_and_metrics(opened: object, demo_page: Page) -> None:
    tab(opened, "dependency")
    gid, entry = next(iter(demo_page.data["dependency"]["graphs"].items()))
    key = next(k for k, m in entry["metrics"].items() if m["relevance"] is not None)  # a neuron below the top
    node = css(opened, f'[data-graph="{gid}"] [data-key="{key}"]')[0]
    node.click()
    text = details(opened)
    metrics = entry["metrics"][key]
    assert text.startswith(key)
    assert f"relevance (mean ω) {number(metrics['relevance'])}" in text
    assert f"frequency {number(metrics['frequency'])}" in text
    assert f"interconnectedness {metrics['interconnectedness']}" in text
    edge = next(e for e in entry["edges"] if e["target"] == key)
    assert f"{edge['source']} {edge['count']} {number(edge['frequency'])}" in text  # its edge from above
    assert "selected" in node.get_attribute("class")


def test_every_tab_and_its_clickable_elements(opened: object) -> None:
    from selenium.webdriver.support.ui import Select

    for name in VIEWS:
        tab(opened, name)
        shown = [e for e in css(opened, f'[data-panel="{name}"] [data-key]') if e.is_displayed()]
        assert shown, f"nothing to click in {name}"
        shown[-1].click()
        assert shown[-1].get_attribute("data-key") in details(opened), name
    tab(opened, "inference")
    word = next(e for e in css(opened, '[data-panel="inference"] [data-key]') if e.is_displayed())
    word.click()
    assert "Representative patches" in details(opened) and css(opened, "#details .patch img")
    tab(opened, "sorter")
    css(opened, '[data-panel="sorter"] tr[data-key]')[0].click()
    assert css(opened, "#neuron-view .main-svg") and "Inputs per bin" in details(opened)
    tab(opened, "paths")
    Select(css(opened, 'select[data-select="paths-class"]')[0]).select_by_value("1")
    assert "class 1" in css(opened, "#paths-sankey")[0].text
    tab(opened, "perturbation")
    header = css(opened, '[data-panel="perturbation"] .choice:not([hidden]) table.sortable th')[2]
    header.click()
    assert header.get_attribute("data-order") == "ascending"


def test_no_error_in_the_console_and_no_request_off_the_disk(opened: object) -> None:
    errors = [entry for entry in opened.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
    urls = []
    for entry in opened.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    assert urls and all(url.startswith(("file:", "data:")) for url in urls), [u[:80] for u in urls]


def test_the_keyboard_opens_a_neuron_too(opened: object) -> None:
    from selenium.webdriver.common.keys import Keys

    tab(opened, "dependency")
    node = next(e for e in css(opened, '[data-panel="dependency"] g.node[data-key]') if e.is_displayed())
    opened.execute_script("arguments[0].focus();", node)
    node.send_keys(Keys.ENTER)
    assert details(opened).startswith(node.get_attribute("data-key"))
    assert not [e for e in opened.get_log("browser") if e["level"] == "SEVERE"]


def test_a_screenshot_of_the_page(opened: object) -> None:
    from matplotlib.image import imread

    tab(opened, "dependency")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert opened.save_screenshot(str(SCREENSHOT))
    pixels = imread(SCREENSHOT)
    assert pixels.shape[0] > 500 and pixels.std() > 0.05  # a page drawn, not a blank one


def test_a_word_of_tokens_marks_its_typical_token(browser: object, tmp_path: Path) -> None:
    """A page of a tiny BERT's inference graphs: a word's representatives are its sentences, the token marked."""
    pytest.importorskip("transformers", reason="the transformer tests need the transformers package")
    import stepwise
    from tests.helpers import sentences, tiny_bert

    model, batch = tiny_bert(), sentences(40)
    level = "transformer.encoder.layer.0.intermediate"
    ig = stepwise.InferenceGraphs(model, [level, "pool"], n_words=3, max_iter=5).fit(batch)
    tokens = [[f"t{int(t)}" for t in ids] for ids in batch["input_ids"]]
    path = stepwise.report(tmp_path / "page.html", inference=(ig, {"class 0": ig.class_graph(batch, 0, z=2)}, tokens))
    browser.get(path.resolve().as_uri())
    word = next(e for e in css(browser, '[data-panel="inference"] [data-key]')
                if e.get_attribute("data-key").startswith(level))  # fmt: skip
    word.click()
    first = ig.representatives(level, int(word.get_attribute("data-key").rsplit(":", 1)[1]), k=4)[0]
    sentence = css(browser, "#details .sentence")[0]
    assert sentence.find_element("css selector", "mark").text == tokens[first.input][first.position]
    assert sentence.text.split() == tokens[first.input][: int(batch["attention_mask"][first.input].sum())]
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
