"""The one exception base of the front ends (the CLI and the Textual app)."""


class FrontEndError(Exception):
    """Base class of every error the front ends raise deliberately."""
