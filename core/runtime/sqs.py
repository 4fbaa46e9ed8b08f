"""Just enough of Amazon SQS for the notifications consumer, spoken over the daemon's httpx.

The wire protocol is SQS's AWS JSON 1.0 (``X-Amz-Target: AmazonSQS.<Action>``) and every
request is signed with Signature Version 4 by botocore's own signer, so the signing and
the credential rules are AWS's, not ours. The requests themselves go through
``httpx.AsyncClient`` rather than boto3 so that a long poll is an ordinary trio await:
cancellable at shutdown, with a deadline, and no worker thread pinned for 20 seconds
(research/wave2.md §2.2 compares the options).

botocore is large and only needed for notifications, so it sits in the optional extra
``marketsync[notifications]``; without it, ``SqsQueue`` says so in one line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

INSTALL_HINT = ("notifications need the optional extra: pip install 'marketsync[notifications]' "
                "(botocore signs the SQS requests)")
_REGION = re.compile(r"sqs[.-]([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com")
#: SQS's own bounds for ReceiveMessage
MAX_WAIT, MAX_MESSAGES = 20, 10


class NotificationsUnavailable(RuntimeError):
    """The optional extra is not installed."""


class SqsError(RuntimeError):
    """SQS answered with an error (the message carries its type, never the credentials)."""

    def __init__(self, status: int, kind: str, message: str):
        self.status, self.kind = status, kind
        super().__init__(f"SQS {status} {kind}: {message}"[:500])


@dataclass(frozen=True, slots=True)
class Message:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int


def region_of(queue_url: str, configured: str | None) -> str:
    """The configured region, else the one an AWS queue URL names, else us-east-1 (what a
    local SQS-compatible server such as moto takes)."""
    if configured:
        return configured
    found = _REGION.search(urlsplit(queue_url).netloc)
    return found.group(1) if found else "us-east-1"


def _botocore() -> tuple[Any, Any, Any]:
    try:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
    except ImportError:
        raise NotificationsUnavailable(INSTALL_HINT) from None
    return SigV4Auth, AWSRequest, Credentials


class SqsQueue:
    """One queue, one set of credentials; ``http`` is the caller's client (not closed here)."""

    def __init__(self, http: httpx.AsyncClient, queue_url: str, *, access_key_id: str,
                 secret_access_key: str, region: str | None = None):
        self._sign, self._request, credentials = _botocore()
        self._credentials = credentials(access_key_id, secret_access_key)
        self.http = http
        self.queue_url = queue_url
        self.region = region_of(queue_url, region)
        parts = urlsplit(queue_url)
        self.endpoint = f"{parts.scheme}://{parts.netloc}/"

    async def call(self, action: str, body: dict[str, Any], *, timeout: float = 30.0
                   ) -> dict[str, Any]:
        payload = json.dumps({"QueueUrl": self.queue_url, **body})
        request = self._request(method="POST", url=self.endpoint, data=payload, headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"AmazonSQS.{action}"})
        self._sign(self._credentials, "sqs", self.region).add_auth(request)
        response = await self.http.post(self.endpoint, content=payload,
                                        headers=dict(request.headers.items()), timeout=timeout)
        try:
            answer = response.json() if response.content else {}
        except ValueError:
            answer = {}
        if response.status_code != 200:
            kind = str(answer.get("__type") or answer.get("code") or "Error").rpartition("#")[2]
            raise SqsError(response.status_code, kind, str(answer.get("message") or
                                                          answer.get("Message") or ""))
        return answer

    async def receive(self, *, wait_seconds: int = MAX_WAIT, max_messages: int = MAX_MESSAGES,
                      visibility_timeout: int = 120) -> list[Message]:
        """A long poll; the HTTP deadline is longer than the wait, as SQS asks."""
        answer = await self.call("ReceiveMessage", {
            "WaitTimeSeconds": min(wait_seconds, MAX_WAIT),
            "MaxNumberOfMessages": min(max_messages, MAX_MESSAGES),
            "VisibilityTimeout": visibility_timeout,
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
        }, timeout=wait_seconds + 10)
        return [Message(message_id=m["MessageId"], receipt_handle=m["ReceiptHandle"],
                        body=m.get("Body") or "",
                        receive_count=int((m.get("Attributes") or {}).get(
                            "ApproximateReceiveCount", 1)))
                for m in answer.get("Messages") or ()]

    async def delete(self, message: Message) -> None:
        await self.call("DeleteMessage", {"ReceiptHandle": message.receipt_handle})

    async def attributes(self) -> dict[str, str]:
        answer = await self.call("GetQueueAttributes", {"AttributeNames": ["All"]})
        return dict(answer.get("Attributes") or {})
