"""The states an integration can be in, and which of them fix themselves.

Home Assistant's config-entry pattern: an enum whose members carry a ``recoverable``
flag, so that the status page can say whether the seller has to act.
"""

from __future__ import annotations

import enum


class IntegrationState(str, enum.Enum):
    recoverable: bool
    description: str

    def __new__(cls, value: str, recoverable: bool, description: str):
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.recoverable = recoverable
        obj.description = description
        return obj

    CONNECTING = ("CONNECTING", True, "checking credentials")
    LIVE = ("LIVE", True, "running its jobs")
    RETRY = ("RETRY", True, "channel not reachable; checking again with backoff")
    INCOMPLETE = ("INCOMPLETE", False, "needs authorisation: run `marketsync connect` or Retry")
    ERROR = ("ERROR", False, "stopped; the reason says what to change")
    DISABLED = ("DISABLED", False, "switched off in the configuration")
    STOPPING = ("STOPPING", True, "the daemon is shutting down")

    def __str__(self) -> str:
        return self.value
