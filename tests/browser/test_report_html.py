"""The self-contained report.html opens in headless Chromium with no network and draws its charts."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.browser


def test_report_html_renders_its_charts_offline(benchmark_run, browser, screenshot):
    config, _, _ = benchmark_run
    report = f"{config.output_dir}/report.html"
    browser.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
    browser.get(f"file://{report}")
    WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".chart .main-svg")) >= 4)
    charts = browser.find_elements(By.CSS_SELECTOR, ".chart")
    assert len(charts) == 4
    assert all(c.find_elements(By.CSS_SELECTOR, ".main-svg") for c in charts)
    assert "int8" in browser.find_element(By.TAG_NAME, "pre").text
    screenshot("report_html")
