"""Click options generated from the pydantic fields of ``vllm.config`` (one source of truth).

``@engine_options`` adds one option per config field (``max_model_len`` -> ``--max-model-len``);
``config_from_cli(kwargs)`` turns the command's keyword arguments back into a ``VllmConfig``.
Options default to ``None`` so that only what the user typed overrides the config defaults.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

import click
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from vllm.config import SECTIONS, VllmConfig, config_from_flat

F = TypeVar("F", bound=Callable[..., Any])

# field name -> (section, FieldInfo), in section order
ENGINE_FIELDS: dict[str, tuple[str, FieldInfo]] = {
    name: (section, info)
    for section, cls in SECTIONS.items()
    for name, info in cls.model_fields.items()
}


def _strip_optional(annotation: Any) -> Any:
    """``X | None`` -> ``X`` (only for single-type unions)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _option_for(name: str, info: FieldInfo) -> Callable[[F], F]:
    flag = "--" + name.replace("_", "-")
    annotation = _strip_optional(info.annotation)
    origin = typing.get_origin(annotation)
    default = info.default
    help_text = f"{info.description or name} [default: {default!r}]"
    if annotation is bool:
        return click.option(f"{flag}/--no-{name.replace('_', '-')}", name, default=None, help=help_text)
    if origin is Literal:
        choices = [str(c) for c in typing.get_args(annotation)]
        return click.option(flag, name, type=click.Choice(choices), default=None, help=help_text)
    if origin is tuple:
        item = typing.get_args(annotation)[0]
        kind = "integers" if item is int else "values"
        return click.option(
            flag, name, multiple=True, default=(),
            help=f"{help_text} (repeat the flag or give comma-separated {kind})",
        )
    click_type = {int: int, float: float, str: str}.get(annotation, str)
    return click.option(flag, name, type=click_type, default=None, help=help_text)


def engine_options(
    func: F | None = None, *, exclude: Iterable[str] = ()
) -> F | Callable[[F], F]:
    """Decorator adding every engine option; use bare or as ``engine_options(exclude={...})``."""
    skip = set(exclude)

    def decorate(f: F) -> F:
        # click applies decorators bottom-up; reverse so --help lists fields in config order
        for name, (_, info) in reversed(ENGINE_FIELDS.items()):
            if name not in skip:
                f = _option_for(name, info)(f)
        return f

    return decorate(func) if func is not None else decorate


def _convert_tuple(name: str, values: Iterable[str]) -> tuple[Any, ...]:
    annotation = _strip_optional(ENGINE_FIELDS[name][1].annotation)
    item = typing.get_args(annotation)[0] if typing.get_args(annotation) else str
    parts = [p.strip() for v in values for p in str(v).split(",") if p.strip()]
    if item is int:
        try:
            return tuple(int(p) for p in parts)
        except ValueError:
            raise ValueError(f"{name} expects integers, got {list(values)!r}") from None
    return tuple(parts)


def engine_kwargs_from_cli(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Only the engine fields the user actually set (others, like --host, are ignored)."""
    out: dict[str, Any] = {}
    for name, value in kwargs.items():
        if name not in ENGINE_FIELDS or value is None:
            continue
        if isinstance(value, (tuple, list)):
            if not value:
                continue
            value = _convert_tuple(name, value)
        out[name] = value
    return out


def config_from_cli(kwargs: dict[str, Any]) -> VllmConfig:
    """Build the VllmConfig; invalid values raise ValueError naming the field."""
    try:
        return config_from_flat(**engine_kwargs_from_cli(kwargs))
    except ValidationError as exc:
        msgs = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
            msgs.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        raise ValueError("invalid engine arguments: " + "; ".join(msgs)) from None
