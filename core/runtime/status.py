"""What ``marketsync status`` and the status page show, read from the database.

Reading from the store (not from the running process) lets ``status`` work from another
shell while the daemon runs, and after it has stopped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from datetime import timedelta

from marketsync.core.domain import push_guard
from marketsync.core.store import heartbeats
from marketsync.core.store import integrations as store_integrations
from marketsync.core.store import job_runs, leases
from marketsync.core.store import quarantine
from marketsync.core.store.models import (
    IntegrationRow,
    Listing,
    Order,
    Product,
    ShipmentRow,
    SubmissionRow as Submission,
)
from marketsync.core.store.timing import transaction_now


#: rows of a held plan and SHORT products shown before "… and N more" (the CLI lists all)
SHOWN = 20


def collect(session: Session) -> dict[str, Any]:
    """Integrations with state, reason and each job's health; pending pushes; in flight;
    what a held push would change; the products whose count is below their open orders."""
    pending = dict(session.execute(
        select(Listing.integration_id, func.count())
        .where(Listing.push_generation > Listing.pushed_generation)
        .group_by(Listing.integration_id)).all())
    refused = dict(session.execute(
        select(Listing.integration_id, func.count())
        .where(or_(Listing.push_error.is_not(None), Listing.price_error.is_not(None)))
        .group_by(Listing.integration_id)).all())
    in_flight = dict(session.execute(
        select(Submission.integration_id, func.count())
        .where(Submission.state == "in_flight").group_by(Submission.integration_id)).all())
    holds = {row.id: (row.push_hold, row.push_hold_reason) for row in session.execute(
        select(IntegrationRow.id, IntegrationRow.push_hold, IntegrationRow.push_hold_reason)
        .where(IntegrationRow.push_hold.in_(("review", "valve"))))}
    now = transaction_now()
    owners = {h.name: h.owner for h in leases.holdings(session) if h.owner}
    quarantined = quarantine.summaries(session)
    to_confirm = dict(session.execute(
        select(Order.integration_id, func.count())
        .join(ShipmentRow, ShipmentRow.order_id == Order.id)
        .where(ShipmentRow.confirm_state == "pending").group_by(Order.integration_id)).all())
    held = push_guard.plan(session, limit=SHOWN, held_only=True)
    held_changes: dict[str, list[dict[str, Any]]] = {}
    for change in held.changes:
        held_changes.setdefault(change.alias, []).append({
            "channel_sku": change.channel_sku, "sku": change.sku,
            "marketplace": change.marketplace, "channel_quantity": change.channel_quantity,
            "wanted_quantity": change.wanted_quantity})
    report = []
    for status in store_integrations.get_states(session):
        jobs = [
            {
                "kind": health.kind,
                "last_started": health.last_started,
                "last_finished": health.last_finished,
                "last_success": health.last_success,
                "next_run": health.next_run_at,
                "failures": health.consecutive_failures,
                "last_error": health.last_error,
                # replicas on PostgreSQL: which one holds the job's lease now
                "owner": owners.get(f"{status.alias}/{health.kind}"),
            }
            for health in job_runs.health(session, status.id)
        ]
        report.append({
            "alias": status.alias,
            "channel": status.channel,
            "account": status.account,
            "marketplace": status.marketplace,
            "state": status.state,
            "reason": status.state_reason,
            "since": status.state_changed_at,
            "last_error": status.last_error,
            "pending_pushes": pending.get(status.id, 0),
            "refused_pushes": refused.get(status.id, 0),
            "submissions_in_flight": in_flight.get(status.id, 0),
            "push_hold": holds.get(status.id, (None, None))[0],
            "push_hold_reason": holds.get(status.id, (None, None))[1],
            "quarantined": quarantined[status.id].count if status.id in quarantined else 0,
            "quarantine_newest": list(quarantined[status.id].newest)
            if status.id in quarantined else [],
            "shipments_to_confirm": to_confirm.get(status.id, 0),
            "jobs": jobs,
        })
        if status.alias in held.counts:
            report[-1]["held_plan"] = {"changes": held_changes.get(status.alias, []),
                                       "count": held.counts[status.alias]}
    return {"time": now, "integrations": report, "replicas": leases.replicas(session),
            "daemon": heartbeats.latest(session),
            "orders_per_hour": orders_per_hour(session, now),
            "short": short_products(session)}


def short_products(session: Session, limit: int = SHOWN) -> dict[str, Any]:
    """Products whose open orders hold more than is on hand (a count below the open
    orders, or a channel that oversold): channels are offered 0 for them, and someone
    has to look. The first ``limit`` by shortfall, and how many there are."""
    short = _SHORT
    count = short_count(session)
    rows = session.execute(
        select(Product.sku, Product.on_hand, Product.reserved).where(*short)
        .order_by((Product.reserved - Product.on_hand).desc(), Product.sku).limit(limit)).all()
    return {"count": count, "products": [
        {"sku": sku, "on_hand": on_hand, "reserved": reserved, "short": reserved - on_hand}
        for sku, on_hand, reserved in rows]}


_SHORT = (Product.deleted_at.is_(None), Product.reserved > Product.on_hand)


def short_count(session: Session) -> int:
    """How many products are SHORT (the metric reads this at every scrape)."""
    return session.execute(select(func.count()).select_from(Product).where(*_SHORT)).scalar_one()


def orders_per_hour(session: Session, now: datetime, hours: int = 24) -> list[int]:
    """Orders bought in each of the last ``hours`` hours, oldest first (the page's chart)."""
    start = now - timedelta(hours=hours)
    counts = [0] * hours
    for (bought,) in session.execute(select(Order.purchased_at)
                                     .where(Order.purchased_at > start)):
        index = int((bought - start).total_seconds() // 3600)
        counts[min(max(index, 0), hours - 1)] += 1
    return counts


def liveness(report: dict[str, Any]) -> tuple[bool, str]:
    """Whether a daemon is running on this database, and the line that says so."""
    return heartbeats.liveness(report.get("daemon"), report["time"])


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = int((now - moment).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    text = (f"{seconds}s" if seconds < 120 else f"{seconds // 60}m" if seconds < 7200
            else f"{seconds // 3600}h")
    return f"in {text}" if future else f"{text} ago"


def render(report: dict[str, Any]) -> str:
    now = report["time"]
    running, banner = liveness(report)
    if not report["integrations"]:
        return "no integrations yet (start the daemon once with this configuration)"
    lines = [banner.upper() if not running else banner]
    if report.get("replicas"):
        lines.append(f"replicas: {', '.join(report['replicas'])}")
    short = report.get("short") or {"count": 0}
    if short["count"]:
        names = ", ".join(f"{p['sku']} (on hand {p['on_hand']}, reserved {p['reserved']})"
                          for p in short["products"])
        more = short["count"] - len(short["products"])
        lines.append(f"SHORT: {short['count']} product(s) with open orders beyond on hand "
                     f"(channels get 0): {names}" + (f" and {more} more" if more else "")
                     + "; `marketsync stock show`")
    for item in report["integrations"]:
        lines.append(f"{item['alias']:<20} {item['state']:<11} {item['channel']} "
                     f"{item['marketplace']}  since {_ago(item['since'], now)}"
                     + (f"  — {item['reason']}" if item["reason"] else ""))
        if item["pending_pushes"] or item["submissions_in_flight"]:
            lines.append(f"{'':<22}pending pushes: {item['pending_pushes']}, "
                         f"submissions in flight: {item['submissions_in_flight']}")
        hold = item.get("push_hold")
        if hold == "review":
            lines.append(f"{'':<22}stock pushes held for review: `marketsync stock plan "
                         f"{item['alias']}`, then `marketsync stock accept {item['alias']}`")
        elif hold == "valve":
            lines.append(f"{'':<22}stock pushes HELD by the safety valve: "
                         f"{item['push_hold_reason']}; `marketsync stock plan "
                         f"{item['alias']}`, then `marketsync stock accept {item['alias']}`")
        plan = item.get("held_plan")
        if plan:
            for change in plan["changes"]:
                now_there = ("?" if change["channel_quantity"] is None
                             else change["channel_quantity"])
                lines.append(f"{'':<24}{change['channel_sku']:<24} {change['marketplace']:<4} "
                             f"{now_there:>6} -> {change['wanted_quantity']}")
            more = plan["count"] - len(plan["changes"])
            if more:
                lines.append(f"{'':<24}… and {more} more (`marketsync stock plan "
                             f"{item['alias']}` lists all)")
            elif not plan["count"]:
                lines.append(f"{'':<24}(no quantity would change)")
        if item["refused_pushes"]:
            lines.append(f"{'':<22}refused by the channel: {item['refused_pushes']} listing(s),"
                         " retried with growing delays (reasons: `marketsync products list`)")
        if item.get("quarantined"):
            lines.append(f"{'':<22}quarantined: {item['quarantined']} record(s) not imported "
                         "(`marketsync quarantine list`); newest:")
            lines += [f"{'':<24}{reason}" for reason in item["quarantine_newest"]]
        for job in item["jobs"]:
            error = f"  error: {job['last_error']}" if job["failures"] and job["last_error"] else ""
            upcoming = _ago(job["next_run"], now) if running else "-"
            lines.append(f"{'':<22}{job['kind']:<18} last {_ago(job['last_finished'], now):<10} "
                         f"next {upcoming:<10}"
                         + (f" failing x{job['failures']}" if job["failures"] else "")
                         + (f" on {job['owner']}" if job.get("owner") else "") + error)
    return "\n".join(lines)
