"""Capturing a flood: the helper's capture stream beside tcpdump, in one run.

    sudo .venv/bin/python -m bench.capture [--seconds 5] [--snaplen 128]

In a network namespace made for the run: a TUN device held by a small C
program that drains it (as a VPN would), and a C sender that floods it with
UDP datagrams through the host's stack (sendmmsg). Two runs of the same
flood: one captured through the helper (StartCapture, a client reading the
stream and counting), one captured by `tcpdump -i DEV -s SNAPLEN -w
/dev/null`. For each: packets the device sent (kernel counter), packets
captured, drops, and the capturing process's CPU time per packet; and the
Statistics messages the bus carried meanwhile (one per tick, whatever the
rate). Targets (issue 4): zero drops at tcpdump's rate, helper CPU per
packet within 3x of tcpdump's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time

from bench.benchlib import BenchStack, compile_c, cpu_seconds
from tests.support.helper import HelperProcess
from tests.support.netns import Netns
from tests.support.waiting import wait_until

#: The namespace and temporary directory of a run: tungui-bench-cap-<pid>.
NETNS_PREFIX = "tungui-bench-cap-"

DRAIN_C = r"""
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct ifreq ifr; char buf[65536]; long n = 0;
    int fd = open("/dev/net/tun", O_RDWR);
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
    if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0) { perror("tun"); return 1; }
    printf("attached\n"); fflush(stdout);
    while (read(fd, buf, sizeof buf) > 0) n++;
    return 0;
}
"""

FLOOD_C = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
int main(int argc, char **argv) {
    double seconds = atof(argv[1]);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
    inet_pton(AF_INET, "192.0.2.2", &to.sin_addr);
    char payload[64] = "tungui flood";
    struct mmsghdr msgs[64]; struct iovec iov = { payload, sizeof payload };
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < 64; i++) {
        msgs[i].msg_hdr.msg_name = &to; msgs[i].msg_hdr.msg_namelen = sizeof to;
        msgs[i].msg_hdr.msg_iov = &iov; msgs[i].msg_hdr.msg_iovlen = 1;
    }
    struct timespec start, now; long sent = 0;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        int r = sendmmsg(s, msgs, 64, 0);
        if (r > 0) sent += r;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 < seconds);
    printf("%ld\n", sent);
    return 0;
}
"""


def tx_packets(netns: Netns, name: str) -> int:
    (link,) = netns.ip_json("-s", "link", "show", "dev", name)
    return int(link["stats64"]["tx"]["packets"])


async def capture_with_helper(
    address: str,
    netns: Netns,
    name: str,
    flood: str,
    seconds: float,
    snaplen: int,
    helper: HelperProcess,
) -> dict[str, float]:
    from tungui.client import HelperClient
    from tungui.packets.stream import parse_message

    client = await HelperClient.connect(address)
    ticks = 0

    def tick(_t: int, _c: dict[str, tuple[int, ...]]) -> None:
        nonlocal ticks
        ticks += 1

    try:
        await client.watch_statistics(250, tick)
        stream = await client.start_capture(name, snaplen=snaplen)
        stream.setblocking(False)
        loop = asyncio.get_running_loop()
        captured = 0
        last_dropped = 0
        readable = asyncio.Event()
        loop.add_reader(stream.fileno(), readable.set)
        before_tx = tx_packets(netns, name)
        cpu_before = cpu_seconds(helper.pid)
        sender = await asyncio.create_subprocess_exec(
            *netns.exec_argv(flood, str(seconds)), stdout=subprocess.PIPE
        )
        start = time.monotonic()
        ticks_at_start = ticks
        flooding = asyncio.ensure_future(sender.wait())
        quiet_since: float | None = None
        while True:
            readable.clear()
            got = False
            while True:
                try:
                    record = stream.recv(1 << 20)
                except BlockingIOError:
                    break
                got = True
                packets = parse_message(record)
                captured += len(packets)
                if packets:
                    last_dropped = packets[-1].dropped
            if flooding.done():
                # After the flood, read until the stream has been quiet for
                # longer than the ring's retire timeout.
                now = time.monotonic()
                if got or quiet_since is None:
                    quiet_since = now
                elif now - quiet_since > 0.5:
                    break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(readable.wait(), 0.05)
        elapsed = time.monotonic() - start
        cpu = cpu_seconds(helper.pid) - cpu_before
        sent = tx_packets(netns, name) - before_tx
        loop.remove_reader(stream.fileno())
        stream.close()
        return {
            "sent": sent,
            "captured": captured,
            "dropped": last_dropped,
            "cpu": cpu,
            "seconds": elapsed,
            "messages": ticks - ticks_at_start,
        }
    finally:
        await client.close()


def capture_with_tcpdump(
    netns: Netns, name: str, flood: str, seconds: float, snaplen: int
) -> dict[str, float]:
    dump = subprocess.Popen(
        netns.exec_argv("tcpdump", "-i", name, "-s", str(snaplen), "-w", "/dev/null", "-n"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)  # tcpdump prints nothing when ready; give it its second
    before_tx = tx_packets(netns, name)
    cpu_before = cpu_seconds(dump.pid)
    start = time.monotonic()
    subprocess.run(netns.exec_argv(flood, str(seconds)), check=True, capture_output=True)
    elapsed = time.monotonic() - start
    cpu = cpu_seconds(dump.pid) - cpu_before
    sent = tx_packets(netns, name) - before_tx
    dump.send_signal(2)
    _out, err = dump.communicate(timeout=10)
    captured = dropped = 0
    for line in err.splitlines():
        words = line.split()
        if "captured" in line:
            captured = int(words[0])
        elif "dropped by kernel" in line:
            dropped = int(words[0])
    return {
        "sent": sent,
        "captured": captured,
        "dropped": dropped,
        "cpu": cpu,
        "seconds": elapsed,
        "messages": 0,
    }


def report(label: str, figures: dict[str, float]) -> str:
    per_packet = figures["cpu"] / max(figures["captured"], 1) * 1e9
    rate = figures["sent"] / figures["seconds"]
    return (
        f"{label:<8} sent {int(figures['sent']):>9,} ({rate / 1000:,.0f}k pps)  "
        f"captured {int(figures['captured']):>9,}  dropped {int(figures['dropped']):>9,}  "
        f"CPU {figures['cpu']:.2f} s = {per_packet:,.0f} ns/packet"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--snaplen", type=int, default=128)
    args = parser.parse_args()
    if shutil.which("tcpdump") is None:
        print("tcpdump is not installed (apt-get install tcpdump)", file=sys.stderr)
        return 1
    bench = BenchStack(NETNS_PREFIX)
    netns, helper, build = bench.netns, bench.helper, bench.directory
    drain: subprocess.Popen[str] | None = None
    try:
        drain_bin = compile_c(build, "drain", DRAIN_C)
        flood_bin = compile_c(build, "flood", FLOOD_C)
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = bench.bus.address
        bench.start()
        netns.ip("tuntap", "add", "mode", "tun", "name", "flood0")
        netns.ip("address", "add", "192.0.2.1/24", "dev", "flood0")
        netns.ip("link", "set", "flood0", "up", "txqueuelen", "10000")
        drain = subprocess.Popen(
            netns.exec_argv(drain_bin, "flood0"), stdout=subprocess.PIPE, text=True
        )
        assert drain.stdout is not None and drain.stdout.readline().strip() == "attached"
        wait_until(
            lambda: netns.ip_json("link", "show", "dev", "flood0")[0]["operstate"] != "DOWN",
            what="carrier",
        )
        ours = asyncio.run(
            capture_with_helper(
                bench.bus.address, netns, "flood0", flood_bin, args.seconds, args.snaplen, helper
            )
        )
        theirs = capture_with_tcpdump(netns, "flood0", flood_bin, args.seconds, args.snaplen)
        print(
            f"Python {sys.version.split()[0]}; UDP flood through a TUN drained by a C "
            f"reader; snap length {args.snaplen}; {args.seconds:g} s each"
        )
        print(report("helper", ours))
        print(report("tcpdump", theirs))
        ratio = (ours["cpu"] / max(ours["captured"], 1)) / max(
            theirs["cpu"] / max(theirs["captured"], 1), 1e-12
        )
        print(
            f"CPU per packet, helper/tcpdump: {ratio:.1f}x (target <= 3x); "
            f"Statistics messages during the helper's run: {int(ours['messages'])} "
            f"in {ours['seconds']:.1f} s (one per 250 ms tick)"
        )
        return 0
    finally:
        bench.close(("the C reader", lambda: drain.kill() if drain is not None else None))


if __name__ == "__main__":
    raise SystemExit(main())
