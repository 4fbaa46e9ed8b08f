"""The `marketsync` command line (daemon.py): exit codes and what people read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from marketsync import __version__
from marketsync.daemon import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example.yaml"


@pytest.fixture
def example(tmp_path) -> Path:
    """The shipped example, copied with its secret files, on a database in tmp_path."""
    shutil.copytree(ROOT / "config" / "example-secrets", tmp_path / "example-secrets")
    text = EXAMPLE.read_text().replace("# state_dir: /var/lib/marketsync", f"state_dir: {tmp_path}")
    path = tmp_path / "marketsync.yaml"
    path.write_text(text)
    return path


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_version():
    """--version prints the package version."""
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_check_config_accepts_the_example():
    """The README's first command: the shipped example is valid."""
    result = run("check-config", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert "OK — 3 integration(s)" in result.output


def test_check_config_lists_every_error_and_exits_2(tmp_path):
    """Two mistakes, two lines with file:line: key, exit code 2."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("accounts:\n  eu:\n    channel: amazon\n    credentials:\n"
                   "      client_id: x\n      client_secret: ${NO_SUCH_VAR_X}\n"
                   "integrations:\n  - alias: de\n    account: eu\n    marketplace: XX\n"
                   "    histroy_days: 3\n")
    result = run("check-config", str(bad))
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith(str(bad))]
    assert any(":6: accounts.eu.credentials.client_secret:" in line for line in lines)
    assert any(":10: integrations[0].marketplace: 'XX'" in line for line in lines)
    assert any(":11: integrations[0].histroy_days:" in line for line in lines)
    assert "error(s) in" in result.output


def test_check_config_explain_lists_settings():
    """--explain documents every key with its default."""
    result = run("check-config", "--explain")
    assert result.exit_code == 0 and "history_days" in result.output


def test_db_upgrade_then_current_and_status(example):
    """db upgrade creates the schema; status reads it from another process's point of view."""
    upgraded = run("-c", str(example), "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    current = run("-c", str(example), "db", "current")
    assert current.exit_code == 0 and current.output.strip() not in ("", "empty")
    status = run("-c", str(example), "status")
    assert status.exit_code == 0
    assert "no integrations yet" in status.output  # the daemon has not run here


def test_unreachable_database_is_one_line_with_the_password_masked(example):
    """A PostgreSQL URL to a closed port: exit 3, the URL shown without its password."""
    text = example.read_text().replace(
        "# database: postgresql+psycopg://marketsync:${PGPASSWORD}@db.internal/marketsync",
        "database: postgresql+psycopg://marketsync:hunter2secret@127.0.0.1:1/marketsync")
    example.write_text(text)
    result = run("-c", str(example), "status")
    assert result.exit_code == 3
    assert "hunter2secret" not in result.output
    assert "127.0.0.1:1" in result.output and "***" in result.output


def test_retry_reports_the_new_state_and_fails_when_not_live(example):
    """Without a channel to talk to (example credentials), retry says why and exits 1."""
    run("-c", str(example), "db", "upgrade")
    text = example.read_text().replace("    channel: amazon\n    # endpoint: http://127.0.0.1:8471",
                                       "    channel: amazon\n    endpoint: http://127.0.0.1:1")
    example.write_text(text)
    result = run("-c", str(example), "retry", "amazon-de")
    assert result.exit_code == 1
    assert "\namazon-de: RETRY — " in "\n" + result.output


def test_plugins_lists_channels_and_hooks():
    """Both built-in channels with the hooks they implement."""
    result = run("plugins")
    assert result.exit_code == 0
    assert "amazon: Amazon" in result.output and "manual:" in result.output
    assert "import_orders" in result.output


def test_check_config_reports_a_broken_document_template_with_its_line(example):
    """A template that does not parse is a config error naming the template's line."""
    (example.parent / "invoice.html").write_text("<p>\n{{ order.number }\n</p>\n")
    text = example.read_text().replace(
        "    ioss_number: IM0123456789  # optional: EU import one-stop-shop number\n",
        "    ioss_number: IM0123456789  # optional: EU import one-stop-shop number\n"
        "    documents:\n      invoice_template: invoice.html\n", 1)
    example.write_text(text)
    result = run("check-config", str(example))
    assert result.exit_code == 2, result.output
    assert "invoice.html" in result.output and ":2" in result.output


def test_notifications_status_per_account(example, tmp_path):
    """An account with a queue is listed with what arrived; without one, a pointer."""
    assert "no account has a notifications section" in run(
        "-c", str(example), "notifications", "status").output
    (tmp_path / "aws").write_text("AKIDEXAMPLE")
    text = example.read_text().replace(
        '      refresh_token: "${file:example-secrets/eu-refresh-token}"\n',
        '      refresh_token: "${file:example-secrets/eu-refresh-token}"\n'
        "    notifications:\n"
        "      queue_url: https://sqs.eu-west-1.amazonaws.com/123456789012/q\n"
        "      access_key_id: ${file:aws}\n      secret_access_key: ${file:aws}\n", 1)
    example.write_text(text)
    assert run("-c", str(example), "check-config").exit_code == 0
    assert run("-c", str(example), "db", "upgrade").exit_code == 0
    shown = run("-c", str(example), "notifications", "status")
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines() == [
        "eu-main: https://sqs.eu-west-1.amazonaws.com/123456789012/q",
        "  received 0, last never, missed by notifications (found by polling) 0"]
    assert "AKIDEXAMPLE" not in shown.output


def _our_formatter():
    import logging

    return next(h.formatter for h in logging.getLogger().handlers
                if getattr(h, "_marketsync", False))


def test_log_format_json_in_the_yaml_is_honoured_and_the_option_wins(example):
    """log.format: json in the file switches to JSON lines; --log-format overrides it."""
    from marketsync.core.runtime.logs import HumanFormatter, JsonFormatter

    example.write_text(example.read_text().replace("  format: human ", "  format: json "))
    assert run("-c", str(example), "db", "upgrade").exit_code == 0
    assert isinstance(_our_formatter(), JsonFormatter)
    assert run("--log-format", "human", "-c", str(example), "db", "current").exit_code == 0
    assert isinstance(_our_formatter(), HumanFormatter)


@pytest.mark.parametrize("args", [
    ("check-config", "{file}"), ("check-config", "-c", "{file}"),
    ("-c", "{file}", "check-config"), ("check-config", "--config", "{file}")])
def test_check_config_takes_the_file_every_way(args):
    """As an argument, as -c after the command (the example's header) or as the global -c."""
    result = run(*(a.format(file=EXAMPLE) for a in args))
    assert result.exit_code == 0, result.output
    assert "OK — 3 integration(s)" in result.output


def test_a_postgresql_url_without_psycopg_is_one_line_from_check_config(example, monkeypatch):
    """Without the [postgres] extra, check-config says what to install, in one line."""
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    text = example.read_text().replace(f"state_dir: {example.parent}",
                                       f"state_dir: {example.parent}\n"
                                       "database: postgresql+psycopg://ms@127.0.0.1/ms")
    example.write_text(text)
    result = run("check-config", str(example))
    assert result.exit_code == 2
    [line] = [line for line in result.output.splitlines() if "psycopg" in line]
    assert line.startswith(f"{example}:") and "database:" in line
    assert "pip install 'marketsync[postgres]'" in line
    assert "Traceback" not in result.output


def _taken_port():
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def test_a_port_in_use_is_one_line_and_exit_2(example):
    """`run` with http.listen taken: one line naming the address, exit code 2."""
    import subprocess
    import sys

    sock, port = _taken_port()
    with sock:
        example.write_text(example.read_text().replace("listen: 127.0.0.1:8470",
                                                       f"listen: 127.0.0.1:{port}"))
        result = subprocess.run(
            [sys.executable, "-c", "from marketsync.daemon import cli; cli()", "-c",
             str(example), "run"], capture_output=True, text=True, timeout=120,
            env={**__import__("os").environ, "MARKETSYNC_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cannot listen on 127.0.0.1:{port} (http.listen): the address "
                      "is already in use — is another marketsync running?"]
    assert "Traceback" not in result.stderr and "ExceptionGroup" not in result.stderr


def test_sandbox_serve_on_a_port_in_use_is_one_line_and_exit_2():
    """`sandbox serve --port N` with N taken: one line, exit code 2."""
    sock, port = _taken_port()
    with sock:
        result = CliRunner().invoke(cli, ["sandbox", "serve", "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert f"error: cannot listen on 127.0.0.1:{port}: the address is already in use" \
        in result.output
    assert "Traceback" not in result.output


def test_a_plugin_that_fails_to_import_is_reported_once(tmp_path, example):
    """A broken third-party plugin: one line naming it, not three."""
    import os
    import subprocess
    import sys

    dist = tmp_path / "broken_marketsync-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-marketsync\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text("[marketsync]\nbroken = broken_marketsync_gone\n")
    env = {k: v for k, v in os.environ.items() if k != "MARKETSYNC_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", "from marketsync.daemon import cli; cli()", "check-config",
         str(example)], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    mentions = [line for line in (result.stdout + result.stderr).splitlines()
                if "broken_marketsync_gone" in line]
    assert len(mentions) == 1, mentions
    assert mentions[0].startswith("warning: plugin broken:")


def test_a_sync_that_did_nothing_says_why_and_exits_non_zero(example):
    """A timer unit or script running ``sync`` must see that nothing was imported: the
    integration cannot reach its channel, so the answer goes to stderr with exit 1."""
    run("-c", str(example), "db", "upgrade")
    text = example.read_text().replace("    channel: amazon\n    # endpoint: http://127.0.0.1:8471",
                                       "    channel: amazon\n    endpoint: http://127.0.0.1:1")
    example.write_text(text)
    result = CliRunner().invoke(
        cli, ["-c", str(example), "sync", "amazon-de", "import_orders", "--since", "3d"],
        catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("amazon-de is RETRY: ")
    assert not result.stdout
