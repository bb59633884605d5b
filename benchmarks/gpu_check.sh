#!/usr/bin/env bash
# Everything issues 4 and 5 must show on the GPU machine, in one call: build the extension with
# CUDA, run the GPU tests (CUDA + compiled Triton against the references) and the benchmarks.
# Writes a short summary to stdout and full logs under $OUT (default /tmp/gpu_check).
#
#   device run:  bash benchmarks/gpu_check.sh            (repo root; TORCH_CUDA_ARCH_LIST=9.0)
#   quick:       GPU_CHECK_BENCH=0 bash benchmarks/gpu_check.sh   (tests only)
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} MAX_JOBS=${MAX_JOBS:-16}
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
step() { echo "== $1 ($(date +%T))"; }

step "environment"
{ nvidia-smi; python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda',
torch.version.cuda, 'triton', triton.__version__, torch.cuda.get_device_name())"; } \
    > "$OUT/env.log" 2>&1
tail -1 "$OUT/env.log"

step "build (pip install --no-build-isolation --no-deps -e .)"
if ! python3 -m pip install --no-build-isolation --no-deps -e . > "$OUT/build.log" 2>&1; then
    tail -40 "$OUT/build.log"; echo "BUILD FAILED"; exit 1
fi
python3 -c "import torch, sportsfusion._C as c; print('extension with CUDA:', c.with_cuda())"

step "GPU tests: ops and model paths"
python3 -m pytest tests/ops tests/models/test_op_paths.py -q -rs -p no:cacheprovider \
    > "$OUT/tests.log" 2>&1
echo "tests exit $?: $(tail -1 "$OUT/tests.log")"
grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | head -20

[ "${GPU_CHECK_BENCH:-1}" = 1 ] || exit 0
step "benchmarks: peaks, stems, LRN+pool, conv layers, slow fusion"
python3 -m pytest benchmarks/bench_peaks.py benchmarks/bench_fovea_context.py \
    benchmarks/bench_lrn_pool.py benchmarks/bench_conv3d_fused.py benchmarks/bench_slow_fusion.py \
    -q -p no:cacheprovider --benchmark-json="$OUT/bench.json" --benchmark-columns=median,iqr,rounds \
    > "$OUT/bench.log" 2>&1
echo "benchmarks exit $?"
# The closing tables (roofline and clips/s) come last in the log.
sed -n '/roofline\|GB\/s\|clips\/s on/,$p' "$OUT/bench.log" | tail -80
