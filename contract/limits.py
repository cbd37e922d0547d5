"""Sizes and bounds both sides of the contract enforce.

Every caller-supplied value is capped by size before any other work is
done on it, and before polkit is asked (docs/security.md): a free or
refused call must cost the helper no more than a well-formed one.  The
window and ``tunguictl`` check the same bounds before they call, so a
person sees the same sentence either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: The kernel's IFNAMSIZ: interface names have at most 15 bytes.
IFNAMSIZ = 16
#: Interface MTU bounds the kernel enforces for tun/tap and bridges.
MIN_MTU = 68
MAX_MTU = 65535
#: The MTU a new TUN/TAP device gets from the kernel.
DEFAULT_MTU = 1500
#: Characters of a device name as callers send it: the escaped form of
#: :func:`~tungui_contract.ifname.escape_name` takes at most 4 characters
#: per byte.
TARGET_MAX_CHARS = 4 * (IFNAMSIZ - 1)
#: Addresses one CreateDevice, CreateBridge or ConfigureDevice may carry.
MAX_ADDRESSES = 256
#: The longest address in CIDR notation (an IPv6 address with an embedded
#: IPv4 one and a /128 is 49).
ADDRESS_MAX_CHARS = 64
#: "02:00:5e:10:00:01".
MAC_CHARS = 17
#: The kernel's MAX_TAP_QUEUES.
MAX_QUEUES = 256
#: Largest uid/gid accepted; (uid_t)-1 means "none" and is spelled -1.
MAX_ID = 2**31 - 1

# ------------------------------------------------------------------ packets
# What a program writes to a TUN/TAP device, in order: packet information
# (without IFF_NO_PI), a virtio-net header (with IFF_VNET_HDR), then an
# Ethernet frame (TAP) or an IP packet (TUN).

#: struct tun_pi: flags (u16) and the EtherType (u16, big-endian).
PI_HEADER = 4
#: struct virtio_net_hdr, the kernel's default TUNSETVNETHDRSZ.
VNET_HEADER = 10
ETHERNET_HEADER = 14
VLAN_TAG = 4
#: The shortest IPv4 header.
SHORTEST_IP = 20

#: Bytes a program may write to a TUN/TAP device at most: packet
#: information, a virtio-net header, an Ethernet header with a VLAN tag and
#: the largest MTU.  InjectPacket's bound for one device is tighter
#: (:class:`Framing`); this one is checked first.
MAX_PACKET = PI_HEADER + VNET_HEADER + ETHERNET_HEADER + VLAN_TAG + MAX_MTU


@dataclass(frozen=True)
class Framing:
    """How packets are framed on one TUN/TAP device's file descriptor.

    The one statement of the packet-size rule: the helper checks
    InjectPacket against it and slices captured packets with it, the Send
    Packet dialog builds its frames with it.
    """

    mode: Literal["tun", "tap"]
    pi: bool = False
    vnet_hdr: bool = False

    @property
    def headers(self) -> int:
        """Bytes before the frame or packet: packet information, then a virtio-net header."""
        return (PI_HEADER if self.pi else 0) + (VNET_HEADER if self.vnet_hdr else 0)

    @property
    def link_overhead(self) -> int:
        """Bytes a frame may carry past the MTU: an Ethernet header with one VLAN tag on a TAP."""
        return ETHERNET_HEADER + VLAN_TAG if self.mode == "tap" else 0

    @property
    def shortest(self) -> int:
        """The shortest write the helper accepts: the headers and an Ethernet or IPv4 header."""
        return self.headers + (ETHERNET_HEADER if self.mode == "tap" else SHORTEST_IP)

    def longest(self, mtu: int) -> int:
        """The longest write the helper accepts on a device with this MTU."""
        return self.headers + self.link_overhead + mtu

    def longest_frame(self, mtu: int) -> int:
        """The longest frame or packet, without the headers."""
        return self.link_overhead + mtu

    def prefix(self, ethertype: int) -> bytes:
        """The headers to write before a frame or packet of this EtherType.

        Packet information carries no flags and the EtherType (a TUN device
        takes the packet's protocol from it); the virtio-net header asks for
        nothing (no checksum offload, no segmentation).
        """
        pi = (0).to_bytes(2, "big") + ethertype.to_bytes(2, "big") if self.pi else b""
        return pi + bytes(VNET_HEADER if self.vnet_hdr else 0)
