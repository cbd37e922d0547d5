"""How much of the helper one user may hold or keep busy, and what that adds up to.

Every local user can reach the helper, and one user can open many
connections (the system bus allows 256 per user), so the caps are per uid;
the cap per connection only keeps one connection from taking its user's
whole share at once.  A call over a cap is refused with ``LimitsExceeded``
and a sentence naming the cap, before it is parsed; nothing else happens.
(Over the cap per connection the refusal goes at once; over the cap per
user it goes in the user's turn, see :mod:`.turns`.)

Root is capped like everyone: a root client that floods the helper is a
bug to notice, and the caps are far above what the window and tunguictl
use (a handful of calls at once, a few captures).

What one user can make the helper hold at the caps:

- descriptors: 8 captures x 4 (a packet socket and the duplicate its ring's
  mmap keeps, or a held device's wake pipe; the helper's end of the stream;
  the caller's end until the reply is written), 64 queues of transient
  devices (plus as many duplicates while a capture reads one of them), and
  about 1 per call in flight (a listing's memfd, a queue opened to inject a
  packet): 32 + 128 + 32 = 192, so 200;
- memory: 8 captures x (4 MiB ring + 8 MiB stream buffer) = 96 MiB in the
  kernel, and replies waiting for a slow bus, at most 32 calls x ~0.5 MiB
  (ListDevices with 1,000 devices) = 16 MiB;
- polkit: 32 checks at once, of which 4 may wait at a password prompt.

So the helper needs about ``BASE_FDS + users x FDS_PER_USER`` descriptors:
LimitNOFILE=16384 lets 80 users sit at every cap at once.  Received fds
never add up: they are closed as each message is read (see
:mod:`.connection`).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Final

from tungui_contract.errors import LimitsExceeded

#: Calls of one connection in flight (parsed, waiting for polkit, acting, or
#: their reply waiting for the bus); counted as each message arrives.
CALLS_PER_CONNECTION: Final = 16
#: Calls of one user in flight, over all of its connections, counted once
#: the caller's uid is known; those of the standard interfaces (Introspect,
#: Properties, Peer) too.  This is also the most polkit checks one user can
#: have on their way: a call asks one question at a time.
CALLS_PER_USER: Final = 32
#: Calls of one user waiting for polkit with a password prompt allowed: a
#: person types one password at a time; each may wait INTERACTIVE_TIMEOUT.
PROMPTS_PER_USER: Final = 4
#: polkit checks on their way at once, over all users.  The system bus lets
#: a connection wait for 128 replies at most (max_replies_per_connection)
#: and then refuses every further call of it; polkit is the only peer the
#: helper calls (the bus daemon answers its own methods at once), so this
#: keeps the helper below the bus's limit whatever its callers do.
POLKIT_CHECKS: Final = 100

#: Captures one user may run at once (each pins a ring and a stream buffer).
CAPTURES_PER_USER: Final = 8
#: Transient devices the helper may hold for one user (they live as long as
#: the caller's connection).
TRANSIENT_DEVICES_PER_USER: Final = 16
#: Queue descriptors of those devices together (a multi-queue device holds
#: one per queue, up to 256).
HELD_QUEUES_PER_USER: Final = 64

#: Seconds polkit may take to answer a check that may not ask for a password.
CHECK_TIMEOUT: Final = 25.0
#: Seconds a person has to type a password when polkit asks for one.
INTERACTIVE_TIMEOUT: Final = 300.0

#: Descriptors one user can make the helper hold at the caps (see above).
FDS_PER_USER: Final = 200
#: Descriptors of the helper itself: the bus, netlink, its worker, listing
#: files, Python's own, with room to spare.
BASE_FDS: Final = 64


class Tally:
    """How many of something each key (a bus name, a uid) holds, against a cap.

    Args:
        cap: the most any one key may hold.
        refusal: the sentence a caller over the cap gets, with ``{cap}``.
    """

    def __init__(self, cap: int, refusal: str) -> None:
        self.cap = cap
        self._refusal = refusal
        self._counts: Counter[Hashable] = Counter()

    def __getitem__(self, key: Hashable) -> int:
        return self._counts[key]

    def __len__(self) -> int:
        """How many keys hold something."""
        return len(self._counts)

    def take(self, key: Hashable, amount: int = 1) -> None:
        """Count ``amount`` more for ``key``, or raise LimitsExceeded and count nothing."""
        if self._counts[key] + amount > self.cap:
            raise LimitsExceeded(self._refusal.format(cap=self.cap))
        self._counts[key] += amount

    def give_back(self, key: Hashable, amount: int = 1) -> None:
        """Count ``amount`` fewer for ``key``; a key that holds nothing is forgotten."""
        left = self._counts[key] - amount
        if left > 0:
            self._counts[key] = left
        else:
            self._counts.pop(key, None)


class TransientCaps:
    """Caps the transient devices held for each user, and their queues.

    The device manager keeps its holdings by bus name; a user's are those of
    every connection of that uid.  Devices on their way count too, so calls
    made at once cannot pass the cap together.

    Args:
        holdings: the held devices now, as (client's bus name, queues held).
        uid_of: the uid behind a bus name, None if unknown.
    """

    def __init__(
        self,
        holdings: Callable[[], Iterable[tuple[str, int]]],
        uid_of: Callable[[str], int | None],
    ) -> None:
        self._holdings = holdings
        self._uid_of = uid_of
        self._devices_on_their_way = Counter[int]()
        self._queues_on_their_way = Counter[int]()

    def held(self, uid: int) -> tuple[int, int]:
        """The transient devices held for ``uid`` (made or on their way), and their queues."""
        devices = self._devices_on_their_way[uid]
        queues = self._queues_on_their_way[uid]
        for client, held in self._holdings():
            if self._uid_of(client) == uid:
                devices += 1
                queues += held
        return devices, queues

    @contextlib.contextmanager
    def making(self, uid: int, queues: int) -> Iterator[None]:
        """Count one more device of ``queues`` queues for ``uid`` while it is made.

        Raises:
            LimitsExceeded: the user would hold too many transient devices or queues.
        """
        devices, held = self.held(uid)
        if devices + 1 > TRANSIENT_DEVICES_PER_USER:
            raise LimitsExceeded(
                f"Your user already has {TRANSIENT_DEVICES_PER_USER} transient devices; "
                "remove one or make it persistent first."
            )
        if held + queues > HELD_QUEUES_PER_USER:
            raise LimitsExceeded(
                f"Your user's transient devices would have more than {HELD_QUEUES_PER_USER} "
                f"queues (they have {held}; this asks for {queues})."
            )
        self._devices_on_their_way[uid] += 1
        self._queues_on_their_way[uid] += queues
        try:
            yield
        finally:
            self._devices_on_their_way[uid] -= 1
            self._queues_on_their_way[uid] -= queues
            if not self._devices_on_their_way[uid]:
                self._devices_on_their_way.pop(uid, None)
                self._queues_on_their_way.pop(uid, None)
