"""The one exception base of the memory package: `except MemoryLayerError` catches every error
the stores raise on purpose (bad input, unknown ids, unreadable data), never a bug."""


class MemoryLayerError(Exception):
    """Base class of every error the memory package raises deliberately."""


class JobPreempted(MemoryLayerError):
    """A background job gave way to a turn (its model call was aborted); it goes back on the
    queue as it was, with no attempt counted."""
