"""The Amazon plugin's own commands: ``marketsync sandbox serve``.

Added to the CLI through the ``register_commands`` hook, so the core's command line knows
nothing about the simulator.
"""

from __future__ import annotations

import click
import trio


def register(cli: click.Group) -> None:
    sandbox = cli.commands.get("sandbox")
    if not isinstance(sandbox, click.Group):  # another channel's plugin may have made it

        @cli.group()
        def sandbox():
            """Simulated channels (for trying marketsync without seller accounts)."""

    @sandbox.command("serve")
    @click.option("--scenario", default="default", show_default=True,
                  help="Scenario file, or the name of a shipped one (default, demo).")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=8471, show_default=True, type=int,
                  help="0 picks a free port (printed at start).")
    @click.option("--speed", default=1.0, show_default=True, type=float,
                  help="Simulated seconds per real second.")
    def serve(scenario: str, host: str, port: int, speed: float):
        """Serve the simulator on a loopback port and print its credentials."""
        from marketsync.core.errors import ConfigError
        from marketsync.plugins.amazon.sandbox.serve import serve as serve_world

        if host not in ("127.0.0.1", "localhost", "::1"):
            click.echo("warning: the simulator hands out its credentials to anyone who asks; "
                       "keep it on loopback", err=True)
        try:
            trio.run(lambda: serve_world(scenario, host, port, speed,
                                         out=lambda text: click.echo(text, err=False)))
        except KeyboardInterrupt:
            click.echo("simulator stopped")
        except ConfigError as error:
            raise click.ClickException("\n".join(error.errors)) from None
        except BaseException as error:  # noqa: BLE001 - a taken port is one line, exit 2
            from marketsync.core.errors import address_in_use

            if address_in_use(error) is None:
                raise
            click.echo(f"error: cannot listen on {host}:{port}: the address is already in "
                       "use (choose another --port, or 0 for a free one)", err=True)
            raise SystemExit(2) from None
