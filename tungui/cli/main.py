"""``tunguictl``: tungui's helper from the command line.

Exit status: see :mod:`.usage`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from tungui import __version__, accounts
from tungui.client import (
    HelperClient,
    HelperUnavailable,
    InvalidArgument,
    NotAuthorized,
    TunguiError,
)
from tungui_contract.device import Device

from .usage import (
    EXIT_FAILED,
    EXIT_NOT_AUTHORIZED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    UsageError,
)

_T = TypeVar("_T")


def parse_user(text: str) -> int:
    """A user name or uid, as a uid."""
    try:
        return accounts.uid_of(text)
    except KeyError:
        raise UsageError(f"no such user: {text}") from None


def parse_group(text: str) -> int:
    """A group name or gid, as a gid."""
    try:
        return accounts.gid_of(text)
    except KeyError:
        raise UsageError(f"no such group: {text}") from None


def _flags(device: Device) -> str:
    flags = {
        "persist": device.persist,
        "pi": device.pi,
        "vnet_hdr": device.vnet_hdr,
        "multi_queue": device.multi_queue,
    }
    return ",".join(key for key, on in flags.items() if on) or "-"


def format_table(devices: Sequence[Device]) -> str:
    """Devices as an aligned table, as ``ip -br`` would print them."""
    header = (
        "NAME",
        "KIND",
        "STATE",
        "MTU",
        "FLAGS",
        "OWNER",
        "GROUP",
        "HELD",
        "MASTER",
        "TUNGUI",
        "ADDRESSES",
    )
    rows = [header]
    for d in devices:
        tuntap = d.is_tuntap
        rows.append(
            (
                d.name,
                d.kind,
                d.operstate if d.up else "down",
                str(d.mtu),
                _flags(d) if tuntap else "-",
                accounts.user_name(d.owner) or "-",
                accounts.group_name(d.group) or "-",
                ("yes" if d.held else "no") if tuntap else "-",
                d.master or "-",
                "yes" if d.managed else "no",
                " ".join(d.addresses) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def _spec_from_args(args: argparse.Namespace, *, changes: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if args.mtu is not None:
        spec["mtu"] = args.mtu
    if args.mac is not None:
        spec["mac"] = args.mac
    if args.addresses is not None:
        spec["addresses"] = args.addresses
    if getattr(args, "owner", None) is not None:
        spec["owner"] = parse_user(args.owner)
    if getattr(args, "group", None) is not None:
        spec["group"] = parse_group(args.group)
    if getattr(args, "master", None) is not None:
        spec["master"] = args.master
    if changes:
        if args.up is not None:
            spec["up"] = args.up
        if args.persist is not None:
            spec["persist"] = args.persist
        if args.no_addresses:
            spec["addresses"] = []
    return spec


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT, SIGTERM or SIGHUP, which no longer end the process.

    Taken before the call that makes a device this process holds: a signal
    that comes as soon as the device's name is printed (a script that reads
    it and stops tunguictl) must end the hold, not interrupt it.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def _unless_stopped(call: Awaitable[_T], stop: asyncio.Event | None) -> _T:
    """The result of ``call``; KeyboardInterrupt if ``stop`` is set first (Ctrl+C at a prompt)."""
    if stop is None:
        return await call
    task = asyncio.ensure_future(call)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not task.done():
        task.cancel()
        raise KeyboardInterrupt
    return task.result()


async def _hold(client: HelperClient, name: str, stop: asyncio.Event) -> None:
    """Keep the connection, and so a transient device, until ``stop`` is set."""
    print(f"holding {name}; it goes away when tunguictl stops (Ctrl+C)", file=sys.stderr)
    # Shielded: cancelling a wait_for_disconnect() cancels dbus-fast's own future.
    disconnected = asyncio.ensure_future(asyncio.shield(client.bus.wait_for_disconnect()))
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([disconnected, stopped], return_when=asyncio.FIRST_COMPLETED)
    disconnected.cancel()
    stopped.cancel()


async def run(args: argparse.Namespace) -> int:
    """Carry out one parsed command; return the exit status."""
    client = await HelperClient.connect()
    interactive = not args.no_ask
    try:
        if args.command == "list":
            devices = await client.list_devices()
            if args.json:
                wire = [device.to_wire() for device in devices]
                print(json.dumps(wire, indent=2, sort_keys=True))
            else:
                print(format_table(devices))
        elif args.command == "create":
            spec = _spec_from_args(args, changes=False)
            if args.name:
                spec["name"] = args.name
            spec["up"] = args.up
            if args.kind == "bridge":
                name = await client.create_bridge(spec, interactive=interactive)
                print(name)
                return 0
            spec.update(
                mode=args.kind,
                persist=not args.transient,
                pi=args.pi,
                vnet_hdr=args.vnet_hdr,
                multi_queue=args.multi_queue or args.queues > 1,
                queues=args.queues,
            )
            stop = _stop_on_signals() if args.transient else None
            name = await _unless_stopped(client.create_device(spec, interactive=interactive), stop)
            print(name, flush=True)
            if stop is not None:
                await _hold(client, name, stop)
        elif args.command == "delete":
            for name in args.names:
                await client.delete_device(name, interactive=interactive)
        elif args.command == "set":
            changes = _spec_from_args(args, changes=True)
            if args.nomaster:
                changes["master"] = ""
            if not changes:
                raise UsageError("nothing to change; see tunguictl set --help")
            stop = _stop_on_signals() if changes.get("persist") is False else None
            await _unless_stopped(
                client.configure_device(args.name, changes, interactive=interactive), stop
            )
            if stop is not None:
                await _hold(client, args.name, stop)
        elif args.command == "permissions":
            for action, answer in sorted((await client.get_permissions()).items()):
                print(f"{action}\t{answer}")
        elif args.command == "capture":
            from .capture import capture

            await capture(client, args, interactive=interactive)
        elif args.command == "monitor":
            await client.watch_devices(_print_change)
            await client.subscribe()
            await client.bus.wait_for_disconnect()
            return EXIT_UNAVAILABLE
        return 0
    finally:
        await client.close()


def _print_change(updated: list[Device], removed: list[str]) -> None:
    for device in updated:
        event = {"event": "changed", "device": device.to_wire()}
        print(json.dumps(event, sort_keys=True), flush=True)
    for name in removed:
        print(json.dumps({"event": "removed", "name": name}), flush=True)


def build_parser() -> argparse.ArgumentParser:
    """The command line of tunguictl."""
    parser = argparse.ArgumentParser(
        prog="tunguictl",
        description="Manage TUN/TAP devices and bridges through tungui's helper.",
        epilog=(
            "Exit status: 0 success, 1 refused or failed, 2 bad usage or argument, "
            "4 not authorized, 69 helper unavailable."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--no-ask",
        action="store_true",
        help="never ask for a password; fail instead when authentication is needed",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="list TUN, TAP and bridge devices")
    listing.add_argument("--json", action="store_true", help="print JSON")

    create = commands.add_parser("create", help="create a TUN or TAP device, or a bridge")
    create.add_argument("kind", choices=("tun", "tap", "bridge"))
    create.add_argument("name", nargs="?", help="name or template such as tap%%d")
    create.add_argument("--owner", metavar="USER", help="user who may open the device")
    create.add_argument("--group", metavar="GROUP", help="group that may open the device")
    create.add_argument(
        "--transient",
        action="store_true",
        help="remove the device when tunguictl exits (it stays running until Ctrl+C)",
    )
    create.add_argument("--pi", action="store_true", help="prepend packet information")
    create.add_argument("--vnet-hdr", action="store_true", help="use a virtio-net header")
    create.add_argument("--multi-queue", action="store_true", help="allow several queues")
    create.add_argument(
        "--queues", type=int, default=1, metavar="N", help="queues to open (with --transient)"
    )
    _common_link_options(create)
    create.add_argument("--master", metavar="BRIDGE", help="put the TAP into this bridge")
    create.add_argument("--up", action="store_true", help="bring the device up")

    delete = commands.add_parser("delete", help="remove devices or bridges")
    delete.add_argument("names", nargs="+", metavar="NAME")

    change = commands.add_parser("set", help="change a device")
    change.add_argument("name")
    _common_link_options(change)
    change.add_argument("--owner", metavar="USER")
    change.add_argument("--group", metavar="GROUP")
    state = change.add_mutually_exclusive_group()
    state.add_argument("--up", dest="up", action="store_true", default=None)
    state.add_argument("--down", dest="up", action="store_false")
    persist = change.add_mutually_exclusive_group()
    persist.add_argument("--persist", dest="persist", action="store_true", default=None)
    persist.add_argument(
        "--transient",
        dest="persist",
        action="store_false",
        help="clear persist: the device lives while tunguictl runs",
    )
    masters = change.add_mutually_exclusive_group()
    masters.add_argument("--master", metavar="BRIDGE")
    masters.add_argument("--nomaster", action="store_true", help="leave the bridge")
    change.add_argument("--no-addresses", action="store_true", help="remove every address")

    capture = commands.add_parser(
        "capture", help="print a device's packets, or write them to a pcapng file"
    )
    capture.add_argument("name")
    capture.add_argument(
        "-w", "--write", metavar="FILE", help="write pcapng to FILE ('-': standard output)"
    )
    capture.add_argument("-c", "--count", type=int, metavar="N", help="stop after N packets")
    capture.add_argument("-s", "--snaplen", type=int, metavar="BYTES", help="bytes kept a packet")
    capture.add_argument(
        "--max-rate",
        type=int,
        default=0,
        metavar="N",
        help="at most N packets a second; the helper samples the rest (default: all)",
    )

    commands.add_parser("permissions", help="what polkit allows you: yes, auth or no")
    commands.add_parser("monitor", help="print device changes as JSON lines")
    return parser


def _common_link_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mtu", type=int, metavar="BYTES")
    parser.add_argument("--mac", metavar="ADDRESS", help="Ethernet address (TAP, bridge)")
    parser.add_argument(
        "--address",
        dest="addresses",
        action="append",
        metavar="CIDR",
        help="an IPv4 or IPv6 address such as 192.0.2.1/24 (repeatable; for set, "
        "the full new list)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tunguictl``."""
    # Die quietly when the reader of our output goes away (tunguictl list | head).
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(run(args))
    except UsageError as exc:
        print(f"tunguictl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TunguiError as exc:
        print(f"tunguictl: {exc.message}", file=sys.stderr)
        if isinstance(exc, InvalidArgument):
            return EXIT_USAGE
        if isinstance(exc, NotAuthorized):
            return EXIT_NOT_AUTHORIZED
        if isinstance(exc, HelperUnavailable):
            return EXIT_UNAVAILABLE
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
