"""tunguictl's shell completions (packaging/completions) offer what its parser takes.

The completions are written by hand; these tests hold them to the parser of
tungui/cli.py: every command, and for each command exactly its options. The
bash completion is run in bash; the zsh one is read, and where zsh is
installed, run in an interactive zsh on a pseudo-terminal
(packaging/check/zsh-complete; packaging/check/prove runs both installed).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tungui.cli.main import build_parser

COMPLETIONS = Path(__file__).resolve().parents[3] / "packaging/completions"
BASH = COMPLETIONS / "bash/tunguictl"
ZSH = COMPLETIONS / "zsh/_tunguictl"
#: Runs a completion in an interactive zsh on a pseudo-terminal.
ZSH_COMPLETE = COMPLETIONS.parent / "check/zsh-complete"


def commands() -> dict[str, argparse.ArgumentParser]:
    """tunguictl's commands and the parser of each."""
    parser = build_parser()
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def bash_complete(*words: str) -> set[str]:
    """What bash offers for the last of ``words`` after sourcing the completion."""
    script = (
        f'source "{BASH}"\n'
        'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))\n'
        "_tunguictl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "-c", script, "bash", "tunguictl", *words],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


def test_bash_offers_every_command() -> None:
    assert bash_complete("") == set(commands())
    assert bash_complete("cr") == {"create"}


def test_bash_offers_exactly_each_commands_options() -> None:
    assert bash_complete("-") == options(build_parser())
    for name, parser in commands().items():
        assert bash_complete(name, "-") == options(parser), name


def test_bash_offers_device_kinds_and_devices() -> None:
    assert bash_complete("create", "") == {"tun", "tap", "bridge"}
    # Names come from /sys/class/net; the loopback device is always there.
    assert "lo" in bash_complete("delete", "l")
    assert "lo" in bash_complete("set", "")
    assert "lo" in bash_complete("--no-ask", "capture", "")


def zsh_options(function: str) -> set[str]:
    """The options an _arguments call of the zsh completion names, for one command."""
    text = ZSH.read_text()
    if function:
        match = re.search(rf"^\s+{re.escape(function)}\)\n(.*?);;", text, re.MULTILINE | re.DOTALL)
        assert match is not None, f"the zsh completion has no case for {function}"
        text = match.group(1)
        if "$link_options" in text:
            text += ZSH.read_text().split("link_options=(", 1)[1].split("\n  )", 1)[0]
    else:
        text = text.split("_arguments -C", 1)[1].split("&& return", 1)[0]
    found = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)(?=[=+\['}])", text))
    # {-h,--help} and {-w+,--write=}: brace lists of spellings.
    for group in re.findall(r"\{([^}]*)\}", text):
        found.update(word.rstrip("=+") for word in group.split(","))
    return found


def test_zsh_names_every_command_and_exactly_its_options() -> None:
    text = ZSH.read_text()
    for name in commands():
        assert f"'{name}:" in text, name
    assert zsh_options("") == options(build_parser())
    for name, parser in commands().items():
        function = "permissions | monitor" if name in ("permissions", "monitor") else name
        assert zsh_options(function) == options(parser), name


def zsh_complete(words: str) -> set[str]:
    """What zsh offers on Tab after ``words`` (a command line as typed)."""
    done = subprocess.run(
        [str(ZSH_COMPLETE), "-d", str(ZSH.parent), words],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return set(done.stdout.split())


needs_zsh = pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")


@needs_zsh
def test_zsh_completes_commands_options_and_devices() -> None:
    assert zsh_complete("tunguictl ") == set(commands())
    assert zsh_complete("tunguictl --no-ask c") == {"create", "capture"}
    assert zsh_complete("tunguictl -") == options(build_parser())
    assert zsh_complete("tunguictl create ") == {"tun", "tap", "bridge"}
    assert zsh_complete("tunguictl set --") == {
        o for o in options(commands()["set"]) if o[1] == "-"
    }
    assert zsh_complete("tunguictl capture -") == options(commands()["capture"])
    assert zsh_complete("tunguictl list -") == options(commands()["list"])
    assert "lo" in zsh_complete("tunguictl delete l")
