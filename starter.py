"""Send one event through the engine, as a shop service would.

    python starter.py purchase --customer c-42 --prop amount=59 --prop cart_id=A1
    (same as: journeys event purchase --customer c-42 --prop amount=59)
"""

from __future__ import annotations

from cli.main import app


def main() -> None:
    import sys

    from cli.main import run

    sys.argv = [sys.argv[0], "event", *sys.argv[1:]]
    run()


if __name__ == "__main__":
    main()

__all__ = ["app", "main"]
