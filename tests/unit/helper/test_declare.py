"""Authorization is structural: every method of the XML declares its actions."""

from __future__ import annotations

from typing import Any

import pytest

from tungui_contract.bus import Action
from tungui_helper.declare import PUBLIC, method, one_of
from tungui_helper.dispatch import Dispatcher
from tungui_helper.service import HelperService

from .fakebus import FakeBus, settle


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


def test_a_rule_must_come_with_the_actions_it_may_choose() -> None:
    # A bare rule hides which actions the method may need: refused.
    class Hidden(HelperService):
        @method("DeleteDevice", action=lambda self, caller, name: None, parse=(str,))  # type: ignore[arg-type]
        async def delete_device(self, caller: Any, name: str, *, authorized: Any) -> list[Any]:
            return []

    with pytest.raises(TypeError, match="declares no polkit action"):
        _bind(Hidden.__new__(Hidden))

    class Empty(HelperService):
        @method(
            "DeleteDevice",
            action=one_of(find=lambda self, name: (None, None), decide=lambda *_: None),  # type: ignore[arg-type]
            parse=(str,),
        )
        async def delete_device(self, caller: Any, name: str, *, authorized: Any) -> list[Any]:
            return []

    with pytest.raises(TypeError, match="declares no polkit action"):
        _bind(Empty.__new__(Empty))


def test_the_service_names_both_actions_where_each_device_method_is_declared() -> None:
    from tungui_helper.declare import OneOf

    declared = {
        d.member: d.action
        for d in (getattr(f, "_tungui_declaration", None) for f in vars(HelperService).values())
        if d is not None
    }
    both = frozenset({Action.MANAGE, Action.MANAGE_FOREIGN})
    for member in (
        "CreateDevice",
        "CreateBridge",
        "DeleteDevice",
        "ConfigureDevice",
        "InjectPacket",
    ):
        action = declared[member]
        assert isinstance(action, OneOf) and action.actions == both, member


def test_a_rule_that_picks_an_action_not_declared_is_refused() -> None:
    import asyncio

    from dbus_fast import Message

    from tungui_contract.bus import BUS_NAME, INTERFACE, OBJECT_PATH
    from tungui_helper.authorize import Authorization
    from tungui_helper.callers import Caller

    asked: list[Action] = []

    class Drifted(HelperService):
        @method(
            "DeleteDevice",
            parse=(str,),
            action=one_of(
                Action.MANAGE,
                find=lambda self, name: (None, None),
                decide=lambda *_: Authorization(Action.CAPTURE),
            ),
        )
        async def delete_device(
            self, caller: Caller, name: str, *, authorized: Authorization
        ) -> list[Any]:
            raise AssertionError("the handler ran")

    class Recording:
        async def check(self, caller: Caller, action: Action, **_: Any) -> Any:
            asked.append(action)
            raise AssertionError("polkit was asked")

    async def scenario() -> Message:
        bus = FakeBus()
        service = Drifted(bus)  # type: ignore[arg-type]
        service.dispatcher._authority = Recording()  # type: ignore[assignment]
        service.dispatcher.handle(
            Message(
                destination=BUS_NAME,
                path=OBJECT_PATH,
                interface=INTERFACE,
                member="DeleteDevice",
                signature="s",
                body=["tap7"],
                sender=":1.5",
                serial=3,
            )
        )
        await settle()
        service.devices.links.close()
        (reply,) = bus.sent
        assert isinstance(reply, Message)
        return reply

    reply = asyncio.run(scenario())
    assert reply.error_name == "io.github.tungui.Error.Failed"
    assert asked == []
