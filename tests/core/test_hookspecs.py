"""The plugin contract documents itself: these tests fail when a hook is undocumented."""

from __future__ import annotations

import inspect

import pytest

from marketsync.core import hookspecs

ALL_HOOKS = hookspecs.CHANNEL_HOOKS + hookspecs.BROADCAST_HOOKS


def test_every_hookspec_is_listed_as_channel_or_broadcast():
    """A new hookspec must be classified, or routing would not know how to call it."""
    declared = {name for name, obj in vars(hookspecs).items()
                if callable(obj) and hasattr(obj, "marketsync_spec")}
    assert declared == set(ALL_HOOKS)


@pytest.mark.parametrize("name", ALL_HOOKS)
def test_hookspec_docstring_documents_arguments_return_and_caller(name):
    """Each hook says what it takes (:param:), what it gives back and who calls it."""
    spec = getattr(hookspecs, name)
    doc = inspect.getdoc(spec) or ""
    for arg in inspect.signature(spec).parameters:
        assert f":param {arg}:" in doc, f"{name}: no ':param {arg}:'"
    if inspect.signature(spec).return_annotation not in ("None", None):
        assert ":returns:" in doc, f"{name}: no ':returns:'"
    assert "Called by:" in doc, f"{name}: no 'Called by:'"


@pytest.mark.parametrize("name", hookspecs.CHANNEL_HOOKS)
def test_channel_hooks_return_one_answer(name):
    """Channel hooks are firstresult: exactly one plugin answers."""
    assert getattr(hookspecs, name).marketsync_spec["firstresult"] is True


@pytest.mark.parametrize("name", ALL_HOOKS)
def test_no_keyword_only_arguments(name):
    """pluggy ignores keyword-only parameters, so a spec must not have any."""
    params = inspect.signature(getattr(hookspecs, name)).parameters.values()
    assert all(p.kind is not p.KEYWORD_ONLY for p in params)
