"""What homework notebooks import: the comparison helpers (`compare`), the forbidden-API
guard (`guard`) and one module of checkers per assignment (`hw1_arithmetic`, `hw2_layers`,
`hw3_transfer`, `hw4_visualize`). Nothing here imports `course_lib.autograde`."""
