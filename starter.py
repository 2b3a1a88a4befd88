"""Send one event through the engine, as a shop service would.

    python starter.py purchase --customer c-42 --prop amount=59 --prop cart_id=A1
    (same as: journeys event purchase --customer c-42 --prop amount=59)
"""

from __future__ import annotations

import sys

from cli.main import run


def main() -> None:
    run(["event", *sys.argv[1:]])


if __name__ == "__main__":
    main()
