"""Submissions are recorded, followed until the channel finishes them, and survive restarts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import trio

from marketsync.core import clock
from marketsync.core.store import Store, submissions
from marketsync.core.store import integrations as rows
from marketsync.core.types import ItemResult, Submission, SubmissionReport

UTC = timezone.utc
START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


async def _integration(store: Store) -> int:
    return await store.run(
        lambda s: rows.ensure_integration(
            s, alias="amazon-de", channel="amazon", account="acme", marketplace="DE"
        )
    )


def _feed(channel_id: str = "feed-1", poll_after: float = 120.0) -> Submission:
    return Submission(
        kind="stock",
        channel_id=channel_id,
        channel_skus=("SKU-1", "SKU-2"),
        poll_after=poll_after,
        state={"document_id": "doc-9"},
    )


async def test_lifecycle_in_flight_then_done(store: Store, autojump_clock) -> None:
    """record → in flight with its poll time → not done yet → done with per-SKU results."""
    clock.set_start(START)
    integration = await _integration(store)
    sid = await store.run(
        submissions.record, integration, _feed(), generations={"SKU-1": 3, "SKU-2": 7}
    )
    [pending] = await store.read(submissions.in_flight, integration)
    assert (pending.id, pending.state, pending.kind) == (sid, "in_flight", "stock")
    assert pending.poll_after == START + timedelta(seconds=120)
    assert pending.generations == {"SKU-1": 3, "SKU-2": 7}
    assert pending.to_submission() == Submission(
        kind="stock", channel_id="feed-1", channel_skus=("SKU-1", "SKU-2"),
        submitted_at=START, state={"document_id": "doc-9"},
    )

    await trio.sleep(120)
    later = await store.run(submissions.apply_report, sid, SubmissionReport(done=False, poll_after=60))
    assert (later.state, later.polls) == ("in_flight", 1)
    assert later.poll_after == START + timedelta(seconds=180)

    await trio.sleep(60)
    results = (ItemResult(channel_sku="SKU-1", accepted=True),
               ItemResult(channel_sku="SKU-2", accepted=False, message="unknown SKU"))
    done = await store.run(submissions.apply_report, sid, SubmissionReport(done=True, results=results))
    assert (done.state, done.polls, done.finished_at) == ("done", 2, START + timedelta(seconds=180))
    assert done.item_results == results
    assert await store.read(submissions.in_flight) == []


async def test_whole_submission_failure(store: Store) -> None:
    integration = await _integration(store)
    sid = await store.run(submissions.record, integration, _feed())
    report = SubmissionReport(done=True, failed_reason="FATAL: feed could not be parsed")
    failed = await store.run(submissions.apply_report, sid, report)
    assert failed.state == "failed"
    assert failed.result["failed_reason"] == "FATAL: feed could not be parsed"
    # a late report for a finished submission changes nothing
    again = await store.run(submissions.apply_report, sid, SubmissionReport(done=True))
    assert again == failed


async def test_recording_twice_is_idempotent(store: Store) -> None:
    """A retried push job recording the same channel id gets the same row back."""
    integration = await _integration(store)
    first = await store.run(submissions.record, integration, _feed())
    second = await store.run(submissions.record, integration, _feed())
    other = await store.run(submissions.record, integration, _feed("feed-2"))
    assert first == second != other
    assert [s.channel_id for s in await store.read(submissions.in_flight)] == ["feed-1", "feed-2"]


async def test_in_flight_survives_a_restart(store: Store) -> None:
    """A new Store on the same database (a restarted daemon) finds the submission to follow."""
    integration = await _integration(store)
    await store.run(submissions.record, integration, _feed(), generations={"SKU-1": 1})
    with Store(store.url) as restarted:
        [resumed] = await restarted.read(submissions.in_flight, integration)
    assert resumed.to_submission().state == {"document_id": "doc-9"}
    assert resumed.generations == {"SKU-1": 1}


async def test_in_flight_soonest_first_and_per_integration(store: Store) -> None:
    integration = await _integration(store)
    other = await store.run(
        lambda s: rows.ensure_integration(
            s, alias="amazon-fr", channel="amazon", account="acme", marketplace="FR"
        )
    )
    await store.run(submissions.record, integration, _feed("late", poll_after=600))
    await store.run(submissions.record, integration, _feed("soon", poll_after=30))
    await store.run(submissions.record, other, _feed("fr", poll_after=0))
    assert [s.channel_id for s in await store.read(submissions.in_flight, integration)] == [
        "soon", "late",
    ]
    assert [s.channel_id for s in await store.read(submissions.in_flight)] == ["fr", "soon", "late"]


async def test_synchronous_results_and_stuck(store: Store) -> None:
    """Results known at submission time are kept; a submission can be given up on."""
    integration = await _integration(store)
    submission = Submission(
        kind="prices", channel_id="batch-1", channel_skus=("P-1",), poll_after=0,
        results=(ItemResult(channel_sku="P-1", accepted=True),),
    )
    sid = await store.run(submissions.record, integration, submission)
    assert (await store.read(submissions.get, sid)).item_results == submission.results
    await store.run(submissions.mark_stuck, sid, "no answer after 24 h")
    stuck = await store.read(submissions.get, sid)
    assert stuck.state == "stuck" and stuck.result["failed_reason"] == "no answer after 24 h"
    assert await store.read(submissions.in_flight) == []


async def test_unknown_submission_and_bad_state(store: Store) -> None:
    integration = await _integration(store)
    with pytest.raises(submissions.UnknownSubmission, match="no submission with id 4242"):
        await store.run(submissions.apply_report, 4242, SubmissionReport(done=True))
    bad = Submission(kind="stock", channel_id="f", state={"x": {1, 2}})
    with pytest.raises(ValueError, match="state is not JSON"):
        await store.run(submissions.record, integration, bad)
