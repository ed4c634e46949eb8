"""Where "now" comes from: the wall clock by default, or a simulated clock a caller injects.

Every stored timestamp, recency decay and job backoff reads the clock of the store that writes
it, so a simulation can live weeks of a person's life in minutes and week-four recall is really
four weeks old. `SimulatedClock` only moves when told to (`advance`, `set`).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

from memory.errors import MemoryLayerError


class ClockError(MemoryLayerError, ValueError):
    """A simulated clock was given a time it cannot use."""


class Clock(Protocol):
    def now(self) -> datetime:
        """Return the current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """A clock that stands still until it is moved; safe to share between threads."""

    def __init__(self, start: datetime) -> None:
        self._now = _aware(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by `delta` (never backward) and return the new time."""
        if delta < timedelta(0):
            raise ClockError(f"A clock cannot go back ({delta}); use set() for a new start.")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (a scenario's next session date)."""
        with self._lock:
            self._now = _aware(moment)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ClockError(f"{moment.isoformat()} has no time zone; give one (e.g. +00:00).")
    return moment.astimezone(UTC)


SYSTEM_CLOCK: Clock = SystemClock()


def stamp(clock: Clock = SYSTEM_CLOCK) -> str:
    """The clock's time as the ISO-8601 text the stores keep."""
    return clock.now().isoformat(timespec="milliseconds")
