"""The warm grading worker: `python -m course_lib.autograde.worker`.

It imports torch, numpy, matplotlib and course_lib once, snapshots the state the checks
rely on (`execute.Pristine`), says `Ready`, then reads `Job`s (one JSON line each) on
stdin and answers each with one `Result` line on its original stdout (`protocol.py`). For every
job it forks a fresh child that drops to the job's unprivileged uid, enters the job's working copy, sets resource limits
and runs the notebook's cells (`execute.run_cells`). The worker watches the child: a cell
that outlives its limit, or a submission that outlives its wall-clock budget, is killed.
If the child dies inside a cell (a segfault, `os._exit` through ctypes, the CPU limit, a
kill), the submission is run again from the top without that cell, which is marked failed
with the reason, so a crash costs the cell it happened in, not the whole submission.

The worker never scores: it returns outputs. Run by `sandbox.py`, inside bubblewrap when
it is installed.
"""

from __future__ import annotations

import ctypes
import os
import resource
import select
import signal
import sys
import time
import traceback

from course_lib.autograde.protocol import (
    CellOutput,
    CellStart,
    Crash,
    Done,
    FrameReader,
    FrameTooLarge,
    Job,
    ProtocolError,
    Ready,
    Result,
    decode,
    send_frame,
    write_line,
)

_EXIT = os._exit  # the real one, whatever student code does to os._exit later
GRACE = 5.0       # seconds past a cell's own limit before its process is killed
MAX_ATTEMPTS = 4


def warm_up() -> float:
    start = time.perf_counter()
    os.environ.setdefault("MPLBACKEND", "Agg")
    import importlib
    for name in ("numpy", "torch", "torch.nn.functional", "matplotlib", "matplotlib.pyplot", "course_lib",
                 "course_lib.grading", "course_lib.arithmetic", "course_lib.layers", "course_lib.initialization",
                 "course_lib.augment", "course_lib.transfer", "course_lib.data", "course_lib.models",
                 "course_lib.device", "course_lib.visualize", "course_lib.train",
                 "torchvision.transforms.v2"):  # what course_lib.augment imports when hw3 first augments
        try:
            importlib.import_module(name)
        except Exception as error:  # noqa: BLE001 - a missing optional module only costs warmth
            print(f"worker: could not pre-import {name}: {error}", file=sys.stderr)
    return time.perf_counter() - start


def _subreaper() -> None:
    """Orphans of a child (a fork bomb's) are re-parented to the worker, which reaps them."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):  # no libc to load, or no prctl in it (not Linux)
        pass


def _reap_all() -> None:
    from course_lib.autograde.execute import reap_exited_children

    reap_exited_children()


def _kill_uid(uid: int | None) -> None:
    """Kill every process of the job's uid (what a fork bomb left behind)."""
    if uid is None or os.getuid() != 0:
        return
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            try:
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)  # every process this uid may signal, i.e. its own
            except BaseException:  # noqa: BLE001 - the forked killer must reach _EXIT, whatever happens
                pass
            _EXIT(0)
        os.waitpid(pid, 0)
        time.sleep(0.05)
        _reap_all()


def _child(job: Job, fd: int, pristine, skip: dict[int, str]) -> None:
    os.setpgid(0, 0)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    workdir, uid = job.workdir, job.uid
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.chdir(workdir)
    os.environ.update(HOME=workdir, TMPDIR=workdir, MPLCONFIGDIR=workdir)
    devnull = os.open(os.devnull, os.O_RDONLY)
    log = os.open(os.path.join(workdir, ".stdio.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.closerange(3, fd)
    os.closerange(fd + 1, 4096)  # the worker's protocol pipes are out of reach
    _limits(job)
    from course_lib.autograde import execute
    execute.run_cells(job.cells, fd, pristine, skip, job.limits.cell_timeout, job.limits.output_cap,
                      own_uid=uid is not None and os.getuid() == uid != 0)


def _vm_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _limits(job: Job) -> None:
    mb = 1024 * 1024
    cpu = int(job.limits.wall_timeout) + 1
    limits = {
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_CPU: cpu,
        resource.RLIMIT_AS: _vm_bytes() + job.limits.memory_mb * mb,
        resource.RLIMIT_FSIZE: job.limits.fsize_mb * mb,
    }
    if job.limits.nproc:
        limits[resource.RLIMIT_NPROC] = job.limits.nproc
    for which, value in limits.items():
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value if which != resource.RLIMIT_CPU else value + 1))


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        meaning = {"SIGSEGV": "a segmentation fault", "SIGXCPU": "the CPU-time limit", "SIGBUS": "a bus error",
                   "SIGKILL": "killed", "SIGABRT": "aborted", "SIGXFSZ": "the file-size limit"}.get(name, "a signal")
        return f"the grading process died in this cell ({name}: {meaning})"
    return f"the grading process exited in this cell (status {os.WEXITSTATUS(status)})"


def _attempt(job: Job, pristine, skip: dict[int, str], deadline: float) -> tuple[dict, int | None, str | None]:
    """One run of the notebook. Returns ({index: outputs}, index of the cell it died in, why)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(read_end)
            _child(job, write_end, pristine, skip)
        except BaseException:  # noqa: BLE001 - any failure of the child is reported as a Crash
            code = 70
            try:
                send_frame(write_end, Crash(traceback.format_exc()[-4000:]))
            except BaseException:  # noqa: BLE001 - the parent may be gone; the child must still reach _EXIT
                pass
        _EXIT(code)
    os.close(write_end)
    done, current, started, ended, why = {}, None, time.monotonic(), False, None
    reader = FrameReader(cap=4 * job.limits.output_cap + (1 << 20))
    cell_timeout = job.limits.cell_timeout
    while True:
        now = time.monotonic()
        limit = deadline if current is None else min(deadline, started + cell_timeout + GRACE)
        if now >= limit:
            why = ("the submission ran out of its wall-clock time" if limit == deadline
                   else f"this cell ran longer than {cell_timeout:g} s and ignored the interrupt")
            break
        ready, _, _ = select.select([read_end], [], [], min(limit - now, 1.0))
        if not ready:
            continue
        data = os.read(read_end, 1 << 20)
        if not data:
            break
        try:
            events = reader.feed(data)
        except (FrameTooLarge, ProtocolError):
            why = "the grading process wrote something the grader could not read"
            break
        for event in events:
            if isinstance(event, CellStart):
                current, started = event.index, time.monotonic()
            elif isinstance(event, CellOutput) and event.index == current:
                done[current], current = event.outputs, None
            elif isinstance(event, Done):
                ended = True
            elif isinstance(event, Crash):
                print("worker: the grading child failed outside student code:", event.text, file=sys.stderr)
                why = "the grader's child process failed to set up (see the worker log)"
        if why or ended:
            break
    os.close(read_end)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    _, status = os.waitpid(pid, 0)
    _kill_uid(job.uid)
    _reap_all()
    if ended:
        return done, None, None
    return done, current, why or _describe(status)


def run_job(job: Job, pristine) -> Result:
    start = time.monotonic()
    deadline = start + job.limits.wall_timeout
    skip, notes, done = {}, [], {}
    for attempt in range(MAX_ATTEMPTS):
        done, died_in, why = _attempt(job, pristine, skip, deadline)
        if died_in is None and why is None:
            break
        if died_in is None or time.monotonic() >= deadline or attempt == MAX_ATTEMPTS - 1:
            notes.append(f"stopped: {why}")
            break
        skip[died_in] = why
        notes.append(f"cell {died_in}: {why}; graded again without it")
    return Result(job.id, done, skip, notes, time.monotonic() - start, attempt + 1)


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed goes to the worker's log, not the protocol
    _subreaper()
    seconds = warm_up()
    from course_lib.autograde.execute import Pristine
    pristine = Pristine()
    sandbox = os.environ.get("COURSE_SANDBOX", "unknown")
    write_line(protocol, Ready(os.getpid(), seconds, sandbox))
    for line in sys.stdin:
        if not line.strip():
            continue
        job = decode(line)
        try:
            result = run_job(job, pristine)
        except Exception:  # noqa: BLE001 - any failure is this job's error, not the worker's end
            result = Result(job.id, error=traceback.format_exc())
        write_line(protocol, result)


if __name__ == "__main__":
    main()
