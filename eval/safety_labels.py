"""Our hand labels for real messages the crisis screen flagged, and the words that set one aside.

`eval/data/safety_real_labels.jsonl` holds one object per reviewed message:
`{"id", "source", "label": "crisis"|"not_crisis"|"ambiguous", "category", "note"}`. How we
decided is in `eval/data/README.md`. Ids are those of `eval.real_messages` (texts are not
stored: they stay in the shared sets, under their own licences).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from eval.errors import EvalError

LABELS_PATH = Path(__file__).resolve().parent / "data" / "safety_real_labels.jsonl"
VERDICTS = ("crisis", "not_crisis", "ambiguous")

# Unread real messages with these words are never taught to the classifier as ordinary.
CRISIS_WORDS = re.compile(
    r"suicid|kill(?:ing)?\s+(?:my|your|him|her|them)sel|self[- ]?harm|\bcut(?:ting)?\s+myself"
    r"|\b(?:want(?:ed)?\s+to|wanna|gonna)\s+die\b|end(?:ing)?\s+(?:it\s+all|my\s+life)|overdos"
    r"|hurt(?:ing)?\s+myself|\babus|\brap(?:e|ed|ing)\b|molest|assault|beat(?:s|ing)?\s+me\b"
    r"|\bhits?\s+me\b|no\s+reason\s+to\s+live|better\s+off\s+dead|don'?t\s+want\s+to\s+(?:live|be\s+here)"
    r"|kill\s+(?:him|her|them|someone|everyone|you)\b|\bslit\b|\bhang\s+myself",
    re.I,
)


class LabelFileError(EvalError, ValueError):
    """The labels file has a malformed line."""


@dataclass(frozen=True)
class Verdict:
    id: str
    label: str
    category: str
    note: str


def load_labels(path: Path = LABELS_PATH) -> dict[str, Verdict]:
    """Read the labels, keyed by message id (an absent file means none yet)."""
    if not path.is_file():
        return {}
    verdicts: dict[str, Verdict] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            verdict = Verdict(row["id"], row["label"], row.get("category", "none"), row["note"])
        except (json.JSONDecodeError, KeyError) as exc:
            raise LabelFileError(f"{path}:{number}: {exc!r}; fix or remove the line.") from exc
        if verdict.label not in VERDICTS:
            raise LabelFileError(f"{path}:{number}: label must be one of {VERDICTS}.")
        verdicts[verdict.id] = verdict
    return verdicts
