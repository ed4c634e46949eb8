"""The one exception base of the evaluation and training scripts."""


class EvalError(Exception):
    """Base class of every error the eval package raises deliberately."""
