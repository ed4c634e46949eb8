import pytest

from agent.validation import message_problem


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("x" * 101, "limit is 100"),
        ("hello\x00there", "U+0000"),
        ("bell\x07", "U+0007"),
        ("c1\x85control", "U+0085"),
        ("broken \udcff byte", "invalid Unicode"),
    ],
)
def test_bad_messages_are_named(text: str, fragment: str) -> None:
    problem = message_problem(text, max_chars=100)
    assert problem is not None and fragment in problem


@pytest.mark.parametrize("text", ["I feel sad.", "line one\nline two\ttab", "émoji ok 😊 日本語"])
def test_ordinary_messages_pass(text: str) -> None:
    assert message_problem(text, max_chars=100) is None
