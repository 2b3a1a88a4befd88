from __future__ import annotations

import textwrap

from language.loader import load_text


def load(text: str):
    return load_text(textwrap.dedent(text).lstrip("\n"), "j.yaml")


def test_positions_of_keys_and_values_are_one_based() -> None:
    doc = load(
        """
        id: demo
        steps:
          - id: hello
            send_sms:
              text: "Hi"
        """
    )
    assert doc.problems == []
    assert doc.data["steps"][0]["send_sms"]["text"] == "Hi"
    value = doc.position(("steps", 0, "send_sms", "text"))
    key = doc.key_position(("steps", 0, "send_sms", "text"))
    assert (value.line, value.column) == (5, 13)
    assert (key.line, key.column) == (5, 7)
    # A path that is not written falls back to the nearest written ancestor.
    missing = doc.position(("steps", 0, "send_sms", "nope"))
    assert (missing.line, missing.column) == (5, 7)


def test_duplicate_key_is_an_error_at_the_second_key() -> None:
    doc = load(
        """
        id: demo
        name: A
        name: B
        """
    )
    assert [(p.line, p.column, p.severity) for p in doc.problems] == [(3, 1, "error")]
    assert "duplicate key 'name' (first written at line 2)" in doc.problems[0].message
    assert doc.data["name"] == "A"


def test_syntax_error_reports_its_position() -> None:
    doc = load(
        """
        steps:
          - wait: 1d
           - wait: 2d
        """
    )
    assert len(doc.problems) == 1
    problem = doc.problems[0]
    assert (problem.line, problem.column) == (3, 4)
    assert problem.message.startswith("YAML syntax:")
    assert doc.data is None


def test_scalars_follow_yaml_1_2_not_1_1() -> None:
    doc = load(
        """
        choices: [yes, no, on, off]
        at: 10:00
        flag: true
        count: 010
        ratio: 1.5
        empty:
        """
    )
    assert doc.data == {
        "choices": ["yes", "no", "on", "off"],
        "at": "10:00",
        "flag": True,
        "count": "010",
        "ratio": 1.5,
        "empty": None,
    }


def test_resolve_skips_union_tags_in_pydantic_locations() -> None:
    doc = load(
        """
        steps:
          - id: a
            send_sms:
              text: hi
        """
    )
    # The tag 'send_sms' and the field 'send_sms' look alike: the field wins.
    assert doc.resolve(("steps", 0, "send_sms", "send_sms", "text")) == (
        "steps", 0, "send_sms", "text",
    )  # fmt: skip
    # 'id' is a field of the step, not of the message, even after the tag.
    assert doc.resolve(("steps", 0, "send_sms", "id")) == ("steps", 0, "id")
    assert doc.resolve(("steps", 0, "function-after[x]", "send_sms")) == (
        "steps", 0, "send_sms",
    )  # fmt: skip


def test_find_points_at_a_name_inside_a_text() -> None:
    doc = load(
        """
        if: "customer.points > 1 and customer.phone"
        """
    )
    span = doc.find(("if",), "customer.phone")
    assert (span.line, span.column) == (1, 30)
