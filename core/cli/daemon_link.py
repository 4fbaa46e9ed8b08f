"""Telling a running daemon what a CLI command changed, so it acts now."""

from __future__ import annotations

from typing import Any


#: what a change of stock, a price, a handling time or a mapping needs: prices of
#: merchant-fulfilled listings ride with the stock push, the rest go through push_prices
PUSHES = ("push_stock", "push_prices")


def tell_daemon(cli: Any, *jobs: str) -> bool:
    """Ask a running daemon (its HTTP surface) to run ``jobs`` now; False when none answers.

    Best effort: without it the daemon's next scheduled run picks the change up (a
    minute for stock, longer for shipments).
    """
    import httpx

    http = getattr(cli.config, "http", None)
    if http is None:
        return False
    headers = {"authorization": f"Bearer {http.token.reveal()}"} if http.token else {}
    try:
        response = httpx.post(f"{http.local_url}/local-change",
                              params={"jobs": ",".join(jobs)}, headers=headers, timeout=3)
    except httpx.HTTPError:
        return False
    return response.status_code == 202


def tell_daemon_stock_changed(cli: Any) -> bool:
    return tell_daemon(cli, *PUSHES)
