"""`marketsync sandbox serve`: the simulator on a loopback port, credentials printed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx


def test_sandbox_serve_answers_lwa_and_sp_api_on_a_loopback_port():
    """Start it on a free port; the printed credentials get a token and a real answer."""
    process = subprocess.Popen(
        [sys.executable, "-m", "marketsync.daemon", "sandbox", "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "control API" in line:
                break
        text = "".join(lines)
        base = re.search(r"simulator at (http://127\.0\.0\.1:\d+)", text).group(1)
        client_id = re.search(r"LWA client_id\s+(\S+)", text).group(1)
        secret = re.search(r"LWA client_secret\s+(\S+)", text).group(1)
        refresh = re.search(r"refresh_token\s+(\S+)", text).group(1)
        token = httpx.post(f"{base}/auth/o2/token", data={
            "grant_type": "refresh_token", "refresh_token": refresh,
            "client_id": client_id, "client_secret": secret}, timeout=10)
        assert token.status_code == 200, token.text
        answer = httpx.get(f"{base}/sellers/v1/marketplaceParticipations",
                           headers={"x-amz-access-token": token.json()["access_token"]}, timeout=10)
        assert answer.status_code == 200 and answer.json()["payload"]
        assert answer.headers["x-amzn-RequestId"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)  # a loaded machine stops hypercorn slowly
        except subprocess.TimeoutExpired:
            process.kill()
            raise
