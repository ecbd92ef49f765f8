"""Start a real `vllm serve` subprocess on 127.0.0.1 and a free port; wait for /health."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RemoteServer:
    def __init__(self, args: list[str], timeout_s: float = 240.0, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "vllm.entrypoints.cli", "serve", *args,
               "--host", "127.0.0.1", "--port", str(self.port), "--uvicorn-log-level", "warning"]
        full_env = {**os.environ, "VLLM_PLATFORM": os.environ.get("VLLM_PLATFORM", "cpu"),
                    **(env or {})}
        self.proc = subprocess.Popen(cmd, env=full_env, start_new_session=True)
        self._wait(timeout_s)

    def _wait(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vllm serve exited with code {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"vllm serve not healthy after {timeout_s} s")

    def terminate(self, timeout_s: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout_s)
        return self.proc.returncode

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.terminate(30.0)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def metric(self, name: str) -> float:
        """Sum of a metric's samples in /metrics (labels ignored)."""
        total, found = 0.0, False
        for line in httpx.get(f"{self.url}/metrics", timeout=10).text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
                found = True
        if not found:
            raise KeyError(name)
        return total
