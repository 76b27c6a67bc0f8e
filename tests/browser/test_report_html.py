"""The self-contained report.html opens in headless Chromium with no network request and shows its tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.browser


def test_report_html_has_a_variants_table_and_its_charts_and_opens_offline(benchmark_run, browser, screenshot):
    config, report, _ = benchmark_run
    page = Path(config.output_dir) / "report.html"
    text = page.read_text()
    assert str(Path(config.output_dir).parent) not in text, "no path of the machine that made it"
    assert "<pre" not in text and "wrote " not in text
    browser.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
    browser.get(page.as_uri())
    WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".chart .main-svg")) >= 4)
    charts = browser.find_elements(By.CSS_SELECTOR, ".chart")
    assert len(charts) == 4 and all(c.find_elements(By.CSS_SELECTOR, ".main-svg") for c in charts)
    rows = browser.find_elements(By.CSS_SELECTOR, "#variants table.variants tbody tr:not(.reference)")
    labels = [r.find_element(By.CSS_SELECTOR, "td .tag").text for r in rows]
    assert labels == [v.variant for v in report.variants], "one row per variant"
    int8 = rows[labels.index("int8")]
    assert "(" in int8.text and "–" in int8.text, "top-1 agreement with its interval"
    assert int8.find_element(By.CSS_SELECTOR, "[data-micro]").text, "the TFLite Micro arena"
    assert browser.find_elements(By.CSS_SELECTOR, "table.layer-errors tbody tr"), "the per-layer table"
    # Nothing was fetched: no resource entries at all (the script, styles and thumbnails are inline).
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    sources = browser.execute_script(
        "return [...document.querySelectorAll('[src],[href]')].map(e => e.getAttribute('src') || e.getAttribute('href'))"
    )
    assert all(s.startswith("data:") for s in sources), sources
    screenshot("report_html")
