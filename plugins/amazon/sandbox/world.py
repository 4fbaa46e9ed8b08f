"""The simulated Amazon: accounts, credentials, faults, orders and the clock they live on.

Everything the HTTP handlers answer comes from one ``World`` so that a test can build it,
drive it through the API, and read it back (``/_sandbox/`` or directly) without any hidden
global state. Time only ever comes from the injected ``now`` callable (``core.clock.now``
by default), so trio's MockClock moves the whole world, and the world is *lazy*: it only
generates what happened up to "now" when a request arrives (``advance``).
"""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable

from marketsync.core import clock

from .throttle import Throttle

if TYPE_CHECKING:
    from .catalog import Catalog
    from .scenario import Scenario, SimOrder

ACCESS_TOKEN_LIFETIME = timedelta(seconds=3600)
AUTH_CODE_LIFETIME = timedelta(minutes=5)


@dataclass
class SellerAccount:
    seller_id: str
    region: str
    marketplace_ids: list[str]
    pii_access: bool
    name: str
    refresh_tokens: list[str] = field(default_factory=list)


@dataclass
class Application:
    """An LWA client registered with the simulated Amazon (Developer Central)."""

    client_id: str
    client_secret: str
    application_id: str
    name: str = "marketsync"
    redirect_uris: list[str] = field(default_factory=list)


@dataclass
class Grant:
    """A token Amazon handed out: refresh, access, restricted-data token or OAuth code."""

    seller_id: str
    client_id: str
    expires_at: datetime | None = None
    revoked: bool = False
    used: bool = False
    redirect_uri: str | None = None
    # RDT only: the (method, path) pairs it opens
    restricted: list[tuple[str, str]] | None = None
    data_elements: list[str] = field(default_factory=list)
    # grantless access token (client_credentials) only: the scope it was issued for
    scope: str | None = None


@dataclass
class CallRecord:
    at: datetime
    operation: str
    status: int
    seller_id: str | None
    path: str

    def as_json(self) -> dict:
        return {
            "at": clock.isoformat(self.at),
            "operation": self.operation,
            "status": self.status,
            "sellerId": self.seller_id,
            "path": self.path,
        }


@dataclass
class Faults:
    """Failures injected on demand (``/_sandbox/faults``); all off by default.

    ``stuck_feeds`` / ``fatal_feeds`` are read by the feeds half: ``True`` applies to every
    feed, a set names feed ids or feed types.
    """

    rng: random.Random = field(default_factory=lambda: random.Random(0))
    error_share: dict[int, float] = field(default_factory=dict)  # {500: 0.1, 503: 0.05}
    latency: float = 0.0  # seconds added before the handler runs
    operations: set[str] | None = None  # None: faults hit every operation
    token_lifetime: int | None = None  # seconds; early access-token expiry
    stuck_feeds: bool | set[str] = False
    fatal_feeds: bool | set[str] = False

    def _applies(self, operation: str) -> bool:
        return self.operations is None or operation in self.operations

    def latency_for(self, operation: str) -> float:
        return self.latency if self._applies(operation) else 0.0

    def failure_for(self, operation: str) -> int | None:
        if not self._applies(operation) or not self.error_share:
            return None
        roll = self.rng.random()
        for status, share in sorted(self.error_share.items()):
            if roll < share:
                return status
            roll -= share
        return None

    def as_json(self) -> dict:
        def flag(value: bool | set[str]) -> bool | list[str]:
            return sorted(value) if isinstance(value, set) else value

        return {
            "errorShare": {str(k): v for k, v in self.error_share.items()},
            "latency": self.latency,
            "operations": sorted(self.operations) if self.operations is not None else None,
            "tokenLifetime": self.token_lifetime,
            "stuckFeeds": flag(self.stuck_feeds),
            "fatalFeeds": flag(self.fatal_feeds),
        }


class World:
    """One simulated Amazon built from a scenario.

    :param scenario: the parsed scenario (``load_scenario``).
    :param now: the clock; ``core.clock.now`` unless a test injects another.
    :param base_url: the URL the simulator is reachable at, for URLs it hands out.
    """

    def __init__(
        self,
        scenario: "Scenario",
        *,
        now: Callable[[], datetime] = clock.now,
        base_url: str = "http://sandbox.local",
    ) -> None:
        from .catalog import Catalog
        from .scenario import OrderGenerator

        self.scenario = scenario
        self.now = now
        self.base_url = base_url
        self.rng = random.Random(scenario.seed)
        self._ids = random.Random(f"{scenario.seed}:ids")
        self.faults = Faults(rng=random.Random(f"{scenario.seed}:faults"))
        self.throttle = Throttle()
        self.applications: dict[str, Application] = {
            app.client_id: app for app in scenario.applications
        }
        self.accounts: dict[str, SellerAccount] = {}
        self.grants: dict[str, Grant] = {}
        self.consenting_seller_id = scenario.consenting_seller_id
        self.calls: list[CallRecord] = []
        self.orders: dict[str, "SimOrder"] = {}
        self.confirmations: list[dict] = []
        self.pages: dict[str, dict] = {}  # pagination tokens of order searches
        from .notifications import Notifications
        self.notifications = Notifications(self)
        first_client = next(iter(self.applications), "")
        for account in scenario.accounts:
            self.accounts[account.seller_id] = account
            for token in account.refresh_tokens:
                self.grants[token] = Grant(seller_id=account.seller_id, client_id=first_client)
        self.catalog: "Catalog" = Catalog(self)
        self.start = scenario.start or now()
        self.generator = OrderGenerator(self, scenario)
        self.generator.seed_catalog()
        self.advance()

    # -- time -------------------------------------------------------------------------

    def advance(self) -> None:
        """Bring the world up to now: new orders and channel edits, then the catalog."""
        moment = self.now()
        self.generator.advance(moment)
        self.catalog.advance(moment)

    # -- identity ---------------------------------------------------------------------

    def next_request_id(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def new_secret(self, prefix: str) -> str:
        """A fresh unguessable token; deliberately not from the seeded rng."""
        return prefix + secrets.token_urlsafe(32)

    def account_for_marketplace(self, marketplace_id: str) -> SellerAccount | None:
        for account in self.accounts.values():
            if marketplace_id in account.marketplace_ids:
                return account
        return None

    # -- credentials ------------------------------------------------------------------

    def issue_access_token(self, seller_id: str, client_id: str, now: datetime) -> tuple[str, int]:
        lifetime = ACCESS_TOKEN_LIFETIME.total_seconds()
        if self.faults.token_lifetime is not None:
            lifetime = min(lifetime, self.faults.token_lifetime)
        token = self.new_secret("Atza|")
        self.grants[token] = Grant(
            seller_id=seller_id, client_id=client_id, expires_at=now + timedelta(seconds=lifetime)
        )
        return token, 3600

    def issue_refresh_token(self, seller_id: str, client_id: str) -> str:
        token = self.new_secret("Atzr|")
        self.grants[token] = Grant(seller_id=seller_id, client_id=client_id)
        self.accounts[seller_id].refresh_tokens.append(token)
        return token

    def revoke_refresh_tokens(self, seller_id: str | None = None, token: str | None = None) -> int:
        """Revoke one refresh token, or all of a seller's; returns how many."""
        count = 0
        for key, grant in self.grants.items():
            if not key.startswith("Atzr|"):
                continue
            if (token is not None and key == token) or (
                token is None and (seller_id is None or grant.seller_id == seller_id)
            ):
                grant.revoked = True
                count += 1
        return count

    def expire_access_tokens(self) -> int:
        """Expire every access token and RDT now (the early-expiry fault)."""
        now = self.now()
        count = 0
        for grant in self.grants.values():
            if grant.expires_at is not None and grant.expires_at > now:
                grant.expires_at = now
                count += 1
        return count

    def authenticate(self, token: str, now: datetime, method: str, path: str) -> SellerAccount | None:
        """The account an ``x-amz-access-token`` speaks for, or None (→ 403)."""
        if not token.startswith(("Atza|", "Atz.sprdt|")):
            return None
        grant = self.grants.get(token)
        if grant is None or grant.revoked or grant.expires_at is None or grant.expires_at <= now:
            return None
        if grant.restricted is not None and not any(
            m == method and _path_matches(p, path) for m, p in grant.restricted
        ):
            return None
        return self.accounts.get(grant.seller_id)

    def is_restricted_token(self, token: str) -> bool:
        grant = self.grants.get(token)
        return grant is not None and grant.restricted is not None

    # -- records ----------------------------------------------------------------------

    def log_call(
        self, at: datetime, operation: str, status: int, account: SellerAccount | None, path: str
    ) -> None:
        self.calls.append(
            CallRecord(at, operation, status, account.seller_id if account else None, path)
        )


def _path_matches(granted: str, path: str) -> bool:
    return granted.rstrip("/") == path.rstrip("/")
