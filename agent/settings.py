"""Run settings: defaults, then a TOML file, then `EMPATHOS_*` environment, then CLI flags.

The TOML file is `$EMPATHOS_CONFIG` if set, else `config.toml` in the platform's config dir
(e.g. `~/.config/empathos/config.toml`). Data lives under the platform's data dir unless
`data_dir` says otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from agent.variants import variant_named

APP_NAME = "empathos"
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct"


def config_file() -> Path:
    """Return the TOML settings file in use (it need not exist)."""
    explicit = os.environ.get("EMPATHOS_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    return platformdirs.user_config_path(APP_NAME) / "config.toml"


class Settings(BaseSettings):
    """Everything a run can be configured with."""

    model_config = SettingsConfigDict(env_prefix="EMPATHOS_", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: platformdirs.user_data_path(APP_NAME))
    cache_dir: Path = Field(default_factory=lambda: platformdirs.user_cache_path(APP_NAME))

    model: str = Field(
        default=DEFAULT_MODEL,
        description="A registry model name, a path to a .gguf file, or the endpoint's model id.",
    )
    base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint; unset means the embedded model."
    )
    api_key: SecretStr | None = None
    structured_method: Literal["function_calling", "json_schema"] = "function_calling"
    max_tokens: int = Field(default=200, ge=16, le=4096)
    analysis_max_tokens: int = Field(default=256, ge=32, le=4096)
    analysis: Literal["auto", "note", "full"] = Field(
        default="auto",
        description="The cause analysis before a reply: note (three words: the cause's sentence, "
        "the need, crisis yes/no; ~3 tokens), full (JSON with situation and thoughts; ~50 "
        "tokens), auto (note on the embedded model, full on an endpoint).",
    )
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    repeat_penalty: float = Field(
        default=1.0,
        ge=1.0,
        le=2.0,
        description="Embedded model: llama.cpp's repeat penalty (1.0 = off); see the README.",
    )
    presence_penalty: float = Field(
        default=0.0, ge=0.0, le=2.0, description="Embedded model: llama.cpp's presence penalty."
    )
    n_ctx: int = Field(default=4096, ge=512)
    n_threads: int = Field(
        default_factory=lambda: max(1, min(4, os.cpu_count() or 1)),
        ge=1,
        description="llama.cpp threads for prompt and generation (default: the cores, up to 4).",
    )
    seed: int = 7
    llm_trait_asking: bool = Field(
        default=True,
        description="Ask the chat model whether each message shows openness, conscientiousness "
        "or agreeableness, high or low (three one-token calls a message); memory worker, off "
        "the reply path.",
    )
    llm_trait_weighing: bool = Field(
        default=False,
        description="Also weigh each message by how much likelier the embedded model finds it "
        "written by someone high than low in openness and conscientiousness (four scorings a "
        "message). Off: on 40 held-out people it added nothing (README, user model, twelfth "
        "pass).",
    )
    llm_trait_rating: bool = Field(
        default=False,
        description="Also let the chat model rate the Big Five from the telling passages (five "
        "one-token calls every few turns). Off: on words-only re-readings it added nothing once "
        "the per-message answers were in (README, user model, sixth pass).",
    )
    request_timeout: float = Field(default=120.0, gt=0)

    chroma_url: str | None = Field(
        default=None, description="A Chroma server (http://host:port); unset: files in data_dir."
    )

    locale: str = Field(default="international", description="Crisis-resource locale.")
    max_message_chars: int = Field(default=4000, ge=100)
    history_turns: int = Field(default=6, ge=0, le=50)
    reply_check: bool = Field(
        default=True,
        description="Check each reply (JSON, loops, repeats, copied examples, stock openers, "
        "stance) and rewrite a broken one; off only to measure what it catches.",
    )
    analogy_judge: bool = Field(
        default=True,
        description="Ask the model whether an own experience below the similarity floor "
        "relates to the feelings someone struggles to understand (agent/analogy_judge.py); "
        "one short call, only then.",
    )
    variant: str = Field(
        default="full",
        description="Pipeline configuration: full, no-memory, no-traits, no-ebg, no-coe, "
        "single-call (see agent/variants.py).",
    )

    @field_validator("data_dir", "cache_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("variant", mode="after")
    @classmethod
    def _known_variant(cls, value: str) -> str:
        return variant_named(value).name

    @property
    def uses_endpoint(self) -> bool:
        return bool(self.base_url)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "empathos.db"

    @property
    def checkpoint_path(self) -> Path:
        return self.data_dir / "checkpoints.db"

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return (init_settings, env_settings, toml)


def load_settings(**overrides: Any) -> Settings:
    """Build settings, letting explicit (non-None) overrides such as CLI flags win."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
