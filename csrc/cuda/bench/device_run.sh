#!/bin/bash
# One device call: build vllm._C, import it, collect-env, CUDA tests, kernel tests, op benchmark.
# Run from the repo root on the GPU machine with $OUT set; wheels for missing pure-Python deps
# are carried in .whl/. STAGES (default "build test bench") picks what runs.
set -o pipefail
export PYTHONUNBUFFERED=1
STAGES=${STAGES:-"build test bench"}
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
export VLLM_TARGET_DEVICE=cuda VLLM_CUDA_ARCHS=90 MAX_JOBS=16 TORCH_CUDA_ARCH_LIST=9.0
if [[ $STAGES == *build* ]]; then
  start=$(date +%s)
  timeout 420 python3 -m pip install --no-build-isolation --no-deps -v -e . > $OUT/build.log 2>&1
  echo "build rc=$? in $(( $(date +%s) - start ))s"
  grep -E "error|Error|FAILED" $OUT/build.log | head -40
  ls -la vllm/*.so
  readelf -d vllm/_C*.so | grep -E "NEEDED.*(stdc|c10)"; grep "C++ runtime" $OUT/build.log; env | grep -iE "^(LDFLAGS|CXXFLAGS|CFLAGS)=" || true
fi
python3 -c "import vllm._C, torch; print('import ok', torch.ops._C.paged_attention)" 2>&1 | tail -3
if [[ $STAGES == *test* ]]; then
  (python3 -m vllm.entrypoints.cli collect-env || vllm collect-env) > $OUT/collect_env.log 2>&1
  grep -iE "cuda|platform|rms_norm|silu|paged" $OUT/collect_env.log | head -30
  timeout 240 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_cuda_only.py > $OUT/test_cuda_only.log 2>&1
  echo "test_cuda_only rc=$?"; tail -25 $OUT/test_cuda_only.log
  timeout 150 python3 -m pytest -q -p no:cacheprovider tests/kernels --ignore=tests/kernels/test_cuda_only.py \
    > $OUT/test_kernels.log 2>&1
  echo "tests/kernels rc=$?"; tail -15 $OUT/test_kernels.log
fi
if [[ $STAGES == *bench* ]]; then
  timeout 200 python3 csrc/cuda/bench/bench_ops.py --json $OUT/ops_cuda.json ${BENCH_ONLY:+--only "$BENCH_ONLY"} \
    > $OUT/bench.log 2>&1
  echo "bench rc=$?"; cat $OUT/bench.log
  timeout 150 python3 -m vllm.entrypoints.cli bench ops --dtype bf16 --json $OUT/vllm_bench_ops.json \
    > $OUT/vllm_bench_ops.log 2>&1
  echo "vllm bench ops rc=$?"; tail -30 $OUT/vllm_bench_ops.log
fi
