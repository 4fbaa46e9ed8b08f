"""Serve the simulator on a real port (``marketsync sandbox serve``, demos, end-to-end tests).

hypercorn's trio worker keeps the simulator in the same structured-concurrency world as the
daemon. ``speed`` runs simulated time faster than the wall clock (a demo day in minutes);
the world's clock is then the wall clock at start plus ``speed`` × elapsed trio time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Awaitable, Callable

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from marketsync.core import clock

from .app import create_app
from .control import describe_credentials
from .scenario import load_scenario
from .world import World


def scaled_clock(speed: float, start: datetime | None = None) -> Callable[[], datetime]:
    """A ``now`` that runs ``speed`` times faster than trio's clock, from ``start``."""
    if speed <= 0:
        raise ValueError(f"speed must be positive, not {speed}")
    anchor_wall = start or clock.now()
    anchor_monotonic = clock.monotonic()

    def now() -> datetime:
        return anchor_wall + timedelta(seconds=(clock.monotonic() - anchor_monotonic) * speed)

    return now


def credentials_text(world: World) -> str:
    info = describe_credentials(world)
    lines = [f"marketsync SP-API simulator at {world.base_url} (simulated now {info['now']})"]
    for app in info["applications"]:
        lines.append(f"  LWA client_id     {app['clientId']}")
        lines.append(f"  LWA client_secret {app['clientSecret']}")
        lines.append(f"  application_id    {app['applicationId']}")
    for account in info["accounts"]:
        pii = "" if account["piiAccess"] else "  (no PII roles)"
        lines.append(f"  seller {account['sellerId']} [{account['region']}] {', '.join(account['marketplaceIds'])}{pii}")
        for token in account["refreshTokens"]:
            lines.append(f"    refresh_token {token}")
    lines.append(f"  control API       {world.base_url}/_sandbox/")
    return "\n".join(lines)


async def serve(
    scenario_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8471,
    speed: float = 1.0,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    out: Callable[[str], None] = print,
    task_status: trio.TaskStatus[World] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the scenario until cancelled (or ``shutdown_trigger`` returns).

    Reports the ``World`` through ``task_status`` once the port is bound (port 0 picks a
    free one; ``world.base_url`` then says which).
    """
    scenario = load_scenario(scenario_path)
    world = World(scenario, now=scaled_clock(speed, scenario.start), base_url=f"http://{host}:{port}")
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(lambda task_status: hypercorn_serve(
            create_app(world), config, shutdown_trigger=shutdown_trigger, task_status=task_status))
        world.base_url = binds[0] if binds else world.base_url
        out(credentials_text(world))
        task_status.started(world)
