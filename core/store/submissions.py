"""Submissions (stock and price pushes) the channel finishes later.

A push returns a ``Submission`` at once and the channel processes it for minutes. The
push job records it here in the same unit of work that marks the listings as sent, and
the poll job follows it until done; because the row holds everything ``poll_submission``
needs (the plugin's own state included), a restart resumes following it.

States: ``in_flight`` → ``done`` | ``failed`` (the channel said so) | ``stuck`` (we gave up
asking; a person should look).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketsync.core.types import ItemResult, Submission, SubmissionReport

from .models import SubmissionRow
from .timing import transaction_now
from .upsert import insert_or_update


class UnknownSubmission(LookupError):
    """No submission with that id."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredSubmission:
    """A submission as recorded, detached from the session."""

    id: int
    integration_id: int
    kind: str
    channel_id: str
    state: str
    channel_skus: tuple[str, ...]
    #: listing ``push_generation`` per SKU at the time of sending
    generations: Mapping[str, int]
    plugin_state: Mapping[str, Any]
    submitted_at: datetime
    poll_after: datetime
    polls: int
    finished_at: datetime | None
    result: Mapping[str, Any] | None

    def to_submission(self) -> Submission:
        """The plugin-facing value to hand to ``poll_submission``."""
        return Submission(
            kind=self.kind,
            channel_id=self.channel_id,
            channel_skus=self.channel_skus,
            submitted_at=self.submitted_at,
            state=dict(self.plugin_state),
        )

    @property
    def item_results(self) -> tuple[ItemResult, ...]:
        items = (self.result or {}).get("results") or ()
        return tuple(
            ItemResult(channel_sku=i["channel_sku"], accepted=i["accepted"], message=i["message"])
            for i in items
        )


def record(
    session: Session,
    integration_id: int,
    submission: Submission,
    *,
    generations: Mapping[str, int] | None = None,
) -> int:
    """Record a submission as in flight; recording the same (kind, channel id) again is a
    no-op that returns the existing id, so a retried push job cannot duplicate it.

    :returns: the submission's id.
    """
    now = transaction_now()
    submitted_at = submission.submitted_at or now
    payload = {
        "channel_skus": list(submission.channel_skus),
        "generations": dict(generations or {}),
        "plugin_state": dict(submission.state),
    }
    values: dict[str, Any] = {
        "integration_id": integration_id,
        "kind": submission.kind,
        "channel_id": submission.channel_id,
        "state": "in_flight",
        "payload": payload,
        "submitted_at": submitted_at,
        "poll_after": now + timedelta(seconds=max(submission.poll_after, 0.0)),
        "polls": 0,
    }
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{submission.kind} submission {submission.channel_id!r} of integration "
            f"{integration_id} cannot be recorded: its state is not JSON ({error})"
        ) from None
    if submission.results:
        values["result"] = {"results": _results_json(submission.results)}
    insert_or_update(session, SubmissionRow, values, conflict=["integration_id", "kind", "channel_id"])
    return session.execute(
        select(SubmissionRow.id).where(
            SubmissionRow.integration_id == integration_id,
            SubmissionRow.kind == submission.kind,
            SubmissionRow.channel_id == submission.channel_id,
        )
    ).scalar_one()


def in_flight(session: Session, integration_id: int | None = None) -> list[StoredSubmission]:
    """Submissions still being processed, the one to ask about soonest first."""
    query = select(SubmissionRow).where(SubmissionRow.state == "in_flight")
    if integration_id is not None:
        query = query.where(SubmissionRow.integration_id == integration_id)
    query = query.order_by(SubmissionRow.poll_after, SubmissionRow.id)
    return [_stored(row) for row in session.execute(query).scalars()]


def get(session: Session, submission_id: int) -> StoredSubmission:
    return _stored(_row(session, submission_id))


def apply_report(
    session: Session, submission_id: int, report: SubmissionReport
) -> StoredSubmission:
    """Record what ``poll_submission`` said: finished (``done``, or ``failed`` when the whole
    submission failed) or not yet, in which case the next poll is ``report.poll_after``
    seconds from now. A report for an already finished submission changes nothing."""
    row = _row(session, submission_id)
    if row.state != "in_flight":
        return _stored(row)
    now = transaction_now()
    row.polls += 1
    if not report.done:
        row.poll_after = now + timedelta(seconds=max(report.poll_after, 0.0))
        return _stored(row)
    row.state = "failed" if report.failed_reason else "done"
    row.finished_at = now
    row.result = {"results": _results_json(report.results), "failed_reason": report.failed_reason}
    return _stored(row)


def mark_stuck(session: Session, submission_id: int, reason: str) -> None:
    """Stop following a submission the channel never finishes."""
    row = _row(session, submission_id)
    if row.state == "in_flight":
        row.state = "stuck"
        row.finished_at = transaction_now()
        row.result = {**(row.result or {}), "failed_reason": reason}


def _results_json(results: Sequence[ItemResult]) -> list[dict[str, Any]]:
    return [
        {"channel_sku": r.channel_sku, "accepted": r.accepted, "message": r.message}
        for r in results
    ]


def _row(session: Session, submission_id: int) -> SubmissionRow:
    row = session.get(SubmissionRow, submission_id)
    if row is None:
        raise UnknownSubmission(f"no submission with id {submission_id}")
    return row


def _stored(row: SubmissionRow) -> StoredSubmission:
    payload = row.payload or {}
    return StoredSubmission(
        id=row.id,
        integration_id=row.integration_id,
        kind=row.kind,
        channel_id=row.channel_id,
        state=row.state,
        channel_skus=tuple(payload.get("channel_skus") or ()),
        generations=dict(payload.get("generations") or {}),
        plugin_state=dict(payload.get("plugin_state") or {}),
        submitted_at=row.submitted_at,
        poll_after=row.poll_after,
        polls=row.polls,
        finished_at=row.finished_at,
        result=row.result,
    )


def poll_now(session: Session, integration_ids: Sequence[int], channel_id: str) -> list[int]:
    """The channel said submission ``channel_id`` finished (a notification): make it due
    now for whichever of these integrations sent it. Returns the integrations it belongs
    to (none: not ours, or already followed to its end)."""
    rows = session.execute(select(SubmissionRow).where(
        SubmissionRow.integration_id.in_(list(integration_ids)),
        SubmissionRow.channel_id == channel_id,
        SubmissionRow.state == "in_flight")).scalars().all()
    now = transaction_now()
    for row in rows:
        row.poll_after = min(row.poll_after, now)
    return sorted({row.integration_id for row in rows})
