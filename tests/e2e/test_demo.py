"""``marketsync demo`` as a new user runs it: a subprocess, real ports, a temp directory."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from marketsync.core.cli.demo import parse_duration

DEMO = [sys.executable, "-c", "from marketsync.core.cli.demo import demo; demo()"]
SECRETS = ("amzn1.oa2-cs.v1.demosecret", "Atzr|demo-eu", "Atza|")


def test_half_an_hour_at_600x_imports_orders_without_throttling(tmp_path):
    """30 simulated minutes finish in well under a minute; the summary shows orders
    imported, zero 429s and the next steps; the config it wrote keeps secrets in files."""
    started = time.monotonic()
    result = subprocess.run([*DEMO, "--duration", "30m", "--speed", "600", "--keep"],
                            capture_output=True, text=True, timeout=90, cwd=tmp_path)
    took = time.monotonic() - started
    output = result.stdout
    kept = re.search(r"kept (\S+)", output)
    try:
        assert result.returncode == 0, result.stderr
        assert took < 60
        imported = int(re.search(r"orders imported (\d+)", output).group(1))
        assert imported > 0
        assert re.search(r"throttled \(429\) 0\b", output)
        assert re.search(r"^\[\d\d:\d\d\] amazon-uk\s+LIVE$", output, re.M)
        assert "Summary after 30m00s of simulated time" in output
        assert "marketsync connect ALIAS" in output and "docs/operations.md" in output
        for secret in SECRETS:
            assert secret not in output + result.stderr
        directory = Path(kept.group(1))
        config = (directory / "marketsync.yaml").read_text()
        assert "${file:" in config and "demosecret" not in config and "Atzr|" not in config
        assert (directory / "demo.sqlite").exists()
    finally:
        if kept:
            shutil.rmtree(kept.group(1), ignore_errors=True)


def test_ctrl_c_stops_cleanly_with_a_summary(tmp_path):
    """SIGINT (Ctrl-C) during a long run: a summary, exit 0, and the temp dir is gone."""
    out = tmp_path / "demo.out"
    with open(out, "w") as stream:
        process = subprocess.Popen([*DEMO, "--duration", "1d", "--speed", "60"],
                                   stdout=stream, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 40
        while "LIVE" not in out.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, out.read_text()
            time.sleep(0.1)
        assert "LIVE" in out.read_text()
        process.send_signal(signal.SIGINT)
        code = process.wait(15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    text = out.read_text()
    assert code == 0, text
    assert "Summary after" in text and "Traceback" not in text
    directory = re.search(r"configuration\s+(\S+)/marketsync\.yaml", text).group(1)
    assert not Path(directory).exists()


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("30m", 1800), ("2h", 7200),
                                           ("1d", 86400), ("45", 45), ("1.5h", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0m", "2 weeks", "-5m", "h"])
def test_bad_durations_say_how_to_write_one(text):
    with pytest.raises(click.BadParameter, match="write e.g. 90s, 30m"):
        parse_duration(text)


def _watcher(lines, runners=None):
    from types import SimpleNamespace

    from marketsync.core.cli.demo import Watcher

    daemon = SimpleNamespace(integration_ids={"amazon-de": 1, "amazon-au": 2},
                             runners=runners or {}, stats=SimpleNamespace(calls={}, throttled={}))
    return Watcher(daemon, echo=lines.append)


def test_caught_up_is_said_once_per_integration_however_many_polls_the_backlog_takes():
    """A backfill arriving over several polls is one "caught up" line per integration."""
    from datetime import timedelta
    from types import SimpleNamespace

    lines: list[str] = []
    watcher = _watcher(lines)
    before = watcher.started_at - timedelta(days=1)
    row = lambda oid, integration: SimpleNamespace(  # noqa: E731
        id=oid, integration_id=integration, purchased_at=before)
    watcher._orders([row(1, 1), row(2, 1), row(3, 2)])
    watcher._orders([row(4, 1), row(5, 1)])  # the rest of amazon-de's backlog
    caught_up = [line for line in lines if "caught up" in line]
    assert len(caught_up) == 2
    [de] = [line for line in caught_up if "amazon-de" in line]
    assert "2 order(s)" in de
    assert any("amazon-au" in line for line in caught_up)


def test_the_summary_names_integrations_that_ended_incomplete():
    """An integration left INCOMPLETE is in the summary with its reason, LIVE ones are not."""
    from types import SimpleNamespace

    from marketsync.core.cli.demo import print_summary
    from marketsync.core.runtime.states import IntegrationState

    lines: list[str] = []
    runners = {"amazon-de": SimpleNamespace(state=IntegrationState.LIVE, reason=None),
               "amazon-au": SimpleNamespace(state=IntegrationState.INCOMPLETE,
                                            reason="refresh token revoked")}
    watcher = _watcher(lines, runners)
    watcher.states = {a: (r.state.value, r.reason) for a, r in runners.items()}
    print_summary(watcher.summary(elapsed=600), echo=lines.append)
    text = "\n".join(lines)
    assert "amazon-au ended INCOMPLETE: refresh token revoked" in text
    assert "were not synced" in text and "amazon-de ended" not in text


def test_demo_log_lines_carry_the_simulated_time():
    """Human log lines take their time from core.clock, like the demo's own lines, so one
    stream never mixes simulated and wall-clock times."""
    import logging

    import trio

    from marketsync.core.runtime.logs import HumanFormatter

    record = logging.LogRecord("marketsync", logging.WARNING, __file__, 1, "hello", None, None)
    stamps = []

    async def main():
        await trio.sleep(7200)  # two simulated hours later
        stamps.append(HumanFormatter().format(record)[:5])
        from marketsync.core import clock
        stamps.append(clock.now().strftime("%H:%M"))

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert stamps[0] == stamps[1]
