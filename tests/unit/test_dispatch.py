"""Authorization is structural: every method of the XML declares its action."""

from __future__ import annotations

from typing import Any

import pytest

from tungui_helper.contract import Action
from tungui_helper.dispatch import PUBLIC, Dispatcher, method
from tungui_helper.service import HelperService


def _bind(service: object) -> Any:
    return Dispatcher._bind(service)


def test_the_service_declares_every_method_of_the_contract() -> None:
    bound = _bind(HelperService.__new__(HelperService))
    assert set(bound) == {
        "ListDevices",
        "ListDevicesByFileDescriptor",
        "CreateDevice",
        "CreateBridge",
        "DeleteDevice",
        "ConfigureDevice",
        "GetPermissions",
        "Subscribe",
        "WatchStatistics",
        "UnwatchStatistics",
        "StartCapture",
        "InjectPacket",
    }
    public = {name for name, b in bound.items() if b.declaration.action is PUBLIC}
    assert public == {
        "ListDevices",
        "ListDevicesByFileDescriptor",
        "GetPermissions",
        "Subscribe",
        "WatchStatistics",
        "UnwatchStatistics",
    }, "only reading is free"


def test_a_method_without_a_declaration_cannot_be_exported() -> None:
    class Forgetful(HelperService):
        # Overriding without the decorator drops the declaration.
        async def create_device(self, caller: Any, spec: Any, *, authorized: Any) -> list[Any]:
            return ["tap0"]

    with pytest.raises(TypeError, match="CreateDevice is in the interface XML but has no handler"):
        _bind(Forgetful.__new__(Forgetful))


def test_a_handler_outside_the_contract_is_refused() -> None:
    class Extra(HelperService):
        @method("Reboot", action=Action.MANAGE)
        async def reboot(self, caller: Any) -> list[Any]:
            return []

    with pytest.raises(TypeError, match="not in the interface XML"):
        _bind(Extra.__new__(Extra))


def test_an_action_that_is_not_one_is_refused() -> None:
    class Sloppy(HelperService):
        @method("DeleteDevice", action="io.github.tungui.manage", parse=(str,))  # type: ignore[arg-type]
        async def delete_device(self, caller: Any, name: str, *, authorized: Any) -> list[Any]:
            return []

    with pytest.raises(TypeError, match="declares no polkit action"):
        _bind(Sloppy.__new__(Sloppy))


class _FakeBus:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, msg: Any) -> None:
        self.sent.append(msg)

    async def call(self, msg: Any) -> Any:
        """The bus driver's answer to GetConnectionCredentials: every caller is uid 1000."""
        from dbus_fast import Message, MessageType, Variant

        assert msg.member == "GetConnectionCredentials"
        credentials = {"UnixUserID": Variant("u", 1000), "ProcessID": Variant("u", 4242)}
        return Message(
            message_type=MessageType.METHOD_RETURN,
            reply_serial=1,
            signature="a{sv}",
            body=[credentials],
        )

    def add_message_handler(self, handler: Any) -> None:  # pragma: no cover - unused
        pass


class _SlowAuthority:
    """polkit as seen when one caller sits at a password prompt."""

    def __init__(self) -> None:
        import asyncio

        self.typing_password = asyncio.Event()
        self.interactive: dict[str, bool] = {}

    async def check(
        self, sender: str, action: Action, *, interactive: bool, details: Any = None
    ) -> Any:
        from tungui_helper.polkit import Decision

        self.interactive[sender] = interactive
        if sender == ":1.1":
            await self.typing_password.wait()
            return Decision.YES
        if sender == ":1.3":
            return Decision.AUTH
        return Decision.YES


def _call(sender: str, member: str = "CreateBridge", flags: int = 0) -> Any:
    from dbus_fast import Message

    from tungui_helper.contract import BUS_NAME, INTERFACE, OBJECT_PATH

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


def test_one_caller_at_a_password_prompt_does_not_block_another() -> None:
    import asyncio

    from dbus_fast import MessageFlag, MessageType

    async def scenario() -> None:
        bus = _FakeBus()
        service = HelperService(bus)  # type: ignore[arg-type]
        authority = _SlowAuthority()
        service.dispatcher._authority = authority  # type: ignore[assignment]

        async def create_bridge(spec: Any) -> str:
            return "br0"

        service.devices.create_bridge = create_bridge  # type: ignore[method-assign]
        interactive = int(MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION)
        assert service.dispatcher.handle(_call(":1.1", flags=interactive))
        assert service.dispatcher.handle(_call(":1.2"))
        while len(bus.sent) < 1:
            await asyncio.sleep(0)
        (first,) = bus.sent
        assert first.destination == ":1.2" and first.message_type == MessageType.METHOD_RETURN
        assert authority.interactive == {":1.1": True, ":1.2": False}
        authority.typing_password.set()
        while len(bus.sent) < 2:
            await asyncio.sleep(0)
        assert bus.sent[1].destination == ":1.1" and bus.sent[1].body == ["br0"]

        # Authentication needed but not allowed: a named error that says so.
        service.dispatcher.handle(_call(":1.3"))
        while len(bus.sent) < 3:
            await asyncio.sleep(0)
        refusal = bus.sent[2]
        assert refusal.error_name == "io.github.tungui.Error.NotAuthorized"
        assert "allowing interactive authorization" in refusal.body[0]
        service.devices.links.close()

    asyncio.run(scenario())


def test_an_unexpected_exception_sends_no_traceback() -> None:
    import asyncio

    async def scenario() -> None:
        bus = _FakeBus()
        service = HelperService(bus)  # type: ignore[arg-type]
        service.dispatcher._authority = _SlowAuthority()  # type: ignore[assignment]

        async def broken(spec: Any) -> str:
            raise ZeroDivisionError("secret internals at /usr/lib/python3/x.py line 3")

        service.devices.create_bridge = broken  # type: ignore[method-assign]
        service.dispatcher.handle(_call(":1.2"))
        while not bus.sent:
            await asyncio.sleep(0)
        (reply,) = bus.sent
        assert reply.error_name == "io.github.tungui.Error.Failed"
        assert "secret" not in reply.body[0] and "Traceback" not in reply.body[0]
        service.devices.links.close()

    asyncio.run(scenario())
