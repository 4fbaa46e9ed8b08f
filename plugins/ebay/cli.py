"""``marketsync sandbox ebay``: the eBay simulator on a loopback port.

The ``sandbox`` group may come from another plugin (Amazon's ``sandbox serve``); eBay adds
its command to it, or makes the group when it is first.
"""

from __future__ import annotations

import click
import trio


def sandbox_group(cli: click.Group) -> click.Group:
    group = cli.commands.get("sandbox")
    if isinstance(group, click.Group):
        return group

    @cli.group()
    def sandbox():
        """Simulated channels (for trying marketsync without seller accounts)."""

    return sandbox


def register(cli: click.Group) -> None:
    @sandbox_group(cli).command("ebay")
    @click.option("--scenario", default="default", show_default=True,
                  help="Scenario file, or the name of a shipped one (default, demo).")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=8472, show_default=True, type=int,
                  help="0 picks a free port (printed at start).")
    @click.option("--speed", default=1.0, show_default=True, type=float,
                  help="Simulated seconds per real second.")
    def ebay(scenario: str, host: str, port: int, speed: float):
        """Serve the eBay simulator and print its credentials."""
        from marketsync.core.errors import ConfigError
        from marketsync.plugins.ebay.sandbox.serve import serve

        if host not in ("127.0.0.1", "localhost", "::1"):
            click.echo("warning: the simulator hands out its credentials to anyone who asks; "
                       "keep it on loopback", err=True)
        try:
            trio.run(lambda: serve(scenario, host, port, speed, out=click.echo))
        except KeyboardInterrupt:
            click.echo("simulator stopped")
        except ConfigError as error:
            raise click.ClickException("\n".join(error.errors)) from None
