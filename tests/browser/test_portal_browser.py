"""A person's day in the portal, in headless Chromium: log in, launch a run, watch it finish, see the
charts, download the artifact."""

from __future__ import annotations

import hashlib

import django_rq
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from support.files import register_tiny
from support.workers import WorkerPool, purge_queue, wait_for

from conversions.models import ConversionRun

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def portal(settings, tmp_path, django_user_model):
    settings.MEDIA_ROOT = tmp_path / "media"
    user = django_user_model.objects.create_superuser("ada", password="correct horse battery")
    queue = django_rq.get_queue(settings.RQ_QUEUE_NAME)
    purge_queue(queue)
    pool = WorkerPool(tmp_path)
    yield user, register_tiny(tmp_path, user), pool
    pool.close()
    purge_queue(queue)


def test_log_in_launch_watch_and_download(live_server, browser, screenshot, portal):
    user, (checkpoint, dataset), workers = portal
    wait = WebDriverWait(browser, 30)

    browser.get(live_server.url + "/")
    assert "/accounts/login/" in browser.current_url, "anonymous users are sent to log in"
    browser.find_element(By.NAME, "username").send_keys("ada")
    browser.find_element(By.NAME, "password").send_keys("correct horse battery")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "table.runs")))

    browser.find_element(By.LINK_TEXT, "New run").click()
    browser.find_element(By.CSS_SELECTOR, f"#id_checkpoint option[value='{checkpoint.pk}']").click()
    browser.find_element(By.CSS_SELECTOR, f"#id_dataset option[value='{dataset.pk}']").click()
    browser.find_element(By.CSS_SELECTOR, "input[name=variants][value=float32]").click()  # int8 is ticked already
    samples = browser.find_element(By.NAME, "num_calib_samples")
    samples.clear()
    samples.send_keys("8")
    browser.find_element(By.CSS_SELECTOR, "form.form button[type=submit]").click()
    wait.until(EC.url_matches(r"/runs/\d+/$"))  # not /runs/new/, the page the form is on
    run = ConversionRun.objects.get()
    assert browser.current_url.endswith(run.get_absolute_url())
    assert "Queued" in browser.find_element(By.CSS_SELECTOR, "[data-status]").text

    workers.start(burst=False)
    wait_for(lambda: ConversionRun.objects.filter(pk=run.pk, status="running").exists(), 60, what="the worker")
    WebDriverWait(browser, 30).until(  # the page polls and shows the stage live
        lambda d: d.find_element(By.CSS_SELECTOR, "[data-status]").text in ("Running", "Succeeded")
    )
    WebDriverWait(browser, 180).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "[data-status]").text in ("Succeeded", "Failed")
    )
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#chart-tradeoff .main-svg")))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-size .bars .point")) == 2, "size of both variants"
    latency = browser.execute_script("return document.getElementById('chart-latency').data.map(t => [t.name, t.x])")
    # A run of several variants is timed at 1 and 2 threads: one series per thread count, one bar per variant.
    assert latency == [["1 thread", ["float32", "int8"]], ["2 threads", ["float32", "int8"]]]
    traces = browser.execute_script("return document.getElementById('chart-fidelity').data.map(t => t.x)")
    assert traces and all(x == ["float32", "int8"] for x in traces), "agreement and accuracy of both variants"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-tradeoff .scatterlayer .point")) == 2
    shot = screenshot("run-page")
    assert shot.stat().st_size > 10_000

    artifact = run.artifacts.get(variant="int8")
    browser.find_element(By.LINK_TEXT, artifact.filename).click()
    downloaded = wait_for(lambda: next((p for p in browser.downloads.glob(artifact.filename)), None), 30,
                          what="the download")  # fmt: skip
    wait_for(lambda: not list(browser.downloads.glob("*.crdownload")), 30, what="the download to complete")
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == artifact.sha256

    browser.get(live_server.url + "/")
    row = browser.find_element(By.CSS_SELECTOR, "table.runs tbody tr")
    assert f"#{run.pk}" in row.text and "Succeeded" in row.text and "tiny" in row.text
    screenshot("history-page")
