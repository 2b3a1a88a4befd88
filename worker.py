"""Run the journey workers against a Temporal server.

    python worker.py            (or: journeys worker)

Configuration comes from the environment (processes/settings.py): TEMPORAL_ADDRESS,
JOURNEYS_DIR, JOURNEYS_DATABASE_URL, JOURNEYS_SMS_SENDER (console | twilio),
JOURNEYS_SMS_PER_SECOND, ... The journeys directory is validated first: a worker never
loads an invalid journey.
"""

from __future__ import annotations

from cli.main import run


def main() -> None:
    run(["worker"])


if __name__ == "__main__":
    main()
