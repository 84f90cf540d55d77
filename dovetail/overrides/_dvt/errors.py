# errors.py: Python exceptions across the C library (private)
#
# SPDX-License-Identifier: LGPL-2.1-or-later

"""A Python exception raised by Dovetail work crosses the C library as a
``GLib.Error`` of the private domain ``dvt-python-exception-quark``, whose
code is a key into a side table of this module; the caller's side turns it
back into the same exception object, with its traceback.

Private API, for ``gi.overrides.Dvt`` and the other modules here:

``Scope()``
    The exceptions raised by the work of one call, kept only while the
    call's result can still be read (see its docstring): ``close()`` when
    a blocking call returns, ``end()`` once the call has delivered its
    result. ``hold_work(*objects)`` returns a holder of the work function
    (and its data) that ``end()`` empties; ``held(holder)`` takes what it
    holds, or raises once the call has ended.

``guard(scope, fn, *args, **kwargs)``
    Calls @fn on the work side: ``(True, its value)`` or ``(False, a
    GLib.Error)`` to hand to the C library. Its own frame, and those of
    ``in_caller_context(fn)`` (@fn called in a copy of the caller's
    ``contextvars`` context), are left out of the stored traceback.

``to_error(scope, exc, tb)``
    A ``GLib.Error`` standing for @exc (a ``GLib.Error`` is itself).

``unwrap(value)``, ``unwrap_list(values)``, ``peek(value)``, ``reraising(fn, *args)``
    The caller's side: the exception a ``GLib.Error`` stands for (``peek``
    leaves it stored, for a call that goes on); ``reraising`` calls @fn and
    raises such an error as its exception.

``remember(task, scope)``, ``keep(task, scope)``, ``scope_of(task)``
    Which scope a task's exceptions go to (see ``Task.return_error``).

``lock``
    The override's one lock for small shared state: this module's tables,
    the thread states that workers keep, a few attributes of the override's
    objects set from several threads.

``live_exception_count()``
    How many exceptions are kept for readers (for tests).
"""

import contextvars
import itertools
import threading
import traceback
import weakref

from gi.repository import Gio, GLib

from .i18n import _

_EXCEPTION_DOMAIN = 'dvt-python-exception-quark'
_MAX_KEY = 0x7fffffff  # a GError code is a gint

lock = threading.Lock()
_keys = itertools.count(1)
# key -> Scope holding the exception; weak, so a scope that nobody can
# read from any more takes its entries with it.
_registry = weakref.WeakValueDictionary()
# task (Python wrapper) -> weak reference to the Scope of its call, so that
# Task.return_error() called later (from a GIO callback) finds it.
_task_scopes = weakref.WeakKeyDictionary()


class Scope:
    """The Python exceptions raised by the work of one call.

    Only what can still read the call's result holds a scope: the frame of
    a blocking call (which closes it when it returns), the Python object of
    a future (submit, schedule), the async result given to a callback. The
    work functions refer to it weakly, and stop storing once it is gone.
    """

    __slots__ = ('_entries', '_closed', '_work', 'started', '__weakref__')

    def __init__(self):
        self._entries = {}
        self._closed = False
        self._work = []
        self.started = False  # some work of the call has started

    def hold_work(self, *objects):
        """A holder of the work function (and its data) of this call, for
        its wrapper, emptied by end(). Work starts only from a holder that
        is not empty (see held()), so no work of the call starts once it
        has ended. The emptied holder also lets the C library, which keeps
        the wrapper as long as the task lives, no longer keep them: the
        exception that the caller re-raises refers to the caller's frames,
        which may refer to the task, and a work function that refers to
        its own exception would otherwise make a cycle through C."""
        holder = list(objects)
        with lock:
            self._work.append(holder)
        return holder

    def end(self):
        """The call has returned, raised or delivered its result: no work
        of it starts any more, whatever the order in which the runtime
        released its caller and cancelled the work still queued."""
        work = self._work
        if work:
            for holder in list(work):
                holder.clear()

    def store(self, exc, tb):
        """Keeps @exc, raised with traceback @tb; returns its key, or 0 if
        the call is over."""
        _release_frames(exc, tb)
        with lock:
            if self._closed:
                return 0
            while True:
                key = next(_keys) % _MAX_KEY + 1
                if key not in _registry:
                    break
            self._entries[key] = (exc, tb)
            _registry[key] = self
            return key

    def close(self):
        """The blocking call has returned or raised."""
        self.end()
        with lock:
            self._closed = True
            entries = self._entries
            if entries:
                for key in entries:
                    if _registry.get(key) is self:
                        del _registry[key]
                entries.clear()

    def lookup(self, key):
        """The (exception, traceback) of @key; the call has ended."""
        entry = self._entries.get(key)
        if entry is not None:
            self.end()
        return entry


def held(holder):
    """What a holder of Scope.hold_work() holds, taken in one step (the
    caller's thread may empty it meanwhile); raises once the call has
    ended, so that the work fails instead of starting."""
    objects = tuple(holder)
    if not objects:
        raise GLib.Error.new_literal(Gio.io_error_quark(), _('The call has ended'),
                                     Gio.IOErrorEnum.CANCELLED)
    return objects


def _release_frames(exc, tb):
    """Drops the local variables of the finished frames of @exc's
    traceback (and of the exceptions it chains to). They would otherwise
    keep the task alive (its work function's frame refers to it), and the
    task keeps the work function, which keeps the stored exception: a
    cycle through C that Python's collector cannot break. The traceback
    still shows every file, line and function."""
    exc.__traceback__ = tb
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__


def live_exception_count():
    """How many Python exceptions are kept for readers (for tests)."""
    with lock:
        return len(_registry)


def remember(task, scope):
    """Lets Task.return_error() find @scope from @task (weakly)."""
    with lock:
        _task_scopes[task] = weakref.ref(scope)


def keep(task, scope):
    """@scope lives as long as the Python object of @task. An attribute,
    not a global table: a cycle through it (the exception's traceback
    refers to frames that refer to the task) stays collectable. Not for
    the task of run_blocking or of an async map item: a Python object that
    outlives the call would hide a function that forgot to complete it."""
    task._dvt_scope = scope
    remember(task, scope)


def scope_of(task):
    with lock:
        ref = _task_scopes.get(task)
    scope = ref() if ref is not None else None
    if scope is None:
        # Nothing reads this task through a call of ours (or no longer):
        # its exceptions live as long as its Python object.
        scope = Scope()
        keep(task, scope)
    return scope


def _exception_error(exc, key):
    name = type(exc).__qualname__
    module = type(exc).__module__
    if module not in ('builtins', '__main__'):
        name = module + '.' + name
    text = str(exc)
    message = '%s: %s' % (name, text) if text else name
    return GLib.Error(message + ' (a Python exception raised by Dovetail work)',
                      _EXCEPTION_DOMAIN, key)


def to_error(scope, exc, tb):
    """A GLib.Error standing for @exc, to hand to the C library."""
    if isinstance(exc, GLib.Error):
        return exc
    return _exception_error(exc, _store(scope, exc, tb))


def unwrap(value):
    """The Python exception a GLib.Error stands for, or @value itself."""
    if isinstance(value, GLib.Error) and value.domain == _EXCEPTION_DOMAIN:
        with lock:
            scope = _registry.get(value.code)
            entry = scope.lookup(value.code) if scope is not None else None
        if entry is not None:
            exc, tb = entry
            return exc.with_traceback(tb)
    return value


def peek(value):
    """Like unwrap(), but leaves the exception stored: the call goes on
    (a retry filter looks at the error of an attempt)."""
    if isinstance(value, GLib.Error) and value.domain == _EXCEPTION_DOMAIN:
        with lock:
            scope = _registry.get(value.code)
            entry = scope._entries.get(value.code) if scope is not None else None
        if entry is not None:
            return entry[0]
    return value


def unwrap_list(values):
    if values is None:
        return values
    return [unwrap(v) for v in values]


def reraising(fn, *args):
    """Calls @fn; a GLib.Error standing for a Python exception is raised as
    that exception."""
    try:
        return fn(*args)
    except GLib.Error as error:
        exc = unwrap(error)
        if exc is error:
            raise
    # Raised outside the except clause: the original exception keeps its
    # own __context__ and __cause__.
    raise exc


def _store(scope, exc, tb):
    if scope is None:
        # Nobody can read the result any more.
        _release_frames(exc, tb)
        return 0
    return scope.store(exc, tb)


def guard(scope, fn, *args, **kwargs):
    """Calls @fn on the work side. Returns (True, its value), or (False, a
    GLib.Error): the one @fn raised, or one standing for the Python
    exception it raised, which the caller side turns back into it.

    The work's frames keep their callers' frames (f_back), so this frame
    and the wrappers calling it drop their local variables before they
    pass an error on: the stored traceback must not keep the task alive."""
    try:
        return True, fn(*args, **kwargs)
    except GLib.Error as error:
        failure = error
    except BaseException as exc:
        tb = exc.__traceback__
        # Hide this frame: the traceback starts in the work function.
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        while (tb is not None and tb.tb_next is not None and
               tb.tb_frame.f_code is _in_caller_context_code):
            tb = tb.tb_next
        failure = _exception_error(exc, _store(scope, exc, tb))
        del tb
    del scope, fn, args, kwargs
    return False, failure


def in_caller_context(fn):
    """@fn, called in a copy of the caller's contextvars context (one copy
    per call: items run at once cannot share one context)."""
    context = contextvars.copy_context()

    def run(item):
        return context.copy().run(fn, item)
    # What event scopes match (see _function_target in Dvt.py).
    run.__func__ = getattr(fn, '__func__', fn)
    return run


# Hidden from stored tracebacks, as guard() is.
_in_caller_context_code = in_caller_context(len).__code__
