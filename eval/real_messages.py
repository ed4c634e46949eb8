"""Messages real people wrote, from the shared research sets, for measuring the crisis screen.

    ESConv (seeker turns of the validation split) and GoEmotions (train and dev Reddit comments).

The sets live outside the repository (`../shared/data` beside the checkout, or the folder that
`EMPATHOS_SHARED_DATA` names) and are never shipped in the package. Each message gets a stable
id: the GoEmotions comment id, or `esconv:` and the first 12 hex digits of the SHA-1 of the text.
ESConv seeker turns repeat across next-strategy items, so they are deduplicated.

ESConv is split in two fixed halves by that hash: half "a" may be used to train and calibrate,
half "b" is only ever measured. GoEmotions keeps its own train / dev split.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from eval.errors import EvalError

REPO = Path(__file__).resolve().parent.parent


class RealDataMissingError(EvalError, FileNotFoundError):
    """A shared research set is not where it was looked for."""


@dataclass(frozen=True)
class Message:
    id: str
    source: str  # "esconv-a", "esconv-b", "goemotions-train", "goemotions-dev"
    text: str


def shared_data_dir() -> Path:
    """Return the folder holding `esconv/` and `goemotions/`."""
    path = Path(os.environ.get("EMPATHOS_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (path / "esconv").is_dir() or not (path / "goemotions").is_dir():
        raise RealDataMissingError(
            f"No esconv/ and goemotions/ under {path}. Point EMPATHOS_SHARED_DATA at the folder "
            "that holds the shared research sets."
        )
    return path


def esconv_id(text: str) -> str:
    """The stable id of an ESConv seeker turn."""
    return "esconv:" + hashlib.sha1(text.strip().encode("utf-8")).hexdigest()[:12]


def esconv_half(message_id: str) -> str:
    """Return "a" (may train) or "b" (measured only) for an ESConv id."""
    return "a" if int(message_id[-1], 16) % 2 == 0 else "b"


def esconv_seeker_turns(root: Path | None = None) -> list[Message]:
    """Every distinct seeker turn of ESConv's validation split, in first-seen order."""
    path = (root or shared_data_dir()) / "esconv" / "dev.jsonl"
    seen: dict[str, Message] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            for turn in json.loads(line)["context"]:
                text = turn["text"].strip()
                if turn["speaker"] != "seeker" or not text:
                    continue
                mid = esconv_id(text)
                seen.setdefault(mid, Message(mid, f"esconv-{esconv_half(mid)}", text))
    return list(seen.values())


def goemotions(split: str, root: Path | None = None) -> list[Message]:
    """The comments of one GoEmotions split ("train" or "dev")."""
    path = (root or shared_data_dir()) / "goemotions" / f"{split}.tsv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [Message(f"goemotions:{r[2]}", f"goemotions-{split}", r[0]) for r in rows if r]


def all_messages(root: Path | None = None) -> list[Message]:
    """ESConv seeker turns, then GoEmotions train and dev."""
    return [*esconv_seeker_turns(root), *goemotions("train", root), *goemotions("dev", root)]
