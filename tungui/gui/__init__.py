"""The window: the only part of ``tungui`` that imports Qt.

:mod:`.app` is the entry point; :mod:`.busthread` runs the client library on
a thread of its own; :mod:`.actions` defines what a person can do, once, as
data that the menus and the toolbar (and a tray) are built from.  Each
feature has its own package with its model, view and controller:
:mod:`.devices` (the list, the dialogs, the graph), :mod:`.capture` (the
packet window) and :mod:`.send` (the Send Packet dialog).
(``tests/unit/test_imports.py`` fails on a Qt import outside this folder.)
"""
