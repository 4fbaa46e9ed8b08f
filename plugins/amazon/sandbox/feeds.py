"""Feeds API 2021-06-30: feed documents, feeds and their slow, fallible processing.

A feed is accepted at once (202) and done later: IN_QUEUE, IN_PROGRESS, then DONE with a
processing report, or FATAL. The daemon's whole submission bookkeeping rests on that delay,
so the simulator keeps it (``CatalogTiming``), can make it infinite (``faults.stuck_feeds``)
or fatal (``faults.fatal_feeds``), ends the listing feed types Amazon removed on 2025-07-31
FATAL as Amazon does, and refuses a sixth JSON_LISTINGS_FEED in five minutes per region.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from marketsync.core import clock

from . import listings_feed
from .gateway import QUOTA_MESSAGE, Call, error_response, json_response, sp_api

if TYPE_CHECKING:
    from .catalog import Catalog

BASE = "/feeds/2021-06-30"
LISTINGS_FEED = "JSON_LISTINGS_FEED"
STATUSES = ("IN_QUEUE", "IN_PROGRESS", "DONE", "CANCELLED", "FATAL")
REMOVED_FEED_TYPES = frozenset({
    "POST_PRODUCT_DATA", "POST_INVENTORY_AVAILABILITY_DATA", "POST_PRODUCT_OVERRIDES_DATA",
    "POST_PRODUCT_PRICING_DATA", "POST_PRODUCT_IMAGE_DATA", "POST_PRODUCT_RELATIONSHIP_DATA",
    "POST_FLAT_FILE_INVLOADER_DATA", "POST_FLAT_FILE_BOOKLOADER_DATA",
    "POST_FLAT_FILE_CONVERGENCE_LISTINGS_DATA", "POST_FLAT_FILE_LISTINGS_DATA",
    "POST_FLAT_FILE_PRICEANDQUANTITYONLY_UPDATE_DATA", "POST_UIEE_BOOKLOADER_DATA",
})
RETENTION = timedelta(days=90)
REPORT_CONTENT_TYPE = "application/json; charset=UTF-8"


@dataclass
class Feed:
    feed_id: str
    seller_id: str
    feed_type: str
    marketplace_ids: list[str]
    document_id: str
    created: datetime
    options: dict[str, str] = field(default_factory=dict)
    status: str = "IN_QUEUE"
    started: datetime | None = None
    ended: datetime | None = None
    result_document_id: str | None = None
    held: bool = False                  # was stuck at some point: ends when released

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "feedId": self.feed_id, "feedType": self.feed_type,
            "marketplaceIds": self.marketplace_ids,
            "createdTime": clock.isoformat(self.created),
            "processingStatus": self.status,
        }
        if self.started:
            body["processingStartTime"] = clock.isoformat(self.started)
        if self.ended:
            body["processingEndTime"] = clock.isoformat(self.ended)
        if self.result_document_id:
            body["resultFeedDocumentId"] = self.result_document_id
        return body


class FeedStore:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.feeds: dict[str, Feed] = {}
        self.page_tokens: dict[str, tuple[dict[str, Any], int]] = {}

    def listings_feed_allowed(self, seller_id: str, now: datetime) -> bool:
        """Five JSON_LISTINGS_FEED submissions per five minutes per region (REFERENCE §7.4).

        A seller account is regional, so the account is the region's counter; the window
        lives with the world's other rate limits.
        """
        timing = self.catalog.timing
        return self.catalog.world.throttle.window_allows(
            f"{LISTINGS_FEED}:{seller_id}", now, limit=timing.listings_feed_limit,
            window=timing.listings_feed_window)

    def _fault(self, name: str, feed: Feed) -> bool:
        flag = getattr(self.catalog.world.faults, name, False)
        if isinstance(flag, (set, frozenset, list, tuple)):
            return bool({feed.feed_id, feed.feed_type, feed.seller_id} & set(flag))
        return bool(flag)

    def advance(self, now: datetime) -> None:
        timing = self.catalog.timing
        for feed in sorted(self.feeds.values(), key=lambda f: (f.created, f.feed_id)):
            if feed.status == "IN_QUEUE" and now >= feed.created + timing.feed_queue:
                feed.status, feed.started = "IN_PROGRESS", feed.created + timing.feed_queue
            if feed.status != "IN_PROGRESS" or feed.started is None:
                continue
            if self._fault("stuck_feeds", feed):
                feed.held = True
                continue
            due = feed.started + timing.feed_processing
            if now >= due:
                self._finish(feed, now if feed.held else due)

    def _finish(self, feed: Feed, ended: datetime) -> None:
        seller = feed.seller_id
        document = self.catalog.documents.get(seller, feed.document_id)
        fatal: str | None = None
        report: dict[str, Any] | None = None
        if self._fault("fatal_feeds", feed):
            fatal = "The feed could not be processed because of an internal error."
        elif feed.feed_type in REMOVED_FEED_TYPES:
            fatal = (f"Feed type {feed.feed_type} is no longer supported (removed "
                     f"2025-07-31); submit listings data with JSON_LISTINGS_FEED.")
        elif feed.feed_type != LISTINGS_FEED:
            fatal = f"Feed type {feed.feed_type} is not simulated by the marketsync sandbox."
        elif document is None or document.content is None:
            fatal = "The input feed document was never uploaded."
        else:
            try:
                report = listings_feed.process(self.catalog, seller, feed.feed_id,
                                               feed.marketplace_ids, document.content)
            except listings_feed.FeedRejected as exc:
                fatal = str(exc)
        if fatal is not None:
            report = listings_feed.fatal_report(seller, feed.feed_id, fatal)
        result = self.catalog.documents.store_generated(
            seller, json.dumps(report, indent=1).encode(), REPORT_CONTENT_TYPE, ended,
            compress=True)
        feed.status = "FATAL" if fatal is not None else "DONE"
        feed.ended, feed.result_document_id = ended, result.document_id


# -- query helpers shared by the feeds and reports routes ----------------------------------

class BadInput(Exception):
    """A request parameter Amazon would refuse with 400 InvalidInput."""


def csv_param(request: Request, name: str, *, limit: int | None = None,
              allowed: tuple[str, ...] | None = None) -> list[str] | None:
    raw = request.query_params.getlist(name)
    if not raw:
        return None
    values = [v for part in raw for v in part.split(",") if v]
    if not values:
        raise BadInput(f"{name} must not be empty")
    if limit is not None and len(values) > limit:
        raise BadInput(f"{name} accepts at most {limit} values, got {len(values)}")
    if allowed is not None:
        wrong = [v for v in values if v not in allowed]
        if wrong:
            raise BadInput(f"{name} has invalid values {wrong}; allowed: {list(allowed)}")
    return values


def parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{name} {value!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise BadInput(f"{name} {value!r} needs a time zone (e.g. Z)")
    return moment


def page_size(request: Request, default: int, maximum: int) -> int:
    raw = request.query_params.get("pageSize")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise BadInput(f"pageSize must be an integer 1..{maximum}, not {raw!r}")
    return int(raw)


def invalid(message: str) -> Response:
    return error_response(400, "InvalidInput", message)


def not_found(message: str) -> Response:
    return error_response(404, "NotFound", message)


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except json.JSONDecodeError as exc:
        raise BadInput(f"The request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadInput("The request body must be a JSON object")
    return body


def check_marketplaces(call: Call, values: Any, *, minimum: int = 1, maximum: int = 25) -> list[str]:
    if (not isinstance(values, list) or not minimum <= len(values) <= maximum
            or not all(isinstance(v, str) for v in values)):
        raise BadInput(f"marketplaceIds must be a list of {minimum}..{maximum} marketplace ids")
    foreign = [v for v in values if v not in call.account.marketplace_ids]
    if foreign:
        raise BadInput(f"marketplaceIds {foreign} are not marketplaces of this selling partner")
    return values


# -- routes ------------------------------------------------------------------------------

@sp_api("createFeedDocument")
async def create_feed_document(request: Request, call: Call) -> Response:
    try:
        body = await json_body(request)
    except BadInput as exc:
        return invalid(str(exc))
    content_type = body.get("contentType")
    if not isinstance(content_type, str) or not content_type.strip():
        return invalid("contentType is required")
    document, url = call.world.catalog.documents.create_upload(
        call.account.seller_id, content_type, call.now)
    return json_response({"feedDocumentId": document.document_id, "url": url}, 201)


@sp_api("createFeed")
async def create_feed(request: Request, call: Call) -> Response:
    catalog = call.world.catalog
    try:
        body = await json_body(request)
        feed_type = body.get("feedType")
        if not isinstance(feed_type, str) or not feed_type:
            raise BadInput("feedType is required")
        marketplace_ids = check_marketplaces(call, body.get("marketplaceIds"))
        options = body.get("feedOptions") or {}
        if not isinstance(options, dict) or not all(
                isinstance(v, str) for v in options.values()):
            raise BadInput("feedOptions must be an object of strings")
    except BadInput as exc:
        return invalid(str(exc))
    document = catalog.documents.get(call.account.seller_id, str(body.get("inputFeedDocumentId")))
    if document is None:
        return invalid(f"inputFeedDocumentId {body.get('inputFeedDocumentId')!r} is not a feed "
                       f"document of this selling partner")
    if document.used_by is not None:
        return invalid(f"Feed document {document.document_id} was already submitted "
                       f"(feed {document.used_by})")
    if feed_type == LISTINGS_FEED and not catalog.feeds.listings_feed_allowed(
            call.account.seller_id, call.now):
        return error_response(429, "QuotaExceeded", QUOTA_MESSAGE)
    feed = Feed(catalog.new_id(), call.account.seller_id, feed_type, marketplace_ids,
                document.document_id, call.now, options)
    document.used_by = feed.feed_id
    catalog.feeds.feeds[feed.feed_id] = feed
    return json_response({"feedId": feed.feed_id}, 202)


def _own_feed(call: Call, feed_id: str) -> Feed | None:
    feed = call.world.catalog.feeds.feeds.get(feed_id)
    return feed if feed is not None and feed.seller_id == call.account.seller_id else None


@sp_api("getFeed")
async def get_feed(request: Request, call: Call) -> Response:
    feed = _own_feed(call, request.path_params["feedId"])
    if feed is None:
        return not_found(f"Feed {request.path_params['feedId']} was not found")
    return json_response(feed.as_json())


@sp_api("cancelFeed")
async def cancel_feed(request: Request, call: Call) -> Response:
    feed = _own_feed(call, request.path_params["feedId"])
    if feed is None:
        return not_found(f"Feed {request.path_params['feedId']} was not found")
    if feed.status != "IN_QUEUE":
        return invalid(f"Feed {feed.feed_id} is {feed.status}; only IN_QUEUE feeds can be "
                       f"cancelled")
    feed.status = "CANCELLED"
    return Response(status_code=200)


@sp_api("getFeeds")
async def get_feeds(request: Request, call: Call) -> Response:
    return list_page(request, call, call.world.catalog.feeds, call.world.catalog.feeds.feeds,
                     type_param="feedTypes", type_of=lambda f: f.feed_type,
                     id_of=lambda f: f.feed_id, body_key="feeds")


def list_page(request: Request, call: Call, store: Any, items: dict, *, type_param: str,
              type_of, id_of, body_key: str) -> Response:
    """getFeeds and getReports: the same filters and paging over the seller's own items.

    A ``nextToken`` must come alone and is good once; the filters it stands for are kept
    with it, so later pages are the same query.
    """
    token = request.query_params.get("nextToken")
    try:
        if token is not None:
            if len(request.query_params) > 1:
                raise BadInput("nextToken must be sent alone, without other parameters")
            if token not in store.page_tokens:
                raise BadInput("nextToken is invalid")
            query, offset = store.page_tokens.pop(token)
        else:
            types = csv_param(request, type_param, limit=10)
            if types is None:
                raise BadInput(f"{type_param} or nextToken is required")
            query = {
                "types": types,
                "marketplaceIds": csv_param(request, "marketplaceIds", limit=10),
                "statuses": csv_param(request, "processingStatuses", allowed=STATUSES),
                "since": parse_time(request.query_params.get("createdSince"), "createdSince")
                or call.now - RETENTION,
                "until": parse_time(request.query_params.get("createdUntil"), "createdUntil")
                or call.now,
                "size": page_size(request, 10, 100),
            }
            offset = 0
    except BadInput as exc:
        return invalid(str(exc))
    found = [x for x in items.values()
             if x.seller_id == call.account.seller_id and type_of(x) in query["types"]
             and query["since"] <= x.created <= query["until"]
             and (query["statuses"] is None or x.status in query["statuses"])
             and (query["marketplaceIds"] is None
                  or set(x.marketplace_ids) & set(query["marketplaceIds"]))]
    found.sort(key=lambda x: (x.created, id_of(x)), reverse=True)
    page = found[offset:offset + query["size"]]
    body: dict[str, Any] = {body_key: [x.as_json() for x in page]}
    if offset + query["size"] < len(found):
        next_token = call.world.catalog.new_token()
        store.page_tokens[next_token] = (query, offset + query["size"])
        body["nextToken"] = next_token
    return json_response(body)


@sp_api("getFeedDocument")
async def get_feed_document(request: Request, call: Call) -> Response:
    documents = call.world.catalog.documents
    document = documents.get(call.account.seller_id, request.path_params["feedDocumentId"])
    if document is None or document.content is None:
        return not_found(f"Feed document {request.path_params['feedDocumentId']} was not found")
    encoding = request.query_params.get("enableContentEncodingUrlHeader") == "true"
    body = {"feedDocumentId": document.document_id,
            "url": documents.download_url(document, call.now, content_encoding=encoding)}
    if document.compression:
        body["compressionAlgorithm"] = document.compression
    return json_response(body)


def routes(catalog: Catalog) -> list[BaseRoute]:
    return [
        Route(f"{BASE}/documents", create_feed_document, methods=["POST"]),
        Route(f"{BASE}/documents/{{feedDocumentId}}", get_feed_document, methods=["GET"]),
        Route(f"{BASE}/feeds", create_feed, methods=["POST"]),
        Route(f"{BASE}/feeds", get_feeds, methods=["GET"]),
        Route(f"{BASE}/feeds/{{feedId}}", get_feed, methods=["GET"]),
        Route(f"{BASE}/feeds/{{feedId}}", cancel_feed, methods=["DELETE"]),
    ]
