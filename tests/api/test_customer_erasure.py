"""DELETE /customers/{id}: the token, 404, and an erasure of a customer whom real journeys,
the webhook and the send activity wrote (tests/customers/erasure_support.py has the checks)."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from store.db import session_scope
from store.tables import Erasure
from tests.api.conftest import AUTH, Api
from tests.customers.erasure_support import aggregates, check_erased, check_number_stays_suppressed, metrics_lines, seed


async def test_delete_erases_the_customer_and_keeps_reports_and_the_opt_out(api: Api) -> None:
    await seed(api)
    before, metrics = aggregates(api.run.sim.db), metrics_lines((await api.http.get("/metrics")).text)
    assert (await api.http.delete("/customers/c1")).status_code == 401
    assert (await api.http.delete("/customers/c1", headers={"Authorization": "Bearer nope"})).status_code == 403
    unknown = await api.http.delete("/customers/nobody", headers=AUTH)
    assert unknown.status_code == 404 and "no customer 'nobody'" in unknown.text

    response = await api.http.delete("/customers/c1", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer_id"] == "c1" and body["completed_at"] and body["runs_not_stopped"] == []
    assert body["counts"]["runs_stopped"] == 1 and body["counts"]["customers"] == 1
    assert metrics_lines((await api.http.get("/metrics")).text) == metrics
    await check_erased(api, before, source="api")

    again = await api.http.delete("/customers/c1", headers=AUTH)  # idempotent: nothing left, one more audit row
    assert again.status_code == 200 and again.json()["counts"]["runs_stopped"] == 0
    with session_scope(api.run.sim.db, readonly=True) as session:
        assert len(session.execute(select(Erasure).where(col(Erasure.customer_id) == "c1")).all()) == 2
    assert aggregates(api.run.sim.db) == before
    await check_number_stays_suppressed(api)
