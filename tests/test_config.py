"""Frozen configs: validation errors name the field and the limit; flat kwargs map to sections."""

from __future__ import annotations

import pydantic
import pytest

from vllm.config import (
    SECTIONS,
    CacheConfig,
    CompilationConfig,
    ModelConfig,
    ParallelConfig,
    SchedulerConfig,
    VllmConfig,
    config_from_flat,
)


def test_defaults() -> None:
    cfg = VllmConfig()
    assert cfg.model.model == "" and cfg.model.dtype == "auto"
    assert cfg.cache.enable_prefix_caching and cfg.cache.block_size is None
    assert cfg.parallel.tensor_parallel_size == 1 and cfg.parallel.backend == "uni"
    assert cfg.compilation.custom_ops == ("all",)
    assert cfg.scheduler.policy == "fcfs"


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: ModelConfig(dtype="fp8"), "dtype='fp8' is not supported"),
        (lambda: ModelConfig(max_model_len=0), "max_model_len=0 must be >= 1"),
        (lambda: CacheConfig(block_size=12), "block_size=12 must be a power of two"),
        (lambda: CacheConfig(block_size=0), "block_size=0 must be a power of two"),
        (lambda: CacheConfig(gpu_memory_utilization=1.5), "gpu_memory_utilization=1.5 must be in (0, 1]"),
        (lambda: CacheConfig(gpu_memory_utilization=0.0), "gpu_memory_utilization=0.0"),
        (lambda: SchedulerConfig(max_num_seqs=0), "must be >= 1"),
        (lambda: SchedulerConfig(policy="lifo"), "policy"),
        (lambda: ParallelConfig(tensor_parallel_size=0), "tensor_parallel_size=0 must be >= 1"),
        (lambda: ParallelConfig(distributed_executor_backend="mpi"), "distributed_executor_backend"),
        (lambda: ModelConfig(no_such_field=1), "no_such_field"),
    ],
)
def test_invalid_values_raise_value_error(build, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError) as err:  # pydantic.ValidationError is a ValueError
        build()
    assert message in str(err.value)


def test_chunked_prefill_budget_check() -> None:
    with pytest.raises(ValueError, match="needs enable_chunked_prefill"):
        config_from_flat(max_model_len=2048, max_num_batched_tokens=512, enable_chunked_prefill=False)
    ok = config_from_flat(max_model_len=2048, max_num_batched_tokens=512)
    assert ok.scheduler.enable_chunked_prefill


def test_frozen() -> None:
    cfg = VllmConfig()
    with pytest.raises(pydantic.ValidationError):
        cfg.model.dtype = "float32"  # type: ignore[misc]


def test_replace_returns_updated_copy() -> None:
    cfg = VllmConfig()
    new = cfg.replace(cache={"block_size": 32}, parallel=ParallelConfig(tensor_parallel_size=2))
    assert new.cache.block_size == 32 and new.parallel.tensor_parallel_size == 2
    assert new.parallel.backend == "mp"
    assert cfg.cache.block_size is None  # original untouched


def test_config_from_flat_routes_fields() -> None:
    cfg = config_from_flat(
        dtype="bfloat16", block_size=16, max_num_seqs=4, tensor_parallel_size=2,
        distributed_executor_backend="ray", enforce_eager=True, custom_ops=("none", "+rms_norm"),
    )
    assert cfg.model.dtype == "bfloat16"
    assert cfg.cache.block_size == 16
    assert cfg.scheduler.max_num_seqs == 4
    assert cfg.parallel.backend == "ray"
    assert cfg.compilation.enforce_eager and cfg.compilation.custom_ops == ("none", "+rms_norm")


def test_config_from_flat_unknown_name_lists_valid() -> None:
    with pytest.raises(TypeError) as err:
        config_from_flat(blocksize=16)
    assert "unknown engine argument 'blocksize'" in str(err.value)
    assert "block_size" in str(err.value)


def test_field_names_are_unique_across_sections() -> None:
    """config_from_flat relies on each flat name belonging to exactly one section."""
    seen: dict[str, str] = {}
    for section, cls in SECTIONS.items():
        for field in cls.model_fields:
            assert field not in seen, f"{field} in both {seen.get(field)} and {section}"
            seen[field] = section
    assert set(SECTIONS) == set(VllmConfig.model_fields)


def test_every_field_is_documented() -> None:
    for cls in (*SECTIONS.values(), CompilationConfig):
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.__name__}.{name} has no description (it becomes --help)"
