"""Serve the eBay simulator on a real port (``marketsync sandbox ebay``, the demo).

One port per channel: eBay's simulator listens beside Amazon's (8471) on 8472 by default,
so each plugin keeps its simulator to itself. ``speed`` runs simulated time faster than
trio's clock, as for Amazon.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from marketsync.core import clock

from .app import create_app
from .control import describe
from .scenario import load_scenario
from .world import World


def scaled_clock(speed: float, start: datetime | None = None) -> Callable[[], datetime]:
    if speed <= 0:
        raise ValueError(f"speed must be positive, not {speed}")
    anchor_wall, anchor = start or clock.now(), clock.monotonic()
    return lambda: anchor_wall + timedelta(seconds=(clock.monotonic() - anchor) * speed)


def credentials_text(world: World) -> str:
    info = describe(world)
    lines = [f"marketsync eBay simulator at {world.base_url} (simulated now {info['now']})"]
    for app in info["applications"]:
        lines += [f"  client_id      {app['clientId']}", f"  client_secret  {app['clientSecret']}",
                  f"  ru_name        {app['ruName']} -> {app['acceptUrl']}"]
    for account in info["accounts"]:
        lines.append(f"  seller {account['userId']}: {', '.join(account['marketplaces'])}")
        lines += [f"    refresh_token {token}" for token in account["refreshTokens"]]
    lines.append(f"  control API    {world.base_url}/_sandbox/")
    return "\n".join(lines)


async def serve(scenario_path: str | Path, host: str = "127.0.0.1", port: int = 8472,
                speed: float = 1.0, *,
                shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
                out: Callable[[str], None] = print,
                task_status: trio.TaskStatus[World] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve until cancelled; reports the ``World`` once the port is bound (0: any free)."""
    scenario = load_scenario(scenario_path)
    world = World(scenario, now=scaled_clock(speed, scenario.start),
                  base_url=f"http://{host}:{port}")
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(lambda task_status: hypercorn_serve(
            create_app(world), config, shutdown_trigger=shutdown_trigger,
            task_status=task_status))
        world.base_url = binds[0] if binds else world.base_url
        out(credentials_text(world))
        task_status.started(world)
