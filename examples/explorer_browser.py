"""The demo's page in headless Chromium: how long it takes to open (median of repeats, each in a fresh browser),
what it weighs, and a screenshot of it with a neuron clicked, for the README.

Run ``stepwise demo`` first (it writes ``results/demo/report.html``), then::

    python examples/explorer_browser.py [--page results/demo/report.html] [--repeats 7]

Writes ``results/explorer/report.png`` (the dependency-graph tab, a neuron's details open) and
``results/explorer/load.json`` (the figures printed: the load event, when the page is drawn and answers clicks;
the first chart, when plotly, run after the load event, has drawn the first tab's chart). Needs Debian's ``chromium`` and ``chromium-driver``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from stepwise.core.io import write_file

OUT = Path("results/explorer")


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1500,1000", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=Path, default=Path("results/demo/report.html"))
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    url = args.page.resolve().as_uri()
    loads, ready, walls, charts = [], [], [], []
    for repeat in range(args.repeats):  # each in a fresh browser: nothing of the page cached, as a user opens it
        chrome = browser()
        try:
            start = time.perf_counter()
            chrome.get(url)  # returns once the load event has fired
            walls.append(time.perf_counter() - start)
            timing = [0, 0, None]
            while not timing[1] or timing[2] is None:  # the load event's end, then the first chart drawn
                timing = chrome.execute_script(
                    "const t = performance.getEntriesByType('navigation')[0]; return [t.domContentLoadedEventEnd, "
                    "t.loadEventEnd, document.querySelector('.plot .main-svg') ? performance.now() : null];"
                )
                time.sleep(0.01)
            ready.append(timing[0] / 1000)
            loads.append(timing[1] / 1000)
            charts.append(timing[2] / 1000)
            if repeat == args.repeats - 1:
                graph = chrome.find_elements(By.CSS_SELECTOR, '[data-panel="dependency"] [data-graph]')[0]
                nodes = graph.find_elements(By.CSS_SELECTOR, "[data-key]")
                nodes[min(4, len(nodes) - 1)].click()
                OUT.mkdir(parents=True, exist_ok=True)
                write_file(OUT / "report.png", chrome.get_screenshot_as_png())
        finally:
            chrome.quit()
    figures = {
        "page": str(args.page),
        "bytes": args.page.stat().st_size,
        "repeats": args.repeats,
        "load_event_s_median": round(statistics.median(loads), 3),
        "dom_content_loaded_s_median": round(statistics.median(ready), 3),
        "wall_s_median": round(statistics.median(walls), 3),
        "first_chart_s_median": round(statistics.median(charts), 3),
        "load_event_s": [round(v, 3) for v in loads],
        "cpus": os.cpu_count(),
    }
    write_file(OUT / "load.json", json.dumps(figures, indent=1) + "\n")
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
