"""Start warm grading workers (`worker.py`), inside bubblewrap when it is installed.

With bubblewrap (`bwrap`, Debian/Ubuntu package `bubblewrap`) the worker runs in new
network, PID, IPC and UTS namespaces (no network, no view of other processes) and a new
mount namespace that holds only: the system's /usr and /etc, the Python installation, the
virtual environment and the `course_lib` package, all read-only, and the worker's own
scratch folder, writable. The course root (solutions/, gradebook.db, submitted/,
autograded/) and other students' files are not in it. `--die-with-parent` ends it with
the grading process.

Without bubblewrap the worker runs directly (log line: "filesystem sandbox: OFF"): each
submission still runs in a forked child with resource limits, in its own scratch folder,
and, when grading runs as root, as an unprivileged uid that cannot write the gradebook or
other students' folders (but can read what is world-readable).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

import course_lib
from course_lib.autograde.protocol import Job, Limits, ProtocolError, Ready, Result, decode, write_line

UID_BASE, UID_COUNT = 61000, 4000  # children run as one of these uids (no login, no files of their own)


def bwrap_path() -> str | None:
    if os.environ.get("COURSE_SANDBOX", "").lower() in ("off", "none", "0"):
        return None
    return shutil.which("bwrap")


def can_drop_uid() -> bool:
    """Whether submissions can run as an unprivileged uid: grading runs as root, and the
    interpreter is reachable after the switch (bubblewrap mounts it, or it is world-readable,
    unlike e.g. /root/.pyenv)."""
    if os.getuid() != 0:
        return False
    return bwrap_path() is not None or _world_readable(Path(sys.base_prefix))


def _lease_folder() -> Path:
    folder = Path("/run" if os.access("/run", os.W_OK) else tempfile.gettempdir()) / "course-grade-uids"
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o077:
        raise WorkerError(f"{folder} must be a directory owned by root with mode 0700; remove it and grade again")
    return folder


class UidLease:
    """An unprivileged uid that one warm worker holds, by an exclusive lock on a file named
    after it, for as long as it lives. No two workers on this host, in this grading run or
    any other (a second instructor, another Dask worker), share a uid, so the process limit
    and the kill after each submission, both per uid, only ever touch one worker's children."""

    def __init__(self):
        folder = _lease_folder()
        for uid in range(UID_BASE, UID_BASE + UID_COUNT):
            fd = os.open(folder / str(uid), os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uid, self._fd = uid, fd
            return
        raise WorkerError(f"all {UID_COUNT} grading uids from {UID_BASE} are in use on this host")

    def release(self) -> None:
        os.close(self._fd)


def _world_readable(path: Path) -> bool:
    path = path.resolve()
    return all(p.stat().st_mode & 0o005 == 0o005 for p in (path, *path.parents) if p.exists())


def describe(uid_drop: bool = True) -> str:
    if bwrap_path():
        return ("filesystem sandbox: bubblewrap (no network; course root, gradebook and other submissions not "
                "mounted; read-only system, Python and course_lib; writable scratch only)")
    if os.getuid() == 0 and not _world_readable(Path(sys.base_prefix)):
        return ("filesystem sandbox: OFF (bubblewrap not found or COURSE_SANDBOX=off; install the 'bubblewrap' "
                "package). Submissions run with resource limits in a scratch folder, as root because the "
                "interpreter is not world-readable: a fork bomb is bounded only by the wall clock")
    as_uid = ", as an unprivileged uid" if os.getuid() == 0 else ""
    return ("filesystem sandbox: OFF (bubblewrap not found or COURSE_SANDBOX=off; install the 'bubblewrap' "
            "package). Submissions run with resource limits in a scratch folder" + as_uid)


def _binds() -> list[str]:
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.prefix),
             Path(course_lib.__file__).resolve().parent, Path(sys.executable).resolve().parent}
    args = []
    for top in ("usr", "etc", "bin", "sbin", "lib", "lib64", "lib32"):
        path = Path("/") / top
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    made = set()
    for path in sorted(paths, key=lambda p: len(str(p))):
        if not str(path).startswith(("/usr/", "/etc/")) and path.exists():
            for parent in reversed(path.parents):  # bwrap would create them 0700: unreadable after the uid drop
                if str(parent) not in ("/", "/usr", "/etc") and parent not in made:
                    made.add(parent)
                    args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", str(path), str(path)]
            made.add(path)
    return args


def worker_command(scratch: Path) -> list[str]:
    python = [sys.executable, "-m", "course_lib.autograde.worker"]
    bwrap = bwrap_path()
    if bwrap is None:
        return python
    caps = []
    if os.getuid() == 0:  # the worker forks children that drop to the slot's uid, and kills them
        caps = ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_KILL"]
    return [bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
            *caps, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
            *_binds(),  # after the tmpfs: a checkout or venv under /tmp must stay visible
            *_parents(scratch), "--bind", str(scratch), str(scratch), "--chdir", str(scratch), *python]


def _parents(path: Path) -> list[str]:
    """Create the scratch folder's parents traversable (bwrap would make them 0700)."""
    args = []
    for parent in reversed(Path(path).parents):
        if str(parent) not in ("/", "/tmp"):
            args += ["--perms", "0711", "--dir", str(parent)]
    return args


def worker_env(scratch: Path, threads: int = 1) -> dict:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ", "COURSE_DEVICE")}
    env.update(HOME=str(scratch), TMPDIR=str(scratch), MPLBACKEND="Agg", MPLCONFIGDIR=str(scratch),
               COURSE_QUIET="1", PYTHONWARNINGS="ignore", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONDONTWRITEBYTECODE="1", COURSE_SANDBOX="bubblewrap" if bwrap_path() else "off")
    return env


class WorkerError(RuntimeError):
    pass


class Worker:
    """One warm worker process for one slot; `run(...)` is called from one thread at a time."""

    def __init__(self, slot: int, scratch: Path, limits: Limits):
        self.slot, self.limits = slot, limits
        self.lease = UidLease() if can_drop_uid() else None  # first: if none is free, nothing is left behind
        self.uid = self.lease.uid if self.lease else None
        self.scratch = Path(scratch) / f"slot{slot}"
        self.scratch.mkdir(parents=True, exist_ok=True)
        os.chmod(self.scratch, 0o711)
        self.log_path = Path(scratch) / f"worker{slot}.log"
        self.process = None
        self.info: Ready | None = None
        self.jobs = 0
        self.closed = False

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(worker_command(self.scratch), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=log, env=worker_env(self.scratch, self.limits.threads or 1), text=True,
                                        bufsize=1, cwd=self.scratch)
        log.close()
        line = self.process.stdout.readline()
        try:
            self.info = decode(line)
        except ProtocolError:
            self.info = None
        if not isinstance(self.info, Ready):
            raise WorkerError(f"the grading worker did not start; see {self.log_path}:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def workdir(self, name: str) -> Path:
        """A fresh working copy folder for one submission, owned by the slot's uid."""
        folder = self.scratch / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(mode=0o700)
        return folder

    def run(self, job_id: str, cells: list, workdir: Path) -> Result:
        """Run one notebook's `cells` in `workdir` (made by `workdir()`, the submission's files in it)."""
        if self.closed:
            raise WorkerError("the grading worker was closed (the grading run ended)")
        if self.process is None or self.process.poll() is not None:
            self.start()
        if self.uid is not None:
            for path in (workdir, *workdir.rglob("*")):
                os.chown(path, self.uid, self.uid, follow_symlinks=False)
        job = Job(job_id, cells, str(workdir), replace(self.limits, nproc=self._nproc()), self.uid)
        timer = threading.Timer(self.limits.wall_timeout * 2 + 60, self.kill)
        timer.start()
        try:
            write_line(self.process.stdin, job)
            line = self.process.stdout.readline()
        except (OSError, ValueError):  # a broken pipe, or the worker killed and its pipes closed
            line = ""
        finally:
            timer.cancel()
        self.jobs += 1
        if not line:
            self.kill()
            raise WorkerError(f"the grading worker stopped while grading; worker log:\n{self._log_tail()}")
        result = decode(line)
        if not isinstance(result, Result):
            raise WorkerError(f"the grading worker answered {type(result).__name__}, not a Result")
        return result

    def _nproc(self) -> int:
        if self.uid is None:  # RLIMIT_NPROC would count every process of the invoking user
            return 0
        return self.limits.nproc + 2 * (self.limits.threads or 1)  # threads count: room for torch's pools

    def kill(self) -> None:
        """Stop the worker now; a job it was running ends with a WorkerError."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        """Let an idle worker exit (kill it after 10 s), and give its uid back."""
        self.closed = True
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.lease is not None:
            self.lease.release()
            self.lease = None
