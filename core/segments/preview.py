"""A rule's audience before it goes live: how many customers it matches now, and a few of them.

The same SQL a refresh runs (``language.segment_sql``), read-only: nothing is stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from core.clock import utcnow
from language.checks_expressions import analyze
from language.segment_sql import CUSTOMERS, RuleError, compile_rule
from store.db import Database, session_scope

SAMPLE = 5


@dataclass
class Preview:
    rule: str
    at: datetime
    matches: int
    customers: int  # everyone, for the share
    sample: list[str] = field(default_factory=list)  # the first ids, in id order


def rule_problems(rule: str) -> list[str]:
    """What the validator would say of ``rule`` in segments.yaml: names, then SQL."""
    findings = [f.message for f in analyze(rule, "expression", "rule").findings if f.severity == "error"]
    if findings:
        return findings
    try:
        compile_rule(rule, utcnow())
    except RuleError as err:
        return [str(err)]
    return []


def preview(db: Database, rule: str, *, at: datetime | None = None, sample: int = SAMPLE) -> Preview:
    """Raises RuleError (with every problem) for a rule that cannot run."""
    if problems := rule_problems(rule):
        raise RuleError("; ".join(problems))
    at = at or utcnow()
    matches = compile_rule(rule, at)
    with session_scope(db, readonly=True) as session:
        size = session.execute(select(func.count()).select_from(CUSTOMERS).where(matches)).scalar_one()
        everyone = session.execute(select(func.count()).select_from(CUSTOMERS)).scalar_one()
        ids = list(session.execute(select(CUSTOMERS.c.id).where(matches).order_by(CUSTOMERS.c.id)
                                   .limit(max(sample, 0))).scalars()) if sample > 0 else []
    return Preview(rule=rule, at=at, matches=int(size), customers=int(everyone), sample=ids)
