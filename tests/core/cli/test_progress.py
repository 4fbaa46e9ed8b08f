"""The CLI progress bar: drawn on a terminal only, one line, ends cleanly."""

from __future__ import annotations

import io

from marketsync.core.cli import progress as progress_module
from marketsync.core.cli.progress import progress, track


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_nothing_is_drawn_when_stdout_is_not_a_terminal():
    """Piped output (a file, cron, journald) gets no bar and no carriage returns."""
    piped = io.StringIO()
    with progress("importing", total=10, stream=piped) as bar:
        for _ in range(10):
            bar.advance()
    assert piped.getvalue() == ""
    assert bar.done == 10  # still counts, for the command's own summary


def test_a_terminal_gets_one_line_that_ends_with_the_final_state(monkeypatch):
    monkeypatch.setattr(progress_module, "REDRAW_EVERY", 0.0)
    screen = Terminal()
    items = list(track(range(40), "importing orders.csv", stream=screen))
    text = screen.getvalue()
    assert items == list(range(40))
    assert text.count("\n") == 1 and text.endswith("\n")
    final = text.rstrip("\n").split("\r")[-1]
    assert final.startswith("importing orders.csv  [########################] 100%  40/40")


def test_unknown_total_shows_a_counter_and_a_known_one_a_share():
    screen = Terminal()
    with progress("backfilling amazon-de", stream=screen) as bar:
        bar.update(1500)
        assert bar.line().startswith("backfilling amazon-de  1,500 done")
        bar.update(1500, total=6000)
        assert "[######------------------]  25%  1,500/6,000" in bar.line()


def test_redraws_are_rate_limited():
    """A tight loop over a million rows must not write a million lines."""
    screen = Terminal()
    with progress("rows", total=100_000, stream=screen) as bar:
        for _ in range(100_000):
            bar.advance()
    assert screen.getvalue().count("\r") < 1000
