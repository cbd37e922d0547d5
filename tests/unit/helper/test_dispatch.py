"""The dispatcher: calls in flight, polkit prompts, replies, standard interfaces."""

from __future__ import annotations

from typing import Any

import pytest

from tungui_contract.bus import Action
from tungui_helper.declare import method, one_of
from tungui_helper.service import HelperService

from .fakebus import (
    FakeBus,
    HeldBus,
    PacedBus,
    SlowAuthority,
    limits_refusals,
    method_call,
    service_waiting_for_polkit,
    settle,
    standard_call,
)


def test_one_caller_at_a_password_prompt_does_not_block_another() -> None:
    import asyncio

    from dbus_fast import MessageFlag, MessageType

    async def scenario() -> None:
        bus = FakeBus()
        service = HelperService(bus)  # type: ignore[arg-type]
        authority = SlowAuthority()
        service.dispatcher._authority = authority  # type: ignore[assignment]

        async def create_bridge(spec: Any) -> str:
            return "br0"

        service.devices.create_bridge = create_bridge  # type: ignore[method-assign]
        interactive = int(MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION)
        assert service.dispatcher.handle(method_call(":1.1", flags=interactive))
        assert service.dispatcher.handle(method_call(":1.2"))
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
        service.dispatcher.handle(method_call(":1.3"))
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
        bus = FakeBus()
        service = HelperService(bus)  # type: ignore[arg-type]
        service.dispatcher._authority = SlowAuthority()  # type: ignore[assignment]

        async def broken(spec: Any) -> str:
            raise ZeroDivisionError("secret internals at /usr/lib/python3/x.py line 3")

        service.devices.create_bridge = broken  # type: ignore[method-assign]
        service.dispatcher.handle(method_call(":1.2"))
        while not bus.sent:
            await asyncio.sleep(0)
        (reply,) = bus.sent
        assert reply.error_name == "io.github.tungui.Error.Failed"
        assert "secret" not in reply.body[0] and "Traceback" not in reply.body[0]
        service.devices.links.close()

    asyncio.run(scenario())


def test_calls_in_flight_are_capped_per_connection_before_parsing() -> None:
    import asyncio

    from tungui_helper.limits import CALLS_PER_CONNECTION

    async def scenario() -> None:
        bus = HeldBus()
        service, stalled = service_waiting_for_polkit(bus)
        for _ in range(CALLS_PER_CONNECTION + 3):
            assert service.dispatcher.handle(method_call(":1.1"))
        # Refused at once, as each message arrived.
        refusals = limits_refusals(bus)
        assert len(refusals) == 3
        assert refusals[0] == (
            f"This connection already has {CALLS_PER_CONNECTION} calls in flight; "
            "wait for their answers."
        )
        await settle()
        assert stalled.calls == CALLS_PER_CONNECTION
        # Another connection of the same user still gets through.
        service.dispatcher.handle(method_call(":1.2"))
        await settle()
        assert stalled.calls == CALLS_PER_CONNECTION + 1
        service.devices.links.close()

    asyncio.run(scenario())


def test_calls_in_flight_are_capped_per_user_over_connections() -> None:
    import asyncio

    from tungui_helper.limits import CALLS_PER_CONNECTION, CALLS_PER_USER

    async def scenario() -> None:
        connections = CALLS_PER_USER // CALLS_PER_CONNECTION + 1
        bus = HeldBus({":9.1": 0})
        service, stalled = service_waiting_for_polkit(bus)
        for n in range(connections):
            for _ in range(CALLS_PER_CONNECTION):
                service.dispatcher.handle(method_call(f":1.{n}"))
        await settle()
        over = connections * CALLS_PER_CONNECTION - CALLS_PER_USER
        assert (
            limits_refusals(bus)
            == [f"Your user already has {CALLS_PER_USER} calls in flight; wait for their answers."]
            * over
        )
        assert stalled.calls == CALLS_PER_USER
        # Root is another user: its calls go on.
        service.dispatcher.handle(standard_call(":9.1", "ListDevices"))
        await settle()
        assert bus.sent[-1].message_type.name == "METHOD_RETURN", bus.sent[-1].body
        service.devices.links.close()

    asyncio.run(scenario())


def test_a_call_keeps_its_place_until_its_reply_is_written() -> None:
    import asyncio

    from tungui_helper.limits import CALLS_PER_CONNECTION

    async def scenario() -> None:
        bus = HeldBus()
        service = HelperService(bus)  # type: ignore[arg-type]
        for _ in range(CALLS_PER_CONNECTION):
            service.dispatcher.handle(standard_call(":1.1", "ListDevices"))
        await settle()
        assert len(bus.sent) == CALLS_PER_CONNECTION, "answered, not yet written"
        for member in ("ListDevices", "Introspect"):
            service.dispatcher.handle(standard_call(":1.1", member))
        assert len(limits_refusals(bus)) == 2
        bus.flush()
        await settle()
        service.dispatcher.handle(standard_call(":1.1", "Introspect"))
        await settle()
        assert bus.sent[-1].message_type.name == "METHOD_RETURN"
        service.devices.links.close()

    asyncio.run(scenario())


def test_rules_see_the_caller_and_their_details_go_to_polkit() -> None:
    import asyncio

    from tungui_helper.authorize import Authorization
    from tungui_helper.callers import Caller
    from tungui_helper.polkit import Decision

    seen: list[Any] = []

    class Detailed(HelperService):
        @method(
            "DeleteDevice",
            parse=(str,),
            action=one_of(
                Action.MANAGE,
                find=lambda self, name: (None, None),
                decide=lambda self, caller, device, bridge, name: Authorization(
                    Action.MANAGE, {"device": name}, index=7
                ),
            ),
        )
        async def delete_device(
            self, caller: Caller, name: str, *, authorized: Authorization
        ) -> list[Any]:
            seen.append(("handler", caller.uid, name, authorized.index))
            # Asked again under the device lock, the declared rule answers.
            assert authorized.recheck is not None
            assert authorized.recheck(None, None) == authorized
            return []

    class Recording:
        async def check(
            self, caller: Caller, action: Action, *, interactive: bool, details: Any = None
        ) -> Decision:
            seen.append(("polkit", caller.name, caller.uid, action, dict(details)))
            return Decision.YES

    async def scenario() -> None:
        from dbus_fast import Message

        from tungui_contract.bus import BUS_NAME, INTERFACE, OBJECT_PATH

        bus = FakeBus()
        service = Detailed(bus)  # type: ignore[arg-type]
        service.dispatcher._authority = Recording()  # type: ignore[assignment]
        call = Message(
            destination=BUS_NAME,
            path=OBJECT_PATH,
            interface=INTERFACE,
            member="DeleteDevice",
            signature="s",
            body=["tap7"],
            sender=":1.5",
            serial=3,
        )
        service.dispatcher.handle(call)
        await settle()
        service.devices.links.close()

    asyncio.run(scenario())
    assert seen == [
        ("polkit", ":1.5", 1005, Action.MANAGE, {"device": "tap7"}),
        ("handler", 1005, "tap7", 7),
    ]


def test_an_unknown_property_is_named_cut_short() -> None:
    import asyncio

    from dbus_fast import Message

    from tungui_contract.bus import BUS_NAME, INTERFACE, OBJECT_PATH

    async def scenario() -> Any:
        bus = FakeBus()
        service = HelperService(bus)  # type: ignore[arg-type]
        assert service.dispatcher.handle(
            Message(
                destination=BUS_NAME,
                path=OBJECT_PATH,
                interface="org.freedesktop.DBus.Properties",
                member="Get",
                signature="ss",
                body=[INTERFACE, "\x01" * 1_000_000],
                sender=":1.5",
                serial=3,
            )
        )
        await settle()
        service.devices.links.close()
        return bus.sent[-1]

    reply = asyncio.run(scenario())
    assert reply.error_name == "org.freedesktop.DBus.Error.UnknownProperty"
    assert len(reply.body[0]) < 300


def test_signals_never_pile_up_while_the_bus_is_slow() -> None:
    import asyncio

    from tungui_helper.signals import SIGNAL_INTERVAL
    from tungui_helper.table import Delta

    async def scenario() -> None:
        bus = HeldBus()
        service = HelperService(bus)  # type: ignore[arg-type]

        def members() -> list[str]:
            return [m.member for m in bus.sent]

        # Statistics: a tick while the last waits is skipped (counters are totals).
        service.signals.statistics(1, [("tap0", 1, 2, 3, 4, 5, 6, 7, 8)])
        service.signals.statistics(2, [("tap0", 2, 3, 4, 5, 6, 7, 8, 9)])
        assert members() == ["Statistics"]
        # DevicesChanged: changes gather while the last one waits, then go as one.
        service.signals.changed(Delta(removed={1: "tap1"}))
        await asyncio.sleep(SIGNAL_INTERVAL * 1.5)
        for n in range(2, 6):
            service.signals.changed(Delta(removed={n: f"tap{n}"}))
            await asyncio.sleep(SIGNAL_INTERVAL * 1.5)
        assert members() == ["Statistics", "DevicesChanged"]
        bus.flush()
        await asyncio.sleep(SIGNAL_INTERVAL * 1.5)
        assert members() == ["Statistics", "DevicesChanged", "DevicesChanged"]
        assert bus.sent[-1].body == [[], ["tap2", "tap3", "tap4", "tap5"]]
        service.signals.statistics(3, [("tap0", 3, 4, 5, 6, 7, 8, 9, 10)])
        assert members()[-1] == "Statistics"
        service.devices.links.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("path", ["/io/github/tungui/Helper1", "/", "/elsewhere"])
def test_peer_is_answered_on_every_path_without_a_traceback(path: str) -> None:
    from dbus_fast import Message, MessageType

    from tungui_helper import standard

    def call(member: str) -> Any:
        return Message(
            destination="io.github.tungui.Helper1",
            path=path,
            interface=standard.PEER,
            member=member,
            sender=":1.9",
            serial=4,
        )

    assert standard.peer_reply(call("Ping")).message_type == MessageType.METHOD_RETURN
    for _ in range(2):  # dbus-fast 1.84's own failed the second time
        reply = standard.peer_reply(call("GetMachineId"))
        if reply.message_type == MessageType.METHOD_RETURN:
            assert len(reply.body[0]) == 32
        else:
            assert reply.body == ["This machine has no machine id."]
    unknown = standard.peer_reply(call("Reboot"))
    assert unknown.error_name == standard.DBUS_UNKNOWN_METHOD
    assert "Traceback" not in unknown.body[0]


def test_one_users_flood_delays_another_users_call_by_one_call_at_most() -> None:
    import asyncio

    from tungui_helper.limits import CALLS_PER_CONNECTION

    async def scenario() -> list[str | None]:
        # Two connections of uid 1000 (the flood), one of root; the bus daemon
        # has already said who they are.
        flood = [":1.1", ":1.2"]
        bus = HeldBus({":9.1": 0})
        service = HelperService(bus)  # type: ignore[arg-type]
        for name in [*flood, ":9.1"]:
            await service.callers.resolve(name)
        # As one read of the socket hands them in: the flood's calls, as many
        # as its caps allow, the free methods in turn, then root's one call.
        members = ["ListDevices", "Introspect"]
        for n in range(CALLS_PER_CONNECTION):
            for name in flood:
                service.dispatcher.handle(standard_call(name, members[n % len(members)]))
        service.dispatcher.handle(standard_call(":9.1", "ListDevices"))
        await settle()
        service.devices.links.close()
        return [m.destination for m in bus.sent if m.error_name is None]

    answered = asyncio.run(scenario())
    assert len(answered) == 2 * CALLS_PER_CONNECTION + 1
    # In arrival order root's call would be the last; in turns it is second.
    assert answered.index(":9.1") == 1


def test_no_call_starts_while_replies_wait_for_the_socket() -> None:
    import asyncio

    from tungui_helper.limits import CALLS_PER_CONNECTION

    async def scenario() -> None:
        flood = [":1.1", ":1.2"]
        bus = PacedBus({":9.1": 0})
        service = HelperService(bus)  # type: ignore[arg-type]
        for name in [*flood, ":9.1"]:
            await service.callers.resolve(name)
        for _ in range(CALLS_PER_CONNECTION):
            for name in flood:
                service.dispatcher.handle(standard_call(name, "ListDevices"))
        await settle()
        # The first reply waits for the socket: the other calls wait in line.
        assert [m.destination for m in bus.sent] == [":1.1"]
        # Root's call comes while they wait.  It is answered after one more
        # of the flood's (uid 1000 had its turn before root lined up), not
        # behind the 31 replies the flood would otherwise have queued.
        service.dispatcher.handle(standard_call(":9.1", "ListDevices"))
        while len(bus.sent) < 2 * CALLS_PER_CONNECTION + 1:
            bus.flush()
            await settle()
            assert len(bus.unwritten) == 1, "one reply at a time waits for the socket"
        assert [m.destination for m in bus.sent][:3] == [":1.1", ":1.2", ":9.1"]
        assert not any(m.error_name for m in bus.sent)
        service.devices.links.close()

    asyncio.run(scenario())


def test_a_users_calls_of_the_standard_interfaces_count_against_their_cap() -> None:
    import asyncio

    from tungui_helper.limits import CALLS_PER_CONNECTION, CALLS_PER_USER

    async def scenario() -> None:
        connections = CALLS_PER_USER // CALLS_PER_CONNECTION
        bus = HeldBus()
        service, stalled = service_waiting_for_polkit(bus)
        for n in range(connections):
            for _ in range(CALLS_PER_CONNECTION):
                service.dispatcher.handle(method_call(f":1.{n}"))
        await settle()
        assert stalled.calls == CALLS_PER_USER
        # Another connection of the same user: Introspect, Peer and Properties
        # are calls in flight too.
        service.dispatcher.handle(standard_call(":1.99", "Introspect"))
        await settle()
        assert limits_refusals(bus) == [
            f"Your user already has {CALLS_PER_USER} calls in flight; wait for their answers."
        ]
        service.devices.links.close()

    asyncio.run(scenario())


def test_refusals_wait_for_their_users_turn_too() -> None:
    import asyncio

    from tungui_helper.limits import CALLS_PER_CONNECTION, CALLS_PER_USER

    async def scenario() -> None:
        flood = [f":1.{n}" for n in range(CALLS_PER_USER // CALLS_PER_CONNECTION + 1)]
        bus = PacedBus({":9.1": 0})
        service = HelperService(bus)  # type: ignore[arg-type]
        for name in [*flood, ":9.1"]:
            await service.callers.resolve(name)
        for name in flood:
            for _ in range(CALLS_PER_CONNECTION):
                service.dispatcher.handle(standard_call(name, "Introspect"))
        await settle()
        # One answer waits for the socket; the refusals wait in line too, rather
        # than piling up in the socket ahead of everyone else's replies.
        assert len(bus.sent) == 1
        service.dispatcher.handle(standard_call(":9.1", "ListDevices"))
        while len(bus.sent) < len(flood) * CALLS_PER_CONNECTION + 1:
            bus.flush()
            await settle()
        assert [m.destination for m in bus.sent].index(":9.1") == 2
        assert len(limits_refusals(bus)) == CALLS_PER_CONNECTION
        service.devices.links.close()

    asyncio.run(scenario())
