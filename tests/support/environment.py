"""The environment of the stack's processes: a clean one pointing at the private
bus, and a PYTHONPATH under which this tree's code imports.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .names import HELPER_SOURCE_DIR, REPO_ROOT
from .processes import SAFE_PATH


def python_path(shim_dir: Path) -> str:
    """PYTHONPATH under which ``tungui`` and ``tungui_helper`` import.

    ``tungui`` lives at the repo root.  ``tungui_helper`` is the directory
    ``helper/`` (pyproject's package-dir); when it is not installed (say,
    with ``pip install -e .``) a symlink to it is made in ``shim_dir``.
    """
    entries = [str(REPO_ROOT)]
    if importlib.util.find_spec("tungui_helper") is None:
        shim_dir.mkdir(parents=True, exist_ok=True)
        link = shim_dir / "tungui_helper"
        if not link.is_symlink():
            link.symlink_to(HELPER_SOURCE_DIR, target_is_directory=True)
        entries.insert(0, str(shim_dir))
    return os.pathsep.join(entries)


def base_env(bus_address: str, pythonpath: str | None = None) -> dict[str, str]:
    """A clean environment that points at the private bus only."""
    env = {
        "PATH": SAFE_PATH,
        "LANG": "C.UTF-8",
        "DBUS_SYSTEM_BUS_ADDRESS": bus_address,
        "PYTHONUNBUFFERED": "1",
        "PYTHONFAULTHANDLER": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env
