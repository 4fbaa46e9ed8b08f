"""The YAML config: what a valid file becomes, and the exact message each mistake earns.

Every broken-config test asserts the whole message (``FILE:LINE: key.path: text``),
because the message is the product here: an operator fixes the file from it alone.
Tests run in a temporary directory holding ``config.yaml``, so FILE is ``config.yaml``.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import textwrap
from pathlib import Path

import pytest

from marketsync.core.config.schema import (
    Config,
    Secret,
    describe,
    disabled_plugins,
    explain,
    format_duration,
    load_config,
    mask_url,
    parse_config,
    validate_config,
)
from marketsync.core.errors import ConfigError
from marketsync.core.types import ChannelInfo, JobDefault, Marketplace
from marketsync.core.config.yamlsource import Position, load_yaml
from marketsync.plugins.amazon import marketplaces

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "example.yaml"
KNOWN = ", ".join(sorted(marketplaces.MARKETPLACES))

AMAZON = ChannelInfo(
    name="amazon",
    title="Amazon (Selling Partner API)",
    marketplaces=marketplaces.MARKETPLACES,
    credential_keys={
        "client_id": "LWA client id",
        "client_secret": "LWA client secret",
        "refresh_token": "LWA refresh token",
    },
    required_credentials=frozenset({"client_id", "client_secret", "refresh_token"}),
    secret_credentials=frozenset({"client_secret", "refresh_token"}),
    jobs=(
        JobDefault(kind="import_orders", every=600),
        JobDefault(kind="import_products", every=2700),
        JobDefault(kind="import_stock", every=600),
        JobDefault(kind="fetch_tracking", every=21600),
    ),
)
# A second, deliberately small channel: the validator must take everything from ChannelInfo.
ETSY = ChannelInfo(
    name="etsy",
    title="Etsy",
    marketplaces={"WW": Marketplace(code="WW", id="1", name="Worldwide")},
    credential_keys={"api_key": "app key", "shop_id": "shop"},
    required_credentials=frozenset({"api_key"}),
    secret_credentials=frozenset({"api_key"}),
    jobs=(JobDefault(kind="import_orders", every=900),),
)
CHANNELS = {"amazon": AMAZON, "etsy": ETSY}

ACCOUNTS = """\
accounts:
  eu:
    channel: amazon
    credentials:
      client_id: amzn1.application-oa2-client.test
      client_secret: "${LWA_SECRET}"
      refresh_token: "${file:secrets/refresh}"
"""  # 7 lines; integrations written after it start at line 8


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Work in a directory with a secret file, so that FILE is plain ``config.yaml``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "refresh").write_text("Atzr|refresh-value\n")
    return tmp_path


ENV = {"LWA_SECRET": "lwa-secret-value"}


def errors(text: str, environ: dict[str, str] | None = None) -> list[str]:
    Path("config.yaml").write_text(textwrap.dedent(text))
    return validate_config("config.yaml", CHANNELS, environ=ENV if environ is None else environ)


def load(text: str, environ: dict[str, str] | None = None) -> Config:
    Path("config.yaml").write_text(textwrap.dedent(text))
    return load_config("config.yaml", CHANNELS, environ=ENV if environ is None else environ)


def with_integration(body: str) -> str:
    """ACCOUNTS plus one integration whose first line (``- alias: de``) is line 9."""
    return ACCOUNTS + "integrations:\n  - alias: de\n" + textwrap.indent(textwrap.dedent(body), "    ")


# --- what a valid file becomes ---------------------------------------------------------------


def test_example_config_loads_with_the_real_marketplace_table():
    """Test that config/example.yaml validates as shipped, with no environment at all."""
    config = load_config(EXAMPLE, {"amazon": AMAZON}, environ={})
    assert config.aliases() == ["amazon-de", "amazon-uk", "amazon-us"]
    de = config.integration("amazon-de")
    assert (de.channel, de.marketplace, de.ioss_number) == ("amazon", "DE", "IM0123456789")
    assert de.schedule_for("import_orders") == 300.0  # overridden: 5m
    assert de.schedule_for("fetch_tracking") == 21600.0  # the channel's default
    assert de.return_address.to_address().postal_code == "10115"
    assert config.integration("amazon-us").channel == "amazon"
    credentials = config.accounts["eu-main"].resolved_credentials()
    assert credentials["client_secret"] == "example-client-secret-eu"
    assert credentials["refresh_token"] == "Atzr|example-refresh-token-eu"  # newline stripped
    assert config.pii.key.value == "ZXhhbXBsZS1waWkta2V5LW5vdC1mb3ItcHJvZCEhISE="
    assert (config.http.host, config.http.port) == ("127.0.0.1", 8470)


def test_defaults_fill_every_optional_key(in_tmp):
    """Test that a minimal integration gets the documented defaults."""
    config = load(with_integration("account: eu\nmarketplace: DE\n"), environ={**ENV})
    de = config.integration("de")
    assert (de.enabled, de.orders, de.history_days, de.inventory, de.handling_time_days) == (
        True, "both", 30, "both", 1)
    assert de.schedule == {} and de.schedule_for("import_products") == 2700.0
    assert config.state_dir == in_tmp / "state"
    assert config.database == f"sqlite:///{in_tmp / 'state' / 'marketsync.sqlite'}"
    assert (config.log.format, config.log.level, config.http.token) == ("human", "INFO", None)


def test_state_directory_comes_from_systemd(tmp_path):
    """Test that $STATE_DIRECTORY (first of several) is the default state_dir and DB home."""
    config = load("log: {level: DEBUG}\n", environ={"STATE_DIRECTORY": "/var/lib/ms:/var/lib/x"})
    assert config.state_dir == Path("/var/lib/ms")
    assert config.database == "sqlite:////var/lib/ms/marketsync.sqlite"


def test_schedule_durations_in_every_spelling():
    """Test that 30s, 10m, 6h, 1d, 1h30m and plain seconds all mean seconds."""
    config = load(with_integration("""\
        account: eu
        marketplace: DE
        schedule: {import_orders: 30s, import_products: 1h30m, import_stock: 90, fetch_tracking: 1d}
        """))
    de = config.integration("de")
    assert dict(de.schedule) == {"import_orders": 30.0, "import_products": 5400.0,
                                 "import_stock": 90.0, "fetch_tracking": 86400.0}
    assert de.schedule_for("import_stock") == 90.0
    with pytest.raises(KeyError, match="channel 'amazon' has no job 'push_stock'"):
        de.schedule_for("push_stock")


def test_secrets_from_env_file_and_systemd_credentials(in_tmp):
    """Test the three reference kinds and that a resolved Secret never prints its value."""
    (in_tmp / "creds").mkdir()
    (in_tmp / "creds" / "refresh").write_text("from-systemd\r\n")
    text = ACCOUNTS.replace("${file:secrets/refresh}", "${credential:refresh}") + textwrap.dedent("""\
        pii: {key: "${file:secrets/refresh}"}
        database: postgresql+psycopg://ms:${PGPASS}@db/ms
        """)
    config = load(text, environ={**ENV, "PGPASS": "pg-pw", "CREDENTIALS_DIRECTORY": str(in_tmp / "creds")})
    secret = config.accounts["eu"].credentials["client_secret"]
    assert isinstance(secret, Secret) and secret.value == secret.reveal() == "lwa-secret-value"
    assert (str(secret), repr(secret), f"{secret}", f"{secret:>5}") == ("***", "'***'", "***", "  ***")
    assert "lwa-secret-value" not in repr(config.accounts["eu"].credentials)
    assert config.accounts["eu"].resolved_credentials()["refresh_token"] == "from-systemd"
    assert config.pii.key.value == "Atzr|refresh-value"
    assert config.database == "postgresql+psycopg://ms:pg-pw@db/ms"
    assert "pg-pw" not in repr(config) and config.database_display == "postgresql+psycopg://ms:***@db/ms"


def test_make_integration_hands_plugins_plain_credentials():
    """Test that core.types.Integration gets the validated settings and resolved strings."""
    config = load(with_integration("account: eu\nmarketplace: UK\nhistory_days: 7\n"))
    integration = config.make_integration("de")
    assert (integration.channel, integration.account, integration.marketplace) == ("amazon", "eu", "UK")
    assert integration.settings["history_days"] == 7
    assert integration.credentials == {"client_id": "amzn1.application-oa2-client.test",
                                       "client_secret": "lwa-secret-value",
                                       "refresh_token": "Atzr|refresh-value"}
    assert all(type(value) is str for value in integration.credentials.values())


def test_config_is_frozen_yet_copyable():
    """Test that nothing downstream can change the config, and that it copies and dumps."""
    config = load(with_integration("account: eu\nmarketplace: DE\nschedule: {import_orders: 1m}\n"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.integrations[0].history_days = 3  # type: ignore[misc]
    for mapping in (config.integrations[0].schedule, config.accounts,
                    config.accounts["eu"].credentials):
        with pytest.raises(TypeError, match="read-only"):
            mapping["x"] = 1  # type: ignore[index]
        with pytest.raises(TypeError, match="read-only"):
            mapping.update(x=1)  # type: ignore[attr-defined]
    assert copy.deepcopy(config).integrations[0].schedule == {"import_orders": 60.0}
    assert pickle.loads(pickle.dumps(config.integrations[0])) == config.integrations[0]
    dumped = dataclasses.asdict(config.integrations[0])
    assert dumped["schedule"] == {"import_orders": 60.0} and dumped["history_days"] == 30


def test_merge_keys_share_a_return_address():
    """Test that YAML anchors and ``<<`` work, and explicit keys win over merged ones."""
    config = load(ACCOUNTS + textwrap.dedent("""\
        integrations:
          - alias: de
            account: eu
            marketplace: DE
            return_address: &home {name: Shop, line1: Road 1, city: Köln, postal_code: "50667", country_code: DE}
          - alias: fr
            account: eu
            marketplace: FR
            return_address: {<<: *home, city: Bonn}
        """))
    assert config.integration("fr").return_address.name == "Shop"
    assert config.integration("fr").return_address.city == "Bonn"


def test_a_second_channel_is_validated_from_its_own_channel_info():
    """Test that marketplaces, credentials and jobs come from ChannelInfo, not from Amazon."""
    config = load("""\
        accounts:
          shop: {channel: etsy, credentials: {api_key: "${ETSY}"}}
        integrations:
          - {alias: etsy, account: shop, marketplace: WW, schedule: {import_orders: 1m}}
        """, environ={"ETSY": "k"})
    assert config.integration("etsy").schedule_for("import_orders") == 60.0


def test_describe_documents_every_key_and_the_channels_extras():
    """Test that every declared key has a type, a default and a description for --explain."""
    docs = {doc.path: doc for doc in describe(CHANNELS)}
    assert docs["integrations[].history_days"].type == "integer 1..30"
    assert docs["integrations[].history_days"].default == "30"
    assert docs["state_dir"].default == "$STATE_DIRECTORY, else ./state"
    assert docs["accounts.<name>.credentials.client_secret"].type == "amazon credential (required, secret)"
    assert docs["integrations[].schedule.fetch_tracking"].default == "6h"
    assert all(doc.help and doc.type and doc.default for doc in docs.values())
    assert "integrations[].return_address.country_code" in explain()


def test_durations_are_shown_as_the_yaml_spells_them():
    """Test that --explain shows 10m, 6h, 1d, 90s rather than raw seconds."""
    assert [format_duration(s) for s in (600, 21600, 86400, 90, 2.5, 5400)] == [
        "10m", "6h", "1d", "90s", "2.5s", "90m"]


def test_mask_url_hides_passwords():
    """Test that database URLs are safe to show."""
    assert mask_url("postgresql+psycopg://u:s3cr@t@h:5432/db") == "postgresql+psycopg://u:***@h:5432/db"
    assert mask_url("postgresql://h/db?user=u&password=pw") == "postgresql://h/db?user=u&password=***"
    assert mask_url("sqlite:////var/lib/x.sqlite") == "sqlite:////var/lib/x.sqlite"


def test_loader_keeps_positions_of_keys_values_and_items():
    """Test the line-tracking loader the error messages depend on."""
    root = load_yaml("a:\n  - x: 1\n    y: [2]\n", "f.yaml")
    assert root.key_positions["a"] == Position(1, 1)
    assert root["a"].item_positions == [Position(2, 5)]
    assert root["a"][0].value_positions["y"] == Position(3, 8)


def test_amazon_marketplace_table():
    """Test the 23 marketplaces: unique ids, regions, hosts and the UK/GB quirk."""
    table = marketplaces.MARKETPLACES
    assert len(table) == 23 and len({m.id for m in table.values()}) == 23
    assert marketplaces.by_id("A1PA6795UKMFR9") == table["DE"]
    assert marketplaces.endpoint_for("IN") == "https://sellingpartnerapi-eu.amazon.com"
    assert marketplaces.endpoint_for("BR") == "https://sellingpartnerapi-na.amazon.com"
    assert marketplaces.endpoint_for("SG", sandbox=True) == "https://sandbox.sellingpartnerapi-fe.amazon.com"
    assert (table["UK"].currency, marketplaces.DETAILS["UK"].country) == ("GBP", "GB")
    assert marketplaces.seller_central_url("DE") == "https://sellercentral-europe.amazon.com"
    assert marketplaces.extra()["JP"]["region"] == "FE"
    with pytest.raises(KeyError, match="'A38D8NSA03LJTC' is not an Amazon marketplace id"):
        marketplaces.by_id("A38D8NSA03LJTC")
    with pytest.raises(KeyError, match="'GB' is not an Amazon marketplace"):
        marketplaces.endpoint_for("GB")


# --- what each mistake earns -----------------------------------------------------------------

BROKEN = [
    pytest.param(
        ACCOUNTS + "integration:\n  - alias: de\n",
        ["config.yaml:8: integration: unknown key (did you mean 'integrations'?)"],
        id="unknown-top-level-key"),
    pytest.param(
        with_integration("account: eu\nmarketplce: DE\n"),
        ["config.yaml:9: integrations[0].marketplace: is required",
         "config.yaml:11: integrations[0].marketplce: unknown key (did you mean 'marketplace'?)"],
        id="typo-in-integration-key"),
    pytest.param(
        with_integration("account: eu\nmarketplace: DE\n")
        + "  - alias: de\n    account: eu\n    marketplace: FR\n",
        ["config.yaml:12: integrations[1].alias: duplicate alias 'de' (first used at line 9)"],
        id="duplicate-alias"),
    pytest.param(
        with_integration("account: eu\nmarketplace: DE\nmarketplace: FR\n"),
        ["config.yaml:12: integrations[0].marketplace: duplicate key (first given at line 11)"],
        id="duplicate-yaml-key"),
    pytest.param(
        with_integration("account: eu\nmarketplace: XX\n"),
        [f"config.yaml:11: integrations[0].marketplace: 'XX' is not an Amazon marketplace "
         f"(known: {KNOWN})"],
        id="bad-marketplace"),
    pytest.param(
        with_integration("account: eu\nmarketplace: de\n"),
        [f"config.yaml:11: integrations[0].marketplace: 'de' is not an Amazon marketplace "
         f"(did you mean 'DE'? known: {KNOWN})"],
        id="lower-case-marketplace"),
    pytest.param(
        with_integration("account: eu\nmarketplace: A1PA6795UKMFR9\n"),
        [f"config.yaml:11: integrations[0].marketplace: 'A1PA6795UKMFR9' is not an Amazon "
         f"marketplace (did you mean 'DE'? known: {KNOWN})"],
        id="marketplace-id-instead-of-code"),
    pytest.param(
        "accounts:\n  shop:\n    channel: ebay\n",
        ["config.yaml:3: accounts.shop.channel: 'ebay' is not a known channel (known: amazon, etsy)"],
        id="unknown-channel"),
    pytest.param(
        with_integration("account: us\nmarketplace: US\n"),
        ["config.yaml:10: integrations[0].account: unknown account 'us' (known: eu)"],
        id="unknown-account"),
    pytest.param(
        with_integration("account: eu\nchannel: etsy\nmarketplace: DE\n"),
        ["config.yaml:11: integrations[0].channel: 'etsy' does not match account 'eu', "
         "whose channel is 'amazon'"],
        id="channel-mismatch"),
    pytest.param(
        with_integration("account: eu\nmarketplace: DE\nhistory_days: 31\n"),
        ["config.yaml:12: integrations[0].history_days: must be between 1 and 30, got 31"],
        id="history-days-31"),
    pytest.param(
        with_integration("account: eu\nmarketplace: DE\nhistory_days: ten\n"),
        ["config.yaml:12: integrations[0].history_days: expected a whole number, got 'ten'"],
        id="history-days-text"),
    pytest.param(
        with_integration("account: eu\nmarketplace: DE\nhandling_time_days: yes\n"),
        ["config.yaml:12: integrations[0].handling_time_days: expected a whole number, "
         "got the boolean true"],
        id="bool-for-int"),
    pytest.param(
        with_integration("account: eu\nmarketplace: DE\norders: ALL\n"),
        ["config.yaml:12: integrations[0].orders: 'ALL' is not one of FBA, MFN, both"],
        id="orders-ALL"),
    pytest.param(
        with_integration("account: eu\nmarketplace: DE\ninventory: all\n"),
        ["config.yaml:12: integrations[0].inventory: 'all' is not one of FBA, MFN, both, none"],
        id="bad-inventory"),
    pytest.param(
        with_integration("account: eu\nmarketplace: DE\nschedule:\n  import_orders: ten minutes\n"),
        ["config.yaml:13: integrations[0].schedule.import_orders: 'ten minutes' is not a duration "
         "(write e.g. 30s, 10m, 6h, 1d or a number of seconds)"],
        id="bad-duration"),
    pytest.param(
        with_integration("account: eu\nmarketplace: DE\nschedule: {import_order: 10m}\n"),
        ["config.yaml:12: integrations[0].schedule.import_order: not a job of channel 'amazon' "
         "(did you mean 'import_orders'?)"],
        id="schedule-key-not-a-job"),
    pytest.param(
        with_integration("account: eu\nmarketplace: DE\nschedule: {import_orders: -5m, import_stock: 0}\n"),
        ["config.yaml:12: integrations[0].schedule.import_orders: must be a positive duration, got '-5m'",
         "config.yaml:12: integrations[0].schedule.import_stock: must be a positive duration, got the number 0"],
        id="negative-duration"),
    pytest.param(
        with_integration("account: eu\nmarketplace: DE\nioss_number: IM12345\n"),
        ["config.yaml:12: integrations[0].ioss_number: 'IM12345' is not valid (IM followed by 10 digits)"],
        id="bad-ioss"),
    pytest.param(
        ACCOUNTS.replace('      refresh_token: "${file:secrets/refresh}"\n', ""),
        ["config.yaml:4: accounts.eu.credentials.refresh_token: is required by channel 'amazon'"],
        id="missing-required-credential"),
    pytest.param(
        ACCOUNTS.replace("client_id:", "client_idd:"),
        ["config.yaml:4: accounts.eu.credentials.client_id: is required by channel 'amazon'",
         "config.yaml:5: accounts.eu.credentials.client_idd: unknown credential for channel "
         "'amazon' (did you mean 'client_id'?)"],
        id="unknown-credential"),
    pytest.param(
        ACCOUNTS + "integrations:\n  alias: de\n",
        ["config.yaml:9: integrations: expected a list of integrations (- alias: ...), got a mapping"],
        id="integrations-not-a-list"),
    pytest.param(
        with_integration("account: eu\nmarketplace: DE\n")
        + "  - alias: de-again\n    account: eu\n    marketplace: DE\n",
        ["config.yaml:14: integrations[1].marketplace: account 'eu' already has an integration "
         "for DE ('de' at line 11); orders would be imported twice"],
        id="same-account-and-marketplace-twice"),
    pytest.param(
        ACCOUNTS + "integrations:\n  - account: eu\n    marketplace: DE\n",
        ["config.yaml:9: integrations[0].alias: is required"],
        id="missing-alias"),
    pytest.param(
        with_integration("account: eu\nmarketplace: DE\n").replace("alias: de", "alias: DE Shop"),
        ["config.yaml:9: integrations[0].alias: 'DE Shop' is not valid "
         "(lower-case letters, digits, '-' and '_')"],
        id="bad-alias"),
    pytest.param(
        with_integration("account: eu\nmarketplace: DE\nreturn_address: {name: A, line1: B, "
                         "city: C, postal_code: 01234, country_code: DE}\n"),
        ["config.yaml:12: integrations[0].return_address.postal_code: expected text, "
         "got the number 668 (put it in quotes)"],
        id="unquoted-postal-code"),
    pytest.param(
        ACCOUNTS.replace("client_id: amzn1.application-oa2-client.test", "client_id:"),
        ["config.yaml:5: accounts.eu.credentials.client_id: is empty"],
        id="empty-credential"),
    pytest.param(
        with_integration("account: eu\nmarketplace: DE\nschedule: {import_orders: .nan}\n"),
        ["config.yaml:12: integrations[0].schedule.import_orders: must be a positive duration, "
         "got the number nan"],
        id="nan-duration"),
    pytest.param(
        "database: mysql://user:hunter2@db/shop\n",
        ["config.yaml:1: database: 'mysql://user:***@db/shop' is not a supported database URL "
         "(expected sqlite:////PATH or postgresql+psycopg://USER@HOST/DB)"],
        id="bad-database-url"),
    pytest.param(
        "http:\n  listen: localhost\nlog: {level: info}\n",
        ["config.yaml:2: http.listen: 'localhost' is not HOST:PORT (e.g. 127.0.0.1:8470)",
         "config.yaml:3: log.level: 'info' is not one of DEBUG, INFO, WARNING, ERROR"],
        id="bad-listen-and-level"),
    pytest.param(
        "http:\n  token: !secret http_token\n",
        ["config.yaml:2: http.token: unsupported YAML tag '!secret' (secrets are written as "
         '"${ENV_VAR}", "${file:PATH}" or "${credential:NAME}")'],
        id="unsupported-tag"),
    pytest.param(
        "accounts:\n  eu: [\n",
        ["config.yaml:3: invalid YAML: expected the node content, but found "
         "'<stream end>' (while parsing a flow node)"],
        id="yaml-syntax-error"),
    pytest.param(
        "",
        ["config.yaml:1: the file is empty; expected settings such as accounts: and "
         "integrations: (see config/example.yaml)"],
        id="empty-file"),
    pytest.param(
        "# only a comment\n",
        ["config.yaml:1: the file is empty; expected settings such as accounts: and "
         "integrations: (see config/example.yaml)"],
        id="only-comments"),
    pytest.param(
        "- accounts\n- integrations\n",
        ["config.yaml:1: the top level must be a mapping of settings, got a list"],
        id="top-level-not-a-mapping"),
]


@pytest.mark.parametrize(("text", "expected"), BROKEN)
def test_broken_config_is_reported_exactly(text, expected):
    """Test that each mistake yields exactly these FILE:LINE: key: message lines."""
    assert errors(text) == expected


def test_broken_config_raises_config_error_with_every_problem():
    """Test that load_config raises ConfigError whose .errors and text list all problems."""
    with pytest.raises(ConfigError) as caught:
        load(with_integration("account: eu\nmarketplace: XX\nhistory_days: 0\n"))
    assert len(caught.value.errors) == 2
    assert str(caught.value) == "\n".join(caught.value.errors)


def test_several_errors_are_reported_together_sorted_by_line():
    """Test that one run reports every problem, in file order, not just the first."""
    text = ACCOUNTS + textwrap.dedent("""\
        integrations:
          - alias: de
            account: eu
            marketplace: XX
            orders: ALL
          - alias: de
            account: nobody
            marketplace: DE
        log: {format: xml}
        colour: blue
        """)
    assert errors(text, environ={}) == [
        "config.yaml:6: accounts.eu.credentials.client_secret: environment variable LWA_SECRET is not set",
        f"config.yaml:11: integrations[0].marketplace: 'XX' is not an Amazon marketplace (known: {KNOWN})",
        "config.yaml:12: integrations[0].orders: 'ALL' is not one of FBA, MFN, both",
        "config.yaml:13: integrations[1].alias: duplicate alias 'de' (first used at line 9)",
        "config.yaml:14: integrations[1].account: unknown account 'nobody' (known: eu)",
        "config.yaml:16: log.format: 'xml' is not one of human, json",
        "config.yaml:17: colour: unknown key (expected one of: state_dir, database, http, log, "
        "plugins, pii, replicas, accounts, integrations)",
    ]


def test_literal_secret_is_refused_without_echoing_it():
    """Test that a secret written inline is an error that names the key, not the value."""
    found = errors(ACCOUNTS.replace('"${LWA_SECRET}"', "amzn1.oa2-cs.v1.literal-value"))
    assert found == [
        "config.yaml:6: accounts.eu.credentials.client_secret: is a secret: give it as "
        '"${ENV_VAR}", "${file:PATH}" or "${credential:NAME}", not inline']
    assert "literal-value" not in found[0]


def test_missing_environment_variable():
    """Test that an unset ${ENV} names the variable, the key and its line."""
    assert errors(ACCOUNTS, environ={}) == [
        "config.yaml:6: accounts.eu.credentials.client_secret: environment variable LWA_SECRET is not set"]


def test_empty_environment_variable():
    """Test that a set-but-empty secret is caught now rather than as a 401 later."""
    assert errors(ACCOUNTS, environ={"LWA_SECRET": ""}) == [
        "config.yaml:6: accounts.eu.credentials.client_secret: environment variable LWA_SECRET is empty"]


def test_missing_secret_file(in_tmp):
    """Test that an unreadable ${file:} names the resolved path, key and line."""
    (in_tmp / "secrets" / "refresh").unlink()
    assert errors(ACCOUNTS) == [
        f"config.yaml:7: accounts.eu.credentials.refresh_token: cannot read secret file "
        f"{in_tmp}/secrets/refresh: No such file or directory"]


def test_systemd_credential_without_credentials_directory():
    """Test that ${credential:} outside systemd explains what is missing."""
    text = ACCOUNTS.replace("${file:secrets/refresh}", "${credential:refresh}")
    assert errors(text) == [
        "config.yaml:7: accounts.eu.credentials.refresh_token: ${credential:refresh} needs "
        "$CREDENTIALS_DIRECTORY, which systemd sets for LoadCredential=; it is not set "
        "(outside systemd use ${file:PATH})"]


def test_error_messages_never_contain_resolved_secrets(in_tmp):
    """Test that even a wrong-type secret elsewhere never echoes a resolved value."""
    text = ACCOUNTS + "pii: {key: \"${file:secrets/refresh}x\"}\n"
    found = errors(text)
    assert found == ['config.yaml:8: pii.key: is a secret: give it as "${ENV_VAR}", '
                     '"${file:PATH}" or "${credential:NAME}", not inline']
    assert not any("refresh-value" in line or "lwa-secret-value" in line for line in found)


def test_missing_logo(in_tmp):
    """Test that a logo is checked when loading, not when the first document is printed."""
    assert errors(with_integration("account: eu\nmarketplace: DE\nlogo: logos/de.png\n")) == [
        f"config.yaml:12: integrations[0].logo: logos/de.png does not exist "
        f"(looked for {in_tmp}/logos/de.png)"]


def test_logo_that_is_not_an_image(in_tmp):
    """Test that the logo's magic bytes are checked, whatever its name says."""
    (in_tmp / "logos").mkdir()
    (in_tmp / "logos" / "de.png").write_text("not really a picture")
    (in_tmp / "logos" / "uk.svg").write_text('<?xml version="1.0"?>\n<svg xmlns="x"></svg>\n')
    (in_tmp / "logos" / "us.jpg").write_bytes(b"\xff\xd8\xff\xe0rest")
    assert errors(with_integration("account: eu\nmarketplace: DE\nlogo: logos/de.png\n")) == [
        "config.yaml:12: integrations[0].logo: logos/de.png is not a PNG, JPEG or SVG image"]
    config = load(with_integration("account: eu\nmarketplace: DE\nlogo: logos/uk.svg\n"))
    assert config.integration("de").logo == in_tmp / "logos" / "uk.svg"
    assert not errors(with_integration("account: eu\nmarketplace: DE\nlogo: logos/us.jpg\n"))


def test_unreadable_config_file():
    """Test that a missing file is a ConfigError naming it, not a traceback."""
    assert validate_config("nowhere.yaml", CHANNELS, environ={}) == [
        "nowhere.yaml: cannot read: No such file or directory"]


def test_parse_config_names_the_given_filename(in_tmp):
    """Test that text validated without a file still reports a useful location."""
    with pytest.raises(ConfigError) as caught:
        parse_config("log: {level: LOUD}\n", CHANNELS, filename="inline.yaml", base_dir=in_tmp)
    assert caught.value.errors == [
        "inline.yaml:1: log.level: 'LOUD' is not one of DEBUG, INFO, WARNING, ERROR"]


EBAY_ACCOUNT = """\
  shop: {channel: ebay, credentials: {token: "${EBAY_TOKEN}"}}
integrations:
  - {alias: de, account: eu, marketplace: DE}
  - {alias: ebay-de, account: shop, marketplace: EBAY_DE, schedule: {whatever: 5m}}
"""


def test_a_broken_plugin_costs_only_its_channel():
    """Test that accounts on a channel whose plugin failed are kept and marked, not errors."""
    Path("config.yaml").write_text(ACCOUNTS + EBAY_ACCOUNT)
    assert validate_config("config.yaml", CHANNELS, environ=ENV) == [
        "config.yaml:8: accounts.shop.channel: 'ebay' is not a known channel (known: amazon, etsy)"]
    config = load_config("config.yaml", CHANNELS, environ=ENV,
                         unavailable={"ebay": "plugin failed to import: ImportError"})
    ebay = config.integration("ebay-de")
    assert (ebay.unavailable, ebay.channel, dict(ebay.schedule)) == (
        "plugin failed to import: ImportError", "ebay", {"whatever": 300.0})
    assert config.accounts["shop"].unavailable == "plugin failed to import: ImportError"
    assert config.accounts["shop"].credentials == {}  # never resolved: ${EBAY_TOKEN} is unset
    assert config.integration("de").unavailable is None


def test_a_disabled_plugin_costs_only_its_channel():
    """Test that plugins.disabled names a channel whose integrations are kept, stopped."""
    Path("config.yaml").write_text(ACCOUNTS + EBAY_ACCOUNT + "plugins: {disabled: [ebay]}\n")
    config = load_config("config.yaml", CHANNELS, environ=ENV)
    assert config.plugins.disabled == ("ebay",)
    assert config.integration("ebay-de").unavailable == "its plugin is disabled under plugins.disabled"
    assert disabled_plugins(load_yaml(Path("config.yaml").read_text())) == ["ebay"]
    assert disabled_plugins(load_yaml("plugins: {disabled: oops}\n")) == []


def test_example_config_validates_against_the_shipped_amazon_plugin():
    """Test that the example matches what the real Amazon plugin declares (keys, jobs)."""
    from marketsync.plugins.amazon.manifest import INFO

    config = load_config(EXAMPLE, {INFO.name: INFO}, environ={})
    # Amazon's order poll follows searchOrders' usage plan (one run per account)
    assert config.integration("amazon-uk").schedule_for("import_orders") == 199.0
    assert {doc.path: doc.default for doc in describe({INFO.name: INFO})}[
        "integrations[].schedule.import_products"] == "45m"


def test_nested_aliases_are_shared_not_expanded():
    """Test that a "billion laughs" document loads at once instead of expanding 10**9 nodes."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    root = load_yaml("\n".join(lines) + "\n", "bomb.yaml")
    assert root["a8"][0] is root["a7"]


def test_recursive_alias_is_an_error():
    """Test that a mapping containing itself is refused rather than looping."""
    with pytest.raises(ConfigError) as caught:
        load_yaml("a: &x\n  b: *x\n", "loop.yaml")
    assert caught.value.errors == ["loop.yaml:1: a.b: an alias refers to itself"]


def test_missing_key_in_a_section_points_at_the_section():
    """Test that "is required" inside return_address names the return_address: line."""
    assert errors(with_integration("""\
        account: eu
        marketplace: DE
        return_address:
          name: Shop
          city: Köln
          postal_code: "50667"
          country_code: DE
        """)) == ["config.yaml:12: integrations[0].return_address.line1: is required"]


def test_parse_config_resolves_paths_next_to_the_named_file(tmp_path):
    """Test that text given with a file name behaves like that file (secrets, source)."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "pii.key").write_text("k\n")
    config = parse_config('pii: {key: "${file:pii.key}"}\n', CHANNELS,
                          filename=str(tmp_path / "conf" / "ms.yaml"), environ={})
    assert config.pii.key.value == "k"
    assert config.source == tmp_path / "conf" / "ms.yaml"


def test_documents_section_checks_templates_and_number_format(tmp_path):
    """A missing template and a number format without {number} are named with their lines."""
    from marketsync.core.config.schema import parse_config
    from marketsync.plugins.amazon import manifest

    (tmp_path / "invoice.html").write_text("<p>{{ order.number }}</p>")
    text = ("accounts:\n  eu:\n    channel: amazon\n    credentials:\n      client_id: x\n"
            "      client_secret: ${S}\nintegrations:\n  - alias: de\n    account: eu\n"
            "    marketplace: DE\n    documents:\n      invoice_template: invoice.html\n"
            "      packing_slip_template: missing.html\n      invoice_number_format: INV-{alias}\n")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, {"amazon": manifest.INFO}, filename=str(tmp_path / "c.yaml"),
                     environ={"S": "s"})
    errors = caught.value.errors
    assert any(":13: integrations[0].documents.packing_slip_template: missing.html does not exist"
               in e for e in errors), errors
    assert any(":14: integrations[0].documents.invoice_number_format: 'INV-{alias}' does not "
               "contain {number}" in e for e in errors), errors
    good = text.replace("      packing_slip_template: missing.html\n", "").replace(
        "INV-{alias}", "INV-{alias}-{number:05d}")
    config = parse_config(good, {"amazon": manifest.INFO}, filename=str(tmp_path / "c.yaml"),
                          environ={"S": "s"})
    docs = config.integration("de").documents
    assert docs.invoice_template == tmp_path / "invoice.html"
    assert docs.invoice_number_format == "INV-{alias}-{number:05d}"


def test_one_handling_time_per_account():
    """Amazon keeps one handling time per SKU and regional account: two integrations of
    one account with different defaults would overwrite each other (3 -> 1 was seen)."""
    text = ACCOUNTS + textwrap.dedent("""\
        integrations:
          - alias: de
            account: eu
            marketplace: DE
            handling_time_days: 3
          - alias: uk
            account: eu
            marketplace: UK
        """)
    assert errors(text) == [
        "config.yaml:13: integrations[1].handling_time_days: 1 differs from 3 of 'de' "
        "(line 12): the channel keeps one handling time per account; give every integration "
        "of account 'eu' the same value"]
    same = text.replace("    marketplace: UK\n", "    marketplace: UK\n    handling_time_days: 3\n")
    assert errors(same) == []


def test_replicas_take_their_status_port_from_the_environment(in_tmp) -> None:
    """One file for every replica: ``http.listen`` may name ${ENV}, which the template unit
    sets per instance; the replicas section has its defaults."""
    config = parse_config("http: {listen: '127.0.0.1:${MARKETSYNC_HTTP_PORT}'}\n", CHANNELS,
                          filename="replicas.yaml", base_dir=in_tmp,
                          environ={"MARKETSYNC_HTTP_PORT": "8472"})
    assert config.http.port == 8472
    assert config.replicas.lease_ttl == 20.0 and config.replicas.shared_rate_limits
    with pytest.raises(ConfigError, match=r"replicas.yaml:1: http.listen: .*MARKETSYNC_HTTP_PORT"):
        parse_config("http: {listen: '127.0.0.1:${MARKETSYNC_HTTP_PORT}'}\n", CHANNELS,
                     filename="replicas.yaml", base_dir=in_tmp, environ={})


# --- size limits ----------------------------------------------------------------------------


def test_a_config_past_the_size_limit_is_refused_naming_where(in_tmp):
    """A 29 MB YAML once took 1.7 GB; now one line names where the limit falls."""
    from marketsync.core.config import yamlsource

    filler = "# " + "x" * 98 + "\n"  # 100 bytes a line
    lines = yamlsource.MAX_CONFIG_BYTES // len(filler) + 10
    Path("config.yaml").write_text(ACCOUNTS + filler * lines)
    with pytest.raises(ConfigError) as caught:
        load_config("config.yaml", CHANNELS, environ=ENV)
    [line] = caught.value.errors
    cut = (ACCOUNTS + filler * lines).encode()[:yamlsource.MAX_CONFIG_BYTES]
    expected_line = cut.count(b"\n") + 1
    expected_column = len(cut) - cut.rfind(b"\n")
    assert line.startswith(f"config.yaml:{expected_line}:{expected_column}: the configuration "
                           "goes on past 1024 KiB")
    Path("config.yaml").write_text(ACCOUNTS + filler * 100)  # 10 KB of comments is fine
    assert load_config("config.yaml", CHANNELS, environ=ENV).accounts["eu"]


def test_a_file_reference_reads_at_most_the_limit(in_tmp):
    """``${file:/dev/zero}`` was a MemoryError; a big file is named, not read whole."""
    from marketsync.core.config import parsers

    text = ACCOUNTS.replace("${file:secrets/refresh}", "${file:/dev/zero}")
    assert errors(text) == [
        "config.yaml:7: accounts.eu.credentials.refresh_token: secret file /dev/zero is "
        "larger than 64 KiB, the most a reference reads; is it the right file?"]
    (in_tmp / "secrets" / "refresh").write_text("y" * (parsers.MAX_SECRET_BYTES + 1))
    [error] = errors(ACCOUNTS)
    assert "secret file" in error and "larger than 64 KiB" in error
    (in_tmp / "secrets" / "refresh").write_text("y" * parsers.MAX_SECRET_BYTES)
    assert errors(ACCOUNTS) == []
