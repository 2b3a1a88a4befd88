"""What every route does before FastAPI reads its body (FastAPI parses a body before it
runs the route's dependencies, so a token dependency alone comes too late):

1. a token-protected route checks the bearer token first: 401/403, body unread;
2. the body is bounded by the route's limit (api/limits.py): a Content-Length over it
   gets 413 at once, and a body that passes it while being read gets 413 there and
   nothing more is read;
3. a JSON body is parsed strictly: NaN, Infinity, numbers out of range, lone
   surrogates and nesting deeper than MAX_JSON_DEPTH get 400 saying what and where.
"""

from __future__ import annotations

import hmac
import json
import math
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive

from api.deps import require_token
from api.limits import MAX_ECHO, MAX_JSON_DEPTH, BodyLimit, body_limit

BODY_METHODS = {"POST", "PUT", "PATCH"}


class Problem(BaseModel):
    detail: str


class EdgeRoute(APIRoute):
    """The route class of every router of the service (create_app checks it)."""

    strict_json = True  # parse a JSON body strictly before the route (3. above)

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        self.body_limit = body_limit(path)
        self.needs_token = any(getattr(d, "dependency", None) is require_token
                               for d in kwargs.get("dependencies") or ())
        if BODY_METHODS & set(kwargs.get("methods") or ()):
            kwargs["responses"] = {**_described(self.body_limit), **(kwargs.get("responses") or {})}
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        limit, needs_token, path, strict = self.body_limit, self.needs_token, self.path, self.strict_json

        async def at_the_edge(request: Request) -> Response:
            if needs_token:
                check_token(request)
            receive = bounded(request, limit, f"{request.method} {path}")
            if strict and is_json(request.headers.get("content-type", "")):
                body = await read_all(receive)
                problem = strict_json_problem(body) if body else None
                if problem:
                    raise HTTPException(status.HTTP_400_BAD_REQUEST, f"the body is not strict JSON: {problem}")
                receive = replay(body, request.receive)
            return await handler(Request(request.scope, receive))

        return at_the_edge


class SignedWebhookRoute(EdgeRoute):
    """A webhook signed over its raw bytes (Shopify, WooCommerce): the body limit as
    everywhere, but the body is not parsed before the route has checked the signature;
    the route parses it strictly itself (``strict_json_problem``) once it is proven."""

    strict_json = False


def _described(limit: BodyLimit) -> dict[int | str, dict[str, Any]]:
    return {
        400: {"model": Problem, "description": "The body is not strict JSON: `NaN`, `Infinity`, a number out of "
                                               "range, a lone surrogate (`\\ud800`) or nesting deeper than "
                                               f"{MAX_JSON_DEPTH} levels"},
        413: {"model": Problem, "description": f"The body is larger than {limit.text} ({limit.bytes:,} bytes), "
                                               "the most this route takes"},
    }


def check_token(request: Request) -> None:
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not credentials:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(credentials.encode(), request.app.state.services.api_token.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this token is not valid")


def too_large(limit: BodyLimit, route: str) -> HTTPException:
    hint = f": {limit.hint}" if limit.hint else ""
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                         f"the body is larger than {limit.text}, the most {route} takes{hint}")


def bounded(request: Request, limit: BodyLimit, route: str) -> Receive:
    """The request's receive, counting: it raises 413 as soon as the body passes the limit."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit.bytes:
        raise too_large(limit, route)
    receive, received = request.receive, 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit.bytes:
                raise too_large(limit, route)
        return message

    return counted


async def read_all(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the connection's own messages (a disconnect)."""
    pending = True

    async def again() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


def is_json(content_type: str) -> bool:
    """As FastAPI decides to parse a body as JSON: application/json or application/*+json."""
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class _NotStrict(ValueError):
    pass


def _constant(name: str) -> Any:
    raise _NotStrict(f"`{name}` is not a JSON number (numbers must be finite)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotStrict(f"`{text[:MAX_ECHO]}` is out of range for a number")
    return value


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def strict_json_problem(body: bytes) -> str | None:
    """What makes ``body`` not strict JSON, or None. Invalid JSON syntax is left to
    FastAPI, whose 422 gives the position."""
    try:
        document = json.loads(body, parse_constant=_constant, parse_float=_finite)
    except _NotStrict as err:
        return str(err)
    except json.JSONDecodeError:
        return None
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    except RecursionError:
        return f"it is nested deeper than {MAX_JSON_DEPTH} levels"
    except ValueError as err:  # an integer of more than 4,300 digits
        return str(err)[:MAX_ECHO]
    # Lone surrogates can only come from \ud800-\udfff escapes: look only if there is one.
    return _walk(document, ["body"], 1, texts=bool(_SURROGATE_ESCAPE.search(body)))


def json_object(body: bytes, one: str) -> dict[str, Any]:
    """A signed webhook's body as a JSON object (signed routes read the raw body
    themselves), or a 400 saying why not; ``one``: what the object is ("one report")."""
    problem = strict_json_problem(body)
    if problem:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"the body is not strict JSON: {problem}")
    try:
        payload = json.loads(body)
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"the body must be a JSON object ({one})")
    return payload


def _walk(value: Any, where: list[Any], depth: int, *, texts: bool) -> str | None:
    if isinstance(value, str):
        return None if not texts or _is_text(value) else f"{_place(where)} holds a lone surrogate, which is not text"
    if not isinstance(value, dict | list):
        return None
    if depth > MAX_JSON_DEPTH:
        return f"{_place(where)} is nested deeper than {MAX_JSON_DEPTH} levels"
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if texts and isinstance(key, str) and not _is_text(key):
            return f"a key in {_place(where)} holds a lone surrogate, which is not text"
        if isinstance(item, dict | list) or (texts and isinstance(item, str)):
            where.append(key)
            problem = _walk(item, where, depth + 1, texts=texts)
            if problem:
                return problem
            where.pop()
    return None


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _place(where: list[Any]) -> str:
    parts = [str(where[0])]
    for key in where[1:]:
        parts.append(f"[{key}]" if isinstance(key, int) else "." + key.encode("utf-8", "backslashreplace")
                     .decode()[:MAX_ECHO])
    return "".join(parts)
