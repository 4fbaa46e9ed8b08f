"""JSON_LISTINGS_FEED: submit a bulk listing change and follow it to its processing report.

Submitting is three calls (createFeedDocument, PUT to the presigned URL, createFeed); the
feed id is all the core stores (``Submission.channel_id``) together with the SKU of each
message, so that ``poll_submission`` can follow the feed after a restart and map the
report's per-message issues back to SKUs.

A feed that sits IN_QUEUE / IN_PROGRESS past ``STUCK_AFTER`` is reported as failed
(``failed_reason`` starting "stuck"): the core then pushes its SKUs again, which is
better than waiting forever on a feed Amazon may never finish.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from marketsync.core import clock
from marketsync.core.errors import TransientError
from marketsync.core.types import Integration, ItemResult, Submission, SubmissionReport
from marketsync.plugins.amazon.client import AmazonRequestError, SpApi
from marketsync.plugins.amazon.manifest import LISTINGS_FEED_LIMIT

if TYPE_CHECKING:
    from marketsync.plugins.amazon.changes import Change

BASE = "/feeds/2021-06-30"
FEED_TYPE = "JSON_LISTINGS_FEED"
CONTENT_TYPE = "application/json; charset=UTF-8"
FIRST_POLL = 60.0  #: seconds; Amazon rarely finishes a listings feed sooner
#: seconds between polls after the first, for the first ``YOUNG`` seconds: getFeed allows
#: 2 calls a second, so asking every 15 s costs nothing and a finished feed is seen 7 s
#: after Amazon is done on average, not 30 (docs/benchmarks.md: a 10,000-SKU push)
POLL_EVERY = 15.0
YOUNG = 300.0
#: an older feed is asked less often (a fifth of its age), up to this: a stuck one is not
#: polled 240 times before it is given up
POLL_AT_MOST_EVERY = 300.0
STUCK_AFTER = timedelta(hours=1)
PENDING = ("IN_QUEUE", "IN_PROGRESS")


def feed_document(seller_id: str, changes: Sequence["Change"],
                  types: Mapping[str, str]) -> dict[str, Any]:
    """The listings-feed-schema-v2 document; message ``n`` is ``changes[n - 1]``."""
    return {
        "header": {"sellerId": seller_id, "version": "2.0", "issueLocale": "en_US"},
        "messages": [
            {
                "messageId": number,
                "sku": change.sku,
                "operationType": "PATCH",
                "productType": types.get(change.sku, "PRODUCT"),
                "patches": change.patches(),
            }
            for number, change in enumerate(changes, start=1)
        ],
    }


async def submit_listings_feed(api: SpApi, changes: Sequence["Change"],
                               types: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """Upload and create the feed; returns the feed id and the state to keep with it."""
    document = feed_document(api.seller_id, changes, types)
    content = json.dumps(document, separators=(",", ":")).encode("utf-8")
    created = await api.send_json("POST", f"{BASE}/documents", "createFeedDocument",
                                  json={"contentType": CONTENT_TYPE}, expect=(201, 200))
    await api.upload(created["url"], content, CONTENT_TYPE)
    marketplace_ids = sorted({m for c in changes for m in c.marketplace_ids}
                             or {api.marketplace_id})
    answer = await api.send_json("POST", f"{BASE}/feeds", "createFeed", expect=(202, 200),
                                 also_limited_by=(LISTINGS_FEED_LIMIT,), json={
        "feedType": FEED_TYPE,
        "marketplaceIds": marketplace_ids,
        "inputFeedDocumentId": created["feedDocumentId"],
    })
    feed_id = answer.get("feedId")
    if not feed_id:
        raise TransientError("createFeed answered without a feedId")
    api.log.info("submitted %s %s with %d messages", FEED_TYPE, feed_id, len(changes))
    return str(feed_id), {"feed_id": str(feed_id), "skus": [c.sku for c in changes]}


async def poll_submission(integration: Integration, submission: Submission) -> SubmissionReport:
    feed_id = submission.state.get("feed_id")
    if not feed_id:  # patches only: everything was known when it was submitted
        return SubmissionReport(done=True, results=(), poll_after=0)
    patched = tuple(ItemResult(channel_sku=sku, accepted=bool(ok), message=message)
                    for sku, ok, message in submission.state.get("patched") or ())
    report = await _poll_feed(integration, submission, str(feed_id))
    if not report.done:
        return report
    return SubmissionReport(done=True, results=patched + tuple(report.results),
                            failed_reason=report.failed_reason, poll_after=0)


async def _poll_feed(integration: Integration, submission: Submission,
                     feed_id: str) -> SubmissionReport:
    api = SpApi(integration)
    try:
        feed = await api.get_json(f"{BASE}/feeds/{feed_id}", "getFeed")
    except AmazonRequestError as exc:
        if exc.status != 404:
            raise
        return SubmissionReport(done=True, failed_reason=f"feed {feed_id} is unknown to Amazon")
    status = feed.get("processingStatus")
    if status in PENDING:
        started = _time(feed.get("createdTime")) or submission.submitted_at or clock.now()
        waited = clock.now() - started
        if waited > stuck_after(integration):
            minutes = int(waited.total_seconds() // 60)
            return SubmissionReport(done=True, failed_reason=(
                f"stuck: feed {feed_id} still {status} after {minutes} min"))
        return SubmissionReport(done=False, poll_after=next_poll(waited))
    if status == "CANCELLED":
        return SubmissionReport(done=True, failed_reason=f"feed {feed_id} was cancelled")
    document_id = feed.get("resultFeedDocumentId")
    if status not in ("DONE", "FATAL"):
        return SubmissionReport(done=True, failed_reason=f"feed {feed_id}: status {status!r}")
    if not document_id:
        return SubmissionReport(done=True, failed_reason=f"feed {feed_id} ended {status} "
                                                         f"without a processing report")
    report = await processing_report(api, document_id)
    skus = list(submission.state.get("skus") or ())
    if status == "FATAL":
        reason = "; ".join(i.get("message", "") for i in report.get("issues") or ()
                           if "messageId" not in i) or "no reason given"
        return SubmissionReport(done=True, failed_reason=f"feed {feed_id} FATAL: {reason}")
    return SubmissionReport(done=True, results=tuple(item_results(report, skus)))


def next_poll(waited: timedelta) -> float:
    """Seconds until the next look at a feed that has been pending for ``waited``."""
    age = waited.total_seconds()
    return POLL_EVERY if age < YOUNG else min(max(POLL_EVERY, age / 5), POLL_AT_MOST_EVERY)


def stuck_after(integration: Integration) -> timedelta:
    minutes = integration.settings.get("feed_stuck_minutes")
    return timedelta(minutes=float(minutes)) if minutes else STUCK_AFTER


async def processing_report(api: SpApi, document_id: str) -> dict[str, Any]:
    document = await api.get_json(f"{BASE}/documents/{document_id}", "getFeedDocument")
    content = await api.download(document["url"], document.get("compressionAlgorithm"))
    try:
        report = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise TransientError(f"processing report {document_id} is not JSON") from None
    if not isinstance(report, dict):
        raise TransientError(f"processing report {document_id} is not a JSON object")
    return report


def item_results(report: Mapping[str, Any], skus: Sequence[str]) -> list[ItemResult]:
    """Accepted ⇔ the message has no ERROR issue (REFERENCE §7.5); warnings ride along."""
    errors: dict[int, list[str]] = {}
    warnings: dict[int, list[str]] = {}
    feed_level: list[str] = []
    for found in report.get("issues") or ():
        text = f"{found.get('code', '')}: {found.get('message', '')}".strip(": ")
        message_id = found.get("messageId")
        if not isinstance(message_id, int):
            if found.get("severity") == "ERROR":
                feed_level.append(text)
            continue
        target = errors if found.get("severity") == "ERROR" else warnings
        target.setdefault(message_id, []).append(text)
    results = []
    for number, sku in enumerate(skus, start=1):
        if number in errors or feed_level:
            message = "; ".join(errors.get(number, []) + feed_level)
            results.append(ItemResult(channel_sku=sku, accepted=False, message=message))
        else:
            message = "; ".join(warnings.get(number, [])) or None
            results.append(ItemResult(channel_sku=sku, accepted=True, message=message))
    return results


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
