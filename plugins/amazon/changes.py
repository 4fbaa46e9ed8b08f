"""What one push asks of one SKU: quantity, handling time and prices per marketplace.

One ``Change`` becomes one Listings patch or one JSON_LISTINGS_FEED message; both the patch
path (``listings``) and the feed path (``feeds``) build their bodies from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from marketsync.core.types import Money


@dataclass
class Change:
    """Everything due for one SKU: becomes one patch request or one feed message."""

    sku: str
    quantity: int | None = None
    handling_time_days: int | None = None
    #: marketplace id -> price
    prices: dict[str, Money] = field(default_factory=dict)

    def patches(self) -> list[dict[str, Any]]:
        patches: list[dict[str, Any]] = []
        if self.quantity is not None:
            availability: dict[str, Any] = {
                "fulfillment_channel_code": "DEFAULT",
                "quantity": self.quantity,
            }
            if self.handling_time_days is not None:
                availability["lead_time_to_ship_max_days"] = self.handling_time_days
            # merge: only the sub-fields sent change (restock_date etc. stay)
            patches.append({"op": "merge", "path": "/attributes/fulfillment_availability",
                            "value": [availability]})
        if self.prices:
            offers = [
                {
                    "marketplace_id": marketplace_id,
                    "currency": price.currency,
                    "audience": "ALL",
                    "our_price": [{"schedule": [{"value_with_tax": float(price.amount)}]}],
                }
                for marketplace_id, price in sorted(self.prices.items())
            ]
            # merge keeps the seller's minimum/maximum prices that a replace would clear
            patches.append({"op": "merge", "path": "/attributes/purchasable_offer",
                            "value": offers})
        return patches

    @property
    def marketplace_ids(self) -> list[str]:
        return sorted(self.prices)
