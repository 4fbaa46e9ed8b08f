"""Is this listing one we already know, under a new SKU? (issue 7, renames)

A channel may show a listing under a new seller SKU (or title) after marketsync first
imported it. Treating it as new would create a second product and orphan the first
one's mapping, stock history and orders; so before creating a listing, the product
import asks ``identify`` whether an existing listing of the same integration is the
same thing, and if so renames that one instead.

The rules, strongest evidence first:

1. **Same SKU**: that listing (a title change is just an update).
2. **Same listing id** where the channel has one (its own identity for the offer): that
   listing, whatever the SKU or ASIN now say.
3. **Same ASIN and same fulfilment**, when exactly one such listing qualifies. Not
   qualifying: a listing whose SKU the channel still shows in this import
   (``present_skus``: it is a second offer of the product, not a rename), and a listing
   whose listing id differs from the incoming one (the channel says they are two) —
   unless the import is ``complete`` and the old SKU is gone from it: Amazon has no
   rename, a relisted SKU always gets a new listing id, and a whole snapshot without the
   old SKU is the evidence that it was replaced, not joined.
   Several qualifying listings mean the evidence is ambiguous (e.g. a "new" and a
   "used" offer of one ASIN): no match, and the import creates a listing as before.

Pure on purpose: it sees plain values, so the rules are tested without a database and
the caller keeps the transaction, the update and the log line.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from marketsync.core.types import ChannelListing, Fulfillment


class ListingLike(Protocol):
    """What is read from an existing listing (``store.models.Listing`` has it all)."""

    channel_sku: str
    asin: str | None
    listing_id: str | None
    fulfillment: Fulfillment


L = TypeVar("L", bound=Any)
Evidence = Literal["sku", "listing_id", "asin"]


@dataclass(frozen=True, slots=True)
class Match(Generic[L]):
    listing: L
    by: Evidence  #: which rule matched; worth saying in the log line

    @property
    def renamed(self) -> bool:
        """True when the caller must change the listing's SKU (not a plain SKU match)."""
        return self.by != "sku"


def identify(existing: Iterable[L], incoming: ChannelListing, *,
             present_skus: Collection[str] = (), complete: bool = False) -> Match[L] | None:
    """The existing listing ``incoming`` is the same as, with the rule that said so.

    :param existing: the integration's listings (all of them, off-channel ones too: a
        listing the channel dropped may come back under its new SKU).
    :param incoming: one listing as the channel reports it now.
    :param present_skus: SKUs the channel shows in the same import (seen so far); their
        listings are not renamed away by an ASIN match.
    :param complete: ``present_skus`` is the channel's whole snapshot (see rule 3).
    :returns: None when no listing is the same (or the evidence is ambiguous).
    """
    listings = list(existing)
    by_sku = [x for x in listings if x.channel_sku == incoming.channel_sku]
    if by_sku:
        return Match(by_sku[0], "sku")
    if incoming.listing_id:
        by_id = [x for x in listings if x.listing_id == incoming.listing_id]
        if len(by_id) == 1:
            return Match(by_id[0], "listing_id")
        if by_id:
            return None  # two listings claim the id: not ours to pick
    if not incoming.asin:
        return None
    # a set is used as it is: copying the page's SKUs for every listing made a first
    # import quadratic
    present = (present_skus if isinstance(present_skus, (set, frozenset))
               else set(present_skus))
    by_asin = [x for x in listings
               if x.asin == incoming.asin
               and _fulfillment(x) == incoming.fulfillment
               and x.channel_sku not in present
               and (complete or not (x.listing_id and incoming.listing_id))]
    return Match(by_asin[0], "asin") if len(by_asin) == 1 else None


def same_listing(existing: Iterable[L], incoming: ChannelListing, *,
                 present_skus: Collection[str] = ()) -> L | None:
    """``identify`` without the reason: the existing listing, or None."""
    match = identify(existing, incoming, present_skus=present_skus)
    return None if match is None else match.listing


def _fulfillment(listing: Any) -> Fulfillment:
    value = getattr(listing, "fulfillment", None) or Fulfillment.MFN
    return value if isinstance(value, Fulfillment) else Fulfillment(value)
