"""POST /customers/import: the CSV import of `journeys import`, over HTTP."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from api.deps import ServicesDep, require_token
from api.edge import EdgeRoute
from api.limits import body_limit
from core.intake.importing import ImportFileError, ImportReport, ImportStopped, csv_rows, decode, import_customers

router = APIRouter(prefix="/customers", tags=["customers"], dependencies=[Depends(require_token)],
                   route_class=EdgeRoute)

MAX_BYTES = body_limit("/customers/import").bytes
MEDIA_TYPES = ("text/csv", "application/csv")
EXAMPLE = (
    "id,phone,first_name,timezone,sms_consent,consent_source,consent_at,consent_text,attr_shoe_size\n"
    "c-1001,(201) 555-0123,Ana,America/New_York,opted_in,checkout_form,2026-01-31T10:00:00Z,"
    "\"Text me offers from Nordic Shoes. Msg&data rates may apply. Reply STOP to cancel.\",38\n"
    "c-1002,+46 70 123 45 67,Erik,Europe/Stockholm,,,,,44\n"
)


class ImportProblem(BaseModel):
    detail: str


class ImportFileInvalid(BaseModel):
    detail: list[dict[str, Any]]


@router.post(
    "/import",
    response_model=ImportReport,
    responses={
        413: {"model": ImportProblem, "description": f"The body is larger than {MAX_BYTES // (1024 * 1024)} MB"},
        415: {"model": ImportProblem, "description": "The body is not sent as `text/csv`"},
        422: {"model": ImportFileInvalid, "description": "The file cannot be imported: not UTF-8, not CSV, no `id` "
                                                   "column, or a column that is not known"},
        503: {"model": ImportProblem, "description": "Temporal could not be reached mid-import: the rows before "
                                               "were saved; send the same file again to finish"},
    },
    openapi_extra={"requestBody": {"required": True, "description": "The CSV file itself (UTF-8; commas, "
                                   "semicolons or tabs), not a multipart form", "content": {
                                       "text/csv": {"schema": {"type": "string"}, "example": EXAMPLE}}}},
)
async def import_csv(request: Request, svc: ServicesDep) -> ImportReport:
    """Create or update customers from a CSV file sent as the body
    (`Content-Type: text/csv`, at most 20 MB), e.g.
    `curl --data-binary @customers.csv -H 'Content-Type: text/csv' ...`.

    Columns: `id` (required), `phone` (any common format; stored as E.164),
    `first_name`, `last_name`, `email`, `locale`, `timezone` (IANA), `birthday`
    (YYYY-MM-DD), `sms_consent` (opted_in | opted_out | none), `consent_source`,
    `consent_at` (ISO 8601 with a zone; default: now), `consent_text` (the disclosure
    the customer agreed to: required to opt in), and `attr_<name>` for custom
    attributes. Empty cells leave the field as it is.

    Each row is checked in full: a bad one is rejected (line, counting the header as
    1; field; reason) and the others go on. Sending the same file again updates, never
    duplicates. A consent change fires `opted_in` / `opted_out` (which may start
    journeys); no double opt-in confirmation text is sent: the row is the evidence."""
    media_type, _, parameters = request.headers.get("content-type", "").partition(";")
    if media_type.strip().lower() not in MEDIA_TYPES:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            "send the CSV file itself as the body, with Content-Type: text/csv")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BYTES:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BYTES:
            raise _too_large()
    try:
        rows = await asyncio.to_thread(_rows, bytes(body), _charset(parameters))
        return await import_customers(svc.router, rows, source="import:api")
    except ImportFileError as err:
        raise RequestValidationError([{"type": "value_error", "loc": ("body",), "msg": str(err),
                                       "input": None}]) from None
    except ImportStopped as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(err)) from None


def _rows(body: bytes, charset: str | None) -> list[dict[str, str]]:
    """All of it, before anything is written: a file that is not CSV changes nothing."""
    return list(csv_rows(io.StringIO(decode(body, charset), newline="")))


def _charset(parameters: str) -> str | None:
    for parameter in parameters.split(";"):
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


def _too_large() -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                         f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB: split it, or use "
                         "`journeys import` on the server")
