"""The status page in headless Chromium at a desktop and a phone size: nothing pushes
Retry out of view, Connect goes through the simulator's consent page and comes back LIVE.

Screenshots of every case are written to ``test-screenshots/`` at the repository root
(ignored by git) so a person can look at what the test saw.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from marketsync.core.config.schema import parse_config
from marketsync.core.runtime.daemon import Daemon
from marketsync.core.runtime.states import IntegrationState
from marketsync.core.store import Store
from marketsync.core.store import job_runs
from marketsync.core.store.integrations import integration_id
from marketsync.core.web.server import serve_web
from marketsync.plugins.amazon.sandbox import World, create_app

from .conftest import APP_ID, CLIENT_ID, CLIENT_SECRET, ENV, EU, SANDBOX, config_text, scenario
from .test_status_page_browser import EU_ONLY, open_browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-screenshots"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
#: a job error as channels send them: long, and with a 300-character token in it
LONG_ERROR = ("SP-API answered 400 InvalidInput for orders/2026-01-01/orders: "
              + "x" * 300 + " " + "the request was rejected because " * 40)


@pytest.fixture
def real_clock():
    return trio.testing.MockClock(rate=1.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def show(driver, size: str) -> None:
    width, height = SIZES[size]
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": size == "phone"})


def screenshot(driver, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def measure_layout(url: str, profile: Path) -> dict:
    """Runs in a thread: the page at both sizes, with what overflows and where Retry is."""
    from selenium.webdriver.common.by import By

    driver = open_browser(profile)
    seen = {}
    try:
        driver.set_page_load_timeout(20)
        for size in SIZES:
            show(driver, size)
            driver.get(url)
            metrics = driver.execute_script("""
                const doc = document.documentElement;
                const buttons = [...document.querySelectorAll('button.retry-button')].map(b => {
                    const r = b.getBoundingClientRect();
                    return {left: r.left, right: r.right, width: r.width,
                            visible: r.width > 0 && r.height > 0};
                });
                return {scroll: doc.scrollWidth, client: doc.clientWidth,
                        inner: window.innerWidth, buttons: buttons,
                        planned: document.querySelectorAll('tr.planned').length,
                        short: document.querySelectorAll('tr.short-product').length};""")
            metrics["reason"] = driver.find_element(
                By.CSS_SELECTOR, "[data-alias='amazon-de'] .reason").text
            seen[size] = metrics
            screenshot(driver, f"status-{size}")
        return seen
    finally:
        driver.quit()


async def test_retry_stays_in_view_with_a_long_error_at_desktop_and_phone_sizes(
        make_daemon, world, real_clock, tmp_path):
    """A 2 000-character job error and a long state reason wrap inside their cards, as do
    a held push's plan of 150-character SKUs and a SHORT product: at 1280×800 and 390×844
    the page is no wider than the window and every Retry button is inside it."""
    world.revoke_refresh_tokens(seller_id=EU)
    daemon = make_daemon(integrations=EU_ONLY)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)

        def long_errors(session):
            uk = integration_id(session, "amazon-uk")
            job_runs.finished(session, uk, "import_orders", error=LONG_ERROR)
            from marketsync.core.store.integrations import set_state
            set_state(session, "amazon-de", "INCOMPLETE", "re-authorize the app: " + "y" * 400)
            held_with_long_skus(session, uk)

        await daemon.store.run(long_errors)
        url = await nursery.start(lambda task_status: serve_web(
            daemon, listen="127.0.0.1:0", task_status=task_status))
        with trio.fail_after(90):
            seen = await trio.to_thread.run_sync(measure_layout, url + "/",
                                                 tmp_path / "chromium-profile")
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()
    for size, (width, _) in SIZES.items():
        metrics = seen[size]
        assert metrics["inner"] == width, metrics
        assert metrics["scroll"] <= metrics["client"], f"{size}: page wider than the window"
        assert len(metrics["buttons"]) == 2
        for button in metrics["buttons"]:
            assert button["visible"] and 0 <= button["left"] and button["right"] <= width, \
                (size, button)
        assert metrics["reason"].startswith("re-authorize the app: yyy")
        assert metrics["planned"] == 3 and metrics["short"] == 1
    assert (SCREENSHOTS / "status-phone.png").stat().st_size > 1000


def held_with_long_skus(session, integration: int) -> None:
    """A valve hold (long reason) over a plan of long SKUs, and one of them SHORT."""
    from marketsync.core.domain import inventory, products
    from marketsync.core.store.models import IntegrationRow, Product
    from marketsync.core.types import ChannelListing

    skus = [f"{n}-" + "LONG-SKU-" * 16 for n in range(3)]
    products.apply_channel_listings(session, integration, [
        ChannelListing(channel_sku=sku, quantity=10) for sku in skus])
    for sku in skus:
        inventory.set_on_hand(session, sku, 0, note="a wrong file")
    row = session.get(IntegrationRow, integration)
    row.push_hold, row.push_hold_reason = "valve", "3 of 3 listings would go to 0 " * 20
    session.query(Product).filter_by(sku=skus[0]).one().reserved = 4


def connect_in_browser(url: str, profile: Path, size: str) -> dict:
    """Runs in a thread: click Connect, follow the channel's consent, return to status."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver = open_browser(profile)
    seen = {}
    try:
        driver.set_page_load_timeout(20)
        show(driver, size)
        driver.get(url)
        card = "[data-alias='amazon-uk']"
        seen["before"] = driver.find_element(By.CSS_SELECTOR, f"{card} .state").text
        button = driver.find_element(By.CSS_SELECTOR, f"{card} button.connect")
        seen["label"] = button.text
        screenshot(driver, f"connect-{size}-before")
        button.click()
        # our page -> the simulator's consent page -> its redirect to our callback
        try:
            WebDriverWait(driver, 20).until(
                expected_conditions.url_contains("/channels/amazon/callback"))
        except Exception as error:
            raise AssertionError(f"stuck at {driver.current_url}: "
                                 f"{driver.page_source[:1500]}") from error
        seen["callback"] = driver.find_element(By.TAG_NAME, "body").text
        driver.find_element(By.LINK_TEXT, "status").click()
        deadline = time.monotonic() + 30
        while (driver.find_element(By.CSS_SELECTOR, f"{card} .state").text != "LIVE"
               and time.monotonic() < deadline):
            time.sleep(0.3)
            driver.refresh()
        seen["after"] = driver.find_element(By.CSS_SELECTOR, f"{card} .state").text
        screenshot(driver, f"connect-{size}-after")
        return seen
    finally:
        driver.quit()


@pytest.mark.parametrize("size", list(SIZES))
async def test_connect_goes_through_the_consent_page_and_comes_back_live(
        real_clock, tmp_path, size):
    """The seller's grant was revoked: Connect on the page starts the consent flow, the
    simulator's Seller Central (on its own port) consents and sends the browser back to
    the callback, the new refresh token is stored and the integration is LIVE."""
    from marketsync.core import clock
    from marketsync.core.runtime import plugins as plugin_loading

    from .conftest import START

    daemon_port = free_port()
    callback = f"http://127.0.0.1:{daemon_port}/channels/amazon/callback"
    clock.set_start(START)
    world = World(scenario(applications=[{
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "application_id": APP_ID,
        "redirect_uris": [callback]}]), base_url=SANDBOX)
    world.revoke_refresh_tokens(seller_id=EU)
    tokens_before = set(world.accounts[EU].refresh_tokens)
    from hypercorn.config import Config as HypercornConfig
    from hypercorn.trio import serve

    served = HypercornConfig()
    served.bind = ["127.0.0.1:0"]
    served.accesslog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(lambda task_status: serve(
            create_app(world), served, task_status=task_status))
        world.base_url = binds[0]
        plugins = plugin_loading.build(load_entry_points=False)
        text = config_text(EU_ONLY, f"http:\n  listen: 127.0.0.1:{daemon_port}\n")
        config = parse_config(text.replace(SANDBOX, binds[0]), plugins.infos(),
                              filename=str(tmp_path / "marketsync.yaml"), environ=ENV)
        app = create_app(world)
        daemon = Daemon(config, plugins=plugins,
                        store=Store(f"sqlite:///{tmp_path / 'marketsync.sqlite'}"),
                        transport_factory=lambda account: httpx.ASGITransport(app=app))
        await nursery.start(daemon.serve)
        assert daemon.runners["amazon-uk"].state is IntegrationState.INCOMPLETE
        url = await nursery.start(serve_web, daemon)
        real_clock.jump(60)  # past the plugin's memory of the refused token
        with trio.fail_after(90):
            seen = await trio.to_thread.run_sync(connect_in_browser, url + "/",
                                                 tmp_path / "chromium-profile", size)
        state = daemon.runners["amazon-uk"].state
        stored = daemon.integrations["amazon-uk"].credentials["refresh_token"]
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()
    assert seen["before"] == "INCOMPLETE" and seen["label"] == "Reconnect"
    assert "connected amazon-uk" in seen["callback"]
    assert seen["after"] == "LIVE", seen
    assert state is IntegrationState.LIVE
    new_tokens = set(world.accounts[EU].refresh_tokens) - tokens_before
    assert stored in new_tokens  # issued by the simulator's consent, not the old grant
