"""A packet flood with one window watching: CPU, bus traffic and memory of both sides.

The command line and the setting up and tearing down of the stack; the
package's docstring says what is measured and how.  ``--front-end`` runs
the window's process instead (:mod:`.frontend`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.benchlib import BenchStack, compile_c, log, raise_interrupt
from tests.support.names import REPO_ROOT
from tests.support.polkit import remove_stale_rules
from tests.support.processes import missing_requirements
from tests.support.waiting import wait_until

from .frontend import front_end
from .report import report
from .runs import Run, one_run
from .sampling import BusMonitor
from .vm import DEVICE, VM_C, Vm

#: Namespace and temporary directory of a run: tungui-bench-flood-<pid>.
NETNS_PREFIX = "tungui-bench-flood-"


def bench_pythonpath(shim: Path) -> str:
    """PYTHONPATH under which the helper and the window are this tree's code.

    Unlike ``python_path``, always through a shim: an editable or
    installed ``tungui_helper`` elsewhere must not be what is measured.
    """
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "tungui_helper").symlink_to(REPO_ROOT / "helper", target_is_directory=True)
    return os.pathsep.join([str(shim), str(REPO_ROOT)])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each run (60)")
    parser.add_argument("--rate", type=int, default=500_000, help="frames/s of the flood")
    parser.add_argument(
        "--reference-rate", type=int, default=1000, help="frames/s of the reference run (1000)"
    )
    parser.add_argument(
        "--max-rss",
        type=int,
        default=4096,
        help="MB of front-end RSS past which the flood is stopped early (4096)",
    )
    parser.add_argument("--front-end", nargs=3, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.front_end:
        return front_end(*args.front_end)
    missing = missing_requirements()
    missing += [
        f"{tool} is not installed" for tool in ("cc", "dbus-monitor") if not shutil.which(tool)
    ]
    if missing:
        print("cannot run: " + "; ".join(missing), file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, raise_interrupt)
    remove_stale_rules()
    bench = BenchStack(NETNS_PREFIX, pythonpath=lambda d: bench_pythonpath(d / "pythonpath"))
    bus, netns, helper, directory = bench.bus, bench.netns, bench.helper, bench.directory
    pythonpath = bench.pythonpath
    started: list[Vm | BusMonitor] = []
    runs: list[Run] = []
    failed = True
    try:
        vm_binary = compile_c(directory, "vm", VM_C)
        log("starting dbus-daemon, polkitd, the namespace and the TAP")
        bench.start(helper=False)
        netns.ip("tuntap", "add", "mode", "tap", "name", DEVICE)
        netns.ip("link", "set", DEVICE, "address", "fe:00:00:00:00:01")
        netns.ip("address", "add", "192.0.2.1/24", "dev", DEVICE)
        netns.ip("link", "set", DEVICE, "up")
        vm = Vm(netns, vm_binary)
        started.append(vm)
        wait_until(
            lambda: netns.ip_json("link", "show", "dev", DEVICE)[0]["operstate"] != "DOWN",
            what="carrier on the TAP",
        )
        monitor = BusMonitor(bus.address)
        started.append(monitor)
        for label, rate in (("reference", args.reference_rate), ("flood", args.rate)):
            runs.append(
                one_run(
                    label,
                    rate,
                    args,
                    netns,
                    helper,
                    vm,
                    monitor,
                    bus.address,
                    directory,
                    pythonpath,
                )
            )
        failed = False
    except KeyboardInterrupt:
        failed = False
        log("interrupted; cleaning up")
        return 130
    finally:
        bench.close(*((type(p).__name__, p.stop) for p in reversed(started)), helper_stderr=failed)
    print(report(runs, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
