"""What every core CLI command is handed: the store, the configuration and the PII key.

Each command gets the store and configuration through :class:`CliContext`, found on the
click context; when the root object is the daemon's own state instead, one is built
from it on first use. Mistakes a person can fix (unknown SKU, bad CSV row, shipping a
cancelled order) become a one-line error and exit status 1, never a traceback.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from marketsync.core.domain import pii

F = TypeVar("F", bound=Callable[..., Any])

#: where the PII key is read from when the configuration has none
PII_KEY_ENV = "MARKETSYNC_PII_KEY"


@dataclass(slots=True)
class CliContext:
    store: Any  #: marketsync.core.store.Store
    config: Any = None  #: marketsync.core.config.schema.Config, or None (tests, no config)
    _cipher: pii.PiiCipher | None = field(default=None, repr=False)
    cipher_given: bool = False

    @property
    def cipher(self) -> pii.PiiCipher | None:
        """The PII key ring: the configuration's ``pii.key``, else $MARKETSYNC_PII_KEY."""
        if self._cipher is None and not self.cipher_given:
            key = getattr(getattr(self.config, "pii", None), "key", None)
            text = key.value if key is not None else os.environ.get(PII_KEY_ENV)
            cipher = pii.PiiCipher.from_text(text) if text else None
            if cipher is not None:  # without one, buyer data just shows as "encrypted"
                from marketsync.core.domain import pii_key_check

                self.store.run_blocking(pii_key_check.verify, cipher)  # before any row
            self._cipher, self.cipher_given = cipher, True
        return self._cipher

    def integration(self, alias: str) -> Any:
        """The configuration of integration ``alias`` (None without a configuration)."""
        for integration in getattr(self.config, "integrations", ()) or ():
            if integration.alias == alias:
                return integration
        return None


class KeyProblem(click.ClickException):
    """A wrong or missing PII key: exit 2, like any other configuration error."""

    exit_code = 2


def current() -> CliContext:
    ctx = click.get_current_context()
    found = ctx.find_object(CliContext)
    if found is not None:
        return found
    root = ctx.find_root()
    if "marketsync.cli_context" not in root.meta:
        state = ctx.obj
        if not (hasattr(state, "config") and hasattr(state, "store")):
            raise click.ClickException("internal error: no store for this command")
        config = state.config()
        root.meta["marketsync.cli_context"] = CliContext(store=state.store(config),
                                                         config=config)
    return root.meta["marketsync.cli_context"]


def pass_cli(fn: F) -> F:
    """Pass the CliContext first; turn the errors people can fix into ClickExceptions."""
    from marketsync.core.cli import csvio
    from marketsync.core.domain import inventory, orders, products

    fixable = (inventory.UnknownSku, orders.UnknownOrder, orders.OrderStateError,
               products.UnknownListing, products.UnknownIntegrationAlias, csvio.CsvError,
               pii.PiiKeyError, pii.PiiDecryptError, ValueError)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(current(), *args, **kwargs)
        except pii.PiiKeyError as error:
            raise KeyProblem(f"pii.key: {error}") from None
        except fixable as error:
            raise click.ClickException(str(error)) from None

    return wrapper  # type: ignore[return-value]
