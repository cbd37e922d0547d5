"""The contract between tungui's helper and its front end: nothing else is shared.

Pure Python without dependencies.  The root helper (``tungui_helper``) and
the window and ``tunguictl`` (``tungui``) both import this package and never
each other; ``tests/unit/test_imports.py`` enforces that.  Every rule the two
sides must agree on lives here once:

* :mod:`.bus`: bus name, object path, polkit action ids, error names and the
  introspection XML;
* :mod:`.keys`: the keys of a device spec, a change set and a listed device,
  with their D-Bus types;
* :mod:`.device`: a listed device as a typed record;
* :mod:`.limits`: sizes and bounds (names, MTU, addresses, packets);
* :mod:`.checks`: checks of single values, used by the dialog and the helper;
* :mod:`.errors`: the named errors, raised by the helper and by the client;
* :mod:`.ifname`: interface names as they travel on the bus;
* :mod:`.capture`: the capture stream's messages.
"""

#: The one version of tungui; pyproject.toml, the Debian changelog and the
#: AppStream metainfo say the same (tests/unit/contract/test_contract.py).
__version__ = "0.1.0"
