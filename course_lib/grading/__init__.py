"""The checkers homework tests call (`from course_lib.grading import check_conv_params`),
re-exported from `course_lib.grading.checks` (each checker module's `__all__`, every one
`reproducible`: the global RNG seeded from the check's seed), and `hint`.
Grading a class lives in `course_lib.autograde`."""

from course_lib.grading.checks import hw1_arithmetic, hw2_layers, hw3_transfer, hw4_visualize
from course_lib.grading.checks.compare import CheckFailure, reproducible
from course_lib.grading.checks.guard import ForbiddenCallError
from course_lib.grading.checks.hints import hint
from course_lib.grading.checks.hw1_arithmetic import *  # noqa: F403
from course_lib.grading.checks.hw2_layers import *  # noqa: F403
from course_lib.grading.checks.hw3_transfer import *  # noqa: F403
from course_lib.grading.checks.hw4_visualize import *  # noqa: F403

for _module in (hw1_arithmetic, hw2_layers, hw3_transfer, hw4_visualize):
    for _name in _module.__all__:
        globals()[_name] = reproducible(getattr(_module, _name))

__all__ = [
    "CheckFailure", "ForbiddenCallError", "hint",
    *hw1_arithmetic.__all__, *hw2_layers.__all__, *hw3_transfer.__all__, *hw4_visualize.__all__,
]
