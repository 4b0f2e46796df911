"""nbgrader configuration: the repository root is the course root.

solutions/<hw>/   the instructor's source notebooks (solutions and hidden tests)
assignments/<hw>/ the student versions, written by `course generate` (nbgrader's release)
"""

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

from course_lib.autograde.feedback import HideTestCode  # light: no torch for every nbgrader command
from course_lib.kernels import kernel_config

c = get_config()  # noqa: F821 (provided by nbgrader)

# Kernels (nbgrader autograde, `course grade --executor nbgrader`) talk over Unix sockets in
# Jupyter's private runtime folder, not unencrypted TCP (ipykernel warns for every notebook).
c.merge(kernel_config())

c.CourseDirectory.course_id = "dl-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]

# `nbgrader collect` skips a submission whose folder is not owned by the student it names
# (stock collect only warns, and a student could replace another's submission).
c.ExchangeFactory.collect = "course_lib.autograde.collect.OwnedCollect"

# Late work: 1 point off per started hour after the due date in the gradebook
# (`nbgrader db assignment add HW --duedate=...`), applied by `course grade` and
# `nbgrader autograde`; kept apart from the score (`course export`: raw_score, late_penalty).
c.AssignLatePenalties.plugin_class = "course_lib.autograde.late.SubMarks"
c.SubMarks.points_per_hour = 1.0

# Each cell may run for at most 120 s; a notebook that hangs is interrupted, graded, and
# the batch goes on.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
c.Execute.allow_errors = True
c.Execute.raise_on_iopub_timeout = False

# nbgrader fails a test cell with any text on stderr; these warnings are harmless.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = (
    r"(?s)^(?:[^\n]*(?:Warning|warn)[^\n]*\n?(?:  [^\n]*\n?)*)+$"  # only warning lines and their context
)

# Locked and test cells that a student deleted are put back from the source.
c.OverwriteCells.add_missing_cells = True

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Feedback shows grades and messages, never the hidden tests' code.
c.ClearHiddenTests.enforce_metadata = False
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, HideTestCode, CSSHTMLHeaderPreprocessor]
