"""docs/operations.md's systemd walkthrough, the shipped unit and production.yaml agree.

Followed by hand, the walkthrough once gave six errors; these tests replay what it does
on a scratch directory instead of /etc, and check the three files against each other.
"""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from marketsync.daemon import cli

ROOT = Path(__file__).resolve().parents[2]
UNIT = (ROOT / "config" / "marketsync.service").read_text()
PRODUCTION = ROOT / "config" / "production.yaml"
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()


def unit_values(key: str) -> list[str]:
    return re.findall(rf"^{key}=(.+)$", UNIT, flags=re.M)


def credentials_of_unit() -> dict[str, str]:
    return dict(value.split(":", 1) for value in unit_values("LoadCredential"))


def walkthrough() -> str:
    section = OPERATIONS.split("## Run it under systemd", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```sh\n(.*?)```", section, flags=re.S))


def test_the_yaml_refers_to_exactly_the_credentials_the_unit_loads():
    """Every ${credential:NAME} in production.yaml is a LoadCredential= of the unit, and
    the unit loads nothing the YAML does not use."""
    settings = re.sub(r"(^|\s)#.*$", "", PRODUCTION.read_text(), flags=re.M)  # no comments
    used = set(re.findall(r"\$\{credential:([^}]+)\}", settings))
    assert used and used == set(credentials_of_unit())


def test_the_walkthrough_creates_every_credential_and_installs_the_pair():
    """Each credential file the unit reads is written by a walkthrough line; the YAML and
    the unit are installed where the unit expects them."""
    steps = walkthrough()
    for name, path in credentials_of_unit().items():
        assert re.search(rf"tee {re.escape(path)}\b", steps), f"nothing writes {path}"
    config_path = dict(v.split("=", 1) for v in unit_values("Environment"))["MARKETSYNC_CONFIG"]
    assert f"config/production.yaml {config_path}" in steps
    assert "config/marketsync.service /etc/systemd/system/" in steps
    assert "check-config" in steps


def test_documentation_points_at_a_file_the_walkthrough_installs():
    """Documentation= names a real page: the walkthrough installs it there."""
    [documentation] = unit_values("Documentation")
    assert documentation.startswith("file://")
    target = documentation.removeprefix("file://")
    installed = re.search(rf"install -D -m 0644 (\S+) {re.escape(target)}", walkthrough())
    assert installed, f"nothing installs {target}"
    assert (ROOT / installed.group(1)).is_file()


def test_the_unit_waits_for_the_network_and_a_synchronised_clock():
    [after] = unit_values("After")
    assert {"network-online.target", "time-sync.target"} <= set(after.split())


def test_check_config_accepts_production_yaml_with_the_units_credentials(tmp_path,
                                                                         monkeypatch):
    """What the walkthrough's check-config step does, on a scratch /etc: OK, with the
    log format json the journal wants."""
    etc = tmp_path / "etc" / "marketsync"
    credentials = etc / "credentials"
    credentials.mkdir(parents=True)
    shutil.copy(PRODUCTION, etc / "marketsync.yaml")
    values = {"lwa-client-secret": "amzn1.oa2-cs.v1.0123abcd",
              "eu-refresh-token": "Atzr|walkthrough",
              "pii-key": base64.b64encode(bytes(range(32))).decode() + "\n",
              "http-token": "walkthrough-token\n"}
    assert set(values) == set(credentials_of_unit())
    for name, value in values.items():
        (credentials / name).write_text(value)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["check-config", str(etc / "marketsync.yaml")],
                                env={"CREDENTIALS_DIRECTORY": str(credentials),
                                     "STATE_DIRECTORY": str(tmp_path / "state")},
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "OK — 1 integration(s): amazon-de (amazon DE)" in result.output


def test_without_the_credentials_check_config_names_the_missing_one(tmp_path):
    """Forgetting CREDENTIALS_DIRECTORY is a clear error, not a traceback."""
    result = CliRunner().invoke(cli, ["check-config", str(PRODUCTION)],
                                env={"CREDENTIALS_DIRECTORY": None}, catch_exceptions=False)
    assert result.exit_code == 2
    assert "CREDENTIALS_DIRECTORY" in result.output


@pytest.mark.parametrize("phrase", ["applied at once", "without a restart"])
def test_sighup_is_documented_as_the_code_does_it(phrase):
    """SIGHUP restarts the integrations on the new file in the same process
    (core/cli/service.py run_service; tests/core/cli/test_service.py); the docs say so."""
    signals = OPERATIONS.split("`systemctl reload` (SIGHUP)", 1)[1].split("\n\n", 1)[0]
    assert phrase in signals
    assert "next restart" not in signals
