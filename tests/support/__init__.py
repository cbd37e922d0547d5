"""The real tungui stack, for the integration tests, the benchmarks and the scripts.

Plain, typed building blocks, a module per part; ``tests/integration/conftest.py``
turns them into fixtures:

- :mod:`.bus`: a private ``dbus-daemon`` configured as a system bus whose only
  rules for tungui come from the shipped
  ``resources/dbus/io.github.tungui.Helper1.conf``;
  :mod:`.buscall`: synchronous calls on it.
- :mod:`.polkit`: the real ``polkitd`` on that bus, with the shipped
  ``resources/polkit/io.github.tungui.policy`` installed, and
  :meth:`~.polkit.PolkitDaemon.grant` to allow an action to a user for a while;
  :mod:`.polkitagent` and :mod:`.polkitcaller`: a real authentication agent
  and the long-lived caller it answers for.
- :mod:`.netns`: a network namespace made for the session.
- :mod:`.helper`: the real helper, as root, inside that namespace.
- :mod:`.nobody`: clients run as a real unprivileged user.
- :mod:`.waiting`, :mod:`.processes`, :mod:`.environment`, :mod:`.names`,
  :mod:`.errors`: waiting on events, running commands, the processes'
  environment, the names everything is built from, what goes wrong.

The stack uses the standard library and dbus-fast only, never the project's
own Python API, so it keeps working while that code changes.  See
/work/shared/TESTING.md for the facts it relies on.

Nothing is imported here: nobody's processes import modules of this package
(``hostile.client``) with no more than dbus-fast at hand.
"""
