"""The runtime side of windows and habits (``language.habits``): what ``customer.orders_in('90d')``,
``customer.bought('coffee')``, ``customer.categories``... are for one customer at ``at``.

Each answer is the one the segment SQL (``language.segment_sql``) gives for the same rows:
windows are ``at - window < moment <= at``, nothing after ``at`` counts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, or_, select

from language.habits import REPLY_EVENT, SENT_STATUSES, parse_window, whole_years
from store.tables import Click, Customer, Event, Link, Message, Purchase, PurchaseItem


def _days(delta: timedelta) -> int:
    return delta.days  # floored, like days_since_last_purchase


def habit_values(session: Session, customer: Customer, at: datetime,
                 reads: frozenset[str] | None = None) -> dict[str, Any]:
    """The habit fields and methods of ``customer`` (merged into the expression's ``customer``).
    ``reads``: the fields wanted (None: all); the fields that need a query are computed only
    when wanted (the methods query when called)."""
    cid = customer.id

    def wanted(*fields: str) -> bool:
        return reads is None or any(field in reads for field in fields)

    values: dict[str, Any] = {"age": whole_years(customer.birthday, at.astimezone(UTC).date())}
    if wanted("purchase_interval_days", "days_until_due"):
        count, first, last = session.exec(
            select(func.count(), func.min(Purchase.occurred_at), func.max(Purchase.occurred_at))
            .where(Purchase.customer_id == cid, Purchase.occurred_at <= at)).one()
        interval = _days((last - first) // (count - 1)) if count >= 2 else None
        values["purchase_interval_days"] = interval
        values["days_until_due"] = interval - _days(at - last) if interval is not None else None
    if wanted("days_since_last_click"):
        last_click = session.exec(
            select(func.max(Click.clicked_at)).join(Link, col(Link.code) == Click.link_code)
            .where(Link.customer_id == cid, col(Click.bot).is_(None), Click.clicked_at <= at)).one()
        values["days_since_last_click"] = _days(at - last_click) if last_click is not None else None
    if wanted("categories"):
        values["categories"] = sorted(c for c in session.exec(
            select(PurchaseItem.category).distinct()
            .where(PurchaseItem.customer_id == cid, col(PurchaseItem.category).is_not(None),
                   PurchaseItem.occurred_at <= at)).all() if c is not None)

    def since(window: Any) -> datetime:
        return at - parse_window(window)

    def orders_in(window: Any) -> int:
        start = since(window)
        return int(session.exec(select(func.count()).where(
            Purchase.customer_id == cid, Purchase.occurred_at > start, Purchase.occurred_at <= at)).one())

    def spent_in(window: Any) -> float:
        start = since(window)
        totals = session.exec(select(Purchase.total).where(
            Purchase.customer_id == cid, Purchase.occurred_at > start, Purchase.occurred_at <= at)).all()
        return float(sum(totals))

    def bought(name: Any, window: Any = None) -> bool:
        if not isinstance(name, str):
            raise ValueError("bought() takes a product or category as quoted text, e.g. bought('coffee')")
        query = select(PurchaseItem.line).where(
            PurchaseItem.customer_id == cid, or_(PurchaseItem.category == name, PurchaseItem.product == name),
            PurchaseItem.occurred_at <= at)
        if window is not None:
            query = query.where(PurchaseItem.occurred_at > since(window))
        return session.exec(query.limit(1)).first() is not None

    def clicks_in(window: Any) -> int:
        start = since(window)
        return int(session.exec(
            select(func.count()).select_from(Click).join(Link, col(Link.code) == Click.link_code)
            .where(Link.customer_id == cid, col(Click.bot).is_(None), Click.clicked_at > start,
                   Click.clicked_at <= at)).one())

    def replies_in(window: Any) -> int:
        start = since(window)
        return int(session.exec(select(func.count()).select_from(Event).where(
            Event.customer_id == cid, Event.type == REPLY_EVENT, Event.occurred_at > start,
            Event.occurred_at <= at)).one())

    def messages_in(window: Any) -> int:
        start = since(window)
        return int(session.exec(select(func.count()).select_from(Message).where(
            Message.customer_id == cid, col(Message.status).in_(SENT_STATUSES), col(Message.sent_at) > start,
            col(Message.sent_at) <= at)).one())

    methods: dict[str, Callable[..., Any]] = {
        "orders_in": orders_in, "spent_in": spent_in, "bought": bought, "clicks_in": clicks_in,
        "replies_in": replies_in, "messages_in": messages_in}
    return {**values, **methods}
