"""The helper's cost per Statistics tick with many devices.

    sudo .venv/bin/python -m bench.counters [--devices 1000] [--ticks 200]

In a network namespace made for the run, with N TAP devices, it times what
the helper does each tick: read /proc/net/dev, keep the listed devices, and
marshal the one Statistics message; beside it, in the same run, the wall
time of `ip -s -j link show` reading the same counters.  Target (issue 4):
under 10 ms per tick for 1,000 devices.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

INNER = r"""
import statistics, sys, time
from dbus_fast import Message
from tungui_contract.bus import INTERFACE, OBJECT_PATH
from tungui_helper.counters import StatisticsTicker
names = [f"bt{i}" for i in range(int(sys.argv[1]))]
sizes = []
def send(timestamp, rows):
    msg = Message.new_signal(OBJECT_PATH, INTERFACE, "Statistics", "ta(stttttttt)",
                             [timestamp, [list(r) for r in rows]])
    sizes.append(len(msg._marshall(False)))
ticker = StatisticsTicker(lambda: names, send)
times = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    ticker.tick()
    times.append((time.perf_counter() - start) * 1e3)
times.sort()
print(statistics.median(times), times[int(len(times) * 0.9)], sizes[-1])
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=200)
    args = parser.parse_args()
    netns = f"tungui-bench-counters-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".batch") as batch:
            batch.write("".join(f"tuntap add mode tap name bt{i}\n" for i in range(args.devices)))
            batch.flush()
            subprocess.run(["ip", "-n", netns, "-batch", batch.name], check=True)
        result = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                netns,
                sys.executable,
                "-c",
                INNER,
                str(args.devices),
                str(args.ticks),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        median, p90, size = result.stdout.split()
        ip_times = []
        for _ in range(30):
            start = time.perf_counter()
            subprocess.run(
                ["ip", "-n", netns, "-s", "-j", "link", "show"], capture_output=True, check=True
            )
            ip_times.append((time.perf_counter() - start) * 1e3)
        verdict = "met" if float(median) < 10 else "MISSED"
        print(f"Python {sys.version.split()[0]}, {args.devices} TAP devices")
        print(
            f"Statistics tick (read, filter, marshal {int(size):,} bytes)   "
            f"median {float(median):.2f} ms (p90 {float(p90):.2f})   "
            f"ip -s -j link show median {statistics.median(ip_times):.2f} ms   "
            f"(target < 10 ms: {verdict})"
        )
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
