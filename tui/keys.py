"""The app's actions with their default keys, and the TOML config file they can be rebound in.

A `[keys]` table in the config file maps an action name to a key (`why = "f12"`); the app turns
it into a Textual keymap (binding id -> key). The same file holds the model settings, which the
settings screen rewrites with the small TOML writer below (no `tomli-w` in the environment).

Exceptions: `ConfigError` (base) > `ConfigReadError` — the file is not valid TOML;
`ConfigWriteError` — the file could not be written.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """Base class for config file errors."""


class ConfigReadError(ConfigError):
    """The config file exists but is not valid TOML."""


class ConfigWriteError(ConfigError):
    """The config file could not be written."""


@dataclass(frozen=True)
class Action:
    """One user-facing action: its name (binding id), default key, footer label, palette text."""

    name: str
    key: str
    label: str
    title: str
    help: str
    show: bool = True


ACTIONS: tuple[Action, ...] = (
    Action("why", "f2", "Why", "Why this reply", "Show or hide the reasons behind the reply"),
    Action("sessions", "f3", "Sessions", "Sessions", "List, switch, start or rename conversations"),
    Action("search", "f4", "Search", "Search", "Search past conversations (text or meaning)"),
    Action("new_session", "ctrl+n", "New", "New session", "Start a new conversation"),
    Action("thumbs_up", "ctrl+g", "Helpful", "Helpful", "Say the last reply helped (thumbs up)"),
    Action("thumbs_down", "ctrl+b", "Not helpful", "Not helpful",
           "Say the last reply missed (thumbs down)"),
    Action("copy_reply", "f8", "Copy", "Copy reply", "Copy the last reply to the clipboard"),
    Action("settings", "f9", "Settings", "Settings", "Model and endpoint settings"),
    Action("rename_session", "ctrl+r", "Rename", "Rename session",
           "Give this conversation a title", show=False),
    Action("switch_user", "f12", "User", "Switch user", "Talk as another person", show=False),
    Action("cancel", "escape", "Cancel", "Cancel reply", "Stop the reply being written"),
    # EXTENSION POINT (memory screen): add Action("memory", "f5", "Memory", "Memory", "Browse,
    # edit or forget what empathos remembers") here and `action_memory` in ChatActions; the
    # binding, the footer, the [keys] table and the command palette then pick it up.
)
ACTION_NAMES = frozenset(action.name for action in ACTIONS)


def read_config(path: Path) -> dict[str, Any]:
    """Return the config file's tables, or an empty dict if the file does not exist."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigReadError(f"{path} is not valid TOML ({exc}): fix or delete it.") from exc


def keymap_from(config: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Return the keymap from the `[keys]` table and a list of problems with its entries."""
    keys = config.get("keys", {})
    if not isinstance(keys, dict):
        return {}, ["[keys] must be a table of action = \"key\" pairs."]
    keymap: dict[str, str] = {}
    problems: list[str] = []
    for action, key in keys.items():
        if action not in ACTION_NAMES:
            problems.append(f"Unknown action {action!r} in [keys]; known: {sorted(ACTION_NAMES)}.")
        elif not isinstance(key, str) or not key.strip():
            problems.append(f"The key for {action!r} in [keys] must be a non-empty string.")
        else:
            keymap[action] = key.strip()
    return keymap, problems


def toml_value(value: Any) -> str:
    """Render one scalar as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    raise ConfigWriteError(f"Cannot write {value!r} to TOML: only strings, numbers and booleans.")


def toml_key(key: str) -> str:
    """Render a key bare when TOML allows it, else quoted."""
    bare = key.replace("_", "").replace("-", "").isalnum()
    return key if bare else toml_value(key)


def dump_toml(data: dict[str, Any]) -> str:
    """Render top-level scalars and one level of tables as TOML."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for name, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{toml_key(name)}]"]
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def write_config(path: Path, data: dict[str, Any]) -> None:
    """Write the config privately (it may hold an API key), replacing the file atomically."""
    text = dump_toml(data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".toml.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except OSError as exc:
        problem = f"Could not write {path}: {exc}. Check the folder's permissions."
        raise ConfigWriteError(problem) from exc
