"""What the Amazon plugin tells the core about itself (``channel_info``).

Everything here is data the core needs to run Amazon integrations without knowing SP-API:
the marketplace codes a YAML may name, the credentials an account takes, the jobs and
their default schedule, the published usage plans and how calls share rate-limit buckets.
Built once at import; ``channel_info`` must not do I/O.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from marketsync.core.types import ChannelInfo, Integration, JobDefault, Priority, UsagePlan
from marketsync.plugins.amazon import marketplaces

CHANNEL = "amazon"
RATE_LIMIT_HEADER = "x-amzn-RateLimit-Limit"
USAGE_PLANS_FILE = Path(__file__).with_name("usage_plans.tsv")

#: Operations whose names exist in two API versions with different limits. The
#: client tags v2026-01-01 ``getOrder`` as ``getOrder``; v0 reads are never used.
_PREFERRED_VERSION = {("orders", "getOrder"): "2026-01-01"}

CREDENTIAL_KEYS: Mapping[str, str] = MappingProxyType({
    "client_id": "LWA client id of the marketsync app (amzn1.application-oa2-client...)",
    "client_secret": "LWA client secret (secret)",
    "refresh_token": "LWA refresh token of the seller's regional account (Atzr|..., secret); "
                     "written by `marketsync connect` or pasted from self-authorization",
    "app_id": "application id for the consent URL (amzn1.sellerapps.app...); only for connect",
    "seller_id": "selling partner id (merchant token); needed by listings and feeds; "
                 "written by `marketsync connect`",
})



def load_usage_plans(path: Path = USAGE_PLANS_FILE) -> dict[str, UsagePlan]:
    """Operation id -> published plan; rows without a plan (sandbox-only calls) are skipped.

    An operation id used by two API versions keeps the version the plugin calls.
    """
    plans: dict[str, UsagePlan] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle, delimiter="\t"), start=2):
            operation, rate, burst = row["operationId"], row["rate_rps"], row["burst"]
            if not rate or not burst:
                continue
            preferred = _PREFERRED_VERSION.get((row["api"], operation))
            if operation in plans and preferred != row["version"]:
                continue
            try:
                plans[operation] = UsagePlan(operation=operation, rate=float(rate),
                                             burst=int(burst))
            except ValueError:
                raise ValueError(f"{path}:{line}: bad rate {rate!r} or burst {burst!r} "
                                 f"for {operation}") from None
    return plans


def bucket_key(integration: Integration, operation: str) -> tuple:
    """An account is regional: all its marketplaces share one bucket per operation."""
    return (CHANNEL, integration.account, operation)


#: JSON_LISTINGS_FEED's own limit, on top of createFeed's plan: five submissions per five
#: minutes per region (REFERENCE §7.4; a seller account is regional). The governor's
#: buckets refill steadily, so the window is kept as a bucket of 3 refilling 2 per 5
#: minutes: at most 3 + 2 = 5 in any five minutes, however the submissions fall. That
#: gives up a sustained rate of 1 a minute for 1 per 2.5 minutes, which the push's
#: coalescing never needs (a feed carries up to 25,000 listings).
LISTINGS_FEED_LIMIT = "JSON_LISTINGS_FEED"
LISTINGS_FEED_PLAN = UsagePlan(operation=LISTINGS_FEED_LIMIT, rate=2 / 300, burst=3)

USAGE_PLANS: Mapping[str, UsagePlan] = MappingProxyType(
    {**load_usage_plans(), LISTINGS_FEED_LIMIT: LISTINGS_FEED_PLAN})

#: share of searchOrders' published rate the regular order poll uses (0.0056 rps, one
#: call per 179 s → a poll every 199 s); the rest, with the burst of 20, is for the extra
#: pages of a busy window, an integration catching up, and retries
ORDER_POLL_SHARE = 0.9


def poll_period(operation: str, share: float) -> float:
    """Seconds between polls that use ``share`` of ``operation``'s published rate."""
    return float(math.ceil(1.0 / (USAGE_PLANS[operation].rate * share)))


JOBS = (
    # one run per seller account for all its marketplaces, as often as searchOrders' plan
    # allows less a share for busy windows and retries; a backfill pages at the plan's
    # rate and each page commits on its own
    JobDefault(kind="import_orders", every=poll_period("searchOrders", ORDER_POLL_SHARE),
               priority=Priority.ORDERS, timeout=3600, scope="account"),
    JobDefault(kind="import_products", every=2700, priority=Priority.PRODUCTS, timeout=1800),
    JobDefault(kind="import_stock", every=600, priority=Priority.PRODUCTS),
    JobDefault(kind="fetch_tracking", every=900, priority=Priority.PRODUCTS),
    # pushes are also triggered on demand by stock changes; these are the backstops
    # (a stock change or a submission's poll_after triggers them at once; the periods only
    # catch work from other processes, such as the CLI, and after a restart)
    JobDefault(kind="push_stock", every=60, priority=Priority.URGENT, timeout=300),
    JobDefault(kind="push_prices", every=120, priority=Priority.URGENT, timeout=300),
    JobDefault(kind="poll_submission", every=300, priority=Priority.URGENT, timeout=300),
    JobDefault(kind="confirm_shipment", every=120, priority=Priority.URGENT, timeout=300),
)


INFO = ChannelInfo(
    name=CHANNEL,
    title="Amazon (Selling Partner API)",
    marketplaces=marketplaces.MARKETPLACES,
    credential_keys=CREDENTIAL_KEYS,
    required_credentials=frozenset({"client_id", "client_secret"}),
    secret_credentials=frozenset({"client_secret", "refresh_token"}),
    jobs=JOBS,
    usage_plans=USAGE_PLANS,
    bucket_key=bucket_key,
    rate_limit_header=RATE_LIMIT_HEADER,
    # the all-orders report (order_report.py) reaches the 30 days the search path reaches
    reread_days=30,
    extra=MappingProxyType({"marketplaces": marketplaces.extra()}),
)
