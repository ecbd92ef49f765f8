"""The vllm logger: one handler on the `vllm` root, level from VLLM_LOGGING_LEVEL."""

from __future__ import annotations

import logging
import sys

_configured = False


def init_logger(name: str) -> logging.Logger:
    global _configured
    if not _configured:
        from vllm import envs

        root = logging.getLogger("vllm")
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(levelname)s %(asctime)s [%(name)s] %(message)s", "%m-%d %H:%M:%S")
        )
        root.addHandler(handler)
        root.setLevel(str(envs.VLLM_LOGGING_LEVEL).upper())
        root.propagate = False
        _configured = True
    return logging.getLogger(name)
