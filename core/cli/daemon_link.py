"""Telling a running daemon what a CLI command changed, so it acts now."""

from __future__ import annotations

from typing import Any


def tell_daemon_stock_changed(cli: Any) -> bool:
    """Ask a running daemon (its HTTP surface) to push now; False when none answers.

    Best effort: without it the daemon's periodic push picks the change up within a minute.
    """
    import httpx

    http = getattr(cli.config, "http", None)
    if http is None:
        return False
    headers = {"authorization": f"Bearer {http.token.reveal()}"} if http.token else {}
    try:
        response = httpx.post(f"{http.local_url}/stock-changed", headers=headers, timeout=3)
    except httpx.HTTPError:
        return False
    return response.status_code == 202
