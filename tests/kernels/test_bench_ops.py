"""`vllm bench ops`: runs, prints the table, writes JSON, rejects bad options."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from click.testing import CliRunner

from vllm.benchmarks.ops import ops_cmd

from .conftest import IMPLS


def test_bench_ops_rms_norm(tmp_path: Path) -> None:
    out = tmp_path / "ops.json"
    args = ["--dtype", "fp32", "--iters", "1", "--warmup", "0", "--ops", "rms_norm",
            "--threads", str(torch.get_num_threads()), "--json", str(out)]
    result = CliRunner().invoke(ops_cmd, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    impls = {r["impl"] for r in doc["results"]}
    assert {r["op"] for r in doc["results"]} == {"rms_norm"}
    assert "native" in impls
    assert {i.method for i in IMPLS} <= impls  # every available implementation was timed
    assert all(r["median_ms"] > 0 and r["gbps"] > 0 for r in doc["results"])
    assert "rms_norm" in result.output and "vs native" in result.output


def test_bench_ops_bad_options() -> None:
    result = CliRunner().invoke(ops_cmd, ["--dtype", "fp8"])
    assert result.exit_code != 0 and "fp8" in result.output
    result = CliRunner().invoke(ops_cmd, ["--ops", "no_such_op", "--dtype", "fp32"])
    assert result.exit_code != 0 and "no_such_op" in result.output


def test_bench_ops_decode_shapes(tmp_path: Path) -> None:
    out = tmp_path / "ops.json"
    args = ["--dtype", "bf16", "--iters", "1", "--warmup", "0", "--shapes", "decode", "--ops",
            "rms_norm,paged_attention", "--threads", str(torch.get_num_threads()), "--json",
            str(out)]
    result = CliRunner().invoke(ops_cmd, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["shapes"] == "decode"
    shapes = {r["op"]: r["shape"] for r in doc["results"]}
    assert shapes == {"rms_norm": "64x576", "paged_attention": "decode 64x[128,256] 9/3h d64"}
