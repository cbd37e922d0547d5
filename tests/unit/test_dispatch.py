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
        "ListDevices", "CreateDevice", "CreateBridge", "DeleteDevice", "ConfigureDevice",
        "GetPermissions",
    }
    public = {name for name, b in bound.items() if b.declaration.action is PUBLIC}
    assert public == {"ListDevices", "GetPermissions"}, "only reading is free"


def test_a_method_without_a_declaration_cannot_be_exported() -> None:
    class Forgetful(HelperService):
        # Overriding without the decorator drops the declaration.
        async def create_device(self, sender: str, spec: Any) -> list[Any]:  # type: ignore[override]
            return ["tap0"]

    with pytest.raises(TypeError, match="CreateDevice is in the interface XML but has no handler"):
        _bind(Forgetful.__new__(Forgetful))


def test_a_handler_outside_the_contract_is_refused() -> None:
    class Extra(HelperService):
        @method("Reboot", action=Action.MANAGE)
        async def reboot(self, sender: str) -> list[Any]:
            return []

    with pytest.raises(TypeError, match="not in the interface XML"):
        _bind(Extra.__new__(Extra))


def test_an_action_that_is_not_one_is_refused() -> None:
    class Sloppy(HelperService):
        @method("DeleteDevice", action="io.github.tungui.manage", parse=(str,))  # type: ignore[arg-type]
        async def delete_device(self, sender: str, name: str) -> list[Any]:
            return []

    with pytest.raises(TypeError, match="declares no polkit action"):
        _bind(Sloppy.__new__(Sloppy))
