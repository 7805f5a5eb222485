"""`rtscore services up | down | status | env | fetch`: the local Postgres, Kafka and Redis."""

from __future__ import annotations

import argparse
import time
from typing import Any


def register(subparsers: Any, name: str, help_text: str) -> None:
    """Add the `services` group to the rtscore CLI."""
    group = subparsers.add_parser(name, help=help_text, description=help_text)
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser(
        "up", help="start Postgres, Kafka and Redis unless running; wait until they answer"
    )
    up.set_defaults(func=_up)
    down = actions.add_parser("down", help="stop the services started by `up`; leaves no process behind")
    down.add_argument(
        "names", nargs="*", type=_service_name, metavar="SERVICE",
        help="only these (postgres, kafka, redis); all when none is named",
    )  # fmt: skip
    down.set_defaults(func=_down)
    status = actions.add_parser("status", help="say what runs where (exit status 3 when one is stopped)")
    status.set_defaults(func=_status)
    env = actions.add_parser("env", help='print RTSCORE_… assignments for `eval "$(rtscore services env)"`')
    env.add_argument("--export", action="store_true", help="prefix each line with `export `")
    env.set_defaults(func=_env)
    fetch = actions.add_parser("fetch", help="download Kafka's jars with Maven unless already present")
    fetch.set_defaults(func=_fetch)


def _services() -> Any:
    from rtscore.localservices.settings import LocalServicesSettings
    from rtscore.localservices.stack import PROJECT_ROOT, LocalServices

    settings = LocalServicesSettings()
    return LocalServices(settings.services_root or PROJECT_ROOT, settings)


def _up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    services = _services()
    services.up()
    for line in services.status():
        print(line.describe())
    print(f"services up in {time.monotonic() - started:.1f}s")
    return 0


def _service_name(name: str) -> str:
    from rtscore.localservices.stack import SERVICES

    if name not in SERVICES:
        raise argparse.ArgumentTypeError(f"{name!r} is not one of {', '.join(SERVICES)}")
    return name


def _down(args: argparse.Namespace) -> int:
    services = _services()
    if args.names:
        services.down(args.names)
        print(f"stopped {', '.join(args.names)}")
    else:
        services.down()
        print("services stopped")
    return 0


def _status(args: argparse.Namespace) -> int:
    lines = _services().status()
    for line in lines:
        print(line.describe())
    return 0 if all(line.running for line in lines) else 3


def _env(args: argparse.Namespace) -> int:
    for line in _services().endpoints().env_lines(export=args.export):
        print(line)
    return 0


def _fetch(args: argparse.Namespace) -> int:
    services = _services()
    fetched = services.fetch()
    state = "fetched into" if fetched else "already in"
    print(f"Kafka {services.versions()['kafka'] or '(external)'} jars {state} {services.kafka_libs}")
    return 0
