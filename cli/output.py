"""The commands' consoles: the same output on a terminal, a pipe or a log."""

from __future__ import annotations

from rich.console import Console

# Off a terminal rich would lay tables out in 80 columns and break long lines: a script
# or a log reading the output would get cells and lines cut in two.
PIPE_WIDTH = 160


def console(*, stderr: bool = False) -> Console:
    """Plain lines are never broken (soft wrap); tables fit the terminal, or get
    ``PIPE_WIDTH`` columns off one. No highlighting: the text is what a script reads."""
    made = Console(stderr=stderr, highlight=False, emoji=False, soft_wrap=True)
    if not made.is_terminal:
        made.width = PIPE_WIDTH
    return made
