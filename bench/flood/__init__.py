"""A packet flood with one window watching: CPU, bus traffic and memory of both sides.

    sudo flock /tmp/tungui-stack.lock .venv/bin/python -m bench.flood \
        [--seconds 60] [--rate 500000] [--reference-rate 1000] [--max-rss 4096]

Issue 4 ("Live traffic") asks, under a 500k packets/s flood with one window
watching, for the helper's CPU, the front end's CPU, the D-Bus messages per
second (target: constant, whatever the packet rate) and both processes'
peak memory (target: flat over a 60 s flood).  This script measures exactly
that, twice in one invocation: a reference run at a low rate (1,000
frames/s; 0 for none), then the flood, each with a freshly started helper
and window, so the two columns of the table can be read side by side.

The stack is the integration tests' (tests/support/): a private
system bus, the real polkitd, the helper as root in a network namespace
made for the run.  In that namespace a TAP device, ``flood0``, is held by a
small C program that plays a VM: on command it writes Ethernet frames
(UDP, 106 bytes, to a MAC address that is not the host's, so the host's
stack drops them at once) into the TAP at a paced rate.  A TAP written to
rather than a TUN sent through (as bench/capture.py does): on this 2-core
machine a UDP socket through a TUN tops out near 310k packets/s with its
drain, one write() per frame into a TAP reaches 500k with a core to spare.
The rate reached is the device's kernel counter (rx_packets), not the
writer's wish.

The front end is the real window in a process of its own (this script run
with ``--front-end``, Qt's offscreen platform, as root): ``tungui.gui.app.App``
on the private bus, ``flood0`` selected and Watch Packets triggered, so the
packet window comes up through the controller exactly as it does for a
person, while the main window's table, counters and rate graph keep
following the device.  It prints "watching" when the packet window is up,
then, from a thread of its own every half second, what the window got:
packets its capture thread parsed, those that reached the list, those
skipped or let go, the helper's dropped and sampled-out counts, what is
still queued between its threads, how many list updates it made and how
late its event loop runs.  After the flood the script waits (up to half
the run) for the window to catch up.

Sampled once a second from /proc: CPU (utime + stime, as % of one core and
per frame; the front end's split by thread too) and memory (VmRSS, and
VmHWM for the peak) of both processes; CPU of the writer too (the kernel
delivers each frame to the capture ring in its context).  Every message on
the bus is seen by ``dbus-monitor --profile`` (a monitor connection:
BecomeMonitor, allowed to root) and counted.  The table goes to stdout,
progress to stderr; all it made (namespace, processes, the polkit policy
file, temporary files) is removed when it ends, on Ctrl+C or SIGTERM too.
Run it alone: the tests and the other benchmarks install the same polkit
policy (this machine's convention is ``flock /tmp/tungui-stack.lock``
around each of them).
"""
