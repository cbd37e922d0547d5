"""Calls a person started: submitted to the bus thread, told in the window.

Every call a person started allows interactive authorization, so polkit can
show the desktop's password dialog; the window goes on while it waits.  The
status line says what is under way and then how it went; a refusal or a
failure is shown as the helper's sentence, never an error name.  Each
feature's controller submits its calls through one :class:`Requests`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tungui.client import TunguiError

from .busthread import BusThread, ClientCall
from .mainwindow import MainWindow

_T = TypeVar("_T")


class Requests:
    """Submits typed calls of the client library for the window.

    Args:
        helper: the helper, on its bus thread.
        window: where progress and failures are shown.
    """

    def __init__(self, helper: BusThread, window: MainWindow) -> None:
        self.helper = helper
        self.window = window

    def submit(
        self,
        call: ClientCall[_T],
        *,
        what: str,
        done: Callable[[_T], str],
        then: Callable[[_T], None] | None = None,
    ) -> int:
        """Submit a call; say what happens, then how it went.

        Args:
            call: the call, e.g. ``lambda c: c.delete_device(name)``.
            what: the status while it runs.
            done: the status once it succeeded, from its result.
            then: what to do with the result after that.

        Returns:
            The request's id.
        """

        def succeeded(result: _T) -> None:
            self.window.notice.hide()
            self.window.show_status(done(result))
            if then is not None:
                then(result)

        request_id = self.helper.submit(call, succeeded, self._failed)
        self.window.show_status(what)
        return request_id

    def _failed(self, error: TunguiError) -> None:
        self.window.statusBar().clearMessage()
        self.window.show_error(error.message)
