"""The packet window, fed a capture stream through a socket pair."""

from __future__ import annotations

import shutil
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.support.tshark import tshark_fields
from tungui.gui.capture.model import PacketModel
from tungui.gui.capture.reader import StreamReader
from tungui.gui.capture.window import LIVE_RATE, PacketWindow
from tungui_contract.capture import CAPTURE_FORMAT_BLOCK, CAPTURE_HEADER, CAPTURE_RATE
from tungui_contract.device import Device

ARP_REQUEST = bytes.fromhex(
    "ffffffffffff02005e1000010806000108000604000102005e100001c0000201000000000000c0000202"
)


def record(data: bytes, timestamp_ns: int, *, dropped: int = 0, outgoing: bool = False) -> bytes:
    """One stream message: a TPACKET_V3 block holding one packet, as the kernel lays it out."""
    first = 48  # sizeof(struct tpacket_block_desc), aligned
    mac = 48 + 32  # after tpacket3_hdr and sockaddr_ll, aligned
    header = struct.pack(
        "=IIIIIIHH",
        0,
        timestamp_ns // 10**9,
        timestamp_ns % 10**9,
        len(data),
        len(data),
        0,
        mac,
        mac,
    ) + bytes(20)
    sockaddr = struct.pack("=HHiHBB8s", 17, 0x0300, 2, 1, 4 if outgoing else 0, 6, b"")
    packet = (header + sockaddr).ljust(mac, b"\0") + data
    desc = struct.pack("=IIIIIIQ16s", 3, 0, 1, 1, first, first + len(packet), 1, b"")
    return (
        CAPTURE_HEADER.pack(dropped, 0, CAPTURE_FORMAT_BLOCK, 0) + desc.ljust(first, b"\0") + packet
    )


@pytest.fixture
def window(qtbot: Any) -> Any:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    win = PacketWindow(Device(name="tap0", kind="tap"), theirs)
    qtbot.addWidget(win)
    win.show()
    yield win, ours
    ours.close()


def test_packets_are_listed_decoded_and_shown_as_bytes(qtbot: Any, window: Any) -> None:
    win, stream = window
    for i in range(3):
        stream.send(record(ARP_REQUEST, 1_700_000_000_000_000_000 + i * 1_000_000, dropped=2))
    qtbot.waitUntil(lambda: win.model.rowCount() == 3, timeout=5000)
    assert win.model.index(0, 4).data() == "ARP"
    assert win.model.index(0, 5).data() == "ARP who-has 192.0.2.2 tell 192.0.2.1"
    assert win.model.index(1, 1).data() == "0.001000"
    win.table.selectRow(0)
    assert win.hex.data() == ARP_REQUEST
    win._update_status()
    assert "3 packets" in win.status.text() and "2 dropped" in win.status.text()


def test_paused_packets_are_counted_not_shown(qtbot: Any, window: Any) -> None:
    win, stream = window
    win.pause_action.setChecked(True)
    stream.send(record(ARP_REQUEST, 1))
    qtbot.waitUntil(lambda: win.not_shown == 1, timeout=5000)
    assert win.model.rowCount() == 0
    win.pause_action.setChecked(False)
    stream.send(record(ARP_REQUEST, 2))
    qtbot.waitUntil(lambda: win.model.rowCount() == 1, timeout=5000)


def test_the_list_is_bounded() -> None:
    from tungui.packets.stream import parse_message

    model = PacketModel("ethernet", limit=100)
    model.add(p for i in range(250) for p in parse_message(record(ARP_REQUEST, i)))
    assert model.rowCount() == 100 and model.pushed_out == 150
    assert model.row(0).number == 151


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_saved_pcapng_opens_in_tshark(qtbot: Any, window: Any, tmp_path: Path) -> None:
    win, stream = window
    for i in range(4):
        stream.send(record(ARP_REQUEST, 1_700_000_000_123_456_789 + i))
    qtbot.waitUntil(lambda: win.model.rowCount() == 4, timeout=5000)
    path = tmp_path / "tap0.pcapng"
    assert win.save(str(path)) == 4
    rows = tshark_fields(path, "_ws.col.Protocol", "frame.len", "frame.time_epoch")[:4]
    assert [row[:2] for row in rows] == [["ARP", str(len(ARP_REQUEST))]] * 4
    assert rows[0][2].startswith("1700000000.123456789")


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_capture_to_file_writes_every_packet_until_stopped(
    qtbot: Any, window: Any, tmp_path: Path
) -> None:
    win, stream = window
    path = tmp_path / "live.pcapng"
    win.start_file(str(path))
    win.pause_action.setChecked(True)  # paused packets still go to the file
    for i in range(5):
        stream.send(record(ARP_REQUEST, 1_700_000_000_000_000_000 + i, outgoing=bool(i % 2)))
    qtbot.waitUntil(lambda: win.file_packets == 5, timeout=5000)
    win.stop_file()
    stream.send(record(ARP_REQUEST, 2_000_000_000_000_000_000))
    qtbot.waitUntil(lambda: win.not_shown == 6, timeout=5000)
    assert tshark_fields(path, "frame.number") == [["1"], ["2"], ["3"], ["4"], ["5"]]
    assert not win.file_action.isChecked()


def test_a_flood_is_bounded_on_the_way_to_the_list(qtbot: Any) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    reader = StreamReader(theirs, pending_max=100)
    ready = []
    reader.ready.connect(lambda: ready.append(1))
    reader.start()
    try:
        for i in range(300):  # faster than anyone takes them: nothing runs Qt's loop
            ours.send(record(ARP_REQUEST, i))
        qtbot.waitUntil(lambda: reader.skipped == 200, timeout=5000)
        packets = reader.take()
        assert [p.timestamp_ns for p in packets] == list(range(200, 300)), "the newest are kept"
        qtbot.waitUntil(lambda: len(ready) == 1, timeout=5000)
        assert len(ready) == 1, "one signal on its way at a time"
    finally:
        reader.stop()
        ours.close()


def test_a_capture_file_asks_the_helper_for_every_packet_then_for_the_live_rate(
    qtbot: Any, window: Any, tmp_path: Path
) -> None:
    win, stream = window
    stream.settimeout(5)
    win.start_file(str(tmp_path / "all.pcapng"))
    assert CAPTURE_RATE.unpack(stream.recv(64)) == (0,), "every packet, on the same stream"
    stream.send(record(ARP_REQUEST, 1))
    qtbot.waitUntil(lambda: win.file_packets == 1, timeout=5000)
    win.stop_file()
    assert CAPTURE_RATE.unpack(stream.recv(64)) == (LIVE_RATE,)
    stream.send(record(ARP_REQUEST, 2))
    qtbot.waitUntil(lambda: win.model.rowCount() == 2, timeout=5000)
    assert win.file_packets == 1
