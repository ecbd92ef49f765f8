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
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from vllm.config import VllmConfig
from vllm.logger import init_logger

logger = init_logger(__name__)


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


def _step_hook() -> Callable[[], object] | None:
    """The platform's between-steps housekeeping (CPU: adapt the thread count to other
    processes' load), if it has any."""
    from vllm.platforms import current_platform

    return current_platform.engine_step_hook()


# Admission window (see ``_gather``): how long a new arrival may be waited for, and the cap.
ADMIT_QUIET_S = 0.010
ADMIT_MAX_S = 0.050


def _only_waiting(core: Any) -> bool:
    """True when the next step would run only newly admitted requests: nothing is running
    (decoding or mid-prefill), so nobody's stream stalls while the core waits a moment."""
    sched = getattr(core, "scheduler", None)
    running, waiting = getattr(sched, "running", None), getattr(sched, "waiting", None)
    return running is not None and waiting is not None and not running and len(waiting) > 0


def _gather(core: Any, in_conn: Connection, out_conn: Connection, quiet_s: float,
            max_s: float) -> bool:
    """Before a step that would run only new requests, wait while more keep arriving (each
    within ``quiet_s`` of the last, ``max_s`` in all) so a burst is prefilled in one step.

    Requests that arrive together (a wave of clients whose previous requests finished in
    the same step) otherwise split into a lone first prefill and a step for the rest, which
    waits behind it; the lone request then runs a step ahead of the others, and every later
    wave splits the same way. False on shutdown/EOF."""
    deadline = time.monotonic() + max_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        try:
            if not in_conn.poll(min(quiet_s, left)):
                return True
        except (EOFError, OSError):
            return False
        if not _drain(core, in_conn, out_conn, block=False):
            return False


def _busy_loop(core: Any, in_conn: Connection, out_conn: Connection,
               quiet_s: float | None = None, max_s: float | None = None) -> None:
    quiet_s = ADMIT_QUIET_S if quiet_s is None else quiet_s
    max_s = ADMIT_MAX_S if max_s is None else max_s
    hook = _step_hook()
    while True:
        idle = not core.has_unfinished_requests()
        if not _drain(core, in_conn, out_conn, block=idle):
            return
        if max_s > 0 and _only_waiting(core) and not _gather(core, in_conn, out_conn,
                                                               quiet_s, max_s):
            return
        if core.has_unfinished_requests():
            if hook is not None:
                hook()
            outputs = core.step()
            out_conn.send(("outputs", outputs, stats_dict(core.get_stats())))
        else:
            # woke with nothing to run (e.g. an abort): report the freed blocks
            out_conn.send(("stats", stats_dict(core.get_stats())))


DEFAULT_CORE = "vllm.engine.core:EngineCore"
_WARMUP_ID = "__warmup__"
_WARMUP_SEQS = 16


def _warmup_requests(core: Any) -> list[Any]:
    """The dummy requests of ``warm_up``: one step's token budget split over up to 16
    distinct prompts (a burst of concurrent requests), each prompt fitting the context."""
    from vllm.core.types import EngineCoreRequest
    from vllm.sampling_params import SamplingParams

    config = core.config
    max_len = int(getattr(core, "max_model_len", 0) or 0)
    vocab = int(getattr(getattr(core, "resolved", None), "vocab_size", 0) or 101)
    budget = int(config.scheduler.max_num_batched_tokens or 512)
    seqs = max(1, min(int(config.scheduler.max_num_seqs), _WARMUP_SEQS, budget // 16))
    n = max(1, min(budget // seqs, max_len - 4))
    span = max(1, min(100, vocab - 1))
    params = SamplingParams(max_tokens=4, temperature=0.0, ignore_eos=True)
    return [EngineCoreRequest(f"{_WARMUP_ID}{k}", [1 + (i + 7 * k) % span for i in range(n)],
                              params.clone(), time.time()) for k in range(seqs)]


def warm_up(core: Any) -> None:
    """Serve a burst of dummy prompts before reporting ready: one full token budget of
    prefill over up to 16 sequences, then a few decode steps of all of them.

    The first steps of a fresh process pay one-off costs per shape (first touch of activation
    and KV memory, the allocator growing its arenas, GEMM kernel selection): a first
    2048-token step took 3.3 s against 1.35 s later, landing on the first requests' time to
    first token. Cores without a config (test fakes) skip it."""
    config = getattr(core, "config", None)
    max_len = int(getattr(core, "max_model_len", 0) or 0)
    vocab = int(getattr(getattr(core, "resolved", None), "vocab_size", 0) or 101)
    if config is None or max_len < 8 or vocab < 2:
        return
    added: list[str] = []
    for req in _warmup_requests(core):
        try:
            core.add_request(req)
        except ValueError:  # e.g. a KV cache smaller than the dummy prompts: use fewer
            break
        added.append(req.request_id)
    for _ in range(16):
        if not added or not core.has_unfinished_requests():
            break
        core.step()
    if not added:
        return
    core.abort_requests(added)
    reset = getattr(core, "reset_prefix_cache", None)
    if reset is not None:
        reset()  # no request should hit the dummy prompts' blocks


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
        start = time.perf_counter()
        warm_up(core)
        logger.info("engine core warm-up: %.1f s", time.perf_counter() - start)
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
