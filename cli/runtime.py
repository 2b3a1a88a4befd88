"""Commands that run journeys: simulate, event, enroll, worker, dev, db."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import TypeAdapter, ValidationError
from rich.table import Table

from cli import output
from cli.settings import load_settings

console = output.console()
errors = output.console(stderr=True)


def _properties(pairs: list[str]) -> dict[str, Any]:
    """`k=v` pairs; values that read as JSON (numbers, true, lists) keep their type."""
    properties: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r}: write key=value", param_hint="--prop")
        try:
            properties[key] = json.loads(raw)
        except json.JSONDecodeError:
            properties[key] = raw
    return properties


def simulate(
    file: Annotated[Path, typer.Argument(help="The journey file to simulate", exists=True, dir_okay=False)],
    config: Annotated[Path | None, typer.Option("--config", help="Directory with settings/segments/loyalty")] = None,
    customer: Annotated[str | None, typer.Option(help="Customer JSON, or @file.json")] = None,
    trigger: Annotated[str | None, typer.Option(help="'TYPE {json properties}' of the entering event")] = None,
    event: Annotated[list[str] | None, typer.Option("--event", help="TYPE@+OFFSET [JSON]; click:<step>@+1d; "
                                                    "reply:<step>@+2h TEXT; stop@+5d")] = None,
    start: Annotated[datetime | None, typer.Option(help="Simulated start (ISO 8601, default now)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object")] = False,
) -> None:
    """Run one customer through a journey on the time-skipping server and print the timeline."""
    from language.validate import InvalidJourneys
    from processes.simulate import SimulationError, parse_customer
    from processes.simulate import simulate as run_simulation

    if start is not None and start.tzinfo is None:
        raise typer.BadParameter("give a time zone, e.g. 2026-01-05T09:00:00Z", param_hint="--start")
    try:
        result = asyncio.run(run_simulation(file, config_dir=config, customer=parse_customer(customer),
                                            trigger=trigger, events=event or [], start=start))
    except (SimulationError, InvalidJourneys, KeyError) as err:
        errors.print(f"[red]error:[/red] {err}", markup=True, highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(result, indent=2, default=str))
        return
    _print_timeline(result)


def _print_timeline(result: dict[str, Any]) -> None:
    from rich.markup import escape

    if result.get("sample_customer"):
        console.print("no --customer given: simulating the sample customer (id sim-customer, first_name Alex, "
                      "locale en, opted in, phone +12015550123)", highlight=False, soft_wrap=True)
    console.print(f"[bold]{escape(result['journey'])}[/bold] v{result['version']} for {escape(result['customer'])}: "
                  f"outcome [bold]{escape(result['outcome'])}[/bold]", highlight=False)
    if "not_entered_reason" in result:
        console.print(f"not entered: {escape(result['not_entered_reason'])}", highlight=False, soft_wrap=True)
    table = Table(show_header=True, header_style="bold")
    for column in ("at (UTC)", f"local ({result.get('zone', '')})", "step", "action", "details"):
        table.add_column(escape(column))
    for entry in result["timeline"]:
        skip = ("at", "local", "step", "action")
        details = {k: v for k, v in entry.items() if k not in skip and v is not None}
        text = details.pop("text", None)
        summary = escape(", ".join(f"{k}={v}" for k, v in details.items()))
        if text:
            summary = f"{escape(text)}\n[dim]{summary}[/dim]"
        table.add_row(entry["at"][:16].replace("T", " "), entry.get("local", ""), escape(entry.get("step") or ""),
                      entry["action"], summary)
    console.print(table)


def event(
    type: Annotated[str, typer.Argument(help="Event type, e.g. purchase")],
    customer: Annotated[str, typer.Option("--customer", help="Customer id")],
    prop: Annotated[list[str] | None, typer.Option("--prop", help="Property key=value (repeatable)")] = None,
    event_id: Annotated[str | None, typer.Option("--id", help="Event id (default: generated)")] = None,
    journeys_dir: Annotated[Path | None, typer.Option("--journeys", help="Journeys directory")] = None,
) -> None:
    """Send an event through the engine: store it, signal running journeys, start triggered ones."""
    from core.customers.records import UnknownCustomer
    from processes.commands import send_event

    settings = load_settings()
    try:
        result = asyncio.run(send_event(settings, type, customer, _properties(prop or []), event_id=event_id,
                                        journeys_dir=journeys_dir))
    except ValidationError as err:
        first = err.errors()[0]
        hints: dict[tuple[int | str, ...], str] = {("customer_id",): "--customer", ("id",): "--id"}
        hint = hints.get(tuple(first["loc"]), "TYPE")
        raise typer.BadParameter(first["msg"], param_hint=hint) from None
    except UnknownCustomer as err:
        raise typer.BadParameter(str(err.args[0]), param_hint="--customer") from None
    if result.duplicate:
        console.print(f"event {result.event_id} was already received: nothing done again")
        return
    console.print(f"event {result.event_id}: started {result.started or 'nothing'}, "
                  f"signalled {result.signalled or 'nothing'}", highlight=False)


def customer(
    customer_id: Annotated[str, typer.Argument(help="Customer id (opaque: not an email or phone)")],
    phone: Annotated[str | None, typer.Option(help="Phone number; stored as E.164")] = None,
    first_name: Annotated[str | None, typer.Option()] = None,
    last_name: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    locale: Annotated[str | None, typer.Option(help="e.g. en, sv-SE")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA zone, e.g. Europe/Stockholm")] = None,
    consent: Annotated[str | None, typer.Option(help="opted_in | opted_out | pending | none")] = None,
    consent_text: Annotated[str | None, typer.Option(help="The disclosure the customer agreed to")] = None,
    journeys_dir: Annotated[Path | None, typer.Option("--journeys", help="Journeys directory")] = None,
) -> None:
    """Create or update a customer profile (an opt-in fires `opted_in`, which starts journeys)."""
    from core.intake.profiles import ConsentError, ProfileChange
    from core.validation import CustomerId
    from messaging.phone import InvalidPhoneNumber
    from processes.commands import set_customer

    try:
        TypeAdapter(CustomerId).validate_python(customer_id)
    except ValidationError as err:
        raise typer.BadParameter(err.errors()[0]["msg"], param_hint="CUSTOMER_ID") from None
    if consent is not None and consent not in ("opted_in", "opted_out", "pending", "none"):
        raise typer.BadParameter("one of opted_in, opted_out, pending, none", param_hint="--consent")
    change = ProfileChange(phone=phone, first_name=first_name, last_name=last_name, email=email, locale=locale,
                           timezone=timezone, consent=consent, consent_source="cli", consent_text=consent_text)
    settings = load_settings()
    try:
        consent_status = asyncio.run(set_customer(settings, customer_id, change, journeys_dir=journeys_dir))
    except InvalidPhoneNumber as err:
        raise typer.BadParameter(str(err), param_hint="--phone") from None
    except ConsentError as err:
        raise typer.BadParameter(str(err), param_hint="--consent") from None
    console.print(f"customer {customer_id} saved")
    if consent_status == "pending":
        console.print("double opt-in: the confirmation text went out; the customer is opted in once they reply "
                      "YES (locally: journeys inbound PHONE YES)")


def inbound(
    phone: Annotated[str, typer.Argument(help="The sender's phone number")],
    text: Annotated[str, typer.Argument(help="The message, e.g. YES, STOP, HELP or an answer")],
    journeys_dir: Annotated[Path | None, typer.Option("--journeys", help="Journeys directory")] = None,
) -> None:
    """Play an inbound SMS through the same path as Twilio's webhook (for local runs)."""
    from messaging.phone import InvalidPhoneNumber
    from processes.commands import receive_sms

    settings = load_settings()
    try:
        result = asyncio.run(receive_sms(settings, phone, text, journeys_dir=journeys_dir))
    except InvalidPhoneNumber as err:
        raise typer.BadParameter(str(err), param_hint="PHONE") from None
    what = result.keyword.replace("_", "-") if result.keyword else "a reply"
    who = ", ".join(result.customers) or "no known customer"
    console.print(f"{what} from {who}", highlight=False)


def twilio_signature(
    url: Annotated[str, typer.Argument(help="The full public URL Twilio would call")],
    params: Annotated[list[str] | None, typer.Argument(help="Form fields, key=value")] = None,
) -> None:
    """Print the X-Twilio-Signature for a webhook call (TWILIO_AUTH_TOKEN; `journeys dev`'s by default)."""
    from twilio.request_validator import RequestValidator

    from processes.dev import DEV_TWILIO_TOKEN

    form = {key: value for key, _, value in (pair.partition("=") for pair in params or [])}
    token = load_settings().secret("twilio_auth_token") or DEV_TWILIO_TOKEN
    print(RequestValidator(token).compute_signature(url, form))


def enroll(
    journey: Annotated[str, typer.Argument(help="Journey id")],
    customer: Annotated[str | None, typer.Option("--customer", help="Customer id")] = None,
    segment: Annotated[str | None, typer.Option("--segment", help="Every current member of this segment")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="A CSV with a customer_id column, or one id per line",
                                                  exists=True, dir_okay=False)] = None,
    journeys_dir: Annotated[Path | None, typer.Option("--journeys", help="Journeys directory")] = None,
) -> None:
    """Enter customers into a journey now (audience and reentry rules still apply):
    one (--customer), a segment's members (--segment) or a file of ids (--csv)."""
    from processes.commands import enroll as run_enroll

    if sum(given is not None for given in (customer, segment, csv_file)) != 1:
        raise typer.BadParameter("give one of --customer, --segment or --csv", param_hint="--customer")
    if customer is None:
        _enroll_many(journey, segment, csv_file, journeys_dir)
        return
    settings = load_settings()
    try:
        entry = asyncio.run(run_enroll(settings, journey, customer, journeys_dir=journeys_dir))
    except KeyError as err:
        raise typer.BadParameter(str(err.args[0]), param_hint="JOURNEY") from None
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--customer") from None
    if not entry.started:
        errors.print(f"{customer} was not entered into {journey}: {entry.reason}", highlight=False)
        raise typer.Exit(1)
    console.print(f"{customer} entered {journey}: workflow journey/{journey}/{customer}")


def _enroll_many(journey: str, segment: str | None, csv_file: Path | None, journeys_dir: Path | None) -> None:
    """--segment / --csv: a line per customer as each page is entered, then a summary."""
    from core.journeys.enroll import Enrolled, IdFileError, read_id_file
    from processes.commands import enroll_many

    ids = None
    if csv_file is not None:
        try:
            ids = read_id_file(csv_file)
        except IdFileError as err:
            for problem in err.problems:
                errors.print(problem, highlight=False)
            raise typer.BadParameter(str(err), param_hint="--csv") from None
    counts = {"entered": 0, "not": 0}

    def show(page: list[Enrolled]) -> None:
        for result in page:
            counts["entered" if result.entered else "not"] += 1
            console.print(f"{result.customer_id}: {'entered' if result.entered else result.reason}", highlight=False)

    try:
        asyncio.run(enroll_many(load_settings(), journey, segment=segment, customer_ids=ids, on_page=show,
                                journeys_dir=journeys_dir))
    except KeyError as err:
        raise typer.BadParameter(str(err.args[0]), param_hint="--segment" if "segment" in str(err) else "JOURNEY") \
            from None
    console.print(f"{counts['entered']} entered, {counts['not']} not entered ({journey})", highlight=False)


def worker(
    metrics_port: Annotated[int | None, typer.Option(
        help="Serve /metrics, /healthz and /readyz on this port (default JOURNEYS_WORKER_METRICS_PORT; unset: none)",
        min=1, max=65535)] = None,
    processes: Annotated[int, typer.Option(
        help="Run this many worker processes, each polling the same task queues (see docs/operations.md, Scaling)",
        min=1, max=64)] = 1,
    process_index: Annotated[int | None, typer.Option(hidden=True, min=0)] = None,
) -> None:
    """Run the journey workers against TEMPORAL_ADDRESS (default localhost:7233)."""
    from processes.logs import configure_logging
    from processes.worker import run_worker
    from processes.worker_pool import run_pool

    settings = load_settings()
    if metrics_port is not None:
        settings = settings.model_copy(update={"worker_metrics_port": metrics_port})
    configure_logging(settings.log_format)
    if processes > 1:
        raise typer.Exit(asyncio.run(run_pool(settings, processes)))
    # A pool's child (--process-index, set by the parent): only the first keeps the schedules.
    asyncio.run(run_worker(settings, keep_schedules=not process_index, freeze_heap=True))


def api(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    processes: Annotated[int, typer.Option(
        help="Serve with this many processes on the one port (one uses about one core; see docs/operations.md, "
             "Scaling)", min=1, max=64)] = 1,
) -> None:
    """Run the HTTP service (events, customers, Twilio webhooks, tracked links, metrics)."""
    from processes.http import serve

    serve(load_settings(), host, port, processes)


def codec_server(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8888,
) -> None:
    """Decode encrypted payloads for the Temporal Web UI and CLI (needs JOURNEYS_PAYLOAD_KEYS)."""
    from processes.codec_server import serve_codec

    serve_codec(load_settings(), host, port)


def dev(
    data_dir: Annotated[Path, typer.Option(help="Where the dev server and database keep their files")] = Path(".data"),
    journeys_dir: Annotated[Path, typer.Option("--journeys", help="Journeys directory")] = Path("journeys"),
    temporal_port: Annotated[int, typer.Option(help="Temporal frontend port")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal Web UI port")] = 8233,
    api_port: Annotated[int, typer.Option(help="HTTP API port")] = 8000,
    codec_port: Annotated[int, typer.Option(help="Payload codec server port (with JOURNEYS_PAYLOAD_KEYS)")] = 8888,
) -> None:
    """Everything locally: Temporal dev server with Web UI, worker, HTTP API, embedded database."""
    from processes.dev import DevPorts, run_dev

    ports = DevPorts(temporal=temporal_port, ui=ui_port, api=api_port, codec=codec_port)
    raise typer.Exit(asyncio.run(run_dev(load_settings(), data_dir, journeys_dir, ports)))


db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply schema migrations to JOURNEYS_DATABASE_URL (default: the embedded SQLite file)."""
    from processes.wiring import open_migrated_database

    settings = load_settings()
    open_migrated_database(settings).dispose()
    console.print(f"database at {settings.database_url.split('@')[-1]} is up to date")


@db_app.command("revision")
def db_revision(message: Annotated[str, typer.Argument(help="What the migration does")]) -> None:
    """For developers: write a new migration from the difference between the models and the database."""
    from store.db import open_database
    from store.migrate import autogenerate

    autogenerate(open_database(load_settings().database_url), message)


def register(app: typer.Typer) -> None:
    app.command()(simulate)
    app.command()(event)
    app.command()(customer)
    app.command()(inbound)
    app.command("twilio-signature")(twilio_signature)
    app.command()(enroll)
    app.command("test-send")(test_send)
    app.command()(worker)
    app.command()(api)
    app.command("codec-server")(codec_server)
    app.command()(dev)
    app.add_typer(db_app, name="db")


def test_send(
    journey: Annotated[str, typer.Argument(help="Journey id")],
    to: Annotated[list[str], typer.Option("--to", help="A seed-list number, e.g. +12015550123 (repeatable, "
                                                       "at most 10)")],
    step: Annotated[str | None, typer.Option("--step", help="Only this send_sms or ask step")] = None,
    customer: Annotated[str | None, typer.Option(help="Sample customer JSON, or @file.json (default: the "
                                                      "sample customer, first_name Alex)")] = None,
    trigger: Annotated[str | None, typer.Option(help="Trigger properties as JSON, for texts that use them")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Send without asking")] = False,
    journeys_dir: Annotated[Path | None, typer.Option("--journeys", help="Journeys directory")] = None,
) -> None:
    """Send a journey's texts for real to a seed list, rendered with a sample customer,
    through the configured sender (JOURNEYS_SMS_SENDER). Marked as tests: never counted in
    reports or frequency caps."""
    from processes.seed_send import TestSendError, recipients, send_tests
    from processes.senders import build_sender
    from processes.simulate import SimulationError, _json_object, parse_customer
    from processes.wiring import open_catalog, open_migrated_database

    settings = load_settings()
    catalog = open_catalog(settings, journeys_dir)
    try:
        sample = parse_customer(customer)
        properties = _json_object(trigger or "", "--trigger")
        numbers = recipients(to, catalog.settings.default_country)
    except (SimulationError, TestSendError) as err:
        raise typer.BadParameter(str(err)) from None
    if journey not in catalog.journeys:
        raise typer.BadParameter(f"no journey {journey!r} (journeys: {', '.join(sorted(catalog.journeys))})",
                                 param_hint="JOURNEY")
    if not yes:
        typer.confirm(f"Send {journey}'s texts{f' (step {step})' if step else ''} for real to {len(numbers)} "
                      f"number(s) through {settings.sms_sender}?", abort=True)
    sender = build_sender(settings, catalog.settings)
    db = open_migrated_database(settings)
    try:
        results = send_tests(catalog, db, sender, journey, numbers, step_id=step, customer=sample,
                             trigger=properties)
    except TestSendError as err:
        raise typer.BadParameter(str(err), param_hint="--step") from None
    finally:
        db.dispose()
    failed = False
    for result in results:
        if result.problem:
            failed = True
            errors.print(f"{result.step}: not sent, {result.problem}", highlight=False, markup=False)
            continue
        where = ", ".join(result.sent) or "nobody"
        console.print(f"{result.step} ({result.segments} segments) sent to {where}: {result.text}",
                      highlight=False, markup=False, soft_wrap=True)
        for number, reason in result.failed.items():
            failed = True
            errors.print(f"{result.step}: not sent to {number}: {reason}", highlight=False, markup=False)
    if failed:
        raise typer.Exit(1)
