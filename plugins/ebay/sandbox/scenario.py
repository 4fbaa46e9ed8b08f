"""Scenarios: the YAML that describes a simulated eBay.

A scenario names the applications (client id, secret, RuName), the seller accounts with
their refresh tokens, the inventory (items and their offers, one marketplace per SKU as on
eBay), how busy the shop is, the daily call quotas and the revision limit. Orders are
planned per day from ``seed`` alone and placed when ``World.advance`` reaches their time,
so the same seed and start give the same world however time is chopped into requests.
The format is documented in docs/sandbox.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from marketsync.core.errors import ConfigError

from .contract import MARKETPLACES, REVISIONS_PER_DAY

SCENARIOS = Path(__file__).parent / "scenarios"

#: Daily call quotas per application and API, as eBay's call-limits page lists them for an
#: application that passed the Application Growth Check; a scenario may lower them.
DEFAULT_QUOTAS = {
    "sell.inventory": 2_000_000,
    "sell.fulfillment": 100_000,
    "commerce.identity": 5_000,
    "developer.analytics": 5_000,
}


@dataclass
class Application:
    client_id: str
    client_secret: str
    ru_name: str
    accept_url: str  #: where the consent page sends the seller (the RuName's accept URL)


@dataclass
class Account:
    user_id: str
    username: str
    marketplaces: list[str]
    refresh_tokens: list[str]
    registration_marketplace: str


@dataclass
class Item:
    sku: str
    account: str
    marketplace: str
    title: str
    quantity: int
    price: Decimal
    ean: str | None = None
    upc: str | None = None
    mpn: str | None = None
    brand: str | None = None
    published: bool = True


@dataclass
class Scenario:
    seed: int = 1
    start: datetime | None = None
    day_timezone: str = "America/Los_Angeles"
    history_days: int = 2
    applications: list[Application] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    consent_user: str | None = None
    catalog: list[Item] = field(default_factory=list)
    orders_per_day: dict[tuple[str, str], float] = field(default_factory=dict)
    cancel_share: float = 0.0
    quotas: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_QUOTAS))
    revision_limit: int = REVISIONS_PER_DAY
    source: str = "<scenario>"


def load_scenario(path: str | Path) -> Scenario:
    """A scenario file, or the name of a shipped one (``default``, ``demo``)."""
    candidate = Path(path)
    if not candidate.suffix and not candidate.exists():
        candidate = SCENARIOS / f"{path}.yaml"
    try:
        data = yaml.safe_load(candidate.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{candidate}: cannot read scenario: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{candidate}: not YAML: {exc}"]) from None
    return parse_scenario(data, source=str(candidate))


def parse_scenario(data: Any, *, source: str = "<scenario>") -> Scenario:
    """Check a scenario mapping; every problem is reported at once (``ConfigError``)."""
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: a scenario is a mapping, not {type(data).__name__}"])
    errors: list[str] = []

    def err(where: str, message: str) -> None:
        errors.append(f"{source}: {where}: {message}")

    scenario = Scenario(source=source)
    scenario.seed = _int(data.get("seed", 1), "seed", err)
    if data.get("start") is not None:
        start = data["start"]
        if isinstance(start, str):
            try:
                start = datetime.fromisoformat(start.replace("Z", "+00:00"))
            except ValueError:
                err("start", f"not an ISO 8601 time: {start!r}")
                start = None
        if isinstance(start, datetime) and start.tzinfo is None:
            err("start", "needs a time zone (e.g. ...Z)")
        scenario.start = start if isinstance(start, datetime) else None
    scenario.day_timezone = str(data.get("day_timezone", scenario.day_timezone))
    scenario.history_days = _int(data.get("history_days", 2), "history_days", err)
    for i, app in enumerate(data.get("applications") or []):
        where = f"applications[{i}]"
        if not isinstance(app, dict):
            err(where, "must be a mapping")
            continue
        missing = [k for k in ("client_id", "client_secret", "ru_name") if not app.get(k)]
        if missing:
            err(where, f"missing {', '.join(missing)}")
            continue
        scenario.applications.append(Application(
            str(app["client_id"]), str(app["client_secret"]), str(app["ru_name"]),
            str(app.get("accept_url") or "http://127.0.0.1:8470/channels/ebay/callback")))
    for i, acc in enumerate(data.get("accounts") or []):
        where = f"accounts[{i}]"
        if not isinstance(acc, dict) or not acc.get("user_id"):
            err(where, "must be a mapping with a user_id")
            continue
        markets = list(acc.get("marketplaces") or [])
        for market in markets:
            if market not in MARKETPLACES:
                err(f"{where}.marketplaces", f"{market!r} is not an eBay marketplace id "
                                             f"(known: {', '.join(sorted(MARKETPLACES))})")
        if not markets:
            err(f"{where}.marketplaces", "name at least one marketplace, e.g. EBAY_US")
            continue
        scenario.accounts.append(Account(
            user_id=str(acc["user_id"]), username=str(acc.get("username") or acc["user_id"]),
            marketplaces=markets, refresh_tokens=[str(t) for t in acc.get("refresh_tokens") or []],
            registration_marketplace=str(acc.get("registration_marketplace") or markets[0])))
    users = {a.user_id: a for a in scenario.accounts}
    consent = (data.get("consent") or {}).get("user_id") if isinstance(data.get("consent"), dict) else None
    if consent is not None and consent not in users:
        err("consent.user_id", f"{consent!r} is not an account of the scenario")
    scenario.consent_user = consent or (scenario.accounts[0].user_id if scenario.accounts else None)
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(data.get("catalog") or []):
        where = f"catalog[{i}]"
        if not isinstance(item, dict) or not item.get("sku"):
            err(where, "must be a mapping with a sku")
            continue
        account = str(item.get("account") or (scenario.accounts[0].user_id if scenario.accounts else ""))
        if account not in users:
            err(f"{where}.account", f"{account!r} is not an account of the scenario")
            continue
        market = str(item.get("marketplace") or users[account].marketplaces[0])
        if market not in users[account].marketplaces:
            err(f"{where}.marketplace", f"{account} does not sell in {market}")
            continue
        key = (account, str(item["sku"]))
        if key in seen:  # eBay: one SKU is offered on one marketplace only
            err(f"{where}.sku", f"{item['sku']!r} is listed twice for {account}")
            continue
        seen.add(key)
        try:
            price = Decimal(str(item.get("price", "10.00")))
        except InvalidOperation:
            err(f"{where}.price", f"not a number: {item.get('price')!r}")
            continue
        scenario.catalog.append(Item(
            sku=str(item["sku"]), account=account, marketplace=market,
            title=str(item.get("title") or item["sku"]),
            quantity=_int(item.get("quantity", 0), f"{where}.quantity", err), price=price,
            ean=_opt(item.get("ean")), upc=_opt(item.get("upc")), mpn=_opt(item.get("mpn")),
            brand=_opt(item.get("brand")), published=bool(item.get("published", True))))
    generator = data.get("generator") or {}
    for market, rate in (generator.get("orders_per_day") or {}).items():
        owners = [a for a in scenario.accounts if market in a.marketplaces]
        if market not in MARKETPLACES:
            err(f"generator.orders_per_day.{market}", "not an eBay marketplace id")
        for owner in owners:
            scenario.orders_per_day[(owner.user_id, market)] = float(rate)
    scenario.cancel_share = float(generator.get("cancel_share", 0.0))
    for name, limit in (data.get("quotas") or {}).items():
        if name not in DEFAULT_QUOTAS:
            err(f"quotas.{name}", f"unknown API (known: {', '.join(DEFAULT_QUOTAS)})")
            continue
        scenario.quotas[name] = _int(limit, f"quotas.{name}", err)
    scenario.revision_limit = _int(data.get("revision_limit", REVISIONS_PER_DAY),
                                   "revision_limit", err)
    if errors:
        raise ConfigError(errors)
    return scenario


def _int(value: Any, where: str, err) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        err(where, f"must be a whole number >= 0, not {value!r}")
        return 0
    return value


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)
