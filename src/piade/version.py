"""piade's version, in a module of its own so that any part of the package can read it without
importing the whole public API (``piade/__init__.py``)."""

__version__ = "0.1.0"
