"""The app's actions with their default keys, and the TOML config file they can be rebound in.

A `[keys]` table in the config file maps an action name to a key (`why = "f12"`); the app turns
it into a Textual keymap (binding id -> key). `ACTIONS` are the chat's, `MEMORY_ACTIONS` the
memory screen's (`memory_edit = "f6"`); both can be rebound. The same file holds the model
settings, which the settings screen rewrites with tomlkit (keeping the user's comments).

Exceptions: `ConfigError` (base) > `ConfigReadError` — the file is not valid TOML;
`ConfigWriteError` — the file could not be written.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit

from tui.errors import FrontEndError


class ConfigError(FrontEndError):
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
    Action(
        "thumbs_down",
        "ctrl+b",
        "Not helpful",
        "Not helpful",
        "Say the last reply missed (thumbs down)",
    ),
    Action("copy_reply", "f8", "Copy", "Copy reply", "Copy the last reply to the clipboard"),
    Action("settings", "f9", "Settings", "Settings", "Model and endpoint settings"),
    Action(
        "rename_session",
        "ctrl+r",
        "Rename",
        "Rename session",
        "Give this conversation a title",
        show=False,
    ),
    Action("switch_user", "f12", "User", "Switch user", "Talk as another person", show=False),
    Action("cancel", "escape", "Cancel", "Cancel reply", "Stop the reply being written"),
    Action("memory", "f5", "Memory", "Memory", "Browse, edit or forget what empathos remembers"),
)
MEMORY_ACTIONS: tuple[Action, ...] = (
    Action(
        "memory_edit",
        "e",
        "Edit",
        "Edit memory or trait",
        "Correct the highlighted memory, or set the highlighted trait (0 to 1)",
    ),
    Action(
        "memory_forget",
        "d,delete",
        "Forget",
        "Forget memory",
        "Forget the highlighted memory (asks first)",
    ),
    Action(
        "memory_filter",
        "slash",
        "Filter",
        "Filter memories",
        "Filter memories by their words; Enter searches by meaning",
    ),
    Action("trait_unset", "u", "Unset", "Unset trait", "Hand a trait you set back to inference"),
    Action("memory_list", "m", "Memories", "Show memories", "Show what empathos remembers"),
    Action("memory_traits", "t", "Traits", "Show traits", "Show what empathos infers about you"),
    Action(
        "forget_me",
        "ctrl+x",
        "Forget me",
        "Forget me",
        "Remove everything about you: conversations, memories, traits (asks first)",
    ),
)
"""The memory screen's own actions: on its footer and in the palette while it is open."""
ACTION_NAMES = frozenset(action.name for action in ACTIONS + MEMORY_ACTIONS)


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
        return {}, ['[keys] must be a table of action = "key" pairs.']
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


def dump_toml(data: dict[str, Any], original: str = "") -> str:
    """Render `data` as TOML, keeping the comments and layout of `original` where keys remain."""
    document = tomlkit.parse(original) if original else tomlkit.document()
    for key in [k for k in document if k not in data]:
        del document[key]
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            table = document[key]
            for inner in [k for k in table if k not in value]:
                del table[inner]
            table.update(value)
        elif document.get(key) != value:
            document[key] = value
    return tomlkit.dumps(document)


def write_config(path: Path, data: dict[str, Any]) -> None:
    """Write the config privately (it may hold an API key), replacing the file atomically."""
    try:
        original = path.read_text(encoding="utf-8") if path.exists() else ""
        text = dump_toml(data, original)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigWriteError(f"Could not write {path}: {exc}.") from exc
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
