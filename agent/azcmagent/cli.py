"""Command line of the agent."""

import argparse
import sys

from azcmagent import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="azcmagent", description="Azure Connected Machine agent (ArcPortal)")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("version", help="Show the agent version")
    args = parser.parse_args(argv)
    if args.command == "version":
        print(f"azcmagent version {__version__}")
        return 0
    parser.print_help()
    return 23


if __name__ == "__main__":
    sys.exit(main())
