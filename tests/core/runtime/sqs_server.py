"""A real SQS-protocol server on loopback for the notification tests: moto in server mode.

``.ci/run`` starts one and exports ``MARKETSYNC_TEST_SQS``; without it the fixture starts
its own (moto is in the test extra). Either way the tests talk SQS's wire protocol to a
separate process, never to a mock of our client.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

ENV = "MARKETSYNC_TEST_SQS"
#: Amazon's official models and schemas, beside the repository (or $MARKETSYNC_SPAPI)
SPAPI = Path(os.environ.get("MARKETSYNC_SPAPI")
             or Path(__file__).resolve().parents[3].parent / "shared" / "spapi")


def start_moto() -> tuple[str, subprocess.Popen | None]:
    if os.environ.get(ENV):
        return os.environ[ENV].rstrip("/"), None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/moto-api/", timeout=1)
            return url, process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("moto server did not start within 30 s")


def sqs(endpoint: str, action: str, body: dict) -> dict:
    """A signed JSON-protocol call (moto routes by the signature's service): test set-up."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    payload = json.dumps(body)
    request = AWSRequest(method="POST", url=endpoint + "/", data=payload, headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AmazonSQS.{action}"})
    SigV4Auth(Credentials("test", "test"), "sqs", "us-east-1").add_auth(request)
    response = httpx.post(endpoint + "/", content=payload, headers=dict(request.headers.items()))
    response.raise_for_status()
    return response.json() if response.content else {}


def new_queue(endpoint: str, **attributes: str) -> str:
    name = f"marketsync-test-{uuid.uuid4().hex[:12]}"
    return sqs(endpoint, "CreateQueue", {"QueueName": name, "Attributes": attributes})["QueueUrl"]
