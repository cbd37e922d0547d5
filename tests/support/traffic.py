"""Traffic through devices in the test's namespace."""

from __future__ import annotations

import subprocess

from .netns import Netns
from .waiting import wait_until

READER = """
import fcntl, os, select, struct, sys
fd = os.open("/dev/net/tun", os.O_RDWR)
# IFF_TUN | IFF_NO_PI; attach to the existing device (TUNSETIFF).
fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH22x", sys.argv[1].encode(), 0x1001))
print("attached", flush=True)
packets = []
while True:
    ready, _, _ = select.select([fd, sys.stdin], [], [])
    if sys.stdin in ready:
        break
    packets.append(os.read(fd, 65536).hex())
print(" ".join(packets), flush=True)
"""


class Reader:
    """A program holding a TUN device and reading what is sent to it.

    The kernel counts a TUN device's transmitted packets when a reader
    takes them, as QEMU or OpenVPN would.  It runs inside the test's
    namespace (a TUNSETIFF elsewhere would make a device there).
    """

    def __init__(self, netns: Netns, name: str) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns.name, "python3", "-c", READER, name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "attached"
        # Until the kernel's link watch sees the new carrier, the device's
        # queue drops what is sent, counting nothing and showing no capture.
        wait_until(
            lambda: netns.ip_json("link", "show", "dev", name)[0]["operstate"] != "DOWN",
            timeout=5,
            what=f"{name} to have carrier",
        )

    def close(self) -> list[bytes]:
        """Stop reading; return the packets read, in order."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        packets = [bytes.fromhex(p) for p in self.proc.stdout.readline().split()]
        self.proc.wait(timeout=10)
        return packets


def udp(count: int, size: int = 96) -> list[str]:
    """A command sending ``count`` UDP datagrams to 192.0.2.2:9 (run it in the namespace)."""
    code = (
        f"import socket, time\nSIZE = {size}\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"for i in range({count}):\n"
        "    while True:\n"
        "        try:\n"
        "            s.sendto(b'tungui' * (SIZE // 6), ('192.0.2.2', 9)); break\n"
        "        except OSError: time.sleep(0.001)\n"
    )
    return ["python3", "-c", code]


def udp_for(seconds: float, rate: int, size: int = 96) -> list[str]:
    """A command sending UDP datagrams to 192.0.2.2:9 at about ``rate`` a second
    for ``seconds``; it prints how many it sent (run it in the namespace)."""
    code = (
        "import socket, time\n"
        f"SIZE, RATE, SECONDS = {size}, {rate}, {seconds}\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "start = time.monotonic(); sent = 0\n"
        "while (now := time.monotonic() - start) < SECONDS:\n"
        "    while sent < now * RATE:\n"
        "        try:\n"
        "            s.sendto(b'tungui' * (SIZE // 6), ('192.0.2.2', 9)); sent += 1\n"
        "        except OSError: break\n"
        "    time.sleep(0.001)\n"
        "print(sent)\n"
    )
    return ["python3", "-c", code]
