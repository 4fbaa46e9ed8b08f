"""A simulated Amazon SP-API, written from the official models (see docs/sandbox.md)."""

from .app import create_app
from .scenario import load_scenario
from .world import World

__all__ = ["World", "create_app", "load_scenario"]
