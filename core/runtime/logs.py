"""Logging: human lines on a terminal, one JSON object per line with ``--log-format json``.

A redaction filter runs on every record before it is formatted: anything that looks like
an LWA token, a bearer token or an e-mail address is replaced, so a careless log call in a
plugin cannot leak credentials or buyer data (the Amazon Data Protection Policy forbids
buyer data in logs).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys

from marketsync.core import clock

_PATTERNS = [
    (re.compile(r"Atz[a-z]\|[A-Za-z0-9_\-|.=+/]+"), "Atz*|***"),  # LWA refresh/access tokens
    (re.compile(r"amzn1\.oa2-cs\.v1\.[0-9a-f]+"), "amzn1.oa2-cs.v1.***"),  # LWA client secrets
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-+/=]+"), r"\1***"),
    (re.compile(r"(?i)((?:access|refresh)_token|client_secret|x-amz-access-token)"
                r"(['\"]?\s*[:=]\s*['\"]?)[^\s'\"&,}]+"), r"\1\2***"),
    (re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"), "***@***"),
]


#: The integration whose work the current task does (its runner, its jobs): JSON lines
#: carry it as ``integration`` without every log call, plugins' included, passing it.
current_integration: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "marketsync_current_integration", default=None)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": clock.isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        integration = getattr(record, "integration", None) or current_integration.get()
        if integration:
            entry["integration"] = integration
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class HumanFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The run's clock (``core.clock``), as JSON lines use: under the demo's or a
        test's accelerated clock a line's time matches the events around it."""
        return clock.now().strftime(datefmt or "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        # redact the whole line: another handler may have cached an unredacted traceback
        return redact(super().format(record))


def setup(fmt: str = "human", level: str = "INFO", stream=None) -> None:
    """Configure the root logger once; calling again replaces our handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_marketsync", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._marketsync = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter())
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "hpack", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
