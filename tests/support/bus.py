"""The private system bus: a ``dbus-daemon`` whose only rules for tungui are ours."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .buscall import dbus_daemon_call
from .errors import StackError
from .names import DBUS_DAEMON, DBUS_POLICY_FILE
from .processes import die_with_parent, tail, terminate
from .waiting import DEFAULT_TIMEOUT, wait_until

BUS_CONFIG_TEMPLATE = """\
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_destination="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.PolicyKit1"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/> <allow receive_type="method_return"/>
    <allow receive_type="error"/> <allow receive_type="signal"/>
  </policy>
  <policy user="root"><allow own="*"/><allow send_type="method_call"/></policy>
  <policy user="polkitd"><allow own="org.freedesktop.PolicyKit1"/></policy>
  <include>{include}</include>{extra}
</busconfig>
"""


class DBusDaemon:
    """A private ``dbus-daemon`` that behaves like a system bus.

    Its only rules for tungui are the project's own D-Bus policy file,
    included by absolute path, so tests prove the shipped file.
    """

    def __init__(
        self,
        directory: Path,
        policy_file: Path = DBUS_POLICY_FILE,
        *,
        servicedir: Path | None = None,
    ) -> None:
        if not policy_file.is_file():
            raise StackError(f"the D-Bus policy file {policy_file} does not exist")
        self.directory = directory
        self.policy_file = policy_file.resolve()
        self.socket_path = directory / "system_bus_socket"
        self.config_path = directory / "system-bus.conf"
        self.log_path = directory / "dbus-daemon.log"
        self._address_path = directory / "dbus-daemon.address"
        self.address = f"unix:path={self.socket_path}"
        self.proc: subprocess.Popen[bytes] | None = None
        #: Where D-Bus activation files are looked up (none by default).
        self.servicedir = servicedir

    def start(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.config_path.write_text(
            BUS_CONFIG_TEMPLATE.format(
                socket=self.socket_path,
                include=self.policy_file,
                extra=(
                    f"\n  <servicedir>{self.servicedir}</servicedir>" if self.servicedir else ""
                ),
            ),
            "utf-8",
        )
        with self._address_path.open("wb") as out, self.log_path.open("ab") as err:
            self.proc = subprocess.Popen(
                [
                    DBUS_DAEMON,
                    f"--config-file={self.config_path}",
                    "--nofork",
                    "--print-address",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        proc = self.proc
        # --print-address writes once the socket listens.
        wait_until(
            lambda: self._address_path.read_text("utf-8").strip(),
            timeout=timeout,
            what="dbus-daemon to listen",
            abort=lambda: (
                None
                if proc.poll() is None
                else f"dbus-daemon exited {proc.returncode}:\n{tail(self.log_path)}"
            ),
        )
        wait_until(lambda: dbus_daemon_call(self.address, "GetId"), what="dbus-daemon to answer")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        """Stop it; raise with its log if it had died on its own."""
        if self.proc is None:
            return
        died = self.proc.poll()
        terminate(self.proc)
        self.proc = None
        if died is not None:
            raise StackError(f"dbus-daemon had died ({died}):\n{tail(self.log_path)}")

    def log_text(self) -> str:
        return tail(self.log_path)
