"""Multiprocess executor: one spawned worker process per tensor-parallel rank on this machine.

The engine process holds one pipe per worker. Every call (``execute_model`` included) is pickled
once and sent to all ranks; each rank answers ``("ok", value)`` or ``("error", traceback)``, and
only rank 0's step output is kept (the others answer None). Waiting watches the pipes and each
process's sentinel together, so a worker that dies (killed, crashed) turns into a RuntimeError
naming its rank and exit code at once instead of a hang; after that every call fails fast.
Workers join torch.distributed at ``tcp://127.0.0.1:<free port>`` with the platform's backend.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from vllm.config import VllmConfig
from vllm.distributed.utils import (
    get_open_port,
    process_cpus,
    tcp_init_method,
    validate_tp_config,
)
from vllm.executor.abstract import RankedExecutor
from vllm.logger import init_logger

logger = init_logger(__name__)

SHUTDOWN_GRACE_S = 5.0


def _worker_main(conn: Connection, rank: int, world_size: int, config: VllmConfig,
                 resolved: Any, init_method: str, cpus: list[int]) -> None:
    """Entry point of a worker process: initialise, then serve calls until told to stop or
    until the executor's end of the pipe closes (the engine process died)."""
    from vllm.distributed.worker_wrapper import WorkerWrapper

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine process owns Ctrl-C
    wrapper = WorkerWrapper(rank, world_size)
    try:
        conn.send(("ok", wrapper.init_worker(config, resolved, rank, init_method, cpus)))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        _exit_now(1)
    try:
        while True:
            try:
                method, args = conn.recv()
            except (EOFError, OSError):
                break
            if method == "shutdown":
                break
            try:
                reply = ("ok", wrapper.execute(method, *args))
            except Exception:
                reply = ("error", traceback.format_exc())
            try:
                conn.send(reply)
            except (OSError, ValueError):  # the executor is gone
                break
    finally:
        with contextlib.suppress(Exception):
            wrapper.shutdown()
    _exit_now(0)


def _exit_now(code: int) -> None:
    """Leave without the interpreter's teardown, which takes seconds once torch and the model
    are loaded (and would make every engine shutdown wait for it). Nothing is left to flush
    but the standard streams."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


@dataclass
class _Handle:
    rank: int
    proc: Any  # multiprocessing Process (spawn context)
    conn: Connection


def _exit_text(proc: Any) -> str:
    code = proc.exitcode
    if code is None:
        return "it closed its pipe and is still exiting"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by signal {signal.Signals(-code).name} (exit code {code})"
    return f"exit code {code}"


def _stop_workers(handles: list[_Handle], grace_s: float = SHUTDOWN_GRACE_S) -> None:
    """Ask politely (for up to ``grace_s``), then terminate, then kill. Safe to call twice."""
    for h in handles:
        if grace_s > 0 and h.proc.is_alive():
            with contextlib.suppress(OSError, ValueError):
                h.conn.send(("shutdown", ()))
    deadline = time.monotonic() + grace_s
    for h in handles:
        h.proc.join(max(0.0, deadline - time.monotonic()))
    for h in handles:
        if h.proc.is_alive():
            h.proc.terminate()
            h.proc.join(2.0)
        if h.proc.is_alive():
            h.proc.kill()
            h.proc.join(2.0)
        with contextlib.suppress(OSError):
            h.conn.close()


@contextlib.contextmanager
def _allow_children() -> Iterator[None]:
    """The serving EngineCore runs as a daemon process, and multiprocessing refuses to start
    children from one. Our workers are daemons themselves and stopped by this executor (or
    killed with it), so lift the flag while they start."""
    cfg = mp.current_process()._config  # type: ignore[attr-defined]
    was = cfg.get("daemon")
    cfg["daemon"] = False
    try:
        yield
    finally:
        if was is not None:
            cfg["daemon"] = was


class MultiprocExecutor(RankedExecutor):
    def __init__(self, vllm_config: VllmConfig, resolved: Any = None) -> None:
        super().__init__(vllm_config, resolved)
        if resolved is None:
            from vllm.model_executor.model_loader import resolve_model

            resolved = self.resolved = resolve_model(vllm_config.model)
        self.world_size = vllm_config.parallel.tensor_parallel_size
        validate_tp_config(resolved.hf_config, self.world_size)  # before spawning anything
        self._lock = threading.Lock()
        self._failure: str | None = None
        self.workers: list[_Handle] = []
        self._finalizer = weakref.finalize(self, _stop_workers, self.workers)
        try:
            self._start_workers(vllm_config, resolved)
        except BaseException:
            self.shutdown()
            raise

    def _start_workers(self, config: VllmConfig, resolved: Any) -> None:
        ctx = mp.get_context("spawn")
        init_method = tcp_init_method("127.0.0.1", get_open_port())
        cpus = process_cpus()  # the ranks split these host cores between them
        with _allow_children():
            for rank in range(self.world_size):
                parent, child = ctx.Pipe()
                proc = ctx.Process(
                    target=_worker_main, name=f"VllmWorker-TP{rank}", daemon=True,
                    args=(child, rank, self.world_size, config, resolved, init_method, cpus),
                )
                proc.start()
                child.close()  # our copy: the parent must see EOF when the worker dies
                self.workers.append(_Handle(rank, proc, parent))
        from vllm import envs

        sizes = self._collect(self.workers, timeout=float(envs.VLLM_WORKER_START_TIMEOUT_S))
        self._block_size = int(sizes[0])
        logger.info("multiproc executor: %d workers ready (pids %s, %s)", self.world_size,
                    [h.proc.pid for h in self.workers], init_method)

    # ---- messaging --------------------------------------------------------------------
    def _fail(self, text: str) -> RuntimeError:
        """Record a fatal worker failure, stop the other workers, return the error to raise."""
        if self._failure is None:
            self._failure = text
            logger.error("%s; stopping the other workers", text)
            # The TP group is broken: the others may wait in a collective forever, so no grace.
            _stop_workers(self.workers, grace_s=0.0)
        return RuntimeError(self._failure)

    def _collect(self, handles: list[_Handle], timeout: float | None) -> list[Any]:
        """One reply per handle (in handle order); raise at once if a worker errs or dies."""
        pending = {h.rank: h for h in handles}
        results: dict[int, Any] = {}
        deadline = None if timeout is None else time.monotonic() + timeout
        while pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            waitables = [h.conn for h in pending.values()] + [h.proc.sentinel for h in pending.values()]
            ready = wait(waitables, timeout=left)
            if not ready:
                raise self._fail(
                    f"workers of ranks {sorted(pending)} did not answer within {timeout:.0f} s"
                )
            for rank, h in list(pending.items()):
                if h.conn.poll():
                    try:
                        status, value = h.conn.recv()
                    except (EOFError, OSError):
                        h.proc.join(5.0)
                        raise self._fail(self._died(h)) from None
                    if status == "error":
                        raise self._fail(f"worker rank {rank} failed:\n{value}")
                    results[rank] = value
                    del pending[rank]
                elif h.proc.sentinel in ready:
                    h.proc.join(5.0)
                    raise self._fail(self._died(h))
        return [results[h.rank] for h in handles]

    def _died(self, h: _Handle) -> str:
        return (f"worker process of tensor-parallel rank {h.rank} (pid {h.proc.pid}) died: "
                f"{_exit_text(h.proc)}")

    def _call_all(self, method: str, *args: Any, timeout: float | None = None) -> list[Any]:
        with self._lock:
            if self._failure is not None:
                raise RuntimeError(f"executor is dead: {self._failure}")
            if self._finalizer is None or not self._finalizer.alive:
                raise RuntimeError("executor is shut down")
            payload = pickle.dumps((method, args), protocol=pickle.HIGHEST_PROTOCOL)
            for h in self.workers:
                try:
                    h.conn.send_bytes(payload)
                except (OSError, ValueError):
                    h.proc.join(5.0)
                    raise self._fail(self._died(h)) from None
            return self._collect(self.workers, timeout)

    # ---- Executor interface (the rest comes from RankedExecutor) -----------------------
    def check_health(self) -> None:
        for h in self.workers:
            if not h.proc.is_alive() and self._failure is None:
                raise self._fail(self._died(h))
        super().check_health()

    def shutdown(self) -> None:
        if self._finalizer.alive:
            self._finalizer()  # runs _stop_workers once
