"""``sync ALIAS import_orders --since``: what WHEN may be, and the channels that cannot."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from marketsync.core.cli import oneshot
from marketsync.plugins import manual
from marketsync.plugins.ebay import manifest as ebay

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, back", [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)),
                                         ("1d12h", timedelta(hours=36))])
def test_a_duration_reaches_back_from_now(text, back):
    assert oneshot.since_time(text, NOW) == NOW - back


def test_an_iso_date_without_a_zone_is_utc():
    assert oneshot.since_time("2026-11-20", NOW) == datetime(2026, 11, 20, tzinfo=timezone.utc)
    assert oneshot.since_time("2026-11-20T08:00+01:00", NOW) == datetime(
        2026, 11, 20, 7, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, says", [("last week", "neither a duration"),
                                        ("-3d", "neither a duration"),
                                        ("2027-01-01", "not in the past")])
def test_what_is_no_past_time_is_refused_naming_it(text, says):
    with pytest.raises(oneshot.SinceError, match=says) as refused:
        oneshot.since_time(text, NOW)
    assert repr(text) in str(refused.value)


@pytest.mark.parametrize("channel, info", [("ebay", ebay.INFO), ("manual", manual.INFO)])
async def test_a_channel_without_a_reread_says_so_in_one_line(channel, info):
    hooks = SimpleNamespace(info=info)
    assert hooks.info.reread_days == 0
    daemon = SimpleNamespace(
        integrations={"shop": SimpleNamespace(channel=channel, account="acme")},
        plugins=SimpleNamespace(channel=lambda name: hooks))
    message = await oneshot._reread(daemon, "shop", "import_orders", "3d",  # noqa: SLF001
                                    io.StringIO())
    assert message == (f"shop: channel {channel!r} cannot read its order history again; "
                       "run `marketsync sync` without --since")
    # the command prints it to stderr and exits 2: nothing was read
    assert isinstance(message, oneshot.UsageRefusal) and message.exit_code == 2
