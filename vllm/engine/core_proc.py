"""The EngineCore busy loop, run in its own (spawned) process while serving.

Protocol over two one-way pipes (pickled tuples):
  API -> core: ("add", EngineCoreRequest) | ("abort", [ids]) | ("stats",) | ("shutdown",)
  core -> API: ("ready", info) | ("error", message) | ("outputs", [EngineCoreOutput], stats)
               | ("stats", stats) | ("reject", request_id, message) | ("dead", message)
The core steps while it has work and blocks on its input pipe otherwise.
"""

from __future__ import annotations

import dataclasses
import signal
import traceback
from multiprocessing.connection import Connection
from typing import Any

from vllm.config import VllmConfig


def stats_dict(stats: Any) -> dict[str, float]:
    """SchedulerStats (dataclass or plain object) -> a picklable dict of numbers."""
    if stats is None:
        return {}
    if dataclasses.is_dataclass(stats):
        raw = dataclasses.asdict(stats)
    elif isinstance(stats, dict):
        raw = stats
    else:
        raw = dict(vars(stats))
    return {k: float(v) for k, v in raw.items() if isinstance(v, (int, float, bool))}


def _handle(core: Any, msg: tuple, out_conn: Connection) -> bool:
    """Apply one message; False on shutdown. A request the core refuses is answered with a
    ("reject", request_id, message) instead of killing the loop."""
    kind = msg[0]
    if kind == "add":
        try:
            core.add_request(msg[1])
        except ValueError as exc:
            out_conn.send(("reject", msg[1].request_id, str(exc)))
    elif kind == "abort":
        core.abort_requests(list(msg[1]))
    elif kind == "shutdown":
        return False
    return True


def _drain(core: Any, in_conn: Connection, out_conn: Connection, block: bool) -> bool:
    """Handle every waiting message (first one blocking if asked); False on shutdown/EOF."""
    try:
        if block and not _handle(core, in_conn.recv(), out_conn):
            return False
        while in_conn.poll(0):
            if not _handle(core, in_conn.recv(), out_conn):
                return False
    except (EOFError, OSError):
        return False  # the API process is gone
    return True


def _busy_loop(core: Any, in_conn: Connection, out_conn: Connection) -> None:
    while True:
        idle = not core.has_unfinished_requests()
        if not _drain(core, in_conn, out_conn, block=idle):
            return
        if core.has_unfinished_requests():
            outputs = core.step()
            out_conn.send(("outputs", outputs, stats_dict(core.get_stats())))
        else:
            # woke with nothing to run (e.g. an abort): report the freed blocks
            out_conn.send(("stats", stats_dict(core.get_stats())))


DEFAULT_CORE = "vllm.engine.core:EngineCore"


def run_engine_core(vllm_config: VllmConfig, in_conn: Connection, out_conn: Connection,
                    core_cls: str = DEFAULT_CORE) -> None:
    """Process entry point. The API process owns signals: SIGINT/SIGTERM are ignored here and
    the loop ends on a shutdown message or when the input pipe closes. ``core_cls`` names the
    core class as "module:attr" (tests substitute a fake)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        import importlib

        module, _, attr = core_cls.partition(":")
        core = getattr(importlib.import_module(module), attr)(vllm_config)
        stats = stats_dict(core.get_stats())
    except BaseException as exc:  # noqa: BLE001 - report any start-up failure to the parent
        out_conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        return
    out_conn.send(("ready", stats))
    try:
        _busy_loop(core, in_conn, out_conn)
    except BaseException as exc:  # noqa: BLE001
        try:
            out_conn.send(("dead", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        except OSError:
            pass
    finally:
        try:
            core.shutdown()
        except Exception:  # noqa: BLE001
            pass
