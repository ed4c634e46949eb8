"""The one exception base of the strategies package."""


class StrategyError(Exception):
    """Base class of every error the strategies package raises deliberately."""
