"""JSON_LISTINGS_FEED: validate a feed document, apply its messages, write the report.

The same message semantics serve ``patchListingsItem`` (a patch request is a PATCH message
without a messageId), so a client cannot pass through one path and fail through the other.

Amazon validates each message on its own: a bad message becomes an ERROR issue in the
processing report and the others still apply. Only a document that cannot be read at all
(not JSON, wrong header, another seller) ends the feed FATAL. Within one message the
patches apply all-or-nothing, which is what the summary's "accepted" count promises.

Issue codes starting with 99 are the simulator's own (Amazon's real codes are numeric
strings too, e.g. 90220 in the official example); their meaning is in docs/sandbox-catalog.md.
"""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema

if TYPE_CHECKING:
    from .catalog import Catalog, Offer

DATA = Path(__file__).with_name("data")
FEED_SCHEMA = "listings-feed-schema-v2.json"
MESSAGE_SCHEMA = "listings-feed-message-schema-v2.json"
REPORT_SCHEMA = "listings-feed-processing-report-schema-v2.json"

CODE_SCHEMA = "99001"          # message does not follow listings-feed-message-schema-v2
CODE_DUPLICATE_ID = "99002"    # messageId used twice in one feed
CODE_NOT_FOUND = "99003"       # no listing with this SKU
CODE_PRODUCT_TYPE = "99004"    # productType differs from the listing's
CODE_VALUE = "99005"           # attribute value Amazon would refuse
CODE_PATH = "99006"            # patch path is not /attributes/<name>
CODE_FBA = "99007"             # merchant quantity sent for an FBA SKU
CODE_FEED = "99010"            # the document as a whole is unusable

_PATH = re.compile(r"^/attributes/([A-Za-z0-9_]+)$")
_REQUIRES = {
    "UPDATE": ({"productType", "attributes"}, {"patches"}),
    "PARTIAL_UPDATE": ({"productType", "attributes"}, {"patches", "requirements"}),
    "PATCH": ({"productType", "patches"}, {"attributes", "requirements"}),
    "DELETE": (set(), {"productType", "attributes", "patches", "requirements"}),
}


@cache
def schema(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@cache
def _message_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(schema(MESSAGE_SCHEMA))


@cache
def _envelope_validator() -> jsonschema.Draft7Validator:
    """The feed schema with messages reduced to "objects": they are judged one by one."""
    envelope = copy.deepcopy(schema(FEED_SCHEMA))
    envelope["properties"]["messages"]["items"] = {"type": "object"}
    return jsonschema.Draft7Validator(envelope)


class FeedRejected(Exception):
    """The document as a whole cannot be processed: the feed ends FATAL."""


def issue(message: str, *, code: str, severity: str = "ERROR", message_id: int | None = None,
          sku: str | None = None, attribute: str | None = None) -> dict[str, Any]:
    """One entry of the report's ``issues`` (processing-report schema field names)."""
    found: dict[str, Any] = {}
    if isinstance(message_id, int) and not isinstance(message_id, bool) and message_id >= 1:
        found["messageId"] = message_id
    if isinstance(sku, str) and sku:
        found["sku"] = sku
    found.update(code=code, severity=severity, message=message)
    if attribute:
        found["attributeName"] = attribute
    return found


def message_shape_issues(message: Any) -> list[str]:
    """Why a message breaks the message schema, in words a seller can act on."""
    problems: list[str] = []
    for error in sorted(_message_validator().iter_errors(message), key=lambda e: e.path):
        if error.validator == "oneOf" and isinstance(message, dict):
            operation = message.get("operationType")
            needs, forbids = _REQUIRES.get(operation, (set(), set()))
            problems += [f"'{k}' is required for operationType {operation}"
                         for k in sorted(needs - message.keys())]
            problems += [f"'{k}' is not allowed for operationType {operation}"
                         for k in sorted(forbids & message.keys())]
        else:
            where = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"{where or 'message'}: {error.message}")
    return problems or []


def parse_document(raw: bytes, seller_id: str) -> dict[str, Any]:
    """Read and check the feed envelope; raise FeedRejected when nothing can be processed."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedRejected(f"The feed document is not valid UTF-8 JSON: {exc}") from None
    errors = sorted(_envelope_validator().iter_errors(document), key=lambda e: e.path)
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "document"
        raise FeedRejected(f"The feed document does not follow listings-feed-schema-v2 "
                           f"at {where}: {errors[0].message}")
    if document["header"]["sellerId"] != seller_id:
        raise FeedRejected(f"header.sellerId {document['header']['sellerId']!r} is not the "
                           f"selling partner that submitted the feed")
    return document


def process(catalog: Catalog, seller_id: str, feed_id: str, marketplace_ids: list[str],
            raw: bytes) -> dict[str, Any]:
    """Apply a JSON_LISTINGS_FEED to the catalog and return its processing report.

    Raises FeedRejected for a document that cannot be processed at all.
    """
    from .listings import render_item

    document = parse_document(raw, seller_id)
    issues: list[dict[str, Any]] = []
    seen: set[int] = set()
    invalid: set[int] = set()
    skus: list[str] = []
    messages = document["messages"]
    for position, message in enumerate(messages):
        message_id = message.get("messageId")
        key = message_id if isinstance(message_id, int) else -position - 1
        sku = message.get("sku")
        found: list[dict[str, Any]] = []
        if isinstance(message_id, int) and message_id in seen:
            found.append(issue(f"messageId {message_id} is used by an earlier message",
                               code=CODE_DUPLICATE_ID, message_id=message_id, sku=sku))
        seen.add(key)
        shape = message_shape_issues(message)
        found += [issue(p, code=CODE_SCHEMA, message_id=message_id, sku=sku) for p in shape]
        if not found:
            found = [{"messageId": message_id, **i}
                     for i in apply_message(catalog, seller_id, marketplace_ids, message)]
        if any(i["severity"] == "ERROR" for i in found):
            invalid.add(key)
        elif isinstance(sku, str) and sku not in skus:
            skus.append(sku)
        issues += found
    report: dict[str, Any] = {
        "header": {"sellerId": seller_id, "version": "2.0", "feedId": feed_id},
        "issues": issues,
        "summary": {
            "errors": sum(i["severity"] == "ERROR" for i in issues),
            "warnings": sum(i["severity"] == "WARNING" for i in issues),
            "messagesProcessed": len(messages),
            "messagesAccepted": len(messages) - len(invalid),
            "messagesInvalid": len(invalid),
        },
    }
    wanted = document["header"].get("report")
    if wanted:
        report["header"]["report"] = wanted
        items = [render_item(catalog, offer, marketplace_ids, wanted["includedData"])
                 for offer in (catalog.get(seller_id, s) for s in skus) if offer is not None]
        report["items"] = items
        report["summary"]["itemSummary"] = {"items": len(items), "errors": 0, "warnings": 0}
    return report


def fatal_report(seller_id: str, feed_id: str, reason: str) -> dict[str, Any]:
    """The report of a feed that ended FATAL: one feed-level issue, nothing processed."""
    return {
        "header": {"sellerId": seller_id, "version": "2.0", "feedId": feed_id},
        "issues": [issue(reason, code=CODE_FEED)],
        "summary": {"errors": 1, "warnings": 0, "messagesProcessed": 0,
                    "messagesAccepted": 0, "messagesInvalid": 0},
    }


# -- one message ----------------------------------------------------------------------------

def apply_message(catalog: Catalog, seller_id: str, marketplace_ids: list[str],
                  message: dict[str, Any], *, dry_run: bool = False) -> list[dict[str, Any]]:
    """Apply one schema-valid message (or patch request); return its issues.

    Nothing changes when an ERROR is found, nor when ``dry_run`` is set
    (``mode=VALIDATION_PREVIEW``).
    """
    sku = message["sku"]
    operation = message["operationType"]
    offer = catalog.get(seller_id, sku)
    if offer is None:
        return [issue(f"The SKU '{sku}' does not exist for this seller; creating listings "
                      f"is not simulated, only changing existing ones.",
                      code=CODE_NOT_FOUND, sku=sku)]
    if operation == "DELETE":
        if not dry_run:
            catalog.delete(offer)
        return []
    if message["productType"] != offer.product_type:
        return [issue(f"productType '{message['productType']}' does not match the "
                      f"listing's product type '{offer.product_type}'",
                      code=CODE_PRODUCT_TYPE, sku=sku)]
    work = copy.deepcopy(offer)
    editor = _Editor(catalog, work, marketplace_ids)
    if operation == "PATCH":
        for patch in message["patches"]:
            editor.patch(patch["op"], patch["path"], patch.get("value"))
    else:
        if operation == "UPDATE":
            editor.clear_all()
        for name, value in message["attributes"].items():
            editor.patch("replace", f"/attributes/{name}", value)
    if editor.issues or dry_run:
        return editor.issues
    work.updated = catalog.world.now()
    catalog.replace(work)
    return []


class _Editor:
    """Applies patch operations to a working copy of an offer, collecting issues."""

    def __init__(self, catalog: Catalog, offer: Offer, marketplace_ids: list[str]) -> None:
        self.catalog, self.offer, self.marketplace_ids = catalog, offer, marketplace_ids
        self.issues: list[dict[str, Any]] = []

    def fail(self, text: str, attribute: str, code: str = CODE_VALUE) -> None:
        self.issues.append(issue(text, code=code, sku=self.offer.sku, attribute=attribute))

    def clear_all(self) -> None:
        """UPDATE replaces everything: what the message omits is gone afterwards."""
        self.offer.attributes = {}
        if not self.offer.is_fba:
            self.offer.quantity = self.offer.handling_time = None
        for mid in self.marketplace_ids:
            if mid in self.offer.marketplaces:
                self.offer.marketplaces[mid].price = None

    def patch(self, op: str, path: str, value: Any) -> None:
        match = _PATH.match(path)
        if not match:
            self.fail(f"Patch path '{path}' is not supported: only top-level attributes "
                      f"(/attributes/<name>) can be patched", path, CODE_PATH)
            return
        name = match.group(1)
        if op != "delete" and not isinstance(value, list):
            self.fail(f"'{op}' on {path} needs a 'value' array", name)
            return
        values = value if isinstance(value, list) else []
        if name == "fulfillment_availability":
            self._availability(op, values)
        elif name == "purchasable_offer":
            self._price(op, values)
        elif op == "delete":
            self.offer.attributes.pop(name, None)
        else:
            if name == "item_name" and values and isinstance(values[0].get("value"), str):
                self.offer.title = values[0]["value"]
            self.offer.attributes[name] = copy.deepcopy(values)

    def _availability(self, op: str, values: list[dict[str, Any]]) -> None:
        attr = "fulfillment_availability"
        offer = self.offer
        if op == "delete":
            if not offer.is_fba:
                offer.quantity = offer.handling_time = None
            return
        for entry in values:
            code = entry.get("fulfillment_channel_code")
            if code != "DEFAULT":
                self.fail(f"fulfillment_channel_code {code!r}: only DEFAULT (merchant "
                          f"fulfilled) is simulated; switching a SKU to FBA is not", attr)
                continue
            if offer.is_fba:
                self.fail(f"SKU '{offer.sku}' is fulfilled by Amazon: its quantity is "
                          f"Amazon's and cannot be set", attr, CODE_FBA)
                continue
            quantity = entry.get("quantity")
            lead = entry.get("lead_time_to_ship_max_days")
            if "quantity" in entry and "is_inventory_available" in entry:
                self.fail("quantity and is_inventory_available cannot be combined", attr)
                continue
            if quantity is not None and not _count(quantity):
                self.fail(f"quantity must be an integer >= 0, not {quantity!r}", attr)
                continue
            if lead is not None and not (_count(lead) and lead <= 30):
                self.fail(f"lead_time_to_ship_max_days must be an integer 0..30, "
                          f"not {lead!r}", attr)
                continue
            if op == "merge":
                if "quantity" in entry:
                    offer.quantity = quantity
                if "lead_time_to_ship_max_days" in entry:
                    offer.handling_time = lead
            else:   # add / replace swap the whole value: omitted sub-fields are dropped
                offer.quantity, offer.handling_time = quantity, lead

    def _price(self, op: str, values: list[dict[str, Any]]) -> None:
        attr = "purchasable_offer"
        if op == "delete":
            targets = [v.get("marketplace_id") for v in values] or self.marketplace_ids
            for mid in targets:
                if mid in self.offer.marketplaces:
                    self.offer.marketplaces[mid].price = None
            return
        for entry in values:
            mid = entry.get("marketplace_id")
            targets = [mid] if mid else list(self.marketplace_ids)
            if entry.get("audience", "ALL") != "ALL":
                continue                     # B2B prices: accepted, not simulated
            price = _our_price(entry)
            if price is _INVALID:
                self.fail("purchasable_offer.our_price must be "
                          "[{schedule: [{value_with_tax: <number > 0>}]}]",
                          "purchasable_offer.our_price")
                continue
            for target in targets:
                listed = self.offer.marketplaces.get(target)
                if target not in self.marketplace_ids:
                    self.fail(f"marketplace_id {target} is not among the submission's "
                              f"marketplaceIds {self.marketplace_ids}", attr)
                elif listed is None:
                    self.fail(f"SKU '{self.offer.sku}' has no offer in marketplace "
                              f"{target}", attr)
                elif entry.get("currency") and entry["currency"] != listed.currency:
                    self.fail(f"currency {entry['currency']} is not the currency of "
                              f"marketplace {target} ({listed.currency})", attr)
                elif price is not None or op != "merge":
                    listed.price = price


_INVALID = object()


def _our_price(entry: dict[str, Any]) -> Any:
    """The B2C price in a purchasable_offer entry: a Decimal, None (absent) or _INVALID."""
    if "our_price" not in entry:
        return None
    try:
        value = entry["our_price"][0]["schedule"][0]["value_with_tax"]
        if isinstance(value, bool):
            return _INVALID
        price = Decimal(str(value))
    except (KeyError, IndexError, TypeError, InvalidOperation):
        return _INVALID
    return price if price > 0 else _INVALID


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
