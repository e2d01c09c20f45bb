"""``python -m devtools install|up|down|clean|status``: the local stack (see devtools.stack)."""

from __future__ import annotations

import argparse
import sys

from devtools import stack
from devtools.proc import DevtoolsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools",
        description="Local Strategia stack: Kafka, PostgreSQL, SMTP sink, the services and web.",
    )
    commands = {
        "install": "install Java/Maven/PostgreSQL/Chromium if missing and resolve the Kafka jars",
        "up": "start everything (idempotent) and wait until the services are ready",
        "down": "stop everything started by `up` (data is kept)",
        "clean": "`down`, then delete the run dir with all data, logs and tokens",
        "status": "show what runs where",
    }
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in commands.items():
        sub.add_parser(name, help=help_text)
    args = parser.parse_args(argv)

    try:
        if args.command == "install":
            stack.install()
            stack.ensure_browser()
            return 0
        config = stack.StackConfig.from_env()
        if args.command == "up":
            stack.up(config)
        elif args.command == "down":
            stack.down(config)
        elif args.command == "clean":
            stack.clean(config)
        else:
            stack.print_status(config)
    except DevtoolsError as exc:
        print(f"devtools {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
