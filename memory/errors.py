"""The one exception base of the memory package: `except MemoryLayerError` catches every error
the stores raise on purpose (bad input, unknown ids, unreadable data), never a bug."""


class MemoryLayerError(Exception):
    """Base class of every error the memory package raises deliberately."""
