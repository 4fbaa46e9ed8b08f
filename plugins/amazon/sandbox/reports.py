"""Reports API 2021-06-30: the listings, FBA inventory and all-orders reports, on request.

Reports are the daemon's full catalog import, so they carry Amazon's real column names in
Amazon's order (REFERENCE.md §9): a parser that reads columns by position, or that chokes
on the many empty legacy columns, fails here first. A report with no rows ends CANCELLED
with no document, as Amazon's do — the client must read that as "empty", not as failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from marketsync.core import clock

from . import order_report
from .feeds import (BadInput, check_marketplaces, invalid, json_body, list_page, not_found,
                    parse_time)
from .gateway import Call, json_response, sp_api

if TYPE_CHECKING:
    from .catalog import Catalog

BASE = "/reports/2021-06-30"
RETENTION = timedelta(days=90)
CONTENT_TYPE = "text/tab-separated-values; charset=UTF-8"
LISTINGS_ALL = "GET_MERCHANT_LISTINGS_ALL_DATA"
FBA_MYI = "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA"

LISTINGS_COLUMNS = (
    "item-name", "item-description", "listing-id", "seller-sku", "price", "quantity",
    "open-date", "image-url", "item-is-marketplace", "product-id-type", "zshop-shipping-fee",
    "item-note", "item-condition", "zshop-category1", "zshop-browse-path",
    "zshop-storefront-feature", "asin1", "asin2", "asin3", "will-ship-internationally",
    "expedited-shipping", "zshop-boldface", "product-id", "bid-for-featured-placement",
    "add-delete", "pending-quantity", "fulfillment-channel", "merchant-shipping-group", "status",
)
FBA_COLUMNS = (
    "sku", "fnsku", "asin", "product-name", "condition", "your-price", "mfn-listing-exists",
    "mfn-fulfillable-quantity", "afn-listing-exists", "afn-warehouse-quantity",
    "afn-fulfillable-quantity", "afn-unsellable-quantity", "afn-reserved-quantity",
    "afn-total-quantity", "per-unit-volume", "afn-inbound-working-quantity",
    "afn-inbound-shipped-quantity", "afn-inbound-receiving-quantity",
    "afn-researching-quantity", "afn-reserved-future-supply", "afn-future-supply-buyable",
)


@dataclass
class Report:
    report_id: str
    seller_id: str
    report_type: str
    marketplace_ids: list[str]
    created: datetime
    data_start: datetime | None = None
    data_end: datetime | None = None
    options: dict[str, str] = field(default_factory=dict)
    status: str = "IN_QUEUE"
    started: datetime | None = None
    ended: datetime | None = None
    document_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "reportId": self.report_id, "reportType": self.report_type,
            "marketplaceIds": self.marketplace_ids,
            "createdTime": clock.isoformat(self.created), "processingStatus": self.status,
        }
        for key, value in (("dataStartTime", self.data_start), ("dataEndTime", self.data_end),
                           ("processingStartTime", self.started),
                           ("processingEndTime", self.ended)):
            if value is not None:
                body[key] = clock.isoformat(value)
        if self.document_id:
            body["reportDocumentId"] = self.document_id
        return body


class ReportStore:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.reports: dict[str, Report] = {}
        self.page_tokens: dict[str, tuple[dict[str, Any], int]] = {}

    def advance(self, now: datetime) -> None:
        timing = self.catalog.timing
        for report in sorted(self.reports.values(), key=lambda r: (r.created, r.report_id)):
            if report.status == "IN_QUEUE" and now >= report.created + timing.report_queue:
                report.status = "IN_PROGRESS"
                report.started = report.created + timing.report_queue
            if (report.status == "IN_PROGRESS" and report.started is not None
                    and now >= report.started + timing.report_processing):
                self._finish(report, report.started + timing.report_processing)

    def _finish(self, report: Report, ended: datetime) -> None:
        report.ended = ended
        if report.report_type == order_report.REPORT_TYPE:
            try:
                columns, rows = order_report.COLUMNS, order_report.rows(
                    self.catalog.world, report, ended)
            except order_report.RangeRefused:
                report.status = "FATAL"
                return
        else:
            builder = {LISTINGS_ALL: self.listings_rows, FBA_MYI: self.fba_rows}.get(
                report.report_type)
            if builder is None:
                report.status = "FATAL"
                return
            columns, rows = builder(report.seller_id, report.marketplace_ids)
        if not rows:
            report.status = "CANCELLED"
            return
        text = "\n".join("\t".join(line) for line in [columns, *rows]) + "\n"
        document = self.catalog.documents.store_generated(
            report.seller_id, text.encode("utf-8"), CONTENT_TYPE, ended, compress=False,
            prefix="amzn1.spdoc.1.4")
        report.status, report.document_id = "DONE", document.document_id

    def listings_rows(self, seller_id: str, marketplace_ids: list[str]
                      ) -> tuple[tuple[str, ...], list[list[str]]]:
        rows = []
        fba_code = self.catalog.fba_channel_code(seller_id)
        for offer in self.catalog.offers(seller_id):
            for mid in marketplace_ids:
                listed = offer.marketplaces.get(mid)
                if listed is None:
                    continue
                values = dict.fromkeys(LISTINGS_COLUMNS, "")
                values.update({
                    "item-name": offer.title, "listing-id": offer.listing_id,
                    "seller-sku": offer.sku,
                    "price": "" if listed.price is None else f"{listed.price:.2f}",
                    "quantity": "" if offer.is_fba or offer.quantity is None
                    else str(offer.quantity),
                    "open-date": offer.created.strftime("%Y-%m-%d %H:%M:%S UTC"),
                    # product-id is what the listing was created with: 1 ASIN, 4 EAN
                    "item-is-marketplace": "y", "product-id-type": "4" if offer.ean else "1",
                    "item-condition": "11", "asin1": offer.asin,
                    "product-id": offer.ean or offer.asin,
                    "pending-quantity": "0",
                    "fulfillment-channel": fba_code if offer.is_fba else "DEFAULT",
                    "merchant-shipping-group": "" if offer.is_fba else "Migrated Template",
                    "status": "Active" if offer.buyable(mid) else "Inactive",
                })
                rows.append([_clean(values[c]) for c in LISTINGS_COLUMNS])
        return LISTINGS_COLUMNS, rows

    def fba_rows(self, seller_id: str, marketplace_ids: list[str]
                 ) -> tuple[tuple[str, ...], list[list[str]]]:
        rows = []
        for offer in self.catalog.offers(seller_id):
            markets = [m for m in marketplace_ids if m in offer.marketplaces]
            if not offer.is_fba or offer.fba is None or not markets:
                continue
            stock, listed = offer.fba, offer.marketplaces[markets[0]]
            values = {
                "sku": offer.sku, "fnsku": offer.fnsku or "", "asin": offer.asin,
                "product-name": offer.title, "condition": "New",
                "your-price": "" if listed.price is None else f"{listed.price:.2f}",
                "mfn-listing-exists": "No", "mfn-fulfillable-quantity": "",
                "afn-listing-exists": "Yes",
                "afn-warehouse-quantity": str(stock.fulfillable + stock.unfulfillable
                                              + stock.reserved + stock.researching),
                "afn-fulfillable-quantity": str(stock.fulfillable),
                "afn-unsellable-quantity": str(stock.unfulfillable),
                "afn-reserved-quantity": str(stock.reserved),
                "afn-total-quantity": str(stock.total), "per-unit-volume": "0.12",
                "afn-inbound-working-quantity": str(stock.inbound_working),
                "afn-inbound-shipped-quantity": str(stock.inbound_shipped),
                "afn-inbound-receiving-quantity": str(stock.inbound_receiving),
                "afn-researching-quantity": str(stock.researching),
                "afn-reserved-future-supply": "0", "afn-future-supply-buyable": "0",
            }
            rows.append([_clean(values[c]) for c in FBA_COLUMNS])
        return FBA_COLUMNS, rows


def _clean(value: str) -> str:
    """Tabs and newlines would break the row; Amazon drops them from titles too."""
    return value.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _own(call: Call, report_id: str) -> Report | None:
    report = call.world.catalog.reports.reports.get(report_id)
    return report if report is not None and report.seller_id == call.account.seller_id else None


@sp_api("createReport")
async def create_report(request: Request, call: Call) -> Response:
    catalog = call.world.catalog
    try:
        body = await json_body(request)
        report_type = body.get("reportType")
        if not isinstance(report_type, str) or not report_type:
            raise BadInput("reportType is required")
        marketplace_ids = check_marketplaces(call, body.get("marketplaceIds"))
        start = parse_time(body.get("dataStartTime"), "dataStartTime")
        end = parse_time(body.get("dataEndTime"), "dataEndTime")
        if start and end and start > end:
            raise BadInput("dataStartTime is after dataEndTime")
        options = body.get("reportOptions") or {}
        if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
            raise BadInput("reportOptions must be an object of strings")
    except BadInput as exc:
        return invalid(str(exc))
    report = Report(catalog.new_id(), call.account.seller_id, report_type, marketplace_ids,
                    call.now, start, end, options)
    catalog.reports.reports[report.report_id] = report
    return json_response({"reportId": report.report_id}, 202)


@sp_api("getReport")
async def get_report(request: Request, call: Call) -> Response:
    report = _own(call, request.path_params["reportId"])
    if report is None:
        return not_found(f"Report {request.path_params['reportId']} was not found")
    return json_response(report.as_json())


@sp_api("cancelReport")
async def cancel_report(request: Request, call: Call) -> Response:
    report = _own(call, request.path_params["reportId"])
    if report is None:
        return not_found(f"Report {request.path_params['reportId']} was not found")
    if report.status != "IN_QUEUE":
        return invalid(f"Report {report.report_id} is {report.status}; only IN_QUEUE reports "
                       f"can be cancelled")
    report.status = "CANCELLED"
    return Response(status_code=200)


@sp_api("getReports")
async def get_reports(request: Request, call: Call) -> Response:
    reports = call.world.catalog.reports
    return list_page(request, call, reports, reports.reports, type_param="reportTypes",
                     type_of=lambda r: r.report_type, id_of=lambda r: r.report_id,
                     body_key="reports")


@sp_api("getReportDocument")
async def get_report_document(request: Request, call: Call) -> Response:
    documents = call.world.catalog.documents
    document_id = request.path_params["reportDocumentId"]
    document = documents.get(call.account.seller_id, document_id)
    if document is None or document.content is None:
        return not_found(f"Report document {document_id} was not found")
    encoding = request.query_params.get("enableContentEncodingUrlHeader") == "true"
    body = {"reportDocumentId": document.document_id,
            "url": documents.download_url(document, call.now, content_encoding=encoding)}
    if document.compression:
        body["compressionAlgorithm"] = document.compression
    return json_response(body)


def routes(catalog: Catalog) -> list[BaseRoute]:
    return [
        Route(f"{BASE}/reports", create_report, methods=["POST"]),
        Route(f"{BASE}/reports", get_reports, methods=["GET"]),
        Route(f"{BASE}/reports/{{reportId}}", get_report, methods=["GET"]),
        Route(f"{BASE}/reports/{{reportId}}", cancel_report, methods=["DELETE"]),
        Route(f"{BASE}/documents/{{reportDocumentId}}", get_report_document, methods=["GET"]),
    ]
