"""The SDK client and its transports."""

from shipyard.client.client import Client

__all__ = ["Client"]
