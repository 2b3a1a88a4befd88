"""One problem found in a journeys directory, printed the way editors and grep expect."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int  # 1-based
    column: int  # 1-based
    severity: Severity
    message: str
    value: str | None = None

    def __str__(self) -> str:
        got = f" (got: {self.value})" if self.value is not None else ""
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message}{got}"

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "message": self.message,
            "value": self.value,
        }


_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def show_value(value: object, limit: int = 80) -> str:
    """A short, one-line rendering of the offending value (control characters escaped:
    printed raw they would drive the terminal, a lone surrogate cannot be printed at all)."""
    text = value if isinstance(value, str) else repr(value)
    text = _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."
