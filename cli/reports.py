"""`journeys report JOURNEY` (entries, outcomes, every step's texts, the goal, each split
against its holdout, per version) and `journeys report --program` (the SMS list,
purchases, cohorts, CLV, loyalty). See docs/reports.md."""

from __future__ import annotations

import csv
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cli import output
from cli.settings import load_settings

console = output.console()
errors = output.console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    journey: Annotated[str | None, typer.Argument(metavar="JOURNEY", help="The journey id", show_default=False)] = None,
    program: Annotated[bool, typer.Option("--program", help="The program report instead of a journey's")] = False,
    since: Annotated[str | None, typer.Option(help="Runs that entered (program: things that happened) at or after "
                                              "this ISO date (00:00 UTC) or datetime with its zone")] = None,
    until: Annotated[str | None, typer.Option(help="... and before this datetime, or up to the end of this "
                                              "date (UTC); default: now")] = None,
    version: Annotated[str | None, typer.Option(help="Only this journey version")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON (what the API returns)")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print figure,value rows")] = False,
    journeys_dir: Annotated[Path | None, typer.Option("--journeys", help="Journeys directory (default: "
                                                                         "JOURNEYS_DIR or journeys/)")] = None,
) -> None:
    """Report on a journey (per version) or, with --program, on the whole SMS program."""
    from core.clock import utcnow
    from core.reports.journey import Unknown
    from core.reports.period import parse_bound
    from processes.wiring import open_catalog, open_migrated_database

    if program == (journey is not None):
        raise typer.BadParameter("give a JOURNEY or --program (not both)", param_hint="JOURNEY")
    if as_json and as_csv:
        raise typer.BadParameter("choose --json or --csv", param_hint="--csv")
    if program and version is not None:
        raise typer.BadParameter("a version belongs to a journey report", param_hint="--version")
    bounds: dict[str, datetime | None] = {}
    for name, text in (("since", since), ("until", until)):
        try:
            bounds[name] = parse_bound(text, end=name == "until") if text is not None else None
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint=f"--{name}") from None
    settings = load_settings()
    catalog = open_catalog(settings, journeys_dir)
    db = open_migrated_database(settings)
    try:
        if program:
            from core.reports.program import program_report

            found: Any = program_report(db, since=bounds["since"], until=bounds["until"] or utcnow())
        else:
            from core.reports.journey import journey_report

            assert journey is not None
            pinned = catalog.journeys.get(journey)
            try:
                found = journey_report(db, journey, settings=catalog.settings,
                                       current=pinned.journey if pinned else None,
                                       current_version=pinned.version if pinned else None,
                                       since=bounds["since"], until=bounds["until"], version=version)
            except Unknown as err:
                errors.print(f"[red]error:[/red] {escape(str(err))}")
                raise typer.Exit(1) from None
    finally:
        db.dispose()
    if as_json:
        sys.stdout.write(found.model_dump_json(indent=2) + "\n")
    elif as_csv:
        from core.reports.flat import rows

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["figure", "value"])
        writer.writerows(rows(found))
    elif program:
        _print_program(found)
    else:
        _print_journey(found)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _money(value: float | None, currency: str = "") -> str:
    return "-" if value is None else f"{value:,.2f}{' ' + currency if currency else ''}"


def _print_journey(report: Any) -> None:
    console.print(f"[bold]{escape(report.journey_id)}[/bold] {escape(report.name or '')}")
    for v in report.versions:
        console.print(f"\n[bold]version {v.version}[/bold]{' (current)' if v.current else ''}: "
                      f"{v.entries} entries, {v.active} active, {v.messages_sent} texts sent, "
                      f"{v.segments} segments, cost {_money(v.cost, report.currency)}")
        if v.outcomes:
            console.print("outcomes: " + ", ".join(f"{escape(k)} {n}" for k, n in v.outcomes.items()))
        table = Table("step", "what", "reached", "sent", "delivered", "failed", "skipped", "clicks (unique/total)",
                      "CTR", "replies", "opt-outs", "coupons (issued/redeemed)", "cost")
        for s in v.steps:
            name = "  " * s.depth + escape(s.key)
            reached = "-" if s.reached is None else str(s.reached)
            if s.send is None:
                table.add_row(name, escape(s.summary), reached, *[""] * 10)
                continue
            m = s.send
            skipped = ", ".join(f"{k} {n}" for k, n in m.skipped.items()) or "0"
            table.add_row(name, escape(s.summary), reached, str(m.sent), str(m.delivered), str(m.failed),
                          escape(skipped), f"{m.unique_clicks}/{m.total_clicks}", _pct(m.click_through_rate),
                          str(m.replies), str(m.opt_outs), f"{m.coupons_issued}/{m.coupons_redeemed}", _money(m.cost))
        console.print(table)
        if v.goal is not None:
            g = v.goal
            console.print(f"goal {escape(g.event)}: {g.conversions} conversions ({_pct(g.conversion_rate)}), "
                          f"revenue {_money(g.revenue, report.currency)}, "
                          f"per text {_money(g.revenue_per_message)}")
        for split in v.splits:
            table = Table("variant", "entered", "converted", "rate", "revenue/customer", "lift", "95% interval",
                          "p", "needed per arm", title=f"split {split.name}")
            for var in split.variants:
                cells = ["", "", "", ""]
                if var.lift is not None:
                    lf = var.lift
                    cells = [f"{lf.absolute * 100:+.1f} pp",
                             f"{lf.absolute_interval.low * 100:+.1f} to {lf.absolute_interval.high * 100:+.1f} pp",
                             f"{lf.p_value:.3f} ({lf.test})", str(lf.required_per_arm or "-")]
                marked = " (holdout)" if var.holdout and var.name != "holdout" else ""
                table.add_row(escape(var.name) + marked, str(var.entered),
                              str(var.converted), _pct(var.conversion_rate), _money(var.revenue_per_customer),
                              *cells)
            console.print(table)


def _print_program(report: Any) -> None:
    table = Table("month", "opt-ins", "opt-outs", "net", "subscribers", title="SMS subscribers")
    for m in report.subscribers:
        table.add_row(m.month, str(m.opt_ins), str(m.opt_outs), f"{m.net:+d}", str(m.subscribers))
    console.print(table)
    table = Table("cohort", "customers", "retention by month", "churned", title="Cohorts of first purchase")
    for c in report.cohorts:
        table.add_row(c.month, str(c.customers), " ".join(_pct(r) for r in c.retention), _pct(c.churned))
    console.print(table)
    p = report.purchases
    console.print(f"purchases: {p.orders} orders by {p.buyers} buyers, revenue {_money(p.revenue)}, "
                  f"average order {_money(p.average_order_value)}, repeat-purchase rate "
                  f"{_pct(p.repeat_purchase_rate)}")
    console.print(f"12-month CLV: SMS subscribers {_money(report.clv_subscribers.clv)} "
                  f"({report.clv_subscribers.customers}), others {_money(report.clv_others.clv)} "
                  f"({report.clv_others.customers})")
    lo = report.loyalty
    console.print(f"points issued {lo.points_issued}, expired {lo.points_expired}; punch-card rewards "
                  f"{lo.punch_card_rewards} ({lo.punch_card_points} points); referrals converted "
                  f"{lo.referrals_converted}")
    console.print("tiers: " + (", ".join(f"{escape(t)} {n}" for t, n in lo.tiers.items()) or "none"))
    for move in lo.tier_moves:
        console.print(f"  {escape(move.from_tier or 'none')} -> {escape(move.to_tier or 'none')}: {move.customers}")
    for c in lo.coupons:
        console.print(f"coupons {escape(c.series)}: {c.issued} issued, {c.redeemed} redeemed "
                      f"({_pct(c.redemption_rate)})")
