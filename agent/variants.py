"""The configurations of one turn that evaluation compares, as data, not copies of the graph.

    full         memory, traits, cause analysis (EBG) and the strategy policy (CoE)
    no-memory    no long-term memories or traits are recalled, and none are written
    no-traits    memories, but the policy gets no inferred traits
    no-ebg       no cause analysis: the reply is written straight after the plan
    no-coe       no lens or strategy: the model replies after its analysis, unguided
    single-call  one plain streamed call (after the safety screen, which no variant drops)

`agent.graph.build(variant)` wires the nodes a variant needs; the nodes read the same variant
from the run context for what is data (memories, traits). Safety is never optional.

Errors: `UnknownVariantError` (a `ValueError`) names the variants there are.
"""

from __future__ import annotations

from pydantic import BaseModel

from agent.errors import AgentError


class UnknownVariantError(AgentError, ValueError):
    """No variant of that name."""


class Variant(BaseModel, frozen=True):
    """Which parts of the pipeline a turn runs."""

    name: str
    memory: bool = True
    traits: bool = True
    cause_analysis: bool = True
    strategy_policy: bool = True
    single_call: bool = False


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(name="full"),
        Variant(name="no-memory", memory=False, traits=False),
        Variant(name="no-traits", traits=False),
        Variant(name="no-ebg", cause_analysis=False),
        Variant(name="no-coe", strategy_policy=False),
        Variant(name="single-call", single_call=True, memory=False, traits=False,
                cause_analysis=False, strategy_policy=False),
    )
}  # fmt: skip
FULL = VARIANTS["full"]


def variant_named(name: str) -> Variant:
    """Return the variant called `name`, or say which exist."""
    try:
        return VARIANTS[name]
    except KeyError:
        known = ", ".join(VARIANTS)
        raise UnknownVariantError(f"No variant {name!r}; choose one of: {known}.") from None
