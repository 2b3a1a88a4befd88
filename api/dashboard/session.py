"""The dashboard's login: the API token typed once, kept as a cookie.

The cookie holds an HMAC of the token, never the token: it opens the dashboard only (the
API still wants the token itself), and it stops working when the token changes.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from fastapi import Request, Response

COOKIE = "journeys_dashboard"
MAX_AGE = 12 * 3600
HOME = "/dashboard"
# Where a login may send the browser on: a dashboard path, nothing else (no open redirect).
_SAFE_NEXT = re.compile(r"^/dashboard(?:/[A-Za-z0-9_./-]*)?(?:\?[A-Za-z0-9_.:=&%+-]*)?$")


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"journeys dashboard session", hashlib.sha256).hexdigest()


def token_matches(given: str, token: str) -> bool:
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def signed_in(request: Request, token: str) -> bool:
    cookie = request.cookies.get(COOKIE)
    return bool(token) and cookie is not None and hmac.compare_digest(cookie.encode(), session_value(token).encode())


def safe_next(target: str | None) -> str:
    if not target or not _SAFE_NEXT.match(target) or "//" in target or "/.." in target:
        return HOME
    return target


def start_session(response: Response, request: Request, token: str) -> None:
    response.set_cookie(COOKIE, session_value(token), max_age=MAX_AGE, path=HOME, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def end_session(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path=HOME, httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
