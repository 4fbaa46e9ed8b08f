"""marketsync: keeps a seller's own order book and stock in step with their sales channels.

The repository root is installed as the ``marketsync`` package (see setup.cfg), so the
design card's top-level folders import as ``marketsync.core`` and ``marketsync.plugins``
without claiming the generic names ``core`` and ``plugins`` in site-packages.
"""

__version__ = "0.1.0"
