#!/bin/bash
# One GPU-machine call: build vllm._C, run the suites on the cuda backend, then
# `vllm bench throughput` against Hugging Face transformers on the same random checkpoint.
# Usage (repo root, $OUT set): SHAPES="qwen2.5-0.5b" bash benchmarks/scripts/device_e2e.sh
# Optional: TESTS=..., OPS=1 (vllm bench ops), GEMV=1 (gemv_bench.py), RUNS=n (throughput runs),
# TIMELINE=1 (step_timeline.py), PROFILE=<shape> (decode-step torch.profiler),
# SKIP_HF=1, SKIP_BUILD=1, BENCH_ARGS=...
set -o pipefail
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
export VLLM_TARGET_DEVICE=cuda VLLM_CUDA_ARCHS=90 MAX_JOBS=16 TORCH_CUDA_ARCH_LIST=9.0
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  timeout 300 python3 -m pip install --no-build-isolation --no-deps -e . > $OUT/build.log 2>&1
  echo "build rc=$?"
fi
python3 -m vllm.entrypoints.cli collect-env > $OUT/collect_env.log 2>&1; grep -E "Platform|Attention|rms_norm" $OUT/collect_env.log
if [[ ${OPS:-0} == 1 ]]; then
  # graph-captured, L2-rotating kernel timings (see benchmarks/ops_cuda.md), then `vllm bench ops`
  timeout 200 python3 csrc/cuda/bench/bench_ops.py --json $OUT/ops_cuda.json ${OPS_ONLY:+--only "$OPS_ONLY"} \
    > $OUT/bench_ops.log 2>&1
  echo "bench_ops rc=$?"; cat $OUT/bench_ops.log
  timeout 120 python3 -m vllm.entrypoints.cli bench ops --dtype bf16 --json $OUT/ops.json > $OUT/ops.log 2>&1
  echo "ops rc=$?"; grep -iE "paged|rms|silu|cache" $OUT/ops.log | head -20
fi
if [[ ${GEMV:-0} == 1 ]]; then  # decode-sized GEMMs: cuBLAS vs _C::gemv
  timeout 150 python3 benchmarks/scripts/gemv_bench.py > $OUT/gemv_bench.log 2>&1
  echo "gemv_bench rc=$?"; cat $OUT/gemv_bench.log
fi
if [[ -n ${TESTS:-} ]]; then
  timeout ${TEST_TIMEOUT:-300} python3 -m pytest -q -p no:cacheprovider ${PYTEST_X:--x} --timeout 120 -m "not slow" $TESTS \
    > $OUT/tests.log 2>&1
  echo "tests rc=$?"; tail -15 $OUT/tests.log
fi
for shape in ${SHAPES:-}; do
  ck=/tmp/ck-$shape
  case $shape in qwen*) arch=qwen2;; *) arch=llama;; esac
  python3 -m vllm.testing.checkpoints $arch $ck --size $shape > /dev/null 2>&1 || { echo "checkpoint $shape failed"; continue; }
  timeout 240 python3 -m vllm.entrypoints.cli bench throughput --model $ck --num-prompts 256 --input-len 128 \
    --output-len 128 ${BENCH_ARGS:-} --output-json $OUT/vllm_$shape.json > $OUT/vllm_$shape.log 2>&1
  echo "vllm $shape rc=$?"; grep -E "throughput:|start-up" $OUT/vllm_$shape.log
  for run in $(seq 2 ${RUNS:-1}); do  # more runs of the same bench, same checkpoint
    timeout 120 python3 -m vllm.entrypoints.cli bench throughput --model $ck --num-prompts 256 --input-len 128 \
      --output-len 128 ${BENCH_ARGS:-} --output-json $OUT/vllm_${shape}_run$run.json > /dev/null 2>&1
    echo "vllm $shape run $run rc=$?: $(grep -o '"output_tok_per_s": [0-9.]*' $OUT/vllm_${shape}_run$run.json)"
  done
  if [[ ${TIMELINE:-0} == 1 ]]; then
    timeout 150 python3 benchmarks/scripts/step_timeline.py --model $ck > $OUT/timeline_$shape.log 2>&1
    echo "timeline rc=$?"; grep -v INFO $OUT/timeline_$shape.log | tail -16
  fi
  if [[ $shape == llama-3.1-8b ]]; then
    timeout 120 python3 -m vllm.entrypoints.cli bench latency --model $ck --batch-size 1 --input-len 128 \
      --output-len 128 --output-json $OUT/latency_$shape.json > $OUT/latency_$shape.log 2>&1
    echo "latency rc=$?"; tail -3 $OUT/latency_$shape.log
  fi
  [[ ${SKIP_HF:-0} == 1 ]] && continue
  timeout 240 python3 benchmarks/scripts/hf_generate.py --model $ck --num-prompts 256 --dtype bfloat16 \
    --device cuda --output-json $OUT/hf_$shape.json > $OUT/hf_$shape.log 2>&1
  echo "hf $shape rc=$?"; tail -1 $OUT/hf_$shape.log
done
if [[ -n ${PROFILE:-} ]]; then  # torch.profiler over decode steps of the last checkpoint built
  for b in ${PROFILE_BATCH:-256}; do
    timeout 240 python3 benchmarks/scripts/profile_decode.py --model /tmp/ck-$PROFILE \
      --batch $b > $OUT/profile_${PROFILE}_b$b.log 2>&1
    echo "profile b=$b rc=$?"; grep -E "ms per decode step" $OUT/profile_${PROFILE}_b$b.log
  done
fi
# The device tool returns at most 8 files: keep the logs, drop the rest.
rm -f $OUT/collect_env.log $OUT/build.log $OUT/ops.json $OUT/ops_cuda.json
