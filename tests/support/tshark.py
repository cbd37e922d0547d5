"""Reading capture files back with tshark, a tool nobody here wrote."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path


def tshark_fields(path: Path, *fields: str) -> list[list[str]]:
    """The ``fields`` tshark reads of each packet in ``path``, a row a packet.

    Names are not resolved, and a fresh configuration directory keeps
    anyone's own Wireshark profile out of it.
    """
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HOME": home, "XDG_CONFIG_HOME": str(Path(home) / "config")}
        result = subprocess.run(
            ["tshark", "-n", "-r", str(path), "-T", "fields", *(f"-e{f}" for f in fields)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            timeout=60,
        )
    return [line.split("\t") for line in result.stdout.splitlines()]
