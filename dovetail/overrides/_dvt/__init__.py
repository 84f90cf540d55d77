# _dvt: private helper modules of the Dvt PyGObject override
#
# SPDX-License-Identifier: LGPL-2.1-or-later

"""Private machinery of ``gi.overrides.Dvt``, as PyGObject keeps its own
in ``gi._*`` modules: nothing here is public API.

- :mod:`.aio`: awaiting any GIO-style ``_async``/``_finish`` pair from a
  running asyncio loop, through a bridge thread (see its docstring for the
  API other modules build on).
- :mod:`.futures`: ``concurrent.futures`` behaviour for ``Dvt.Task``,
  ``wait``/``as_completed`` and the ``Executor``.
- :mod:`.directions`: ``call_any``, the ``bridge`` decorator, ``cached``.
- :mod:`.errors`: Python exceptions across the C library (as a
  ``GLib.Error`` that stands for them), and who keeps them.
- :mod:`.interrupts`: Ctrl-C during a blocking call of the main thread.
- :mod:`.threads`: the Python thread states that worker threads keep.
- :mod:`.values`: Python values through ``GValue`` and back, as themselves.
- :mod:`.chunks`: the work of a map over Python items, each item a task
  of its own or shared among a few runners.
- :mod:`.i18n`: gettext for the override's messages (``dovetail-1``).
"""

import importlib


class LazyModule:
    """A module imported at its first attribute read: ``asyncio`` (and
    ``ssl``, which it imports) costs about a third of the override's own
    import time, and an application that never uses asyncio, such as a GTK
    application or a script of threads, should not pay for it. Code that
    reads an attribute runs inside a running asyncio loop or is about to
    start one, so the module is imported by then anyway. Each attribute
    read is kept on the proxy: later reads cost what a module's do."""

    def __init__(self, name):
        self.__name = name

    def __getattr__(self, attr):
        value = getattr(importlib.import_module(self.__name), attr)
        setattr(self, attr, value)
        return value

    def __repr__(self):
        return '<lazily imported module %r>' % self.__name
