"""Scenarios: the YAML that describes a simulated Amazon, and the life it generates.

A scenario names the applications, seller accounts and catalog, and how busy the shop is.
Orders and channel-side edits are *planned* per day from ``seed`` alone (one random stream
per marketplace or account and day), and placed lazily when ``World.advance`` reaches
their time, so a simulated month costs only what a test asks about, and the same seed and
start give the same world however the time is chopped into requests.
The format is documented in docs/sandbox.md.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from marketsync.core.clock import isoformat
from marketsync.core.errors import ConfigError

from .sellers import BY_ID, MARKETPLACES
from .world import Application, SellerAccount

if TYPE_CHECKING:
    from .world import World

DAY = timedelta(days=1)
SCENARIOS = Path(__file__).parent / "scenarios"


@dataclass
class CatalogItem:
    sku: str
    asin: str
    title: str
    prices: dict[str, Decimal]  # by marketplace code
    mfn_quantity: int | None = None
    fba_quantity: int | None = None
    handling_time: int | None = 2
    ean: str | None = None
    #: the seller ids that offer it; None: every account selling in a priced marketplace
    sellers: frozenset[str] | None = None


@dataclass
class GeneratorSpec:
    orders_per_day: dict[str, float] = field(default_factory=dict)  # by marketplace code
    fba_share: float = 0.3
    items_per_order: tuple[int, int] = (1, 2)
    quantity_per_item: tuple[int, int] = (1, 2)
    cancel_by_buyer: float = 0.02
    cancel_by_amazon: float = 0.01
    pending_minutes: tuple[float, float] = (2, 30)
    fba_ship_hours: tuple[float, float] = (4, 36)
    #: the seller ships MFN orders by itself (Seller Central, another tool) this many hours
    #: after payment; None: they stay UNSHIPPED until shipped through the API
    mfn_ship_hours: tuple[float, float] | None = None
    channel_edits_per_day: float = 0.0
    #: from this moment the shop is quiet: no orders, no channel edits, no FBA drift (to
    #: measure what a daemon costs when nothing changes)
    quiet_from: datetime | None = None


@dataclass
class Scenario:
    seed: int
    applications: list[Application]
    accounts: list[SellerAccount]
    catalog: list[CatalogItem] = field(default_factory=list)
    generator: GeneratorSpec = field(default_factory=GeneratorSpec)
    start: datetime | None = None
    history_days: float = 0.0
    data_lag_seconds: tuple[float, float] = (60.0, 120.0)
    consenting_seller_id: str | None = None
    source: str = "<scenario>"


@dataclass
class SimItem:
    order_item_id: str
    sku: str
    asin: str
    title: str
    quantity: int
    unit_price: Decimal
    currency: str


@dataclass
class SimOrder:
    """One order as Amazon knows it, with its whole timeline.

    ``events`` are (time, v2026 status); what the API shows is the timeline cut at
    ``now - lag`` (the data lag). Future events are planned at placement (payment,
    FBA shipment, cancellations) and dropped when the seller ships first.
    """

    order_id: str
    seller_id: str
    marketplace_id: str
    fulfilled_by: str  # MERCHANT | AMAZON
    created: datetime
    items: list[SimItem]
    lag: timedelta
    events: list[tuple[datetime, str]]
    buyer: dict[str, str]
    address: dict[str, str]
    cancelled_by: str | None = None
    cancel_reason: str | None = None
    packages: list[dict[str, Any]] = field(default_factory=list)  # each with "at"
    malformed: str | None = None  # one of control.MALFORMATIONS

    def status_at(self, moment: datetime) -> str | None:
        status = None
        for at, value in self.events:
            if at <= moment:
                status = value
        return status

    def last_updated_at(self, moment: datetime) -> datetime:
        times = [at for at, _ in self.events if at <= moment]
        times += [p["at"] for p in self.packages if p["at"] <= moment]
        return max(times)

    def visible(self, now: datetime) -> datetime | None:
        """The moment the API's view of this order is cut at, or None while unseen."""
        cut = now - self.lag
        return cut if self.created <= cut else None

    def shipped_quantity(self, order_item_id: str, moment: datetime | None = None) -> int:
        return sum(
            line["quantity"]
            for p in self.packages
            if moment is None or p["at"] <= moment
            for line in p["orderItems"]
            if line["orderItemId"] == order_item_id
        )


FIRST_NAMES = ["Alex", "Sam", "Robin", "Kim", "Jo", "Chris", "Taylor", "Maria", "Jan", "Lee"]
LAST_NAMES = ["Miller", "Schmidt", "Dubois", "Rossi", "Smith", "Tanaka", "Nowak", "Jones"]
CITIES = {"US": "Seattle", "CA": "Toronto", "UK": "London", "DE": "Berlin", "AU": "Sydney"}


class OrderGenerator:
    """Places the scenario's orders and channel edits as the world's time reaches them."""

    def __init__(self, world: "World", scenario: Scenario) -> None:
        self.world = world
        self.scenario = scenario
        self.spec = scenario.generator
        self.epoch = world.start - timedelta(days=scenario.history_days)
        self.until = self.epoch - timedelta(microseconds=1)
        self._plans: dict[int, list[tuple[datetime, str, Any]]] = {}

    def seed_catalog(self) -> None:
        for account in self.world.accounts.values():
            for item in self.scenario.catalog:
                if item.sellers is not None and account.seller_id not in item.sellers:
                    continue
                for code, price in item.prices.items():
                    market = MARKETPLACES[code]
                    if market.id not in account.marketplace_ids:
                        continue
                    fba = item.fba_quantity is not None
                    self.world.catalog.put_offer(
                        account.seller_id, item.sku, asin=item.asin, title=item.title,
                        marketplace_id=market.id, price=price, currency=market.currency,
                        quantity=item.fba_quantity if fba else item.mfn_quantity,
                        handling_time=None if fba else item.handling_time,
                        fulfillment="AFN" if fba else "MFN", ean=item.ean,
                    )

    # -- planning (seed only) ---------------------------------------------------------

    def _plan(self, day: int) -> list[tuple[datetime, str, Any]]:
        if day in self._plans:
            return self._plans[day]
        seed, start = self.scenario.seed, self.epoch + day * DAY
        plan: list[tuple[datetime, str, Any]] = []
        for code, rate in sorted(self.spec.orders_per_day.items()):
            rng = random.Random(f"{seed}:orders:{code}:{day}")
            for _ in range(_count(rng, rate)):
                at = start + timedelta(seconds=rng.uniform(0, 86400))
                plan.append((at, "order", (MARKETPLACES[code].id, rng.getrandbits(64))))
        for seller_id in sorted(self.world.accounts):
            rng = random.Random(f"{seed}:edits:{seller_id}:{day}")
            for _ in range(_count(rng, self.spec.channel_edits_per_day)):
                at = start + timedelta(seconds=rng.uniform(0, 86400))
                plan.append((at, "edit", (seller_id, rng.getrandbits(64))))
        plan.sort(key=lambda entry: (entry[0], entry[1]))
        self._plans = {day: plan}  # only the current day is worth keeping
        return plan

    def advance(self, now: datetime) -> None:
        if now <= self.until:
            return
        first = int((self.until - self.epoch) / DAY) if self.until >= self.epoch else 0
        last = int((now - self.epoch) / DAY)
        for day in range(first, last + 1):
            for at, kind, args in self._plan(day):
                if self.spec.quiet_from is not None and at >= self.spec.quiet_from:
                    break  # the plan is in time order
                if self.until < at <= now:
                    if kind == "order":
                        self._generated_order(at, *args)
                    else:
                        self._channel_edit(at, *args)
        self.until = now

    # -- placing ----------------------------------------------------------------------

    def _generated_order(self, at: datetime, marketplace_id: str, order_seed: int) -> None:
        # several sellers in one marketplace (a host of many shops, the scale benchmark)
        # share its orders; the order's own seed picks the seller, so the rest of the
        # world is as with one seller per marketplace
        sellers = [a for a in self.world.accounts.values() if marketplace_id in a.marketplace_ids]
        if not sellers:
            return
        account = sellers[order_seed % len(sellers)]
        rng = random.Random(order_seed)
        spec = self.spec
        fba = rng.random() < spec.fba_share
        picks = [(rng.random(), rng.randint(*spec.quantity_per_item)) for _ in range(rng.randint(*spec.items_per_order))]
        fate, cancel_after = rng.random(), timedelta(hours=rng.uniform(0.5, 12))
        offers = [
            o for o in self.world.catalog.offers(account.seller_id)
            if o.is_fba == fba and o.buyable(marketplace_id)
        ]
        if not offers:
            return
        lines: dict[str, int] = {}
        for pick, quantity in picks:
            offer = offers[int(pick * len(offers))]
            lines[offer.sku] = lines.get(offer.sku, 0) + quantity
        order = self.place(account, marketplace_id, lines, at=at, rng=rng, fulfilled_by="AMAZON" if fba else "MERCHANT")
        if order is None:
            return
        if not fba and spec.mfn_ship_hours is not None:
            self._ship_by_seller(order, rng)
        if fate < spec.cancel_by_amazon:
            order.events = [order.events[0], (order.events[1][0], "CANCELLED")]
            order.packages = []
            order.cancelled_by, order.cancel_reason = "AMAZON", "PaymentNotAuthorized"
        elif fate < spec.cancel_by_amazon + spec.cancel_by_buyer:
            when = order.events[1][0] + cancel_after
            if any(status == "SHIPPED" and t <= when for t, status in order.events):
                return  # Amazon shipped first; the buyer's request came too late
            order.events = [e for e in order.events if e[0] < when] + [(when, "CANCELLED")]
            order.packages = [p for p in order.packages if p["at"] < when]
            order.cancelled_by, order.cancel_reason = "BUYER", "NoLongerNeeded"

    def _ship_by_seller(self, order: SimOrder, rng: random.Random) -> None:
        """One package with every unit, confirmed outside our API's sight: the shipped
        history of a shop that connects in the middle of business."""
        at = order.events[1][0] + timedelta(hours=rng.uniform(*self.spec.mfn_ship_hours))
        order.packages.append({
            "packageReferenceId": str(rng.randint(1, 10**9)), "carrierCode": "UPS",
            "trackingNumber": f"1Z{rng.getrandbits(40):012X}", "shipDate": isoformat(at),
            "orderItems": [{"orderItemId": i.order_item_id, "quantity": i.quantity}
                           for i in order.items],
            "at": at})
        order.events.append((at, "SHIPPED"))

    def place(
        self,
        account: SellerAccount,
        marketplace_id: str,
        lines: dict[str, int],
        *,
        at: datetime,
        rng: random.Random,
        fulfilled_by: str | None = None,
    ) -> SimOrder | None:
        """Place an order now-or-then: takes the stock, plans its status progression."""
        catalog, market = self.world.catalog, BY_ID[marketplace_id]
        items: list[SimItem] = []
        for sku, wanted in lines.items():
            offer = catalog.get(account.seller_id, sku)
            if offer is None or marketplace_id not in offer.marketplaces:
                raise KeyError(f"no offer {sku!r} in marketplace {market.code} for {account.seller_id}")
            quantity = min(wanted, offer.available())
            if quantity <= 0:
                continue
            catalog.set_quantity(offer, offer.available() - quantity)
            price = offer.marketplaces[marketplace_id].price or Decimal("0")
            items.append(SimItem(f"{rng.getrandbits(46):014d}", sku, offer.asin, offer.title, quantity, price, market.currency))
            if fulfilled_by is None:
                fulfilled_by = "AMAZON" if offer.is_fba else "MERCHANT"
        if not items:
            return None
        lag_min, lag_max = self.scenario.data_lag_seconds
        paid = at + timedelta(minutes=rng.uniform(*self.spec.pending_minutes))
        events = [(at, "PENDING"), (paid, "UNSHIPPED")]
        if fulfilled_by == "AMAZON":
            events.append((paid + timedelta(hours=rng.uniform(*self.spec.fba_ship_hours)), "SHIPPED"))
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        order_id = f"{rng.randint(100, 999)}-{rng.randint(0, 9999999):07d}-{rng.randint(0, 9999999):07d}"
        order = SimOrder(
            order_id=order_id, seller_id=account.seller_id, marketplace_id=marketplace_id,
            fulfilled_by=fulfilled_by or "MERCHANT", created=at, items=items,
            lag=timedelta(seconds=rng.uniform(lag_min, lag_max)), events=events,
            buyer={"buyerName": name, "buyerEmail": f"{rng.getrandbits(40):x}@marketplace.amazon.example"},
            address={
                "name": name, "addressLine1": f"{rng.randint(1, 999)} Main Street",
                "city": CITIES.get(market.code, "Springfield"), "postalCode": f"{rng.randint(10000, 99999)}",
                "countryCode": market.country, "addressType": "RESIDENTIAL",
            },
        )
        self.world.orders[order_id] = order
        return order

    def _channel_edit(self, at: datetime, seller_id: str, edit_seed: int) -> None:
        rng = random.Random(edit_seed)
        kind, pick, factor, quantity = rng.random(), rng.random(), rng.uniform(0.85, 1.15), rng.randint(0, 40)
        offers = self.world.catalog.offers(seller_id)
        if not offers:
            return
        offer = offers[int(pick * len(offers))]
        # Seller Central edits an MFN quantity only: FBA stock is Amazon's (it moves by
        # itself, see Catalog._drift_fba). An FBA offer's edit is a price edit.
        if (kind < 0.5 or offer.is_fba) and offer.marketplaces:
            mid = sorted(offer.marketplaces)[int(pick * 997) % len(offer.marketplaces)]
            old = offer.marketplaces[mid].price or Decimal("10")
            price = (old * Decimal(str(round(factor, 2)))).quantize(Decimal("0.01"))
            self.world.catalog.channel_edit(seller_id, offer.sku, marketplace_id=mid, price=price)
        else:
            self.world.catalog.channel_edit(seller_id, offer.sku, quantity=quantity)


def _count(rng: random.Random, rate: float) -> int:
    """A day's count around ``rate`` (±30 %), fractional rates by chance."""
    low, high = rate * 0.7, rate * 1.3
    value = rng.uniform(low, high)
    whole = int(value)
    return whole + (1 if rng.random() < value - whole else 0)


# -- loading ----------------------------------------------------------------------------


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; every problem is reported at once (ConfigError)."""
    path = Path(path)
    if not path.exists() and (SCENARIOS / f"{path}.yaml").exists():
        path = SCENARIOS / f"{path}.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: cannot read scenario: {exc}"]) from None
    return parse_scenario(data, source=str(path))


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    errors: list[str] = []

    def err(where: str, message: str) -> None:
        errors.append(f"{source}: {where}: {message}")

    if not isinstance(data, dict):
        raise ConfigError([f"{source}: a scenario is a mapping, not {type(data).__name__}"])
    apps = [_application(a, f"applications[{i}]", err) for i, a in enumerate(data.get("applications") or [])]
    if not apps:
        err("applications", "at least one application (client_id, client_secret) is required")
    accounts = [_account(a, f"accounts[{i}]", err) for i, a in enumerate(data.get("accounts") or [])]
    if not accounts:
        err("accounts", "at least one seller account is required")
    catalog = [_catalog_item(c, f"catalog[{i}]", err) for i, c in enumerate(data.get("catalog") or [])]
    generator = _generator(data.get("generator") or {}, err)
    lag = data.get("data_lag_seconds", [60, 120])
    lag = (float(lag), float(lag)) if isinstance(lag, (int, float)) else tuple(map(float, lag))
    start = data.get("start")
    if isinstance(start, str):
        start = datetime.fromisoformat(start.replace("Z", "+00:00"))
    if isinstance(start, datetime) and start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    consent = (data.get("consent") or {}).get("seller_id")
    known = {a.seller_id for a in accounts if a}
    if consent is not None and consent not in known:
        err("consent.seller_id", f"{consent!r} is not one of the accounts {sorted(known)}")
    for i, item in enumerate(catalog):
        unknown = sorted((item.sellers or frozenset()) - known)
        if unknown:
            err(f"catalog[{i}].sellers", f"{', '.join(unknown)} not among the accounts")
    if errors:
        raise ConfigError(errors)
    return Scenario(
        seed=int(data.get("seed", 0)), applications=apps, accounts=accounts, catalog=catalog,
        generator=generator, start=start, history_days=float(data.get("history_days", 0)),
        data_lag_seconds=lag, consenting_seller_id=consent or accounts[0].seller_id, source=source,
    )


def _application(raw: Any, where: str, err) -> Application:
    raw = raw or {}
    for key in ("client_id", "client_secret"):
        if not raw.get(key):
            err(where, f"missing {key}")
    return Application(
        client_id=str(raw.get("client_id", "")), client_secret=str(raw.get("client_secret", "")),
        application_id=str(raw.get("application_id", "amzn1.sellerapps.app.sandbox")),
        name=str(raw.get("name", "marketsync")), redirect_uris=list(raw.get("redirect_uris") or []),
    )


def _account(raw: Any, where: str, err) -> SellerAccount:
    raw = raw or {}
    codes = list(raw.get("marketplaces") or [])
    region = raw.get("region")
    for code in codes:
        if code not in MARKETPLACES:
            err(where, f"unknown marketplace {code!r} (use codes like US, DE, AU)")
        elif region and MARKETPLACES[code].region != region:
            err(where, f"marketplace {code} is in region {MARKETPLACES[code].region}, not {region}")
    if not raw.get("seller_id"):
        err(where, "missing seller_id")
    if not codes:
        err(where, "missing marketplaces")
    region = region or (MARKETPLACES[codes[0]].region if codes and codes[0] in MARKETPLACES else "NA")
    return SellerAccount(
        seller_id=str(raw.get("seller_id", "")), region=region,
        marketplace_ids=[MARKETPLACES[c].id for c in codes if c in MARKETPLACES],
        pii_access=bool(raw.get("pii_access", True)), name=str(raw.get("name", raw.get("seller_id", ""))),
        refresh_tokens=[str(t) for t in raw.get("refresh_tokens") or []],
    )


def _catalog_item(raw: Any, where: str, err) -> CatalogItem:
    raw = raw or {}
    for key in ("sku", "asin", "title"):
        if not raw.get(key):
            err(where, f"missing {key}")
    prices = {}
    for code, price in (raw.get("prices") or {}).items():
        if code not in MARKETPLACES:
            err(f"{where}.prices", f"unknown marketplace {code!r}")
        prices[code] = Decimal(str(price))
    if raw.get("mfn_quantity") is None and raw.get("fba_quantity") is None:
        err(where, "give mfn_quantity or fba_quantity")
    sellers = raw.get("sellers")
    if sellers is not None and (not isinstance(sellers, list) or not sellers):
        err(f"{where}.sellers", "a non-empty list of seller ids (or leave it out: every seller)")
        sellers = None
    return CatalogItem(
        sku=str(raw.get("sku", "")), asin=str(raw.get("asin", "")), title=str(raw.get("title", "")),
        prices=prices, mfn_quantity=raw.get("mfn_quantity"), fba_quantity=raw.get("fba_quantity"),
        handling_time=raw.get("handling_time", 2), ean=raw.get("ean"),
        sellers=frozenset(map(str, sellers)) if sellers is not None else None,
    )


def _generator(raw: dict, err) -> GeneratorSpec:
    spec = GeneratorSpec()
    for key, value in raw.items():
        if not hasattr(spec, key):
            err(f"generator.{key}", "unknown setting")
            continue
        default = getattr(spec, key)
        if isinstance(default, tuple):
            value = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
        if key == "quiet_from":
            if isinstance(value, str):
                try:
                    value = datetime.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError:
                    err("generator.quiet_from", f"{value!r} is not an ISO date and time")
                    continue
            if not isinstance(value, datetime):
                err("generator.quiet_from", "an ISO date and time, e.g. 2026-11-02T18:00:00Z")
                continue
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
        if key == "orders_per_day":
            for code in value:
                if code not in MARKETPLACES:
                    err("generator.orders_per_day", f"unknown marketplace {code!r}")
        setattr(spec, key, value)
    return spec
