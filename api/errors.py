"""422s that name the field without echoing the request back: FastAPI's own handler
repeats each error's whole `input` (for a missing field, the whole body: megabytes)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.limits import MAX_ECHO

MAX_MESSAGE = 500


def short(value: Any, limit: int = MAX_ECHO) -> Any:
    """A scalar as it is (text cut at ``limit`` characters); anything else: None."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + "…"
    if isinstance(value, bool | float) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 10 ** 18 else None
    return None


def brief_errors(errors: Any) -> list[dict[str, Any]]:
    brief = []
    for error in errors:
        item: dict[str, Any] = {"type": error.get("type"), "loc": [short(p) for p in error.get("loc", ())],
                                "msg": short(str(error.get("msg", "")), MAX_MESSAGE)}
        if short(error.get("input")) is not None:
            item["input"] = short(error["input"])
        context = {key: short(value) for key, value in (error.get("ctx") or {}).items() if short(value) is not None}
        if context:
            item["ctx"] = context
        brief.append(item)
    return brief


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(brief_errors(exc.errors()))})
