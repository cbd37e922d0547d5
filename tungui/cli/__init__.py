"""``tunguictl``: the helper from a terminal, on the client library; no Qt.

:mod:`.main` parses the command line and runs the commands; :mod:`.capture`
is the ``capture`` command; :mod:`.usage` holds what both need (the exit
codes and the usage error), so neither imports the other.
"""
