"""The homework's test cells against a zoo of answers written as students would write them.

A realistic wrong answer must lose the points of its own question and nowhere else; a
correct answer written differently from ours must get full marks; and across the visible
and hidden tests every argument a question names must take at least two values.
"""

import pytest
from homework_zoo import ASSIGNMENTS, grade_answers, graded_cell_ids, new_calls, record_calls, zoo_entries

ENTRIES = [pytest.param(a, e, id=f"{a}/{e.path.stem}") for a in ASSIGNMENTS for e in zoo_entries(a)]


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_solution_passes_every_test_cell(assignment):
    graded = grade_answers(assignment)
    assert graded.lost == set(), graded.messages


@pytest.mark.slow
@pytest.mark.parametrize(("assignment", "entry"), ENTRIES)
def test_a_zoo_answer_loses_exactly_its_own_questions(assignment, entry):
    assert entry.loses <= set(graded_cell_ids(assignment)), f"{entry.path.name} names unknown test cells"
    graded = grade_answers(assignment, entry.cells)
    assert graded.lost == entry.loses, (
        f"{entry.path.name}: expected to lose {sorted(entry.loses) or 'nothing'}, "
        f"lost {sorted(graded.lost) or 'nothing'}"
        f"; messages: {graded.messages}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_tests_vary_every_argument_a_question_names(assignment):
    calls = new_calls()
    graded = grade_answers(assignment, wrap=record_calls(calls))
    assert graded.lost == set(), graded.messages
    fixed = {key: values for key, values in calls.items() if len(values) < 2}
    assert calls and not fixed, f"arguments that never change across the visible and hidden tests: {fixed}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_zoo_has_eight_wrong_and_three_right_answers(assignment):
    entries = zoo_entries(assignment)
    wrong = {question for e in entries for question in e.loses}
    assert sum(bool(e.loses) for e in entries) >= 8 and sum(not e.loses for e in entries) >= 3
    assert wrong == set(graded_cell_ids(assignment)), "every autograded question needs a realistic wrong answer"

