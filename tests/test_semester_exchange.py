"""A semester through nbgrader's exchange, with real Unix accounts (issue 15, item 1).

As root (as CI runs), the module fixture creates an instructor and three students, an
exchange folder with the permissions nbgrader's documentation asks for (world-writable,
sticky), and a course root copied from the repository and owned by the instructor. Then,
each command as its own uid with its own HOME:

    instructor  course generate; nbgrader release_assignment
    students    nbgrader fetch_assignment; answer; nbgrader submit
                (right: the reference answers; mistake: examples' typical mistakes;
                 late: right answers, submitted after the due date has passed)
    instructor  nbgrader collect; course grade submitted/; course feedback;
                nbgrader release_feedback
    students    nbgrader fetch_feedback

Every step is recorded and the tests below read the record. The students' commands need a
Python they can execute: where the virtual environment's interpreter is under a private
folder (e.g. /root/.pyenv), `shared_environment` builds a copy of the venv that hard-links
its files and points at a system interpreter of the same version (see docs/semester.md for
what a JupyterHub provides instead).
"""

from __future__ import annotations

import csv
import datetime
import html
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from answers import answered, hidden_test_lines
from nbgrader.api import Gradebook

ROOT = Path(__file__).resolve().parents[1]
HW = "hw2_bn_dropout_init"  # the quickest homework to grade (0.3 s of checks, docs/grading.md)
COURSE_ID = "dl-course"
STEP_TIMEOUT = 600

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                       reason="needs root to create Unix accounts (CI runs as root)"),
    pytest.mark.skipif(shutil.which("useradd") is None or shutil.which("userdel") is None,
                       reason="needs useradd and userdel (Debian package 'passwd')"),
]


# ---------------------------------------------------------------------------------------
# Accounts and an environment every account can execute
# ---------------------------------------------------------------------------------------


@dataclass
class Account:
    name: str
    uid: int
    gid: int
    home: Path


def _create_account(name: str, homes: Path) -> Account:
    home = homes / name
    subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh", name],
                   check=True, capture_output=True, text=True)
    home.chmod(0o700)  # private homes: the nbgrader cache holds each submission's secret
    entry = pwd.getpwnam(name)
    return Account(name, entry.pw_uid, entry.pw_gid, home)


def _delete_account(account: Account) -> None:
    subprocess.run(["userdel", "--remove", account.name], check=False, capture_output=True, text=True)


def _others_can_execute(path: Path) -> bool:
    """Whether a user with no group in common can reach and execute `path`."""
    path = path.resolve()
    if not path.stat().st_mode & stat.S_IXOTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.parents)


def shared_environment(base: Path) -> Path:
    """The bin/ folder of a Python environment with this venv's packages that every user
    can execute: the venv itself when it can, else a hard-linked copy of it on top of a
    copy of its base interpreter (for a Python built under a private folder such as
    /root/.pyenv, or a checkout under a private folder such as a CI runner's 0700 temp)."""
    venv = Path(sys.prefix).resolve()  # a symlinked venv: copy the real one, never retarget it in place
    site_packages = Path(sysconfig.get_paths()["purelib"])
    if _others_can_execute(Path(sys.executable)) and _others_can_execute(site_packages):
        return venv / "bin"
    readable = all(path.stat().st_mode & stat.S_IROTH for path in (site_packages, ROOT / "course_lib"))
    if not readable or len({os.stat(path).st_dev for path in (venv, base, ROOT)}) > 1:
        pytest.skip(f"{sys.executable} is not executable by other users, and {venv} cannot be shared "
                    f"by hard links in {base} (not world-readable or another filesystem)")
    python = _copy_interpreter(Path(sys.base_prefix), base / "python")
    copy = base / "env"
    subprocess.run(["cp", "-al", str(venv), str(copy)], check=True)
    _retarget(copy, venv, python)
    if not _others_can_execute(ROOT / "course_lib"):
        _install_course_lib(copy / site_packages.relative_to(venv))
    return copy / "bin"


def _install_course_lib(site_packages: Path) -> None:
    """Put a hard-linked copy of this checkout's course_lib in the copied environment's
    `site_packages`, in place of the editable install's hook into a folder other users
    cannot reach."""
    for hook in site_packages.glob("__editable__*dl_course*"):
        hook.unlink()
    subprocess.run(["cp", "-al", str(ROOT / "course_lib"), str(site_packages / "course_lib")], check=True)


def _copy_interpreter(prefix: Path, dest: Path) -> Path:
    """A world-executable copy of the interpreter installed at `prefix`: the standard
    library and libpython hard-linked, the executable copied with its library search path
    (an absolute RUNPATH into `prefix`, unreachable for other users) rewritten to
    $ORIGIN/../lib."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    stdlib = prefix / "lib" / version
    shutil.copytree(stdlib, dest / "lib" / version, copy_function=os.link,
                    ignore=lambda folder, names: ["site-packages"] if Path(folder) == stdlib else [])
    (dest / "lib" / version / "site-packages").mkdir()
    for library in (prefix / "lib").glob("libpython*"):
        if library.is_symlink():
            (dest / "lib" / library.name).symlink_to(os.readlink(library))
        else:
            os.link(library, dest / "lib" / library.name)
    binary = Path(sys.executable).resolve().read_bytes()
    old, new = f"{prefix}/lib".encode() + b"\0", b"$ORIGIN/../lib"
    if old in binary and len(new) < len(old):
        binary = binary.replace(old, new + b"\0" * (len(old) - len(new)))
    (dest / "bin").mkdir()
    target = dest / "bin" / version
    target.write_bytes(binary)
    target.chmod(0o755)
    for path in [dest, *dest.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    return target


def _retarget(copy: Path, venv: Path, python: Path) -> None:
    """Point the hard-linked venv copy at `python`; files are replaced, never edited in place
    (they are the original venv's inodes)."""
    config = copy / "pyvenv.cfg"
    config.unlink()
    config.write_text(f"home = {python.parent}\ninclude-system-site-packages = false\n"
                      f"version = {sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}\n")
    for script in (copy / "bin").iterdir():
        if script.is_symlink() and script.name.startswith("python"):
            script.unlink()
            script.symlink_to(python)
        elif script.is_file() and not script.is_symlink():
            text = script.read_bytes()
            if text.startswith(f"#!{venv}/bin/".encode()):
                script.unlink()
                script.write_bytes(text.replace(f"#!{venv}/bin/".encode(), f"#!{copy}/bin/".encode(), 1))
                script.chmod(0o755)


# ---------------------------------------------------------------------------------------
# The semester
# ---------------------------------------------------------------------------------------


@dataclass
class Semester:
    base: Path
    bin: Path
    exchange: Path
    course: Path
    instructor: Account
    students: dict[str, Account]  # role -> account: right, mistake, late
    steps: dict[str, subprocess.CompletedProcess] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    due: datetime.datetime | None = None

    def run(self, account: Account, step: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
        env = {"HOME": str(account.home), "USER": account.name, "LOGNAME": account.name,
               "PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
               "COURSE_QUIET": "1", "MPLBACKEND": "Agg"}
        start = time.monotonic()
        result = subprocess.run(args, check=False, cwd=cwd, env=env, user=account.uid, group=account.gid,
                                extra_groups=[], capture_output=True, text=True, timeout=STEP_TIMEOUT,
                                stdin=subprocess.DEVNULL)
        self.steps[step], self.seconds[step] = result, time.monotonic() - start
        return result

    def nbgrader(self, account: Account, step: str, *args: str, cwd: Path | None = None):
        return self.run(account, step, [str(self.bin / "python"), "-m", "nbgrader", *args], cwd or account.home)

    def course_cmd(self, step: str, *args: str):
        return self.run(self.instructor, step, [str(self.bin / "course"), *args], self.course)

    def as_user(self, account: Account, step: str, code: str):
        """Run Python `code` as `account` (used to probe what a user can reach)."""
        return self.run(account, step, [str(self.bin / "python"), "-c", code], account.home)

    def check(self, step: str) -> subprocess.CompletedProcess:
        result = self.steps[step]
        output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        assert result.returncode == 0, f"{step} exited {result.returncode}:\n{output}"
        return result


def _config(account: Account, exchange: Path) -> None:
    folder = account.home / ".jupyter"
    folder.mkdir()
    (folder / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = {COURSE_ID!r}\nc.Exchange.root = {str(exchange)!r}\n")
    for path in (folder, folder / "nbgrader_config.py"):
        os.chown(path, account.uid, account.gid)


def _copy_course(course: Path, owner: Account) -> None:
    course.mkdir(mode=0o700)
    shutil.copy2(ROOT / "nbgrader_config.py", course)
    for folder in ("solutions", "assignments"):
        shutil.copytree(ROOT / folder, course / folder)
    for path in [course, *course.rglob("*")]:
        os.chown(path, owner.uid, owner.gid, follow_symlinks=False)


def _write_answer(student: Account, notebook) -> None:
    path = student.home / HW / f"{HW}.ipynb"
    nbformat.write(notebook, path)
    os.chown(path, student.uid, student.gid)


@pytest.fixture(scope="module")
def semester():
    base = Path(tempfile.mkdtemp(prefix="dlcourse-semester-"))
    base.chmod(0o755)
    tag = secrets.token_hex(3)
    accounts = []
    try:
        homes = base / "home"
        homes.mkdir(mode=0o755)
        for role in ("teach", "right", "mistake", "late"):
            accounts.append(_create_account(f"dl{tag}{role}"[:32], homes))
        exchange = base / "exchange"
        exchange.mkdir()
        exchange.chmod(0o1777)  # nbgrader's docs: writable by everyone; sticky so nobody removes another's course
        s = Semester(base, shared_environment(base), exchange, base / "course", accounts[0],
                     dict(zip(("right", "mistake", "late"), accounts[1:])))
        _copy_course(s.course, s.instructor)
        for account in accounts:
            _config(account, exchange)
        _play(s)
        print("semester steps (s):", {step: round(t, 1) for step, t in s.seconds.items()})
        yield s
    finally:
        for account in accounts:
            _delete_account(account)
        shutil.rmtree(base, ignore_errors=True)


def _play(s: Semester) -> None:
    teacher = s.instructor
    s.course_cmd("generate", "generate", HW)
    s.nbgrader(teacher, "release_assignment", "release_assignment", HW, cwd=s.course)
    donors = {"right": ROOT / "solutions" / HW / f"{HW}.ipynb",
              "mistake": ROOT / "examples" / "submissions" / "typical_mistakes" / HW / f"{HW}.ipynb",
              "late": ROOT / "solutions" / HW / f"{HW}.ipynb"}
    for role, student in s.students.items():
        if role == "late":  # the due date passes before the last student submits
            s.due = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(seconds=1)
            s.nbgrader(teacher, "set_due_date", "db", "assignment", "add", HW,
                       f"--duedate={s.due.strftime('%Y-%m-%d %H:%M:%S')} UTC", cwd=s.course)
            time.sleep(max(0.0, (s.due - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) + 1.5)
        s.nbgrader(student, f"fetch_assignment:{role}", "fetch_assignment", HW)
        if (student.home / HW / f"{HW}.ipynb").exists():
            _write_answer(student, answered(student.home / HW / f"{HW}.ipynb", donors[role]))
        s.nbgrader(student, f"submit:{role}", "submit", HW)
    s.nbgrader(teacher, "collect", "collect", HW, cwd=s.course)
    s.course_cmd("grade", "grade", "submitted/", "--jobs", "1")
    s.course_cmd("feedback", "feedback", HW)
    s.course_cmd("export", "export", "grades.csv")
    s.nbgrader(teacher, "release_feedback", "release_feedback", HW, cwd=s.course)
    for role, student in s.students.items():
        s.nbgrader(student, f"fetch_feedback:{role}", "fetch_feedback", HW)
    _forge(s)
    s.nbgrader(teacher, "recollect", "collect", HW, "--CourseDirectory.submitted_directory=recollected", cwd=s.course)


def _forge(s: Semester) -> None:
    """After the semester, the mistaken student, knowing the exchange layout, drops a later
    'submission' under the right student's name into the inbound (their own notebook); the
    instructor collects again into recollected/."""
    victim = s.students["right"].name
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)
    stamp = later.strftime("%Y-%m-%d %H:%M:%S.%f %Z")
    forged = s.exchange / COURSE_ID / "inbound" / f"{victim}+{HW}+{stamp}+forged"
    code = ("import pathlib, shutil, sys\n"
            f"dest = pathlib.Path({str(forged)!r})\n"
            f"shutil.copytree(pathlib.Path.home() / {HW!r}, dest)\n"
            f"(dest / 'timestamp.txt').write_text({stamp!r})\n"
            "print('FORGED', dest)\n")
    s.as_user(s.students["mistake"], "forge", code)


# ---------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------


def test_release_fetch_submit_collect_grade(semester):
    """Each step up to grading succeeds, as the account whose job it is."""
    for step in ("generate", "release_assignment", "collect", "grade", "feedback",
                 *(f"{verb}:{role}" for role in semester.students for verb in ("fetch_assignment", "submit"))):
        semester.check(step)
    for role, student in semester.students.items():
        folder = semester.course / "submitted" / student.name / HW
        assert (folder / f"{HW}.ipynb").is_file(), f"collect did not bring {role}'s submission to {folder}"
        assert (folder / "timestamp.txt").is_file(), f"{role}'s submission has no timestamp.txt"


def _scores(semester) -> dict[str, tuple[float, float, float, float]]:
    """student -> (score, max_score, seconds late, late penalty)."""
    with Gradebook(f"sqlite:///{semester.course / 'gradebook.db'}", COURSE_ID) as gradebook:
        return {sub.student.id: (float(sub.score), float(sub.max_score), float(sub.total_seconds_late),
                                 float(sub.late_submission_penalty))
                for sub in gradebook.assignment_submissions(HW)}


def _automatic_points(semester, student: str) -> tuple[float, float]:
    """(score, max) of the cells graded automatically (written answers wait for a grader)."""
    with Gradebook(f"sqlite:///{semester.course / 'gradebook.db'}", COURSE_ID) as gradebook:
        grades = [g for nb in gradebook.find_submission(HW, student).notebooks for g in nb.grades
                  if not g.needs_manual_grade and g.manual_score is None]
        return sum(g.score for g in grades), sum(g.max_score for g in grades)


def test_grades_follow_the_answers_and_lateness(semester):
    """Right and late (right answers) get every automatic point before any penalty, the
    mistakes fewer; only the late submission is late against the gradebook's due date, and
    it loses the configured penalty (nbgrader_config.py: SubMarks, 1 point per started
    hour), which `course export` shows."""
    semester.check("set_due_date")
    scores = _scores(semester)
    right, mistake, late = (scores[semester.students[r].name] for r in ("right", "mistake", "late"))
    for role in ("right", "late"):
        got, most = _automatic_points(semester, semester.students[role].name)
        assert got == most > 0, f"{role}: {got}/{most} automatic points"
    assert right[0] == late[0] and mistake[0] < right[0], scores
    assert right[2] == mistake[2] == 0 and right[3] == mistake[3] == 0, scores
    assert late[2] > 0, f"the late submission is not late in the gradebook (due {semester.due}): {scores}"
    assert late[3] == 1, f"a few seconds late costs 1 point: {scores}"
    semester.check("export")
    with open(semester.course / "grades.csv", newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    exported = rows[semester.students["late"].name]
    assert (exported["raw_score"], exported["late_penalty"], exported["score"]) == \
        (f"{late[0]:g}", "1", f"{late[0] - 1:g}"), exported


def test_students_cannot_reach_each_other(semester):
    """The inbound folder cannot be listed by a student; another student's home (cache,
    secret, fetched notebook) cannot be read; the owner's files in the exchange cannot be
    written even with their exact name."""
    right, mistake = semester.students["right"], semester.students["mistake"]
    inbound = semester.exchange / COURSE_ID / "inbound"
    victim_submission = next(p for p in inbound.glob(f"{right.name}+{HW}+*")  # not the forged one (_forge)
                             if p.stat().st_uid == right.uid)
    code = ("import glob, os, pathlib\nfound = []\n"
            f"try:\n    found.append(('list inbound', os.listdir({str(inbound)!r})))\n"
            "except PermissionError:\n    pass\n"
            f"found += [('glob', p) for p in glob.glob({str(inbound)!r} + '/{right.name}+*')]\n"
            f"try:\n    found.append(('list home', os.listdir({str(right.home)!r})))\n"
            "except PermissionError:\n    pass\n"
            f"try:\n    open({str(victim_submission / f'{HW}.ipynb')!r}, 'a').write('x')\n"
            "    found.append(('wrote', 1))\n"
            "except PermissionError:\n    pass\n"
            "print('REACHED', found) if found else print('DENIED')\n")
    result = semester.as_user(mistake, "probe", code)
    assert result.returncode == 0 and result.stdout.strip() == "DENIED", result.stdout + result.stderr


def test_a_forged_submission_is_not_collected(semester):
    """A folder the mistaken student put in the inbound under the right student's name does
    not replace the right student's submission."""
    semester.check("forge")
    semester.check("recollect")
    collected = semester.course / "recollected" / semester.students["right"].name / HW / "timestamp.txt"
    mine = next((semester.students["right"].home / ".local/share/jupyter/nbgrader_cache" / COURSE_ID).glob(f"*+{HW}+*"))
    assert collected.read_text().strip() == (mine / "timestamp.txt").read_text().strip()


def test_feedback_shows_messages_not_hidden_tests(semester):
    """The mistaken student's feedback names the failing check's message and contains none
    of the hidden tests' lines (their seeds)."""
    semester.check("feedback")
    student = semester.students["mistake"].name
    page = (semester.course / "feedback" / student / HW / f"{HW}.html").read_text()
    graded = nbformat.read(semester.course / "autograded" / student / HW / f"{HW}.ipynb", as_version=4)
    messages = [o.evalue.splitlines()[0] for c in graded.cells for o in c.get("outputs", [])
                if o.output_type == "error" and c.metadata.get("nbgrader", {}).get("grade") and o.evalue]
    assert messages, "the mistaken submission failed no test cell"
    for message in messages:
        assert html.escape(message[:80]) in page or message[:80] in page, f"feedback lacks the message {message!r}"
    leaked = [line for line in hidden_test_lines(ROOT / "solutions" / HW / f"{HW}.ipynb")
              if line in page or html.escape(line) in page]
    assert not leaked, f"feedback shows hidden test code: {leaked}"


def test_each_student_fetches_own_feedback_only(semester):
    """release_feedback succeeds; each student's fetch_feedback brings exactly their own page."""
    semester.check("release_feedback")
    pages = {}
    for role, student in semester.students.items():
        semester.check(f"fetch_feedback:{role}")
        found = list((student.home / HW / "feedback").rglob("*.html"))
        assert len(found) == 1, f"{role} fetched {found}"
        pages[role] = found[0].read_text()
        own = (semester.course / "feedback" / student.name / HW / f"{HW}.html").read_text()
        assert pages[role] == own, f"{role} did not get their own feedback"
    assert len(set(pages.values())) == len(pages), "two students got the same feedback page"
