#!/usr/bin/env bash
# One prepared check of the course on a GPU: correctness, grades and timings, in one folder.
#
#   bash scripts/gpu_check.sh [--quick] [--wheels DIR] OUTDIR     (OUTDIR defaults to $OUT)
#   bash scripts/gpu_check.sh --reference                         the CPU grades, into scripts/gpu_check_reference/
#   bash scripts/gpu_check.sh --download-wheels DIR               here, online: wheels the GPU image lacks
#
# Steps (each timed; a failed step does not stop the others):
#   pytest_gpu   `pytest -m gpu` (needs CUDA: skipped with the reason on a machine without it)
#   grading      `course generate` + `course grade examples/submissions` in a scratch copy of the
#                course, COURSE_DEVICE=<device>; every test cell's score must equal the committed
#                CPU reference (scripts/gpu_check_reference/cpu_scores.csv)
#   bench_*      conv vs F.conv2d, occlusion vs captum, training throughput, LoRA vs full, on <device>
#   lecture_*    the four lecture notebooks in full mode, each timed, with the kernel's CUDA peak memory
# --quick: hw1's two non-blank samples graded, benchmarks at tiny sizes, lecture 01 under
#          COURSE_FAST=1 (a smoke run that keeps the script from rotting; tests/test_gpu_check.py).
# The device is COURSE_DEVICE if set, else cuda where torch sees it, else cpu. A full run stops
# starting steps after GPU_CHECK_BUDGET_S seconds (default 450: it fits 8 minutes).
# Output in OUTDIR: results.txt (`name: value` lines), summary.md, gpu_check.log, grades_cells.csv.
# --wheels DIR (the GPU machine, no network): first make /tmp/gpu_check_venv on top of the system
# Python, install DIR/*.whl and this project into it (DIR from --download-wheels, carried along).
# Exit status: 0 when every step that ran passed, 1 otherwise, 2 on bad usage.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HELPER="$ROOT/scripts/gpu_check_helper.py"
REFERENCE="$ROOT/scripts/gpu_check_reference/cpu_scores.csv"
MODE=full WHEELS="" OUTDIR="${OUT:-}" DOWNLOAD=""
while (($#)); do
  case "$1" in
    --quick) MODE=quick ;;
    --reference) MODE=reference ;;
    --wheels) WHEELS="$2"; shift ;;
    --download-wheels) DOWNLOAD="$2"; shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    -*) echo "gpu_check: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) OUTDIR="$1" ;;
  esac
  shift
done

PYTHON="${PYTHON:-}"
[[ -z "$PYTHON" && -x "$ROOT/.venv/bin/python" ]] && PYTHON="$ROOT/.venv/bin/python"
PYTHON="${PYTHON:-python3}"

if [[ -n "$DOWNLOAD" ]]; then
  mkdir -p "$DOWNLOAD" && exec "$PYTHON" "$HELPER" wheels "$DOWNLOAD"
fi

if [[ -n "$WHEELS" ]]; then  # the GPU machine: its Python has torch but not nbgrader, captum, jupyter...
  ls "$WHEELS"/*.whl >/dev/null 2>&1 || { echo "gpu_check: no wheels in $WHEELS; make them with --download-wheels" >&2; exit 2; }
  VENV=/tmp/gpu_check_venv
  [[ -x "$VENV/bin/python" ]] || python3 -m venv --system-site-packages "$VENV" || exit 2
  "$VENV/bin/python" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check "$WHEELS"/*.whl || exit 2
  "$VENV/bin/python" -m pip install -q --no-index --no-deps --no-build-isolation --disable-pip-version-check -e "$ROOT" || exit 2
  PYTHON="$VENV/bin/python"
fi
COURSE="$(dirname "$PYTHON")/course"
[[ -x "$COURSE" ]] || COURSE="$(command -v course || true)"

if [[ "$MODE" == reference ]]; then
  OUTDIR="$(mktemp -d)"
  export COURSE_DEVICE=cpu
elif [[ -z "$OUTDIR" ]]; then
  echo "gpu_check: name an output folder (bash scripts/gpu_check.sh OUTDIR) or set OUT" >&2; exit 2
fi
mkdir -p "$OUTDIR" && OUTDIR="$(cd "$OUTDIR" && pwd)"
RESULTS="$OUTDIR/results.txt" LOG="$OUTDIR/gpu_check.log"
: >"$RESULTS"; : >"$LOG"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)
BUDGET="${GPU_CHECK_BUDGET_S:-450}"
[[ "$MODE" == full ]] || BUDGET=100000
FAILED=()

say() { echo "$1: $2" | tee -a "$RESULTS"; }

skip() {  # skip STEP REASON
  say "step.$1.status" skipped; say "step.$1.reason" "$2"
}

# run_step STEP CAP_S PREFIX COMMAND...: runs within the budget, appends its output to the log,
# copies its `name: value` lines into results (PREFIX. in front unless PREFIX is -).
run_step() {
  local step=$1 cap=$2 prefix=$3; shift 3
  local left=$((START + BUDGET - $(date +%s)))
  if ((left < 20)); then skip "$step" "out of time: the ${BUDGET} s budget was spent by earlier steps"; FAILED+=("$step"); return 1; fi
  ((cap > left)) && cap=$left
  [[ "$MODE" == full ]] || cap=3600  # the caps keep a GPU run inside 8 minutes; a busy CPU needs longer
  echo "=== $step ($(date -u +%H:%M:%S)): $*" >>"$LOG"
  local t0 t1 rc out="$WORK/step.out"
  t0=$(date +%s.%N)
  timeout --kill-after=10 "$cap" bash -c '"$@"' "$step" "$@" >"$out" 2>&1; rc=$?  # bash -c: steps may be functions
  t1=$(date +%s.%N)
  cat "$out" >>"$LOG"
  grep -E '^[A-Za-z0-9_.-]+: ' "$out" | if [[ "$prefix" == - ]]; then cat; else sed "s/^/$prefix./"; fi >>"$RESULTS"
  say "step.$step.seconds" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')"
  if ((rc == 0)); then say "step.$step.status" ok; return 0; fi
  FAILED+=("$step")
  say "step.$step.status" "failed"
  if ((rc == 124 || rc == 137)); then say "step.$step.reason" "timed out after ${cap} s"
  else say "step.$step.reason" "exit $rc: $(grep -v '^\s*$' "$out" | tail -n 1 | cut -c1-200)"; fi
  return 1
}

# -- where and what -------------------------------------------------------------------------------
CUDA_OK=$("$PYTHON" -c 'import torch; print(torch.cuda.is_available())' 2>/dev/null)
export COURSE_DEVICE="${COURSE_DEVICE:-$([[ "$CUDA_OK" == True ]] && echo cuda || echo cpu)}"
DEVICE="$COURSE_DEVICE"
export COURSE_QUIET=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1 OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
[[ "$MODE" == full ]] || export OMP_NUM_THREADS=1  # quick runs share a busy CPU; one thread is steadiest
say date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
say mode "$MODE"
say device "$DEVICE"
say cuda_available "${CUDA_OK:-unknown}"
say git_commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
say python "$PYTHON"
"$PYTHON" - <<'EOF' | tee -a "$RESULTS"
import os, torch
print(f"torch_version: {torch.__version__}")
print(f"cpu_cores: {os.cpu_count()}")
if torch.cuda.is_available():
    print(f"gpu_name: {torch.cuda.get_device_name()}")
    print(f"gpu_memory_gib: {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f}")
    print(f"cudnn_version: {torch.backends.cudnn.version()}")
EOF
[[ -x "$COURSE" ]] || { echo "gpu_check: no \`course\` command next to $PYTHON; install the project (make setup)" >&2; exit 2; }

# -- pytest -m gpu --------------------------------------------------------------------------------
if [[ "$MODE" == reference ]]; then :
elif [[ "$DEVICE" != cuda* ]]; then
  skip pytest_gpu "no CUDA device (COURSE_DEVICE=$DEVICE, torch.cuda.is_available() is $CUDA_OK): the gpu tests would all skip"
else
  run_step pytest_gpu 180 - env -C "$ROOT" "$PYTHON" -m pytest -m gpu -q -p no:cacheprovider --junitxml "$WORK/pytest_gpu.xml"
  [[ -f "$WORK/pytest_gpu.xml" ]] && "$PYTHON" "$HELPER" junit "$WORK/pytest_gpu.xml" pytest_gpu | tee -a "$RESULTS"
fi

# -- grading on the device against the CPU reference ----------------------------------------------
grade() {  # grade COURSE_DIR SUBMISSIONS JOBS ASSIGNMENT...
  local course=$1 subs=$2 jobs=$3; shift 3
  "$COURSE" generate --root "$course" "$@" && "$COURSE" grade "$subs" --root "$course" --jobs "$jobs" \
    && "$COURSE" export "$WORK/grades.csv" --root "$course" && "$PYTHON" "$HELPER" cells "$WORK/grades.csv" "$OUTDIR/grades_cells.csv"
}
export -f grade
export COURSE PYTHON HELPER WORK OUTDIR
mkdir -p "$WORK/course" "$WORK/submissions"
cp "$ROOT/nbgrader_config.py" "$WORK/course/" && cp -r "$ROOT/solutions" "$WORK/course/solutions"
if [[ "$MODE" == quick ]]; then
  ASSIGNMENTS=(hw1_cnn_arithmetic) STUDENTS=(alt_correct typical_mistakes) JOBS=1
else
  ASSIGNMENTS=() STUDENTS=() JOBS=$([[ "$DEVICE" == cuda* ]] && echo 4 || echo 2)
fi
for student_dir in "$ROOT"/examples/submissions/*/; do
  student=$(basename "$student_dir")
  ((${#STUDENTS[@]})) && [[ ! " ${STUDENTS[*]} " == *" $student "* ]] && continue
  for hw_dir in "$student_dir"*/; do
    hw=$(basename "$hw_dir")
    ((${#ASSIGNMENTS[@]})) && [[ ! " ${ASSIGNMENTS[*]} " == *" $hw "* ]] && continue
    mkdir -p "$WORK/submissions/$student" && cp -r "$hw_dir" "$WORK/submissions/$student/$hw"
  done
done
run_step grading 240 - grade "$WORK/course" "$WORK/submissions" "$JOBS" "${ASSIGNMENTS[@]}"
if [[ "$MODE" == reference ]]; then
  if [[ " ${FAILED[*]-} " == *" grading "* ]]; then cat "$LOG" >&2; exit 1; fi
  mkdir -p "$(dirname "$REFERENCE")" && cp "$OUTDIR/grades_cells.csv" "$REFERENCE"
  grep -E '^(date|device|git_commit|torch_version|cpu_cores|grades\.cells|grades\.submissions|step\.grading\.seconds): ' \
    "$RESULTS" >"${REFERENCE%.csv}.txt"
  echo "wrote $REFERENCE ($(($(wc -l <"$REFERENCE") - 1)) cells)"
  rm -rf "$OUTDIR"; exit 0
fi
if [[ -f "$OUTDIR/grades_cells.csv" ]]; then
  run_step grades_vs_cpu 30 - "$PYTHON" "$HELPER" compare "$REFERENCE" "$OUTDIR/grades_cells.csv"
else
  skip grades_vs_cpu "grading produced no scores (see step grading in gpu_check.log)"; FAILED+=(grades_vs_cpu)
fi

# -- benchmarks that mean something on a GPU --------------------------------------------------------
QUICK=(); [[ "$MODE" == quick ]] && QUICK=(--quick)
for bench in conv occlusion train_throughput lora; do
  run_step "bench_$bench" 90 "bench_$bench" env -C "$ROOT/benchmarks" "$PYTHON" "bench_$bench.py" --device "$DEVICE" "${QUICK[@]}"
done

# -- lectures, each timed -------------------------------------------------------------------------
if [[ "$MODE" == quick ]]; then NOTEBOOKS=("$ROOT"/notebooks/01_*.ipynb) FAST=(--fast); else NOTEBOOKS=("$ROOT"/notebooks/0*.ipynb) FAST=(); fi
for nb in "${NOTEBOOKS[@]}"; do
  name=$(basename "$nb" .ipynb)
  run_step "lecture_$name" 240 - "$PYTHON" "$HELPER" notebook "$nb" "lecture.$name" "${FAST[@]}"
done

# -- verdict --------------------------------------------------------------------------------------
say total_seconds "$(($(date +%s) - START))"
if ((${#FAILED[@]})); then say overall failed; say failed_steps "${FAILED[*]}"; else say overall ok; fi
"$PYTHON" "$HELPER" summary "$RESULTS" "$OUTDIR/summary.md"
echo "gpu_check: $OUTDIR/summary.md"
((${#FAILED[@]} == 0))
