"""Binding the compute threads of a CPU worker to cores (called once by the CPU platform), and
the governor a serving engine core uses to shed threads while other processes share its cores."""

from __future__ import annotations

import math
import os
import time

import torch

from vllm.logger import init_logger

logger = init_logger(__name__)
_bound: tuple[int, ...] | None = None


def parse_cores(spec: str) -> list[int]:
    """'0-3,6' -> [0, 1, 2, 3, 6]."""
    cores: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            cores.extend(range(int(lo), int(hi) + 1))
        else:
            cores.append(int(part))
    if not cores:
        raise ValueError(f"VLLM_CPU_OMP_THREADS_BIND={spec!r} names no cores")
    return cores


def _pin(cores: list[int]) -> None:
    """One torch/OpenMP thread per core, each pinned to its core."""
    torch.set_num_threads(len(cores))
    try:
        from vllm import _C_cpu  # type: ignore[attr-defined]

        _C_cpu.bind_omp_threads(cores)
    except (ImportError, AttributeError):
        os.sched_setaffinity(0, cores)


def bound_cores() -> tuple[int, ...]:
    """The cores ``bind_threads`` pinned this process to (empty when binding is off)."""
    return _bound or ()


def bind_threads(spec: str | None, num_threads: int | None) -> tuple[int, ...]:
    """Pin this process (and its OpenMP threads, via the _C_cpu helper when built) to cores."""
    global _bound
    if spec in (None, "off"):
        return ()
    available = sorted(os.sched_getaffinity(0))
    cores = available if spec == "auto" else parse_cores(spec)
    bad = [c for c in cores if c not in available]
    if bad:
        raise ValueError(f"VLLM_CPU_OMP_THREADS_BIND names cores {bad} outside {available}")
    if num_threads is not None:
        cores = cores[:num_threads]
    if _bound == tuple(cores):
        return _bound
    _pin(cores)
    _bound = tuple(cores)
    logger.debug("CPU compute threads bound to cores %s", cores)
    return _bound


def _proc_ticks(pid: int | str) -> int:
    """utime + stime of a process (all its threads), in clock ticks; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    except (OSError, IndexError, ValueError):
        return 0


def _busy_ticks(cores: tuple[int, ...]) -> int:
    """Ticks these CPUs spent busy (user, nice, system, irq, softirq) or stolen by the host."""
    names = {f"cpu{c}" for c in cores}
    total = 0
    with open("/proc/stat") as f:
        for line in f:
            name, *values = line.split()
            if name in names:
                total += sum(int(values[i]) for i in (0, 1, 2, 5, 6, 7) if i < len(values))
    return total


class ContentionGovernor:
    """Shrinks the engine's compute threads while other processes compete for its cores.

    OpenMP parallel regions end at a barrier: when another process preempts one of N compute
    threads, the other N-1 wait (spinning) for it, so on a shared host N threads can run far
    slower than one. Once per ``period_s`` this reads /proc: the CPU time the bound cores
    were busy minus what this process and ``own_pids`` (the API server) used is the load of
    others, in cores. Each 0.9 core of it costs a thread (at least 1 stays), changed only after
    ``agree`` periods in a row want the same count. On an idle machine it keeps every core.
    """

    def __init__(self, cores: tuple[int, ...], own_pids: tuple[int, ...] = (),
                 period_s: float = 1.0, agree: int = 3) -> None:
        self.cores = cores
        self.own_pids = own_pids
        self.period_s = period_s
        self.agree = agree
        self.threads = len(cores)
        self._pending: int | None = None
        self._votes = 0
        self._hz = float(os.sysconf("SC_CLK_TCK"))
        self._last = self._sample()

    def _sample(self) -> tuple[float, int, int]:
        mine = _proc_ticks("self") + sum(_proc_ticks(p) for p in self.own_pids)
        return time.monotonic(), _busy_ticks(self.cores), mine

    def others_load(self, now: tuple[float, int, int]) -> float:
        """Cores used by other processes since the last sample."""
        (t0, busy0, mine0), (t1, busy1, mine1) = self._last, now
        if t1 <= t0:
            return 0.0
        return max(0.0, ((busy1 - busy0) - (mine1 - mine0)) / self._hz / (t1 - t0))

    def target(self, others: float) -> int:
        # Each 0.9 core of foreign load costs a thread (a preempted thread stalls the others
        # at every barrier). Measured on 2 cores: with ~0.6 core taken, 2 threads still beat
        # 1 (158 vs 119 tok/s); with 1-2 cores taken, 1 thread won by 2-3x.
        return max(1, min(len(self.cores), len(self.cores) - math.floor(others + 0.1)))

    def tick(self) -> int | None:
        """Call between engine steps (on the thread that runs them); returns the new thread
        count when it changed."""
        now = time.monotonic()
        if now - self._last[0] < self.period_s:
            return None
        sample = self._sample()
        want = self.target(self.others_load(sample))
        self._last = sample
        if want == self.threads:
            self._pending = None
            return None
        if self._pending != want:
            self._pending, self._votes = want, 1
            return None
        self._votes += 1
        if self._votes < self.agree:  # a short burst (a client starting up) changes nothing
            return None
        self._pending = None
        self._apply(want)
        return want

    def _apply(self, threads: int) -> None:
        if threads == len(self.cores):
            _pin(list(self.cores))
        else:
            torch.set_num_threads(threads)
            os.sched_setaffinity(0, self.cores)  # let the scheduler pick the free core(s)
        logger.info("CPU compute threads: %d -> %d (other processes' load)", self.threads,
                    threads)
        self.threads = threads
