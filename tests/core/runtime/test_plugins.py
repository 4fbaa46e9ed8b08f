"""Plugin loading, channel routing and isolation (core/runtime/plugins.py)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from marketsync.core.runtime import plugins as plugin_loading
from marketsync.core import hookimpl
from marketsync.core.errors import ChannelNotSupported
from marketsync.core.types import ChannelInfo, Cursor, Integration, Page


def _integration(channel: str) -> Integration:
    return Integration(alias=f"{channel}-1", channel=channel, account="a", marketplace="X",
                       settings={}, credentials={})


class AsyncChannel:
    """A channel plugin written with async hooks, as most real ones are."""

    def __init__(self, name: str):
        self.name = name
        self.calls: list[str] = []

    @hookimpl
    def channel_info(self) -> ChannelInfo:
        return ChannelInfo(name=self.name, title=self.name.title())

    @hookimpl
    async def import_orders(self, integration: Integration, cursor: Cursor) -> Page:
        self.calls.append(integration.alias)
        return Page(items=(f"{self.name}-order",), done=True)


async def test_channel_hooks_reach_only_the_channels_own_plugin():
    """Two async channel plugins: each integration's call reaches its own plugin only."""
    one, two = AsyncChannel("one"), AsyncChannel("two")
    loaded = plugin_loading.build(builtin=(), extra=[one, two], load_entry_points=False)
    page = await loaded.channel("two").call(
        "import_orders", integration=_integration("two"), cursor=Cursor())
    assert page.items == ("two-order",)
    assert two.calls == ["two-1"] and one.calls == []


async def test_unimplemented_hook_is_reported_not_silently_none():
    """Calling a hook the channel does not implement raises ChannelNotSupported."""
    loaded = plugin_loading.build(builtin=(), extra=[AsyncChannel("one")], load_entry_points=False)
    hooks = loaded.channel("one")
    assert hooks.supports("import_orders") and not hooks.supports("push_stock")
    with pytest.raises(ChannelNotSupported, match="push_stock"):
        await hooks.call("push_stock", integration=_integration("one"), updates=[])


def test_two_plugins_claiming_one_channel_refuses_the_second():
    """The second plugin for a channel is unregistered and recorded as a failure."""
    first, second = AsyncChannel("dup"), AsyncChannel("dup")
    loaded = plugin_loading.build(builtin=(), extra=[first, second], load_entry_points=False)
    assert loaded.channels["dup"].plugin is first
    assert any("already served" in f.reason for f in loaded.failures)


def test_builtin_plugin_that_fails_to_import_costs_only_itself():
    """An import error is recorded with the reason; the other plugins still load."""
    loaded = plugin_loading.build(builtin=("marketsync.plugins.manual", "no_such_plugin_xyz"),
                                  load_entry_points=False)
    assert "manual" in loaded.channels
    assert [f.name for f in loaded.failures] == ["no_such_plugin_xyz"]
    assert "import failed" in loaded.failures[0].reason


def test_async_def_on_a_sync_only_hook_is_refused():
    """channel_info must be synchronous: an async one is refused with the hook's name."""

    class Bad:
        @hookimpl
        async def channel_info(self):  # pragma: no cover - never awaited
            return None

    loaded = plugin_loading.build(builtin=(), extra=[Bad()], load_entry_points=False)
    assert loaded.channels == {}
    assert "channel_info must be a plain function" in loaded.failures[0].reason


def test_misspelt_hook_fails_loudly():
    """A hookimpl whose name matches no hookspec is an error (pm.check_pending)."""

    class Typo:
        @hookimpl
        def import_order(self):  # missing "s"
            return None

    with pytest.raises(Exception, match="import_order"):
        plugin_loading.build(builtin=(), extra=[Typo()], load_entry_points=False)


def test_broadcast_hook_exception_does_not_spread(caplog):
    """A broadcast hook that raises is logged; the other plugins are still called."""
    seen = []

    class Raises:
        @hookimpl
        def integration_state_changed(self, integration, old, new, reason):
            raise RuntimeError("boom")

    class Records:
        @hookimpl
        def integration_state_changed(self, integration, old, new, reason):
            seen.append((old, new))

    loaded = plugin_loading.build(builtin=(), extra=[Raises(), Records()], load_entry_points=False)
    loaded.broadcast("integration_state_changed", integration=_integration("x"),
                     old="LIVE", new="ERROR", reason="r")
    assert seen == [("LIVE", "ERROR")]
    assert "boom" in caplog.text


@pytest.fixture
def third_party_distribution(tmp_path, monkeypatch):
    """A third-party plugin installed the way pip would: a module plus a dist-info whose
    entry_points.txt declares it in the ``marketsync`` group."""
    (tmp_path / "acme_marketsync.py").write_text(textwrap.dedent('''
        from marketsync.core import hookimpl
        from marketsync.core.types import ChannelInfo, Page, ChannelOrder

        @hookimpl
        def channel_info():
            return ChannelInfo(name="acme", title="ACME Marketplace")

        @hookimpl
        async def import_orders(integration, cursor):
            return Page(items=("acme:" + integration.alias,), done=True)
    '''))
    dist = tmp_path / "acme_marketsync-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-marketsync\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[marketsync]\nacme = acme_marketsync\n")
    broken = tmp_path / "broken_marketsync-0.1.dist-info"
    broken.mkdir()
    (broken / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-marketsync\nVersion: 0.1\n")
    (broken / "entry_points.txt").write_text("[marketsync]\nbroken = broken_marketsync_missing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(plugin_loading.DISABLE_AUTOLOAD_ENV, raising=False)
    yield
    sys.modules.pop("acme_marketsync", None)


async def test_third_party_plugin_is_found_through_the_entry_point_group(third_party_distribution):
    """An installed distribution's entry point is loaded, its channel routed and its hook run;
    a broken distribution beside it is recorded with its name and version."""
    loaded = plugin_loading.build(builtin=("marketsync.plugins.manual",))
    assert {"acme", "manual"} <= set(loaded.channels)
    page = await loaded.channel("acme").call(
        "import_orders", integration=_integration("acme"), cursor=Cursor())
    assert page.items == ("acme:acme-1",)
    broken = [f for f in loaded.failures if f.name == "broken"]
    assert broken and "broken-marketsync 0.1" in broken[0].reason


def test_autoload_can_be_switched_off(third_party_distribution, monkeypatch):
    """MARKETSYNC_DISABLE_PLUGIN_AUTOLOAD=1 loads the built-ins only."""
    monkeypatch.setenv(plugin_loading.DISABLE_AUTOLOAD_ENV, "1")
    loaded = plugin_loading.build(builtin=("marketsync.plugins.manual",))
    assert set(loaded.channels) == {"manual"}


def test_disabled_plugins_are_not_loaded(third_party_distribution):
    """YAML plugins.disabled names an entry point that is then skipped."""
    loaded = plugin_loading.build(builtin=("marketsync.plugins.manual",), disabled=["acme"])
    assert "acme" not in loaded.channels


def test_a_channel_whose_plugin_failed_is_reported_by_channel_name():
    """The configuration keeps integrations of a failed channel; the reason is found by
    the channel's name (entry points and built-in modules are named after it)."""
    loaded = plugin_loading.build(builtin=("marketsync.plugins.manual", "marketsync.plugins.nosuch"),
                                  load_entry_points=False)
    assert "import failed" in loaded.unavailable()["nosuch"]
