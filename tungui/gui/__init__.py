"""The window: the only part of ``tungui`` that imports Qt.

:mod:`.app` is the entry point; :mod:`.busthread` runs the client library on
a thread of its own and :mod:`.requests` submits a person's calls through
it; :mod:`.actions` defines what a person can do, once, as data that the
menus and the toolbar (and a tray) are built from.  Each feature has its own
package with its model, view and controller: :mod:`.devices` (the list, the
dialogs, the graph), :mod:`.capture` (Watch Packets) and :mod:`.send` (Send
Packet); a tray would be one more.  ``tests/unit/test_imports.py`` fails on
a Qt import outside this folder.
"""
