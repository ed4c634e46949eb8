"""Read a JSONL file of pydantic records, naming a broken line by its file and line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

Record = TypeVar("Record", bound=BaseModel)


def read_records(
    path: Path, model: type[Record], error: type[Exception], what: str,
    is_record: Callable[[dict[str, Any]], bool] = lambda row: True,
) -> list[Record]:  # fmt: skip
    """Each non-blank line of `path` validated as `model`; a line `is_record` turns down (a
    header that says what the file is) is skipped. A line that is not JSON or not a valid
    record raises `error` saying "<path>:<line> is not a valid <what>: <why>"."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if is_record(row):
                records.append(model.model_validate(row))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise error(f"{path}:{number} is not a valid {what}: {exc}") from exc
    return records
