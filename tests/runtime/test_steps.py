"""Every step type, run by the real workflow and activities on the time-skipping server,
against SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import select

from language.models import Variant
from store.db import session_scope
from store.tables import AttributeChange, Coupon, Event, PointsEntry, SegmentMembership
from tests.runtime.support import around, at, sms, write_journeys
from workflows.steps.branching import assign_variant

SEND_AND_LINK = """
id: hello
name: Hello
trigger: {event: signup}
steps:
  - id: greet
    send_sms:
      text: "Hi {{ customer.first_name | default('there') }}, {{ brand }} here: {{ coupon('WELCOME10') }} {{ link('https://shop.example/new') }}"
  - id: localized
    send_sms: {template: greeting, purpose: transactional}
"""
GREETING = """
text:
  en: "Welcome!"
  sv: "Välkommen!"
"""


async def test_send_sms_renders_text_coupon_link_and_template_locale(journeys_dir: Path, simulation, sender) -> None:
    catalog = write_journeys(journeys_dir, {"hello": SEND_AND_LINK}, templates={"greeting": GREETING})
    async with simulation(catalog) as run:
        await run.customer(first_name=None, locale="sv-SE")
        assert await run.enter("hello")
        timeline = await run.timeline("hello")
    texts = [entry["text"] for entry in sms(timeline)]
    assert texts[0].startswith("Hi there, Nordic Shoes here: ")
    with session_scope(run.sim.db) as session:
        coupon = session.exec(select(Coupon)).one()
    assert coupon.series == "WELCOME10" and coupon.code in texts[0]
    assert "http://localhost:8000/l/" in texts[0]
    assert texts[1] == "Välkommen!"
    assert sms(timeline)[1]["encoding"] == "GSM-7"  # ä is in the GSM-7 alphabet
    assert timeline["outcome"] == "completed"
    assert [m.body for m in sender.sent] == texts


ASK = """
id: survey
name: Survey
trigger: {event: purchase}
steps:
  - id: nps
    ask:
      text: "How likely are you to recommend us, 0-10?"
      expect: {type: integer, min: 0, max: 10}
      timeout: 3d
      reprompt: "Please reply with a number from 0 to 10."
    then:
      - if: "answer('nps') >= 9"
        then: [{exit: promoter}]
        else: [{exit: other}]
    else:
      - exit: no_answer
"""


async def test_ask_reprompts_once_then_takes_a_valid_answer(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"survey": ASK})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("survey")
        await run.at("reply:nps@+1h great shop")
        await run.at("reply:nps@+2h still great")  # invalid again: no second reprompt
        await run.at("reply:nps@+3h 10")
        timeline = await run.timeline("survey")
    assert [e["step"] for e in sms(timeline)] == ["nps", "nps.reprompt"]
    assert timeline["outcome"] == "promoter"
    answer = next(e for e in timeline["timeline"] if e["action"] == "answer")
    assert answer["value"] == 10 and answer["at"] == at("3h")


async def test_ask_times_out_into_else(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"survey": ASK})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("survey")
        timeline = await run.timeline("survey")
    assert timeline["outcome"] == "no_answer"
    assert timeline["ended_at"] == at("3d")


async def test_ask_not_sent_goes_to_else_at_once(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"survey": ASK})
    async with simulation(catalog) as run:
        await run.customer(sms_consent="none")
        assert await run.enter("survey")
        timeline = await run.timeline("survey")
    assert sms(timeline)[0]["status"] == "skipped" and sms(timeline)[0]["reason"] == "no_consent"
    assert timeline["outcome"] == "no_answer" and timeline["ended_at"] == at("0s")


WAITS = """
id: waits
name: Waits
trigger: {event: cart_abandoned}
steps:
  - wait: 30m
  - wait_for: {event: purchase, where: "event.properties.cart_id == trigger.properties.cart_id", timeout: 1h}
    then: [{exit: bought}]
    else:
      - wait: {until: "09:00"}
      - exit: reminded
"""


async def test_wait_for_matches_only_its_cart(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"waits": WAITS})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("waits", trigger='cart_abandoned {"cart_id": "A"}')
        await run.at('purchase@+40m {"cart_id": "B", "amount": 5}')
        await run.at('purchase@+50m {"cart_id": "A", "amount": 5}')
        timeline = await run.timeline("waits")
    assert timeline["outcome"] == "bought"
    assert timeline["ended_at"] == at("50m")


async def test_wait_for_timeout_then_wait_until_local_time(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"waits": WAITS})
    async with simulation(catalog) as run:
        await run.customer(timezone="Europe/Stockholm")
        assert await run.enter("waits", trigger='cart_abandoned {"cart_id": "A"}')
        timeline = await run.timeline("waits")
    assert timeline["outcome"] == "reminded"
    # 15:00 UTC + 1h30 = 17:30 Stockholm time; the next 09:00 there is 08:00 UTC the next day.
    assert timeline["ended_at"] == around("2026-03-03T08:00:00Z")


BRANCHES = """
id: branches
name: Branches
trigger: {event: signup}
steps:
  - wait: 30d
  - if: "customer.days_since_last_purchase < 30"
    then:
      - choose:
          - when: "customer.total_spent > 500"
            steps: [{exit: big}]
          - when: "customer.total_spent > 50"
            steps: [{exit: medium}]
          - else: [{exit: small}]
    else: [{exit: lapsed}]
"""


async def test_conditions_read_fresh_customer_data(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"branches": BRANCHES})
    async with simulation(catalog) as run:
        await run.customer(orders=[{"at": "-60d", "amount": 20}])
        assert await run.enter("branches")
        await run.at('purchase@+20d {"amount": 80}')  # during the wait: the check must see it
        timeline = await run.timeline("branches")
    assert timeline["outcome"] == "medium"


async def test_missing_values_compare_false(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"branches": BRANCHES})
    async with simulation(catalog) as run:
        await run.customer()  # never bought: days_since_last_purchase is none
        assert await run.enter("branches")
        timeline = await run.timeline("branches")
    assert timeline["outcome"] == "lapsed"


SPLIT = """
id: ab
name: AB
trigger: {event: signup}
steps:
  - split:
      name: offer
      variants:
        - {name: pct20, weight: 45, steps: [{exit: got_pct20}]}
        - {name: free_shipping, weight: 45, steps: [{exit: got_free_shipping}]}
        - {name: holdout, weight: 10, steps: []}
"""


async def test_split_is_stable_and_recorded(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"ab": SPLIT})
    variants = catalog.journey("ab").journey.steps[0].split.variants  # type: ignore[union-attr]
    expected = assign_variant("ab", "offer", "c-7", variants).name
    async with simulation(catalog) as run:
        await run.customer(id="c-7")
        assert await run.enter("ab", customer="c-7")
        timeline = await run.timeline("ab", customer="c-7")
        enrollment = run.enrollments("ab", customer="c-7")[0]
    assert timeline["outcome"] == ("completed" if expected == "holdout" else f"got_{expected}")
    assert enrollment.variants == {"offer": expected}


def test_split_assignment_follows_weights() -> None:
    variants = [Variant(name="a", weight=45), Variant(name="b", weight=45), Variant(name="holdout", weight=10)]
    counts = Counter(assign_variant("j", "s", f"customer-{i}", variants).name for i in range(20000))
    assert abs(counts["holdout"] / 20000 - 0.10) < 0.01
    assert abs(counts["a"] / 20000 - 0.45) < 0.015
    # Stable: the same customer, the same answer, every time.
    assert {assign_variant("j", "s", "customer-1", variants).name for _ in range(5)} == {
        assign_variant("j", "s", "customer-1", variants).name}


EFFECTS = """
id: effects
name: Effects
trigger: {event: signup}
steps:
  - award_points: {points: 600, reason: "Welcome bonus", expires_in: 365d}
  - update_segments: {add: [active, follow_up], remove: [follow_up]}
  - set: {favourite_store: "{{ trigger.properties.store }}", tier_then: "{{ customer.tier }}"}
  - emit: {event: vip_welcomed, properties: {tier: "{{ customer.tier }}"}}
  - unsubscribe: {reason: inactive}
  - id: after
    send_sms: {text: "You should never get this"}
"""
FOLLOW = """
id: follow
name: Follow
trigger: {event: vip_welcomed, where: "event.properties.tier == 'gold'"}
steps:
  - exit: followed
"""


async def test_effect_steps_change_the_customer_once(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"effects": EFFECTS, "follow": FOLLOW})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("effects", trigger='signup {"store": "Oslo"}')
        timeline = await run.timeline("effects")
        followed = await run.timeline("follow")
        customer = run.customer_row()
    assert timeline["outcome"] == "completed"
    points = next(e for e in timeline["timeline"] if e["action"] == "points")
    assert points["points"] == 600 and points["balance"] == 600
    assert customer.points == 600 and customer.tier == "gold"
    assert customer.attributes == {"favourite_store": "Oslo", "tier_then": "gold"}
    assert customer.sms_consent == "opted_out"
    assert sms(timeline)[0]["status"] == "skipped" and sms(timeline)[0]["reason"] == "opted_out"
    assert followed["outcome"] == "followed"  # the emitted event started the other journey
    with session_scope(run.sim.db) as session:
        # active by update_segments; vip (a rule: tier gold) at once, with the tier change
        assert sorted(m.segment for m in session.exec(select(SegmentMembership))) == ["active", "vip"]
        assert len(session.exec(select(PointsEntry)).all()) == 1
        assert len(session.exec(select(AttributeChange)).all()) == 1
        types = [e.type for e in session.exec(select(Event))]
    # The tier change, the segment moves and the opt-out all went through the event path.
    for expected in ("tier_changed", "segment_entered", "vip_welcomed", "opted_out"):
        assert expected in types


SELF_AFFECTING = """
id: sunset
name: Sunset
trigger: {event: signup}
steps:
  - if: "customer.sms_consent == 'opted_in'"
    then:
      - update_segments: {add: [follow_up]}
      - unsubscribe: {reason: inactive}
"""


async def test_a_step_that_changes_the_customer_does_not_rewrite_its_own_past(journeys_dir: Path, simulation) -> None:
    """Found in review: the run used to be signalled with its own opt-out, its task was
    replayed, and the condition re-read the changed customer (timeline: `if` false)."""
    catalog = write_journeys(journeys_dir, {"sunset": SELF_AFFECTING})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("sunset")
        timeline = await run.timeline("sunset")
    actions = [(e["action"], e.get("result")) for e in timeline["timeline"]]
    assert actions == [("if", True), ("segments", None), ("unsubscribe", None)]
    segments = timeline["timeline"][1]
    assert segments["changed_in"] == ["follow_up"]


async def test_decisions_are_remembered_per_run_and_step(journeys_dir: Path, db, sender) -> None:
    from datetime import UTC, datetime

    from activities.decisions import DecisionActivities
    from activities.deps import Deps
    from store.tables import Customer
    from workflows.contracts import EvaluateInput, Facts, RunRef

    catalog = write_journeys(journeys_dir, {"sunset": SELF_AFFECTING})
    moment = datetime(2026, 3, 2, 15, tzinfo=UTC)
    with session_scope(db) as session:
        session.add(Customer(id="c1", sms_consent="opted_in", created_at=moment, updated_at=moment))
    decisions = DecisionActivities(Deps(catalog=catalog, db=db, sender=sender, router=None))  # type: ignore[arg-type]
    call = EvaluateInput(run=RunRef(enrollment_id="e1", customer_id="c1", journey_id="sunset", journey_version="v"),
                         at=moment, step_key="steps.0", facts=Facts(entered_at=moment),
                         expression="customer.sms_consent == 'opted_in'")
    assert decisions.evaluate(call) is True
    with session_scope(db) as session:
        customer = session.get(Customer, "c1")
        assert customer is not None
        customer.sms_consent = "opted_out"
        session.add(customer)
    assert decisions.evaluate(call) is True  # a replay: the same answer as the first time
    assert decisions.evaluate(call.model_copy(update={"step_key": "steps.1"})) is False  # a new decision

    # A first decision reads what it decides on and keeps the answer: no look for an earlier one.
    from sqlalchemy import event as sa_event

    statements: list[str] = []
    sa_event.listen(db, "before_cursor_execute", lambda *args: statements.append(" ".join(args[2].split()[:4])))
    assert decisions.evaluate(call.model_copy(update={"step_key": "steps.2"})) is False
    assert [s.split()[0] for s in statements if "decisions" in s] == ["INSERT"], statements

    # The customer gone since (erased): a replay's decision cannot be made again, the first answer stands.
    with session_scope(db) as session:
        session.delete(session.get(Customer, "c1"))
    assert decisions.evaluate(call) is True
    with pytest.raises(Exception, match="c1"):  # a new decision about nobody: an error, as before
        decisions.evaluate(call.model_copy(update={"step_key": "steps.3"}))


async def test_an_event_matched_on_whose_it_is_reads_it_once_and_keeps_nothing(journeys_dir: Path, db,
                                                                                 sender) -> None:
    """A wait for a purchase with no `where`: the answer is whose event it is, which never
    changes, so it is not remembered (one read, no write); a `where` and a click, which
    read what can change, are remembered as before."""
    from datetime import UTC, datetime

    from sqlalchemy import event as sa_event

    from activities.decisions import DecisionActivities
    from activities.deps import Deps
    from store.tables import Customer, Decision, Event
    from workflows.contracts import EventMatch, Facts, InspectEventInput, RunRef

    catalog = write_journeys(journeys_dir, {"sunset": SELF_AFFECTING})
    moment = datetime(2026, 3, 2, 15, tzinfo=UTC)
    with session_scope(db) as session:
        session.add(Customer(id="c1", sms_consent="opted_in", created_at=moment, updated_at=moment))
        for event_id, kind, customer, props in (("buy-1", "purchase", "c1", {"amount": 30}),
                                                ("buy-2", "purchase", "c2", {"amount": 30}),
                                                ("click-1", "link_clicked", "c1", {"enrollment_id": "e1",
                                                                                   "step": "text"})):
            session.add(Event(id=event_id, customer_id=customer, type=kind, occurred_at=moment, received_at=moment,
                              properties=props))
    decisions = DecisionActivities(Deps(catalog=catalog, db=db, sender=sender, router=None))  # type: ignore[arg-type]
    run = RunRef(enrollment_id="e1", customer_id="c1", journey_id="sunset", journey_version="v")

    def inspect(event_id: str, where: str | None = None) -> EventMatch:
        return decisions.inspect_event(InspectEventInput(run=run, at=moment, step_key="steps.0",
                                                         facts=Facts(entered_at=moment), event_id=event_id,
                                                         where=where))

    statements: list[str] = []
    sa_event.listen(db, "before_cursor_execute", lambda *args: statements.append(" ".join(args[2].split()[:4])))
    assert inspect("buy-1").matched is True
    assert inspect("buy-2").matched is False  # another customer's event
    work = [s for s in statements if s.split()[0] in ("SELECT", "INSERT", "UPDATE", "DELETE")]
    assert len(work) == 2 and all(s.startswith("SELECT events.") for s in work), statements  # one read each
    with session_scope(db, readonly=True) as session:
        assert session.exec(select(Decision)).all() == []

    assert inspect("buy-1", where="event.properties.amount > 20").matched is True
    assert inspect("click-1").matched is True
    with session_scope(db, readonly=True) as session:
        assert len(session.exec(select(Decision)).all()) == 2


FREE_TEXT = """
id: feedback
name: Feedback
trigger: {event: purchase}
steps:
  - id: comment
    ask:
      text: "Anything we could do better?"
      expect: {type: text}
      timeout: 1d
    then:
      - set: {last_comment: "{{ answer('comment') }}"}
"""


async def test_free_text_answers_stay_out_of_workflow_history(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"feedback": FREE_TEXT})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("feedback")
        await run.at("reply:comment@+1h My name is Ana Berg, call me on 555 0100")
        timeline = await run.timeline("feedback")
        handle = run.sim.env.client.get_workflow_handle("journey/feedback/sim-customer")
        history = (await handle.fetch_history()).to_json()
    answer = next(e for e in timeline["timeline"] if e["action"] == "answer")
    assert answer["value"] == "My name is Ana Berg, call me on 555 0100"  # the simulator reads it back
    assert run.customer_row().attributes == {"last_comment": "My name is Ana Berg, call me on 555 0100"}
    assert "Ana Berg" not in history and "555 0100" not in history
