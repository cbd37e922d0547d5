"""A hostile local user, for the soak (test_hostile.py) and bench/hostile.py.

:mod:`.processes` is root's side: it starts nobody's processes, hands them
the contract and collects what they report.  Each of those processes runs
:mod:`.client`, which builds its messages with :mod:`.messages` and
:mod:`.values` and keeps slow readers (:mod:`.reader`); those four use
dbus-fast and the standard library only, as any local user could.

Nothing is imported here: nobody's processes import :mod:`.client` with
no more than dbus-fast at hand.
"""
