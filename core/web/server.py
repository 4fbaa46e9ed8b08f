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
from marketsync.core.runtime.status import collect

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


def _relative(moment, now) -> str:
    """"3m ago" / "in 40s": what a person reading the page wants from a timestamp."""
    if moment is None:
        return "never"
    seconds = int((now - moment).total_seconds())
    ahead, seconds = seconds < 0, abs(seconds)
    text = (f"{seconds}s" if seconds < 120 else f"{seconds // 60}m" if seconds < 7200
            else f"{seconds // 3600}h")
    return f"in {text}" if ahead else f"{text} ago"


def _next(moment, now) -> str:
    if moment is None:
        return "not scheduled"
    return "due now" if moment <= now else f"next {_relative(moment, now)}"


def _replicas_html(report: dict) -> str:
    """Replicas on PostgreSQL: which daemons are alive (each job row says which owns it)."""
    names = report.get("replicas") or []
    if not names:
        return ""
    return ("<p id='replicas'>replicas: "
            + ", ".join(html.escape(name) for name in names) + "</p>\n")


def render_status(daemon: "Daemon", report: dict, *, ask_token: bool,
                  notice: str | None = None, csrf: str = "") -> str:
    esc = html.escape
    now = report["time"]
    rows = []
    for item in report["integrations"]:
        jobs = "".join(
            f"<tr class='job' data-kind='{esc(job['kind'])}'><td>{esc(job['kind'])}</td>"
            f"<td>last {esc(_relative(job['last_finished'], now))}</td>"
            f"<td>{esc(_next(job['next_run'], now))}</td><td>"
            + (f"<b>failing ×{job['failures']}</b>: {esc(job['last_error'] or '')}"
               if job["failures"] else "ok") + "</td>"
            + (f"<td class='owner'>on {esc(job['owner'])}</td>" if job.get("owner") else "")
            + "</tr>"
            for job in item["jobs"])
        token_field = (f"<input type='hidden' name='csrf' value='{esc(csrf)}'>"
                       + ("<input name='token' type='password' placeholder='token'>"
                          if ask_token else ""))
        state = esc(item["state"])
        rows.append(
            f"<tr data-alias='{esc(item['alias'])}'><td>{esc(item['alias'])}</td>"
            f"<td>{esc(item['channel'])} {esc(item['marketplace'])}</td>"
            f"<td class='state {state.lower()}' data-state='{state}'>{state}</td>"
            f"<td>{esc(item['reason'] or '')}</td>"
            f"<td>{item['pending_pushes']} / {item['submissions_in_flight']}"
            + (f" <b class='refused'>({item['refused_pushes']} refused)</b>"
               if item["refused_pushes"] else "")
            + (f" <b class='held' title='{esc(item.get('push_hold_reason') or '')}'>"
               f"(pushes held: {'review' if item.get('push_hold') == 'review' else 'safety valve'}"
               f" — marketsync stock plan {esc(item['alias'])})</b>"
               if item.get("push_hold") in ("review", "valve") else "") + "</td>"
            f"<td><table class='jobs'>{jobs}</table>"
            + (f"<p class='quarantine' data-count='{item['quarantined']}'><b>"
               f"{item['quarantined']} record(s) in quarantine</b> (not imported; "
               "<code>marketsync quarantine list</code>): "
               + "; ".join(esc(reason) for reason in item["quarantine_newest"]) + "</p>"
               if item.get("quarantined") else "") + "</td>"
            + (f"<td><form method='post' action='/integrations/{esc(item['alias'])}/retry'>"
               f"{token_field}<button type='submit'>Retry</button></form></td></tr>"
               if item["alias"] in daemon.runners else "<td></td></tr>"))
    buckets = "".join(
        f"<tr><td>{esc(' / '.join(map(str, b.key)))}</td><td>{b.tokens:.1f} / {b.burst}</td>"
        f"<td>{b.rate:g}/s</td><td>{b.waiting}</td><td>{b.throttled}</td></tr>"
        for b in daemon.governor.snapshot())
    notice_html = f"<p id='notice'>retry requested for {esc(notice)}</p>" if notice else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>marketsync status</title>
<meta http-equiv="refresh" content="15">
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:4px 8px;vertical-align:top;
text-align:left}}table.jobs td{{border:0;padding:0 12px 0 0;white-space:nowrap}}
.state{{font-weight:bold}}.live{{color:#176f2c}}.retry,.connecting{{color:#9a6700}}
.incomplete,.error{{color:#b42318}}.disabled{{color:#777}}#notice{{background:#eef6ff;padding:6px}}
</style></head><body><h1>marketsync</h1><p>as of {esc(clock.isoformat(now))}</p>
{notice_html}
{_replicas_html(report)}<h2>Integrations</h2><table id="integrations"><tr><th>alias</th><th>channel</th><th>state</th>
<th>reason</th><th>pending pushes / in flight</th><th>jobs</th><th></th></tr>{''.join(rows)}</table>
<h2>Rate budget</h2><table id="buckets"><tr><th>bucket</th><th>tokens</th><th>rate</th>
<th>waiting</th><th>throttled</th></tr>{buckets}</table></body></html>"""


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
