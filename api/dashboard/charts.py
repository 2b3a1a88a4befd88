"""The geometry of the dashboard's charts, drawn as inline SVG by the templates.

Every number here comes from a report model (core/reports): this module only places
and scales them. Server-side SVG needs no JavaScript and no charting library: the
charts are a few bars, a flow of boxes and a heat map, and the pages work offline and
without scripts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.reports.journey import SplitFigures, StepFigures, VersionFigures
from core.reports.program import Cohort, SubscriberMonth

BAR_AREA = 420  # pixels for the longest bar


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str
    width: float  # of the bar, scaled to the largest value
    y: float


@dataclass(frozen=True)
class Bars:
    bars: list[Bar]
    height: float
    width: float = BAR_AREA + 260


def bars(rows: list[tuple[str, float, str]], *, row: float = 30) -> Bars:
    """Horizontal bars: (label, value, shown text) each."""
    top = max((value for _, value, _ in rows), default=0) or 1
    return Bars([Bar(label, value, text, max(0.0, value) / top * BAR_AREA, i * row)
                 for i, (label, value, text) in enumerate(rows)], height=len(rows) * row)


def funnel(version: VersionFigures) -> list[tuple[str, float, str]]:
    """Entered, sent, delivered, clicked, converted: the version's own figures."""
    stages: list[tuple[str, int]] = [("Entered", version.entries), ("Texts sent", version.messages_sent),
                                     ("Delivered", version.delivered), ("Clicked", version.unique_clicks)]
    if version.goal is not None:
        stages.append(("Converted", version.goal.conversions))
    return [(label, float(n), f"{n:,}") for label, n in stages]


# --- the journey's graph ----------------------------------------------------------------------

BOX_W, BOX_H, GAP, INDENT = 460, 54, 18, 48


@dataclass(frozen=True)
class Node:
    step: StepFigures
    x: float
    y: float


@dataclass(frozen=True)
class Edge:
    path: str
    label: str | None  # the branch a first step of a branch sits in


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: float
    height: float
    box_w: float = BOX_W
    box_h: float = BOX_H


def graph(steps: list[StepFigures]) -> Graph:
    """The steps in journey order, a branch indented under its step; each step joined to
    the one before it in its branch, a branch's first step to the step it belongs to."""
    nodes: list[Node] = []
    edges: list[Edge] = []
    last: dict[int, Node] = {}  # the latest step at each depth, on the current path
    for i, step in enumerate(steps):
        node = Node(step, 10 + step.depth * INDENT, 10 + i * (BOX_H + GAP))
        sibling = last.get(step.depth)
        parent = last.get(step.depth - 1)
        if sibling is not None and sibling.step.branch == step.branch:
            x = sibling.x + 16
            edges.append(Edge(f"M{x},{sibling.y + BOX_H} V{node.y}", None))
        elif parent is not None:
            x = parent.x + 16
            edges.append(Edge(f"M{x},{parent.y + BOX_H} V{node.y + BOX_H / 2} H{node.x}", step.branch))
        nodes.append(node)
        last[step.depth] = node
        for deeper in [d for d in last if d > step.depth]:
            del last[deeper]
    width = max((n.x for n in nodes), default=0) + BOX_W + 20
    return Graph(nodes, edges, width, len(steps) * (BOX_H + GAP) + 10)


# --- a split's lifts, with their intervals ------------------------------------------------------

LIFT_W = 420


@dataclass(frozen=True)
class LiftBar:
    name: str
    low: float  # x of the interval's ends and of the observed lift
    high: float
    point: float
    y: float
    too_small: bool


@dataclass(frozen=True)
class LiftChart:
    bars: list[LiftBar]
    zero: float
    limit: float  # the axis runs from -limit to +limit (a share: 0.1 = 10 pp)
    height: float
    width: float = LIFT_W + 160


def lift_chart(split: SplitFigures, *, row: float = 34) -> LiftChart:
    compared = [v for v in split.variants if v.lift is not None]
    limit = max((max(abs(v.lift.absolute_interval.low), abs(v.lift.absolute_interval.high))
                 for v in compared if v.lift is not None), default=0.0) or 0.01

    def x(share: float) -> float:
        return 120 + (share + limit) / (2 * limit) * LIFT_W

    found = []
    for i, v in enumerate(compared):
        assert v.lift is not None
        found.append(LiftBar(v.name, x(v.lift.absolute_interval.low), x(v.lift.absolute_interval.high),
                             x(v.lift.absolute), 20 + i * row, too_small(split, v.name)))
    return LiftChart(found, x(0.0), limit, height=30 + len(found) * row)


def too_small(split: SplitFigures, name: str) -> bool:
    """True when an arm has fewer customers than the test needs to detect this lift."""
    arms = {v.name: v for v in split.variants}
    variant = arms[name]
    need = variant.lift.required_per_arm if variant.lift is not None else None
    holdout = arms.get(split.holdout or "")
    return need is not None and holdout is not None and min(variant.entered, holdout.entered) < need


# --- the program ------------------------------------------------------------------------------------

COL_W, COLUMNS_H = 44, 180


@dataclass(frozen=True)
class Column:
    month: str
    subscribers: int
    net: int
    x: float
    height: float


@dataclass(frozen=True)
class Columns:
    columns: list[Column]
    width: float
    base: float = COLUMNS_H + 20
    col_w: float = COL_W


def growth(months: list[SubscriberMonth]) -> Columns:
    """Subscribers at the end of each month, as columns."""
    top = max((m.subscribers for m in months), default=0) or 1
    return Columns([Column(m.month, m.subscribers, m.net, 40 + i * (COL_W + 12),
                           max(0, m.subscribers) / top * COLUMNS_H) for i, m in enumerate(months)],
                   width=60 + len(months) * (COL_W + 12))


CELL = 34


@dataclass(frozen=True)
class Cell:
    cohort: str
    offset: int
    share: float
    x: float
    y: float
    fill: str
    dark: bool  # a dark cell: its text is light


@dataclass(frozen=True)
class HeatMap:
    cells: list[Cell]
    rows: list[tuple[str, int, float]] = field(default_factory=list)  # cohort, customers, y
    months: int = 0
    width: float = 0
    height: float = 0
    cell: float = CELL
    left: float = 150


def heat_map(cohorts: list[Cohort]) -> HeatMap:
    """One cell per cohort and month after it: the share of the cohort buying that month."""
    left, top = 150, 24
    cells: list[Cell] = []
    rows: list[tuple[str, int, float]] = []
    for r, cohort in enumerate(cohorts):
        y = float(top + r * CELL)
        rows.append((cohort.month, cohort.customers, y))
        for k, share in enumerate(cohort.retention):
            cells.append(Cell(cohort.month, k, share, left + k * CELL, y, _shade(share), share >= 0.5))
    months = max((len(c.retention) for c in cohorts), default=0)
    return HeatMap(cells, rows, months, width=left + months * CELL + 10, height=top + len(cohorts) * CELL + 6)


def _shade(share: float) -> str:
    """White for 0, deep teal for 1."""
    share = min(1.0, max(0.0, share))
    start, end = (247, 251, 250), (13, 94, 94)
    r, g, b = (round(a + (z - a) * share) for a, z in zip(start, end, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"
