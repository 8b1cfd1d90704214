"""bulletin: compose, send and answer e-bulletins."""

__version__ = "0.1.0"
