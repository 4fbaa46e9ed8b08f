"""Logs never carry tokens, secrets or buyer e-mail addresses (core/runtime/logs.py)."""

from __future__ import annotations

import io
import json
import logging

from marketsync.core.runtime import logs


def _emit(fmt: str, message: str, *args) -> str:
    stream = io.StringIO()
    logs.setup(fmt, "INFO", stream=stream)
    logging.getLogger("marketsync.test").warning(message, *args)
    return stream.getvalue()


def test_lwa_tokens_and_client_secrets_are_redacted():
    """Refresh/access tokens and client secrets are replaced before formatting."""
    out = _emit("human", "token %s secret %s", "Atzr|IwEBIA-abcdefghijklmnop1234567890",
                "amzn1.oa2-cs.v1.0123456789abcdef0123456789abcdef")
    assert "IwEBIA" not in out and "0123456789abcdef" not in out
    assert "Atz*|***" in out and "amzn1.oa2-cs.v1.***" in out


def test_buyer_email_and_bearer_tokens_are_redacted_in_json_logs():
    """JSON lines are valid JSON and carry neither e-mail addresses nor bearer tokens."""
    out = _emit("json", "buyer jane.doe@example.com sent Authorization: Bearer abc.def.ghi "
                "and refresh_token=xyz123")
    entry = json.loads(out)
    assert entry["level"] == "warning" and entry["logger"] == "marketsync.test"
    for secret in ("jane.doe", "abc.def.ghi", "xyz123"):
        assert secret not in entry["message"]


def test_exception_tracebacks_are_redacted_too():
    """A secret inside an exception message does not leak through the traceback."""
    stream = io.StringIO()
    logs.setup("human", "INFO", stream=stream)
    try:
        raise RuntimeError("refresh failed for Atzr|IwEBsecretsecretsecret")
    except RuntimeError:
        logging.getLogger("marketsync.test").exception("boom")
    assert "IwEBsecret" not in stream.getvalue()
