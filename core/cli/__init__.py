"""Core CLI command groups: ``stock``, ``orders``, ``products``, ``usage``, ``quarantine`` and ``pii``.

Plain click groups, added to the main ``marketsync`` group by ``daemon.py`` (``GROUPS``).
Each command gets the store and configuration through :class:`~.context.CliContext`.
The package also holds the command line's own machinery: the daemon under signals
(``service``), one-off runs (``oneshot``), CSV input (``csvio``), progress bars and the demo.
"""

from marketsync.core.cli.context import CliContext, pass_cli
from marketsync.core.cli.orders import orders
from marketsync.core.cli.pii import pii
from marketsync.core.cli.products import products
from marketsync.core.cli.quarantine import quarantine
from marketsync.core.cli.stock import stock
from marketsync.core.cli.usage import usage

GROUPS = (stock, orders, products, usage, quarantine, pii)

__all__ = ["GROUPS", "CliContext", "pass_cli"]
