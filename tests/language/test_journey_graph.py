from __future__ import annotations

import textwrap

from language.graph import escape, mermaid
from language.loader import load_text
from language.models import Journey


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
    assert escape('a "b" <c> & #1') == "a #quot;b#quot; #lt;c#gt; #amp; #35;1"
