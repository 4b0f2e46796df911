"""`hint("hw2", "Q2")`: a nudge toward the idea behind a homework question, never its code.

Each assignment's checker module holds its hints in a dict `HINTS = {"Q1": "...", ...}`;
the text points at the concept and the lecture slide to reread, not at a formula to type.
"""

from __future__ import annotations

from course_lib.grading.checks import hw1_arithmetic, hw2_layers, hw3_transfer, hw4_visualize

_MODULES = {"hw1": hw1_arithmetic, "hw2": hw2_layers, "hw3": hw3_transfer, "hw4": hw4_visualize}


def hint_text(assignment: str, question: str) -> str:
    """The hint for `question` ("Q2") of `assignment` ("hw2" or "hw2_bn_dropout_init")."""
    key = assignment.split("_", 1)[0].lower()
    if key not in _MODULES:
        raise ValueError(f"no assignment {assignment!r}; use one of {sorted(_MODULES)}")
    hints = getattr(_MODULES[key], "HINTS", {})
    if question.upper() not in hints:
        raise ValueError(f"{key} has no hint for {question!r}; questions with hints: {sorted(hints) or 'none yet'}")
    return hints[question.upper()]


def hint(assignment: str, question: str) -> None:
    """Print the hint for a question (for a student who is stuck)."""
    print(hint_text(assignment, question))
