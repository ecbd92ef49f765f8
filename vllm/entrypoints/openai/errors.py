"""Errors in OpenAI's format: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from vllm.engine.core_client import EngineDeadError  # noqa: F401 - re-exported

M = TypeVar("M", bound=BaseModel)

_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    404: "NotFoundError",
    413: "RequestTooLargeError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
}


class APIError(Exception):
    """Raised anywhere in the serving layer; turned into a JSON error response."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": _TYPES.get(self.status, "Error"),
                          "param": self.param, "code": self.code or self.status}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


_FIELD = re.compile(r"^([a-z_][a-z0-9_]*)\b")


def from_value_error(exc: ValueError) -> APIError:
    """SamplingParams/InputProcessor errors start with the field name: use it as ``param``."""
    message = str(exc)
    match = _FIELD.match(message)
    return APIError(400, message, param=match.group(1) if match else None)


def from_validation_error(exc: ValidationError) -> APIError:
    errors = exc.errors()
    parts, params = [], []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        params.append(loc)
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return APIError(400, "; ".join(parts) or "invalid request",
                    param=params[0] if params else None)


def parse_body(raw: bytes, model: type[M]) -> M:
    """JSON body -> pydantic model, or APIError(400) naming what is wrong."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise APIError(400, "request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
