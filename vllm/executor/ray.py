"""Ray executor: one Ray actor per tensor-parallel rank, placed by a placement group, so the
ranks may sit on several machines of a Ray cluster (``ray start --head`` / ``ray start
--address=HEAD:6379``). Joins the running cluster (``ray.init(address="auto")``) or starts a local
Ray instance when none runs. Ranks meet at ``tcp://<rank 0's node IP>:<free port there>``.

Each step is sent to every actor (the SchedulerOutput is put in the object store once) and rank
0's output is kept. A dead actor or a failed call becomes a RuntimeError naming the rank; after
that every call fails fast.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from vllm.config import VllmConfig
from vllm.distributed.utils import tcp_init_method, validate_tp_config
from vllm.distributed.worker_wrapper import WorkerWrapper
from vllm.executor.abstract import RankedExecutor
from vllm.logger import init_logger

logger = init_logger(__name__)

# torch device type -> the Ray resource one rank takes (ROCm GPUs are "cuda" in torch).
RAY_RESOURCE = {"cuda": "GPU", "xpu": "GPU", "cpu": "CPU"}


class RayWorker(WorkerWrapper):
    """The actor class (made remote with ``ray.remote`` at start-up, so importing this module
    never needs Ray)."""

    def node_address(self) -> tuple[str, int]:
        """This actor's node IP as the cluster knows it, and a port free on that node."""
        import ray

        from vllm import envs
        from vllm.distributed.utils import get_open_port

        ip = envs.VLLM_HOST_IP or ray.util.get_node_ip_address()
        return str(ip), get_open_port("0.0.0.0")


def _vllm_env() -> dict[str, str]:
    """The VLLM_* variables set here (thread counts, KV space, ...), to pass on to the actors."""
    from vllm import envs

    return {name: os.environ[name] for name in dir(envs) if name in os.environ}


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ValueError(
            "distributed_executor_backend='ray' needs Ray: pip install ray"
        ) from e
    return ray


def _connect(ray: Any) -> bool:
    """Attach to a running cluster, else start a local instance; True if we started it."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address="auto", ignore_reinit_error=True)
        logger.info("ray executor: joined the running Ray cluster")
        return False
    except ConnectionError:
        ray.init(include_dashboard=False, ignore_reinit_error=True)
        logger.info("ray executor: no Ray cluster running; started a local Ray instance")
        return True


class RayExecutor(RankedExecutor):
    def __init__(self, vllm_config: VllmConfig, resolved: Any = None) -> None:
        super().__init__(vllm_config, resolved)
        if resolved is None:
            from vllm.model_executor.model_loader import resolve_model

            resolved = self.resolved = resolve_model(vllm_config.model)
        self.world_size = vllm_config.parallel.tensor_parallel_size
        validate_tp_config(resolved.hf_config, self.world_size)  # before any actor starts
        self.ray = _import_ray()
        self._lock = threading.Lock()
        self._failure: str | None = None
        self._closed = False
        self.actors: list[Any] = []
        self.pg: Any = None
        self._owns_ray = _connect(self.ray)
        try:
            self._start_workers(vllm_config, resolved)
        except BaseException:
            self.shutdown()
            raise

    def _placement_group(self) -> Any:
        from ray.util.placement_group import placement_group

        from vllm import envs
        from vllm.platforms import current_platform

        resource = RAY_RESOURCE.get(current_platform.device_type, "GPU")
        bundles = [{resource: 1.0} for _ in range(self.world_size)]
        pg = placement_group(bundles, strategy="PACK")
        timeout = float(envs.VLLM_WORKER_START_TIMEOUT_S)
        ready, _ = self.ray.wait([pg.ready()], timeout=timeout)
        if not ready:
            self.ray.util.remove_placement_group(pg)
            raise RuntimeError(
                f"Ray could not place {self.world_size} workers of {{'{resource}': 1}} within "
                f"{timeout:.0f} s (VLLM_WORKER_START_TIMEOUT_S); the cluster has "
                f"{self.ray.cluster_resources()}. Start more nodes (ray start --address=...) "
                "or lower tensor_parallel_size"
            )
        return pg

    def _start_workers(self, config: VllmConfig, resolved: Any) -> None:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        self.pg = self._placement_group()
        from vllm import envs

        gpu = self.pg.bundle_specs[0].get("GPU", 0) > 0
        actor_cls = self.ray.remote(RayWorker)
        extra: dict[str, Any] = {}
        forwarded = _vllm_env()
        if forwarded:  # actors on other nodes do not inherit this process's environment
            extra["runtime_env"] = {"env_vars": forwarded}
        for rank in range(self.world_size):
            strategy = PlacementGroupSchedulingStrategy(
                placement_group=self.pg, placement_group_bundle_index=rank
            )
            self.actors.append(actor_cls.options(
                num_cpus=0 if gpu else 1, num_gpus=1 if gpu else 0,
                scheduling_strategy=strategy, **extra,
            ).remote(rank, self.world_size))
        timeout = float(envs.VLLM_WORKER_START_TIMEOUT_S)
        ip, port = self._get([self.actors[0].node_address.remote()], timeout)[0]
        init_method = tcp_init_method(ip, port)
        # Ray shows each actor only its own GPU, so every rank uses local device 0.
        refs = [a.init_worker.remote(config, resolved, 0, init_method) for a in self.actors]
        self._block_size = int(self._get(refs, timeout)[0])
        logger.info("ray executor: %d workers ready (%s)", self.world_size, init_method)

    # ---- calls ------------------------------------------------------------------------
    def _fail(self, text: str) -> RuntimeError:
        if self._failure is None:
            self._failure = text
            logger.error("%s; stopping the other workers", text)
            self._kill_actors()
        return RuntimeError(self._failure)

    def _get(self, refs: list[Any], timeout: float | None) -> list[Any]:
        """Results of one call per rank (refs in rank order); the first failure raises at once."""
        ray = self.ray
        rank_of = {ref: i for i, ref in enumerate(refs)}
        results: dict[int, Any] = {}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=timeout)
            if not ready:
                ranks = sorted(rank_of[r] for r in pending)
                raise self._fail(f"Ray workers {ranks} did not answer within {timeout:.0f} s")
            rank = rank_of[ready[0]]
            try:
                results[rank] = ray.get(ready[0])
            except ray.exceptions.RayActorError as e:
                raise self._fail(f"Ray worker actor of tensor-parallel rank {rank} died: {e}") from None
            except ray.exceptions.RayError as e:
                raise self._fail(f"Ray worker of tensor-parallel rank {rank} failed: {e}") from None
        return [results[i] for i in range(len(refs))]

    def _call_all(self, method: str, *args: Any, timeout: float | None = None) -> list[Any]:
        with self._lock:
            if self._failure is not None:
                raise RuntimeError(f"executor is dead: {self._failure}")
            if self._closed:
                raise RuntimeError("executor is shut down")
            args = tuple(self.ray.put(a) for a in args)  # stored once, read by every actor
            return self._get([a.execute.remote(method, *args) for a in self.actors], timeout)

    def _kill_actors(self) -> None:
        for a in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(a, no_restart=True)
        self.actors = []
        if self.pg is not None:
            with contextlib.suppress(Exception):
                self.ray.util.remove_placement_group(self.pg)
            self.pg = None

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # let the workers leave the process group cleanly
            self.ray.wait([a.shutdown.remote() for a in self.actors],
                          num_returns=len(self.actors), timeout=5.0)
        self._kill_actors()
        if self._owns_ray:
            with contextlib.suppress(Exception):
                self.ray.shutdown()
