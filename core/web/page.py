"""The status page: one server-rendered HTML document an operator can act from.

Layout rules that the browser tests hold it to: every integration is a card in a grid
that wraps to one column on a phone; text from channels (reasons, job errors) wraps
anywhere (``overflow-wrap: anywhere``) inside fixed-layout tables, so a 2 000-character
error makes a card taller, never the page wider, and Retry stays in view. Pictures are
inline SVG (``charts.py``); there is no JavaScript at all, which also lets the CSP forbid
scripts outright. Everything from a channel is escaped.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from marketsync.core import clock
from marketsync.core.store import heartbeats
from marketsync.core.web import charts

if TYPE_CHECKING:  # pragma: no cover
    from marketsync.core.runtime.daemon import Daemon

esc = html.escape

STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:0 auto;padding:1rem;max-width:1200px;color:#222}
h1{margin:.2rem 0}h2{margin:1.4rem 0 .5rem;font-size:1.2rem}h3{margin:0;font-size:1.05rem}
.muted{color:#666}.banner{padding:.6rem .8rem;border-radius:6px;font-weight:600}
.banner.down{background:#fde8e7;color:#8a1c12;border:1px solid #f1aca6}
.banner.short{background:#fff4e5;color:#7a4100;border:1px solid #f5c27a}
#notice{background:#eef6ff;padding:.5rem .8rem;border-radius:6px}
.cards{display:grid;gap:1rem;grid-template-columns:repeat(auto-fill,minmax(min(100%,22rem),1fr))}
.card{min-width:0;border:1px solid #ddd;border-radius:8px;padding:.8rem;overflow-wrap:anywhere}
.card header{display:flex;flex-wrap:wrap;gap:.4rem .8rem;align-items:baseline}
.reason{margin:.4rem 0;white-space:pre-wrap;overflow-wrap:anywhere}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin:.5rem 0}
.actions form{display:flex;gap:.3rem;flex-wrap:wrap;margin:0}
.actions input{max-width:9rem}
button{font:inherit;padding:.3rem .8rem;border-radius:5px;border:1px solid #888;background:#f6f6f6;cursor:pointer}
button.connect{border-color:#1a5fb4}
table{width:100%;border-collapse:collapse;table-layout:fixed}
td,th{text-align:left;vertical-align:top;padding:.2rem .3rem;border-top:1px solid #eee;overflow-wrap:anywhere}
th{font-weight:600;font-size:.85rem;color:#555}
dl.queues{display:grid;grid-template-columns:auto 1fr;gap:.1rem .8rem;margin:.5rem 0}
dl.queues dt{color:#555}dl.queues dd{margin:0}
.state{font-weight:700}.live{color:#176f2c}.retry,.connecting{color:#9a6700}
.incomplete,.error{color:#b42318}.disabled{color:#777}
.charts{display:grid;gap:1rem;grid-template-columns:repeat(auto-fill,minmax(min(100%,26rem),1fr))}
figure{margin:0;min-width:0}figcaption{font-weight:600;margin-bottom:.3rem}
svg text{font-size:7px;fill:#555}svg .bar{fill:#3a7bd5}svg .bar.p95{fill:#1a4f9c}
svg .bar.throttled{fill:#c0392b}svg .track{fill:#eee}svg .target{stroke:#c0392b;stroke-dasharray:2 2}
svg.budget{height:.6rem;display:block}
"""


def render_status(daemon: "Daemon", report: dict, *, ask_token: bool,
                  notice: str | None = None, csrf: str = "") -> str:
    """The whole page for ``report`` (``runtime.status.collect``) and the live daemon."""
    now = report["time"]
    running, banner = heartbeats.liveness(report.get("daemon"), now) \
        if "daemon" in report else (True, "")
    forms = _form_fields(csrf, ask_token)
    cards = "".join(_card(daemon, item, now, running, forms) for item in report["integrations"])
    banner_html = (f"<p id='daemon-banner' class='banner down'>{esc(banner)}</p>"
                   if not running else "")
    notice_html = f"<p id='notice'>retry requested for {esc(notice)}</p>" if notice else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>marketsync status</title><meta http-equiv="refresh" content="15">
<style>{STYLE}</style></head><body>
<h1>marketsync</h1><p class="muted">as of {esc(clock.isoformat(now))}</p>
{banner_html}{notice_html}{_replicas_html(report)}
{_short_html(report)}
<h2>Integrations</h2><div id="integrations" class="cards">{cards or
    "<p>no integrations yet</p>"}</div>
<h2>Pictures</h2><div class="charts">{_pictures(daemon, report)}</div>
<h2>Rate budget</h2>{_buckets(daemon)}
</body></html>"""


def _short_html(report: dict) -> str:
    """Products whose count is below their open orders: the channels are offered 0, which
    hides the problem from the shop, so the page says it at the top."""
    short = report.get("short") or {"count": 0, "products": []}
    if not short["count"]:
        return "<p id='short' data-count='0' class='muted'>no product is short</p>"
    rows = "".join(
        f"<tr class='short-product'><td>{esc(p['sku'])}</td><td>{p['on_hand']}</td>"
        f"<td>{p['reserved']}</td><td><b>SHORT {p['short']}</b></td></tr>"
        for p in short["products"])
    more = short["count"] - len(short["products"])
    return (f"<section id='short' data-count='{short['count']}'><p class='banner short'>"
            f"SHORT: {short['count']} product(s) with open orders beyond on hand; the "
            "channels are offered 0 until the count is corrected</p>"
            "<table><colgroup><col style='width:55%'><col><col><col></colgroup>"
            "<tr><th>product</th><th>on hand</th><th>reserved by open orders</th>"
            f"<th>short</th></tr>{rows}</table>"
            + (f"<p class='more'>… and {more} more: <code>marketsync stock show</code></p>"
               if more else "") + "</section>")


def _replicas_html(report: dict) -> str:
    """Replicas on PostgreSQL: which daemons are alive (each job row says which owns it)."""
    names = report.get("replicas") or []
    if not names:
        return ""
    return "<p id='replicas'>replicas: " + ", ".join(esc(name) for name in names) + "</p>"


def _form_fields(csrf: str, ask_token: bool) -> str:
    return (f"<input type='hidden' name='csrf' value='{esc(csrf)}'>"
            + ("<input name='token' type='password' placeholder='token' "
               "autocomplete='current-password'>" if ask_token else ""))


def _card(daemon: "Daemon", item: dict, now: Any, running: bool, forms: str) -> str:
    alias, state = item["alias"], item["state"]
    actions = ""
    if alias in daemon.runners:
        actions += (f"<form method='post' action='/integrations/{esc(alias)}/retry'>{forms}"
                    "<button type='submit' class='retry-button'>Retry</button></form>")
        label = _connect_label(daemon, alias)
        if label:
            actions += (f"<form method='post' action='/integrations/{esc(alias)}/connect'>"
                        f"{forms}<button type='submit' class='connect'>{label}</button></form>")
    since = item.get("since")
    return (
        f"<article class='card' data-alias='{esc(alias)}'><header><h3>{esc(alias)}</h3>"
        f"<span class='state {esc(state.lower())}' data-state='{esc(state)}'>{esc(state)}"
        f"</span><span class='muted'>{esc(item['channel'])} {esc(item['marketplace'])}"
        + (f" · since {esc(_relative(since, now))}" if since else "") + "</span></header>"
        + (f"<p class='reason'>{esc(item['reason'])}</p>" if item.get("reason") else "")
        + (f"<div class='actions'>{actions}</div>" if actions else "")
        + _queues(item)
        + "<table class='jobs'><colgroup><col style='width:28%'><col style='width:22%'>"
          "<col style='width:22%'><col></colgroup><tr><th>job</th><th>last run</th>"
          "<th>last success</th><th>health</th></tr>"
        + "".join(_job(job, now, running) for job in item["jobs"]) + "</table></article>")


def _connect_label(daemon: "Daemon", alias: str) -> str | None:
    """Connect when the account has no grant yet, Reconnect when it has one; nothing
    for channels without a consent flow."""
    integration = daemon.integrations.get(alias)
    hooks = daemon.plugins.channels.get(integration.channel) if integration else None
    if hooks is None or not hooks.supports("authorization_url"):
        return None
    return "Reconnect" if integration.credentials.get("refresh_token") else "Connect"


def _queues(item: dict) -> str:
    alias = quote(item["alias"])
    rows = [("pending pushes / in flight",
             f"{item['pending_pushes']} / {item['submissions_in_flight']}"
             + (f" <b class='refused'>({item['refused_pushes']} refused)</b>"
                if item.get("refused_pushes") else ""))]
    if "shipments_to_confirm" in item:
        rows.append(("shipments to confirm", str(item["shipments_to_confirm"])))
    if "quarantined" in item:
        count = item["quarantined"]
        newest = "; ".join(esc(reason) for reason in item.get("quarantine_newest") or [])
        rows.append(("quarantined records",
                     f"<a href='/integrations/{alias}/quarantine'>{count}</a> "
                     f"<span class='quarantine' data-count='{count}'>({count} record(s) in "
                     f"quarantine, not imported: <code>marketsync quarantine list</code>)"
                     f"{': ' + newest if newest else ''}</span>" if count else "0"))
    hold = item.get("push_hold")
    if hold in ("review", "valve"):
        reason = esc(item.get("push_hold_reason") or "")
        kind = "review" if hold == "review" else "safety valve"
        rows.append(("stock pushes", f"<b class='held' title='{reason}'>pushes held: {kind}"
                     + (f": {reason}" if reason else "") + "</b> — "
                     f"<code>marketsync stock plan {esc(item['alias'])}</code>, then "
                     f"<code>stock accept</code>"))
    return "<dl class='queues'>" + "".join(
        f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows) + "</dl>" + _held_plan(item)


def _held_plan(item: dict) -> str:
    """What the held push would change, listing by listing: what Accept would send."""
    plan = item.get("held_plan")
    if plan is None:
        return ""
    alias = esc(item["alias"])
    if not plan["count"]:
        return (f"<p class='held-plan' data-count='0'>No quantity would change: "
                f"<code>marketsync stock accept {alias}</code> releases the hold.</p>")
    rows = "".join(
        f"<tr class='planned'><td>{esc(c['channel_sku'])}</td><td>{esc(c['marketplace'])}</td>"
        f"<td>{'?' if c['channel_quantity'] is None else c['channel_quantity']}</td>"
        f"<td>{c['wanted_quantity']}</td></tr>" for c in plan["changes"])
    more = plan["count"] - len(plan["changes"])
    return (f"<table class='held-plan' data-count='{plan['count']}'><caption>Would change "
            f"({plan['count']} listing(s))</caption><colgroup><col style='width:40%'>"
            "<col style='width:20%'><col><col></colgroup><tr><th>SKU</th><th>marketplace</th>"
            f"<th>channel now</th><th>would send</th></tr>{rows}</table>"
            + (f"<p class='more'>… and {more} more: <code>marketsync stock plan {alias}</code>"
               " lists all</p>" if more else ""))


def _job(job: dict, now: Any, running: bool) -> str:
    upcoming = _next(job["next_run"], now) if running else "not running"
    health = (f"<b>failing ×{job['failures']}</b>: {esc(job['last_error'] or '')}"
              if job["failures"] else "ok")
    if job.get("owner"):  # replicas: which one holds the job's lease
        health += f"<br><span class='owner'>on {esc(job['owner'])}</span>"
    return (f"<tr class='job' data-kind='{esc(job['kind'])}'><td>{esc(job['kind'])}</td>"
            f"<td>last {esc(_relative(job['last_finished'], now))}<br>"
            f"<span class='muted'>{esc(upcoming)}</span></td>"
            f"<td>{esc(_relative(job.get('last_success'), now))}</td><td>{health}</td></tr>")


def _pictures(daemon: "Daemon", report: dict) -> str:
    counts = report.get("orders_per_hour") or [0] * 24
    windows = [("last hour", *daemon.stats.push_latency.window(3600)),
               ("last day", *daemon.stats.push_latency.window(86400))]
    described = "; ".join(
        f"{label}: p50 {p50:.0f} s, p95 {p95:.0f} s over {n} push(es)" if n else
        f"{label}: no pushes" for label, p50, p95, n in windows)
    return (f"<figure><figcaption>Orders per hour, last 24 h ({sum(counts)} in all)"
            f"</figcaption>{charts.orders_per_hour(counts, report['time'])}</figure>"
            f"<figure><figcaption>Stock change → accepted (p50 / p95)</figcaption>"
            f"{charts.latency(windows)}<p class='muted' id='latency-text'>{esc(described)}"
            "</p></figure>")


def _buckets(daemon: "Daemon") -> str:
    rows = []
    for bucket in daemon.governor.snapshot():
        key = [str(part) for part in bucket.key]
        operation = key[2] if len(key) > 2 else key[-1]
        account = " · ".join(key[1:2] + key[3:])
        used = 1 - bucket.tokens / bucket.burst if bucket.burst else 0.0
        rows.append(
            f"<tr><td>{esc(operation)}</td><td>{esc(account)}</td>"
            f"<td>{charts.budget_bar(used, bucket.throttled)}{used:.0%}</td>"
            f"<td>{bucket.tokens:.1f} / {bucket.burst} · {bucket.rate:g}/s</td>"
            f"<td>{bucket.waiting}</td><td>{bucket.throttled}</td></tr>")
    return ("<table id=\"buckets\"><colgroup><col style='width:26%'><col style='width:16%'>"
            "<col style='width:20%'><col style='width:18%'><col><col></colgroup>"
            "<tr><th>operation</th><th>account</th><th>in use</th><th>tokens · rate</th>"
            "<th>waiting</th><th>throttled</th></tr>" + "".join(rows) + "</table>")


def render_connect(alias: str, url: str) -> str:
    """The page between Connect and the channel: a meta refresh rather than a redirect
    answer, because CSP's form-action would stop a form's redirect to another origin."""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='refresh' content='0;url={esc(url)}'>"
            f"<title>connect {esc(alias)}</title></head><body><p>Opening the channel's "
            f"consent page for {esc(alias)}… <a id='consent' href='{esc(url)}'>continue</a>"
            "</p></body></html>")


def render_quarantine(alias: str, records: list) -> str:
    rows = "".join(
        f"<tr><td>{esc(r.kind)}</td><td>{esc(r.record_id)}</td><td>{esc(r.reason)}</td>"
        f"<td>{r.times_seen}</td><td>{esc(clock.isoformat(r.last_seen_at))}</td></tr>"
        for r in records)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>quarantine {esc(alias)}</title><style>{STYLE}</style></head><body>"
            f"<p><a href='/'>status</a></p><h1>Quarantined records of {esc(alias)}</h1>"
            "<p class='muted'>Records the channel sent that could not be read; the rest of "
            "their page was imported. <code>marketsync quarantine</code> lists and releases "
            "them.</p><table id='quarantine'><tr><th>kind</th><th>record</th><th>reason</th>"
            f"<th>seen</th><th>last seen</th></tr>{rows}</table></body></html>")


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
