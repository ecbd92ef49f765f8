"""API-process handle on the EngineCore process: start (spawn), send, receive, stop.

A reader thread blocks on the output pipe and hands each message to ``on_message`` (called from
that thread: the caller marshals it onto its event loop). A writer thread owns the input pipe so
a large request never blocks the caller while the core is busy stepping.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from vllm.config import VllmConfig
from vllm.engine.core_proc import DEFAULT_CORE, run_engine_core
from vllm.logger import init_logger

logger = init_logger(__name__)

_STOP = object()


class EngineStartError(RuntimeError):
    """The engine-core process could not start (its message says why)."""


class EngineDeadError(RuntimeError):
    """The engine-core process died; every request in flight fails."""


class CoreClient:
    def __init__(self, vllm_config: VllmConfig, on_message: Callable[[tuple], None],
                 core_cls: str = DEFAULT_CORE) -> None:
        ctx = mp.get_context("spawn")
        in_recv, self._in_send = ctx.Pipe(duplex=False)
        self._out_recv, out_send = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=run_engine_core, args=(vllm_config, in_recv, out_send, core_cls),
                                name="EngineCore", daemon=True)
        self._on_message = on_message
        self._send_q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.ready_info: dict[str, float] = {}
        self.proc.start()
        in_recv.close()
        out_send.close()
        self._writer = threading.Thread(target=self._write_loop, name="core-writer", daemon=True)
        self._reader: threading.Thread | None = None
        self._closing = False

    # ---- start-up ----------------------------------------------------------------------
    def wait_ready(self, timeout_s: float) -> None:
        """Block until the core reports ready; raise EngineStartError with its message."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.shutdown()
                raise EngineStartError(f"engine core not ready after {timeout_s:.0f} s "
                                       "(VLLM_ENGINE_READY_TIMEOUT_S)")
            try:
                if self._out_recv.poll(min(remaining, 0.5)):
                    msg = self._out_recv.recv()
                    if msg[0] == "ready":
                        self.ready_info = msg[1]
                        break
                    self.shutdown()
                    raise EngineStartError(f"engine core failed to start: {msg[1]}")
            except EOFError:
                pass
            if not self.proc.is_alive():
                raise EngineStartError(
                    f"engine core process exited with code {self.proc.exitcode} during start-up")
        self._writer.start()
        self._reader = threading.Thread(target=self._read_loop, name="core-reader", daemon=True)
        self._reader.start()

    # ---- traffic ------------------------------------------------------------------------
    def send(self, msg: tuple) -> None:
        self._send_q.put(msg)

    def _write_loop(self) -> None:
        while True:
            msg = self._send_q.get()
            if msg is _STOP:
                return
            try:
                self._in_send.send(msg)
            except (OSError, BrokenPipeError):
                return  # the reader notices the death

    def _read_loop(self) -> None:
        while True:
            try:
                msg = self._out_recv.recv()
            except (EOFError, OSError):
                if self._closing:
                    return
                self.proc.join(2.0)  # the pipe closes just before the exit code is known
                code = self.proc.exitcode
                why = f" (signal {-code})" if code is not None and code < 0 else ""
                self._on_message(("dead", f"engine core process exited with code {code}{why}"))
                return
            self._on_message(msg)
            if msg[0] == "dead":
                return

    def is_alive(self) -> bool:
        return self.proc.is_alive()

    # ---- shutdown -----------------------------------------------------------------------
    def kill(self) -> None:
        """Stop the core at once (start-up abandoned by the API process): no shutdown message."""
        self._closing = True
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(2.0)
        self.shutdown()

    def shutdown(self, timeout_s: float = 5.0) -> None:
        self._closing = True
        if self.proc.is_alive():
            if self._writer.is_alive():
                self._send_q.put(("shutdown",))
            else:
                try:
                    self._in_send.send(("shutdown",))
                except OSError:
                    pass
            self.proc.join(timeout_s)
        if self.proc.is_alive():
            logger.warning("engine core did not stop in %.0f s; terminating it", timeout_s)
            self.proc.kill()
            self.proc.join(2.0)
        self._send_q.put(_STOP)
        for conn in (self._in_send, self._out_recv):
            try:
                conn.close()
            except OSError:
                pass
