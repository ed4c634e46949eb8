"""A message split into sentences, each read on its own by the user model.

A message about five things ("I'm tired. Also, I forgot an appointment again. ...") embeds as
an average of all five, far from any trait's statements; its sentences one by one keep the one
that tells. `sentencex` (Wikimedia's rule-based segmenter, ~300 languages) does the splitting.
"""

from __future__ import annotations

from sentencex import segment

MIN_WORDS = 3  # shorter fragments ("Hello!", "Thanks.") say nothing about a person


def sentences(text: str, language: str = "en") -> list[str]:
    """The sentences of `text` with at least `MIN_WORDS` words; the whole text if none has."""
    kept = [part.strip() for part in segment(language, text) if len(part.split()) >= MIN_WORDS]
    return kept or [text]
