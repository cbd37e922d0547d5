"""Hand-made links, as the helper's netlink parser would report them."""

from __future__ import annotations

from tungui_helper.netlink import LinkInfo


def link(index: int, name: str, kind: str = "tap", **changes: object) -> LinkInfo:
    """A link with plain defaults (down, MTU 1500, no bridge, no alias); ``changes`` override."""
    values: dict[str, object] = dict(
        index=index,
        name=name,
        kind=kind,
        mtu=1500,
        mac="02:00:00:00:00:01",
        up=False,
        operstate="down",
        master=0,
        alias="",
    )
    values.update(changes)
    return LinkInfo(**values)  # type: ignore[arg-type]
