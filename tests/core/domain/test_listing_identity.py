"""Recognising a listing shown under a new SKU: by listing id, else by a unique ASIN."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from marketsync.core.domain.listing_identity import identify, same_listing
from marketsync.core.store.models import Listing
from marketsync.core.types import ChannelListing, Fulfillment


@dataclass
class Known:
    channel_sku: str
    asin: str | None = None
    listing_id: str | None = None
    fulfillment: Fulfillment = Fulfillment.MFN


MUG = Known("MUG-OLD", asin="B0MUG00001")
CUP = Known("CUP-1", asin="B0CUP00001", listing_id="L-CUP")


def test_same_sku_is_the_same_listing_even_with_a_new_title():
    match = identify([MUG, CUP], ChannelListing(channel_sku="MUG-OLD", asin="B0MUG00001",
                                                title="Mug, now 350 ml"))
    assert match is not None and match.listing is MUG and match.by == "sku"
    assert not match.renamed


def test_new_sku_same_asin_is_a_rename():
    match = identify([MUG, CUP], ChannelListing(channel_sku="MUG-NEW", asin="B0MUG00001"))
    assert match is not None and match.listing is MUG and match.by == "asin" and match.renamed


def test_listing_id_wins_over_asin():
    """The channel's own id says which listing it is, even if the ASIN moved."""
    incoming = ChannelListing(channel_sku="CUP-2", asin="B0OTHER001", listing_id="L-CUP")
    match = identify([MUG, CUP], incoming)
    assert match is not None and match.listing is CUP and match.by == "listing_id"


def test_different_listing_ids_are_different_listings():
    incoming = ChannelListing(channel_sku="CUP-2", asin="B0CUP00001", listing_id="L-OTHER")
    assert same_listing([MUG, CUP], incoming) is None


def test_unknown_asin_or_none_is_new():
    assert same_listing([MUG, CUP], ChannelListing(channel_sku="X", asin="B0NEW00001")) is None
    assert same_listing([MUG, CUP], ChannelListing(channel_sku="X")) is None
    assert same_listing([], ChannelListing(channel_sku="X", asin="B0MUG00001")) is None


def test_ambiguous_asin_matches_nothing():
    """Two offers of one ASIN (say new and used): no way to tell which was renamed."""
    used = Known("MUG-USED", asin="B0MUG00001")
    assert same_listing([MUG, used], ChannelListing(channel_sku="MUG-NEW",
                                                    asin="B0MUG00001")) is None


def test_a_sku_still_present_is_not_renamed_away():
    """A second SKU for an ASIN whose first SKU the channel still shows is a new offer."""
    incoming = ChannelListing(channel_sku="MUG-USED", asin="B0MUG00001")
    assert same_listing([MUG], incoming, present_skus={"MUG-OLD"}) is None
    assert same_listing([MUG], incoming, present_skus={"CUP-1"}) is MUG


def test_other_fulfilment_is_another_listing():
    """An FBA offer of the ASIN next to the MFN one is a second listing, not a rename."""
    incoming = ChannelListing(channel_sku="MUG-FBA", asin="B0MUG00001",
                              fulfillment=Fulfillment.FBA)
    assert same_listing([MUG], incoming) is None


def test_two_listings_claiming_one_id_match_nothing():
    twins = [Known("A", listing_id="L-1"), Known("B", listing_id="L-1")]
    assert same_listing(twins, ChannelListing(channel_sku="C", listing_id="L-1")) is None


def test_works_on_store_rows():
    """The store's Listing rows carry every attribute the rules read."""
    row = Listing(channel_sku="MUG-OLD", asin="B0MUG00001", fulfillment=Fulfillment.MFN)
    other = Listing(channel_sku="CUP-1", asin="B0CUP00001", fulfillment=Fulfillment.MFN)
    assert same_listing([other, row], ChannelListing(channel_sku="MUG-NEW",
                                                     asin="B0MUG00001")) is row


skus = st.sampled_from(["A", "B", "C", "D"])
asins = st.sampled_from([None, "B01", "B02"])
ids = st.sampled_from([None, "L1", "L2"])
known = st.builds(Known, channel_sku=skus, asin=asins, listing_id=ids,
                  fulfillment=st.sampled_from(list(Fulfillment)))


@given(st.lists(known, max_size=6), skus, asins, ids, st.sets(skus))
def test_a_match_always_has_evidence(existing, sku, asin, listing_id, present):
    """Whatever the listings, a match shares the SKU, the listing id, or the ASIN and
    fulfilment with a listing whose SKU is not present and has no conflicting id."""
    incoming = ChannelListing(channel_sku=sku, asin=asin, listing_id=listing_id)
    match = identify(existing, incoming, present_skus=present)
    if match is None:
        assert not any(x.channel_sku == sku for x in existing)
        return
    found = match.listing
    assert found in existing
    if match.by == "sku":
        assert found.channel_sku == sku
    elif match.by == "listing_id":
        assert listing_id and found.listing_id == listing_id
        assert sum(x.listing_id == listing_id for x in existing) == 1
    else:
        assert asin and found.asin == asin and found.fulfillment is incoming.fulfillment
        assert found.channel_sku not in present
        assert not (found.listing_id and listing_id)
        assert sum(x.asin == asin and x.fulfillment is incoming.fulfillment
                   and x.channel_sku not in present and not (x.listing_id and listing_id)
                   for x in existing) == 1


def test_a_relisted_sku_with_a_new_listing_id_is_the_same_listing_in_a_whole_snapshot():
    """Amazon has no rename: the new SKU gets a new listing id. When the whole snapshot no
    longer shows the old SKU, the one listing of that ASIN is the one renamed."""
    incoming = ChannelListing(channel_sku="CUP-2", asin="B0CUP00001", listing_id="L-OTHER")
    match = identify([CUP], incoming, present_skus={"CUP-2"}, complete=True)
    assert match is not None and match.listing is CUP and match.by == "asin"
    assert identify([CUP], incoming, present_skus={"CUP-2", "CUP-1"}, complete=True) is None


@settings(max_examples=500)
@given(st.lists(known, max_size=8), skus, asins, ids, st.sets(skus), st.booleans())
def test_the_import_index_hands_identify_everything_it_would_pick_from(existing, sku, asin,
                                                                       listing_id, present,
                                                                       complete):
    """The product import gives ``identify`` only the listings sharing the incoming SKU,
    listing id or ASIN (a first import of 10,000 SKUs was quadratic otherwise): the
    answer must be the one the whole list gives, the same listing by the same rule."""
    from marketsync.core.domain.products import _KnownListings

    incoming = ChannelListing(channel_sku=sku, asin=asin, listing_id=listing_id)
    whole = identify(existing, incoming, present_skus=present, complete=complete)
    narrowed = identify(_KnownListings(existing).candidates(incoming), incoming,
                        present_skus=present, complete=complete)
    assert (whole is None) == (narrowed is None)
    if whole is not None:
        assert whole.listing is narrowed.listing and whole.by == narrowed.by
