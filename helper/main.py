"""``tungui-helper``: serve io.github.tungui.Helper1 on the system bus.

Started by D-Bus activation (through systemd where present); exits after an
idle period when it holds no device for any client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from dbus_fast import BusType, NameFlag, RequestNameReply

from tungui_contract.bus import BUS_NAME

from . import __version__
from .connection import HelperBus
from .limits import CHECK_TIMEOUT, INTERACTIVE_TIMEOUT
from .policy import DEFAULT_PATH, ManagePolicy, PolicyError
from .polkit import GRANT_LIFETIME
from .service import HelperService

log = logging.getLogger("tungui_helper")

DEFAULT_IDLE_TIMEOUT = 30.0


async def _idle(service: HelperService, timeout: float) -> None:
    """Return once nothing has happened for ``timeout`` seconds and nothing is held."""
    activity = service.dispatcher.activity
    while True:
        activity.clear()
        try:
            await asyncio.wait_for(activity.wait(), timeout)
        except TimeoutError:
            if (
                service.dispatcher.inflight == 0
                and not service.devices.holds_anything
                and not service.subscribers
                and not service.ticker.watchers
                and not service.captures.running
            ):
                return


async def serve(
    idle_timeout: float,
    grant_lifetime: float = GRANT_LIFETIME,
    check_timeout: float = CHECK_TIMEOUT,
    interactive_timeout: float = INTERACTIVE_TIMEOUT,
    policy: ManagePolicy | None = None,
) -> int:
    """Run the helper until it is idle, signalled or cut off from the bus.

    Returns:
        The process exit status.
    """
    # Started by D-Bus activation, the bus that started us says where it is.
    starter = os.environ.get("DBUS_STARTER_ADDRESS")
    if starter and os.environ.get("DBUS_STARTER_BUS_TYPE") == "system":
        bus = HelperBus(starter, negotiate_unix_fd=True)
    else:
        bus = HelperBus(bus_type=BusType.SYSTEM, negotiate_unix_fd=True)
    await bus.connect()
    service = HelperService(
        bus,
        grant_lifetime=grant_lifetime,
        check_timeout=check_timeout,
        interactive_timeout=interactive_timeout,
        policy=policy,
    )
    try:
        await service.start()
        reply = await bus.request_name(BUS_NAME, NameFlag.DO_NOT_QUEUE)
        if reply != RequestNameReply.PRIMARY_OWNER:
            log.error("%s is already owned by another process (%s)", BUS_NAME, reply)
            return 1
        log.info("tungui-helper %s serving %s", __version__, BUS_NAME)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        waiters = [
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(bus.wait_for_disconnect()),
        ]
        if idle_timeout > 0:
            waiters.append(asyncio.ensure_future(_idle(service, idle_timeout)))
        done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()
        if waiters[1] in done:
            log.error("lost the connection to the system bus")
            return 1
        log.info("exiting (%s)", "signal" if waiters[0] in done else "idle")
        with contextlib.suppress(Exception):
            await bus.release_name(BUS_NAME)
        return 0
    finally:
        service.close()
        bus.disconnect()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tungui-helper``."""
    parser = argparse.ArgumentParser(
        prog="tungui-helper",
        description="Privileged helper of tungui: TUN/TAP devices and bridges over D-Bus.",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="SECONDS",
        help="exit after this long with nothing to do and nothing held; 0 never "
        f"(default {DEFAULT_IDLE_TIMEOUT:g})",
    )
    parser.add_argument(
        "--reuse-authorization",
        type=float,
        default=GRANT_LIFETIME,
        metavar="SECONDS",
        help="reuse polkit's yes for the same caller and action this long, unless "
        f"polkit reports a change first; 0 asks polkit every time (default {GRANT_LIFETIME:g})",
    )
    parser.add_argument(
        "--polkit-timeout",
        type=float,
        default=CHECK_TIMEOUT,
        metavar="SECONDS",
        help="refuse a call when polkit does not answer within this long "
        f"(default {CHECK_TIMEOUT:g})",
    )
    parser.add_argument(
        "--polkit-interactive-timeout",
        type=float,
        default=INTERACTIVE_TIMEOUT,
        metavar="SECONDS",
        help="the same when polkit may ask for a password: the time a person has to "
        f"type it (default {INTERACTIVE_TIMEOUT:g})",
    )
    parser.add_argument(
        "--policy",
        type=Path,
        default=DEFAULT_PATH,
        metavar="FILE",
        help="what io.github.tungui.manage alone may do (names, address prefixes); "
        f"the defaults where the file does not exist (default {DEFAULT_PATH})",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(name)s: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    # pyroute2 logs every netlink message at debug level.
    logging.getLogger("pyroute2").setLevel(logging.WARNING)
    if args.reuse_authorization < 0:
        parser.error("--reuse-authorization cannot be negative")
    for option, value in (
        ("--polkit-timeout", args.polkit_timeout),
        ("--polkit-interactive-timeout", args.polkit_interactive_timeout),
    ):
        if not value > 0:
            parser.error(f"{option} must be more than 0")
    try:
        policy = ManagePolicy.load(args.policy)
    except PolicyError as exc:
        log.error("%s", exc)
        return 1
    return asyncio.run(
        serve(
            args.idle_timeout,
            args.reuse_authorization,
            args.polkit_timeout,
            args.polkit_interactive_timeout,
            policy,
        )
    )
