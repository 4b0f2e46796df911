"""The course home page, build/index.html: plain HTML and CSS, no script, no server, no
network, readable on a phone. `course build` (build.py) gathers what it links (relative
links inside build/):

    lectures   each page with its run time and how many figures it shows
    homework   points, due date, the released notebook to download
    data       what the course uses and its attribution
    grades     the summary of the sample submissions, grades.csv and their feedback
"""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Lecture:
    title: str
    description: str
    href: str  # relative to the home page
    seconds: float
    figures: int
    ok: bool


@dataclass(frozen=True)
class Homework:
    name: str
    points: float
    due: str | None  # e.g. "2026-12-01 23:59 UTC"; None when the gradebook has none
    href: str        # the released notebook


@dataclass(frozen=True)
class Dataset:
    name: str
    use: str
    attribution: str
    href: str | None = None  # a page with the full terms


#: What the lectures and homework use; the attributions are those of the sources.
DATA = (
    Dataset("MNIST test set (bundled)", "digits in lectures 01-03 and the homework; the pretrained backbone",
            "Yann LeCun, Corinna Cortes and Christopher J. C. Burges, \"The MNIST database of handwritten "
            "digits\". Licence: CC BY-SA 3.0, as stated by the source.", "data/mnist-README.md"),
    Dataset("scikit-learn digits", "8x8 digits for quick experiments",
            "The UCI ML hand-written digits data set, shipped with scikit-learn (BSD licence)."),
    Dataset("scikit-image textures, faces and photos", "texture transfer and visualization examples",
            "The sample images shipped with scikit-image, each under the terms listed in its data/README."),
)

CSS = """
body { font-family: system-ui, sans-serif; line-height: 1.5; margin: 0 auto; max-width: 52rem; padding: 1rem;
       color: #1a1a1a; }
h1 { font-size: 1.8rem; margin-bottom: 0.2rem; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2rem; }
ul.cards { list-style: none; padding: 0; }
ul.cards li { border: 1px solid #ddd; border-radius: 6px; margin: 0.6rem 0; padding: 0.6rem 0.8rem; }
.meta { color: #555; font-size: 0.9rem; }
.failed { color: #a00; }
.table { overflow-x: auto; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: left; }
a { color: #0645ad; }
"""


def _e(text) -> str:
    return html.escape(str(text))


def _lectures(lectures: list[Lecture]) -> str:
    items = []
    for lecture in lectures:
        figures = f"{lecture.figures} figure{'' if lecture.figures == 1 else 's'}"
        status = (f"ran in {lecture.seconds:.0f} s, {figures}" if lecture.ok
                  else f'<span class="failed">failed after {lecture.seconds:.0f} s</span>')
        items.append(f'<li><a href="{_e(lecture.href)}">{_e(lecture.title)}</a><br>{_e(lecture.description)}'
                     f'<br><span class="meta">{status}</span></li>')
    return '<ul class="cards">\n' + "\n".join(items) + "\n</ul>"


def _homework(homework: list[Homework]) -> str:
    items = [f'<li><strong>{_e(hw.name)}</strong> &mdash; {hw.points:g} points, due {_e(hw.due or "not set")}'
             f'<br><a href="{_e(hw.href)}" download>download the notebook</a></li>' for hw in homework]
    return '<ul class="cards">\n' + "\n".join(items) + "\n</ul>"


def _data() -> str:
    items = [f"<li><strong>{_e(d.name)}</strong>: {_e(d.use)}<br><span class=\"meta\">{_e(d.attribution)}"
             + (f' <a href="{_e(d.href)}">terms</a>' if d.href else "") + "</span></li>" for d in DATA]
    return '<ul class="cards">\n' + "\n".join(items) + "\n</ul>"


def _breakable(name: str) -> str:
    """An identifier that may wrap after each underscore (hw1_cnn_arithmetic), so that the
    grade table fits the page's width at 1280 px."""
    return _e(name).replace("_", "_<wbr>")


def _grades(assignments: list[str], rows: dict[str, dict[str, str]], links: dict[str, str]) -> str:
    head = "<tr><th>sample submission</th>" + "".join(f"<th>{_breakable(a)}</th>" for a in assignments) + "</tr>"
    body = ["<tr><td>" + _e(student) + "</td>" + "".join(f"<td>{_e(cells.get(a, '-'))}</td>" for a in assignments)
            + "</tr>" for student, cells in rows.items()]
    more = " &middot; ".join(f'<a href="{_e(href)}">{_e(label)}</a>' for label, href in links.items())
    return f'<div class="table"><table>\n{head}\n' + "\n".join(body) + f"\n</table></div>\n<p>{more}</p>"


def home_page(title: str, lectures: list[Lecture], homework: list[Homework], assignments: list[str],
              grades: dict[str, dict[str, str]], grade_links: dict[str, str], note: str = "") -> str:
    """The page; `grades` is {student: {assignment: score text}}, `grade_links` {label: href}."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_e(title)}</title>\n<style>{CSS}</style></head>\n<body>\n<h1>{_e(title)}</h1>\n"
            f"<p class=\"meta\">{_e(note)}</p>\n"
            f"<h2 id=\"lectures\">Lectures</h2>\n{_lectures(lectures)}\n"
            f"<h2 id=\"homework\">Homework</h2>\n{_homework(homework)}\n"
            f"<h2 id=\"data\">Data</h2>\n{_data()}\n"
            f"<h2 id=\"grades\">Grades of the sample submissions</h2>\n{_grades(assignments, grades, grade_links)}\n"
            "</body></html>\n")
