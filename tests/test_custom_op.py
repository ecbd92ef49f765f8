"""CustomOp dispatch on a fake platform, custom_ops parsing, out-of-tree impls, dispatch_table()."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import vllm.model_executor.layers  # noqa: F401  (registers the in-tree ops before each copy below)
import vllm.platforms as platforms
from vllm.model_executor import custom_op as co
from vllm.model_executor.custom_op import CustomOp, Dispatch, OpsSpec, set_custom_ops
from vllm.platforms.interface import Platform


class FakePlatform(Platform):
    """Prefers cuda, then cpu; `available` says which methods have their kernels loaded."""

    name = "fake"
    op_method_order = ("cuda", "cpu", "native")

    def __init__(self, available: set[str]) -> None:
        self.available = available

    def method_available(self, method: str) -> tuple[bool, str]:
        if method == "native" or method in self.available:
            return True, f"fake {method} kernels loaded"
        return False, f"fake {method} kernels missing"


def use_platform(monkeypatch: pytest.MonkeyPatch, *available: str) -> FakePlatform:
    fake = FakePlatform(set(available))
    monkeypatch.setattr(platforms, "_current", fake)
    return fake


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Test ops and out-of-tree impls never leak into the real registry."""
    monkeypatch.setattr(CustomOp, "registry", dict(CustomOp.registry))
    monkeypatch.setattr(CustomOp, "_oot_impls", {})
    monkeypatch.setattr(co, "_ops_spec", OpsSpec())
    yield


def make_op(name: str, *methods: str) -> type[CustomOp]:
    """Register an op implementing forward_native plus `methods`; each returns its own name."""
    body: dict[str, Any] = {"forward_native": lambda self, x: ("native", x)}
    for m in methods:
        body[f"forward_{m}"] = lambda self, x, m=m: (m, x)
    return CustomOp.register(name)(type(f"Op_{name}", (CustomOp,), body))


def test_first_available_method_in_platform_order(monkeypatch: pytest.MonkeyPatch) -> None:
    use_platform(monkeypatch, "cuda", "cpu")
    op = make_op("t_both", "cuda", "cpu")()
    assert op.dispatch == Dispatch("cuda", "fake cuda kernels loaded")
    assert op(3) == ("cuda", 3)


def test_skips_unavailable_method(monkeypatch: pytest.MonkeyPatch) -> None:
    use_platform(monkeypatch, "cpu")
    op = make_op("t_both", "cuda", "cpu")()
    assert op.dispatch.method == "cpu"
    assert op(1) == ("cpu", 1)


def test_skips_methods_the_class_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    use_platform(monkeypatch, "cuda", "cpu")
    op = make_op("t_cpu_only", "cpu")()
    assert op.dispatch.method == "cpu"


def test_falls_back_to_native_with_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    use_platform(monkeypatch)
    op = make_op("t_both", "cuda", "cpu")()
    assert op.dispatch.method == "native"
    assert "forward_cuda: fake cuda kernels missing" in op.dispatch.reason
    assert "forward_cpu: fake cpu kernels missing" in op.dispatch.reason
    assert op(2) == ("native", 2)


def test_native_only_op_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    use_platform(monkeypatch, "cuda", "cpu")
    op = make_op("t_native", "xpu")()  # xpu is not in the fake platform's order
    assert op.dispatch == Dispatch("native", "no kernel for fake")


def test_dispatch_is_fixed_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = use_platform(monkeypatch, "cuda")
    op = make_op("t_both", "cuda", "cpu")()
    fake.available.clear()
    assert op(0) == ("cuda", 0)  # no per-call re-dispatch
    assert make_op("t_both2", "cuda")()(0) == ("native", 0)


def test_call_goes_straight_to_the_chosen_method(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bound implementation is the instance's ``forward`` (no extra frame per call), and
    modules built from the same class keep their own choice."""
    fake = use_platform(monkeypatch, "cpu")
    op_cls = make_op("t_direct", "cuda", "cpu")
    op = op_cls()
    assert op.forward == op.forward_cpu
    fake.available.add("cuda")
    other = op_cls()
    assert other.forward == other.forward_cuda and other(4) == ("cuda", 4)
    assert op(4) == ("cpu", 4)
    assert CustomOp.forward(op, 4) == ("cpu", 4)  # the class-level forward still dispatches


def test_forward_hooks_still_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The direct call (no nn.Module.__call__) steps aside as soon as a hook is registered."""
    import torch

    from vllm.model_executor.layers.linear import ReplicatedLinear

    use_platform(monkeypatch, "cpu")
    op = make_op("t_hooked", "cpu")()
    seen: list[object] = []
    handle = op.register_forward_hook(lambda mod, args, out: seen.append(out))
    assert op(7) == ("cpu", 7) and seen == [("cpu", 7)]
    handle.remove()
    op(8)
    assert seen == [("cpu", 7)]
    lin = ReplicatedLinear(4, 2)
    lin.weight.data.normal_()
    pre = lin.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    assert torch.count_nonzero(lin(torch.ones(3, 4))) == 0
    pre.remove()
    assert torch.count_nonzero(lin(torch.ones(3, 4))) > 0


@pytest.mark.parametrize(
    "entries,on,off",
    [
        (["all"], {"t_a", "t_b"}, set()),
        (["none"], set(), {"t_a", "t_b"}),
        ([], {"t_a", "t_b"}, set()),
        (["none", "+t_a"], {"t_a"}, {"t_b"}),
        (["all", "-t_b"], {"t_a"}, {"t_b"}),
        (["-t_a"], {"t_b"}, {"t_a"}),
        ([" all ", "all"], {"t_a", "t_b"}, set()),
    ],
)
def test_custom_ops_parsing(
    monkeypatch: pytest.MonkeyPatch, entries: list[str], on: set[str], off: set[str]
) -> None:
    use_platform(monkeypatch, "cpu")
    make_op("t_a", "cpu")
    make_op("t_b", "cpu")
    set_custom_ops(entries)
    for name in on:
        assert CustomOp.registry[name]().dispatch.method == "cpu"
    for name in off:
        assert CustomOp.registry[name]().dispatch == Dispatch("native", "disabled by custom_ops")


@pytest.mark.parametrize(
    "entries,message",
    [
        (["all", "none"], "'all' and 'none' cannot both be given"),
        (["+t_a", "-t_a"], "both enabled and disabled"),
        (["+nope"], "unknown op 'nope'; registered ops: "),
        (["t_a"], "entry 't_a' is invalid"),
        (["+"], "entry '+' is invalid"),
        ([""], "entry '' is invalid"),
    ],
)
def test_custom_ops_invalid(entries: list[str], message: str) -> None:
    make_op("t_a", "cpu")
    with pytest.raises(ValueError) as err:
        set_custom_ops(entries)
    assert message in str(err.value)
    if "registered ops" in message:
        assert "t_a" in str(err.value) and "rms_norm" in str(err.value)


def test_out_of_tree_impl_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    use_platform(monkeypatch)  # no in-tree kernels available at all
    op_cls = make_op("t_both", "cuda", "cpu")

    @CustomOp.register_impl("t_both", "cpu")
    def my_cpu(self: CustomOp, x: int) -> tuple[str, int]:
        assert isinstance(self, op_cls)  # bound as a method
        return ("oot", x)

    op = op_cls()
    assert op.dispatch == Dispatch("cpu", "out-of-tree registration", out_of_tree=True)
    assert op(5) == ("oot", 5)


def test_out_of_tree_impl_for_method_class_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    use_platform(monkeypatch, "cpu")
    op_cls = make_op("t_native_only")
    CustomOp.register_impl("t_native_only", "cuda")(lambda self, x: ("oot-cuda", x))
    assert op_cls()(7) == ("oot-cuda", 7)


def test_out_of_tree_respects_custom_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    use_platform(monkeypatch, "cpu")
    op_cls = make_op("t_a", "cpu")
    CustomOp.register_impl("t_a", "cpu")(lambda self, x: ("oot", x))
    set_custom_ops(["-t_a"])
    assert op_cls()(1) == ("native", 1)


def test_register_impl_rejects_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown method 'tpu'"):
        CustomOp.register_impl("rms_norm", "tpu")


def test_duplicate_registration_rejected() -> None:
    make_op("t_dup")
    with pytest.raises(ValueError, match="already registered"):
        make_op("t_dup")


def test_dispatch_table_on_fake_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    use_platform(monkeypatch, "cpu")
    make_op("t_cpu_only", "cpu")
    table = CustomOp.dispatch_table()
    assert list(table) == sorted(table)
    assert table["t_cpu_only"] == Dispatch("cpu", "fake cpu kernels loaded")
    for name in ("rms_norm", "silu_and_mul", "rotary_embedding", "reshape_and_cache"):
        assert name in table  # every in-tree op is registered by importing the layers
        assert table[name].method in ("cpu", "native")


def test_dispatch_table_on_this_machine() -> None:
    """The real platform: forward_cpu where vllm._C_cpu is loaded, else native with the reason."""
    from vllm import _custom_ops

    platforms.reset_platform()
    try:
        if platforms.current_platform.name != "cpu":
            pytest.skip(f"not a CPU host ({platforms.current_platform.name})")
        table = CustomOp.dispatch_table()
        if _custom_ops.loaded("_C_cpu"):
            assert table["rms_norm"].method == "cpu"
            assert table["rms_norm"].reason == "vllm._C_cpu loaded"
        else:
            assert table["rms_norm"].method == "native"
            assert "vllm._C_cpu not loaded" in table["rms_norm"].reason
    finally:
        platforms.reset_platform()
