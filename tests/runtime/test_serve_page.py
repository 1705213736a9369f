"""The page at ``/`` in a real headless Chromium (Debian's, driven by Selenium): upload, read the label."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM and DRIVER, ("the browser test needs chromium and chromedriver: run sh tests/install_browser.sh"
                                 " (the README's test command does), or apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1000,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    yield driver
    driver.quit()


def test_the_page_uploads_an_image_and_shows_the_top_labels_with_latency(exported, browser, start_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import Select, WebDriverWait

    proc, url = start_server(str(exported["onnx"]), f"cats={exported['onnx']}")
    try:
        browser.get(url)
        wait = WebDriverWait(browser, 60)
        wait.until(ready.text_to_be_present_in_element((By.ID, "status"), "Ready"))
        choice = Select(browser.find_element(By.ID, "model"))
        assert [o.get_attribute("value") for o in choice.options] == ["model", "cats"]
        choice.select_by_value("cats")
        image = sorted(exported["images"].rglob("*.png"))[0]
        browser.find_element(By.ID, "file").send_keys(str(image))
        wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#results .result")))
        labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#results .result .label")]
        status = browser.find_element(By.ID, "status").text
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert len(labels) == 3 and set(labels) == {"red", "green", "blue"}
    assert status.startswith("cats:") and " ms " in status
