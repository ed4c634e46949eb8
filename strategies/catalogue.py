"""The support catalogue as validated data: strategies, lenses, exemplars and policy weights.

Exceptions: `CatalogueError` — a catalogue or policy file that does not validate (a bug in the
shipped data, or a user override file; the message names the file and the field).
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from strategies.errors import StrategyError

Stage = Literal["exploration", "comforting", "action"]
Weights = dict[str, float]


class CatalogueError(StrategyError):
    """The catalogue or the policy data is invalid."""


class Strategy(BaseModel):
    name: str
    stage: Stage
    definition: str
    exemplars: list[str] = Field(min_length=1)
    requires_memory: bool = False


class Lens(BaseModel):
    name: str
    title: str
    focus: str
    reply_note: str


class Catalogue(BaseModel):
    strategy: list[Strategy]
    lens: list[Lens]

    def strategy_named(self, name: str) -> Strategy:
        return next(s for s in self.strategy if s.name == name)

    def lens_named(self, name: str) -> Lens:
        return next(lens for lens in self.lens if lens.name == name)

    @property
    def names(self) -> set[str]:
        return {s.name for s in self.strategy} | {lens.name for lens in self.lens}


class StagePolicy(BaseModel):
    first_turn: Weights
    later_turn: Weights
    high_intensity: Weights
    positive_valence: Weights


class PolicyWeights(BaseModel):
    need: dict[str, Weights]
    need_lens: dict[str, Weights]
    emotion_lens: dict[str, Weights]
    stage: StagePolicy
    analogy_bonus: float
    analogy_per_relevance: float = 0.0
    guessed_need: float = Field(
        default=1.0, ge=0.0, le=1.0,
        description="How much the analysis's need counts when the message did not say it.",
    )  # fmt: skip
    traits: dict[str, Weights]

    def check_names(self, known: set[str]) -> PolicyWeights:
        """Raise if a weight names a strategy or lens the catalogue does not have."""
        tables = [*self.need.values(), *self.need_lens.values(), *self.emotion_lens.values()]
        tables += [*self.traits.values(), *self.stage.model_dump().values()]
        unknown = {name for table in tables for name in table} - known
        if unknown:
            raise CatalogueError(f"policy.toml names unknown strategies/lenses: {sorted(unknown)}")
        return self


class _Bundle(BaseModel):
    catalogue: Catalogue
    policy: PolicyWeights

    @model_validator(mode="after")
    def _names_agree(self) -> _Bundle:
        self.policy.check_names(self.catalogue.names)
        return self


def _read(name: str) -> dict[str, object]:
    text = resources.files("strategies").joinpath(name).read_text(encoding="utf-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"strategies/{name} is not valid TOML: {exc}") from exc


@cache
def _bundle() -> _Bundle:
    try:
        return _Bundle(catalogue=_read("catalogue.toml"), policy=_read("policy.toml"))  # type: ignore[arg-type]
    except ValidationError as exc:
        raise CatalogueError(f"The strategy catalogue does not validate: {exc}") from exc


def load_catalogue() -> Catalogue:
    """Return the validated catalogue (loaded once)."""
    return _bundle().catalogue


def load_policy() -> PolicyWeights:
    """Return the validated policy weights (loaded once)."""
    return _bundle().policy
