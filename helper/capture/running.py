"""The running captures: which source a device gets, the per-user cap, their ends."""

from __future__ import annotations

from tungui_contract.limits import Framing

from ..kernel import Queues
from ..limits import CAPTURES_PER_USER, Tally
from ..validate import CaptureOptions
from .held import HeldCapture
from .ring import RingCapture
from .stream import Capture


class Captures:
    """Every running capture; each ends when its reader closes or leaves the bus."""

    def __init__(self) -> None:
        self.running: set[Capture] = set()
        self._per_user = Tally(
            CAPTURES_PER_USER, "Your user already runs {cap} captures; close one first."
        )

    def start(
        self,
        device: str,
        framing: Framing,
        mtu: int,
        held: Queues | None,
        options: CaptureOptions,
        client: str,
        uid: int,
    ) -> Capture:
        """A capture of ``device`` for a client, counted against its user's cap.

        Args:
            framing: how packets are framed on the device's fd.
            held: the helper's queues of the device, if it holds it: then
                the helper, being the device's program, reads the device
                (unless another capture already does); else a packet socket
                does.
        """
        self._per_user.take(uid)

        def ended(capture: Capture) -> None:
            self.running.discard(capture)
            self._per_user.give_back(uid)

        capture: Capture
        try:
            if held is not None and not self.held(device):
                capture = HeldCapture(
                    device,
                    held,
                    prefix=framing.headers,
                    longest=framing.longest_frame(mtu),
                    options=options,
                    client=client,
                    on_end=ended,
                )
            else:
                capture = RingCapture(device, options, client, ended)
        except BaseException:
            self._per_user.give_back(uid)
            raise
        self.running.add(capture)
        return capture

    def held(self, device: str) -> HeldCapture | None:
        """The capture that reads a held device, if one does."""
        for capture in self.running:
            if isinstance(capture, HeldCapture) and capture.device == device:
                return capture
        return None

    def stop_for(self, client: str) -> None:
        """End every capture of a client that left the bus."""
        for capture in [c for c in self.running if c.client == client]:
            capture.stop()

    def stop_all(self) -> None:
        """End every capture."""
        for capture in list(self.running):
            capture.stop()
