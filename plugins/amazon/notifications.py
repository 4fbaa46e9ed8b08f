"""Notifications API v1: subscribe an account's queue to the notification types we act on.

Destinations belong to the application, not to a seller, so reading and creating them
(and deleting a subscription) takes a *grantless* access token: LWA
``client_credentials`` with the ``sellingpartnerapi::notifications`` scope. Subscribing
takes the seller's own token. Both are idempotent here: an existing destination for the
queue is reused, an existing subscription (409) is reported, not duplicated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx

from marketsync.core.errors import BadNotification, IntegrationError, TransientError
from marketsync.core.runtime.http import OPERATION
from marketsync.core.types import Integration, Notice
from marketsync.plugins.amazon import marketplaces
from marketsync.plugins.amazon.client import AmazonRequestError, SpApi, first_error

BASE = "/notifications/v1"
SCOPE = "sellingpartnerapi::notifications"
#: notification type → the job that fetches what it announces (an ORDER_CHANGE names its
#: order, which is fetched alone with getOrder; the import runs only if that fails)
JOB_FOR = {
    "ORDER_CHANGE": "import_orders",
    "FBA_INVENTORY_AVAILABILITY_CHANGES": "import_stock",
    "FULFILLMENT_ORDER_STATUS": "fetch_tracking",
    "FEED_PROCESSING_FINISHED": "poll_submission",
    "REPORT_PROCESSING_FINISHED": "import_products",
}
#: a finished report is followed up by the job that asked for it; another type (made by
#: someone else with the same application) needs nothing from us
JOB_FOR_REPORT = {
    "GET_MERCHANT_LISTINGS_ALL_DATA": "import_products",
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL": "import_orders",  # the backfill
}
#: what the daemon subscribes to: every type it acts on
TYPES = tuple(JOB_FOR)
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


# --- reading what the queue delivers --------------------------------------------------------


def _get(mapping: Any, name: str) -> Any:
    """SP-API envelopes spell keys PascalCase (orders, FBA) or camelCase (feeds, reports)."""
    if not isinstance(mapping, dict):
        return None
    if name in mapping:
        return mapping[name]
    return mapping.get(name[0].lower() + name[1:])


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def read_notification(body: str) -> Notice:
    """An SQS message body as an SP-API notification envelope (the official schemas in
    shared/spapi/schemas): its id, type, seller, subject and the job that fetches it."""
    try:
        envelope = json.loads(body)
    except ValueError:
        raise BadNotification("the message body is not JSON") from None
    kind = _get(envelope, "NotificationType")
    notification_id = _get(_get(envelope, "NotificationMetadata"), "NotificationId")
    payload = _get(envelope, "Payload")
    if not isinstance(kind, str) or not isinstance(notification_id, str) or not notification_id:
        raise BadNotification("NotificationType or NotificationMetadata.NotificationId missing")
    if not isinstance(payload, dict):
        raise BadNotification(f"{kind} {notification_id}: Payload missing")
    seller, subject, job = _get(payload, "SellerId"), None, JOB_FOR.get(kind)
    record_id = marketplace = None
    if kind == "ORDER_CHANGE":
        inner = _get(payload, "OrderChangeNotification")
        seller, subject = _get(inner, "SellerId"), _get(inner, "AmazonOrderId")
        if not isinstance(subject, str) or not subject:
            raise BadNotification(f"ORDER_CHANGE {notification_id}: AmazonOrderId missing")
        record_id = subject[:128]
        marketplace = _marketplace_code(_get(_get(inner, "Summary"), "MarketplaceId"))
    elif kind == "FULFILLMENT_ORDER_STATUS":
        inner = _get(payload, "FulfillmentOrderStatusNotification")
        seller, subject = _get(inner, "SellerId"), _get(inner, "SellerFulfillmentOrderId")
    elif kind == "FEED_PROCESSING_FINISHED":
        inner = _get(payload, "FeedProcessingFinishedNotification")
        seller, subject = _get(inner, "SellerId"), _get(inner, "FeedId")
    elif kind == "REPORT_PROCESSING_FINISHED":
        inner = _get(payload, "ReportProcessingFinishedNotification")
        seller, subject = _get(inner, "SellerId"), _get(inner, "ReportId")
        job = JOB_FOR_REPORT.get(str(_get(inner, "ReportType")))
    elif kind == "FBA_INVENTORY_AVAILABILITY_CHANGES":
        subject = _get(payload, "SKU")
    return Notice(notification_id=notification_id, type=kind, job=job,
                  seller_id=seller if isinstance(seller, str) else None,
                  subject=str(subject)[:128] if subject is not None else None,
                  event_time=_time(_get(envelope, "EventTime")),
                  record_id=record_id, marketplace=marketplace)


def _marketplace_code(marketplace_id: Any) -> str | None:
    """The integrations' code (DE) for Amazon's id; an id we do not know is kept as it
    is, so the core finds no integration for it and counts it instead of fetching; a
    missing one is None (the import then runs, as for a notification without a record)."""
    if not isinstance(marketplace_id, str) or not marketplace_id:
        return None
    try:
        return marketplaces.by_id(marketplace_id).code
    except KeyError:
        return marketplace_id[:32]
