"""Helpers shared by the multi-process executors: addresses, ports, TP shape checks."""

from __future__ import annotations

import contextlib
import glob
import os
import socket
from typing import Any


def get_open_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def get_ip() -> str:
    """This machine's address as other machines see it: VLLM_HOST_IP if set, else the address of
    the route to the outside, else loopback."""
    from vllm import envs

    if envs.VLLM_HOST_IP:
        return str(envs.VLLM_HOST_IP)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("8.8.8.8", 80))  # UDP connect sends nothing; it only picks a route
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def tcp_init_method(host: str, port: int) -> str:
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


def _get(hf_config: Any, *names: str) -> int | None:
    for n in names:
        v = getattr(hf_config, n, None)
        if isinstance(v, int):
            return v
    text = getattr(hf_config, "text_config", None)  # multimodal wrappers
    return _get(text, *names) if text is not None and text is not hf_config else None


def validate_tp_config(hf_config: Any, tp_size: int) -> None:
    """Raise ValueError, naming both numbers, when the model's heads (or MLP widths) can't be
    split over ``tp_size`` ranks. KV heads fewer than ranks are fine if they replicate evenly."""
    if tp_size == 1:
        return
    heads = _get(hf_config, "num_attention_heads", "n_head")
    if heads is not None and heads % tp_size:
        raise ValueError(
            f"num_attention_heads={heads} is not divisible by tensor_parallel_size={tp_size}"
        )
    kv = _get(hf_config, "num_key_value_heads") or heads
    if kv is not None:
        if kv >= tp_size and kv % tp_size:
            raise ValueError(
                f"num_key_value_heads={kv} is not divisible by tensor_parallel_size={tp_size}"
            )
        if kv < tp_size and tp_size % kv:
            raise ValueError(
                f"tensor_parallel_size={tp_size} is not a multiple of num_key_value_heads={kv}, "
                "so the KV heads cannot be replicated evenly over the ranks"
            )
    for name in ("intermediate_size", "moe_intermediate_size", "n_inner"):
        size = _get(hf_config, name)
        if size is not None and size % tp_size:
            raise ValueError(f"{name}={size} is not divisible by tensor_parallel_size={tp_size}")


def process_cpus() -> list[int]:
    """CPUs this process may run on: the union over its threads. (Where compute threads are
    pinned one per core, the calling thread alone may show a single core, and a child process
    started from it would inherit just that one.)"""
    cpus: set[int] = set()
    for status in glob.glob("/proc/self/task/*/status"):
        with contextlib.suppress(OSError, ValueError):
            with open(status) as f:
                for line in f:
                    if line.startswith("Cpus_allowed_list:"):
                        cpus.update(_parse_cpu_list(line.split(":", 1)[1]))
    if not cpus and hasattr(os, "sched_getaffinity"):
        cpus = set(os.sched_getaffinity(0))
    return sorted(cpus)


def _parse_cpu_list(text: str) -> list[int]:
    out: list[int] = []
    for part in text.strip().split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        elif part:
            out.append(int(part))
    return out


def cpus_for_rank(cpus: list[int], world_size: int, rank: int) -> list[int]:
    """Rank ``rank``'s equal, disjoint share of ``cpus`` (shared round-robin if too few)."""
    if not cpus:
        return []
    per = len(cpus) // world_size
    if per == 0:
        return [cpus[rank % len(cpus)]]
    return cpus[rank * per : (rank + 1) * per]
