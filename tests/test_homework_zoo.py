"""The homework's test cells against a zoo of answers written as students would write them.

A realistic wrong answer must lose the points of its own question and nowhere else; a
correct answer written differently from ours must get full marks; and across the visible
and hidden tests every argument a question names must take at least two values.
"""

import pytest

from homework_zoo import ASSIGNMENTS, grade_answers, new_calls, record_calls, test_cell_ids, zoo_entries

ENTRIES = [pytest.param(a, e, id=f"{a}/{e.path.stem}") for a in ASSIGNMENTS for e in zoo_entries(a)]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_solution_passes_every_test_cell(assignment):
    graded = grade_answers(assignment)
    assert graded.lost == set(), graded.messages


@pytest.mark.parametrize(("assignment", "entry"), ENTRIES)
def test_a_zoo_answer_loses_exactly_its_own_questions(assignment, entry):
    assert entry.loses <= set(test_cell_ids(assignment)), f"{entry.path.name} names unknown test cells"
    graded = grade_answers(assignment, entry.cells)
    assert graded.lost == entry.loses, (
        f"{entry.path.name}: expected to lose {sorted(entry.loses) or 'nothing'}, lost {sorted(graded.lost) or 'nothing'}"
        f"; messages: {graded.messages}"
    )
