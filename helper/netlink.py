"""Links and addresses as rtnetlink tells of them: the records, the parser, the event socket.

:func:`parse` turns rtnetlink messages, from a dump (:mod:`.links`) or from
the multicast event socket, into :class:`LinkInfo` / :class:`AddrInfo`
records.  It reads attributes with ``get_attr('IFLA_…')``, which works on
pyroute2 0.7 and 0.9.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from pyroute2.netlink.rtnl import (
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV6_IFADDR,
    RTMGRP_LINK,
)
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from tungui_contract.limits import Framing

log = logging.getLogger(__name__)

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_NEWADDR = 20
RTM_DELADDR = 21
AF_BRIDGE = 7
IFF_UP = 0x1
IFLA_TUN_TYPE_TUN = 1

#: The alias tungui gives every device it creates, so a restarted helper
#: still knows which persistent devices are its own.
MANAGED_ALIAS = "tungui"

T = TypeVar("T")


@dataclass(frozen=True)
class LinkInfo:
    """One link as the kernel reported it."""

    index: int
    name: str
    kind: str  # "tun", "tap", "bridge" or another rtnl kind ("" for none)
    mtu: int
    mac: str
    up: bool
    operstate: str
    master: int
    alias: str
    carrier: bool = False
    # TUN/TAP only (from IFLA_INFO_DATA):
    pi: bool = False
    vnet_hdr: bool = False
    multi_queue: bool = False
    persist: bool = False
    owner: int = -1
    group: int = -1
    queues: int = 0
    disabled_queues: int = 0

    @property
    def framing(self) -> Framing:
        """How packets are framed on a TUN/TAP device's fd (a TAP's, for any other kind)."""
        return Framing("tun" if self.kind == "tun" else "tap", self.pi, self.vnet_hdr)


@dataclass(frozen=True)
class AddrInfo:
    """One address of a link."""

    index: int
    address: str  # "192.0.2.1/24"
    link_local: bool


def _text(value: Any) -> str:
    """A netlink string attribute as str (names are bytes, not always UTF-8)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape").rstrip("\0")
    return str(value or "")


def _link(msg: Any) -> LinkInfo:
    kind = ""
    tun: dict[str, int] = {}
    linkinfo = msg.get_attr("IFLA_LINKINFO")
    if linkinfo is not None:
        kind = linkinfo.get_attr("IFLA_INFO_KIND") or ""
        data = linkinfo.get_attr("IFLA_INFO_DATA")
        if kind == "tun" and data is not None and hasattr(data, "get_attr"):
            for key in (
                "TYPE",
                "PI",
                "VNET_HDR",
                "PERSIST",
                "MULTI_QUEUE",
                "NUM_QUEUES",
                "NUM_DISABLED_QUEUES",
                "OWNER",
                "GROUP",
            ):
                value = data.get_attr(f"IFLA_TUN_{key}")
                if value is not None:
                    tun[key] = int(value)
            kind = "tun" if tun.get("TYPE", IFLA_TUN_TYPE_TUN) == IFLA_TUN_TYPE_TUN else "tap"
    carrier = bool(msg.get_attr("IFLA_CARRIER"))
    queues = tun.get("NUM_QUEUES")
    if queues is None:
        # The kernel reports queue counts for multi-queue devices only; a
        # single-queue TUN/TAP has carrier exactly while a program holds it.
        queues = int(carrier) if kind in ("tun", "tap") else 0
    return LinkInfo(
        index=int(msg["index"]),
        name=_text(msg.get_attr("IFLA_IFNAME")),
        kind=kind,
        mtu=int(msg.get_attr("IFLA_MTU") or 0),
        mac=(msg.get_attr("IFLA_ADDRESS") or "") if kind != "tun" else "",
        up=bool(msg["flags"] & IFF_UP),
        operstate=(msg.get_attr("IFLA_OPERSTATE") or "UNKNOWN").lower(),
        master=int(msg.get_attr("IFLA_MASTER") or 0),
        alias=_text(msg.get_attr("IFLA_IFALIAS")),
        carrier=carrier,
        pi=bool(tun.get("PI", 0)),
        vnet_hdr=bool(tun.get("VNET_HDR", 0)),
        multi_queue=bool(tun.get("MULTI_QUEUE", 0)),
        persist=bool(tun.get("PERSIST", 0)),
        owner=tun.get("OWNER", -1),
        group=tun.get("GROUP", -1),
        queues=queues,
        disabled_queues=tun.get("NUM_DISABLED_QUEUES", 0),
    )


def _addr(msg: Any) -> AddrInfo | None:
    # IFA_LOCAL is the address of the interface on point-to-point links;
    # IFA_ADDRESS the peer there and the address everywhere else.
    text = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
    if not text:
        return None
    address = ipaddress.ip_interface(f"{text}/{msg['prefixlen']}")
    link_local = address.version == 6 and address.ip.is_link_local
    return AddrInfo(int(msg["index"]), str(address), link_local)


Event = tuple[str, LinkInfo | AddrInfo | int]


def parse(messages: Iterable[Any]) -> list[Event]:
    """Turn rtnetlink messages into events.

    Returns:
        ("link", LinkInfo), ("dellink", index), ("addr", AddrInfo) or
        ("deladdr", AddrInfo), in order; anything else is skipped.
    """
    events: list[Event] = []
    for msg in messages:
        kind = msg["header"]["type"]
        if kind in (RTM_NEWLINK, RTM_DELLINK):
            # Bridge port notifications share the group with family
            # AF_BRIDGE; a port leaving its bridge is not a link going away.
            if msg["family"] == AF_BRIDGE:
                continue
            if kind == RTM_NEWLINK:
                events.append(("link", _link(msg)))
            else:
                events.append(("dellink", int(msg["index"])))
        elif kind in (RTM_NEWADDR, RTM_DELADDR):
            info = _addr(msg)
            if info is not None:
                events.append(("addr" if kind == RTM_NEWADDR else "deladdr", info))
    return events


_NLMSGHDR = struct.Struct("=IH")  # nlmsg_len, nlmsg_type (then flags, seq, pid)
_IFINFO_FAMILY = 16  # ifinfomsg follows the 16-byte header: family, pad, type,
_IFINFO_INDEX = struct.Struct("=i")  # then the index at offset 20
_NLMSG_MIN = 16 + 16  # a header and an ifinfomsg


def latest_per_link(chunks: Iterable[bytes]) -> bytes:
    """Drop each RTM_NEWLINK that a later message about the same link supersedes.

    Every RTM_NEWLINK carries a link's whole state, so only the last one of
    a burst (a device being made and set up sends several) needs decoding,
    and pyroute2's decoding is most of the cost of an event.  Only the
    netlink header, the family and the link index are read here; messages
    keep their order, each link's at the place of its last one (addresses
    are kept apart from links in the table, so an address may come first).

    Returns:
        The kept messages, one buffer for pyroute2 to decode.
    """
    messages: list[tuple[int | None, memoryview]] = []
    last: dict[int, int] = {}
    for chunk in chunks:
        view = memoryview(chunk)
        offset = 0
        while offset + _NLMSGHDR.size <= len(view):
            length, kind = _NLMSGHDR.unpack_from(view, offset)
            if length < _NLMSGHDR.size or offset + length > len(view):
                break  # malformed: the kernel never sends this
            message = view[offset : offset + length]
            offset += (length + 3) & ~3
            index: int | None = None
            if kind in (RTM_NEWLINK, RTM_DELLINK) and length >= _NLMSG_MIN:
                if message[_IFINFO_FAMILY] == AF_BRIDGE:
                    continue  # a bridge port notice, not a link change
                index = _IFINFO_INDEX.unpack_from(message, 20)[0]
                last[index] = len(messages)
            messages.append((index, message))
    kept = bytearray()
    for position, (index, message) in enumerate(messages):
        # A removal is always kept: it also drops the link's addresses, and
        # the same index may come back (a device moved out and back in).
        if (
            index is None
            or last[index] == position
            or _NLMSGHDR.unpack_from(message)[1] == RTM_DELLINK
        ):
            kept += message
            kept += bytes(-len(message) % 4)
    return bytes(kept)


class EventSocket:
    """The multicast rtnetlink socket that tells of every link and address change."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self.sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
        self.sock.setblocking(False)
        self._marshal = MarshalRtnl()

    def read(self) -> list[Event] | None:
        """Read what is pending.

        Returns:
            The events, or None when the kernel dropped some (ENOBUFS) and
            the caller must dump everything again.
        """
        chunks: list[bytes] = []
        while True:
            try:
                chunks.append(self.sock.recv(1024 * 1024))
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    return None
                raise
        if not chunks:
            return []
        return parse(self._marshal.parse(latest_per_link(chunks)))

    def fileno(self) -> int:
        """The socket's descriptor, to wait on."""
        return self.sock.fileno()

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()
