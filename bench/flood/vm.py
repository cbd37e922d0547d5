"""The TAP ``flood0`` and the C program that holds it as a VM would and floods it."""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
from typing import IO

from tests.support.errors import StackError
from tests.support.netns import Netns
from tests.support.processes import die_with_parent, terminate

DEVICE = "flood0"
FRAME_BYTES = 106


# Holds the TAP as a VM would, and floods it on command: each line
# "RATE SECONDS" on stdin writes frames at RATE a second for SECONDS (or
# until SIGUSR1), then prints how many it wrote.  Pacing: as many frames as
# are due, at most 64 between two looks at the clock; sleep when ahead.
VM_C = r"""
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
static volatile sig_atomic_t stop;
static void on_usr1(int sig) { (void)sig; stop = 1; }
static double since(const struct timespec *start) {
    struct timespec now; clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) + (now.tv_nsec - start->tv_nsec) / 1e9;
}
int main(int argc, char **argv) {
    struct ifreq ifr; struct sigaction sa;
    int fd = open("/dev/net/tun", O_RDWR);
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
    if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0) { perror("tap"); return 1; }
    memset(&sa, 0, sizeof sa); sa.sa_handler = on_usr1; sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    /* 02:..:02 <- 02:..:01, IPv4 UDP 192.0.2.2:12345 -> 192.0.2.1:9, 64 bytes of payload */
    unsigned char f[106] = {
        0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00,
        0x45, 0, 0, 92, 0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 2, 192, 0, 2, 1,
        0x30, 0x39, 0, 9, 0, 72, 0, 0 };
    memcpy(f + 42, "tungui flood", 12);
    unsigned sum = 0;
    for (int i = 14; i < 34; i += 2) sum += f[i] << 8 | f[i + 1];
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    f[24] = ~sum >> 8; f[25] = ~sum & 0xff;
    printf("attached\n"); fflush(stdout);
    double rate, seconds;
    while (scanf("%lf %lf", &rate, &seconds) == 2) {
        struct timespec start; long sent = 0; double t;
        stop = 0;
        clock_gettime(CLOCK_MONOTONIC, &start);
        while (!stop && (t = since(&start)) < seconds) {
            if (rate <= 0) { usleep(10000); continue; }  /* no flood: just hold the TAP */
            long due = (long)(rate * t) + 1 - sent;
            if (due <= 0) {
                double wait = (sent + 1) / rate - t;
                struct timespec ts = { (time_t)wait, (long)((wait - (time_t)wait) * 1e9) };
                nanosleep(&ts, NULL);
                continue;
            }
            for (long i = 0; i < due && i < 64; i++)
                if (write(fd, f, sizeof f) > 0) sent++;
        }
        printf("%ld\n", sent); fflush(stdout);
    }
    return 0;
}
"""


class Vm:
    """The C program that holds ``flood0`` and writes frames into it."""

    def __init__(self, netns: Netns, binary: str) -> None:
        self.proc = subprocess.Popen(
            netns.exec_argv(binary, DEVICE),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "attached":
            raise StackError("the flood program could not attach to the TAP")
        self.written: queue.Queue[int] = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            self.written.put(int(line))

    def flood(self, rate: int, seconds: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{rate} {seconds}\n")
        self.proc.stdin.flush()

    def cut_short(self) -> None:
        self.proc.send_signal(signal.SIGUSR1)

    def stop(self) -> None:
        terminate(self.proc)


def rx_packets(netns: Netns) -> int:
    (link,) = netns.ip_json("-s", "link", "show", "dev", DEVICE)
    return int(link["stats64"]["rx"]["packets"])
