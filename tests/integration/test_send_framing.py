"""The Send Packet dialog's frames arrive whole on every framing of a device.

A program writes packet information (``pi``) and a virtio-net header
(``vnet_hdr``) before each frame when its device has them, and the kernel
reads them off before the frame goes up the stack.  Here each template the
dialog offers is built the way the dialog builds it
(:class:`~tungui.packets.sendform.SendForm` defaults filled from the listed
device, then :func:`~tungui.packets.sendform.check`), injected through the real
helper, and read back with a packet socket on the device inside the test's
namespace: the frame must arrive as built, with the protocol the kernel
took from it, and the host must answer what asks for an answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import select
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import dpkt
import pytest

from tests.support.helper import HelperProcess
from tests.support.netns import Netns
from tests.support.waiting import wait_until
from tungui.client import HelperClient, TunguiError
from tungui.packets import sendform as packetforms
from tungui.packets.build import icmp_echo_request
from tungui_contract.device import Device
from tungui_contract.limits import Framing

pytestmark = pytest.mark.integration

ETH_P_ARP, ETH_P_IP, ETH_P_IPV6 = 0x0806, 0x0800, 0x86DD
PACKET_OUTGOING = 4
OWN, NEIGHBOUR = "192.0.2.1", "192.0.2.2"

SNIFFER = """
import os, select, socket, sys
# Every protocol, bound to the one device: what the kernel took in from the
# device's fd (and what it sends out through it), after pi and vnet_hdr.
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
print("ready", flush=True)
while True:
    ready, _, _ = select.select([s, sys.stdin], [], [])
    if sys.stdin in ready:
        break
    data, address = s.recvfrom(65536)
    if address[0] == sys.argv[1]:
        print(address[2], address[1], data.hex(), flush=True)
"""


@dataclass(frozen=True)
class Seen:
    """One packet the packet socket saw on the device."""

    outgoing: bool
    #: The protocol the kernel gave the packet (an EtherType).
    protocol: int
    #: From the Ethernet header on (TAP) or the IP header on (TUN).
    data: bytes


class Sniffer:
    """A packet socket on one device of the test's namespace, in a process of its own."""

    def __init__(self, netns: Netns, name: str) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns.name, "python3", "-c", SNIFFER, name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        assert self.proc.stdout is not None
        self._fd = self.proc.stdout.fileno()
        self._buffer = b""
        assert self._line(10.0) == "ready"

    def _line(self, timeout: float) -> str | None:
        """The next line the sniffer printed, or None when none came within ``timeout``."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                return None
            chunk = os.read(self._fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def wait_for(self, wanted: Callable[[Seen], bool], timeout: float = 5.0) -> Seen | None:
        """The first packet from now on that ``wanted`` takes, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while (line := self._line(deadline - time.monotonic())) is not None:
            pkttype, protocol, data = line.split(" ")
            seen = Seen(int(pkttype) == PACKET_OUTGOING, int(protocol), bytes.fromhex(data))
            if wanted(seen):
                return seen
        return None

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


def incoming(seen: Seen) -> bool:
    return not seen.outgoing


Mode = Literal["tun", "tap"]

#: Every framing a TUN/TAP device can have: (pi, vnet_hdr).
FRAMINGS = [(False, False), (True, False), (False, True), (True, True)]


def _ids(value: Any) -> str:
    pi, vnet_hdr = value
    return "+".join(name for name, on in (("pi", pi), ("vnet_hdr", vnet_hdr)) if on) or "bare"


def _ip_of(frame: bytes, mode: Mode) -> Any:
    """The IPv4 or IPv6 packet in a frame, parsed (no checks yet)."""
    if mode == "tap":
        return dpkt.ethernet.Ethernet(frame).data
    return dpkt.ip.IP(frame) if frame[0] >> 4 == 4 else dpkt.ip6.IP6(frame)


def _checksum_ok(header: bytes) -> bool:
    total = sum(int.from_bytes(header[i : i + 2], "big") for i in range(0, len(header), 2))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def _well_formed(frame: bytes, mode: Mode, ethertype: int) -> str | None:
    """What is wrong with a frame as the kernel took it in, or None."""
    if mode == "tap":
        if len(frame) < 14 or int.from_bytes(frame[12:14], "big") != ethertype:
            return f"not an Ethernet frame of type {ethertype:#06x}: {frame[:16].hex()}"
        if ethertype == ETH_P_ARP:
            return None
        packet = frame[14:]
    else:
        packet = frame
    if ethertype == ETH_P_IP:
        if packet[0] != 0x45 or int.from_bytes(packet[2:4], "big") != len(packet):
            return f"not an IPv4 header with its length: {packet[:20].hex()}"
        if not _checksum_ok(packet[:20]):
            return "the IPv4 header's checksum is wrong"
    elif packet[0] >> 4 != 6 or int.from_bytes(packet[4:6], "big") != len(packet) - 40:
        return f"not an IPv6 header with its payload length: {packet[:40].hex()}"
    return None


class Case:
    """One device and the dialog's templates sent into it, with what went wrong."""

    def __init__(self, client: HelperClient, device: Device, sniffer: Sniffer) -> None:
        self.client = client
        self.device = device
        self.mode: Mode = "tap" if device.kind == "tap" else "tun"
        self.framing = Framing(self.mode, bool(device.pi), bool(device.vnet_hdr))
        self.sniffer = sniffer
        self.problems: list[str] = []

    async def send(self, what: str, form: packetforms.SendForm, ethertype: int) -> Seen | None:
        """Check the form as the dialog does, inject its packet, return what arrived."""
        checked = packetforms.check(form, self.device)
        if checked.packet is None:
            self.problems.append(f"{what}: the dialog refused it: {checked.problems}")
            return None
        try:
            await self.client.inject_packet(self.device.name, checked.packet)
        except TunguiError as exc:
            self.problems.append(f"{what}: the helper refused it: {exc}")
            return None
        arrived = await asyncio.to_thread(self.sniffer.wait_for, incoming)
        if arrived is None:
            self.problems.append(f"{what}: nothing arrived")
            return None
        wrong = _well_formed(arrived.data, self.mode, ethertype)
        if arrived.protocol != ethertype:
            wrong = f"the kernel took it as protocol {arrived.protocol:#06x}"
        elif wrong is None and checked.packet != self.framing.prefix(ethertype) + arrived.data:
            wrong = "the bytes written were not the device's headers and then the frame"
        if wrong is not None:
            self.problems.append(f"{what}: {wrong}")
            return None
        return arrived

    async def expect_answer(self, what: str, answer: Callable[[Seen], bool]) -> None:
        """The host sends ``answer`` out through the device."""
        found = await asyncio.to_thread(self.sniffer.wait_for, answer)
        if found is None:
            self.problems.append(f"{what}: the host did not answer")


def _echo_reply(mode: Mode, ident: int, seq: int) -> Callable[[Seen], bool]:
    def wanted(seen: Seen) -> bool:
        if not seen.outgoing or seen.protocol != ETH_P_IP:
            return False
        ip = _ip_of(seen.data, mode)
        return (
            isinstance(ip.data, dpkt.icmp.ICMP)
            and ip.data.type == dpkt.icmp.ICMP_ECHOREPLY
            and (ip.src, ip.dst) == (_v4(OWN), _v4(NEIGHBOUR))
            and (ip.data.data.id, ip.data.data.seq) == (ident, seq)
        )

    return wanted


def _arp_reply(seen: Seen) -> bool:
    if not seen.outgoing or seen.protocol != ETH_P_ARP:
        return False
    arp = dpkt.ethernet.Ethernet(seen.data).data
    addresses = (_v4(OWN), _v4(NEIGHBOUR))
    return bool(arp.op == dpkt.arp.ARP_OP_REPLY and (arp.spa, arp.tpa) == addresses)


def _v4(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


async def _send_every_template(netns: Netns, mode: Mode, pi: bool, vnet_hdr: bool) -> list[str]:
    client = await HelperClient.connect(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
    try:
        # Transient: the helper holds its queue, so the host's answers have
        # somewhere to go (and the kernel passes them by the packet socket).
        name = await client.create_device(
            {
                "mode": mode,
                "name": "send%d",
                "pi": pi,
                "vnet_hdr": vnet_hdr,
                "addresses": [f"{OWN}/24"],
                "up": True,
            }
        )
        device = next(d for d in await client.list_devices() if d.name == name)
        assert (device.pi, device.vnet_hdr) == (pi, vnet_hdr)
        wait_until(
            lambda: netns.ip_json("link", "show", "dev", name)[0]["operstate"] != "DOWN",
            timeout=5,
            what=f"{name} to have carrier",
        )
        sniffer = await asyncio.to_thread(Sniffer, netns, name)
        try:
            return await _templates(Case(client, device, sniffer), netns)
        finally:
            sniffer.close()
    finally:
        await client.close()


async def _templates(case: Case, netns: Netns) -> list[str]:
    mode, device = case.mode, case.device
    tap = mode == "tap"
    if tap:
        # The echo replies go to the neighbour without asking for its MAC first.
        neighbour = packetforms.SendForm.defaults(device).src_mac
        netns.ip("neigh", "replace", NEIGHBOUR, "lladdr", neighbour, "dev", device.name)

    # Hex: what a person types, as the dialog's text asks (the frame alone).
    form = packetforms.SendForm.defaults(device, "hex")
    ethernet = (packetforms.neighbour_mac(device.mac), device.mac) if tap else None
    typed = icmp_echo_request(NEIGHBOUR, OWN, 0x7475, 2, b"typed in hex", ethernet=ethernet)
    form.hex = typed.hex(" ")
    if await case.send("hex", form, ETH_P_IP):
        await case.expect_answer("hex", _echo_reply(mode, 0x7475, 2))

    if tap and await case.send("arp", packetforms.SendForm.defaults(device, "arp"), ETH_P_ARP):
        await case.expect_answer("arp", _arp_reply)

    form = packetforms.SendForm.defaults(device, "icmp")
    assert (form.src_ip, form.dst_ip) == (NEIGHBOUR, OWN)
    if await case.send("icmp", form, ETH_P_IP):
        await case.expect_answer("icmp", _echo_reply(mode, int(form.ident, 0), int(form.seq)))

    form = packetforms.SendForm.defaults(device, "udp")
    form.payload = "tungui"
    if (arrived := await case.send("udp", form, ETH_P_IP)) is not None:
        udp = _ip_of(arrived.data, mode).data
        if (udp.sport, udp.dport, udp.data) != (40000, 9, b"tungui"):
            case.problems.append(f"udp: ports or payload changed: {udp!r}")

    # IPv6: packet information must say so (a TUN takes the protocol from it).
    form = packetforms.SendForm.defaults(device, "icmp")
    form.src_ip, form.dst_ip = "2001:db8::2", "2001:db8::1"
    await case.send("icmp over IPv6", form, ETH_P_IPV6)
    return case.problems


@pytest.mark.parametrize("framing", FRAMINGS, ids=_ids)
@pytest.mark.parametrize("mode", ["tun", "tap"])
def test_every_template_arrives_whole(
    helper: HelperProcess, clean_netns: Netns, mode: Mode, framing: tuple[bool, bool]
) -> None:
    pi, vnet_hdr = framing
    problems = asyncio.run(_send_every_template(clean_netns, mode, pi, vnet_hdr))
    assert not problems, "\n".join(problems)
