"""Request dependencies: the shared services, bearer-token auth, Twilio signatures."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from twilio.request_validator import RequestValidator

from api.services import Services

_bearer = HTTPBearer(auto_error=False, description="JOURNEYS_API_TOKEN")


# The dependencies are coroutines though they never wait: FastAPI runs a plain function
# in its thread pool, two thread hops per request for nothing.


async def services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(services)]


async def require_token(svc: ServicesDep,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(credentials.credentials.encode(), svc.api_token.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this token is not valid")


async def twilio_form(request: Request, svc: ServicesDep,
                      signature: Annotated[str | None, Header(alias="X-Twilio-Signature")] = None) -> dict[str, str]:
    """The webhook's form fields, once its signature proves it came from Twilio."""
    form = {key: str(value) for key, value in (await request.form()).items()}
    url = svc.public_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not svc.twilio_auth_token or not signature or not RequestValidator(svc.twilio_auth_token).validate(
            url, form, signature):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid Twilio signature")
    # Checked as sent; used without NUL characters, which no SMS carries and the
    # databases cannot store.
    return {key: value.replace("\x00", "") for key, value in form.items()}


TwilioForm = Annotated[dict[str, str], Depends(twilio_form)]
