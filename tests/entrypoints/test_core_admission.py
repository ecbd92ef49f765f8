"""Serving-loop details that shape time to first token: the admission window of the engine-core
busy loop (a burst of arrivals is prefilled in one step) and the detokenizer's reuse of the
prefix text while tokens decode to nothing."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from collections import deque
from typing import Any

from vllm.core.types import EngineCoreOutput, EngineCoreRequest
from vllm.engine import core_proc
from vllm.engine.detokenizer import IncrementalDetokenizer
from vllm.sampling_params import SamplingParams


class _Sched:
    def __init__(self) -> None:
        self.running: list[str] = []
        self.waiting: deque[str] = deque()


class _Core:
    """Records which requests each step ran; every request finishes after one step."""

    def __init__(self) -> None:
        self.scheduler = _Sched()
        self.steps: list[list[str]] = []

    def add_request(self, req: EngineCoreRequest) -> None:
        self.scheduler.waiting.append(req.request_id)

    def abort_requests(self, ids: list[str]) -> None:
        pass

    def has_unfinished_requests(self) -> bool:
        return bool(self.scheduler.waiting or self.scheduler.running)

    def step(self) -> list[EngineCoreOutput]:
        ran = list(self.scheduler.waiting)
        self.scheduler.waiting.clear()
        self.steps.append(ran)
        return [EngineCoreOutput(rid, [1], finish_reason="length") for rid in ran]

    def get_stats(self) -> dict[str, float]:
        return {}


def _req(rid: str) -> EngineCoreRequest:
    return EngineCoreRequest(rid, [1, 2, 3], SamplingParams(max_tokens=1), time.time())


def _run_loop(core: _Core, sends: list[tuple[float, tuple]], **kw: Any) -> list[tuple]:
    """Run the busy loop in a thread, sending (delay, message) pairs; returns what it sent."""
    in_recv, in_send = mp.Pipe(duplex=False)
    out_recv, out_send = mp.Pipe(duplex=False)
    loop = threading.Thread(target=core_proc._busy_loop, args=(core, in_recv, out_send),
                            kwargs=kw, daemon=True)
    loop.start()
    for delay, msg in sends:
        time.sleep(delay)
        in_send.send(msg)
    time.sleep(0.2)
    in_send.send(("shutdown",))
    loop.join(5)
    assert not loop.is_alive()
    got = []
    while out_recv.poll(0):
        got.append(out_recv.recv())
    return got


def test_burst_arriving_over_a_few_ms_is_prefilled_in_one_step(monkeypatch) -> None:
    monkeypatch.setattr(core_proc, "_step_hook", lambda: None)
    core = _Core()
    sends = [(0.0, ("add", _req("a")))] + [(0.003, ("add", _req(f"b{i}"))) for i in range(5)]
    got = _run_loop(core, sends, quiet_s=0.05, max_s=0.5)
    assert core.steps == [["a", "b0", "b1", "b2", "b3", "b4"]]
    assert [m[0] for m in got] == ["outputs"]


def test_without_window_the_first_arrival_runs_alone(monkeypatch) -> None:
    monkeypatch.setattr(core_proc, "_step_hook", lambda: None)
    core = _Core()
    sends = [(0.0, ("add", _req("a")))] + [(0.05, ("add", _req("b")))]
    _run_loop(core, sends, quiet_s=0.01, max_s=0.0)
    assert core.steps == [["a"], ["b"]]


def test_window_is_capped_and_ends_when_arrivals_stop(monkeypatch) -> None:
    monkeypatch.setattr(core_proc, "_step_hook", lambda: None)
    core = _Core()
    # arrivals every 10 ms keep the window open (quiet 40 ms) until the 35 ms cap
    sends = [(0.0, ("add", _req("a")))] + [(0.01, ("add", _req(f"b{i}"))) for i in range(8)]
    _run_loop(core, sends, quiet_s=0.04, max_s=0.035)
    assert len(core.steps) >= 2 and core.steps[0][0] == "a" and len(core.steps[0]) < 9
    assert sorted(sum(core.steps, [])) == sorted(["a"] + [f"b{i}" for i in range(8)])
    lone = _Core()  # a single request waits only for the quiet period, not the cap
    start = time.monotonic()
    in_recv, in_send = mp.Pipe(duplex=False)
    out_recv, out_send = mp.Pipe(duplex=False)
    lone.add_request(_req("x"))
    assert core_proc._gather(lone, in_recv, out_send, quiet_s=0.02, max_s=5.0)
    assert time.monotonic() - start < 1.0


def test_no_window_while_requests_are_running() -> None:
    core = _Core()
    assert not core_proc._only_waiting(core)  # nothing waiting
    core.scheduler.waiting.append("a")
    assert core_proc._only_waiting(core)
    core.scheduler.running.append("r")  # a decoding request must not stall for arrivals
    assert not core_proc._only_waiting(core)
    assert not core_proc._only_waiting(object())  # cores without a scheduler: never wait


def test_gather_handles_shutdown_and_eof() -> None:
    core = _Core()
    in_recv, in_send = mp.Pipe(duplex=False)
    _, out_send = mp.Pipe(duplex=False)
    in_send.send(("shutdown",))
    assert not core_proc._gather(core, in_recv, out_send, quiet_s=0.5, max_s=1.0)
    in_send.close()
    assert not core_proc._gather(core, in_recv, out_send, quiet_s=0.5, max_s=1.0)


class _CountingTokenizer:
    """Ids >= 100 decode to nothing (like the random checkpoint's unknown ids)."""

    def __init__(self) -> None:
        self.calls = 0

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        self.calls += 1
        return "".join(f" w{i}" for i in ids if i < 100)


def test_detokenizer_reuses_prefix_text_while_tokens_are_silent() -> None:
    tok = _CountingTokenizer()
    detok = IncrementalDetokenizer(tok, [1, 2], decode_fn=lambda ids: tok.decode(ids))
    pieces = [detok.step([t]) for t in [3, 500, 501, 502, 4, 503, 5]]
    assert "".join(pieces) + detok.flush() == " w3 w4 w5"
    assert pieces == [" w3", "", "", "", " w4", "", " w5"]
    # two decodes for a token right after text was emitted (or the first), one while the
    # prefix is unchanged: 3, 500 -> 2 + 2; 501, 502, 4 -> 1 each; 503 -> 2; 5 -> 1; flush 2
    assert tok.calls == 2 + 2 + 1 + 1 + 1 + 2 + 1 + 2


def test_plain_chat_choice_matches_the_models() -> None:
    import json

    from vllm.entrypoints.openai.protocol import ChatStreamChoice, DeltaMessage
    from vllm.entrypoints.openai.serving_chat import _plain_choice

    for choice in (ChatStreamChoice(index=0, delta=DeltaMessage()),
                   ChatStreamChoice(index=2, delta=DeltaMessage(content='a "b"\n\u00fc\u20ac')),
                   ChatStreamChoice(index=1, delta=DeltaMessage(content="x"),
                                    finish_reason="stop"),
                   ChatStreamChoice(index=0, delta=DeltaMessage(), finish_reason="length")):
        assert json.loads(_plain_choice(choice)) == choice.model_dump(exclude_none=True)
