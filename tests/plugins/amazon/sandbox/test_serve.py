"""Serving the simulator on a real loopback port with hypercorn's trio worker."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import partial

import httpx
import trio
import yaml

from marketsync.plugins.amazon.sandbox.scenario import SCENARIOS
from marketsync.plugins.amazon.sandbox.serve import scaled_clock, serve

from .conftest import CLIENT_ID, CLIENT_SECRET, NA, REFRESH, SMALL_SCENARIO


async def test_serves_a_scenario_on_an_ephemeral_loopback_port(tmp_path):
    """Real clock, real socket: log in, call an API, read the control API, shut down."""
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL_SCENARIO))
    printed: list[str] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            world = await nursery.start(partial(serve, path, "127.0.0.1", 0, 1.0, out=printed.append))
            assert world.base_url.startswith("http://127.0.0.1:") and not world.base_url.endswith(":0")
            async with httpx.AsyncClient(base_url=world.base_url, trust_env=False) as client:
                token = await client.post("/auth/o2/token", data={
                    "grant_type": "refresh_token", "refresh_token": REFRESH[NA],
                    "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
                assert token.status_code == 200
                answer = await client.get("/sellers/v1/marketplaceParticipations",
                                          headers={"x-amz-access-token": token.json()["access_token"]})
                assert answer.status_code == 200 and "x-amzn-RequestId" in answer.headers
                calls = (await client.get("/_sandbox/calls")).json()["calls"]
                assert [c["operation"] for c in calls] == ["lwaToken", "getMarketplaceParticipations"]
            nursery.cancel_scope.cancel()
    assert CLIENT_SECRET in printed[0] and REFRESH[NA] in printed[0] and world.base_url in printed[0]


async def test_shipped_scenarios_load_and_serve_their_credentials():
    for name in ("default", "demo"):
        printed: list[str] = []
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                world = await nursery.start(partial(serve, SCENARIOS / f"{name}.yaml", "127.0.0.1", 0, out=printed.append))
                assert world.orders, f"{name}: the history days should hold orders"
                nursery.cancel_scope.cancel()
        assert "refresh_token Atzr|" in printed[0]


async def test_speed_runs_simulated_time_faster(autojump_clock):
    start = datetime(2026, 11, 2, tzinfo=timezone.utc)
    now = scaled_clock(60.0, start)
    await trio.sleep(10)
    assert now() == start + timedelta(minutes=10)
