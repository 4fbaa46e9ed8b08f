"""A simulated eBay (Sell Inventory, Sell Fulfillment, Analytics, OAuth) for tests and demos.

Written from eBay's OpenAPI contracts in our own words (their licence does not allow
copying them here); ``contract.py`` records the fields, types and enums we rely on. The
simulator never imports the plugin's client code.
"""

from .app import create_app
from .scenario import SCENARIOS, load_scenario, parse_scenario
from .world import World

__all__ = ["SCENARIOS", "World", "create_app", "load_scenario", "parse_scenario"]
