"""Grading a class with nbgrader: the course root and gradebook, sanitizing submissions,
the pipeline behind `course grade` (find -> prepare -> run -> score -> record), its
executors, the sandboxed workers that run student code, validate, self-check and feedback.

Light on purpose: importing this package imports nothing else (no torch)."""
