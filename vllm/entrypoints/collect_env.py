"""`vllm collect-env`: platform and why it won, build info, extensions, versions, op dispatch."""

from __future__ import annotations

import json
import platform as py_platform
import sys
from typing import Any

import click


def collect() -> dict[str, Any]:
    import torch

    from vllm import envs
    from vllm.model_executor.custom_op import CustomOp
    from vllm.platforms import build_target, current_platform
    from vllm.platforms.cpu import cpu_flags, cpu_isa

    try:
        from vllm import _build_info as bi

        build = {"target": bi.TARGET_DEVICE, "isa": bi.BUILD_ISA, "torch": bi.TORCH_VERSION}
    except ImportError:
        build = {"target": build_target(), "isa": "n/a", "torch": "n/a"}
    ext_isa = None
    if current_platform.has_extension("_C_cpu"):
        from vllm import _C_cpu  # type: ignore[attr-defined]

        ext_isa = getattr(_C_cpu, "isa", lambda: None)()
    info: dict[str, Any] = {
        "platform": current_platform.name,
        "platform_reason": current_platform.selection_reason,
        "device": current_platform.device_name(),
        "build": build,
        "extensions": {k: ("loaded" if v is None else f"not loaded: {v}")
                       for k, v in current_platform.loaded_extensions.items()},
        "versions": {"python": sys.version.split()[0], **current_platform.versions(),
                     "cuda_runtime": str(torch.version.cuda),
                     "rocm": str(getattr(torch.version, "hip", None))},
        "os": py_platform.platform(),
        "cpu_isa": cpu_isa(),
        "cpu_kernel_isa": ext_isa,
        "cpu_vector_flags": sorted(f for f in cpu_flags() if f.startswith(("avx", "amx", "fma"))),
        "env": {name: str(getattr(envs, name)) for name in envs.describe()
                if name not in ("VLLM_API_KEY",)},
        "dispatch": {op: {"method": f"forward_{d.method}", "reason": d.reason}
                     for op, d in CustomOp.dispatch_table().items()},
    }
    try:
        from vllm.attention.selector import describe_backend

        info["attention_backend"] = describe_backend()
    except ImportError:
        pass
    return info


@click.command("collect-env")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def collect_env(as_json: bool) -> None:
    """Print the platform, build, extensions, versions and the op dispatch table."""
    try:
        info = collect()
    except (ValueError, RuntimeError) as e:  # bad VLLM_* value, ambiguous platform: no traceback
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"Platform: {info['platform']} ({info['platform_reason']})")
    click.echo(f"Device: {info['device']}")
    b = info["build"]
    click.echo(f"Build: target={b['target']} isa={b['isa']} torch={b['torch']}")
    for ext, status in info["extensions"].items():
        click.echo(f"Extension vllm.{ext}: {status}")
    click.echo("Versions: " + ", ".join(f"{k}={v}" for k, v in info["versions"].items()))
    click.echo(f"OS: {info['os']}")
    click.echo(f"CPU ISA: {info['cpu_isa']} (kernels: {info['cpu_kernel_isa']}); "
               f"flags: {' '.join(info['cpu_vector_flags'])}")
    if "attention_backend" in info:
        click.echo(f"Attention backend: {info['attention_backend']}")
    click.echo("Environment:")
    for name, value in info["env"].items():
        click.echo(f"  {name}={value}")
    click.echo("CustomOp dispatch:")
    width = max((len(op) for op in info["dispatch"]), default=0)
    for op, d in info["dispatch"].items():
        click.echo(f"  {op:<{width}} -> {d['method']:<14} ({d['reason']})")
