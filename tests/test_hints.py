"""hint(): finds an assignment's hints by its short or full name; an unknown name is explained."""

import pytest

from course_lib.grading import hint
from course_lib.grading.checks.hints import hint_text


def test_an_unknown_assignment_or_question_is_named_in_the_error():
    with pytest.raises(ValueError, match="hw9"):
        hint_text("hw9", "Q1")
    with pytest.raises(ValueError, match="Q99"):
        hint_text("hw1", "Q99")


def test_hint_prints_the_same_text_for_the_short_and_the_full_assignment_name(capsys, monkeypatch):
    from course_lib.grading.checks import hw1_arithmetic

    monkeypatch.setattr(hw1_arithmetic, "HINTS", {"Q1": "Think about both sides."}, raising=False)
    hint("hw1_cnn_arithmetic", "q1")
    assert capsys.readouterr().out.strip() == hint_text("hw1", "Q1") == "Think about both sides."
