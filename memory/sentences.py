"""A message split into sentences, each read on its own by the user model.

A message about five things ("I'm tired. Also, I forgot an appointment again. ...") embeds as
an average of all five, far from any trait's statements; its sentences one by one keep the one
that tells. `sentencex` (Wikimedia's rule-based segmenter, ~300 languages) does the splitting;
`clauses` splits a sentence further where it turns to another thing the person did (one regular
expression, `CLAUSE_BREAK`, hand-written: no library splits clauses without a parser).
"""

from __future__ import annotations

import re

from sentencex import segment

MIN_WORDS = 3  # shorter fragments ("Hello!", "Thanks.") say nothing about a person


def sentences(text: str, language: str = "en") -> list[str]:
    """The sentences of `text` with at least `MIN_WORDS` words; the whole text if none has."""
    kept = [part.strip() for part in segment(language, text) if len(part.split()) >= MIN_WORDS]
    return kept or [text]


CLAUSE_BREAK = re.compile(
    r";|,\s*(?:and|but|so)\s+|\s+(?:and|but)\s+(?=(?:I|I'm|my|we)\b)|\balso,?\s"
)
"""Where one sentence turns to another thing the person did: a semicolon, ", and/but/so",
"and/but" before "I", "I'm", "my" or "we", and "also"."""


def clauses(text: str, language: str = "en") -> list[str]:
    """The clauses of `text`'s sentences ("I'm anxious about the bill, and I lost my keys" ->
    two), each of at least `MIN_WORDS` words; the sentences if no clause has."""
    parts = sentences(text, language)
    kept = [clause.strip(" ,.") for part in parts for clause in CLAUSE_BREAK.split(part)
            if len(clause.split()) >= MIN_WORDS]  # fmt: skip
    return kept or parts
