"""The daemon's one YAML file, validated into frozen dataclasses.

The file is the only thing an operator edits, often right after an upgrade, so a bad
file must fail before anything starts, with every problem at once, each as
``FILE:LINE: key.path: message``. Unknown keys are errors (a typo'd key silently
falling back to its default is the worst kind of config bug). Every key is declared
once, below, with its type, default and a one-line description; the validator walks
those declarations and ``describe()`` prints them, so the two cannot drift (tox's
``add_config``). How a value is parsed, and the walk itself, live in ``configparse``;
this module is the schema and the checks that need to know the channels.

Channel knowledge is not written here: which marketplaces, credentials and jobs exist
comes from each plugin's ``ChannelInfo``. Secrets never sit in the YAML itself; they are
``${ENV}``, ``${file:PATH}`` or ``${credential:NAME}`` references, resolved while loading
so that a missing one is a config error naming its line, not a 401 an hour later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from marketsync.core.config import parsers as parse
from marketsync.core.config.parsers import FrozenDict, Secret, mask_url, setting
from marketsync.core.errors import ConfigError
from marketsync.core.types import Address, ChannelInfo, Integration
from marketsync.core.config.yamlsource import YamlMapping, YamlSequence, join_path, load_yaml, read_yaml

__all__ = [
    "AccountConfig",
    "Config",
    "ContactConfig",
    "NotificationsConfig",
    "FrozenDict",
    "HttpConfig",
    "IntegrationConfig",
    "LogConfig",
    "PiiConfig",
    "PluginsConfig",
    "ReturnAddressConfig",
    "Secret",
    "SettingDoc",
    "describe",
    "disabled_plugins",
    "explain",
    "format_duration",
    "load_config",
    "mask_url",
    "parse_config",
    "validate_config",
]

frozen = dataclass(frozen=True, slots=True, kw_only=True)

_NAME = r"[a-z0-9][a-z0-9_-]{0,63}"
_NAME_HINT = "lower-case letters, digits, '-' and '_'"


# --- the schema -------------------------------------------------------------------------------


@frozen
class HttpConfig:
    """The small HTTP surface: status page, OAuth callback, /metrics, /healthz."""

    listen: str = setting("address the status page listens on", parse.listen_address,
                          "127.0.0.1:8470")
    token: Secret | None = setting("bearer token the HTTP API requires (secret)", parse.secret,
                                   None)
    token_for_reads: bool = setting("require the token for the status page and /metrics too "
                                    "(/healthz stays open)", parse.boolean, False)
    public_url: str | None = setting(
        "base URL people and Amazon's consent redirect reach the daemon at, e.g. "
        "https://shop.example.com:8470", parse.http_url, None, shown="http://LISTEN, loopback "
        "if listening on all addresses")
    allowed_hosts: tuple[str, ...] = setting(
        "Host names the HTTP surface answers to (DNS rebinding guard)", parse.names, (),
        shown="loopback names, the listen host and public_url's host")

    @property
    def host(self) -> str:
        return parse.split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return int(parse.split_listen(self.listen)[1])

    @property
    def local_url(self) -> str:
        """Where a process on this machine reaches the daemon: a wildcard bind address
        (``0.0.0.0``, ``::``) is no address to connect to or to hand a browser."""
        host = self.host
        if host in ("0.0.0.0", "", "*"):
            host = "127.0.0.1"
        elif host == "::":
            host = "[::1]"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The address the outside world is told about (the OAuth redirect)."""
        return self.public_url or self.local_url

    def host_names(self) -> frozenset[str]:
        """Every Host (without port) the surface answers to, lower-cased."""
        from urllib.parse import urlsplit

        names = {"localhost", "127.0.0.1", "::1", *(n.lower() for n in self.allowed_hosts)}
        if self.host not in ("0.0.0.0", "::", "", "*"):
            names.add(self.host.lower())
        if self.public_url:
            names.add((urlsplit(self.public_url).hostname or "").lower())
        return frozenset(names)


@frozen
class LogConfig:
    format: str = setting("human for a terminal, json for log shippers",
                          parse.choice("human", "json"), "human")
    level: str = setting("lowest level written", parse.choice("DEBUG", "INFO", "WARNING", "ERROR"),
                         "INFO")


@frozen
class PluginsConfig:
    disabled: tuple[str, ...] = setting("plugins not to load (their integrations stop)",
                                        parse.names, (), shown="[]")


@frozen
class PiiConfig:
    key: Secret | None = setting("key that encrypts buyer names and addresses at rest (secret)",
                                 parse.secret, None)


@frozen
class NotificationsConfig:
    """Where the channel's notifications (Amazon SP-API over SQS) wait for the daemon."""

    queue_url: str = setting("SQS queue URL, e.g. https://sqs.eu-west-1.amazonaws.com/1234/q",
                             parse.http_url)
    access_key_id: Secret = setting("AWS access key id that may read the queue (secret)",
                                    parse.secret)
    secret_access_key: Secret = setting("its AWS secret access key (secret)", parse.secret)
    region: str | None = setting(
        "AWS region of the queue", parse.text(r"[a-z]{2}(-[a-z]+)+-\d", "an AWS region, e.g. "
                                                                          "eu-west-1", "region"),
        None, shown="from queue_url")
    wait_seconds: int = setting("SQS long poll: seconds one receive waits for a message",
                                parse.integer(1, 20), 20)

    def __repr__(self) -> str:
        return f"NotificationsConfig(queue_url={self.queue_url!r})"


@frozen
class ReplicasConfig:
    """Several daemons on one PostgreSQL database (ignored on SQLite: one daemon)."""

    lease_ttl: float = setting("seconds a replica owns its jobs without renewing: a dead "
                               "replica's jobs move to the others within this plus a tenth",
                               parse.duration, 20.0, shown="20s")
    shared_rate_limits: bool = setting("keep the rate-limit buckets in the database so that "
                                       "all replicas together keep to each usage plan (off: "
                                       "one daemon on PostgreSQL, saves a query per call)",
                                       parse.boolean, True)


@frozen
class AccountConfig:
    """One seller login on one channel; its integrations share credentials and rate limits."""

    name: str  #: the key under ``accounts:``
    channel: str = setting("channel plugin that serves this account, e.g. amazon",
                           parse.text(label="channel name"))
    endpoint: str | None = setting("base URL override, e.g. the simulator's", parse.http_url, None,
                                   shown="the channel's own")
    credentials: Mapping[str, str | Secret] = setting(
        "the channel's credentials; secret ones as references",
        parse.plain_mapping(parse.raw_credential, "mapping"), factory=FrozenDict, shown="{}")
    notifications: NotificationsConfig | None = setting(
        "channel notifications from an SQS queue: new orders in seconds (optional extra "
        "marketsync[notifications])", parse.section(NotificationsConfig), None)
    #: why the channel's plugin is not loaded; then ``credentials`` is empty and unchecked
    unavailable: str | None = None

    def __repr__(self) -> str:
        return f"AccountConfig(name={self.name!r}, channel={self.channel!r})"

    def resolved_credentials(self) -> dict[str, str]:
        """Plain strings for ``Integration.credentials``: the plugin needs the text."""
        return {k: v.value if isinstance(v, Secret) else v for k, v in self.credentials.items()}


@frozen
class ReturnAddressConfig:
    name: str = setting("addressee", parse.text())
    line1: str = setting("street and number", parse.text())
    line2: str | None = setting("second address line", parse.text(), None)
    city: str = setting("city", parse.text())
    postal_code: str = setting("postal code", parse.text())
    country_code: str = setting("ISO 3166 country code", parse.text(r"[A-Z]{2}", "two capital "
                                "letters, e.g. DE", "country code"))
    state: str | None = setting("state or region", parse.text(), None)
    phone: str | None = setting("phone number", parse.text(), None)

    def to_address(self) -> Address:
        return Address(name=self.name, line1=self.line1, line2=self.line2, city=self.city,
                       postal_code=self.postal_code, country_code=self.country_code,
                       state=self.state, phone=self.phone)


@frozen
class ContactConfig:
    phone: str | None = setting("seller phone shown to buyers", parse.text(), None)
    email: str | None = setting("seller e-mail shown to buyers",
                                parse.text(r"[^@\s]+@[^@\s]+\.[^@\s]+", "an e-mail address"), None)
    mode: str = setting("prefill: only where empty; overwrite: always",
                        parse.choice("prefill", "overwrite"), "prefill")


@frozen
class DocumentsConfig:
    invoice_template: Path | None = setting(
        "HTML (Jinja) template for invoices, relative to this file; default: the built-in one",
        parse.template_file, None)
    packing_slip_template: Path | None = setting(
        "HTML (Jinja) template for packing slips, relative to this file", parse.template_file, None)
    invoice_number_format: str = setting(
        "how invoice numbers look; {number} counts per integration, never reused",
        parse.number_format, "{alias}-{number:06d}")


@frozen
class IntegrationConfig:
    """One account selling in one marketplace: the unit that has jobs and a state."""

    alias: str = setting("unique name used in logs, status and CLI commands",
                         parse.text(_NAME, _NAME_HINT, "name"))
    account: str = setting("key of the account under accounts:", parse.text(label="account name"))
    channel: str = setting("must match the account's channel", parse.text(label="channel name"),
                           None, shown="the account's")
    marketplace: str = setting("marketplace code the channel knows, e.g. DE",
                               parse.text(label="marketplace code"))
    enabled: bool = setting("false keeps the integration configured but stopped",
                            parse.boolean, True)
    orders: str = setting("which orders to import", parse.choice("FBA", "MFN", "both"), "both")
    history_days: int = setting("how far back the first order import reaches",
                                parse.integer(1, 30), 30)
    order_backfill: str = setting(
        "how the first order import reads history_days: one order report (minutes), or "
        "searchOrders page by page (Amazon: about 3 min per 100 orders beyond 2,000)",
        parse.choice("report", "search"), "report")
    inventory: str = setting("which stock to sync: MFN pushed, FBA imported",
                             parse.choice("FBA", "MFN", "both", "none"), "both")
    handling_time_days: int = setting(
        "days to ship merchant-fulfilled orders; one value per account (the channel keeps "
        "it per SKU and regional account)", parse.integer(0, 30), 1)
    review_first_push: bool = setting(
        "hold pushes that would change a channel quantity until `marketsync stock accept`; "
        "false: the local figure wins from the first push", parse.boolean, True)
    push_valve_zeroed_percent: int = setting(
        "hold a push that would set more than this share of the listings with stock to 0 "
        "at once (and at least 3)", parse.integer(1, 100), 50)
    push_valve_cut_percent: int = setting(
        "hold a push that would cut the listed quantity by more than this share at once "
        "(and by at least 20 units)", parse.integer(1, 100), 50)
    company_name: str | None = setting("seller's company name, the heading of invoices and "
                                       "packing slips", parse.text(), None, shown="the alias")
    ships_from: str | None = setting(
        "country merchant-fulfilled parcels leave from (IOSS applies only from outside the EU)",
        parse.text(r"[A-Z]{2}", "two capital letters, e.g. CN", "country code"), None,
        shown="return_address's country, else the marketplace's")
    ioss_number: str | None = setting("EU import one-stop-shop number for invoices",
                                      parse.text(r"IM\d{10}", "IM followed by 10 digits",
                                                 "IOSS number"), None)
    logo: Path | None = setting("logo for documents, relative to this file", parse.image_file, None)
    return_address: ReturnAddressConfig | None = setting(
        "where buyers send returns", parse.section(ReturnAddressConfig), None)
    contact: ContactConfig | None = setting("seller contact for buyers",
                                            parse.section(ContactConfig), None)
    documents: DocumentsConfig | None = setting("invoice and packing slip settings",
                                                parse.section(DocumentsConfig), None)
    schedule: Mapping[str, float] = setting(
        "job kind -> how often it runs; overrides the channel's default",
        parse.plain_mapping(parse.duration, "mapping of job kind to duration"), factory=FrozenDict,
        shown="{}")
    #: the channel's ``JobDefault.every`` per job kind; ``schedule`` overrides it
    default_schedule: Mapping[str, float] = field(default_factory=FrozenDict, repr=False)
    #: why the channel's plugin is not loaded: the core keeps this integration stopped, in
    #: ERROR with this reason; marketplace and schedule were not checked against the channel
    unavailable: str | None = None

    def schedule_for(self, kind: str) -> float:
        """Seconds between runs of ``kind``: the YAML's override, else the channel's."""
        if kind in self.schedule:
            return self.schedule[kind]
        try:
            return self.default_schedule[kind]
        except KeyError:
            raise KeyError(f"channel {self.channel!r} has no job {kind!r}") from None

    @property
    def settings(self) -> Mapping[str, Any]:
        """The YAML section as ``Integration.settings`` hands it to the plugin."""
        return FrozenDict({f.name: getattr(self, f.name) for f in fields(self)
                           if "parse" in f.metadata})


@parse.parser("list of integrations", IntegrationConfig)
def _integrations(value: Any, ctx: parse.Context, path: str, line: int) -> Any:
    if not isinstance(value, YamlSequence):
        raise parse.Invalid("expected a list of integrations (- alias: ...), "
                            f"got {parse.describe_value(value)}")
    result, failed = [], False
    seen_alias: dict[str, int] = {}
    seen_market: dict[tuple[str, str], tuple[str, int]] = {}
    handling: dict[str, tuple[object, str, int]] = {}  # account -> (days, alias, line)
    for index, item in enumerate(value):
        item_path, item_line = join_path(path, index), value.item_positions[index].line
        try:
            built = parse.build(IntegrationConfig, item, ctx, item_path, item_line)
        except parse.Invalid as exc:
            ctx.error(item_line, item_path, exc.message)
            built = parse.FAILED
        failed = failed or built is parse.FAILED
        result.append(built)
        if not isinstance(item, YamlMapping):
            continue
        alias, account, market = item.get("alias"), item.get("account"), item.get("marketplace")
        if isinstance(alias, str):
            alias_line = item.value_positions["alias"].line
            if alias in seen_alias:
                ctx.error(alias_line, join_path(item_path, "alias"),
                          f"duplicate alias {alias!r} (first used at line {seen_alias[alias]})")
                failed = True
            seen_alias.setdefault(alias, alias_line)
        if isinstance(account, str) and isinstance(market, str):
            market_line = item.value_positions["marketplace"].line
            other = seen_market.setdefault((account, market), (str(alias), market_line))
            if other[1] != market_line:
                ctx.error(market_line, join_path(item_path, "marketplace"),
                          f"account {account!r} already has an integration for {market} "
                          f"({other[0]!r} at line {other[1]}); orders would be imported twice")
                failed = True
        if isinstance(account, str):
            failed |= _one_handling_time(item, item_path, item_line, account, str(alias),
                                         handling, ctx)
    return parse.FAILED if failed else tuple(result)


def _one_handling_time(item: YamlMapping, path: str, line: int, account: str, alias: str,
                       seen: dict[str, tuple[object, str, int]], ctx: parse.Context) -> bool:
    """Amazon keeps the handling time per SKU and regional account, so two integrations
    of one account with different defaults would overwrite each other on every push."""
    days = item.get("handling_time_days", 1)
    if "handling_time_days" in item:
        line = item.value_positions["handling_time_days"].line
    first = seen.setdefault(account, (days, alias, line))
    if first[0] == days or first[1] == alias:
        return False
    ctx.error(line, join_path(path, "handling_time_days"),
              f"{days} differs from {first[0]} of {first[1]!r} (line {first[2]}): the channel "
              f"keeps one handling time per account; give every integration of account "
              f"{account!r} the same value")
    return True


@frozen
class Config:
    """The whole file, validated; ``source`` is where it was read from."""

    source: Path
    state_dir: Path = setting("where the daemon keeps its database and files", parse.directory,
                              None, shown="$STATE_DIRECTORY, else ./state")
    database: str = setting("SQLAlchemy URL; sqlite or postgresql+psycopg", parse.database_url,
                            None, shown="sqlite file in state_dir")
    http: HttpConfig = setting("status page and API", parse.section(HttpConfig), factory=HttpConfig)
    log: LogConfig = setting("logging", parse.section(LogConfig), factory=LogConfig)
    plugins: PluginsConfig = setting("plugin loading", parse.section(PluginsConfig),
                                     factory=PluginsConfig)
    pii: PiiConfig = setting("buyer data protection", parse.section(PiiConfig), factory=PiiConfig)
    replicas: ReplicasConfig = setting("several daemons on one PostgreSQL database",
                                       parse.section(ReplicasConfig), factory=ReplicasConfig)
    accounts: Mapping[str, AccountConfig] = setting(
        "seller accounts by name", parse.mapping_of(AccountConfig, _NAME, _NAME_HINT),
        factory=FrozenDict, shown="{}")
    integrations: tuple[IntegrationConfig, ...] = setting(
        "one entry per account and marketplace", _integrations, ())

    def __repr__(self) -> str:
        return (f"Config(source={str(self.source)!r}, database={mask_url(self.database)!r}, "
                f"integrations={[i.alias for i in self.integrations]!r})")

    @property
    def database_display(self) -> str:
        return mask_url(self.database)

    def integration(self, alias: str) -> IntegrationConfig:
        for integration in self.integrations:
            if integration.alias == alias:
                return integration
        raise KeyError(f"no integration {alias!r} (known: {', '.join(self.aliases())})")

    def aliases(self) -> list[str]:
        return [i.alias for i in self.integrations]

    def make_integration(self, alias: str, **tools: Any) -> Integration:
        """The ``core.types.Integration`` hooks receive; ``tools`` are http, log, runtimes."""
        config = self.integration(alias)
        return Integration(alias=config.alias, channel=config.channel, account=config.account,
                           marketplace=config.marketplace, settings=config.settings,
                           credentials=self.accounts[config.account].resolved_credentials(),
                           **tools)


# --- checks that span keys --------------------------------------------------------------------


def _check_account(values: dict, internal: dict, ctx: parse.Context, path: str, line: int) -> bool:
    channel = values.get("channel")
    reason = ctx.unavailable.get(channel) if isinstance(channel, str) else None
    info = ctx.channels.get(channel) if isinstance(channel, str) and not reason else None
    ctx.account_channels[internal["name"]] = channel if info is not None or reason else None
    if reason:  # a broken or disabled plugin costs its channel, not the whole file
        internal["unavailable"] = reason
        values["credentials"] = FrozenDict({})
        return True
    if isinstance(channel, str) and info is None:
        ctx.error(ctx.lines[join_path(path, "channel")], join_path(path, "channel"),
                  f"{channel!r} is not a known channel (known: {', '.join(sorted(ctx.channels))})")
        return False
    raw = values.get("credentials", {})
    if info is None or raw is parse.FAILED:
        return True
    ok, resolved = True, {}
    cred_path = join_path(path, "credentials")
    for key in sorted(info.required_credentials - set(raw)):
        ctx.error(ctx.key_lines.get(cred_path, line), join_path(cred_path, key),
                  f"is required by channel {channel!r}")
        ok = False
    for key, value in raw.items():
        key_path = join_path(cred_path, key)
        where = ctx.lines[key_path]
        if key not in info.credential_keys:
            ctx.error(where, key_path, f"unknown credential for channel {channel!r} "
                      f"({parse.did_you_mean(key, sorted(info.credential_keys))})")
            ok = False
            continue
        try:
            if key in info.secret_credentials:
                resolved[key] = parse.secret(value, ctx, key_path, where)
            else:
                resolved[key] = ctx.resolve(value)
        except parse.Invalid as exc:
            ctx.error(where, key_path, exc.message)
            ok = False
    values["credentials"] = FrozenDict(resolved)
    return ok


def _article_title(info: ChannelInfo) -> str:
    short = info.title.split(" (")[0] or info.name
    return ("an " if short[:1].lower() in "aeiou" else "a ") + short


def _check_integration(values: dict, internal: dict, ctx: parse.Context, path: str,
                       line: int) -> bool:
    ok, account, given = True, values.get("account"), values.get("channel")
    channel = given if isinstance(given, str) else None
    if isinstance(account, str):
        if account not in ctx.account_channels:
            known = ", ".join(sorted(ctx.account_channels)) or "none declared"
            ctx.error(ctx.lines[join_path(path, "account")], join_path(path, "account"),
                      f"unknown account {account!r} (known: {known})")
            ok = False
        elif ctx.account_channels[account] is None:
            ok = False  # the account's own errors are reported where it is declared
        else:
            own = ctx.account_channels[account]
            if channel is not None and channel != own:
                ctx.error(ctx.lines[join_path(path, "channel")], join_path(path, "channel"),
                          f"{channel!r} does not match account {account!r}, "
                          f"whose channel is {own!r}")
                ok = False
            channel = values["channel"] = own
    if channel in ctx.unavailable:
        internal["unavailable"] = ctx.unavailable[channel]
        return ok
    info = ctx.channels.get(channel) if channel else None
    if channel and info is None and given is not None and ok:
        ctx.error(ctx.lines[join_path(path, "channel")], join_path(path, "channel"),
                  f"{channel!r} is not a known channel (known: {', '.join(sorted(ctx.channels))})")
        return False
    if info is None:
        return ok
    market = values.get("marketplace")
    if isinstance(market, str) and market not in info.marketplaces:
        meant = [code for code, m in info.marketplaces.items()
                 if market.upper() == code or market in (m.id, m.name)]
        hint = f"did you mean {meant[0]!r}? " if meant else ""
        ctx.error(ctx.lines[join_path(path, "marketplace")], join_path(path, "marketplace"),
                  f"{market!r} is not {_article_title(info)} marketplace "
                  f"({hint}known: {', '.join(sorted(info.marketplaces))})")
        ok = False
    jobs = {job.kind: float(job.every) for job in info.jobs}
    schedule = values.get("schedule", {})
    for kind in schedule if schedule is not parse.FAILED else ():
        if kind not in jobs:
            key_path = join_path(join_path(path, "schedule"), kind)
            ctx.error(ctx.lines[key_path], key_path, f"not a job of channel {channel!r} "
                      f"({parse.did_you_mean(kind, sorted(jobs))})")
            ok = False
    if ok and schedule is not parse.FAILED:
        values["schedule"] = FrozenDict(dict(schedule))
    internal["default_schedule"] = FrozenDict(jobs)
    return ok


def _check_config(values: dict, internal: dict, ctx: parse.Context, path: str, line: int) -> bool:
    if "state_dir" not in values:
        systemd = ctx.environ.get("STATE_DIRECTORY", "").split(":")[0]
        values["state_dir"] = Path(systemd) if systemd else Path.cwd() / "state"
    if "database" not in values and values.get("state_dir") is not parse.FAILED:
        values["database"] = f"sqlite:///{values['state_dir'] / 'marketsync.sqlite'}"
    return True


_CHECKS: dict[type, parse.Check] = {
    AccountConfig: _check_account,
    IntegrationConfig: _check_integration,
    Config: _check_config,
}


# --- entry points -----------------------------------------------------------------------------


def _validate(root: Any, filename: str, base_dir: Path, channels: Mapping[str, ChannelInfo],
              environ: Mapping[str, str], unavailable: Mapping[str, str] | None) -> Config:
    if root is None:
        raise ConfigError([f"{filename}:1: the file is empty; expected settings such as "
                           "accounts: and integrations: (see config/example.yaml)"])
    if not isinstance(root, YamlMapping):
        line = root.position.line if isinstance(root, YamlSequence) else 1
        raise ConfigError([f"{filename}:{line}: the top level must be a mapping of settings, "
                           f"got {parse.describe_value(root)}"])
    disabled = {name: "its plugin is disabled under plugins.disabled"
                for name in disabled_plugins(root) if name not in (unavailable or {})}
    ctx = parse.Context(filename, base_dir, channels, environ, {**disabled, **(unavailable or {})},
                        checks=_CHECKS)
    config = parse.build(Config, root, ctx, "", 1, source=base_dir / Path(filename).name)
    if ctx.errors or config is parse.FAILED:
        ordered = sorted(ctx.errors, key=lambda error: error[0])
        raise ConfigError([message for _line, message in ordered])
    return config


def disabled_plugins(root: Any) -> list[str]:
    """``plugins.disabled`` read leniently from a loaded file, before plugins are loaded.

    The plugin manager needs this list before there are channels to validate against;
    mistakes in it are reported by the full validation afterwards.
    """
    plugins = root.get("plugins") if isinstance(root, dict) else None
    names = plugins.get("disabled") if isinstance(plugins, dict) else None
    return [name for name in names if isinstance(name, str)] if isinstance(names, list) else []


def load_config(path: str | os.PathLike[str], channels: Mapping[str, ChannelInfo], *,
                environ: Mapping[str, str] = os.environ,
                unavailable: Mapping[str, str] | None = None) -> Config:
    """Read and validate the YAML file at ``path``.

    :param channels: ``ChannelInfo`` by channel name, from the loaded plugins.
    :param environ: where ``${ENV}`` and ``$CREDENTIALS_DIRECTORY`` are looked up.
    :param unavailable: channel name -> why its plugin could not be loaded. Accounts and
        integrations on such a channel (or on a name in ``plugins.disabled``) are kept
        with ``.unavailable`` set instead of failing the whole file.
    :raises ConfigError: with every problem found, sorted by line.
    """
    root = read_yaml(path)
    return _validate(root, str(path), Path(path).absolute().parent, channels, environ,
                     unavailable)


def parse_config(text: str, channels: Mapping[str, ChannelInfo], *, filename: str = "<config>",
                 base_dir: str | os.PathLike[str] | None = None,
                 environ: Mapping[str, str] = os.environ,
                 unavailable: Mapping[str, str] | None = None) -> Config:
    """Validate YAML text as if read from ``filename``.

    Relative paths in it resolve against ``base_dir``; by default the directory of
    ``filename`` when that names a file, else the current directory.
    """
    if base_dir is not None:
        directory = Path(base_dir)
    elif not filename.startswith("<"):
        directory = Path(filename).absolute().parent
    else:
        directory = Path.cwd()
    return _validate(load_yaml(text, filename), filename, directory, channels, environ,
                     unavailable)


def validate_config(path: str | os.PathLike[str], channels: Mapping[str, ChannelInfo], *,
                    environ: Mapping[str, str] = os.environ,
                    unavailable: Mapping[str, str] | None = None) -> list[str]:
    """``check-config``: every problem in the file, or ``[]`` when it is valid."""
    try:
        load_config(path, channels, environ=environ, unavailable=unavailable)
    except ConfigError as exc:
        return exc.errors
    return []


# --- describe / --explain ---------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """Seconds as the YAML would spell them: 600 -> ``10m``, 21600 -> ``6h``, 90 -> ``90s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


@frozen
class SettingDoc:
    path: str
    type: str
    default: str
    help: str


def _docs(cls: type, prefix: str) -> list[SettingDoc]:
    result = []
    for spec in fields(cls):
        if "parse" not in spec.metadata:
            continue
        path, parser = join_path(prefix, spec.name), spec.metadata["parse"]
        if spec.metadata["shown"] is not None:
            default = spec.metadata["shown"]
        elif spec.default is not MISSING:
            default = "-" if spec.default is None else str(spec.default).lower() \
                if isinstance(spec.default, bool) else str(spec.default)
        else:
            default = "-" if spec.default_factory is not MISSING else "required"
        result.append(SettingDoc(path=path, type=parser.label, default=default,
                                 help=spec.metadata["help"]))
        nested = getattr(parser, "cls", None)
        if nested is not None:
            suffix = {IntegrationConfig: "[]", AccountConfig: ".<name>"}.get(nested, "")
            result.extend(_docs(nested, path + suffix))
    return result


def describe(channels: Mapping[str, ChannelInfo] | None = None) -> list[SettingDoc]:
    """Every key the file accepts; with ``channels``, their credentials and jobs too."""
    result = _docs(Config, "")
    for name, info in sorted((channels or {}).items()):
        for key, help_text in info.credential_keys.items():
            flags = [w for w, on in (("required", key in info.required_credentials),
                                     ("secret", key in info.secret_credentials)) if on]
            result.append(SettingDoc(path=f"accounts.<name>.credentials.{key}",
                                     type=f"{name} credential" + (f" ({', '.join(flags)})"
                                                                  if flags else ""),
                                     default="-", help=help_text))
        for job in info.jobs:
            result.append(SettingDoc(path=f"integrations[].schedule.{job.kind}",
                                     type=f"{name} job, duration",
                                     default=format_duration(job.every),
                                     help=f"how often {job.kind} runs"))
    return result


def explain(channels: Mapping[str, ChannelInfo] | None = None) -> str:
    """``check-config --explain``: one line per key, aligned."""
    docs = describe(channels)
    width = max(len(d.path) for d in docs)
    return "\n".join(f"{d.path:<{width}}  {d.help} [{d.type}; default: {d.default}]"
                     for d in docs)
