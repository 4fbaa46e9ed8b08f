"""The status page in a real browser: Debian's headless Chromium clicks Retry.

The daemon and its HTTP surface run on a loopback port on a clock that runs at real
speed (``MockClock(rate=1)``, which can also jump, so the Amazon plugin's 30 s memory of
a refused token is skipped instead of waited for). Chromium is driven by selenium through
Debian's chromedriver: nothing is downloaded. No Chromium is a failure, not a skip: CI
installs it.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import trio
import trio.testing

from marketsync.core.runtime.states import IntegrationState
from marketsync.core.web.server import serve_web

from .conftest import EU

CHROMIUM = os.environ.get("MARKETSYNC_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MARKETSYNC_CHROMEDRIVER", "/usr/bin/chromedriver")
EU_ONLY = [("amazon-uk", "eu", "UK"), ("amazon-de", "eu", "DE")]


@pytest.fixture
def real_clock():
    return trio.testing.MockClock(rate=1.0)


def open_browser(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(path), f"{path} is missing: install Debian's chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def state_of(driver, alias: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f"[data-alias='{alias}'] .state").text


def click_retry_and_watch(url: str, profile: Path) -> dict:
    """Runs in a thread: selenium blocks, the daemon must keep serving meanwhile."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver = open_browser(profile)
    try:
        driver.set_page_load_timeout(20)
        driver.get(url)
        seen = {"before": state_of(driver, "amazon-uk"), "other_before": state_of(driver, "amazon-de")}
        driver.find_element(By.CSS_SELECTOR, "[data-alias='amazon-uk'] button.retry-button").click()
        # the click posts, then the browser follows the redirect: wait for the new page
        seen["notice"] = WebDriverWait(driver, 20).until(
            expected_conditions.presence_of_element_located((By.ID, "notice"))).text
        deadline = time.monotonic() + 30
        while state_of(driver, "amazon-uk") != "LIVE" and time.monotonic() < deadline:
            time.sleep(0.3)
            driver.refresh()
        seen["after"] = state_of(driver, "amazon-uk")
        seen["other_after"] = state_of(driver, "amazon-de")
        seen["url"] = driver.current_url
        return seen
    finally:
        driver.quit()


async def test_clicking_retry_brings_the_integration_back(make_daemon, world, real_clock, tmp_path):
    """An integration INCOMPLETE at start (its grant was revoked) goes LIVE after the
    seller grants access again and someone clicks its Retry button; the other one,
    not retried, stays INCOMPLETE."""
    world.revoke_refresh_tokens(seller_id=EU)
    daemon = make_daemon(integrations=EU_ONLY)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        assert daemon.runners["amazon-uk"].state is IntegrationState.INCOMPLETE
        url = await nursery.start(lambda task_status: serve_web(
            daemon, listen="127.0.0.1:0", task_status=task_status))
        for grant in world.grants.values():  # the seller consents again
            if grant.seller_id == EU:
                grant.revoked = False
        real_clock.jump(60)  # past the plugin's memory of the refusal
        with trio.fail_after(90):
            seen = await trio.to_thread.run_sync(click_retry_and_watch, url + "/",
                                                 tmp_path / "chromium-profile")
        states = {alias: runner.state for alias, runner in daemon.runners.items()}
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()
    assert seen["before"] == "INCOMPLETE" and seen["other_before"] == "INCOMPLETE"
    assert seen["notice"] == "retry requested for amazon-uk"
    assert seen["after"] == "LIVE", seen
    assert seen["other_after"] == "INCOMPLETE"
    assert states["amazon-uk"] is IntegrationState.LIVE
    assert states["amazon-de"] is IntegrationState.INCOMPLETE
