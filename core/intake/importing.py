"""Customer imports from CSV: `journeys import customers.csv` and `POST /customers/import`.

Every row is checked in full before anything is written for it; a row with a bad
field is rejected (its line, the field and a reason a person understands) and the
rest go on. Rows are written in chunks, one transaction each. Re-running a file
updates, never duplicates: customers are keyed by `id`, and consent evidence that is
already on file (same status, source, disclosure and time) is not recorded again.

A consent change announces itself the way `core.intake.profiles.upsert_customer` does it:
an `opted_in` / `opted_out` event with the id ``consent:<customer>:<status>:<time>``,
and only when the status actually changes. No double opt-in `confirm` text is sent:
the shop collected the consent already, and the row carries its evidence. Unchanged
rows cost no call to Temporal.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.clock import utcnow
from core.customers import suppressions
from core.event import EventIn, EventPath
from core.validation import opaque_customer_id
from messaging.phone import InvalidPhoneNumber, to_e164
from store.db import is_postgres, session_scope
from store.tables import ConsentRecord, Customer, Event, PhoneSuppression

COLUMNS = ("id", "phone", "first_name", "last_name", "email", "locale", "timezone", "birthday",
           "sms_consent", "consent_source", "consent_at", "consent_text")
ATTRIBUTE_PREFIX = "attr_"
CONSENT_VALUES = ("opted_in", "opted_out", "none")
CHUNK = 500  # rows per transaction
_ANNOUNCED = ("opted_in", "opted_out")
_MAX_LENGTH = {"first_name": 100, "last_name": 100, "email": 200, "consent_source": 64, "consent_text": 2000}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CLOCK_SKEW = timedelta(minutes=5)  # a consent_at this far ahead of our clock is still "now"


class ImportFileError(ValueError):
    """The file itself cannot be imported (not CSV, not UTF-8, no `id` column, ...)."""


class ImportStopped(RuntimeError):
    """The import could not go on (Temporal unreachable). Rows written so far are kept
    (``report`` counts them); running the same file again finishes the job."""

    def __init__(self, message: str, report: ImportReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class RejectedRow:
    line: int  # counting the header as line 1, as a spreadsheet numbers rows
    customer_id: str | None  # None when the id itself is missing or unusable (it may be personal data)
    field: str
    reason: str


@dataclass
class ImportReport:
    total: int = 0  # rows in the file, blank lines aside
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    consent_events: int = 0  # opted_in / opted_out events fired for consent that changed


# --- reading CSV ------------------------------------------------------------------------


def column_name(raw: str | None) -> str | None:
    """A header cell as a column name (None: no name); raises ImportFileError for one we do not know."""
    name = (raw or "").strip()
    if not name:
        return None
    if name.lower().startswith(ATTRIBUTE_PREFIX):
        attribute = name[len(ATTRIBUTE_PREFIX):].strip()
        if not attribute or "\x00" in attribute:
            raise ImportFileError(f"column {name!r} needs an attribute name after {ATTRIBUTE_PREFIX}, "
                                  "e.g. attr_shoe_size")
        return ATTRIBUTE_PREFIX + attribute
    if name.lower() in COLUMNS:
        return name.lower()
    raise ImportFileError(f"unknown column {name!r}: the columns are {', '.join(COLUMNS)}, "
                          f"and {ATTRIBUTE_PREFIX}<name> for custom attributes")


def check_columns(header: Iterable[str | None]) -> list[str | None]:
    """A header's column names (None for a column without a name); raises ImportFileError."""
    columns: list[str | None] = []
    for raw in header:
        name = column_name(raw)
        if name is not None and name in columns:
            raise ImportFileError(f"column {name!r} appears twice")
        columns.append(name)
    if "id" not in columns:
        raise ImportFileError("the file has no `id` column: the first line must name the columns, "
                              "e.g. id,phone,first_name,sms_consent,consent_text")
    return columns


def csv_rows(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """The rows of a CSV text as dicts keyed by column. The header is checked at the
    first ``next()``. A blank line gives ``{}`` (so line numbers stay right); cells past
    the header's columns, or under a column without a name, are kept under ``""``.
    Commas, semicolons or tabs: the header decides."""
    lines = iter(lines)
    first = next(lines, None)
    if first is not None:
        first = first.removeprefix("\ufeff")  # a byte-order mark left in (Excel writes one)
    if first is None or not first.strip():
        raise ImportFileError("the file is empty: the first line must name the columns, e.g. id,phone,first_name")
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(itertools.chain([first], lines), delimiter=delimiter)
    try:
        columns = check_columns(next(reader))
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                yield {}
                continue
            row: dict[str, str] = {}
            extra: list[str] = []
            for index, cell in enumerate(cells):
                name = columns[index] if index < len(columns) else None
                if name is None:
                    extra.append(cell)
                else:
                    row[name] = cell
            if any(cell.strip() for cell in extra):
                row[""] = ",".join(extra)
            yield row
    except csv.Error as err:
        raise ImportFileError(f"line {reader.line_num}: not valid CSV ({err})") from None


def decode(data: bytes, charset: str | None = None) -> str:
    """Bytes of an upload as text: UTF-8 (a byte-order mark is fine) unless told otherwise."""
    charset = (charset or "utf-8").strip().lower()
    if charset in ("utf-8", "utf8"):
        charset = "utf-8-sig"
    try:
        return data.decode(charset)
    except LookupError:
        raise ImportFileError(f"unknown character set {charset!r}: send UTF-8") from None
    except UnicodeDecodeError as err:
        raise ImportFileError(f"the file is not {charset.removesuffix('-sig').upper()} text (byte {err.start}): "
                              "save it as \"CSV UTF-8\"") from None


def scan_file(path: Path) -> int:
    """Check a file before importing it (readable, UTF-8, CSV, columns): its row count."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            return sum(1 for _ in csv_rows(stream))
    except UnicodeDecodeError as err:
        raise ImportFileError(f"{path} is not UTF-8 text (byte {err.start}): save it as \"CSV UTF-8\"") from None
    except OSError as err:
        raise ImportFileError(f"cannot read {path}: {err.strerror or err}") from None


# --- importing ----------------------------------------------------------------------------


async def import_customers(router: EventPath, rows: Iterable[dict[str, str]], *, source: str,
                           progress: Callable[[int], None] | None = None) -> ImportReport:
    """Create or update a customer per row. ``source``: where the import came from (e.g.
    `import:cli`); it is the consent source of rows without `consent_source`.
    ``progress`` is called with the number of rows handled since its previous call.

    Raises ImportFileError for a column it does not know (with the first row, before
    writing anything), and ImportStopped when an event cannot be routed (what was
    written stays written, and running the same rows again finishes the job).
    """
    importer = _Importer(router, source)
    report = ImportReport()
    pending: list[tuple[int, dict[Any, Any]]] = []
    for index, raw in enumerate(rows):
        pending.append((index + 2, raw))  # the header is line 1
        if len(pending) >= CHUNK:
            await _chunk(importer, pending, report, progress)
            pending = []
    if pending:
        await _chunk(importer, pending, report, progress)
    return report


async def _chunk(importer: _Importer, rows: list[tuple[int, dict[Any, Any]]], report: ImportReport,
                 progress: Callable[[int], None] | None) -> None:
    outcome = await asyncio.to_thread(importer.run, rows)
    report.total += outcome.total
    report.created += outcome.created
    report.updated += outcome.updated
    report.unchanged += outcome.unchanged
    report.rejected += outcome.rejected
    if progress is not None:
        progress(len(rows) - len(outcome.events))
    # One at a time: on PostgreSQL, concurrent first starts of a journey collide (see
    # admission.Admissions.admit), and SQLite writes one transaction at a time anyway.
    for line, event in outcome.events:
        try:
            await importer.router.route(event, source=importer.source)
        except Exception as err:
            raise ImportStopped(f"stopped at line {line}: the {event.type} event of customer {event.customer_id} "
                                f"could not be routed ({err}). The rows up to line {rows[-1][0]} are saved; run the "
                                "same import again to finish it, and check that this customer's journeys started.",
                                report) from err
        report.consent_events += 1
        if progress is not None:
            progress(1)


@dataclass
class _Row:
    line: int
    id: str
    phone: str | None = None
    profile: dict[str, Any] = field(default_factory=dict)  # first_name ... birthday, as given
    attributes: dict[str, str] = field(default_factory=dict)
    consent: str | None = None
    consent_source: str | None = None
    consent_at: datetime | None = None  # None: not given (the import's own time is used)
    consent_text: str | None = None


@dataclass
class _Outcome:
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    events: list[tuple[int, EventIn]] = field(default_factory=list)  # (line, event) to route


@dataclass
class _Consent:
    """What a row's consent does: reject it, record new evidence, announce a change."""

    rejected: RejectedRow | None = None
    record: ConsentRecord | None = None
    event: EventIn | None = None  # to route: a change, or one a stopped import never routed


class _Rejected(Exception):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


class _Importer:
    def __init__(self, router: EventPath, source: str) -> None:
        self.router = router
        self.db = router.db
        self.source = source
        self.now = utcnow()
        self.country = router.catalog.settings.default_country
        self.seen: dict[str, int] = {}  # id -> first line: one row per customer
        self.columns: dict[tuple[Any, ...], dict[Any, str | None]] = {}

    # --- one chunk, in a worker thread -------------------------------------------------

    def run(self, rows: list[tuple[int, dict[Any, Any]]]) -> _Outcome:
        outcome = _Outcome()
        valid: list[_Row] = []
        for line, raw in rows:
            parsed = self.parse(line, raw)
            if parsed is None:
                continue  # a blank line
            outcome.total += 1
            if isinstance(parsed, RejectedRow):
                outcome.rejected.append(parsed)
            else:
                valid.append(parsed)
        parse_rejected = list(outcome.rejected)
        for attempt in range(3):
            if not valid:
                break
            try:
                self.write(valid, outcome)
                break
            except IntegrityError:
                # A new customer written at the same moment by someone else: read again.
                if attempt == 2:
                    raise
                outcome.created = outcome.updated = outcome.unchanged = 0
                outcome.rejected, outcome.events = list(parse_rejected), []
        outcome.rejected.sort(key=lambda r: r.line)
        return outcome

    def parse(self, line: int, raw: dict[Any, Any]) -> _Row | RejectedRow | None:
        """A row checked in full: a _Row to write, why not, or None for a blank line."""
        cells: dict[str, str] = {}
        extra = False
        names = self._names(raw)
        for key, value in raw.items():
            if isinstance(value, list):  # csv.DictReader keeps cells past the header as a list
                value = ",".join(str(v or "") for v in value)
            value = (value or "").strip()
            name = names.get(key)
            if name is None:  # a cell past the header's columns, or under a column without a name
                extra = extra or bool(value)
            else:
                cells[name] = value
        if not extra and not any(cells.values()):
            return None
        customer_id = cells.get("id", "")
        if not customer_id:
            return RejectedRow(line, None, "id", "missing: every row needs the customer's id")
        try:
            opaque_customer_id(customer_id)
        except ValueError as err:
            return RejectedRow(line, None, "id", str(err))
        if customer_id in self.seen:
            return RejectedRow(line, customer_id, "id", f"the same id is on line {self.seen[customer_id]}: "
                                                        "one row per customer")
        self.seen[customer_id] = line
        if extra:
            return RejectedRow(line, customer_id, "row", "more cells than the header has columns (a value with a "
                                                         "comma needs \"quotes\")")
        try:
            return self._parse_fields(line, customer_id, cells)
        except _Rejected as err:
            return RejectedRow(line, customer_id, err.column, err.reason)

    def _names(self, raw: dict[Any, Any]) -> dict[Any, str | None]:
        """Each key's column name, by the rules of a file's header (worked out once per set of keys)."""
        keys = tuple(raw)
        names = self.columns.get(keys)
        if names is None:
            names = {key: column_name(key) if isinstance(key, str) else None for key in keys}
            self.columns[keys] = names
        return names

    def _parse_fields(self, line: int, customer_id: str, cells: dict[str, str]) -> _Row:
        for name, value in cells.items():
            if "\x00" in value:
                raise _Rejected(name, "contains a NUL character")
            limit = _MAX_LENGTH.get(name)
            if limit and len(value) > limit:
                raise _Rejected(str(name), f"longer than {limit} characters")
        row = _Row(line=line, id=customer_id)
        if cells.get("phone"):
            try:
                row.phone = to_e164(cells["phone"], self.country)
            except InvalidPhoneNumber as err:
                raise _Rejected("phone", str(err)) from None
        for name in ("first_name", "last_name"):
            if cells.get(name):
                row.profile[name] = cells[name]
        if cells.get("email"):
            if not _EMAIL.match(cells["email"]):
                raise _Rejected("email", "not an email address (name@example.com)")
            row.profile["email"] = cells["email"]
        if cells.get("locale"):
            if not _LOCALE.match(cells["locale"]) or len(cells["locale"]) > 16:
                raise _Rejected("locale", "not a language tag like en, sv-SE or pt-BR")
            row.profile["locale"] = cells["locale"]
        if cells.get("timezone"):
            zone = _zones().get(cells["timezone"].lower())
            if zone is None:
                raise _Rejected("timezone", f"{cells['timezone']!r} is not an IANA time zone, e.g. Europe/Stockholm "
                                            "or America/New_York")
            row.profile["timezone"] = zone
        if cells.get("birthday"):
            row.profile["birthday"] = self._birthday(cells["birthday"])
        for name, value in cells.items():
            if name.startswith(ATTRIBUTE_PREFIX) and value:
                row.attributes[name[len(ATTRIBUTE_PREFIX):]] = value
        self._parse_consent(row, cells)
        return row

    def _birthday(self, value: str) -> date:
        if not _DATE.match(value):
            raise _Rejected("birthday", "not a date in the form YYYY-MM-DD, e.g. 1985-12-31")
        try:
            birthday = date.fromisoformat(value)
        except ValueError:
            raise _Rejected("birthday", "no such date (check the month and the day)") from None
        if birthday > self.now.date():
            raise _Rejected("birthday", "is in the future")
        return birthday

    def _parse_consent(self, row: _Row, cells: dict[str, str]) -> None:
        status = cells.get("sms_consent", "").lower()
        evidence = [name for name in ("consent_source", "consent_at", "consent_text") if cells.get(name)]
        if not status:
            if evidence:
                raise _Rejected(evidence[0], "given without sms_consent: say which consent it is evidence of")
            return
        if status == "pending":
            raise _Rejected("sms_consent", "pending is a double opt-in still waiting for the customer's YES: import "
                                           "opted_in with its evidence (consent_text), or none")
        if status not in CONSENT_VALUES:
            raise _Rejected("sms_consent", "must be opted_in, opted_out or none")
        row.consent = status
        row.consent_source = cells.get("consent_source") or None
        row.consent_text = cells.get("consent_text") or None
        if status == "opted_in" and not row.consent_text:
            raise _Rejected("consent_text", "an opt-in needs the disclosure text the customer agreed to (the "
                                            "evidence of their consent)")
        if cells.get("consent_at"):
            row.consent_at = self._consent_at(cells["consent_at"])

    def _consent_at(self, value: str) -> datetime:
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            raise _Rejected("consent_at", "not an ISO 8601 time, e.g. 2026-01-31T10:00:00Z") from None
        if at.tzinfo is None:
            raise _Rejected("consent_at", "needs a time zone, e.g. 2026-01-31T10:00:00Z or +01:00 at the end")
        if at > self.now + _CLOCK_SKEW:
            raise _Rejected("consent_at", "is in the future")
        return at.astimezone(UTC)

    def write(self, rows: list[_Row], outcome: _Outcome) -> None:
        """One transaction for the chunk. Customers are locked (PostgreSQL) so that a STOP
        arriving meanwhile is not overwritten by what this chunk read before it."""
        with session_scope(self.db) as session:
            ids = sorted(row.id for row in rows)
            query = select(Customer).where(col(Customer.id).in_(ids)).order_by(col(Customer.id))
            if is_postgres(self.db):
                query = query.with_for_update()
            existing = {customer.id: customer for customer in session.exec(query)}
            latest = self._latest_evidence(session, [r.id for r in rows if r.consent and r.id in existing])
            suppressed = self._suppressions(session, rows, existing)
            records: list[ConsentRecord] = []
            recovered: list[tuple[int, EventIn]] = []
            for row in rows:
                customer = existing.get(row.id)
                decision = self._consent(row, customer, latest.get(row.id), suppressed)
                if decision.rejected is not None:
                    outcome.rejected.append(decision.rejected)
                    continue
                created = customer is None
                if customer is None:
                    customer = Customer(id=row.id, created_at=self.now, updated_at=self.now)
                changed = self._apply(customer, row, suppressed)
                if decision.record is not None:
                    records.append(decision.record)
                    customer.sms_consent = decision.record.status
                    changed = True
                if decision.event is not None:
                    (outcome.events if decision.record is not None else recovered).append((row.line, decision.event))
                if created:
                    session.add(customer)
                    outcome.created += 1
                elif changed:
                    customer.updated_at = self.now
                    session.add(customer)
                    outcome.updated += 1
                else:
                    outcome.unchanged += 1
            session.flush()  # the customers first: evidence refers to them
            session.add_all(records)
            if recovered:
                ids = [event.id for _, event in recovered]
                routed = set(session.exec(select(Event.id).where(col(Event.id).in_(ids))))
                outcome.events += [(line, event) for line, event in recovered if event.id not in routed]
                outcome.events.sort(key=lambda item: item[0])

    @staticmethod
    def _latest_evidence(session: Session, customer_ids: list[str]) -> dict[str, ConsentRecord]:
        """The record behind each customer's current consent: the last one written."""
        latest: dict[str, ConsentRecord] = {}
        if customer_ids:
            for record in session.exec(select(ConsentRecord).where(col(ConsentRecord.customer_id).in_(customer_ids))
                                       .order_by(col(ConsentRecord.id))):
                latest[record.customer_id] = record
        return latest

    @staticmethod
    def _suppressions(session: Session, rows: list[_Row], existing: dict[str, Customer]) -> dict[str, PhoneSuppression]:
        phones = {row.phone for row in rows if row.phone}
        for row in rows:
            customer = existing.get(row.id)
            if row.consent == "opted_in" and customer is not None and customer.phone:
                phones.add(customer.phone)
        if not phones:
            return {}
        return suppressions.find_many(session, phones)  # by number, or by hash for an erased one

    def _consent(self, row: _Row, customer: Customer | None, last: ConsentRecord | None,
                 suppressed: dict[str, PhoneSuppression]) -> _Consent:
        if row.consent is None:
            return _Consent()
        current = customer.sms_consent if customer is not None else "none"
        at = row.consent_at or self.now
        source = row.consent_source or self.source

        def reject(column: str, reason: str) -> _Consent:
            return _Consent(rejected=RejectedRow(row.line, row.id, column, reason))

        if current == row.consent:
            same = (last is not None and last.status == row.consent and last.source == source
                    and last.disclosure == row.consent_text and (row.consent_at is None or last.occurred_at == at))
            if same:  # this evidence is on file already (a re-run): announce it only if that never happened
                assert last is not None
                return _Consent(event=_event(row.id, row.consent, last.occurred_at, source)
                                if row.consent in _ANNOUNCED else None)
            if row.consent == "none":
                return _Consent()
            return _Consent(record=self._record(row, source, at))  # new evidence for the same decision
        # The consent changes. An import never overrides a later decision.
        when = f" on {last.occurred_at:%Y-%m-%d %H:%M} UTC ({last.source})" if last is not None else ""
        if row.consent_at is not None and last is not None and at < last.occurred_at:
            return reject("consent_at", f"older than the customer's current consent ({current}{when}): an import "
                                        "never overrides a later decision")
        if current == "opted_out" and row.consent_at is None:
            return reject("sms_consent", f"the customer opted out{when}: to change that, give the consent_at of "
                                         "the newer decision")
        if row.consent == "opted_in":
            phone = row.phone or (customer.phone if customer is not None else None)
            if not phone:
                return reject("phone", "an opt-in needs a phone number to text: the row has none, nor does the "
                                       "customer")
            suppression = suppressed.get(phone)
            if suppression is not None and suppression.reason == "opted_out":
                erased = suppressions.of_erased_number(suppression)
                how = "opted out (its customer was erased)" if erased else "texted STOP"
                return reject("sms_consent", f"this number {how} on {suppression.created_at:%Y-%m-%d}: only "
                                             "the customer can opt back in, by texting START")
        return _Consent(record=self._record(row, source, at),
                        event=_event(row.id, row.consent, at, source) if row.consent in _ANNOUNCED else None)

    def _record(self, row: _Row, source: str, at: datetime) -> ConsentRecord:
        assert row.consent is not None
        return ConsentRecord(customer_id=row.id, status=row.consent, source=source, disclosure=row.consent_text,
                             occurred_at=at, recorded_at=self.now)

    @staticmethod
    def _apply(customer: Customer, row: _Row, suppressed: dict[str, PhoneSuppression]) -> bool:
        changed = False
        if row.phone and row.phone != customer.phone:
            suppression = suppressed.get(row.phone)
            unusable = suppression is not None and suppression.reason == "unusable"
            customer.phone, customer.phone_status = row.phone, "unusable" if unusable else "ok"
            changed = True
        for name, value in row.profile.items():
            if getattr(customer, name) != value:
                setattr(customer, name, value)
                changed = True
        if row.attributes:
            merged = {**(customer.attributes or {}), **row.attributes}
            if merged != (customer.attributes or {}):
                customer.attributes = merged
                changed = True
        return changed


def _event(customer_id: str, status: str, at: datetime, source: str) -> EventIn:
    """The event `upsert_customer` fires for a consent change, with the same id."""
    at = at.astimezone(UTC)
    return EventIn(id=f"consent:{customer_id}:{status}:{at.isoformat()}", type=status, customer_id=customer_id,
                   occurred_at=at, properties={"source": source})


@cache
def _zones() -> dict[str, str]:
    """IANA zone names by lower case (so `europe/stockholm` is read as Europe/Stockholm)."""
    return {name.lower(): name for name in available_timezones() if name not in ("localtime", "posixrules", "Factory")}
