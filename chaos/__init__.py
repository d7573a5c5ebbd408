"""chaos: a fault-injection testbed for data connectors."""

__version__ = "0.1.0"
