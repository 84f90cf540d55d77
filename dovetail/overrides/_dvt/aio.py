# aio.py: GIO-style async pairs awaited from asyncio (private)
#
# SPDX-License-Identifier: LGPL-2.1-or-later

"""Awaiting GIO ``_async``/``_finish`` pairs from asyncio, without
iterating any GLib main context in the asyncio thread.

Debian's PyGObject (3.42) has no asyncio integration: a ``_async`` call
made from a coroutine delivers its callback on the thread-default
``GMainContext`` of the calling thread, which nothing iterates under
``asyncio.run()``. This module owns one private *bridge thread* per
process (made on first use, made again in a forked child) that iterates a
``GMainContext`` of its own, pushed as its thread-default context. Every
``_async`` call is made on that thread, so its callback runs there too;
the ``_finish`` call is made in the callback, and its outcome is handed to
the asyncio loop with ``loop.call_soon_threadsafe`` (one wake-up per batch
of outcomes, not one per outcome).

Private API, for the other modules of the override:

``start(begin, finish, *, cancellable=None, on_cancel=None, on_orphan=None)``
    Must be called from a coroutine (a running asyncio loop). Returns an
    ``asyncio.Future`` of that loop. ``begin(cancellable, callback)`` is
    called on the bridge thread and makes the ``_async`` call with the
    given ``Gio.Cancellable`` and ``callback`` (a ``GAsyncReadyCallback``
    taking ``(source, result, *user_data)``). ``finish(result)`` is called
    on the bridge thread from that callback: what it returns becomes the
    future's result, what it raises its exception. Cancelling the future
    (for instance by cancelling the asyncio task awaiting it) cancels the
    cancellable, then calls ``on_cancel()`` if given (on the asyncio
    thread, at once: not at the loop's next turn). An outcome that arrives
    once the future is done, or once its loop is closed, is dropped; but a
    success that arrives for a cancelled future is given to
    ``on_orphan(value)`` if given (on the bridge or asyncio thread): the
    operation completed before it saw the cancellation (a queue's item,
    say, that must not be lost). So is a success that an ``await`` of the
    future did not return because the awaiting task was cancelled between
    the result's arrival and its own resumption.

    Example, an awaitable for a new type's pair (``Dvt`` is the
    introspected module, so the raw ``_async`` and ``_finish`` are called)::

        def aget(self, key):
            return aio.start(
                lambda cancellable, callback:
                    Dvt.Cache.get_async(self, key, cancellable, callback, None),
                lambda result: Dvt.Cache.get_finish(self, result))

``watch(begin, finish, done, cancellable=None)``
    The same without asyncio: ``done(ok, value)`` is called on the bridge
    thread with ``(True, what finish returned)`` or ``(False, the
    exception it raised)``. Returns the ``Gio.Cancellable`` given to
    ``begin``.

``post(loop, fn, *args)``
    Calls ``fn(*args)`` on the thread of asyncio @loop, from any thread;
    calls posted together share one wake-up of the loop. Returns False
    (and drops the call) if the loop is closed.

``inbox(loop)``, ``settle(future, ok, value)``
    ``inbox(loop).post(settle, (future, ok, value))`` completes the asyncio
    @future of @loop from any thread (unless it is done by then), sharing
    wake-ups as ``post`` does: for work that ends on a thread of its own
    rather than through an ``_async`` call (``Runtime.call`` does).

``PerProcess(factory)``
    ``.get()`` returns one value per process, made by ``factory()`` on
    first use and again in a forked child (the bridge thread is one).

``on_bridge(fn, *args)``
    Calls ``fn(*args)`` on the bridge thread, whose thread-default context
    is the bridge's: for ``_async`` calls made outside :func:`start`.

Callbacks on the bridge thread must not block: they would hold up every
other outcome. An exception that escapes one is printed and dropped.
"""

import collections
import os
import sys
import threading
import traceback
import weakref

from gi.module import get_introspection_module
from gi.repository import Gio, GLib

from . import LazyModule

asyncio = LazyModule('asyncio')  # imported at its first use

_RawGLib = get_introspection_module('GLib')

__all__ = ['start', 'watch', 'post', 'inbox', 'settle', 'on_bridge', 'PerProcess']


def _report(where):
    print('Dovetail: exception in %s:' % where, file=sys.stderr)
    traceback.print_exc()


class _Bridge:
    """The thread iterating the context where the _async calls are made."""

    def __init__(self):
        self.context = GLib.MainContext.new()
        self.lock = threading.Lock()
        self.pending = collections.deque()
        self.scheduled = False
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,),
                                       name='dvt-asyncio-bridge', daemon=True)
        self.thread.start()
        ready.wait()

    def _run(self, ready):
        self.context.push_thread_default()
        loop = _RawGLib.MainLoop.new(self.context, False)
        ready.set()
        # The raw run(): PyGObject's own only adds SIGINT handling, which
        # belongs to the main thread.
        _RawGLib.MainLoop.run(loop)

    def post(self, fn, args):
        with self.lock:
            self.pending.append((fn, args))
            if self.scheduled:
                return
            self.scheduled = True
        source = GLib.idle_source_new()
        source.set_priority(GLib.PRIORITY_DEFAULT)
        source.set_callback(self._drain)
        source.attach(self.context)

    def _drain(self, *_ignored):
        with self.lock:
            batch, self.pending = self.pending, collections.deque()
            self.scheduled = False
        for fn, args in batch:
            try:
                fn(*args)
            except BaseException:  # noqa: B902 (a callback must not end the bridge)
                _report('the asyncio bridge')
        return GLib.SOURCE_REMOVE


class PerProcess:
    """One value per process: made by @factory() on first use (by one
    thread), made again on first use in a forked child (where the parent's
    threads do not exist)."""

    def __init__(self, factory):
        self._factory = factory
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self):
        self._value = None
        self._lock = threading.Lock()

    def get(self):
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._factory()
                value = self._value
        return value


_bridge = PerProcess(_Bridge)
_get_bridge = _bridge.get


def on_bridge(fn, *args):
    _get_bridge().post(fn, args)


# ---- hand-off to an asyncio loop -------------------------------------------

class _Inbox:
    """Calls for one asyncio loop, run by one call_soon_threadsafe."""

    __slots__ = ('loop', 'lock', 'pending', 'scheduled', '__weakref__')

    def __init__(self, loop):
        self.loop = loop
        self.lock = threading.Lock()
        self.pending = collections.deque()
        self.scheduled = False

    def post(self, fn, args):
        with self.lock:
            self.pending.append((fn, args))
            if self.scheduled:
                return True
            self.scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            # The loop is closed: nothing will read these outcomes.
            with self.lock:
                self.pending.clear()
                self.scheduled = False
            return False
        return True

    def _drain(self):
        with self.lock:
            batch, self.pending = self.pending, collections.deque()
            self.scheduled = False
        for fn, args in batch:
            fn(*args)


_inboxes = weakref.WeakKeyDictionary()
_inboxes_lock = threading.Lock()
os.register_at_fork(after_in_child=_inboxes.clear)


def _inbox(loop):
    inbox = _inboxes.get(loop)
    if inbox is None:
        with _inboxes_lock:
            inbox = _inboxes.get(loop)
            if inbox is None:
                inbox = _inboxes[loop] = _Inbox(loop)
    return inbox


inbox = _inbox


def post(loop, fn, *args):
    return _inbox(loop).post(fn, args)


def _settle(future, ok, value):
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


settle = _settle


# ---- the adapter ------------------------------------------------------------

def _outcome(finish, result):
    try:
        return True, finish(result)
    except BaseException as exc:  # noqa: B902 (handed to the awaiting side)
        # The frames of the traceback, and the frames they were called
        # from (this one, the callback's), must not keep @result: it holds
        # its source object in C, and an exception the override keeps for
        # re-raising (a work's own, in a scope that the source object's
        # wrapper holds) would make a cycle through C, which the collector
        # cannot break. The traceback keeps its lines, not its locals.
        traceback.clear_frames(exc.__traceback__.tb_next)
        del finish, result
        return False, exc


def watch(begin, finish, done, cancellable=None):
    if cancellable is None:
        cancellable = Gio.Cancellable()

    def callback(_source, result, *_ignored):
        ok, value = _outcome(finish, result)
        del _source, result, _ignored  # see _outcome()
        done(ok, value)

    on_bridge(begin, cancellable, callback)
    return cancellable


def _make_future_class():
    """_Future, made at the first start() (asyncio is imported by then)."""

    class _Future(asyncio.Future):
        """An asyncio future whose cancel() cancels its GCancellable at once
        (an asyncio done callback would run only at the loop's next turn,
        after the caller may already have acted on the cancellation)."""

        _dvt_cancel = None
        _dvt_orphan = None

        def cancel(self, *args, **kwargs):
            cancelled = super().cancel(*args, **kwargs)
            hook, self._dvt_cancel = self._dvt_cancel, None
            if cancelled and hook is not None:
                hook()
            return cancelled

        def __await__(self):
            # The awaiting asyncio task can be cancelled after this future got
            # its result but before the task resumed: the task then raises
            # CancelledError here and the result would be lost. Give it to
            # on_orphan, as a success that arrived after the cancellation is.
            try:
                return (yield from super().__await__())
            except asyncio.CancelledError:
                orphan, self._dvt_orphan = self._dvt_orphan, None
                if (orphan is not None and self.done() and not self.cancelled()
                        and self.exception() is None):
                    orphan(self.result())
                raise

        __iter__ = __await__

    return _Future


_future_class = None


def _future_type():
    global _future_class
    if _future_class is None:
        _future_class = _make_future_class()
    return _future_class


def __getattr__(name):
    # aio._Future, made on first use (module attributes, PEP 562).
    if name == '_Future':
        return _future_type()
    raise AttributeError('module %r has no attribute %r' % (__name__, name))


def start(begin, finish, *, cancellable=None, on_cancel=None, on_orphan=None):
    loop = asyncio.get_running_loop()
    future = (_future_class or _future_type())(loop=loop)
    inbox = _inbox(loop)
    if cancellable is None:
        cancellable = Gio.Cancellable()

    def callback(_source, result, *_ignored):
        ok, value = _outcome(finish, result)
        del _source, result, _ignored  # see _outcome()
        if ok and on_orphan is not None and future.cancelled():
            on_orphan(value)
            return
        inbox.post(_settle_or_orphan, (future, ok, value, on_orphan))

    def cancel():
        cancellable.cancel()
        if on_cancel is not None:
            on_cancel()

    future._dvt_cancel = cancel
    future._dvt_orphan = on_orphan
    on_bridge(begin, cancellable, callback)
    return future


def _settle_or_orphan(future, ok, value, on_orphan):
    if future.done():
        if ok and on_orphan is not None and future.cancelled():
            on_orphan(value)
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
