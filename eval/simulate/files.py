"""The run dir's files: names, the durable journal, atomic JSON writes, what run.json records.

RUN_DIR/run.json                    the scenario, settings, seed, model sha256s, versions
RUN_DIR/people/ID/transcript.jsonl  every step, appended and synced as it finishes
RUN_DIR/people/ID/transcript.md     the same, for a person to read
RUN_DIR/people/ID/person.json       traits beside the truth, strategies, probes, per session
RUN_DIR/summary.json                per person and overall
RUN_DIR/data/                       the shared data dir of all people (unless --data-dir)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval.errors import EvalError

if TYPE_CHECKING:
    from agent.settings import Settings
    from eval.simulate.scenario import Scenario

RUN_FILE, SUMMARY_FILE, PEOPLE_DIR = "run.json", "summary.json", "people"


class SimulationError(EvalError):
    """A run that cannot start or go on; the run dir stays consistent and resumable."""


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Read a transcript.jsonl. Every record is written as one line ending in a newline, so
    only an unterminated last piece can be torn (a kill mid-write): it is cut off if it is not
    whole JSON, and given its newline if it is; damage anywhere else is an error."""
    raw = path.read_bytes()
    lines = raw.split(b"\n")  # the last piece is the unterminated tail (b"" if none)
    records = []
    for n, line in enumerate(lines[:-1], start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            damaged = f"{path} line {n} is not JSON; the run dir is damaged."
            raise SimulationError(damaged) from exc
    tail = lines[-1]
    if tail.strip():
        try:
            records.append(json.loads(tail))
        except json.JSONDecodeError:  # torn: cut back to the last whole record
            with path.open("r+b") as handle:
                handle.truncate(len(raw) - len(tail))
        else:  # whole, only its newline lost
            with path.open("ab") as handle:
                handle.write(b"\n")
    return records


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (a kill never leaves half a file)."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def people_dirs(run_dir: Path) -> Iterator[Path]:
    folder = run_dir / PEOPLE_DIR
    yield from sorted(p for p in folder.iterdir() if p.is_dir()) if folder.exists() else ()


class Journal:
    """A person's transcript.jsonl: the steps already done, and appending new ones durably."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []
        if path.exists():
            self.records = read_journal(path)

    def find(self, type_: str, session: int, turn: int | None = None) -> dict[str, Any] | None:
        return next(
            (r for r in self.records
             if r["type"] == type_ and r["session"] == session and r.get("turn") == turn),
            None,
        )  # fmt: skip

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, sort_keys=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records.append(record)


def clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def scenario_digest(scenario: Scenario) -> str:
    text = json.dumps(scenario.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def model_digests(settings: Settings, user_model: str) -> dict[str, Any]:
    """The sha256 of each embedded model file the run uses (endpoints: their URL and id)."""
    from agent.models import load_registry, sha256_file

    found: dict[str, Any] = {}
    for name in dict.fromkeys([settings.model, user_model or settings.model]):
        if settings.base_url:
            found[name] = {"endpoint": settings.base_url}
        elif name in load_registry().names():
            found[name] = {"sha256": load_registry().get(name).sha256}
        elif Path(name).is_file():
            found[name] = {"sha256": sha256_file(Path(name))}
        else:
            found[name] = {"sha256": None}
    return found


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("empathos", "llama-cpp-python", "langgraph", "chromadb", "torch"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found
