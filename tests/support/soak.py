"""What the soak (test_hostile.py) looks at and how it tells it: the namespace, the
helper's state before, and the lines of its report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

from .buscall import run_coroutine
from .helper import HelperProcess
from .names import HELPER_BUS_NAME, HELPER_INTERFACE, HELPER_OBJECT_PATH
from .netns import Netns
from .probes import Latencies, Sample


def namespace_state(netns: Netns) -> dict[str, Any]:
    """What nobody must not change: each link's identity and settings, and its
    addresses.  Not what follows carrier (a bridge's NO-CARRIER, link-local
    addresses), which the kernel changes by itself."""
    state: dict[str, Any] = {}
    for link in netns.ip_json("link", "show"):
        info = link.get("linkinfo", {})
        state[link["ifname"]] = {
            "ifindex": link["ifindex"],
            "mtu": link["mtu"],
            "address": link.get("address"),
            "up": "UP" in link.get("flags", []),
            "master": link.get("master"),
            "kind": info.get("info_kind"),
            "tun": info.get("info_data") if info.get("info_kind") == "tun" else None,
        }
    for entry in netns.ip_json("address", "show"):
        state[entry["ifname"]]["addresses"] = sorted(
            f"{a['local']}/{a['prefixlen']}"
            for a in entry.get("addr_info", [])
            if a.get("scope") != "link"
        )
    return state


def root_warm_up(helper: HelperProcess, address: str) -> int:
    """Every free method once, as root, so what the helper opens lazily is open; then
    wait until its fd count holds still for a second and return it."""

    async def calls() -> None:
        bus = MessageBus(bus_address=address, bus_type=BusType.SYSTEM, negotiate_unix_fd=True)
        await bus.connect()
        try:
            for member, signature, body in (
                ("ListDevices", "", []),
                ("ListDevicesByFileDescriptor", "", []),
                ("GetPermissions", "", []),
                ("Subscribe", "", []),
                ("WatchStatistics", "u", [100]),
                ("UnwatchStatistics", "", []),
            ):
                reply = await bus.call(
                    Message(
                        destination=HELPER_BUS_NAME,
                        path=HELPER_OBJECT_PATH,
                        interface=HELPER_INTERFACE,
                        member=member,
                        signature=signature,
                        body=body,
                    )
                )
                assert reply is not None and reply.message_type == MessageType.METHOD_RETURN
                for fd in reply.unix_fds:
                    os.close(fd)
        finally:
            bus.disconnect()

    run_coroutine(calls())
    counts: list[int] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        counts.append(helper.fd_count())
        if len(counts) >= 5 and len(set(counts[-5:])) == 1:
            break
        time.sleep(0.2)
    return counts[-1]


def describe(samples: list[Sample], warmup: float) -> str:
    if not samples:
        return "no samples"
    early = [s for s in samples if s.at < warmup] or samples[:1]
    late = [s for s in samples if s.at >= warmup] or samples[-1:]
    return (
        f"fds {early[0].fds} at start, {max(s.fds for s in early)} max in warm-up, "
        f"{max(s.fds for s in late)} max after, {samples[-1].fds} last; "
        f"VmRSS {early[0].rss_kib / 1024:.1f} MiB at start, "
        f"{max(s.rss_kib for s in early) / 1024:.1f} max in warm-up, "
        f"{max(s.rss_kib for s in late) / 1024:.1f} max after, "
        f"{samples[-1].rss_kib / 1024:.1f} last ({len(samples)} samples)"
    )


def slowest_calls(latencies: Latencies, huge: list[Any], started: float) -> list[str]:
    """The slowest of root's calls, each with the huge messages nobody sent shortly before."""
    lines = []
    for seconds, at in latencies.slowest(5):
        near = [f"{label} {1000 * (t - at):+.0f} ms" for t, label in huge if at - 1 <= t <= at]
        lines.append(
            f"  {1000 * seconds:.1f} ms, {at - started:.1f} s in; huge messages in the second "
            f"before: {'; '.join(near) or 'none'}"
        )
    return lines


def tally_report(total: dict[str, Any], cpu: dict[str, float]) -> list[str]:
    """Lines on what nobody sent and got, and what it cost whom."""
    sent = total["sent"]
    kinds: dict[str, int] = {}
    for label, count in sent.items():
        kinds[label.split("/", 1)[0]] = kinds.get(label.split("/", 1)[0], 0) + count
    answers = sorted(total["answers"].items(), key=lambda kv: -kv[1])
    return [
        f"nobody sent {sum(sent.values())} messages in {total['seconds']:.1f} s: "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
        + f"; {total['fds_sent']} fds; connections {dict(total['connections'])}",
        "nobody got: " + ", ".join(f"{k} {v}" for k, v in answers[:25]),
        f"longest error {total['longest_error']} chars ({total['longest_error_name']})",
        "CPU, % of one core: " + ", ".join(f"{k} {100 * v:.0f}" for k, v in cpu.items()),
    ]


def tally_failures(
    total: dict[str, Any], contract: dict[str, Any], kinds: Sequence[str], max_error_chars: int
) -> list[str]:
    """What nobody's tallies show went wrong, and proof that the traffic was what it claims."""
    failures = []
    privileged = set(contract["members"]) - set(contract["free"])
    granted = {
        k: v for k, v in total["answers"].items() if k.endswith(" ok") and k[:-3] in privileged
    }
    if granted:
        failures.append(f"nobody was answered with success by methods that need polkit: {granted}")
    if total["unanswered"]:
        unanswered = {k: v for k, v in total["answers"].items() if "answer" in k}
        failures.append(f"{total['unanswered']} of nobody's calls got no answer: {unanswered}")
    if total["longest_error"] > max_error_chars:
        failures.append(
            f"an error nobody got was {total['longest_error']} characters long "
            f"({total['longest_error_name']}; allowed {max_error_chars})"
        )
    if total["tracebacks"]:
        failures.append(f"{total['tracebacks']} errors nobody got carried a traceback")
    # The traffic itself: every kind sent, every method called.
    sent = {label.split("/", 1)[0] for label in total["sent"]}
    if set(kinds) - sent:
        failures.append(f"(the test) nobody sent nothing of {sorted(set(kinds) - sent)}")
    called = {label.split("/", 1)[1] for label in total["sent"] if label.startswith("call/")}
    missed = sorted(set(contract["members"]) - called)
    if "call" in kinds and missed:
        failures.append(f"(the test) nobody never called {missed}")
    return failures
