"""`vllm bench latency|throughput` on a tiny checkpoint: they run, print and write JSON."""

from __future__ import annotations

import json

from click.testing import CliRunner

from vllm.benchmarks.latency import latency_cmd
from vllm.benchmarks.throughput import throughput_cmd


def test_bench_throughput(tiny_llama_dir: str, tmp_path) -> None:
    out = tmp_path / "t.json"
    res = CliRunner().invoke(throughput_cmd, [
        "--model", tiny_llama_dir, "--num-prompts", "6", "--input-len", "12", "--output-len", "5",
        "--kv-cache-space-gib", "0.01", "--max-num-seqs", "4", "--output-json", str(out)])
    assert res.exit_code == 0, res.output
    assert "output tok/s" in res.output and "start-up" in res.output
    data = json.loads(out.read_text())
    assert data["num_prompts"] == 6 and data["output_tok_per_s"] > 0 and data["startup_s"] > 0


def test_bench_latency(tiny_llama_dir: str, tmp_path) -> None:
    out = tmp_path / "l.json"
    res = CliRunner().invoke(latency_cmd, [
        "--model", tiny_llama_dir, "--batch-size", "2", "--input-len", "8", "--output-len", "4",
        "--num-iters", "2", "--num-iters-warmup", "0", "--kv-cache-space-gib", "0.01",
        "--output-json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert len(data["latencies_s"]) == 2 and data["avg_latency_s"] > 0


def test_bench_bad_random_shape() -> None:
    res = CliRunner().invoke(throughput_cmd, ["--model", "random:nope", "--num-prompts", "1"])
    assert res.exit_code != 0 and "smollm2-135m" in res.output
