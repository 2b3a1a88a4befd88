from __future__ import annotations

import re
import textwrap
from pathlib import Path

from language.graph import escape, mermaid
from language.loader import load_text
from language.models import Journey
from language.validate import validate_directory


def journey(text: str) -> Journey:
    return Journey.model_validate(load_text(textwrap.dedent(text), "j.yaml").data)


BRANCHING = """
id: demo
name: Demo
trigger: {event: cart_abandoned, where: "event.properties.total > 10"}
steps:
  - wait: 30m
  - wait_for: {event: purchase, timeout: 1h}
    then:
      - exit: purchased
  - if: "customer.tier == \\"gold\\""
    then:
      - id: vip_note
        send_sms: {text: "Say \\"hi\\" <3"}
    else:
      - choose:
          - when: "customer.points > 100"
            steps:
              - award_points: {points: 10, reason: loyal}
          - else: []
  - split:
      name: ab
      variants:
        - {name: a, weight: 90, steps: [{id: nudge, ask: {text: "Back?", expect: {choices: [yes, no]}, timeout: 1d}}]}
        - {name: holdout, weight: 10, steps: []}
  - update_segments: {add: [active]}
"""


def test_branching_journey_nodes_and_edges() -> None:
    chart = mermaid(journey(BRANCHING))
    lines = chart.splitlines()
    assert lines[0] == "flowchart TD"
    expected = [
        '    n0(["demo: on event cart_abandoned where event.properties.total #gt; 10"])',
        '    n1["wait 30m"]',
        "    n0 --> n1",
        '    n2{"wait_for purchase, up to 1h"}',
        "    n1 --> n2",
        '    n3(["exit: purchased"])',
        '    n2 -->|"then: purchase"| n3',
        '    n4{"if customer.tier == #quot;gold#quot;"}',
        '    n2 -->|"else: timed out"| n4',
        '    n5["vip_note<br/>send_sms Say #quot;hi#quot; #lt;3"]',
        '    n4 -->|"then"| n5',
        '    n6{"choose"}',
        '    n4 -->|"else"| n6',
        '    n7["award 10 points"]',
        '    n6 -->|"when customer.points #gt; 100"| n7',
        '    n8{"split ab"}',
        "    n5 --> n8",
        "    n7 --> n8",
        '    n6 -->|"else"| n8',
        '    n9{"nudge<br/>ask Back?"}',
        '    n8 -->|"a (weight 90)"| n9',
        '    n10["update_segments +active"]',
        '    n9 -->|"then: answered"| n10',
        '    n9 -->|"else: no answer"| n10',
        '    n8 -->|"holdout (weight 10)"| n10',
        '    n11(["end: completed"])',
        "    n10 --> n11",
        '    rules["audience: everyone<br/>reentry: never"]',
        "    n0 -.- rules",
    ]
    assert lines[1:] == expected


def test_every_step_type_has_a_summary() -> None:
    chart = mermaid(
        journey(
            """
            id: all
            name: All
            trigger: {schedule: {cron: "0 10 * * 5", segment: vip}}
            steps:
              - wait: {until: "09:00"}
              - set: {a: "1", b: "2"}
              - emit: {event: done}
              - unsubscribe: {reason: inactive}
              - id: t
                send_sms: {template: hello}
              - choose:
                  - when: "customer.points > 1"
                    steps: []
              - exit: finished
            """
        )
    )
    for fragment in [
        "schedule '0 10 * * 5' to vip (customer time)",
        '["wait until 09:00"]',
        '["set a, b"]',
        '["emit done"]',
        '["unsubscribe (inactive)"]',
        '["t<br/>send_sms template hello"]',
        '-->|"otherwise"|',
        '(["exit: finished"])',
    ]:
        assert fragment in chart, fragment
    assert "end: completed" not in chart  # every path exits


def test_escape() -> None:
    assert escape('a "b" <c> & #1 | `d`') == "a #quot;b#quot; #lt;c#gt; #amp; #35;1 #124; #96;d#96;"


RULES = """
id: rules
name: Rules
trigger: {event: purchase, where: "event.properties.note == \\"a|b\\" and event.properties.amount > 250"}
audience: "customer.orders_count >= 1 and customer.attributes.code != '`x`'"
reentry: 30d
exit_on:
  - event: opted_out
  - event: refund
    where: "event.properties.order_id == trigger.properties.order_id and event.properties.amount >= 100"
goal: {event: purchase, within: 7d}
steps:
  - if: "customer.points > 100 and customer.tier in ['gold', 'platinum'] and customer.attributes.a != 'b'"
    then:
      - wait_for: {event: review, where: "event.properties.stars >= 4 and event.properties.text != ''", timeout: 2d}
  - choose:
      - when: "customer.days_since_last_purchase > 30 and customer.attributes.segment == 'sleepy'"
        steps: []
"""
# A node: id, an opening shape, a quoted label without quotes inside, the closing shape.
NODE = re.compile(r'^    (n\d+|rules)(\["|\(\["|\{")[^"]*("\]|"\]\)|"\})$')
EDGE = re.compile(r'^    (n\d+) (-->(\|"[^"|]*"\|)?|-\.-) (n\d+|rules)$')


def test_triggers_audience_reentry_exits_and_conditions_in_full() -> None:
    chart = mermaid(journey(RULES))
    for fragment in [
        "on event purchase where event.properties.note == #quot;a#124;b#quot; and event.properties.amount #gt; 250",
        "audience: customer.orders_count #gt;= 1 and customer.attributes.code != '#96;x#96;'",
        "reentry: after 30d",
        "exit on: opted_out<br/>exit on: refund where event.properties.order_id == trigger.properties.order_id "
        "and event.properties.amount #gt;= 100",
        "goal: purchase within 1w",
        "if customer.points #gt; 100 and customer.tier in ['gold', 'platinum'] and customer.attributes.a != 'b'",
        "wait_for review where event.properties.stars #gt;= 4 and event.properties.text != '', up to 2d",
        '-->|"when customer.days_since_last_purchase #gt; 30 and customer.attributes.segment == \'sleepy\'"|',
    ]:
        assert fragment in chart, fragment


def test_a_run_key_is_shown_with_the_entry_rules() -> None:
    shipped = Path(__file__).parents[2] / "journeys"
    cart = validate_directory(shipped).catalog.journey("abandoned_cart").journey
    assert "reentry: always<br/>one run at a time per trigger.properties.cart_id<br/>exit on: purchase" in mermaid(cart)


def test_every_line_is_a_well_formed_node_or_edge() -> None:
    shipped = Path(__file__).parents[2] / "journeys"
    charts = [mermaid(journey(RULES)), mermaid(journey(BRANCHING))]
    charts += [mermaid(pinned.journey) for pinned in validate_directory(shipped).catalog.journeys.values()]
    assert len(charts) >= 10
    for chart in charts:
        first, *rest = chart.splitlines()
        assert first == "flowchart TD"
        for line in rest:
            assert NODE.match(line) or EDGE.match(line), line
