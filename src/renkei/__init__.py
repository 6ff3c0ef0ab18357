"""renkei (連携): pseudonymize on the sending side, accumulate and analyse on the hub."""

__version__ = "0.1.0"
