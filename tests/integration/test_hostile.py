"""A hostile local user against the helper, for a minute: the soak of issue 10.

``nobody``, holding no polkit grant, runs :data:`PROCESSES` processes of
tests/support/hostile/client.py with several bus connections each.  From one seed they
send random well-formed calls to every method of the interface (free ones
and ones needing polkit, some allowing interactive authorization), malformed
calls, arguments of megabytes or a hundred thousand items, signals, calls,
replies and errors carrying fds, and bursts of calls whose replies they leave
unread for seconds.  Meanwhile root checks what issue 10 promises:

- root's ListDevices is answered within :data:`LATENCY_LIMIT` (a few
  stalls of the machine aside, within :data:`LATENCY_STALL`);
- the helper's fd count and VmRSS stay flat (margins below);
- nothing appears or changes in the namespace, and no call that needs
  authorization succeeds for nobody;
- every call nobody made is answered, and no answer is huge or a traceback;
- the helper still owns its name at the end and creates and deletes a device
  for root.

It runs :data:`SOAK_SECONDS`; ``TUNGUI_SOAK_SECONDS`` changes that,
``TUNGUI_SOAK_SEED`` replays a run (the seed is printed), and
``TUNGUI_SOAK_KINDS`` (a comma-separated subset of call, malformed, huge, fds,
churn, slow) narrows the traffic down when a failure needs explaining.
nobody's processes are niced and paced (:data:`RATE` messages a second each,
one huge message every :data:`HUGE_INTERVAL`, the processes in turn), so that
on a 2-core machine shared with dbus-daemon and polkitd a failure means the
helper misbehaved, not that the machine was saturated.
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import time
from typing import Any

import pytest

from tests.support.bus import DBusDaemon
from tests.support.buscall import name_owner_pid
from tests.support.helper import HelperProcess
from tests.support.helperbus import call, create, create_bridge
from tests.support.hostile import processes as hostile
from tests.support.hostile.processes import HostileClients
from tests.support.names import HELPER_BUS_NAME
from tests.support.netns import Netns
from tests.support.polkit import PolkitDaemon
from tests.support.probes import HelperWatch, LatencyProbe, cpu_seconds
from tests.support.soak import (
    describe,
    namespace_state,
    root_warm_up,
    slowest_calls,
    tally_failures,
    tally_report,
)

pytestmark = pytest.mark.integration

#: How long nobody's processes run, in seconds (TUNGUI_SOAK_SECONDS overrides).
SOAK_SECONDS = 60.0
#: Root's ListDevices is answered within this, every time but at most
#: LATENCY_OUTLIERS calls, which must still come within LATENCY_STALL.
LATENCY_LIMIT = 0.100
#: On this 2-core test machine, shared by nobody's processes, dbus-daemon,
#: polkitd, the helper and the test itself, one call in a thousand or so has
#: been seen just over the limit (115 ms, once in a 60 s run on dbus-fast
#: 1.84), a stall of the machine or of a garbage collector rather than work
#: the helper was made to do; a few such stalls are told apart from the
#: helper being held up, which shows as many calls over the limit.
LATENCY_OUTLIERS = 3
LATENCY_STALL = 0.250
#: Root calls every this often (20 a second).
PROBE_INTERVAL = 0.05
#: nobody's processes, their bus connections and slow readers, their pace.
PROCESSES = 3
CONNECTIONS = 3
SLOW_READERS = 1
RATE = 30.0
HUGE_INTERVAL = 2.0
#: Huge arguments are of 64 KiB to this many bytes.  Each costs root's calls
#: that wait behind it about 4 ms per MB (dbus-daemon checks and copies it, the
#: helper reads and unmarshals it), whatever the helper does with it.
HUGE_BYTES = 4_000_000
#: Each process opens with one message bigger still (client.OPENING in tests/support/hostile):
#: a name of 9.5 MB of control bytes, whose repr() (38 MB) is more than the
#: bus's 32 MiB limit, in a message under it.
BIGGEST_BYTES = 9_500_000
#: The longest list of addresses (the issue's quadratic duplicate check).
HUGE_ITEMS = 100_000
#: nobody's niceness: the machine is theirs only after the processes under test.
NICE = 10
KINDS = ("call", "malformed", "huge", "fds", "churn", "slow")

#: Fds and memory are compared with what they were after this much of the soak
#: (a quarter, at most 10 s), which includes every process's opening huge message.
WARMUP_FRACTION = 0.25
WARMUP_MAX = 10.0
#: During the soak the helper may hold this many fds more than before it: the
#: fds of a few messages read but not yet handled (dbus-daemon passes at most 16
#: with one message; dbus-fast may read several messages at once), closed as
#: soon as each is handled, and a few listings (ListDevicesByFileDescriptor)
#: whose replies are being written.  A leak of the fds that come with messages
#: (about a hundred a second here) outgrows it within a second.
FD_SLACK = 48
#: Once nobody has left, the helper's fd count comes back to within this of
#: what it was before (one listing memfd rebuilt while the old one is still
#: being sent, one per-thread netlink socket opened late).
FD_SETTLE = 2
#: VmRSS may exceed the warm-up's peak by this much.  The peak already holds
#: the biggest message unmarshalled and its error built; the margin covers a
#: second huge message read while the first is still referenced (the helper
#: reads on while a call awaits polkit) and allocator slack, and is far below
#: what keeping one huge message per call (megabytes each) would add in a minute.
RSS_SLACK_KIB = 48 * 1024
#: No error nobody gets may be longer: enough for any sentence the helper writes
#: with a caller's input cut short, far from the bus's 32 MiB.
MAX_ERROR_CHARS = 4096


def soak_seconds() -> float:
    return float(os.environ.get("TUNGUI_SOAK_SECONDS", SOAK_SECONDS))


def soak_seed() -> int:
    text = os.environ.get("TUNGUI_SOAK_SEED")
    return int(text) if text else random.SystemRandom().randrange(2**32)


def soak_kinds() -> tuple[str, ...]:
    text = os.environ.get("TUNGUI_SOAK_KINDS")
    kinds = tuple(k.strip() for k in text.split(",")) if text else KINDS
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"TUNGUI_SOAK_KINDS: unknown kinds {sorted(unknown)}; known: {KINDS}")
    return kinds


def make_targets(netns: Netns) -> list[str]:
    """Devices for nobody to aim at: tungui's own TAP with an address, a bridge with a
    TAP in it, and a TUN made by someone else."""
    netns.ip("tuntap", "add", "mode", "tun", "name", "soakfor0")
    bridge = create_bridge(name="soakbr0", up=True)
    tap = create(mode="tap", name="soak0", persist=True, addresses=["192.0.2.1/24"], up=True)
    port = create(mode="tap", name="soak1", persist=True, master=bridge)
    return [tap, port, bridge, "soakfor0", "lo"]


def polkit_pid(polkit: PolkitDaemon) -> int:
    assert polkit.proc is not None
    return polkit.proc.pid


def test_hostile_users_cannot_hurt_the_helper(
    helper: HelperProcess,
    clean_netns: Netns,
    bus: DBusDaemon,
    polkit: PolkitDaemon,
    stack_dir: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Root's probe runs in this process: its own collector must not pause it.
    gc.collect()
    gc.disable()
    try:
        _soak(helper, clean_netns, bus, polkit, stack_dir, capsys)
    finally:
        gc.enable()


def _soak(
    helper: HelperProcess,
    clean_netns: Netns,
    bus: DBusDaemon,
    polkit: PolkitDaemon,
    stack_dir: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seconds, seed, kinds = soak_seconds(), soak_seed(), soak_kinds()
    warmup = min(WARMUP_MAX, seconds * WARMUP_FRACTION)
    targets = make_targets(clean_netns)
    before = namespace_state(clean_netns)
    contract = hostile.contract(targets)
    settings = [
        {
            "contract": contract,
            "mode": "soak",
            "seed": seed,
            "process": p,
            "seconds": seconds,
            "connections": CONNECTIONS,
            "slow_readers": SLOW_READERS if "slow" in kinds else 0,
            "rate": RATE,
            "huge_bytes": HUGE_BYTES,
            "biggest_bytes": BIGGEST_BYTES,
            "huge_items": HUGE_ITEMS,
            "huge_interval": HUGE_INTERVAL,
            "huge_phase": (p + 0.5) * HUGE_INTERVAL / PROCESSES,
            "kinds": [k for k in kinds if k != "slow"],
        }
        for p in range(PROCESSES)
    ]
    with capsys.disabled():
        print(
            f"\nsoak: seed {seed} (TUNGUI_SOAK_SEED={seed} replays it), {seconds:g} s, "
            f"kinds {','.join(kinds)}",
            flush=True,
        )
    clients = HostileClients(bus.address, stack_dir, settings, nice=NICE)
    probe = LatencyProbe(bus.address, ("ListDevices",), interval=PROBE_INTERVAL)
    watch = HelperWatch(helper)
    failures: list[str] = []
    report: list[str] = []
    tallies: list[dict[str, Any]] = []
    try:
        base_fds = root_warm_up(helper, bus.address)
        clients.start()
        pids = {"helper": helper.pid, "dbus-daemon": bus.pid, "polkitd": polkit_pid(polkit)}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        probe.start()
        watch.start()
        clients.go()
        try:
            tallies = clients.results(timeout=seconds + 60)
        except Exception as exc:
            failures.append(f"nobody's processes did not end well: {exc}")
        soaked = time.monotonic() - clients.started
        cpu = {}
        for name, pid in pids.items():
            with contextlib.suppress(OSError):
                cpu[name] = (cpu_seconds(pid) - cpu_before[name]) / soaked
        cpu["nobody's processes"] = sum(t["cpu_seconds"] for t in tallies) / soaked
    finally:
        latencies = probe.stop()["ListDevices"]
        clients.kill()
    # Settle: nobody's connections are gone; the helper lets go of what they held.
    settle_deadline = time.monotonic() + 10
    while time.monotonic() < settle_deadline and helper.running:
        sample = watch.sample()
        if sample is None or sample.fds <= base_fds + FD_SETTLE:
            break
        time.sleep(0.2)
    samples = watch.stop()
    settled = watch.sample() if helper.running else None

    # -- what root saw
    report.append(f"root ListDevices every {PROBE_INTERVAL * 1000:.0f} ms: {latencies.summary()}")
    if latencies.failures:
        failures.append(f"root's ListDevices failed: {dict(latencies.failures)}")
    slow = sum(s > LATENCY_LIMIT for s in latencies.seconds)
    if slow > LATENCY_OUTLIERS or (latencies.seconds and max(latencies.seconds) > LATENCY_STALL):
        failures.append(
            f"root's ListDevices took up to {max(latencies.seconds) * 1000:.0f} ms "
            f"({slow} of {len(latencies.seconds)} over {LATENCY_LIMIT * 1000:.0f} ms; "
            f"p99 {latencies.percentile(0.99) * 1000:.1f} ms)"
        )

    huge = hostile.merge(tallies)["huge"] if tallies else []
    report += slowest_calls(latencies, huge, clients.started)

    # -- the helper's fds and memory
    report.append(f"helper: {base_fds} fds before; {describe(samples, warmup)}")
    if watch.gone_at is not None:
        failures.append(f"the helper exited {watch.gone_at:.1f} s into the soak")
    if samples:
        most = max(samples, key=lambda s: s.fds)
        if most.fds > base_fds + FD_SLACK:
            failures.append(
                f"the helper held {most.fds} fds {most.at:.1f} s into the soak, "
                f"{most.fds - base_fds} more than before (allowed {FD_SLACK})"
            )
        early = [s.rss_kib for s in samples if s.at < warmup] or [samples[0].rss_kib]
        late = [s for s in samples if s.at >= warmup]
        peak = max(late, key=lambda s: s.rss_kib, default=None)
        if peak is not None and peak.rss_kib > max(early) + RSS_SLACK_KIB:
            failures.append(
                f"the helper's VmRSS grew to {peak.rss_kib / 1024:.1f} MiB {peak.at:.1f} s in, "
                f"{(peak.rss_kib - max(early)) / 1024:.1f} MiB over the warm-up's peak "
                f"(allowed {RSS_SLACK_KIB / 1024:.0f})"
            )
    if settled is not None:
        report.append(
            f"after nobody left: {settled.fds} fds, VmRSS {settled.rss_kib / 1024:.1f} MiB"
        )
        if settled.fds > base_fds + FD_SETTLE:
            failures.append(
                f"the helper kept {settled.fds - base_fds} fds more than before after "
                f"nobody left (allowed {FD_SETTLE})"
            )

    # -- nothing nobody was not allowed
    after = namespace_state(clean_netns)
    if after != before:
        changed = sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))
        failures.append(
            "the namespace changed: "
            + "; ".join(f"{n}: {before.get(n)} -> {after.get(n)}" for n in changed)
        )
    total = hostile.merge(tallies) if tallies else None
    if total is not None:
        report += tally_report(total, cpu)
        failures += tally_failures(total, contract, kinds, MAX_ERROR_CHARS)

    # -- still serving
    owner = name_owner_pid(bus.address, HELPER_BUS_NAME)
    if not helper.running or owner != helper.pid:
        failures.append(f"{HELPER_BUS_NAME} is owned by pid {owner}, not by the helper")
    try:
        made = create(mode="tap", name="soakend0", persist=True)
        assert clean_netns.link(made) is not None, "CreateDevice answered but made nothing"
        call("DeleteDevice", "s", made)
        assert clean_netns.link(made) is None, "DeleteDevice answered but left the device"
    except Exception as exc:
        failures.append(f"root could not create and delete a device after the soak: {exc}")

    text = "\n".join(report)
    with capsys.disabled():
        print(text, flush=True)
    if failures:
        if helper.running:
            helper.kill()  # a helper that failed the soak is not left to the next test
        message = "\n".join(f"- {f}" for f in failures)
        pytest.fail(
            f"seed {seed}: {len(failures)} checks failed:\n{message}\n\n{text}\n\n"
            f"--- helper stderr (its start: what went wrong first) ---\n"
            f"{helper.stderr_text()[:4000]}",
            pytrace=False,
        )
