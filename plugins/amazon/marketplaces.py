"""The 23 Amazon marketplaces the Selling Partner API serves, and where each one lives.

One table, so that the YAML validator (which codes exist), the client (which regional
host to call), the consent wizard (which Seller Central host) and the simulator agree.
Source: ../shared/spapi/REFERENCE.md §2.1–2.2 (Amazon's "Marketplace IDs" and
"SP-API endpoints" pages). Currencies are the country's ISO 4217 code; at run time the
Sellers API is the authority and this column only fills gaps.

Amazon writes ``UK`` where ISO 3166 (and every address the API returns) says ``GB``:
the YAML code is Amazon's, ``details.country`` is ISO.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from marketsync.core.types import Marketplace

__all__ = [
    "DETAILS",
    "MARKETPLACES",
    "REGIONS",
    "MarketplaceDetails",
    "Region",
    "by_id",
    "endpoint_for",
    "extra",
    "seller_central_url",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Region:
    """A selling-partner region: one API host serves every marketplace in it."""

    code: str  #: "NA", "EU" or "FE"
    endpoint_host: str
    sandbox_host: str
    aws_region: str  #: only mattered for SigV4 signing, kept for completeness


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketplaceDetails:
    """What ``core.types.Marketplace`` has no field for."""

    code: str
    country: str  #: ISO 3166-1 alpha-2 ("GB" for Amazon's "UK")
    region: Region
    seller_central_host: str  #: where the consent URL for this marketplace points

    @property
    def endpoint_host(self) -> str:
        return self.region.endpoint_host


REGIONS: Mapping[str, Region] = MappingProxyType(
    {
        "NA": Region(
            code="NA",
            endpoint_host="sellingpartnerapi-na.amazon.com",
            sandbox_host="sandbox.sellingpartnerapi-na.amazon.com",
            aws_region="us-east-1",
        ),
        "EU": Region(
            code="EU",
            endpoint_host="sellingpartnerapi-eu.amazon.com",
            sandbox_host="sandbox.sellingpartnerapi-eu.amazon.com",
            aws_region="eu-west-1",
        ),
        "FE": Region(
            code="FE",
            endpoint_host="sellingpartnerapi-fe.amazon.com",
            sandbox_host="sandbox.sellingpartnerapi-fe.amazon.com",
            aws_region="us-west-2",
        ),
    }
)

# code, marketplace id, name, region, ISO country, currency, Seller Central host.
# Hosts marked ⚠ in REFERENCE.md (not seen in any source) follow the
# sellercentral.<amazon domain> pattern: SE, TR, AE.
_TABLE: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    ("US", "ATVPDKIKX0DER", "United States", "NA", "US", "USD", "sellercentral.amazon.com"),
    ("CA", "A2EUQ1WTGCTBG2", "Canada", "NA", "CA", "CAD", "sellercentral.amazon.ca"),
    ("MX", "A1AM78C64UM0Y8", "Mexico", "NA", "MX", "MXN", "sellercentral.amazon.com.mx"),
    ("BR", "A2Q3Y263D00KWC", "Brazil", "NA", "BR", "BRL", "sellercentral.amazon.com.br"),
    ("UK", "A1F83G8C2ARO7P", "United Kingdom", "EU", "GB", "GBP",
     "sellercentral-europe.amazon.com"),
    ("DE", "A1PA6795UKMFR9", "Germany", "EU", "DE", "EUR", "sellercentral-europe.amazon.com"),
    ("FR", "A13V1IB3VIYZZH", "France", "EU", "FR", "EUR", "sellercentral-europe.amazon.com"),
    ("IT", "APJ6JRA9NG5V4", "Italy", "EU", "IT", "EUR", "sellercentral-europe.amazon.com"),
    ("ES", "A1RKKUPIHCS9HS", "Spain", "EU", "ES", "EUR", "sellercentral-europe.amazon.com"),
    ("NL", "A1805IZSGTT6HS", "Netherlands", "EU", "NL", "EUR", "sellercentral.amazon.nl"),
    ("PL", "A1C3SOZRARQ6R3", "Poland", "EU", "PL", "PLN", "sellercentral.amazon.pl"),
    ("SE", "A2NODRKZP88ZB9", "Sweden", "EU", "SE", "SEK", "sellercentral.amazon.se"),
    ("BE", "AMEN7PMS3EDWL", "Belgium", "EU", "BE", "EUR", "sellercentral.amazon.com.be"),
    ("IE", "A28R8C7NBKEWEA", "Ireland", "EU", "IE", "EUR", "sellercentral.amazon.ie"),
    ("TR", "A33AVAJ2PDY3EV", "Turkey", "EU", "TR", "TRY", "sellercentral.amazon.com.tr"),
    ("AE", "A2VIGQ35RCS4UG", "United Arab Emirates", "EU", "AE", "AED", "sellercentral.amazon.ae"),
    ("SA", "A17E79C6D8DWNP", "Saudi Arabia", "EU", "SA", "SAR", "sellercentral.amazon.sa"),
    ("EG", "ARBP9OOSHTCHU", "Egypt", "EU", "EG", "EGP", "sellercentral.amazon.eg"),
    ("IN", "A21TJRUUN4KGV", "India", "EU", "IN", "INR", "sellercentral.amazon.in"),
    ("ZA", "AE08WJ6YKNBMC", "South Africa", "EU", "ZA", "ZAR", "sellercentral.amazon.co.za"),
    ("JP", "A1VC38T7YXB528", "Japan", "FE", "JP", "JPY", "sellercentral.amazon.co.jp"),
    ("AU", "A39IBJ37TRP1C6", "Australia", "FE", "AU", "AUD", "sellercentral.amazon.com.au"),
    ("SG", "A19VAU5U5O7RUS", "Singapore", "FE", "SG", "SGD", "sellercentral.amazon.sg"),
)

#: Marketplace code (what users write in the YAML) -> marketplace, in Amazon's order.
MARKETPLACES: Mapping[str, Marketplace] = MappingProxyType(
    {
        code: Marketplace(code=code, id=mid, name=name, region=region, currency=currency)
        for code, mid, name, region, _country, currency, _host in _TABLE
    }
)

#: Marketplace code -> the fields ``Marketplace`` has no room for.
DETAILS: Mapping[str, MarketplaceDetails] = MappingProxyType(
    {
        code: MarketplaceDetails(
            code=code, country=country, region=REGIONS[region], seller_central_host=host
        )
        for code, _mid, _name, region, country, _currency, host in _TABLE
    }
)

_BY_ID: Mapping[str, Marketplace] = MappingProxyType({m.id: m for m in MARKETPLACES.values()})


def by_id(marketplace_id: str) -> Marketplace:
    """The marketplace an API response names by id (orders carry ids, not codes).

    :raises KeyError: for an id that is not one of the 23 (e.g. a "Non-Amazon"
        pseudo-marketplace), so that a caller cannot silently file it under None.
    """
    try:
        return _BY_ID[marketplace_id]
    except KeyError:
        raise KeyError(f"{marketplace_id!r} is not an Amazon marketplace id") from None


def _details(code: str) -> MarketplaceDetails:
    try:
        return DETAILS[code]
    except KeyError:
        known = ", ".join(sorted(DETAILS))
        raise KeyError(f"{code!r} is not an Amazon marketplace (known: {known})") from None


def endpoint_for(code: str, *, sandbox: bool = False) -> str:
    """Base URL of the selling-partner API for a marketplace code, e.g. ``"DE"``.

    ``sandbox=True`` gives Amazon's own sandbox host (not our simulator, whose URL comes
    from the account's ``endpoint`` in the YAML).
    """
    region = _details(code).region
    return f"https://{region.sandbox_host if sandbox else region.endpoint_host}"


def seller_central_url(code: str) -> str:
    """Base URL of the Seller Central site that hosts the consent page for ``code``."""
    return f"https://{_details(code).seller_central_host}"


def extra() -> dict[str, Any]:
    """The table as plain data, for ``ChannelInfo.extra["marketplaces"]`` and ``--explain``."""
    return {
        code: {
            "id": m.id,
            "name": m.name,
            "region": m.region,
            "country": DETAILS[code].country,
            "currency": m.currency,
            "endpoint": endpoint_for(code),
            "seller_central": seller_central_url(code),
        }
        for code, m in MARKETPLACES.items()
    }
