"""What eBay's OpenAPI contracts declare for the answers the plugin relies on, in our form.

Read from the official OAS3 files (Sell Fulfillment v1.20.7, Sell Inventory 1.18.0,
Developer Analytics v1_beta; copies in the public hendt/ebay-api repository, ``specs/``).
Their licence forbids copying them, so only what we use is recorded here, as
``field -> type`` where a type is ``str``, ``int``, ``bool``, the name of another record
(an object), ``[record]`` (an array of them) or ``[str]``. Enumerations list the values the
contract's documentation gives for the fields we read.

Both sides use this module: the simulator's contract tests check every answer against it,
and nothing here is imported by the plugin (it trusts the channel only as far as the
contract goes and quarantines what breaks it).
"""

from __future__ import annotations

from typing import Any

RECORDS: dict[str, dict[str, str]] = {
    # --- shared --------------------------------------------------------------------------
    "Amount": {"value": "str", "currency": "str"},
    "Error": {"errorId": "int", "domain": "str", "subdomain": "str", "category": "str",
              "message": "str", "longMessage": "str", "parameters": "[ErrorParameter]",
              "inputRefIds": "[str]", "outputRefIds": "[str]"},
    "ErrorParameter": {"name": "str", "value": "str"},
    "ErrorList": {"errors": "[Error]"},
    # --- Sell Fulfillment: getOrders, getShippingFulfillments --------------------------------
    "OrderSearchPagedCollection": {"href": "str", "limit": "int", "next": "str", "offset": "int",
                                   "orders": "[Order]", "prev": "str", "total": "int",
                                   "warnings": "[Error]"},
    "Order": {"orderId": "str", "creationDate": "str", "lastModifiedDate": "str",
              "orderFulfillmentStatus": "str", "orderPaymentStatus": "str",
              "sellerId": "str", "buyer": "Buyer", "cancelStatus": "CancelStatus",
              "pricingSummary": "OrderPricingSummary", "lineItems": "[LineItem]",
              "fulfillmentStartInstructions": "[FulfillmentStartInstruction]",
              "fulfillmentHrefs": "[str]", "salesRecordReference": "str"},
    "Buyer": {"username": "str", "buyerRegistrationAddress": "ExtendedContact"},
    "CancelStatus": {"cancelState": "str", "cancelledDate": "str", "cancelRequests": "[CancelRequest]"},
    "CancelRequest": {"cancelCompletedDate": "str", "cancelInitiator": "str",
                      "cancelReason": "str", "cancelRequestedDate": "str",
                      "cancelRequestId": "str", "cancelRequestState": "str"},
    "OrderPricingSummary": {"priceSubtotal": "Amount", "deliveryCost": "Amount",
                            "tax": "Amount", "total": "Amount"},
    "LineItem": {"lineItemId": "str", "legacyItemId": "str", "sku": "str", "title": "str",
                 "quantity": "int", "lineItemCost": "Amount", "total": "Amount",
                 "lineItemFulfillmentStatus": "str", "listingMarketplaceId": "str",
                 "purchaseMarketplaceId": "str", "soldFormat": "str", "taxes": "[Tax]",
                 "refunds": "[LineItemRefund]"},
    "Tax": {"amount": "Amount", "taxType": "str"},
    "LineItemRefund": {"amount": "Amount", "refundDate": "str", "refundId": "str"},
    "FulfillmentStartInstruction": {"fulfillmentInstructionsType": "str",
                                    "shippingStep": "ShippingStep",
                                    "minEstimatedDeliveryDate": "str",
                                    "maxEstimatedDeliveryDate": "str",
                                    "ebaySupportedFulfillment": "bool"},
    "ShippingStep": {"shippingCarrierCode": "str", "shippingServiceCode": "str",
                     "shipTo": "ExtendedContact"},
    "ExtendedContact": {"fullName": "str", "companyName": "str", "email": "str",
                        "primaryPhone": "PhoneNumber", "contactAddress": "Address"},
    "PhoneNumber": {"phoneNumber": "str"},
    "Address": {"addressLine1": "str", "addressLine2": "str", "city": "str", "county": "str",
                "stateOrProvince": "str", "postalCode": "str", "countryCode": "str"},
    "ShippingFulfillmentPagedCollection": {"fulfillments": "[ShippingFulfillment]",
                                           "total": "int", "warnings": "[Error]"},
    "ShippingFulfillment": {"fulfillmentId": "str", "lineItems": "[LineItemReference]",
                            "shipmentTrackingNumber": "str", "shippedDate": "str",
                            "shippingCarrierCode": "str"},
    "LineItemReference": {"lineItemId": "str", "quantity": "int"},
    # --- Sell Inventory: getInventoryItems, getOffers, bulkUpdatePriceQuantity ----------------
    "InventoryItems": {"href": "str", "inventoryItems": "[InventoryItemWithSkuLocaleGroupid]",
                       "limit": "int", "next": "str", "prev": "str", "size": "int",
                       "total": "int"},
    "InventoryItemWithSkuLocaleGroupid": {"sku": "str", "locale": "str", "condition": "str",
                                          "product": "Product", "availability": "Availability",
                                          "groupIds": "[str]"},
    "Product": {"title": "str", "brand": "str", "mpn": "str", "ean": "[str]", "upc": "[str]",
                "isbn": "[str]", "epid": "str"},
    "Availability": {"shipToLocationAvailability": "ShipToLocationAvailability"},
    "ShipToLocationAvailability": {"quantity": "int"},
    "Offers": {"href": "str", "limit": "int", "next": "str", "offers": "[Offer]",
               "prev": "str", "size": "int", "total": "int"},
    "Offer": {"offerId": "str", "sku": "str", "marketplaceId": "str", "format": "str",
              "availableQuantity": "int", "pricingSummary": "OfferPricingSummary",
              "listing": "ListingDetails", "status": "str", "categoryId": "str",
              "merchantLocationKey": "str"},
    "OfferPricingSummary": {"price": "Amount"},
    "ListingDetails": {"listingId": "str", "listingStatus": "str", "soldQuantity": "int",
                       "listingOnHold": "bool"},
    "BulkPriceQuantityResponse": {"responses": "[PriceQuantityResponse]"},
    "PriceQuantityResponse": {"offerId": "str", "sku": "str", "statusCode": "int",
                              "errors": "[Error]", "warnings": "[Error]"},
    # --- Developer Analytics: getRateLimits ---------------------------------------------------
    "RateLimitsResponse": {"rateLimits": "[RateLimit]"},
    "RateLimit": {"apiContext": "str", "apiName": "str", "apiVersion": "str",
                  "resources": "[Resource]"},
    "Resource": {"name": "str", "rates": "[Rate]"},
    "Rate": {"limit": "int", "remaining": "int", "reset": "str", "timeWindow": "int"},
    # --- OAuth token endpoint (identity/v1/oauth2/token) -------------------------------------
    "UserToken": {"access_token": "str", "expires_in": "int", "refresh_token": "str",
                  "refresh_token_expires_in": "int", "token_type": "str"},
    "RefreshedToken": {"access_token": "str", "expires_in": "int", "token_type": "str"},
    "OAuthError": {"error": "str", "error_description": "str"},
    # --- Commerce Identity: getUser -----------------------------------------------------------
    "UserResponse": {"userId": "str", "username": "str", "accountType": "str",
                     "registrationMarketplaceId": "str"},
}

#: Fields that are always present in an answer of that record (the contract says "always
#: returned" for them, or the plugin cannot work without them and eBay documents them so).
ALWAYS: dict[str, frozenset[str]] = {
    "Order": frozenset({"orderId", "creationDate", "lastModifiedDate", "orderFulfillmentStatus",
                        "lineItems", "cancelStatus"}),
    "CancelStatus": frozenset({"cancelState"}),
    "LineItem": frozenset({"lineItemId", "quantity", "lineItemFulfillmentStatus"}),
    "Amount": frozenset({"value", "currency"}),
    "OrderSearchPagedCollection": frozenset({"limit", "offset", "total", "orders"}),
    "Offer": frozenset({"offerId", "sku", "marketplaceId", "status"}),
    "PriceQuantityResponse": frozenset({"statusCode"}),
    "UserToken": frozenset({"access_token", "expires_in", "refresh_token", "token_type"}),
    "RefreshedToken": frozenset({"access_token", "expires_in", "token_type"}),
}

#: Enumerations named in the contract for fields we read (value lists from eBay's
#: type pages the contract links to).
ENUMS: dict[tuple[str, str], frozenset[str]] = {
    ("Order", "orderFulfillmentStatus"): frozenset({"FULFILLED", "IN_PROGRESS", "NOT_STARTED"}),
    ("Order", "orderPaymentStatus"): frozenset({"FAILED", "FULLY_REFUNDED", "PAID",
                                                "PARTIALLY_REFUNDED", "PENDING"}),
    ("CancelStatus", "cancelState"): frozenset({"CANCELED", "IN_PROGRESS", "NONE_REQUESTED"}),
    ("LineItem", "lineItemFulfillmentStatus"): frozenset({"FULFILLED", "IN_PROGRESS",
                                                          "NOT_STARTED"}),
    ("LineItem", "soldFormat"): frozenset({"AUCTION", "FIXED_PRICE", "OTHER", "SECOND_CHANCE_OFFER"}),
    ("Offer", "status"): frozenset({"PUBLISHED", "UNPUBLISHED"}),
    ("Offer", "format"): frozenset({"AUCTION", "FIXED_PRICE"}),
    ("ListingDetails", "listingStatus"): frozenset({"ACTIVE", "ENDED", "EBAY_ENDED",
                                                     "INACTIVE", "OUT_OF_STOCK"}),
    ("InventoryItemWithSkuLocaleGroupid", "condition"): frozenset({
        "NEW", "LIKE_NEW", "NEW_OTHER", "NEW_WITH_DEFECTS", "USED_EXCELLENT", "USED_GOOD",
        "USED_ACCEPTABLE", "FOR_PARTS_OR_NOT_WORKING"}),
}

#: Marketplace ids (``MarketplaceIdEnum``) the plugin maps, with currency and country.
MARKETPLACES: dict[str, tuple[str, str]] = {
    "EBAY_US": ("USD", "US"), "EBAY_GB": ("GBP", "GB"), "EBAY_DE": ("EUR", "DE"),
    "EBAY_AU": ("AUD", "AU"), "EBAY_FR": ("EUR", "FR"), "EBAY_IT": ("EUR", "IT"),
    "EBAY_ES": ("EUR", "ES"), "EBAY_CA": ("CAD", "CA"), "EBAY_AT": ("EUR", "AT"),
    "EBAY_BE": ("EUR", "BE"), "EBAY_CH": ("CHF", "CH"), "EBAY_IE": ("EUR", "IE"),
    "EBAY_NL": ("EUR", "NL"), "EBAY_PL": ("PLN", "PL"),
}

#: Most offers one bulkUpdatePriceQuantity call may carry (BulkPriceQuantity.requests).
BULK_LIMIT = 25
#: Revisions of one listing per calendar day (bulkUpdatePriceQuantity's note).
REVISIONS_PER_DAY = 250
#: getOrders ``limit``: default and maximum.
ORDERS_DEFAULT_LIMIT, ORDERS_MAX_LIMIT = 50, 200


def violations(record: str, value: Any, path: str = "") -> list[str]:
    """Every way ``value`` breaks record ``record`` of the contract, as ``path: problem``."""
    where = path or record
    if not isinstance(value, dict):
        return [f"{where}: expected an object ({record}), got {type(value).__name__}"]
    problems: list[str] = []
    fields = RECORDS[record]
    for name in ALWAYS.get(record, ()):
        if name not in value:
            problems.append(f"{where}.{name}: missing (always returned)")
    for name, item in value.items():
        here = f"{where}.{name}"
        if name not in fields:
            problems.append(f"{here}: not a field of {record}")
            continue
        problems += _check(fields[name], item, here)
        allowed = ENUMS.get((record, name))
        if allowed is not None and item not in allowed:
            problems.append(f"{here}: {item!r} is not one of {sorted(allowed)}")
    return problems


def _check(kind: str, item: Any, here: str) -> list[str]:
    if kind.startswith("["):
        if not isinstance(item, list):
            return [f"{here}: expected an array, got {type(item).__name__}"]
        inner = kind[1:-1]
        return [p for i, element in enumerate(item) for p in _check(inner, element, f"{here}[{i}]")]
    if kind == "str":
        return [] if isinstance(item, str) else [f"{here}: expected a string, got {item!r}"]
    if kind == "int":
        ok = isinstance(item, int) and not isinstance(item, bool)
        return [] if ok else [f"{here}: expected an integer, got {item!r}"]
    if kind == "bool":
        return [] if isinstance(item, bool) else [f"{here}: expected a boolean, got {item!r}"]
    return violations(kind, item, here)
