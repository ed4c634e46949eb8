"""The one exception base of the evaluation and training scripts."""


class EvalError(Exception):
    """Base class of every error the eval package raises deliberately."""


class JudgeError(EvalError):
    """The judge's model cannot be built or run, or gives no valid verdict."""


class NoVerdictError(JudgeError):
    """The judge's model answered, but twice with no valid verdict."""
