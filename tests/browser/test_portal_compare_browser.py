"""The benchmark pages in headless Chromium: a run's variants and details, and three runs compared."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from support.runs import record_compare_runs

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CHARTS = ("size", "latency", "fidelity", "tradeoff")


@pytest.fixture
def runs(portal_report, django_user_model):
    user = django_user_model.objects.create_user("ada", password="correct horse battery")
    return record_compare_runs(portal_report, user)


def _log_in(browser, live_server):
    browser.get(live_server.url + "/accounts/login/")
    browser.find_element(By.NAME, "username").send_keys("ada")
    browser.find_element(By.NAME, "password").send_keys("correct horse battery")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 30).until(EC.presence_of_element_located((By.CSS_SELECTOR, "table.runs")))


def _drawn(browser, selector: str) -> list:
    """The elements matching ``selector`` once plotly has drawn into every one of them."""

    def all_drawn(driver):
        found = driver.find_elements(By.CSS_SELECTOR, selector)
        return found if found and all(el.find_elements(By.CSS_SELECTOR, ".main-svg") for el in found) else False

    return WebDriverWait(browser, 30).until(all_drawn)


def test_three_runs_are_ticked_compared_and_charted(live_server, browser, screenshot, runs):
    finished, failed = runs
    _log_in(browser, live_server)
    for run in [*finished, failed]:
        browser.find_element(By.CSS_SELECTOR, f"input[name=ids][value='{run.pk}']").click()
    browser.find_element(By.CSS_SELECTOR, "[data-compare]").click()
    WebDriverWait(browser, 30).until(EC.url_contains("/runs/compare/"))

    charts = _drawn(browser, ".chart")
    assert [c.get_attribute("id") for c in charts] == [f"chart-{name}" for name in CHARTS]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-size .bars .point")) == 15, "3 runs x 5 variants"
    ticks = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#chart-size .xtick text")]
    assert f"r{finished[0].pk} int8" in ticks and not any(t.startswith(f"r{failed.pk} ") for t in ticks)
    status = browser.find_element(By.CSS_SELECTOR, f"tr[data-run='{failed.pk}']").text
    assert "Failed" in status and "not charted" in status
    shot = screenshot("compare-page")
    assert shot.stat().st_size > 20_000


def test_a_benchmark_run_page_draws_its_charts_and_disagreements(live_server, browser, screenshot, runs):
    finished, _ = runs
    _log_in(browser, live_server)
    browser.get(live_server.url + finished[0].get_absolute_url())
    charts = _drawn(browser, "#variants .chart")
    assert [c.get_attribute("id") for c in charts] == [f"chart-{name}" for name in CHARTS]
    assert _drawn(browser, "#chart-layers-int8")
    thumbs = browser.find_elements(By.CSS_SELECTOR, "#disagreements img")
    assert len(thumbs) == 6 and all(browser.execute_script("return arguments[0].naturalWidth", t) > 0 for t in thumbs)
    screenshot("benchmark-run-page")
