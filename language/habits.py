"""Windows and habits: the ``customer`` fields and methods that read a customer's
purchases, line items and engagement, defined once for the checker, the SQL compiler
(``language.segment_sql``) and the runtime (``core.customers.habits``).

Time: a window ``'90d'`` ends at the evaluation moment ``now`` and reaches back that long:
``now - 90d < moment <= now`` (nothing later than ``now`` counts, in any field). ``age``
is whole years on the UTC date of ``now``. Whole-day fields are floored, like
``days_since_last_purchase``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal

from language.durations import parse_duration

ArgumentKind = Literal["window", "name"]

# method -> its arguments: (kind, required)
METHODS: dict[str, tuple[tuple[ArgumentKind, bool], ...]] = {
    "orders_in": (("window", True),),
    "spent_in": (("window", True),),
    "bought": (("name", True), ("window", False)),
    "clicks_in": (("window", True),),
    "replies_in": (("window", True),),
    "messages_in": (("window", True),),
}
NUMBER_METHODS = ("orders_in", "spent_in", "clicks_in", "replies_in", "messages_in")
FIELDS = ("categories", "age", "purchase_interval_days", "days_until_due", "days_since_last_click")
NUMBER_FIELDS = ("age", "purchase_interval_days", "days_until_due", "days_since_last_click")

REPLY_EVENT = "sms_replied"  # what core.sms.inbound makes of an ordinary inbound text
SENT_STATUSES = ("sent", "delivered")  # a message that left for the customer's phone


def example(method: str) -> str:
    return "customer.bought('coffee')" if method == "bought" else f"customer.{method}('30d')"


def parse_window(value: Any) -> timedelta:
    """A window: a positive duration such as ``'90d'`` (up to 3650d). Raises ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"a window is a quoted duration such as '90d', not {value!r}"[:120])
    window = parse_duration(value)
    if window <= timedelta(0):
        raise ValueError(f"a window must be longer than zero, e.g. '90d', not {value!r}"[:120])
    return window


def whole_years(birthday: date | None, today: date) -> int | None:
    """Age in whole years on ``today`` (a 29 February birthday counts from 1 March)."""
    if birthday is None:
        return None
    return today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))
