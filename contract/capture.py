"""The capture stream's messages (StartCapture), as both sides read and write them.

docs/dbus.md describes both formats; ``tungui_helper.capture`` writes them
and ``tungui.packets.stream`` reads them.
"""

from __future__ import annotations

import struct

#: Each message on a capture stream begins with this header (native byte
#: order): packets dropped so far, by the kernel or because the reader was
#: slow (u32); packets left out so far by sampling (u32, estimated when the
#: kernel samples); the format of the rest (u32, below); and a reserved u32
#: (0).
CAPTURE_HEADER = struct.Struct("=IIII")
#: The rest is one TPACKET_V3 block exactly as the kernel filled it (a
#: packet socket's ring: devices the helper does not hold).
CAPTURE_FORMAT_BLOCK = 0
#: The rest is packets the helper read from a device it holds: a
#: CAPTURE_SLOTS header, a u32 length per packet (:data:`INCOMING` set for a
#: packet going into the device, that the helper wrote for InjectPacket),
#: padding to 8 bytes, a u64 timestamp per packet (ns, CLOCK_REALTIME, taken
#: when the reader woke for it), then one slot of ``stride`` bytes per
#: packet: ``prefix`` bytes of packet information / virtio-net header, then
#: the packet, of which ``snaplen`` bytes count.
CAPTURE_FORMAT_SLOTS = 1
#: count, stride, prefix, snaplen.
CAPTURE_SLOTS = struct.Struct("=IIII")
#: In a slots message, a length with this bit set: the packet went into the
#: device (InjectPacket) rather than out of it.
INCOMING = 1 << 31
#: The one message a reader may write on its stream: the packets a second it
#: wants at most from now on (0: every packet), as StartCapture's max_rate.
CAPTURE_RATE = struct.Struct("=I")
CAPTURE_MAX_SNAPLEN = 262144
CAPTURE_MIN_SNAPLEN = 64
#: No message on a capture stream is longer.
CAPTURE_MESSAGE_MAX = CAPTURE_HEADER.size + (1 << 18)
