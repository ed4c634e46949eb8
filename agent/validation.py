"""Check a user's message before anything else touches it."""

from __future__ import annotations

import unicodedata

ALLOWED_CONTROLS = {"\n", "\t", "\r"}


def message_problem(text: str, max_chars: int) -> str | None:
    """Return what is wrong with a message (a sentence the user can act on), or None if fine."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Your message contains invalid Unicode (broken characters); please retype it."
    if not text.strip():
        return "Your message is empty; type what is on your mind."
    if len(text) > max_chars:
        return (
            f"Your message is {len(text)} characters long; the limit is {max_chars}. "
            "Please shorten it or split it into several messages."
        )
    bad = sorted({c for c in text if _is_control(c)})
    if bad:
        codes = ", ".join(f"U+{ord(c):04X}" for c in bad[:5])
        return f"Your message contains control characters ({codes}); please remove them."
    return None


def _is_control(char: str) -> bool:
    return char not in ALLOWED_CONTROLS and unicodedata.category(char) in {"Cc", "Cs"}
