"""The homework's test cells against a zoo of answers written as students would write them.

A realistic wrong answer must lose the points of its own question and nowhere else; a
correct answer written differently from ours must get full marks; and across the visible
and hidden tests every argument a question names must take at least two values.
"""

import pytest
from homework_zoo import (
    ASSIGNMENTS,
    _names,
    downstream,
    grade_answers,
    graded_cell_ids,
    new_calls,
    record_calls,
    zoo_entries,
)

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


def test_a_cell_binds_its_top_level_names_and_not_its_functions_locals():
    source = ("import torch.nn as nn\nfrom math import sqrt as root\nmodel.fc.weight[0] = 1\nfor i in range(2): pass\n"
              "def train(x, steps=default):\n    loss = x.sum()\n    global seen\n    seen = loss\n"
              "    return helper(loss)\n"
              "try:\n    pass\nexcept ValueError as error:\n    del stale\n")
    bound, read = _names(source)
    assert bound == {"nn", "root", "model", "i", "train", "seen", "error", "stale"}
    assert {"default", "helper", "range", "ValueError", "model"} <= read and not {"x", "loss", "steps"} & read
    assert _names("f = lambda t: t + shift\n")[1] == {"shift"}
    assert _names("def grow(size):\n    net.head = size\n")[1] == {"net"}  # a global changed, not a local
    assert _names("model = train()\nassert model(x).shape == (2, 10)\n")[1] == {"train", "x"}  # its own model
    assert {"range", "w"} <= _names("for step in range(3):\n    w = w - step\n")[1]  # the notebook's w, first


def test_a_replaced_cell_reaches_the_cells_that_read_what_it_binds():
    cells = [("a", "def f(n):\n    total = n\n    return total"), ("b", "y = f(2)"), ("c", "total = 0"),
             ("d", "print(y)"), ("e", "print(total)")]
    rerun, reached = downstream(cells, {"a": "def f(n):\n    total = n + 1\n    return total"})
    assert [name for name, _ in rerun] == ["a", "b", "d"] and reached == {"f", "y"}
    assert rerun[0][1].endswith("return total") and "n + 1" in rerun[0][1]
