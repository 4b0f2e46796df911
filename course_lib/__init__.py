"""course_lib: tested reference implementations for the CNN lecture."""

__version__ = "0.1.0"
