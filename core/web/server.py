"""The daemon's small HTTP surface: status page with Retry, OAuth callback, /healthz, /metrics.

Served by hypercorn's trio worker inside the daemon's nursery. Who may read and change
what is decided before routing, in ``guard.py`` (Host names, token, same origin, CSRF,
body size); binding beyond loopback without a token is warned about at start. The
consent callback cannot carry a bearer token (Amazon redirects the seller's browser to
it), so with a token configured it is guarded by the one-time ``state`` the connect
command created, which the callback consumes.
"""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING
from urllib.parse import quote

import trio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from marketsync.core import clock
from marketsync.core.web.guard import Guard, is_loopback, public_origin
from marketsync.core.web.metrics import DaemonCollector
from marketsync.core.runtime import jobs
from marketsync.core.web.page import render_connect, render_quarantine, render_status
from marketsync.core.runtime.status import collect, short_count

if TYPE_CHECKING:  # pragma: no cover
    from marketsync.core.runtime.daemon import Daemon

log = logging.getLogger(__name__)


def create_web_app(daemon: "Daemon") -> Guard:
    """The routes behind the guard; ``app.csrf`` is the token the page's forms carry."""
    http = daemon.config.http
    token = http.token
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(daemon))
    guard: Guard

    async def status_page(request: Request) -> Response:
        report = await daemon.store.read(collect)
        # collect() runs in a worker thread, where core.clock falls back to the wall clock;
        # the run's own clock (simulated in the demo and tests) is the one jobs were timed on
        report["time"] = clock.now()
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(_jsonable(report))
        return HTMLResponse(render_status(daemon, report, ask_token=bool(token),
                                          notice=request.query_params.get("retried"),
                                          csrf=guard.csrf))

    async def retry(request: Request) -> Response:
        alias = request.path_params["alias"]
        runner = daemon.runners.get(alias)
        if runner is None:
            return PlainTextResponse(f"no integration {alias!r}", status_code=404)
        log.info("integration %s: retry requested over HTTP", alias)
        runner.retry()
        return RedirectResponse(f"/?retried={quote(alias)}", status_code=303)

    async def connect_start(request: Request) -> Response:
        """Connect / Reconnect: the consent flow, from the page (the callback finishes it)."""
        from marketsync.core.errors import MarketsyncError
        from marketsync.core.runtime import connect

        alias = request.path_params["alias"]
        if alias not in daemon.runners:
            return PlainTextResponse(f"no integration {alias!r}", status_code=404)
        try:
            url = await connect.start(daemon, alias)
        except MarketsyncError as error:
            return PlainTextResponse(f"cannot connect {alias}: {error}", status_code=409)
        log.info("integration %s: consent flow started over HTTP", alias)
        return HTMLResponse(render_connect(alias, url))

    async def quarantine(request: Request) -> Response:
        from marketsync.core.store import quarantine as store_quarantine
        from marketsync.core.store.integrations import integration_id

        alias = request.path_params["alias"]
        if alias not in daemon.runners:
            return PlainTextResponse(f"no integration {alias!r}", status_code=404)
        records = await daemon.store.read(
            lambda session: store_quarantine.list_records(session, integration_id(session, alias)))
        return HTMLResponse(render_quarantine(alias, records))

    async def stock_changed(request: Request) -> Response:
        """The CLI changed stock in another process: push it now, not at the next backstop."""
        daemon.stock_changed()
        return PlainTextResponse("push requested", status_code=202)

    async def local_change(request: Request) -> Response:
        """The CLI changed something in another process (a price, a shipment, a mapping):
        run the jobs that send it now, e.g. ``?jobs=confirm_shipment``."""
        kinds = [k for k in request.query_params.get("jobs", "").split(",") if k]
        unknown = sorted(set(kinds) - jobs.NUDGEABLE)
        if not kinds or unknown:
            return PlainTextResponse(
                f"jobs= must name some of {', '.join(sorted(jobs.NUDGEABLE))}"
                + (f" (not {', '.join(unknown)})" if unknown else ""), status_code=400)
        daemon.nudge(kinds)
        return PlainTextResponse("runs requested", status_code=202)

    async def healthz(request: Request) -> Response:
        problems = []
        if not daemon.scheduler_alive():
            problems.append("scheduler not running")
        database = daemon.database
        if not database.up:
            # known from failed writes: under WAL a SELECT would still succeed
            problems.append(f"database unavailable since {clock.isoformat(database.since)}, "
                            f"jobs paused: {database.reason}")
        else:
            try:
                with trio.fail_after(5):
                    await daemon.store.read(
                        lambda session: session.execute(text("SELECT 1")).scalar())
            except Exception as error:  # noqa: BLE001 - any failure means unhealthy
                problems.append(f"database: {type(error).__name__}")
        if problems:
            return PlainTextResponse("unhealthy: " + "; ".join(problems), status_code=503)
        return PlainTextResponse("ok")

    async def metrics(request: Request) -> Response:
        await daemon.refresh_quarantine_counts()
        daemon.stats.short_products = await daemon.store.read(short_count)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def callback(request: Request) -> Response:
        try:
            from marketsync.core.runtime.connect import finish_connect
        except ImportError:  # the connect flow ships separately; say so instead of a 500
            return PlainTextResponse("the connect flow is not available in this build; use "
                                     "`marketsync connect ALIAS`", status_code=501)
        client = request.client.host if request.client else None
        if not token and not is_loopback(client):  # with a token, the one-time state guards it
            return PlainTextResponse("forbidden: the consent callback is accepted from loopback "
                                     "only (set http.token to connect from elsewhere)",
                                     status_code=403)
        channel = request.path_params["channel"]
        outcome = await finish_connect(daemon, channel, dict(request.query_params))
        return HTMLResponse(f"<p>{html.escape(outcome)}</p><p><a href='/'>status</a></p>",
                            status_code=200 if outcome.startswith("connected") else 400)

    guard = Guard(Starlette(routes=[
        Route("/", status_page),
        Route("/integrations/{alias}/retry", retry, methods=["POST"]),
        Route("/integrations/{alias}/connect", connect_start, methods=["POST"]),
        Route("/integrations/{alias}/quarantine", quarantine),
        Route("/stock-changed", stock_changed, methods=["POST"]),
        Route("/local-change", local_change, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Route("/channels/{channel}/callback", callback),
    ]), token=token.reveal() if token else None, host_names=http.host_names(),
        public_origin=public_origin(http.public_url), token_for_reads=http.token_for_reads)
    return guard


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


async def serve_web(daemon: "Daemon", *, listen: str | None = None,
                    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the HTTP surface until cancelled (hypercorn's trio worker).

    Reports the bound base URL (``http://host:port``) once listening, so ``listen`` may
    name port 0 (the demo and tests take a free port). A port already taken fails here,
    before READY, rather than leaving a daemon nobody can observe.
    """
    from hypercorn.config import Config as HypercornConfig
    from hypercorn.trio import serve

    listen = listen or daemon.config.http.listen
    host = listen.rpartition(":")[0].strip("[]")
    if not daemon.config.http.token and not is_loopback("127.0.0.1" if host == "localhost" else host):
        log.warning("HTTP surface on %s without http.token: state-changing requests are "
                    "accepted from loopback only; set http.token to use them remotely", listen)
    config = HypercornConfig()
    config.bind = [listen]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 2.0

    async def bound(*, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await serve(create_web_app(daemon), config, task_status=task_status)

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(bound)
        url = binds[0] if binds else f"http://{listen}"
        log.info("status page at %s (/healthz, /metrics)", url)
        task_status.started(url)
