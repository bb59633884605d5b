#!/usr/bin/env bash
# The GPU check: everything the engine must show on a GPU, in one run of at most ~9 minutes of
# wall time (what one device call gets, build included). Stages run in order of how much their
# verdict matters, each under its own `timeout` and a shared deadline, and each appends its rows
# to $OUT/summary.md the moment it ends, so a killed run still brings back every stage before it.
#
#   on the GPU machine:  bash benchmarks/gpu_check.sh              (repo root; OUT defaults below)
#   dry run on a CPU:    GPU_CHECK_DRY_RUN=1 bash benchmarks/gpu_check.sh   (.ci/run runs it)
#
# Stage (limit)            what                                                    expected
# 1 build (150 s)          pip install -e . with the CUDA kernels; stop unless       ~1.5 min
#                          sportsfusion._C.with_cuda() (SPORTSFUSION_REQUIRE_CUDA=1)
# 2 correctness (180 s)    the gpu-marked tests: CUDA extension, compiled Triton     ~2.5 min
#                          and every model path against the references (no aot)
# 3 op benchmarks (120 s)  copy + bf16 matmul peaks, stems, LRN+pool, every conv      ~1.5 min
#                          layer of slow/early fusion against cuDNN (bf16, CL)
# 4 model benchmarks (180) every model full vs multires, forward + train step, bf16   ~2.5 min
#                          channels-last, reference vs fused ops; slow fusion eager
#                          vs fused vs torch.compile (default mode, multires only)
# 5 export (45 s)          multires slow at paper size: onnxruntime vs the PyTorch  ~0.5 min
#                          runtime on CUDA (bf16, CUDA graphs): largest difference
#   latency (60 s)         batch-1 latency, multires single and slow: PyTorch CUDA   ~0.5 min
#                          graphs against onnxruntime (CPU provider there)
#
# Where the minutes go. Triton compiles one binary per (kernel, constexprs, dtype, alignment)
# and autotune config; SPORTSFUSION_AUTOTUNE=quick keeps 3 of the conv's 12 configs and 2 of the
# stem's 4. Counted from the parametrisations: stage 2 ~150 binaries (conv ~50 one-config tests,
# 3 configs x 3 layers of test_every_cuda_config, 3 x 13 full-size layers; stem ~40; model paths
# ~20), stage 3 ~40 (12 layer geometries x 3), stage 4 ~20 new (the 2-D tower layers x 3) plus
# two inductor compiles of slow fusion (~40 s each on 16 cores). A Triton compile for sm_90 takes
# ~0.65 s per config on one core (python -m sportsfusion.ops.aot: 24 configs in 15.4 s on
# the 2-core CI machine), serial within a process. The build is nvcc on 2 .cu files plus 5 torch
# C++ sources at MAX_JOBS=16. The limits add to more than 9 minutes: GPU_CHECK_BUDGET_S (510 s)
# is the deadline, and a stage gets what is left of it, so a slow stage costs the later ones.
#
# PyAV: the GPU machine has none. If .whl/ holds its wheel (bash ../shared/device/stage-pyav.sh,
# then carry ".whl"), it is installed to /tmp/site; else the tests that need videos skip.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
DRY=${GPU_CHECK_DRY_RUN:-0}
BUDGET=${GPU_CHECK_BUDGET_S:-510}
SUMMARY="$OUT/summary.md"
START=$(date +%s)
PY=${PYTHON:-python3}
export SPORTSFUSION_AUTOTUNE=quick SPORTSFUSION_REQUIRE_CUDA=1 PYTHONUNBUFFERED=1
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} MAX_JOBS=${MAX_JOBS:-16}
unset TRITON_INTERPRET

# What each stage runs. Tests: the gpu marker, minus export (stage 5 runs it); benchmarks by file.
TEST_PATHS=(tests/ops tests/models tests/data tests/test_host_sync.py tests/test_train.py)
# One benchmark per op, named after it (sportsfusion/ops/<op>.py -> benchmarks/bench_<op>.py).
OP_BENCH=(benchmarks/bench_peaks.py)
for op in sportsfusion/ops/[a-z]*.py; do
    op=$(basename "$op" .py)
    [ -f "benchmarks/bench_$op.py" ] && OP_BENCH+=("benchmarks/bench_$op.py")
done
MODEL_BENCH=(benchmarks/bench_peaks.py benchmarks/bench_models.py benchmarks/bench_slow_fusion.py)
MODEL_SELECT="not (compiled and full)"  # one inductor compile per mode; the full frame's adds ~90 s
EXPORT_TESTS=(tests/export/test_runtime.py)
EXPORT_BENCH=(benchmarks/bench_runtimes.py)
EXPORT_SELECT="latency and multires"
PYTEST=(-q -p no:cacheprovider -rfEs)  # -rfEs: FAILED/ERROR lines and skip reasons both
BENCH=(--benchmark-columns=median,iqr,rounds --benchmark-sort=name)

row() { echo "$*" >> "$SUMMARY"; }
LAST_CMD=""
OUTCOME='^(FAILED|ERROR) |[0-9]+ (passed|failed|errors?|skipped|deselected|tests? collected)|no tests ran'

left() { echo $(( BUDGET - ($(date +%s) - START) )); }

# stage NAME LIMIT_S CMD...: run CMD under min(LIMIT, what is left of the budget), log it, and
# append a row to the summary; returns CMD's exit status (124 when the timeout ended it).
stage() {
    local name=$1 limit=$2; shift 2
    local budget; budget=$(left)
    (( budget < limit )) && limit=$budget
    if (( limit < 10 )); then
        row "| $name | not run | 0 | - | out of budget |"
        return 124
    fi
    echo "== $name (limit ${limit}s, $(date +%T))"
    LAST_CMD="$*"
    local t0 rc; t0=$(date +%s)
    timeout --signal=INT --kill-after=15 "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    local last; last=$(grep -v '^\s*$' "$OUT/$name.log" | tail -1 | tr '|' '/' | cut -c1-160)
    row "| $name | $rc | $(( $(date +%s) - t0 )) | $limit | $last |"
    echo "   exit $rc: $last"
    return $rc
}

# The lines of a log worth reading in the summary: failures and the closing tables.
details() {
    local name=$1 pattern=$2
    { echo; echo "### $name"; echo '```'; echo "\$ $LAST_CMD" | cut -c1-400
      grep -E "$pattern" "$OUT/$name.log" | head -120; echo '```'; } >> "$SUMMARY"
}

{ echo "# GPU check $(date -u +%FT%TZ)"; echo
  [ "$DRY" = 1 ] && echo "**dry run** on $(uname -n): collection and plan only, PyAV blocked" && echo
  echo "| stage | exit | seconds | limit | last line |"; echo "|---|---|---|---|---|"; } > "$SUMMARY"

if [ "$DRY" = 1 ]; then
    # What the GPU machine lacks, made absent here: a shadow package whose import fails.
    mkdir -p "$OUT/no-pyav/av"
    echo 'raise ModuleNotFoundError("No module named av (blocked: the GPU machine has none)", name="av")' \
        > "$OUT/no-pyav/av/__init__.py"
    export PYTHONPATH="$OUT/no-pyav${PYTHONPATH:+:$PYTHONPATH}"
    COLLECT=(--collect-only)
elif ls .whl/av-*.whl > /dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
        .whl/av-*.whl && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi

# 0. environment
stage environment 30 bash -c "nvidia-smi -L 2>/dev/null || echo 'no nvidia-smi'; \"$PY\" -c \"
import torch, triton
try:
    import av
    av = av.__version__
except ImportError:
    av = None
dev = torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device'
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__,
      'pyav', av, '|', dev)\""

# 1. build
if [ "$DRY" = 1 ]; then
    stage build 60 "$PY" -c "
import torch, sportsfusion._C as c
try:
    import av
    raise SystemExit('PyAV is importable: the dry run would not show what the GPU machine sees')
except ImportError:
    pass
print('dry run: extension importable, with_cuda', c.with_cuda(), '(a GPU build must say True)')"
else
    stage build 150 "$PY" -m pip install -v --no-build-isolation --no-deps -e . &&
    stage extension 30 "$PY" -c "
import torch, sportsfusion._C as c
print('extension with CUDA:', c.with_cuda())
raise SystemExit(0 if c.with_cuda() else 'the extension has no CUDA kernels: stopping')"
    rc=$?
    if (( rc != 0 )); then
        details build 'sportsfusion:|error:|Error' ; echo "BUILD FAILED: see $SUMMARY"; exit 1
    fi
fi

# 2. correctness
stage correctness 180 "$PY" -m pytest "${TEST_PATHS[@]}" -m gpu "${PYTEST[@]}" ${COLLECT[@]+"${COLLECT[@]}"}
details correctness "$OUTCOME"

# 3. op benchmarks
stage op_benchmarks 120 "$PY" -m pytest "${OP_BENCH[@]}" "${PYTEST[@]}" "${BENCH[@]}" \
    --benchmark-json="$OUT/op_benchmarks.json" ${COLLECT[@]+"${COLLECT[@]}"}
details op_benchmarks "$OUTCOME|roofline|GB/s|clips/s on|^[a-z_0-9-]+ +[a-z_0-9-]+ +[0-9.]+ms "

# 4. model benchmarks
stage model_benchmarks 180 "$PY" -m pytest "${MODEL_BENCH[@]}" -k "$MODEL_SELECT" "${PYTEST[@]}" \
    "${BENCH[@]}" --benchmark-json="$OUT/model_benchmarks.json" ${COLLECT[@]+"${COLLECT[@]}"}
details model_benchmarks "$OUTCOME|multires/full|clips/s on|roofline|^[a-z_0-9-]+ +[a-z_0-9-]+ +[0-9.]+ms "

# 5. export: the ONNX file against the PyTorch runtime, then batch-1 latency of both
stage export 45 "$PY" -m pytest "${EXPORT_TESTS[@]}" -m gpu -s "${PYTEST[@]}" \
    ${COLLECT[@]+"${COLLECT[@]}"}
details export "$OUTCOME|max \\|"
stage latency 60 "$PY" -m pytest "${EXPORT_BENCH[@]}" -k "$EXPORT_SELECT" "${PYTEST[@]}" \
    "${BENCH[@]}" --benchmark-json="$OUT/latency.json" ${COLLECT[@]+"${COLLECT[@]}"}
details latency "$OUTCOME|clips/s on|roofline|^[a-z_0-9-]+ +[a-z_0-9-]+ +[0-9.]+ms |^bench_runtime"

row ""
row "total $(( $(date +%s) - START )) s of a ${BUDGET} s budget"
cat "$SUMMARY"
# The run's verdict: any stage that failed or did not finish.
! grep -qE '^\| [a-z_]+ \| ([1-9][0-9]*|not run) \|' "$SUMMARY"
