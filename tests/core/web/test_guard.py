"""The HTTP surface's gate (core/web/guard.py): Host names, security headers, same origin and
CSRF, body size, token for reads, and the public URL the consent redirect names."""

from __future__ import annotations

import base64
import re
import tracemalloc

import httpx
import pytest
import trio

from marketsync.core.runtime import connect
from marketsync.core.web.guard import MAX_BODY
from marketsync.core.web.server import create_web_app, serve_web

from .test_server import e2e_clock, make_daemon, world  # noqa: F401 - fixtures

TOKEN = "s3cret-web-token"
WITH_TOKEN = "http:\n  token: ${WEB_TOKEN}\n"


def client_for(app, host: str = "127.0.0.1:8470", client_host: str = "127.0.0.1"
               ) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(client_host, 40000))
    return httpx.AsyncClient(transport=transport, base_url=f"http://{host}")


def csrf_of(page: str) -> str:
    return re.search(r"name='csrf' value='([^']+)'", page).group(1)


class Counting:
    """A request body streamed from a generator that counts what the server pulled."""

    def __init__(self, total: int, chunk: int = 1 << 20):
        self.total, self.chunk, self.pulled = total, chunk, 0
        self.block = b"x" * chunk

    async def __aiter__(self):
        while self.pulled < self.total:
            self.pulled += self.chunk
            yield self.block


async def test_an_unknown_host_reads_nothing(make_daemon, e2e_clock):
    """DNS rebinding: Host attacker.example gets 400 on the page and the JSON; loopback
    names, a name in http.allowed_hosts and public_url's host are answered."""
    daemon = make_daemon("http:\n  allowed_hosts: [shop.lan]\n"
                         "  public_url: https://status.example.com\n")
    await daemon.prepare()
    app = create_web_app(daemon)
    answers = {}
    for host in ("attacker.example", "attacker.example:8470", "127.0.0.1:8470",
                 "localhost:8470", "[::1]:8470", "shop.lan:8470", "status.example.com"):
        async with client_for(app, host) as client:
            answers[host] = await client.get("/", headers={"accept": "application/json"})
    assert answers["attacker.example"].status_code == 400
    assert "unknown Host 'attacker.example'" in answers["attacker.example"].text
    assert "integrations" not in answers["attacker.example:8470"].text
    assert answers["attacker.example:8470"].status_code == 400
    for host in ("127.0.0.1:8470", "localhost:8470", "[::1]:8470", "shop.lan:8470",
                 "status.example.com"):
        assert answers[host].status_code == 200, host
        assert "integrations" in answers[host].json()


async def test_every_answer_carries_the_security_headers(make_daemon, e2e_clock):
    """CSP, X-Frame-Options, nosniff and Referrer-Policy on pages, probes, metrics and
    refusals alike."""
    daemon = make_daemon()
    await daemon.prepare()
    app = create_web_app(daemon)
    async with client_for(app) as client:
        answers = [await client.get("/"), await client.get("/healthz"),
                   await client.get("/metrics"), await client.get("/nope"),
                   await client.post("/integrations/amazon-uk/retry",
                                     headers={"origin": "http://evil.example"})]
    async with client_for(app, "attacker.example") as client:
        answers.append(await client.get("/"))
    assert [a.status_code for a in answers] == [200, 503, 200, 404, 403, 400]
    for answer in answers:
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert "default-src 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"


async def test_cross_origin_posts_are_refused_without_a_token(make_daemon, e2e_clock):
    """No http.token, a loopback client: a cross-site form (Origin evil.example, or a
    Referer from it, or Origin null) cannot Retry, nor POST text/plain to /stock-changed;
    the page's own form (same origin, its CSRF token) can."""
    daemon = make_daemon()
    await daemon.prepare()
    app = create_web_app(daemon)
    async with client_for(app) as client:
        page = (await client.get("/")).text
        csrf = csrf_of(page)
        evil_form = await client.post("/integrations/amazon-uk/retry", data={"csrf": csrf},
                                      headers={"origin": "http://evil.example"})
        evil_referer = await client.post("/integrations/amazon-uk/retry", data={"csrf": csrf},
                                         headers={"referer": "http://evil.example/x"})
        null_origin = await client.post("/integrations/amazon-uk/retry", data={"csrf": csrf},
                                        headers={"origin": "null"})
        plain = await client.post("/stock-changed", content=b"hello",
                                  headers={"origin": "http://evil.example",
                                           "content-type": "text/plain"})
        no_csrf = await client.post("/integrations/amazon-uk/retry", data={},
                                    headers={"origin": "http://127.0.0.1:8470"})
        stale = await client.post("/integrations/amazon-uk/retry", data={"csrf": "old"},
                                  headers={"origin": "http://127.0.0.1:8470"})
        own = await client.post("/integrations/amazon-uk/retry", data={"csrf": csrf},
                                headers={"origin": "http://127.0.0.1:8470"})
        by_referer = await client.post("/integrations/amazon-uk/retry", data={"csrf": csrf},
                                       headers={"referer": "http://127.0.0.1:8470/"})
    for refused in (evil_form, evil_referer, null_origin, plain):
        assert refused.status_code == 403 and "cross-origin" in refused.text
    for refused in (no_csrf, stale):
        assert refused.status_code == 403 and "reload the page" in refused.text
    assert own.status_code == 303 and own.headers["location"] == "/?retried=amazon-uk"
    assert by_referer.status_code == 303


async def test_with_a_token_cross_origin_needs_the_token_in_the_header(make_daemon, e2e_clock):
    """http.token set: a cross-site form carrying a guessed token is refused; the bearer
    header works from anywhere (the CLI); the page's form needs both CSRF and the token."""
    daemon = make_daemon(WITH_TOKEN)
    await daemon.prepare()
    app = create_web_app(daemon)
    async with client_for(app, client_host="192.0.2.7") as client:
        csrf = csrf_of((await client.get("/")).text)
        evil = await client.post("/integrations/amazon-uk/retry",
                                 data={"csrf": csrf, "token": TOKEN},
                                 headers={"origin": "http://evil.example"})
        header = await client.post("/stock-changed",
                                   headers={"authorization": f"Bearer {TOKEN}",
                                            "origin": "http://evil.example"})
        form_without = await client.post("/integrations/amazon-uk/retry", data={"csrf": csrf},
                                         headers={"origin": "http://127.0.0.1:8470"})
        form = await client.post("/integrations/amazon-uk/retry",
                                 data={"csrf": csrf, "token": TOKEN},
                                 headers={"origin": "http://127.0.0.1:8470"})
        json_body = await client.post("/stock-changed", json={"token": TOKEN})
    assert evil.status_code == 403 and "cross-origin" in evil.text
    assert header.status_code == 202
    assert form_without.status_code == 403 and "token" in form_without.text
    assert form.status_code == 303
    assert json_body.status_code == 403  # a token is read from the header or a form only


async def test_bodies_over_64_kib_are_refused(make_daemon, e2e_clock):
    """A declared length over 64 KiB is refused before reading; a streamed (chunked) body
    is cut off just past 64 KiB; a body within the limit passes."""
    daemon = make_daemon()
    await daemon.prepare()
    app = create_web_app(daemon)
    streamed = Counting(50 << 20, chunk=16 << 10)
    async with client_for(app) as client:
        declared = await client.post("/stock-changed", content=b"x" * (MAX_BODY + 1))
        chunked = await client.post("/stock-changed", content=streamed)
        small = await client.post("/stock-changed", content=b"x" * MAX_BODY)
    assert declared.status_code == 413 and "64 KiB" in declared.text
    assert chunked.status_code == 413
    assert streamed.pulled <= MAX_BODY + streamed.chunk
    assert small.status_code == 202


async def test_a_400_mb_post_with_a_wrong_token_is_refused_unread(make_daemon, e2e_clock):
    """The reported case: 400 MB POSTed with a wrong token. A wrong bearer header is
    refused before one byte of the body is read; a wrong token in a 400 MB form is cut
    off at 64 KiB; memory stays bounded (peak far below the body)."""
    daemon = make_daemon(WITH_TOKEN)
    await daemon.prepare()
    app = create_web_app(daemon)
    header_case = Counting(400 << 20)
    form_case = Counting(400 << 20, chunk=64 << 10)
    tracemalloc.start()
    try:
        async with client_for(app, client_host="192.0.2.7") as client:
            wrong_header = await client.post(
                "/integrations/amazon-uk/retry", content=header_case,
                headers={"authorization": "Bearer guess",
                         "content-length": str(header_case.total)})
            wrong_form = await client.post(
                "/integrations/amazon-uk/retry", content=form_case,
                headers={"content-type": "application/x-www-form-urlencoded"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert wrong_header.status_code == 403 and "wrong token" in wrong_header.text
    assert header_case.pulled <= header_case.chunk  # the transport's first pull, unread
    assert wrong_form.status_code == 413
    assert form_case.pulled <= MAX_BODY + form_case.chunk
    assert peak < 16 << 20, f"peak {peak >> 20} MiB while refusing 400 MB"


async def test_a_real_server_answers_a_400_mb_wrong_token_post_before_the_body(
        make_daemon, e2e_clock):
    """Over a real socket (hypercorn): the 403 for a wrong token comes back after the
    headers and 64 KiB, and the connection is closed before 400 MB could be pushed in."""
    daemon = make_daemon(WITH_TOKEN)
    await daemon.prepare()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(lambda task_status: serve_web(
            daemon, listen="127.0.0.1:0", task_status=task_status))
        port = int(url.rpartition(":")[2])
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        head = (f"POST /integrations/amazon-uk/retry HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer guess\r\nContent-Length: {400 << 20}\r\n\r\n")
        await stream.send_all(head.encode() + b"x" * (64 << 10))
        answer = b""
        with trio.fail_after(600):
            while b"\r\n\r\n" not in answer:
                answer += await stream.receive_some(65536)
        sent_more = 0
        try:  # the server closes: 400 MB can never be pushed through
            for _ in range(400):
                await stream.send_all(b"x" * (1 << 20))
                sent_more += 1
        except trio.BrokenResourceError:
            pass
        await stream.aclose()
        nursery.cancel_scope.cancel()
    assert answer.startswith(b"HTTP/1.1 403")
    assert sent_more < 400


async def test_token_for_reads_guards_the_page_and_metrics_but_not_healthz(make_daemon,
                                                                            e2e_clock):
    """With http.token_for_reads, the page and /metrics answer 401 (with a Basic
    challenge, so a browser prompts) until given the token, as Bearer or Basic password;
    /healthz stays open for probes."""
    daemon = make_daemon(WITH_TOKEN + "  token_for_reads: true\n")
    await daemon.prepare()
    app = create_web_app(daemon)
    basic = base64.b64encode(f"operator:{TOKEN}".encode()).decode()
    async with client_for(app) as client:
        bare = await client.get("/")
        metrics = await client.get("/metrics")
        wrong = await client.get("/", headers={"authorization": "Bearer guess"})
        bearer = await client.get("/", headers={"authorization": f"Bearer {TOKEN}"})
        browser = await client.get("/", headers={"authorization": f"Basic {basic}"})
        healthz = await client.get("/healthz")
    assert bare.status_code == 401 and bare.headers["www-authenticate"].startswith("Basic")
    assert metrics.status_code == 401 and wrong.status_code == 401
    assert bearer.status_code == 200 and browser.status_code == 200
    assert "data-alias='amazon-uk'" in browser.text
    assert healthz.status_code == 503 and "scheduler" in healthz.text  # answered, not 401


@pytest.mark.parametrize("http, expected", [
    ("  listen: 0.0.0.0:8470\n", "http://127.0.0.1:8470/channels/amazon/callback"),
    ("  listen: '[::]:8470'\n", "http://[::1]:8470/channels/amazon/callback"),
    ("  listen: 0.0.0.0:8470\n  public_url: https://shop.example.com/ms/\n",
     "https://shop.example.com/ms/channels/amazon/callback"),
    ("  listen: 127.0.0.1:9000\n", "http://127.0.0.1:9000/channels/amazon/callback"),
])
async def test_the_consent_redirect_never_names_a_wildcard_address(make_daemon, e2e_clock,
                                                                   http, expected):
    """The OAuth redirect is http.public_url when set; a wildcard bind address becomes
    loopback, never http://0.0.0.0:…"""
    daemon = make_daemon("http:\n" + http)
    assert connect.redirect_uri(daemon, "amazon") == expected
    assert "0.0.0.0" not in connect.redirect_uri(daemon, "amazon")
