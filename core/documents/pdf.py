"""Invoices and packing slips as PDF: a Jinja2 HTML template, laid out by WeasyPrint.

HTML and CSS because that is what a seller (or whoever they ask) can edit: the shipped
templates in ``core/documents/templates/`` are the starting point, and the configuration may name
a file of the seller's own instead (docs/documents.md). The template sees plain values
only (``template_context``), in a sandbox, with autoescaping on (a buyer called
``<b>`` stays text) and strict undefined names, so a typo is an error naming its line
rather than a blank on the paper.

Each order is laid out on its own and the pages are then joined, so every order starts
on a new page whatever the template does, and an order of any length is never mixed
with the next. Only ``file:`` and ``data:`` URLs are fetched: a document never waits
for the network, and a template cannot make the daemon call out.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from marketsync.core.domain import pii
from marketsync.core.documents.content import DocumentError, Kind, OrderDocument, Seller
from marketsync.core.domain.invoices import InvoiceNumberFormatError, check_number_format
from marketsync.core.types import Address

TEMPLATE_NAMES: dict[str, str] = {"invoice": "invoice.html",
                                  "packing_slip": "packing_slip.html"}


class TemplateError(DocumentError):
    """A template that does not parse or fails while rendering; names file and line."""

    def __init__(self, template: str, line: int | None, message: str):
        self.template, self.line, self.reason = template, line, message
        where = f"{template}:{line}" if line else template
        super().__init__(f"{where}: {message}")


class RendererUnavailable(DocumentError):
    """WeasyPrint cannot load its system libraries (Pango)."""


def default_template(kind: Kind) -> Path:
    """The shipped template for ``kind``; copy it to start your own."""
    return Path(str(resources.files("marketsync.core.documents") / "templates" / TEMPLATE_NAMES[kind]))


def _environment(directory: Path) -> SandboxedEnvironment:
    env = SandboxedEnvironment(loader=jinja2.FileSystemLoader(str(directory)),
                               autoescape=True, undefined=jinja2.StrictUndefined,
                               trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = format_money
    return env


def load_template(path: Path) -> jinja2.Template:
    """Parse a template file; syntax errors become ``TemplateError`` with the line.

    Cheap enough for ``check-config`` to call on every configured template.
    """
    path = Path(path)
    if not path.is_file():
        raise TemplateError(str(path), None, "template file does not exist")
    env = _environment(path.parent)
    try:
        return env.get_template(path.name)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(str(path), error.lineno, error.message or "syntax error") from None
    except UnicodeDecodeError:
        raise TemplateError(str(path), None, "not UTF-8 text") from None


def render_html(template: jinja2.Template, context: dict[str, Any]) -> str:
    """Fill the template; a failure names the template line it happened on."""
    try:
        return template.render(context)
    except jinja2.TemplateSyntaxError as error:  # an {% include %}d file
        raise TemplateError(error.filename or template.filename or "?", error.lineno,
                            error.message or "syntax error") from None
    except Exception as error:
        filename, line = _template_frame(error, template.filename)
        raise TemplateError(filename, line, f"{type(error).__name__}: {error}") from None


def _template_frame(error: BaseException, default: str | None) -> tuple[str, int | None]:
    """Jinja rewrites tracebacks so template lines appear as frames of the template
    file; the innermost such frame is where the template failed."""
    found: tuple[str, int | None] = (default or "?", None)
    tb = error.__traceback__
    while tb is not None:
        if "__jinja_exception__" in tb.tb_frame.f_globals:  # jinja2.debug's fake frame
            found = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


# --- what a template sees ------------------------------------------------------------------


def format_money(amount: Decimal | None, currency: str | None = None) -> str:
    """``12.5, "EUR"`` -> ``12.50 EUR``; nothing for an unknown amount."""
    if amount is None:
        return ""
    text = f"{Decimal(amount).quantize(Decimal('0.01')):,.2f}"
    return f"{text} {currency}" if currency else text


def address_lines(address: Address | None) -> list[str]:
    """An address as the lines a label shows, empty parts left out."""
    if address is None:
        return []
    city = " ".join(p for p in (address.postal_code, address.city) if p)
    parts = [address.name, address.line1, address.line2, address.line3, city,
             address.district, address.state, address.country_code]
    return [p for p in parts if p]


def template_context(document: OrderDocument, kind: Kind) -> dict[str, Any]:
    """The names a template may use; docs/documents.md lists them for sellers."""
    seller = document.seller
    if seller is None:
        raise DocumentError(f"order {document.order_id}: no seller attached to the document")
    return {
        "kind": kind,
        "seller": {
            "name": seller.name, "alias": seller.alias or seller.name,
            "logo": seller.logo.absolute().as_uri() if seller.logo else None,
            # the addressee is left out where it only repeats the heading
            "return_address": [line for index, line in
                               enumerate(address_lines(seller.return_address))
                               if index or line != seller.name],
            "phone": seller.phone, "email": seller.email,
        },
        "order": {
            "id": document.order_id, "number": document.number,
            "date": document.purchased_at.date().isoformat(),
            "marketplace": document.marketplace, "currency": document.currency,
            "invoice_number": document.invoice_number,
            "ioss_number": document.ioss_number(),
            "destination": document.destination,
            "buyer_name": document.buyer_name, "buyer_email": document.buyer_email,
            "ship_to": address_lines(document.ship_to),
            "lines": [{"sku": line.sku, "title": line.title, "quantity": line.quantity,
                       "unit_price": line.unit_price, "tax": line.tax,
                       "amount": line.amount} for line in document.lines],
            "units": sum(line.quantity for line in document.lines),
            "subtotal": document.subtotal, "tax_total": document.tax_total,
            "total": document.total,
            "tax_included": document.tax_included,
            "vat_summary": [{"rate": row.rate.normalize(), "net": row.net, "tax": row.tax,
                             "gross": row.gross} for row in document.vat_summary()],
        },
    }


# --- PDF ---------------------------------------------------------------------------------------


def _weasyprint() -> Any:
    try:
        import weasyprint
        import weasyprint.text.fonts
        import weasyprint.urls
    except OSError as error:  # cffi could not dlopen Pango
        raise RendererUnavailable(
            "PDF rendering needs the Pango library: apt-get install libpango-1.0-0 "
            f"libpangoft2-1.0-0 ({error})") from None
    return weasyprint


def check_renderer() -> None:
    """Fail now, not at the first print, when WeasyPrint's libraries are missing."""
    _weasyprint()


def check_seller(seller: Seller) -> list[str]:
    """Problems with an integration's document settings, for ``check-config``: each
    configured template must parse, and the invoice number format must number."""
    problems = []
    for kind in ("invoice", "packing_slip"):
        path = seller.template(kind)
        if path is not None:
            try:
                load_template(Path(path))
            except TemplateError as error:
                problems.append(str(error))
    try:
        check_number_format(seller.invoice_number_format)
    except InvoiceNumberFormatError as error:
        problems.append(str(error))
    return problems


def render_pdf(kind: Kind, documents: Sequence[OrderDocument], *,
               template: Path | None = None) -> bytes:
    """One PDF, each order starting on a new page, in the order given.

    :param template: overrides every document's own (``Seller.template(kind)``) and the
        shipped default; relative ``src``/``href`` in a template resolve beside it.
    :raises TemplateError: naming the template file and line.
    :raises DocumentError: nothing to print, or a file the template refers to is missing.
    """
    if not documents:
        raise DocumentError("no orders to print")
    weasyprint = _weasyprint()
    fetcher = weasyprint.urls.URLFetcher(allowed_protocols={"file", "data"},
                                         fail_on_errors=True)
    fonts = weasyprint.text.fonts.FontConfiguration()
    cache: dict[Path, jinja2.Template] = {}
    pages: list[Any] = []
    first = None
    for document in documents:
        chosen = Path(template or (document.seller and document.seller.template(kind))
                      or default_template(kind))
        if chosen not in cache:
            cache[chosen] = load_template(chosen)
        try:
            html = render_html(cache[chosen], template_context(document, kind))
        except TemplateError as error:
            raise TemplateError(error.template, error.line,
                                _scrub(error.reason, document)) from None
        laid_out = _lay_out(weasyprint, html, chosen, fetcher, fonts)
        first = first or laid_out
        pages.extend(laid_out.pages)
    return first.copy(pages).write_pdf()


def _scrub(message: str, document: OrderDocument) -> str:
    """Buyer data out of an error message (a failed lookup quotes the key it tried)."""
    values = [document.buyer_name, document.buyer_email, *address_lines(document.ship_to)]
    for value in sorted((v for v in values if v and len(v) > 1), key=len, reverse=True):
        message = message.replace(value, pii.redact(value))
    return message


def _lay_out(weasyprint: Any, html: str, template: Path, fetcher: Any, fonts: Any) -> Any:
    try:
        return weasyprint.HTML(string=html, base_url=template.parent.absolute().as_uri() + "/",
                               url_fetcher=fetcher).render(font_config=fonts)
    except weasyprint.urls.FatalURLFetchingError as error:
        cause = error.__cause__ or error
        raise DocumentError(f"{template}: cannot load a file the template refers to: "
                            f"{cause}") from None
