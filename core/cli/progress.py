"""A one-line progress bar for long CLI work (backfill, CSV import, first product import).

Drawn only when stdout is a terminal: piped into a file, a cron mail or journald, a bar is
noise (and ``\\r`` garbage), so it draws nothing there and the command's own summary line
is all that is written. No dependency: ``rich`` would draw a prettier bar, but one line
of text does the job and the daemon's install stays small.

Usage::

    with progress("importing orders.csv", total=len(rows)) as bar:
        for row in rows:
            ...
            bar.advance()

    for page in track(pages, "backfilling amazon-de"):   # total unknown: a counter
        ...
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, TypeVar

from marketsync.core import clock

T = TypeVar("T")

WIDTH = 24  #: characters of the bar itself
REDRAW_EVERY = 0.1  #: seconds between redraws: a terminal cannot show more anyway


class Progress:
    """Counts work done and redraws one terminal line (nothing when ``stream`` is None)."""

    def __init__(self, label: str, total: int | None, stream: IO[str] | None):
        self.label = label
        self.total = total if total and total > 0 else None
        self.done = 0
        self._stream = stream
        self._started = clock.monotonic()
        self._drawn_at: float | None = None
        self._width = 0

    def advance(self, count: int = 1) -> None:
        self.done += count
        self._draw()

    def update(self, done: int, total: int | None = None) -> None:
        """Set the absolute count (and the total once it is known, e.g. after page one)."""
        self.done = done
        if total is not None:
            self.total = total if total > 0 else None
        self._draw()

    def line(self) -> str:
        elapsed = max(clock.monotonic() - self._started, 1e-9)
        rate = self.done / elapsed
        speed = f"{rate:,.0f}/s" if rate >= 1 else f"{rate * 60:,.1f}/min"
        if self.total is None:
            return f"{self.label}  {self.done:,} done  {speed}"
        share = min(self.done / self.total, 1.0)
        filled = int(share * WIDTH)
        bar = "#" * filled + "-" * (WIDTH - filled)
        left = (self.total - self.done) / rate if rate > 0 and self.done < self.total else 0
        eta = f"  {_span(left)} left" if left >= 1 else ""
        return (f"{self.label}  [{bar}] {share:4.0%}  {self.done:,}/{self.total:,}  "
                f"{speed}{eta}")

    def _draw(self, force: bool = False) -> None:
        if self._stream is None:
            return
        now = clock.monotonic()
        if not force and self._drawn_at is not None and now - self._drawn_at < REDRAW_EVERY:
            return
        self._drawn_at = now
        text = self.line()
        self._stream.write("\r" + text + " " * max(self._width - len(text), 0))
        self._stream.flush()
        self._width = len(text)

    def close(self) -> None:
        """Draw the final state and end the line, so later output starts clean."""
        if self._stream is None or self._drawn_at is None:
            return
        self._draw(force=True)
        self._stream.write("\n")
        self._stream.flush()


def _span(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _terminal(stream: IO[str] | None) -> IO[str] | None:
    stream = sys.stdout if stream is None else stream
    try:
        return stream if stream.isatty() else None
    except (AttributeError, ValueError):  # closed or not a real file
        return None


@contextmanager
def progress(label: str, total: int | None = None, *,
             stream: IO[str] | None = None) -> Iterator[Progress]:
    """A bar on ``stream`` (default stdout) if it is a terminal; a silent counter if not."""
    bar = Progress(label, total, _terminal(stream))
    try:
        yield bar
    finally:
        bar.close()


def track(items: Iterable[T], label: str, total: int | None = None, *,
          stream: IO[str] | None = None) -> Iterator[T]:
    """Yield ``items``, advancing a bar per item; ``total`` defaults to ``len(items)``."""
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with progress(label, total, stream=stream) as bar:
        for item in items:
            yield item
            bar.advance()
