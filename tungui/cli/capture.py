"""``tunguictl capture``: a device's packets on the terminal or in a pcapng file.

The helper streams the packets to this process alone (StartCapture); they
are walked, decoded and written here, as the user, as the window does.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tungui.client import HelperClient
from tungui.packets.pcapng import CaptureWriter
from tungui.packets.stream import MESSAGE_MAX, Packet, parse_message, write_packets
from tungui_contract.capture import CAPTURE_MAX_SNAPLEN

from .usage import UsageError

if TYPE_CHECKING:
    from tungui.packets.decode import Decoded


async def capture(client: HelperClient, args: argparse.Namespace, *, interactive: bool) -> None:
    """Capture until Ctrl+C, SIGTERM, ``--count`` packets or the device's end."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    devices = {d.name: d for d in await client.list_devices()}
    device = devices.get(args.name)
    if device is None:
        raise UsageError(f"no device named {args.name}")
    link = "ip" if device.kind == "tun" else "ethernet"
    stream = await client.start_capture(
        args.name, snaplen=args.snaplen, max_rate=args.max_rate, interactive=interactive
    )
    stream.setblocking(False)
    writer = interface = None
    output = None
    if args.write:
        output = sys.stdout.buffer if args.write == "-" else open(args.write, "wb")  # noqa: SIM115
        writer = CaptureWriter(output)
        interface = writer.add_interface(args.name, link, args.snaplen or CAPTURE_MAX_SNAPLEN)
    describe = _describer(link) if writer is None else None
    count = dropped = sampled = 0
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while args.count is None or count < args.count:
            receiving = asyncio.ensure_future(loop.sock_recv(stream, MESSAGE_MAX))
            await asyncio.wait([receiving, stopped], return_when=asyncio.FIRST_COMPLETED)
            if not receiving.done():
                receiving.cancel()
                break
            message = receiving.result()
            if not message:
                print(f"tunguictl: the capture of {args.name} ended", file=sys.stderr)
                break
            packets = parse_message(message)
            if args.count is not None:
                packets = packets[: args.count - count]
            if not packets:
                continue
            count += len(packets)
            dropped, sampled = packets[-1].dropped, packets[-1].sampled
            if writer is not None and interface is not None:
                write_packets(writer, interface, packets)
            elif describe is not None:
                for packet in packets:
                    print(describe(packet), flush=True)
            if output is not None:
                output.flush()
    finally:
        stopped.cancel()
        stream.close()
        if writer is not None:
            writer.close()
        if output is not None and output is not sys.stdout.buffer:
            output.close()
    summary = f"{count:,} packets captured"
    if dropped:
        summary += f", {dropped:,} dropped"
    if sampled:
        summary += f", about {sampled:,} sampled out"
    print(f"tunguictl: {summary}", file=sys.stderr)


def _describer(link: str) -> Callable[[Packet], str]:
    """One line per packet: time, direction, length and, with dpkt, a summary."""
    decode: Callable[..., Decoded] | None
    try:
        from tungui.packets.decode import decode
    except ImportError:  # dpkt is not installed: no summaries
        decode = None

    def describe(packet: Packet) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(packet.timestamp_ns // 10**9))
        line = (
            f"{when}.{packet.timestamp_ns % 10**9 // 1000:06d} "
            f"{'out' if packet.outgoing else 'in '} {packet.original_length:5d}"
        )
        if decode is not None:
            line += " " + decode(packet.data, link=link).summary
        return line

    return describe
