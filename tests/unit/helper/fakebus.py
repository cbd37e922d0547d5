"""Stand-ins for the bus and polkit, for the dispatcher's unit tests."""

from __future__ import annotations

from typing import Any

from tungui_contract.bus import Action
from tungui_helper.service import HelperService


class FakeBus:
    """Sends into a list; its daemon says caller :1.N is uid 1000 + N."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, msg: Any) -> Any:
        import asyncio

        self.sent.append(msg)
        written = asyncio.get_running_loop().create_future()
        written.set_result(None)
        return written

    async def call(self, msg: Any) -> Any:
        from dbus_fast import Message, Variant

        assert msg.member == "GetConnectionCredentials"
        msg.serial = 1
        uid = 1000 + int(msg.body[0].rsplit(".", 1)[1])
        return Message.new_method_return(msg, "a{sv}", [{"UnixUserID": Variant("u", uid)}])

    def add_message_handler(self, handler: Any) -> None:  # pragma: no cover - unused
        pass


class SlowAuthority:
    """polkit as seen when one caller sits at a password prompt."""

    def __init__(self) -> None:
        import asyncio

        self.typing_password = asyncio.Event()
        self.interactive: dict[str, bool] = {}

    async def check(
        self, caller: Any, action: Action, *, interactive: bool, details: Any = None
    ) -> Any:
        from tungui_helper.polkit import Decision

        self.interactive[caller.name] = interactive
        if caller.name == ":1.1":
            await self.typing_password.wait()
            return Decision.YES
        if caller.name == ":1.3":
            return Decision.AUTH
        return Decision.YES


def method_call(sender: str, member: str = "CreateBridge", flags: int = 0) -> Any:
    from dbus_fast import Message

    from tungui_contract.bus import BUS_NAME, INTERFACE, OBJECT_PATH

    return Message(
        destination=BUS_NAME,
        path=OBJECT_PATH,
        interface=INTERFACE,
        member=member,
        signature="a{sv}",
        body=[{}],
        sender=sender,
        serial=7,
        flags=flags,
    )


class HeldBus(FakeBus):
    """A bus whose socket takes nothing until ``flush``; uids from ``uids`` (default 1000)."""

    def __init__(self, uids: dict[str, int] | None = None) -> None:
        super().__init__()
        self.uids = uids or {}
        self.unwritten: list[Any] = []

    def send(self, msg: Any) -> Any:
        import asyncio

        self.sent.append(msg)
        written = asyncio.get_running_loop().create_future()
        self.unwritten.append(written)
        return written

    def flush(self) -> None:
        for written in self.unwritten:
            written.set_result(None)
        self.unwritten.clear()

    async def call(self, msg: Any) -> Any:
        from dbus_fast import Message, Variant

        msg.serial = 1
        uid = self.uids.get(msg.body[0], 1000)
        return Message.new_method_return(msg, "a{sv}", [{"UnixUserID": Variant("u", uid)}])


class PacedBus(HeldBus):
    """A HeldBus that says when its socket has taken every message, as HelperBus does."""

    def __init__(self, uids: dict[str, int] | None = None) -> None:
        super().__init__(uids)
        self.callbacks: list[Any] = []

    def when_written(self, callback: Any) -> bool:
        if not self.unwritten:
            return False
        self.callbacks.append(callback)
        return True

    def flush(self) -> None:
        super().flush()
        callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            callback()


async def settle() -> None:
    """Let the loop go round until every call handed in so far has had its turn.

    The dispatcher starts one call per round of the loop (see turns.Turns),
    so this goes round more often than any test here hands in calls.
    """
    import asyncio

    for _ in range(400):
        await asyncio.sleep(0)


def limits_refusals(bus: FakeBus) -> list[str]:
    return [m.body[0] for m in bus.sent if m.error_name == "io.github.tungui.Error.LimitsExceeded"]


def service_waiting_for_polkit(bus: FakeBus) -> Any:
    """A service whose polkit never answers (every check waits)."""
    import asyncio

    service = HelperService(bus)  # type: ignore[arg-type]

    class Stalled:
        calls = 0

        async def check(self, *args: Any, **kwargs: Any) -> Any:
            Stalled.calls += 1
            await asyncio.Event().wait()

    service.dispatcher._authority = Stalled()  # type: ignore[assignment]
    return service, Stalled


def standard_call(sender: str, member: str) -> Any:
    from dbus_fast import Message

    from tungui_contract.bus import BUS_NAME, INTERFACE, OBJECT_PATH

    interface = "org.freedesktop.DBus.Introspectable" if member == "Introspect" else INTERFACE
    return Message(
        destination=BUS_NAME,
        path=OBJECT_PATH,
        interface=interface,
        member=member,
        sender=sender,
        serial=8,
    )
