"""Each kind of problem, at its exact line and column."""

from __future__ import annotations

from pathlib import Path

from validation_helpers import only, where

HEAD = """
id: demo
name: Demo
trigger: {event: purchase}
steps:
"""


def test_unknown_keys_get_did_you_mean(check) -> None:
    report = check(
        """
        id: demo
        name: Demo
        trigger: {event: purchase}
        audiance: "customer.points > 1"
        steps:
          - id: hi
            send_sms: {txt: "Hi"}
        """
    )
    # The message's own rule (text or template) waits until its keys are right.
    assert where(report.errors) == [
        (4, 1, "unknown key 'audiance' (did you mean 'audience'?)"),
        (7, 16, "unknown key 'txt' (did you mean 'text'?)"),
    ]
    assert only(report, "audiance").value == "audiance"
    assert report.catalog.journeys == {}


def test_unknown_step_action_and_trigger_kind(check) -> None:
    report = check(
        """
        id: demo
        name: Demo
        trigger:
          segment_enter: lapsed_30d
        steps:
          - id: hi
            sendsms: {text: "Hi"}
        """
    )
    assert where(report.errors) == [
        (4, 3, "unknown trigger 'segment_enter' (did you mean 'segment_entered'?)"),
        (7, 5, "unknown step 'sendsms' (did you mean 'send_sms'?)"),
    ]


def test_two_actions_in_one_step(check) -> None:
    report = check(HEAD + "  - wait: 1d\n    exit: done\n")
    assert where(report.errors) == [(6, 5, "a step has one action ('wait'): put 'exit' in a step of its own")]


def test_bad_durations_and_times(check) -> None:
    report = check(
        HEAD
        + """\
  - wait: 30x
  - wait: {until: "9am"}
  - wait: {untill: "09:00"}
  - wait: -2d
reentry: sometimes
"""
    )
    assert where(report.errors) == [
        (5, 11, "expected a duration such as 30d or 4h, or a mapping with until"),
        (6, 19, "'9am' is not a time of day: write HH:MM on a 24-hour clock, e.g. 09:00"),
        (7, 5, "missing 'until'"),
        (7, 12, "unknown key 'untill' (did you mean 'until'?)"),
        (8, 11, "must not be negative"),
        (9, 10, "expected 'never' or 'always', or a duration such as 30d or 4h"),
    ]


def test_journey_id_must_equal_the_file_stem(check) -> None:
    report = check(HEAD.replace("id: demo", "id: other") + "  - wait: 1d\n")
    assert where(report.errors) == [
        (1, 5, "the journey id must equal the file name 'demo': rename the file to "
         "other.yaml or write id: demo"),
    ]  # fmt: skip


def test_duplicate_journey_ids_across_files(check, journeys_dir: Path) -> None:
    check(HEAD + "  - wait: 1d\n", name="demo")
    report = check(HEAD + "  - wait: 2d\n", name="zz_demo")
    messages = [(Path(p.file).name, p.line, p.column, p.message) for p in report.errors]
    assert ("zz_demo.yaml", 1, 5, "duplicate journey id 'demo' (also in "
            f"{journeys_dir / 'demo.yaml'})") in messages  # fmt: skip
    assert list(report.catalog.journeys) == ["demo"]


def test_sending_steps_need_ids_and_ids_are_unique_even_nested(check) -> None:
    report = check(
        HEAD
        + """\
  - send_sms: {text: "Hi"}
  - id: a
    wait: 1d
  - if: "customer.points > 1"
    then:
      - id: a
        ask: {text: "Q?", expect: {type: text}, timeout: 1d}
"""
    )
    assert where(report.errors) == [
        (5, 5, "a send_sms step needs an id: reports, links and clicked('<id>') use it"),
        (10, 13, "duplicate step id 'a' (first used at line 6): step ids are unique in a "
         "journey"),
    ]  # fmt: skip


def test_segment_references(check) -> None:
    report = check(
        """
        id: demo
        name: Demo
        trigger: {segment_entered: lapsd_30d}
        audience: "in_segment('vipp')"
        steps:
          - update_segments: {add: [active, vip], remove: [nowhere]}
        """
    )
    assert where(report.errors) == [
        (3, 28, "unknown segment 'lapsd_30d' (did you mean 'lapsed_30d'?); segments are "
         "defined in segments.yaml"),
        (4, 23, "unknown segment 'vipp' (did you mean 'vip'?); segments are defined in "
         "segments.yaml"),
        (6, 37, "'vip' is a rule segment: its members are computed from its rule, so only "
         "manual segments (manual: true) can be changed (manual segments: active, lapsed)"),
        (6, 52, "unknown segment 'nowhere' (expected one of: active, big_spenders, "
         "inactive_6m, lapsed, lapsed_30d, prospects, vip); segments are defined in "
         "segments.yaml"),
    ]  # fmt: skip


def test_template_and_coupon_references(check) -> None:
    report = check(
        HEAD
        + """\
  - id: a
    send_sms: {template: winback_survy}
  - id: b
    send_sms: {text: "{{ coupon('WINBACK2') }}"}
"""
    )
    assert where(report.errors) == [
        (6, 26, "unknown template 'winback_survy' (did you mean 'winback_survey'?); "
         "expected the file templates/winback_survy.yaml"),
        (8, 33, "unknown coupon series 'WINBACK2' (did you mean 'WINBACK20'?); series are "
         "listed under coupons: in loyalty.yaml"),
    ]  # fmt: skip


def test_a_template_with_errors_is_reported_and_breaks_its_journeys(check, journeys_dir: Path) -> None:
    (journeys_dir / "templates" / "bad.yaml").write_text(
        "text:\n  en: \"Hi {{ customer.frist_name }} {{ clicked('nope') }}\"\n"
    )
    report = check(HEAD + "  - id: a\n    send_sms: {template: bad}\n")
    template_file = str(journeys_dir / "templates" / "bad.yaml")
    assert [(p.file, p.line, p.column, p.message) for p in report.errors] == [
        (template_file, 2, 14, "customer has no field 'frist_name' (did you mean "
         "'first_name'?)"),
        (str(journeys_dir / "demo.yaml"), 6, 26, "template 'bad' has errors (see "
         "templates/bad.yaml)"),
    ]  # fmt: skip
    assert report.catalog.journeys == {}


def test_template_texts_refer_to_the_journeys_steps(check, journeys_dir: Path) -> None:
    (journeys_dir / "templates" / "nudge.yaml").write_text(
        "text:\n  en: \"{% if clicked('survey') %}Thanks!{% endif %}\"\n"
    )
    report = check(HEAD + "  - id: a\n    send_sms: {template: nudge}\n")
    assert where(report.errors) == [
        (6, 26, "template 'nudge' (en): no step 'survey' in this journey (expected one "
         "of: a)"),
    ]  # fmt: skip


def test_step_split_and_answer_references(check) -> None:
    report = check(
        HEAD
        + """\
  - id: survey
    send_sms: {text: "Hi"}
  - id: pause
    wait: 1d
  - if: "clicked('survy') or sent('pause') or answer('survey') or journey.variant('ab')"
"""
    )
    assert where(report.errors) == [
        (9, 18, "no step 'survy' in this journey (did you mean 'survey'?)"),
        (9, 35, "'pause' is a wait step; this needs a step that sends (send_sms, send_email or ask)"),
        (9, 54, "'survey' is a send_sms step; this needs an ask step"),
        (9, 83, "no split named 'ab' in this journey"),
    ]


def test_unknown_names_fields_filters_and_misplaced_functions(check) -> None:
    report = check(
        HEAD
        + """\
  - id: a
    send_sms: {text: "{{ customer.frist_name }} {{ custmer.tier }} {{ brand | shout }}"}
  - if: "event.type == 'x' and link('https://x') and customer.phone"
  - set: {x: "{{ coupon('WELCOME10') }}"}
"""
    )
    assert where(report.errors) == [
        (6, 26, "customer has no field 'frist_name' (did you mean 'first_name'?)"),
        (6, 52, "unknown name 'custmer' (did you mean 'customer'?)"),
        (6, 79, "unknown filter 'shout' (did you mean 'sort'?)"),
        (7, 10, "'event' is only available in trigger.where, wait_for.where, exit_on.where "
         "and goal.value"),
        (7, 32, "link() can only be used in message texts (send_sms, ask, templates)"),
        (7, 54, "the customer's phone number is never exposed to templates or expressions"),
        (8, 18, "coupon() can only be used in message texts (send_sms, ask, templates)"),
    ]  # fmt: skip


def test_event_is_allowed_in_where_and_goal_value(check) -> None:
    report = check(
        """
        id: demo
        name: Demo
        trigger: {event: purchase, where: "event.properties.amount > 10"}
        exit_on: [{event: refund, where: "event.properties.order == trigger.properties.order"}]
        goal: {event: purchase, value: "event.properties.amount"}
        steps:
          - wait_for: {event: purchase, where: "event.type == 'purchase'", timeout: 1d}
        """
    )
    assert report.problems == []


def test_expressions_that_do_not_compile(check) -> None:
    report = check(HEAD + '  - if: "customer.points >"\n  - if: "{{ customer.points }}"\n')
    assert where(report.errors) == [
        (5, 9, "does not compile: unexpected 'end of print statement'"),
        (6, 9, "does not compile: expected token ':', got '}' (conditions are written "
         "without {{ }}, e.g. customer.points >= 500)"),
    ]  # fmt: skip


def test_steps_after_exit_and_branches_after_else_are_unreachable(check) -> None:
    report = check(
        HEAD
        + """\
  - if: "customer.points > 1"
    then:
      - exit: done
      - wait: 1d
      - wait: 2d
  - choose:
      - when: "customer.points > 5"
        steps: []
      - else: []
      - when: "customer.points > 9"
        steps: []
"""
    )
    assert where(report.errors) == [
        (8, 9, "unreachable: follows exit at line 7"),
        (9, 9, "unreachable: follows exit at line 7"),
        (13, 9, "'else' must be the last branch of choose"),
        (14, 9, "unreachable: follows else at line 13"),
    ]


def test_split_weights(check) -> None:
    zero_one = check(
        HEAD
        + """\
  - split:
      name: ab
      variants:
        - {name: a, weight: 0}
        - {name: b, weight: 10}
"""
    )
    assert zero_one.errors == []
    assert where(zero_one.warnings) == [(8, 29, "variant 'a' has weight 0: no customer will get it")]
    assert list(zero_one.catalog.journeys) == ["demo"]  # warnings do not block

    all_zero = check(
        HEAD
        + """\
  - split:
      name: ab
      variants:
        - {name: a, weight: 0}
        - {name: b, weight: 0}
"""
    )
    assert where(all_zero.errors) == [
        (5, 5, "the variant weights add up to 0: give at least one variant a positive weight")
    ]


def test_triggers_date_attribute_cron_and_timezone(check) -> None:
    date = check(
        """
        id: demo
        name: Demo
        trigger: {date: {attribute: birthdate, at: "10:00"}}
        steps: [{wait: 1d}]
        """
    )
    assert where(date.errors) == [
        (3, 29, "a date trigger reads birthday or attributes.<name> (did you mean "
         "'birthday'?)"),
    ]  # fmt: skip
    ok = check(
        """
        id: demo
        name: Demo
        trigger: {date: {attribute: attributes.anniversary, at: "10:00", offset: -3d}}
        steps: [{wait: 1d}]
        """
    )
    assert ok.problems == []
    schedule = check(
        """
        id: demo
        name: Demo
        trigger: {schedule: {cron: "0 25 * *", segment: vip, timezone: Europe/Pari}}
        steps: [{wait: 1d}]
        """
    )
    assert where(schedule.errors) == [
        (3, 28, "a cron expression has 5 fields (minute hour day-of-month month "
         "day-of-week), e.g. '0 10 * * 5'; this one has 4"),
        (3, 64, "unknown time zone 'Europe/Pari' (did you mean 'Europe/Paris'?); or write "
         "customer for each customer's own"),
    ]  # fmt: skip
    hour = check(HEAD.replace("{event: purchase}", "{schedule: {cron: '0 25 * * 5', "
                              "segment: vip}}") + "  - wait: 1d\n")  # fmt: skip
    assert [p.message for p in hour.errors] == ["the hour field '25' must stay within 0-23"]


def test_long_texts_are_a_warning(check) -> None:
    long_text = "Nordic Shoes news! " * 16 + "{{ link('https://shop.example') }}"
    report = check(HEAD + f'  - id: a\n    send_sms: {{text: "{long_text}"}}\n')
    assert report.errors == []
    [warning] = report.warnings
    assert (warning.line, warning.column) == (6, 22)
    assert warning.message.startswith("this text may need 3 SMS segments (GSM-7")
    fits = check(HEAD + '  - id: a\n    send_sms: {text: "' + "x" * 280 + '"}\n')
    assert fits.warnings == []


def test_config_files_are_checked(journeys_dir: Path) -> None:
    from language.validate import validate_directory

    (journeys_dir / "settings.yaml").write_text(
        "brand: X\ndefault_timezone: America/New_Yrok\nquiet_hours: {start: '25:00'}\nfrequncy_caps: []\n"
    )
    (journeys_dir / "segments.yaml").write_text(
        'segments:\n  a: {rule: "customer.points > average.first_name and now()"}\n'
    )
    (journeys_dir / "loyalty.yaml").write_text(
        "tiers:\n  - {name: gold, min_points: 500}\n  - {name: silver, min_points: 0}\n"
        "coupons:\n  A1: {discount: '5%', expires_in: -3d}\n"
    )
    report = validate_directory(journeys_dir)
    got = [(Path(p.file).name, p.line, p.column, p.message) for p in report.errors]
    assert got == [
        ("settings.yaml", 2, 19, "unknown time zone 'America/New_Yrok' (did you mean "
         "'America/New_York'?)"),
        ("settings.yaml", 3, 22, "'25:00' is not a time of day: write HH:MM on a 24-hour "
         "clock, e.g. 09:00"),
        ("settings.yaml", 4, 1, "unknown key 'frequncy_caps' (did you mean "
         "'frequency_caps'?)"),
        ("segments.yaml", 2, 32, "average has no field 'first_name' (expected one of: "
         "avg_order_value, days_since_last_purchase, orders_count, points, total_spent)"),
        ("segments.yaml", 2, 55, "segment rules may only use customer.<field>, "
         "average.<field> and in_segment()"),
        ("loyalty.yaml", 2, 3, "tiers must be listed from the lowest min_points to the "
         "highest"),
        ("loyalty.yaml", 5, 36, "must be a positive duration"),
    ]  # fmt: skip


def test_missing_path_is_an_error(journeys_dir: Path) -> None:
    from language.validate import validate_directory

    report = validate_directory(journeys_dir, [journeys_dir / "nope.yaml"])
    assert [(p.line, p.column, p.message) for p in report.errors] == [(1, 1, "no such file or directory")]


def test_run_key_reads_only_the_trigger_of_an_event_trigger_and_is_short(check) -> None:
    good = check(
        """
        id: demo
        name: Demo
        trigger: {event: cart_abandoned}
        run_key: trigger.properties.cart_id
        steps:
          - wait: 1h
        """
    )
    assert good.problems == []
    report = check(
        """
        id: demo
        name: Demo
        trigger: {segment_entered: vip}
        run_key: "customer.first_name ~ event.id"
        steps:
          - wait: 1h
        """
    )
    assert where(report.errors) == [
        (4, 1, "run_key is only for event triggers (trigger: {event: ...}): a segment_entered trigger has no "
         "trigger event to read a key from"),
        (4, 11, "run_key may only read the trigger event, e.g. trigger.properties.cart_id"),
        (4, 33, "run_key may only read the trigger event, e.g. trigger.properties.cart_id"),
    ]  # fmt: skip
    long = check(
        """
        id: demo
        name: Demo
        trigger: {event: cart_abandoned}
        run_key: "trigger.properties.cart_id ~ '%s'"
        steps:
          - wait: 1h
        """ % ("x" * 200)
    )
    assert [p.message for p in long.errors] == ["run_key is at most 200 characters (this one has 231)"]
