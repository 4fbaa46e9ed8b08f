"""marketsync's channel-agnostic core.

Plugins need only this import::

    from marketsync.core import hookimpl

and an entry point in the ``marketsync`` group (see docs/plugins.md).
"""

import pluggy

PROJECT_NAME = "marketsync"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
hookspec = pluggy.HookspecMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]
