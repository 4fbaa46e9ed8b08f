"""Exceptions a plugin raises, and the integration state each one leads to.

The host owns policy: a plugin only says *what* went wrong by the type it raises; the
core decides what happens (state change, backoff, retry, log once). Anything that is not
one of these types is treated as a plugin bug: logged with its traceback once, the job
backs off, the integration keeps its state.

=========================  ===================  ============================================
Raised                     Integration state    What the core does
=========================  ===================  ============================================
IntegrationAuthFailed      INCOMPLETE           stops the jobs; waits for connect/retry
IntegrationNotReady        RETRY                re-checks credentials with growing backoff
IntegrationError           ERROR                stops; needs a config change
Throttled                  unchanged            job backs off; governor already adapted
TransientError             unchanged            job backs off (timeouts, 5xx after retries)
CursorExpired              unchanged            restart from the last committed cursor
RecordRejected             unchanged            that record is quarantined; the page goes on
=========================  ===================  ============================================
"""

from __future__ import annotations


class MarketsyncError(Exception):
    """Base of every error the core understands."""


class ConfigError(MarketsyncError):
    """The configuration is invalid; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class IntegrationAuthFailed(MarketsyncError):
    """Credentials were refused (revoked consent, wrong client secret, bad refresh token)."""


class IntegrationNotReady(MarketsyncError):
    """The channel cannot be reached or is not ready yet; try the setup again later."""


class IntegrationError(MarketsyncError):
    """A permanent problem that needs a change by the user (e.g. account not in marketplace)."""


class TransientError(MarketsyncError):
    """A failure that should go away by itself: timeout, 5xx after the retries."""


class Throttled(TransientError):
    """The channel refused the call for its rate; ``retry_after`` seconds is a hint."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class CursorExpired(MarketsyncError):
    """A page token or cursor is no longer valid; start again from the stored cursor."""


class RecordRejected(MarketsyncError):
    """One record from the channel is malformed; it is quarantined with this reason."""

    def __init__(self, reason: str, *, record_id: str | None = None, raw: object = None):
        super().__init__(reason)
        self.reason = reason
        self.record_id = record_id
        self.raw = raw


class BadNotification(MarketsyncError, ValueError):
    """A queue message is not a notification the channel can read; it is dropped."""


class ChannelNotSupported(MarketsyncError):
    """No plugin implements this hook for this channel."""

    def __init__(self, channel: str, hook: str):
        super().__init__(f"channel {channel!r} does not implement {hook}")
        self.channel = channel
        self.hook = hook


def address_in_use(error: BaseException) -> OSError | None:
    """The "address already in use" inside ``error`` (a server's exception group), if any.

    Binding a port nests the OSError in trio's and hypercorn's exception groups; a command
    that finds it says so in one line instead of showing seventy lines of traceback.
    """
    import errno

    if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
        return error
    for inner in getattr(error, "exceptions", ()) or ():
        found = address_in_use(inner)
        if found is not None:
            return found
    cause = error.__cause__ or error.__context__
    return address_in_use(cause) if cause is not None and cause is not error else None
