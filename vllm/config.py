"""Frozen, typed engine configuration. The CLI flags of `vllm serve`/`vllm bench` and the keyword
arguments of `vllm.LLM` are generated from these fields (see ``vllm/engine/arg_utils.py``); there
is no second hand-written list.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DTYPES = ("auto", "float32", "float", "bfloat16", "float16", "half")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())


class ModelConfig(_Frozen):
    model: str = Field(
        "", description="HF folder, hub id or .gguf file; empty: the embedded SmolLM2-135M-Instruct"
    )
    tokenizer: str | None = Field(None, description="tokenizer folder or hub id (default: the model's)")
    revision: str | None = Field(None, description="hub revision (branch, tag or commit)")
    dtype: str = Field("auto", description="weight and activation dtype: " + "|".join(DTYPES))
    max_model_len: int | None = Field(None, description="context length (default: from the model)")
    seed: int = Field(0, description="seed of the random weights of sampling without a request seed")
    served_model_name: str | None = Field(None, description="model name clients use (default: model)")
    chat_template: str | None = Field(None, description="Jinja chat template file or literal")
    allow_pickle_weights: bool = Field(
        False, description="allow .bin/.pt pickle checkpoints (they can run code)"
    )
    max_logprobs: int = Field(20, description="largest logprobs/top_logprobs a request may ask for")

    @field_validator("dtype")
    @classmethod
    def _check_dtype(cls, v: str) -> str:
        if v not in DTYPES:
            raise ValueError(f"dtype={v!r} is not supported; allowed: {', '.join(DTYPES)}")
        return v

    @field_validator("max_model_len")
    @classmethod
    def _check_len(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"max_model_len={v} must be >= 1")
        return v


class CacheConfig(_Frozen):
    block_size: int | None = Field(None, description="tokens per KV block (default: per backend)")
    gpu_memory_utilization: float = Field(
        0.9, description="fraction of device memory for weights + activations + KV (GPUs)"
    )
    kv_cache_space_gib: float | None = Field(
        None, description="CPU: GiB of RAM for the KV cache (default: VLLM_CPU_KVCACHE_SPACE or 1/4 free)"
    )
    enable_prefix_caching: bool = Field(True, description="reuse KV blocks of shared prompt prefixes")
    num_kv_blocks_override: int | None = Field(None, description="force the number of KV blocks")

    @field_validator("gpu_memory_utilization")
    @classmethod
    def _check_util(cls, v: float) -> float:
        if not 0.0 < v <= 1.0:
            raise ValueError(f"gpu_memory_utilization={v} must be in (0, 1]")
        return v

    @field_validator("block_size")
    @classmethod
    def _check_block(cls, v: int | None) -> int | None:
        if v is not None and (v < 1 or v & (v - 1)):
            raise ValueError(f"block_size={v} must be a power of two")
        return v


class SchedulerConfig(_Frozen):
    max_num_seqs: int = Field(256, description="most requests in one step")
    max_num_batched_tokens: int | None = Field(
        None, description="token budget of one step (default: 16384 on CUDA/ROCm GPUs with >= 70 GiB, "
        "else 8192 on GPUs, 4096 on CPU; `vllm serve`: 8192 on CUDA, 2048 on CPU)"
    )
    enable_chunked_prefill: bool = Field(True, description="split long prompts across steps")
    policy: Literal["fcfs", "priority"] = Field("fcfs", description="scheduling policy")

    @field_validator("max_num_seqs", "max_num_batched_tokens")
    @classmethod
    def _positive(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"value {v} must be >= 1")
        return v


class ParallelConfig(_Frozen):
    tensor_parallel_size: int = Field(1, description="number of tensor-parallel ranks")
    distributed_executor_backend: Literal["uni", "mp", "ray"] | None = Field(
        None, description="executor: uni (one process), mp (one process per rank), ray (cluster)"
    )

    @field_validator("tensor_parallel_size")
    @classmethod
    def _check_tp(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"tensor_parallel_size={v} must be >= 1")
        return v

    @model_validator(mode="after")
    def _check_backend(self) -> ParallelConfig:
        if self.distributed_executor_backend == "uni" and self.tensor_parallel_size > 1:
            raise ValueError(
                f"distributed_executor_backend='uni' runs one process, but tensor_parallel_size="
                f"{self.tensor_parallel_size}; use 'mp' (one machine) or 'ray'"
            )
        return self

    @property
    def backend(self) -> str:
        if self.distributed_executor_backend is not None:
            return self.distributed_executor_backend
        return "uni" if self.tensor_parallel_size == 1 else "mp"


class CompilationConfig(_Frozen):
    custom_ops: tuple[str, ...] = Field(("all",), description="'all'/'none', '+op', '-op' entries")
    enforce_eager: bool = Field(False, description="never capture device graphs")
    cuda_graph_sizes: tuple[int, ...] = Field(
        (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512),
        description="decode batch sizes captured as CUDA graphs",
    )


class VllmConfig(_Frozen):
    model: ModelConfig = ModelConfig()
    cache: CacheConfig = CacheConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    parallel: ParallelConfig = ParallelConfig()
    compilation: CompilationConfig = CompilationConfig()

    @model_validator(mode="after")
    def _check(self) -> VllmConfig:
        sched = self.scheduler
        limit = self.model.max_model_len
        if (
            not sched.enable_chunked_prefill
            and sched.max_num_batched_tokens is not None
            and limit is not None
            and sched.max_num_batched_tokens < limit
        ):
            raise ValueError(
                f"max_num_batched_tokens={sched.max_num_batched_tokens} < max_model_len={limit} "
                "needs enable_chunked_prefill"
            )
        return self

    def replace(self, **sections: Any) -> VllmConfig:
        """Copy with whole sections or ``section={field: value}`` updates (frozen-friendly)."""
        updates: dict[str, Any] = {}
        for name, value in sections.items():
            current = getattr(self, name)
            updates[name] = current.model_copy(update=value) if isinstance(value, dict) else value
        return self.model_copy(update=updates)


SECTIONS: dict[str, type[_Frozen]] = {
    "model": ModelConfig,
    "cache": CacheConfig,
    "scheduler": SchedulerConfig,
    "parallel": ParallelConfig,
    "compilation": CompilationConfig,
}


def config_from_flat(**kwargs: Any) -> VllmConfig:
    """Build a VllmConfig from flat field names (``dtype=..., block_size=...``), as LLM() and the CLI
    do. Unknown names fail with the list of valid ones."""
    per_section: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    owner = {f: s for s, cls in SECTIONS.items() for f in cls.model_fields}
    for key, value in kwargs.items():
        if key not in owner:
            raise TypeError(f"unknown engine argument {key!r}; valid: {', '.join(sorted(owner))}")
        per_section[owner[key]][key] = value
    return VllmConfig(**{s: SECTIONS[s](**v) for s, v in per_section.items()})
