"""CustomOp: every layer's platform dispatch, chosen once at construction.

A subclass implements ``forward_native`` (pure PyTorch: the spec and the test oracle) and any of
``forward_cuda``, ``forward_hip``, ``forward_cpu``, ``forward_xpu``. At ``__init__`` the op walks
the current platform's method order and binds the first method that (a) the class or an
out-of-tree registration implements and (b) whose kernels are loaded; otherwise native.

Enable/disable by name with ``set_custom_ops(["all" | "none", "+name", "-name"])``.
Out-of-tree code registers an implementation for (op, platform method) with
``CustomOp.register_impl("rms_norm", "cpu")``; it wins over the in-tree method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch.nn as nn
from torch.nn.modules import module as _nn_module

METHODS = ("cuda", "hip", "cpu", "xpu", "native")


@dataclass(frozen=True)
class Dispatch:
    method: str  # e.g. "cpu"; the bound method is forward_<method>
    reason: str
    out_of_tree: bool = False


@dataclass(frozen=True)
class OpsSpec:
    """Parsed ``custom_ops`` setting."""

    default_on: bool = True
    enabled: frozenset[str] = frozenset()
    disabled: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: list[str] | tuple[str, ...]) -> OpsSpec:
        base: bool | None = None
        on: set[str] = set()
        off: set[str] = set()
        for raw in entries:
            item = raw.strip()
            if item in ("all", "none"):
                if base is not None and base != (item == "all"):
                    raise ValueError("custom_ops: 'all' and 'none' cannot both be given")
                base = item == "all"
            elif item[:1] in "+-" and len(item) > 1:
                name = item[1:]
                if name not in CustomOp.registry:
                    known = ", ".join(sorted(CustomOp.registry))
                    raise ValueError(f"custom_ops: unknown op {name!r}; registered ops: {known}")
                (on if item[0] == "+" else off).add(name)
            else:
                raise ValueError(
                    f"custom_ops entry {item!r} is invalid; use 'all', 'none', '+<op>' or '-<op>'"
                )
        both = on & off
        if both:
            raise ValueError(f"custom_ops: {sorted(both)} both enabled and disabled")
        return cls(base if base is not None else True, frozenset(on), frozenset(off))

    def is_enabled(self, name: str) -> bool:
        if name in self.enabled:
            return True
        if name in self.disabled:
            return False
        return self.default_on


_ops_spec = OpsSpec()


def set_custom_ops(entries: list[str] | tuple[str, ...]) -> None:
    """Apply a ``custom_ops`` setting to ops constructed from now on."""
    global _ops_spec
    _ops_spec = OpsSpec.parse(entries)


def has_forward_hooks(module: nn.Module) -> bool:
    """Whether a call must take ``nn.Module.__call__`` (a forward (pre-)hook is registered)."""
    return bool(module._forward_hooks or module._forward_pre_hooks
                or _nn_module._global_forward_hooks or _nn_module._global_forward_pre_hooks)


class DirectCall(nn.Module):
    """A module whose call goes straight to ``forward`` unless a forward hook is registered.

    ``nn.Module.__call__`` costs ~0.7 us per call in its generic hook/tracing machinery, and an
    eager decode step makes ~450 module calls (~0.3 ms, 1-2% of a 16-sequence step on 2 cores).
    Forward hooks still work: with any registered, calls take the generic path.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if has_forward_hooks(self):
            return nn.Module.__call__(self, *args, **kwargs)
        return self.forward(*args, **kwargs)


class CustomOp(DirectCall):
    """Base of every layer that has per-platform implementations."""

    name: ClassVar[str] = ""
    registry: ClassVar[dict[str, type[CustomOp]]] = {}
    _oot_impls: ClassVar[dict[tuple[str, str], Callable[..., Any]]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.dispatch = self.resolve()
        impl = self._oot_impls.get((self.name, self.dispatch.method))
        if impl is not None:
            self._forward_method = impl.__get__(self)  # bind as a method
        else:
            self._forward_method = getattr(self, f"forward_{self.dispatch.method}")
        # nn.Module.__call__ looks up ``self.forward``: the bound implementation as an instance
        # attribute skips one Python frame per call (~450 op calls per decode step).
        self.forward = self._forward_method  # type: ignore[method-assign]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._forward_method(*args, **kwargs)

    def forward_native(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    # ---- registry --------------------------------------------------------------------
    @classmethod
    def register(cls, name: str) -> Callable[[type[CustomOp]], type[CustomOp]]:
        def wrap(op_cls: type[CustomOp]) -> type[CustomOp]:
            if name in cls.registry and cls.registry[name] is not op_cls:
                raise ValueError(f"CustomOp {name!r} is already registered")
            op_cls.name = name
            cls.registry[name] = op_cls
            return op_cls

        return wrap

    @classmethod
    def register_impl(cls, name: str, method: str) -> Callable[[Callable], Callable]:
        """Register an out-of-tree ``forward_<method>`` for op ``name`` without patching."""
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; one of {METHODS}")

        def wrap(fn: Callable) -> Callable:
            cls._oot_impls[(name, method)] = fn
            return fn

        return wrap

    @classmethod
    def implements(cls, method: str) -> bool:
        if (cls.name, method) in cls._oot_impls:
            return True
        return getattr(cls, f"forward_{method}") is not getattr(CustomOp, f"forward_{method}", None)

    @classmethod
    def resolve(cls) -> Dispatch:
        """Pick the implementation for the current platform (see module docstring)."""
        from vllm.platforms import current_platform

        if not _ops_spec.is_enabled(cls.name):
            return Dispatch("native", "disabled by custom_ops")
        skipped: list[str] = []
        for method in current_platform.op_method_order:
            if method == "native":
                break
            oot = (cls.name, method) in cls._oot_impls
            if not (oot or cls.implements(method)):
                continue
            if oot:
                return Dispatch(method, "out-of-tree registration", out_of_tree=True)
            ok, why = current_platform.method_available(method)
            if ok:
                return Dispatch(method, why)
            skipped.append(f"forward_{method}: {why}")
        reason = "; ".join(skipped) if skipped else f"no kernel for {current_platform.name}"
        return Dispatch("native", reason)

    @classmethod
    def dispatch_table(cls) -> dict[str, Dispatch]:
        """op name -> the implementation an instance would use now, and why."""
        import vllm.model_executor.layers  # noqa: F401  (registers every in-tree op)

        return {name: op_cls.resolve() for name, op_cls in sorted(cls.registry.items())}


# Methods a subclass may override; defined here so `implements` can compare against the base.
def _missing(self: CustomOp, *args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


for _m in ("cuda", "hip", "cpu", "xpu"):
    setattr(CustomOp, f"forward_{_m}", _missing)
