"""Loading plugins and routing channel hooks to the one plugin that serves a channel.

Built-in plugins are listed in ``DEFAULT_PLUGINS``; third-party ones come from the
``marketsync`` entry-point group. We iterate the entry points ourselves rather than use
``pm.load_setuptools_entrypoints`` so that a plugin that fails to import costs only its
channel (recorded in ``Plugins.failures`` with the reason) and not the daemon.

Channel hooks are called through :class:`ChannelHooks`: one per channel, holding a cached
``subset_hook_caller`` per hook that leaves out every other channel plugin (pytest's
``FSHookProxy`` pattern). This is what makes ``async def`` implementations safe: pluggy
cannot tell "not my channel" from a coroutine, so we never ask the other plugins.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pluggy

from marketsync.core import PROJECT_NAME, hookspecs
from marketsync.core.errors import ChannelNotSupported
from marketsync.core.types import ChannelInfo

log = logging.getLogger(__name__)

#: Plugins that ship with marketsync, registered before third-party ones.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "marketsync.plugins.amazon",
    "marketsync.plugins.manual",
)

ENTRY_POINT_GROUP = PROJECT_NAME
#: Set to 1 to load only the built-in plugins (tests, debugging a broken install).
DISABLE_AUTOLOAD_ENV = "MARKETSYNC_DISABLE_PLUGIN_AUTOLOAD"

SYNC_ONLY_HOOKS = ("channel_info", "sandbox_app", *hookspecs.BROADCAST_HOOKS)


@dataclass(frozen=True, slots=True)
class PluginFailure:
    """A plugin that could not be loaded or registered, and why."""

    name: str
    reason: str


@dataclass
class Plugins:
    """The loaded plugins: the manager, each channel's hooks, and what failed."""

    pm: pluggy.PluginManager
    channels: dict[str, "ChannelHooks"] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)

    def channel(self, name: str) -> "ChannelHooks":
        try:
            return self.channels[name]
        except KeyError:
            raise ChannelNotSupported(name, "channel_info") from None

    def infos(self) -> dict[str, ChannelInfo]:
        return {name: hooks.info for name, hooks in self.channels.items()}

    def unavailable(self) -> dict[str, str]:
        """Plugins that failed to load, by name, with the reason; the configuration keeps
        their integrations (in ERROR with this reason) instead of rejecting the file."""
        reasons = {}
        for failure in self.failures:
            # entry points are named after their channel; built-ins after their module
            reasons[failure.name.rsplit(".", 1)[-1]] = failure.reason
            reasons[failure.name] = failure.reason
        return reasons

    def broadcast(self, hook: str, **kwargs: Any) -> None:
        """Call a broadcast hook on every plugin; one plugin's exception never spreads."""
        caller = getattr(self.pm.hook, hook)
        for impl in caller.get_hookimpls():
            try:
                impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
            except Exception:
                log.exception("plugin %s failed in %s", impl.plugin_name, hook)


class ChannelHooks:
    """The channel hooks of one channel, routed to its plugin alone.

    Each method awaits the answer when the implementation is ``async def`` and raises
    :class:`ChannelNotSupported` when the plugin does not implement the hook, so the
    scheduler can create jobs only for what a channel supports (:meth:`supports`).
    """

    def __init__(self, pm: pluggy.PluginManager, plugin: object, info: ChannelInfo,
                 others: Sequence[object]):
        self.pm = pm
        self.plugin = plugin
        self.info = info
        self.name = info.name
        self._callers = {
            hook: pm.subset_hook_caller(hook, remove_plugins=others)
            for hook in hookspecs.CHANNEL_HOOKS
        }
        implemented = {caller.name for caller in (pm.get_hookcallers(plugin) or ())}
        self.implemented = frozenset(implemented & set(hookspecs.CHANNEL_HOOKS))

    def supports(self, hook: str) -> bool:
        return hook in self.implemented

    async def call(self, hook: str, **kwargs: Any) -> Any:
        """Call channel hook ``hook`` on this channel's plugin and await its answer."""
        if hook not in self.implemented:
            raise ChannelNotSupported(self.name, hook)
        if hook in hookspecs.ACCOUNT_SCOPED_HOOKS and "integrations" not in kwargs \
                and "integration" in kwargs:
            # a per-integration call of a hook that can serve a whole account
            kwargs["integrations"] = (kwargs["integration"],)
        result = self._callers[hook](**kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    def call_sync(self, hook: str, **kwargs: Any) -> Any:
        if hook not in self.implemented:
            raise ChannelNotSupported(self.name, hook)
        return self._callers[hook](**kwargs)

    def __repr__(self) -> str:
        return f"<ChannelHooks {self.name}: {', '.join(sorted(self.implemented))}>"


def _plugin_name(plugin: object) -> str:
    """Modules by their name; objects by class and identity, so two instances can coexist."""
    return getattr(plugin, "__name__", None) or f"{type(plugin).__name__}@{id(plugin):x}"


def build(
    *,
    builtin: Iterable[str] = DEFAULT_PLUGINS,
    extra: Iterable[object] = (),
    disabled: Iterable[str] = (),
    load_entry_points: bool | None = None,
) -> Plugins:
    """Create the plugin manager, register plugins and discover channels.

    :param builtin: module names of built-in plugins.
    :param extra: plugin objects to register as well (tests, embedding).
    :param disabled: plugin or entry-point names not to load (YAML ``plugins.disabled``).
    :param load_entry_points: default: yes, unless ``MARKETSYNC_DISABLE_PLUGIN_AUTOLOAD=1``.
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    plugins = Plugins(pm=pm)
    disabled = set(disabled)

    def register(obj: object, name: str) -> None:
        if name in disabled:
            return
        try:
            _check_sync_hooks(obj, name)
            pm.register(obj, name=name)
        except Exception as exc:  # a broken plugin costs its channel, not the daemon
            log.debug("plugin %s not loaded: %s", name, exc)
            plugins.failures.append(PluginFailure(name, str(exc)))

    for module_name in builtin:
        if module_name in disabled:
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            log.debug("built-in plugin %s failed to import: %s", module_name, exc)
            plugins.failures.append(PluginFailure(module_name, f"import failed: {exc}"))
            continue
        register(module, module_name)

    if load_entry_points is None:
        load_entry_points = os.environ.get(DISABLE_AUTOLOAD_ENV, "") not in ("1", "true", "yes")
    if load_entry_points:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in disabled or ep.value in disabled:
                continue
            if pm.has_plugin(ep.value) or ep.value in builtin:
                continue  # our own built-ins are also declared as entry points
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "unknown distribution"
            try:
                obj = ep.load()
            except Exception as exc:
                log.debug("plugin %s (%s) failed to import: %s", ep.name, dist, exc)
                plugins.failures.append(PluginFailure(ep.name, f"import failed ({dist}): {exc}"))
                continue
            register(obj, ep.value)

    for obj in extra:
        register(obj, _plugin_name(obj))

    pm.check_pending()
    _discover_channels(plugins)
    return plugins


def _check_sync_hooks(obj: object, name: str) -> None:
    for hook in SYNC_ONLY_HOOKS:
        impl = getattr(obj, hook, None)
        if impl is not None and inspect.iscoroutinefunction(impl):
            raise TypeError(f"plugin {name}: hook {hook} must be a plain function, not async def")


def _check_scopes(info: ChannelInfo) -> None:
    """An account-scoped job needs a hook that takes ``integrations`` and records that
    name their marketplace, or the core could not route what it returns."""
    for job in info.jobs:
        if job.scope == "integration":
            continue
        if job.scope != "account":
            raise TypeError(f"job {job.kind!r}: scope {job.scope!r} is neither "
                            "'integration' nor 'account'")
        if job.kind not in hookspecs.ACCOUNT_SCOPED_HOOKS:
            raise TypeError(f"job {job.kind!r} cannot be account-scoped (only: "
                            f"{', '.join(hookspecs.ACCOUNT_SCOPED_HOOKS)})")


def _discover_channels(plugins: Plugins) -> None:
    pm = plugins.pm
    owners: dict[str, object] = {}
    infos: dict[int, ChannelInfo] = {}
    for impl in pm.hook.channel_info.get_hookimpls():
        try:
            info = impl.function()
            if not isinstance(info, ChannelInfo):
                raise TypeError(f"channel_info returned {type(info).__name__}, not ChannelInfo")
            _check_scopes(info)
        except Exception as exc:
            log.error("plugin %s: channel_info failed: %s", impl.plugin_name, exc)
            plugins.failures.append(PluginFailure(impl.plugin_name, f"channel_info failed: {exc}"))
            continue
        if info.name in owners:
            first = pm.get_name(owners[info.name])
            reason = f"channel {info.name!r} is already served by plugin {first}"
            log.error("plugin %s refused: %s", impl.plugin_name, reason)
            plugins.failures.append(PluginFailure(impl.plugin_name, reason))
            pm.unregister(impl.plugin)
            continue
        owners[info.name] = impl.plugin
        infos[id(impl.plugin)] = info
    channel_plugins = list(owners.values())
    for name, plugin in owners.items():
        others = [p for p in channel_plugins if p is not plugin]
        plugins.channels[name] = ChannelHooks(pm, plugin, infos[id(plugin)], others)
