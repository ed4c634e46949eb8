"""`empathos memory ingest`, reading a history file: every problem names the file, the line and
the field, and the messages are grouped into sessions by their labels or at a gap of six hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.ingest import (
    HistoryError,
    group_sessions,
    read_history,
)
from tests.test_ingest import (
    DAY,
    HINT,
    T0,
    messages,
    write_history,
)

# Reading: every problem names the file, the line and the field.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"role": "user", "text": "hi", "time": "2026-03-01T18:00:00+00:00"}\n{"role": "user",',
         ["line 2", "not valid JSON"]),
        ('\n\n{"role": "user", "text": "hi", "time": "2026-03-01T18:00:00"}\n',
         ["line 3", "field 'time'", HINT]),
        ('{"role": "bot", "text": "hi", "time": "2026-03-01T18:00:00Z"}',
         ["line 1", "field 'role'", "'user' or 'assistant'"]),
        ('{"role": "user", "text": "hi", "time": "2026-03-01T18:00:00Z", "mood": "ok"}',
         ["line 1", "field 'mood'", "unknown field", "role, text, time, session"]),
        ('{"role": "user", "text": "   ", "time": "2026-03-01T18:00:00Z"}',
         ["line 1", "field 'text'", "not empty"]),
        ('{"role": "user", "time": "2026-03-01T18:00:00Z"}',
         ["line 1", "field 'text'", "missing"]),
        ('{"role": "user", "text": "a \\u001b[2J b", "time": "2026-03-01T18:00:00Z"}',
         ["line 1", "field 'text'", "U+001B"]),
        ('["user", "hi"]', ["line 1", "an array is not a message"]),
        ('{"role": "user", "text": "hi", "time": "2026-03-02T18:00:00Z"}\n'
         '{"role": "assistant", "text": "ok", "time": "2026-03-01T18:00:00Z"}',
         ["line 2", "field 'time'", "earlier than line 1", "in the order"]),
        ("\n  \n", ["holds no messages"]),
    ],
)  # fmt: skip
def test_read_errors_name_the_line_and_the_field(tmp_path, text, expected):
    path = write_history(tmp_path, text)
    with pytest.raises(HistoryError) as caught:
        read_history(path)
    message = str(caught.value)
    assert str(path) in message
    for part in expected:
        assert part in message, message


def test_a_missing_or_undecodable_file_is_a_clear_error(tmp_path):
    with pytest.raises(HistoryError, match="no such file"):
        read_history(tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"role": "user", "text": "\xff", "time": "2026-03-01T18:00:00Z"}')
    with pytest.raises(HistoryError, match="not UTF-8"):
        read_history(bad)


def test_a_valid_file_reads_in_order_with_zones_kept_and_text_stripped(tmp_path):
    text = (
        '\ufeff{"role": "user", "text": "  one\u2028two  ", "time": "2026-03-01T19:00:00+01:00"}'
        '\r\n\n{"role": "assistant", "text": "ok", "time": "2026-03-01T18:00Z", "session": "a"}\n'
    )
    read = read_history(write_history(tmp_path, text))
    assert [(m.role, m.text, m.session) for m in read] == [
        ("user", "one\u2028two", None),
        ("assistant", "ok", "a"),
    ]
    assert read[0].time == read[1].time == datetime(2026, 3, 1, 18, tzinfo=UTC)


# Grouping into sessions.


def test_sessions_follow_labels_whatever_the_gap():
    rows = [("user", "a", T0), ("assistant", "b", T0 + 2 * DAY), ("user", "c", T0 + 3 * DAY)]
    labelled = messages(rows[:2], session="week one") + messages(rows[2:], session="week two")
    assert [[m.text for m in s] for s in group_sessions(labelled)] == [["a", "b"], ["c"]]


def test_unlabelled_sessions_split_at_a_gap_of_six_hours():
    rows = [("user", "a", T0), ("user", "b", T0 + timedelta(hours=5, minutes=59)),
            ("user", "c", T0 + timedelta(hours=11, minutes=59)),
            ("user", "d", T0 + timedelta(hours=17, minutes=59))]  # fmt: skip
    assert [[m.text for m in s] for s in group_sessions(messages(rows))] == [
        ["a", "b"],
        ["c"],
        ["d"],
    ]
    assert len(group_sessions(messages(rows), gap=timedelta(days=1))) == 1
