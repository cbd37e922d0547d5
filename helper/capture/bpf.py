"""The classic BPF program a ring capture runs in the kernel: cut, and sample at random.

The kernel cuts each packet to the snap length before it reaches the ring,
and, when :class:`~.sampler.Sampler` says to keep one packet in N, drops
the others with ``ld rand`` (the packet socket counts them nowhere; the
capture counts them itself).
"""

from __future__ import annotations

import ctypes
import socket
import struct

SO_ATTACH_FILTER = 26
_U32 = 0xFFFFFFFF

# Classic BPF (linux/filter.h, linux/bpf_common.h).
_BPF_RET_K = 0x06
_BPF_LD_W_ABS = 0x20
_BPF_ALU_MOD_K = 0x94
_BPF_JEQ_K = 0x15
_SKF_AD_RANDOM = (-0x1000 + 56) & _U32
_INSN = struct.Struct("=HBBI")


def capture_filter(snaplen: int, keep_one_in: int = 1) -> bytes:
    """A classic BPF program: packets cut to ``snaplen``, one in ``keep_one_in`` kept at random."""
    if keep_one_in <= 1:
        return _INSN.pack(_BPF_RET_K, 0, 0, snaplen)
    return b"".join(
        (
            _INSN.pack(_BPF_LD_W_ABS, 0, 0, _SKF_AD_RANDOM),  # A = a random u32
            _INSN.pack(_BPF_ALU_MOD_K, 0, 0, keep_one_in),  # A %= N
            _INSN.pack(_BPF_JEQ_K, 0, 1, 0),  # A == 0: keep it
            _INSN.pack(_BPF_RET_K, 0, 0, snaplen),
            _INSN.pack(_BPF_RET_K, 0, 0, 0),
        )
    )


def attach_filter(sock: socket.socket, program: bytes) -> None:
    """Attach (or replace) a classic BPF program."""
    buffer = bytearray(program)
    fprog = struct.pack("HL", len(program) // _INSN.size, _address_of(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _address_of(buffer: bytearray) -> int:
    """The address of a buffer, for struct sock_fprog."""
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))
