"""Notifications API v1: subscribe an account's queue to the notification types we act on.

Destinations belong to the application, not to a seller, so reading and creating them
(and deleting a subscription) takes a *grantless* access token: LWA
``client_credentials`` with the ``sellingpartnerapi::notifications`` scope. Subscribing
takes the seller's own token. Both are idempotent here: an existing destination for the
queue is reused, an existing subscription (409) is reported, not duplicated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from marketsync.core.errors import IntegrationError, TransientError
from marketsync.core.runtime.http import OPERATION
from marketsync.core.types import Integration
from marketsync.plugins.amazon.client import AmazonRequestError, SpApi, first_error

BASE = "/notifications/v1"
SCOPE = "sellingpartnerapi::notifications"
#: what the daemon acts on (core/runtime/notifications.py JOB_FOR)
TYPES = ("ORDER_CHANGE", "FBA_INVENTORY_AVAILABILITY_CHANGES", "FULFILLMENT_ORDER_STATUS",
         "FEED_PROCESSING_FINISHED", "REPORT_PROCESSING_FINISHED")
PAYLOAD_VERSION = {"FEED_PROCESSING_FINISHED": "2020-09-04",
                   "REPORT_PROCESSING_FINISHED": "2020-09-04"}


def queue_arn(queue_url: str) -> str:
    """https://sqs.REGION.amazonaws.com/ACCOUNT/NAME → arn:aws:sqs:REGION:ACCOUNT:NAME
    (a loopback queue, as the tests use, is taken as us-east-1)."""
    from urllib.parse import urlsplit

    parts = urlsplit(queue_url)
    path = [p for p in parts.path.split("/") if p]
    if len(path) != 2:
        raise IntegrationError(f"{queue_url!r} is not an SQS queue URL (…/ACCOUNT/NAME)")
    host = parts.netloc.split(".")
    region = host[1] if len(host) > 3 and host[0] == "sqs" else "us-east-1"
    return f"arn:aws:sqs:{region}:{path[0]}:{path[1]}"


async def _grantless_token(api: SpApi) -> str:
    credentials = api.integration.credentials
    body = await api.lwa({"grant_type": "client_credentials", "scope": SCOPE,
                          "client_id": credentials.get("client_id", ""),
                          "client_secret": credentials.get("client_secret", "")})
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise TransientError("Login with Amazon answered without an access_token")
    return token


async def _grantless(api: SpApi, token: str, method: str, path: str, operation: str,
                     json: Any = None) -> httpx.Response:
    try:
        return await api.http.request(method, api.endpoint + path, json=json,
                                      headers={"x-amz-access-token": token},
                                      extensions={OPERATION: operation})
    except httpx.TransportError as exc:
        raise TransientError(f"{operation}: {type(exc).__name__}") from None


def _check(response: httpx.Response, operation: str) -> dict[str, Any]:
    if response.status_code >= 500:
        raise TransientError(f"{operation}: HTTP {response.status_code}")
    if response.status_code != 200:
        code, message = first_error(response)
        raise AmazonRequestError(operation, response.status_code, code, message)
    return response.json() if response.content else {}


async def subscribe(integration: Integration, queue_url: str,
                    types: Sequence[str] = TYPES) -> list[str]:
    """The queue as a destination (reused if there), then one subscription per type."""
    api = SpApi(integration)
    arn = queue_arn(queue_url)
    token = await _grantless_token(api)
    listed = _check(await _grantless(api, token, "GET", f"{BASE}/destinations",
                                     "getDestinations"), "getDestinations")
    destination = next((d["destinationId"] for d in listed.get("payload") or ()
                        if ((d.get("resource") or {}).get("sqs") or {}).get("arn") == arn), None)
    lines = []
    if destination is None:
        made = _check(await _grantless(
            api, token, "POST", f"{BASE}/destinations", "createDestination",
            json={"name": f"marketsync-{integration.account}"[:256],
                  "resourceSpecification": {"sqs": {"arn": arn}}}), "createDestination")
        destination = made["payload"]["destinationId"]
        lines.append(f"destination {destination} created for {arn}")
    else:
        lines.append(f"destination {destination} for {arn} already there")
    for kind in types:
        try:
            made = await api.send_json("POST", f"{BASE}/subscriptions/{kind}", "createSubscription",
                                       json={"payloadVersion": PAYLOAD_VERSION.get(kind, "1.0"),
                                             "destinationId": destination})
        except AmazonRequestError as exc:
            if exc.status == 409:
                lines.append(f"{kind}: already subscribed")
                continue
            raise
        lines.append(f"{kind}: subscribed ({made['payload']['subscriptionId']})")
    return lines


async def unsubscribe(integration: Integration, types: Sequence[str] = TYPES) -> list[str]:
    api = SpApi(integration)
    token = await _grantless_token(api)
    lines = []
    for kind in types:
        try:
            found = await api.get_json(f"{BASE}/subscriptions/{kind}", "getSubscription")
        except AmazonRequestError as exc:
            if exc.status == 404:
                lines.append(f"{kind}: not subscribed")
                continue
            raise
        subscription = found["payload"]["subscriptionId"]
        _check(await _grantless(api, token, "DELETE", f"{BASE}/subscriptions/{kind}/{subscription}",
                                "deleteSubscriptionById"), "deleteSubscriptionById")
        lines.append(f"{kind}: unsubscribed ({subscription})")
    return lines
