"""The recipient of an order entered by hand or from CSV: checked, then stored like a
channel's buyer data (sealed with the PII key, purged 30 days after delivery).

Channels send buyer and address already shaped; a person typing them in or a spreadsheet
does not, so everything is checked here once, with a message naming the field, before an
order is entered. An address is only worth keeping if a carrier (or Amazon MCF) could
deliver to it: a name, a first line, a city or postal code, and an ISO country code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from marketsync.core.types import Address, Buyer

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_COUNTRY = re.compile(r"[A-Z]{2}")
_PHONE = re.compile(r"\+?[0-9][0-9 ()./-]{3,30}")


@dataclass(frozen=True, slots=True)
class Recipient:
    """As typed: every field optional; ``checked`` turns it into buyer and address."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    line1: str | None = None
    line2: str | None = None
    line3: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country_code: str | None = None

    def cleaned(self) -> "Recipient":
        values = {f.name: (getattr(self, f.name) or "").strip() or None for f in fields(self)}
        if values["country_code"]:
            values["country_code"] = values["country_code"].upper()
        return Recipient(**values)

    @property
    def has_address(self) -> bool:
        return any((self.line1, self.line2, self.line3, self.city, self.state,
                    self.postal_code, self.country_code))


def checked(recipient: Recipient) -> tuple[Buyer | None, Address | None]:
    """The buyer and the address to store, or ``ValueError`` naming every field at fault."""
    r = recipient.cleaned()
    problems = []
    if r.email and not _EMAIL.fullmatch(r.email):
        problems.append(f"e-mail {r.email!r} is not an e-mail address")
    if r.phone and not _PHONE.fullmatch(r.phone):
        problems.append(f"phone {r.phone!r} is not a phone number")
    address = None
    if r.has_address:
        if not r.name:
            problems.append("an address needs the recipient's name")
        if not r.line1:
            problems.append("an address needs its first line")
        if not (r.city or r.postal_code):
            problems.append("an address needs a city or a postal code")
        if not r.country_code:
            problems.append("an address needs a country (two-letter code, e.g. DE)")
        elif not _COUNTRY.fullmatch(r.country_code):
            problems.append(f"country {r.country_code!r} is not a two-letter code (e.g. DE)")
        address = Address(name=r.name, line1=r.line1, line2=r.line2, line3=r.line3,
                          city=r.city, state=r.state, postal_code=r.postal_code,
                          country_code=r.country_code, phone=r.phone)
    if problems:
        raise ValueError("; ".join(problems))
    buyer = Buyer(name=r.name, email=r.email, phone=r.phone) \
        if (r.name or r.email or r.phone) else None
    return buyer, address
