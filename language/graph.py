"""Draw a journey as a Mermaid flowchart: the trigger, every step, every branch, every end,
and the entry and exit rules (audience, reentry, exit_on, goal). Conditions are shown in
full; only message texts are shortened."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from language.durations import format_duration
from language.models import (
    AskStep,
    AwardPointsStep,
    ChooseStep,
    ChooseWhen,
    DateTrigger,
    EmitStep,
    EventTrigger,
    ExitStep,
    IfStep,
    Journey,
    ManualTrigger,
    RedeemRewardStep,
    ScheduleTrigger,
    SegmentEnteredTrigger,
    SegmentExitedTrigger,
    SendEmailStep,
    SendSmsStep,
    SetStep,
    SplitStep,
    StepBase,
    UnsubscribeStep,
    UpdateSegmentsStep,
    WaitForStep,
    WaitStep,
    WaitUntil,
    step_kind,
)

SUMMARY_LENGTH = 40
Edge = tuple[str, str | None]  # (from node, label) waiting for the next node


def escape(text: str) -> str:
    """Text safe inside a quoted Mermaid label: quotes, tags and entity codes neutralised."""
    for char, code in (("#", "#35;"), ("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"),
                       (">", "#gt;"), ("|", "#124;"), ("`", "#96;"), ("\n", " ")):  # fmt: skip
        text = text.replace(char, code)
    return text


def short(text: str, limit: int = SUMMARY_LENGTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class _Chart:
    lines: list[str] = field(default_factory=lambda: ["flowchart TD"])
    count: int = 0

    def node(self, label: str, shape: str = "box") -> str:
        name = f"n{self.count}"
        self.count += 1
        opening, closing = {"box": ('["', '"]'), "round": ('(["', '"])'), "decision": ('{"', '"}')}[shape]
        self.lines.append(f"    {name}{opening}{label}{closing}")
        return name

    def connect(self, edges: list[Edge], target: str) -> None:
        for source, label in edges:
            arrow = f' -->|"{escape(label)}"| ' if label else " --> "
            self.lines.append(f"    {source}{arrow}{target}")


def mermaid(journey: Journey) -> str:
    """A ``flowchart TD`` of ``journey``, ready for a Markdown ```mermaid block."""
    chart = _Chart()
    start = chart.node(escape(f"{journey.id}: {trigger_summary(journey)}"), "round")
    pending = _steps(chart, journey.steps, [(start, None)])
    if pending:
        chart.connect(pending, chart.node("end: completed", "round"))
    # Who may enter, how often, and what ends a run early: beside the trigger, dotted.
    chart.lines.append(f'    rules["{"<br/>".join(escape(rule) for rule in entry_rules(journey))}"]')
    chart.lines.append(f"    {start} -.- rules")
    return "\n".join(chart.lines) + "\n"


def entry_rules(journey: Journey) -> list[str]:
    """The journey's entry and exit rules, in full, one line each."""
    reentry = journey.reentry if isinstance(journey.reentry, str) else f"after {format_duration(journey.reentry)}"
    rules = [f"audience: {journey.audience or 'everyone'}", f"reentry: {reentry}"]
    if journey.run_key:
        rules.append(f"one run at a time per {journey.run_key}")
    for rule in journey.exit_on:
        rules.append(f"exit on: {rule.event}" + (f" where {rule.where}" if rule.where else ""))
    if journey.goal:
        rules.append(f"goal: {journey.goal.event} within {format_duration(journey.goal.within)}")
    return rules


def trigger_summary(journey: Journey) -> str:
    trigger = journey.trigger
    if isinstance(trigger, EventTrigger):
        where = f" where {trigger.where}" if trigger.where else ""
        return f"on event {trigger.event}{where}"
    if isinstance(trigger, SegmentEnteredTrigger):
        return f"on entering segment {trigger.segment_entered}"
    if isinstance(trigger, SegmentExitedTrigger):
        return f"on leaving segment {trigger.segment_exited}"
    if isinstance(trigger, DateTrigger):
        offset = format_duration(trigger.date.offset)
        shift = "" if offset in ("0s", "0d") else f" {offset}"
        return f"on {trigger.date.attribute}{shift} at {trigger.date.at}"
    if isinstance(trigger, ScheduleTrigger):
        spec = trigger.schedule
        return f"schedule '{spec.cron}' to {spec.segment} ({spec.timezone} time)"
    if isinstance(trigger, ManualTrigger):
        return "manual enrolment"
    return "trigger"


def step_summary(step: StepBase) -> str:
    """One short line saying what a step does."""
    match step:
        case SendSmsStep(send_sms=message, channel=channel):
            text = "send_sms " + (f"template {message.template}" if message.template else short(message.text or ""))
            return f"{text} ({channel})" if channel else text
        case SendEmailStep(send_email=email):
            return "send_email " + (f"template {email.template}" if email.template else short(email.subject or ""))
        case AskStep(ask=ask):
            return "ask " + (f"template {ask.template}" if ask.template else short(ask.text or ""))
        case WaitStep(wait=wait):
            if isinstance(wait, WaitUntil):
                return f"wait until {wait.until}"
            return f"wait {format_duration(wait)}"
        case WaitForStep(wait_for=spec):
            where = f" where {spec.where}" if spec.where else ""
            return f"wait_for {spec.event}{where}, up to {format_duration(spec.timeout)}"
        case IfStep():
            return f"if {step.if_}"
        case ChooseStep():
            return "choose"
        case SplitStep(split=split):
            return f"split {split.name}"
        case AwardPointsStep(award_points=spec):
            return f"award {spec.points} points"
        case RedeemRewardStep(redeem_reward=spec):
            return f"redeem reward {spec.reward}"
        case UpdateSegmentsStep(update_segments=spec):
            changes = [f"+{s}" for s in spec.add] + [f"-{s}" for s in spec.remove]
            return "update_segments " + " ".join(changes)
        case SetStep():
            return "set " + ", ".join(step.set)
        case UnsubscribeStep(unsubscribe=spec):
            return f"unsubscribe ({spec.reason})"
        case EmitStep(emit=spec):
            return f"emit {spec.event}"
        case ExitStep():
            return f"exit: {step.exit}"
    return step_kind(step) or "step"


def _label(step: StepBase) -> str:
    summary = escape(step_summary(step))
    return f"{escape(step.id)}<br/>{summary}" if step.id else summary


def _steps(chart: _Chart, steps: Sequence[StepBase], pending: list[Edge]) -> list[Edge]:
    """Draw ``steps`` after ``pending``; the edges that leave the end of the list."""
    for step in steps:
        if not pending:
            break  # after an exit: nothing more is reached
        pending = _step(chart, step, pending)
    return pending


def _step(chart: _Chart, step: StepBase, pending: list[Edge]) -> list[Edge]:
    if isinstance(step, ExitStep):
        chart.connect(pending, chart.node(_label(step), "round"))
        return []
    branching = isinstance(step, IfStep | AskStep | WaitForStep | ChooseStep | SplitStep)
    node = chart.node(_label(step), "decision" if branching else "box")
    chart.connect(pending, node)
    if isinstance(step, IfStep):
        return _branch(chart, step.then, node, "then") + _branch(chart, step.else_, node, "else")
    if isinstance(step, AskStep):
        return _branch(chart, step.then, node, "then: answered") + _branch(chart, step.else_, node, "else: no answer")
    if isinstance(step, WaitForStep):
        return _branch(chart, step.then, node, f"then: {step.wait_for.event}") + _branch(
            chart, step.else_, node, "else: timed out"
        )
    if isinstance(step, ChooseStep):
        out: list[Edge] = []
        for branch in step.choose:
            if isinstance(branch, ChooseWhen):
                out += _branch(chart, branch.steps, node, f"when {branch.when}")
            else:
                out += _branch(chart, branch.else_, node, "else")
                break  # branches after else are never taken
        else:
            out.append((node, "otherwise"))
        return out
    if isinstance(step, SplitStep):
        out = []
        for variant in step.split.variants:
            out += _branch(chart, variant.steps, node, f"{variant.name} (weight {variant.weight})")
        return out
    return [(node, None)]


def _branch(chart: _Chart, steps: Sequence[StepBase], node: str, label: str) -> list[Edge]:
    return _steps(chart, steps, [(node, label)])
