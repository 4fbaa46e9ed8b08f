"""Sellers API: which marketplaces the authorized account sells in.

The marketplace table lives here because ``getMarketplaceParticipations`` is where Amazon
publishes it (ids, currencies, languages, domains); the scenario loader reads it too. It is
the simulator's own copy, written from the marketplace-id page, so the simulator never
shares a table (or a mistake) with the client it tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .gateway import Call, json_response, sp_api


@dataclass(frozen=True)
class Marketplace:
    code: str
    id: str
    region: str
    country: str
    currency: str
    language: str
    domain: str
    name: str


def _m(code: str, mid: str, region: str, country: str, currency: str, language: str, domain: str, name: str) -> Marketplace:
    return Marketplace(code, mid, region, country, currency, language, domain, name)


MARKETPLACES: dict[str, Marketplace] = {
    m.code: m
    for m in (
        _m("US", "ATVPDKIKX0DER", "NA", "US", "USD", "en_US", "www.amazon.com", "Amazon.com"),
        _m("CA", "A2EUQ1WTGCTBG2", "NA", "CA", "CAD", "en_CA", "www.amazon.ca", "Amazon.ca"),
        _m("MX", "A1AM78C64UM0Y8", "NA", "MX", "MXN", "es_MX", "www.amazon.com.mx", "Amazon.com.mx"),
        _m("BR", "A2Q3Y263D00KWC", "NA", "BR", "BRL", "pt_BR", "www.amazon.com.br", "Amazon.com.br"),
        _m("UK", "A1F83G8C2ARO7P", "EU", "GB", "GBP", "en_GB", "www.amazon.co.uk", "Amazon.co.uk"),
        _m("DE", "A1PA6795UKMFR9", "EU", "DE", "EUR", "de_DE", "www.amazon.de", "Amazon.de"),
        _m("FR", "A13V1IB3VIYZZH", "EU", "FR", "EUR", "fr_FR", "www.amazon.fr", "Amazon.fr"),
        _m("IT", "APJ6JRA9NG5V4", "EU", "IT", "EUR", "it_IT", "www.amazon.it", "Amazon.it"),
        _m("ES", "A1RKKUPIHCS9HS", "EU", "ES", "EUR", "es_ES", "www.amazon.es", "Amazon.es"),
        _m("NL", "A1805IZSGTT6HS", "EU", "NL", "EUR", "nl_NL", "www.amazon.nl", "Amazon.nl"),
        _m("PL", "A1C3SOZRARQ6R3", "EU", "PL", "PLN", "pl_PL", "www.amazon.pl", "Amazon.pl"),
        _m("SE", "A2NODRKZP88ZB9", "EU", "SE", "SEK", "sv_SE", "www.amazon.se", "Amazon.se"),
        _m("BE", "AMEN7PMS3EDWL", "EU", "BE", "EUR", "fr_BE", "www.amazon.com.be", "Amazon.com.be"),
        _m("IE", "A28R8C7NBKEWEA", "EU", "IE", "EUR", "en_IE", "www.amazon.ie", "Amazon.ie"),
        _m("TR", "A33AVAJ2PDY3EV", "EU", "TR", "TRY", "tr_TR", "www.amazon.com.tr", "Amazon.com.tr"),
        _m("AE", "A2VIGQ35RCS4UG", "EU", "AE", "AED", "en_AE", "www.amazon.ae", "Amazon.ae"),
        _m("SA", "A17E79C6D8DWNP", "EU", "SA", "SAR", "ar_AE", "www.amazon.sa", "Amazon.sa"),
        _m("EG", "ARBP9OOSHTCHU", "EU", "EG", "EGP", "ar_AE", "www.amazon.eg", "Amazon.eg"),
        _m("IN", "A21TJRUUN4KGV", "EU", "IN", "INR", "en_IN", "www.amazon.in", "Amazon.in"),
        _m("ZA", "AE08WJ6YKNBMC", "EU", "ZA", "ZAR", "en_ZA", "www.amazon.co.za", "Amazon.co.za"),
        _m("JP", "A1VC38T7YXB528", "FE", "JP", "JPY", "ja_JP", "www.amazon.co.jp", "Amazon.co.jp"),
        _m("AU", "A39IBJ37TRP1C6", "FE", "AU", "AUD", "en_AU", "www.amazon.com.au", "Amazon.com.au"),
        _m("SG", "A19VAU5U5O7RUS", "FE", "SG", "SGD", "en_SG", "www.amazon.sg", "Amazon.sg"),
    )
}
BY_ID: dict[str, Marketplace] = {m.id: m for m in MARKETPLACES.values()}


@sp_api("getMarketplaceParticipations")
async def get_marketplace_participations(request: Request, call: Call) -> Response:
    payload = []
    for marketplace_id in call.account.marketplace_ids:
        m = BY_ID[marketplace_id]
        payload.append(
            {
                "marketplace": {
                    "id": m.id,
                    "name": m.name,
                    "countryCode": m.country,
                    "defaultCurrencyCode": m.currency,
                    "defaultLanguageCode": m.language,
                    "domainName": m.domain,
                },
                "participation": {"isParticipating": True, "hasSuspendedListings": False},
                "storeName": call.account.name,
            }
        )
    return json_response({"payload": payload})


def routes() -> list[Route]:
    return [
        Route("/sellers/v1/marketplaceParticipations", get_marketplace_participations, methods=["GET"]),
    ]
