"""The gate in front of every HTTP request: who may read, who may change, and how much.

It runs as plain ASGI middleware, before starlette routes anything, because the decisions
that matter have to be taken before a body is read: a 400 MB POST with a wrong token is
refused on its headers, and no body over ``MAX_BODY`` is ever held in memory.

The rules, in the order they are applied:

- ``Host`` must be one of ``HttpConfig.host_names()`` (loopback names by default), so a
  DNS-rebinding page on ``attacker.example`` that resolves to 127.0.0.1 reads nothing.
- Every answer carries CSP, X-Frame-Options, nosniff and Referrer-Policy headers.
- With ``http.token_for_reads`` every read but ``/healthz`` and the consent callback needs
  the token (Bearer, or Basic with the token as password so a browser can prompt for it).
- A state-changing request (any method but GET/HEAD/OPTIONS):
  * a token in the ``Authorization`` header is checked first; right → allowed, wrong → 403;
  * else a browser request (one carrying ``Origin`` or ``Referer``) must be same-origin
    and, being a form, carry the page's CSRF token — a cross-site form cannot;
  * else, with a token configured, the form must carry it (the page's password field);
    without one, only a loopback client may change anything;
  * the body is read only after the header checks, at most ``MAX_BODY`` bytes (413 beyond).

A request with neither ``Origin`` nor ``Referer`` is not a cross-site browser request
(browsers send ``Origin`` on every POST); it is the CLI or a script, held to the token or
loopback rule.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 64 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: reads that stay open with ``token_for_reads``: a load balancer's probe, and Amazon
#: sending the seller's browser back (guarded by the one-time ``state`` instead)
OPEN_READS = ("/healthz", "/channels/")

SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
     b"form-action 'self' https:; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_without_port(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware applying the rules above; ``csrf`` is what the page puts in forms.

    The CSRF token is random per process: a form loaded before a restart fails once with a
    message saying to reload, which is the right outcome for a stale page anyway.
    """

    def __init__(self, app: ASGIApp, *, token: str | None, host_names: frozenset[str],
                 public_origin: str | None = None, token_for_reads: bool = False):
        self.app = app
        self.token = token
        self.host_names = host_names
        self.public_origin = public_origin
        self.token_for_reads = token_for_reads
        self.csrf = secrets.token_urlsafe(32)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in SECURITY_HEADERS if name not in present]
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        refusal = self._refuse_on_headers(scope, headers)
        if refusal is not None:
            await _answer(send_with_headers, *refusal)
            return
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send_with_headers)
            return
        body = await _read_body(receive, headers)
        if body is None:
            await _answer(send_with_headers, 413, f"request body over {MAX_BODY // 1024} KiB")
            return
        refusal = self._refuse_on_body(headers, body, _client(scope))
        if refusal is not None:
            await _answer(send_with_headers, *refusal)
            return
        await self.app(scope, _replay(body, receive), send_with_headers)

    # --- decisions ----------------------------------------------------------------------

    def _refuse_on_headers(self, scope: Scope, headers: dict[str, str]
                           ) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        host = host_without_port(headers.get("host", ""))
        if host not in self.host_names:
            return (400, f"unknown Host {host[:100]!r}: add it to http.allowed_hosts "
                    "(or set http.public_url)", [])
        header_token = self._header_token(headers)
        if scope["method"] in SAFE_METHODS:
            path = scope.get("path", "")
            if self.token_for_reads and self.token and not path.startswith(OPEN_READS):
                if header_token is None or not self._token_ok(header_token):
                    return (401, "a valid token is required (http.token_for_reads)",
                            [(b"www-authenticate", b'Basic realm="marketsync"')])
            return None
        if header_token is not None:
            return None if self._token_ok(header_token) else (403, "forbidden: wrong token", [])
        if _is_browser(headers) and not self._same_origin(headers):
            return (403, "forbidden: cross-origin request refused", [])
        if self.token and not headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"):
            return (403, "forbidden: a valid token is required", [])
        if not self.token and not is_loopback(_client(scope)):
            return (403, "forbidden: requests that change state are accepted from loopback "
                    "only (set http.token to allow others)", [])
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            return (413, f"request body over {MAX_BODY // 1024} KiB", [])
        return None

    def _refuse_on_body(self, headers: dict[str, str], body: bytes, client: str | None
                        ) -> tuple[int, str, list] | None:
        if self._header_token(headers) is not None:
            return None  # checked, and right, on the headers
        form = _form(headers, body)
        if _is_browser(headers) and not hmac.compare_digest(
                form.get("csrf", "").encode(), self.csrf.encode()):
            return (403, "forbidden: missing or stale form token; reload the page and try "
                    "again", [])
        if self.token and not self._token_ok(form.get("token", "")):
            return (403, "forbidden: a valid token is required", [])
        return None

    def _header_token(self, headers: dict[str, str]) -> str | None:
        value = headers.get("authorization")
        if value is None:
            return None
        scheme, _, credentials = value.partition(" ")
        if scheme.lower() == "bearer":
            return credentials.strip()
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return ""
            return decoded.partition(":")[2]
        return ""

    def _token_ok(self, given: str) -> bool:
        return bool(self.token) and hmac.compare_digest(given.encode(), self.token.encode())

    def _same_origin(self, headers: dict[str, str]) -> bool:
        origin = headers.get("origin")
        if origin is None or origin == "null":
            if origin == "null":
                return False
            referer = urlsplit(headers.get("referer", ""))
            origin = f"{referer.scheme}://{referer.netloc}"
        origin = origin.rstrip("/").lower()
        if self.public_origin and origin == self.public_origin:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc == headers.get("host", "").lower()


def _is_browser(headers: dict[str, str]) -> bool:
    return "origin" in headers or "referer" in headers


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def _form(headers: dict[str, str], body: bytes) -> dict[str, str]:
    if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


async def _read_body(receive: Receive, headers: dict[str, str]) -> bytes | None:
    """The whole body, or None as soon as it passes ``MAX_BODY`` (the rest is never read)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> MutableMapping[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def _answer(send: Send, status: int, text: str,
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = (text + "\n").encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()), (b"connection", b"close"),
        *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


def public_origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
