"""Model and endpoint settings, saved to the TOML config file (`agent.settings.config_file()`).

Only the keys shown here are rewritten; the rest of the file (e.g. the `[keys]` table) is kept.
A blank field removes its key, so the default applies again. Changes apply on the next start.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from tui.keys import ConfigError, read_config, write_config

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from agent.settings import Settings

FIELDS = (
    ("model", "Model", "registry name (qwen2.5-coder-1.5b-instruct), a .gguf path, or endpoint id"),
    ("base_url", "Endpoint", "OpenAI-compatible URL, blank for the embedded model"),
    ("api_key", "API key", "for the endpoint (stored in the config file, private)"),
    ("max_tokens", "Max reply tokens", "16 to 4096"),
)


def current_values(settings: Settings) -> dict[str, str]:
    """Return the settings shown on the screen as strings."""
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    return {
        "model": settings.model,
        "base_url": settings.base_url or "",
        "api_key": key,
        "max_tokens": str(settings.max_tokens),
    }


def merged_config(config: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """Return the config with the screen's values set (blank values removed) and validated."""
    from agent.settings import Settings

    updated = {k: v for k, v in config.items() if k not in values}
    for name, text in values.items():
        if text.strip():
            updated[name] = int(text) if name == "max_tokens" and text.strip().isdigit() else text
    scalars = {k: v for k, v in updated.items() if not isinstance(v, dict)}
    Settings(**scalars)  # raises ValidationError with what is wrong
    return updated


class SettingsScreen(ModalScreen[bool]):
    """Edit the model and endpoint; Save writes the config file."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, settings: Settings, path: Path) -> None:
        super().__init__(classes="dialog-screen")
        self.settings = settings
        self.path = path

    def compose(self) -> ComposeResult:
        values = current_values(self.settings)
        with Vertical(classes="dialog", id="settings-dialog"):
            yield Label("Model and endpoint", classes="dialog-title")
            for name, title, hint in FIELDS:
                yield Label(title, classes="field-title")
                yield Input(
                    values[name], placeholder=hint, id=f"set-{name}", password=name == "api_key"
                )
            yield Label(f"Saved to {self.path}; applies on the next start.", classes="dialog-help")
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def values(self) -> dict[str, str]:
        return {name: self.query_one(f"#set-{name}", Input).value for name, _, _ in FIELDS}

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        try:
            config = merged_config(read_config(self.path), self.values())
            write_config(self.path, config)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            self.notify(f"Not saved: {problems}", severity="error")
            return
        except ConfigError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"Saved to {self.path}. Restart `empathos chat` to use the new model.")
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_close(self) -> None:
        self.dismiss(False)
