"""Feedback that teaches without revealing the hidden tests.

`HideTestCode` is an nbconvert preprocessor for `nbgrader generate_feedback`: in every test
cell it replaces an error's traceback (which quotes the lines around the failing call,
hidden tests included) with the checker's message alone.
"""

from nbgrader.preprocessors import NbGraderPreprocessor


class HideTestCode(NbGraderPreprocessor):
    """Keep only `ErrorName: message` of each error in a test cell's outputs."""

    def preprocess_cell(self, cell, resources, index):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution"):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources
