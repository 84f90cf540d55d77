# Dvt.py: PyGObject overrides for Dovetail (the Dvt-1 namespace)
#
# SPDX-License-Identifier: LGPL-2.1-or-later

"""Pythonic Dovetail.

Importing ``from gi.repository import Dvt`` loads these overrides. Every
call form of the raw introspected API keeps working; on top of it:

Optional arguments
    ``func_data``, ``options`` and ``cancellable`` (and ``callback`` /
    ``user_data`` of the ``_async`` calls) are optional and accepted as
    keywords. Blocking calls, ``submit`` and ``schedule`` also take
    ``user_data=`` as another name for ``func_data``::

        rt = Dvt.Runtime.new(2)
        rt.to_thread_blocking(work)
        rt.run_blocking(load, cancellable=c)
        rt.map_blocking(8, item, options=Dvt.Options(max_concurrency=2))
        task = rt.submit(work)
        rt.to_thread_async(work, callback=done)  # then rt.to_thread_finish(res)

    A work function is called as ``func(task, cancellable, func_data)``:
    always exactly one user-data argument, ``None`` when none was given.
    Work (or a ``callback``) that is not callable raises ``TypeError`` at
    the call, before anything is queued.

Python exceptions
    Any exception a work function raises (or passes to
    :meth:`Task.return_error`) reaches the caller as the same exception
    object, re-raised on the caller's side with its original traceback:
    from the blocking calls, from :meth:`Task.propagate_value` and
    :meth:`Task.result` of a future, from ``to_thread_finish`` /
    ``map_finish`` and from ``gather_blocking``. In return-errors mode a
    failed slot holds the exception object. A ``GLib.Error`` passes through
    unchanged (domain, code, message), as in the raw API.

    Internally the exception crosses the C library as a ``GLib.Error`` of
    the private domain ``dvt-python-exception-quark`` whose code is a key
    into a side table; the table's entries live only as long as the result
    can still be read (the blocking call, the future's Python object, the
    async result), so results nobody reads leak nothing.

Plain functions
    ``rt.call_blocking(fn, *args, **kwargs)`` runs ``fn(*args, **kwargs)``
    on a worker and returns what it returns.
    ``rt.submit_call(fn, *args, **kwargs)`` does the same without blocking
    and returns the :class:`Task` future; read it with ``task.result()``.
    ``rt.map_blocking(fn, iterable, options=None, cancellable=None)`` calls
    ``fn(item)`` for every item, in parallel, and returns the results in
    input order (the raw form is told apart by its first argument being an
    ``int``). ``rt.map_async(fn, iterable, ...)`` is its asynchronous twin.
    ``map_blocking`` hands the items to a few runners (one per worker at
    most, never more than max-concurrency) that each call ``fn`` in a loop
    over runs of items they claim, checking for a failure or cancellation
    between items; each item becomes a task of its own instead when the
    options give items a timeout, retries, gates or a rate limit, async
    items or the caller's context, or when a ``progress`` handler is
    connected to the runtime (``Runtime.get_map_runners()`` decides).
    Values returned by plain functions cross unchanged (the same objects).

Task groups
    ``with rt.task_group(max_concurrency=4) as g:`` (a :class:`TaskGroup`)
    waits for its members on exit and cancels them if the block raises;
    ``g.submit(fn, *args, **kwargs)`` adds ``fn(*args, **kwargs)``;
    ``for task in g.as_completed(timeout=None)`` yields them as they end;
    ``g.wait(timeout=None)`` and ``g.first(cancel_rest=False)``.

Tasks
    ``task.return_value(obj)`` accepts any Python object (``None`` and
    integers beyond 32 bits included). ``task.return_error(exc)`` accepts a
    ``GLib.Error`` or any exception.

Tasks as futures (concurrent.futures)
    A ``Dvt.Task`` has the methods of a ``concurrent.futures.Future``:
    ``done()``, ``cancelled()``, ``running()``, ``cancel()`` (returns
    whether the task is cancelled), ``result(timeout=None)`` and
    ``exception(timeout=None)`` (None: wait as long as it takes; 0 or
    less: do not wait), ``add_done_callback(fn)`` (called at once if the
    task has ended, else on Dovetail's bridge thread). A wait that runs
    out raises ``Dvt.TimeoutError``, which is both a ``TimeoutError`` and
    the ``GLib.Error`` ``G_IO_ERROR_TIMED_OUT`` raised before; a
    cancelled task raises ``Dvt.CancelledError``, both a
    ``concurrent.futures.CancelledError`` and the ``GLib.Error``
    ``G_IO_ERROR_CANCELLED``. ``concurrent.futures.wait`` and
    ``as_completed`` read private fields of their futures, so Dovetail
    provides ``Dvt.wait(fs, timeout=None, return_when=ALL_COMPLETED)`` and
    ``Dvt.as_completed(fs, timeout=None)`` with the same contract, over
    any mix of tasks and ``concurrent.futures`` futures.
    ``runtime.executor(options=None)`` (or ``Dvt.Executor(runtime)``) is a
    ``concurrent.futures.Executor`` whose futures are real
    ``concurrent.futures.Future`` objects.

asyncio
    Nothing here iterates a GLib main context in the asyncio thread: the
    ``_async`` calls are made on a private bridge thread (see the ``_dvt``
    package beside this file) and their outcomes handed to the loop with
    ``loop.call_soon_threadsafe``. ``await task``; ``await
    runtime.call(fn, *args)`` (like ``asyncio.to_thread``);
    ``await runtime.map(fn, items)``; ``await queue.aget()`` /
    ``queue.aput(item)``; ``await cache.aget(key)``; ``await
    callable.acall(args)``; ``await runtime.ashutdown()`` /
    ``runtime.await_idle()``. Cancelling the awaiting asyncio task cancels
    the Dovetail side.

contextvars
    Plain functions (``call_blocking``, ``submit_call``, ``map_blocking``
    and ``map_async`` over items, ``call``, ``map``, the executor,
    ``call_any``) run in a copy of the caller's ``contextvars`` context
    taken when the call is made, as ``asyncio.to_thread`` does.

Every direction
    ``runtime.call_any(fn, *args)``, ``@runtime.bridge(timeout=,
    retries=)`` (``f.sync()``, ``f.async_()``) and ``@Dvt.cached(runtime,
    ttl=, max_size=, key=)``: see their docstrings.

Runtime as a context manager
    ``with Dvt.Runtime.new(2) as rt: ...`` shuts the runtime down on exit,
    waiting for the work in flight. A runtime dropped without a shutdown
    logs a warning (``Dovetail-WARNING``) on stderr.

Ctrl-C
    On the main thread, SIGINT during a blocking call (``call_blocking``,
    ``to_thread_blocking``, ``run_blocking``, ``map_blocking`` in both
    forms, ``gather_blocking``, ``Task.result()``) cancels the call's
    task and raises ``KeyboardInterrupt`` from the call at once (a wait
    for a channel's next value or a batcher's close only ends), while
    SIGINT's Python handler is the default one; the runtime stays usable.
    Work that does not watch its cancellable (a plain function, for one)
    runs on to its end in its worker, and its result is dropped. While
    such a call waits, Python's wakeup fd (``signal.set_wakeup_fd``)
    points to a watcher thread of Dovetail's and is put back afterwards;
    a call made while another one is set (a ``GLib.MainLoop`` or an
    asyncio loop running on the main thread) is left alone. Calls from
    other threads are not affected.

Exit and signals
    Dovetail's exit handling (``shutdown_on_exit=True``, the hook of
    ``Dvt.Runtime.set_shutdown_hook(fn)``) runs from Python's ``atexit``,
    while the interpreter can still run a Python hook and Python work:
    the C ``atexit()`` handlers run after the interpreter has been torn
    down. On SIGINT, the runtimes are shut down first (waiting up to 2 s
    for the work they cancelled), then Python's own handler runs and
    raises ``KeyboardInterrupt`` as usual. A blocking call of the main
    thread released by that shutdown raises that ``KeyboardInterrupt``
    (not the shutdown's ``GLib.Error``): later than without
    ``shutdown_on_exit`` when the work ignores its cancellable.

Notes
    The functions given to the calls are kept by the library until it is
    done with them (every call takes a destroy notify), so a cancellation
    that releases a blocking caller early leaves the function running
    safely.

    A stored exception keeps only the frames of the work function, with
    their local variables dropped (so that it does not keep the task
    alive); its traceback still shows every file, line and function.
    Read results drop the references the library keeps to the work
    function and its data, so a work function that refers to its own
    exception makes no cycle through C.
"""

import atexit
import collections
import contextvars
import sys
import threading
import time
import weakref
from concurrent.futures import InvalidStateError as cf_InvalidStateError

from gi.repository import Gio, GLib

# Tells the C library that these overrides are loaded, before any Dovetail
# type is touched: without this quark, a DvtRuntime made from Python logs a
# warning naming where the overrides were installed (a PYTHONPATH missing
# them would otherwise silently give the raw API).
GLib.quark_from_string('dvt-python-overrides')

from ..module import get_introspection_module
from ..overrides import override
from ._dvt import LazyModule
from ._dvt import aio as _aio
from ._dvt import chunks as _chunks
from ._dvt import directions as _directions
from ._dvt import errors as _errors
from ._dvt import futures as _futures
from ._dvt import interrupts as _interrupts
from ._dvt import threads as _threads
from ._dvt import values as _values
from ._dvt.i18n import _

asyncio = LazyModule('asyncio')  # imported at its first use

Dvt = get_introspection_module('Dvt')

__all__ = []

# What the tests read through this module (machinery of the _dvt modules).
_live_exception_count = _errors.live_exception_count
_Chunks = _chunks.Chunks

# ---- work-function wrappers --------------------------------------------------

def _need_callable(call, argument, fn):
    """Refuses a work function (or callback) that cannot be called, before
    anything is queued: it would otherwise fail only once it runs."""
    if not callable(fn):
        raise TypeError(_('%s(%s) needs a callable, not %r')
                        % (call, argument, type(fn).__name__))


def _pick_data(func_data, user_data):
    if user_data is _UNSET:
        return func_data
    if func_data is not None:
        raise TypeError(_('give func_data or user_data, not both'))
    return user_data


_UNSET = object()


def _work(scope, func, func_data):
    """Wraps a DvtThreadFunc, DvtAsyncFunc or DvtMapFunc."""
    scope_ref = weakref.ref(scope)
    holder = scope.hold_work(func, func_data)

    def run(task, cancellable, *_ignored):
        _threads.keep_thread_state()
        func, func_data = _errors.held(holder)
        scope = scope_ref()
        if scope is not None:
            scope.started = True
            _errors.remember(task, scope)
        ok, failure = _errors.guard(scope, func, task, cancellable, func_data)
        if not ok:
            del task, cancellable, _ignored, scope, func, func_data
            raise failure
    return run


def _call_work(scope, fn, args, kwargs):
    """Wraps a plain function into a DvtThreadFunc."""
    scope_ref = weakref.ref(scope)
    holder = scope.hold_work(fn, args, kwargs)

    def run(task, cancellable, *_ignored):
        _threads.keep_thread_state()
        fn, args, kwargs = _errors.held(holder)
        scope = scope_ref()
        if scope is not None:
            scope.started = True
        ok, value = _errors.guard(scope, fn, *args, **kwargs)
        del fn, args, kwargs, scope
        if not ok:
            del task, cancellable, _ignored
            raise value
        Dvt.Task.return_value(task, _values.box(value))
    return run


class _Call:
    """``fn(*args, **kwargs)`` run by ``Runtime.invoke_blocking()``: the
    value stays on the Python side, in the object, and the C library
    completes the task once the function has returned (and let go of the
    interpreter), so the released caller takes the interpreter at once."""

    __slots__ = ('scope', 'fn', 'args', 'kwargs', 'value')

    def __init__(self, scope, fn, args, kwargs):
        self.scope = scope
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.value = None

    def run(self, *_ignored):
        _threads.keep_thread_state()
        ok, value = _errors.guard(self.scope, self.fn, *self.args, **self.kwargs)
        if not ok:
            raise value
        self.value = value
        return True


def _done(call, scope, callback, user_data):
    """Wraps a GAsyncReadyCallback: holds the call's scope until the
    result exists, then the result holds it. The call has ended: none of
    its work starts after this."""
    _need_callable(call, 'callback=', callback)

    def done(source, result, *_ignored):
        scope.end()
        _errors.keep(result, scope)
        callback(source, result, user_data)
    return done


def _is_raw_map(args, kwargs):
    if 'n_items' in kwargs:
        return True
    return bool(args) and isinstance(args[0], int) and not isinstance(args[0], bool)


# ---- events --------------------------------------------------------------------

# Signals whose arguments carry the error of the work: a handler gets the
# Python exception the work raised, as the caller does.
_ERROR_SIGNALS = ('retry', 'failed')


def _event_handler(signal, handler):
    if signal.split('::', 1)[0] not in _ERROR_SIGNALS:
        return handler

    def run(*args):
        return handler(*[_errors.peek(a) for a in args])
    return run


class _EventsMixin:
    def connect(self, signal, handler, *args):
        return super().connect(signal, _event_handler(signal, handler), *args)

    def connect_after(self, signal, handler, *args):
        return super().connect_after(signal, _event_handler(signal, handler), *args)


# ---- function identity ----------------------------------------------------------

# Live event scopes by function, of any runtime. While there are none, calls
# do not copy their options to carry their function's identity.
_function_scopes = 0
_function_scopes_lock = threading.Lock()


def _count_function_scopes(delta):
    global _function_scopes
    with _function_scopes_lock:
        _function_scopes += delta


def _function_target(fn):
    """What identifies @fn: the function itself, or for a bound method its
    function (a bound method is a new object at each attribute access)."""
    return getattr(fn, '__func__', fn)


def _identify(fn, options):
    """The options for a call of @fn: carrying @fn's identity (see
    Dvt.Options.set_function) when event scopes by function exist."""
    if not _function_scopes:
        return options
    options = Dvt.Options() if options is None else Dvt.Options.copy(options)
    Dvt.Options.set_function(options, id(_function_target(fn)))
    return options



# ---- plain calls on runner tasks (asyncio, Executor) ---------------------------

def _set_future(future, ok, value):
    """Completes a concurrent.futures.Future unless it is done already."""
    try:
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
    except cf_InvalidStateError:
        pass


class _PlainCall:
    """``fn(*args, **kwargs)`` in @context, for a future: run() calls it,
    fail() ends the future without it (see _Runners)."""

    __slots__ = ('future', 'context', 'fn', 'args', 'kwargs')

    def __init__(self, future, context, fn, args, kwargs):
        self.future = future
        self.context = context
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def call(self):
        """(True, the value) or (False, the exception)."""
        try:
            return True, self.context.run(self.fn, *self.args, **self.kwargs)
        except BaseException as exc:  # noqa: B902 (handed to the future)
            return False, exc


class _LoopCall(_PlainCall):
    """A plain call whose outcome goes to an asyncio future."""

    __slots__ = ('inbox',)

    def __init__(self, future, inbox, context, fn, args, kwargs):
        super().__init__(future, context, fn, args, kwargs)
        self.inbox = inbox

    def run(self):
        if self.future.done():  # cancelled before it started
            return
        ok, value = self.call()
        self.inbox.post(_aio.settle, (self.future, ok, value))

    def fail(self, error):
        self.inbox.post(_aio.settle, (self.future, False, _futures.from_error(error)))


class _FutureCall(_PlainCall):
    """A plain call whose outcome goes to a concurrent.futures.Future."""

    __slots__ = ()

    def run(self):
        if not self.future.set_running_or_notify_cancel():
            return
        _set_future(self.future, *self.call())

    def fail(self, error):
        error = _futures.from_error(error)
        if isinstance(error, _futures.CancelledError) and self.future.cancel():
            return
        _set_future(self.future, False, error)


# How long a runner with nothing to do waits for another call before its
# task ends: calls awaited one after another then reuse one runner (woken
# through a condition, as a ThreadPoolExecutor's idle thread is) instead of
# starting a task each.
_RUNNER_LINGER = 0.002


class _Runners:
    """Plain calls of one runtime, run by a few runner tasks (at most
    max-workers) that each take calls from a shared queue until it stays
    empty for a moment: one task per burst of calls rather than one per
    call. A runner that never runs (cancelled before it started, by a
    shutdown or cancel_all()) fails the calls nobody else will take."""

    __slots__ = ('runtime', 'limit', 'cond', 'calls', 'active', 'idle', 'waking')

    def __init__(self, runtime):
        self.runtime = weakref.ref(runtime)
        # max-workers is construct-only: read once, not at each call (see
        # _DefaultPolicy for why a C call on this path costs).
        self.limit = max(1, runtime.get_max_workers())
        self.cond = threading.Condition(threading.Lock())
        self.calls = collections.deque()
        self.active = 0
        self.idle = 0     # runners waiting for a call
        self.waking = 0   # of which told that one came

    def add(self, call):
        runtime = self.runtime()
        with self.cond:
            self.calls.append(call)
            if self.idle > self.waking:
                self.waking += 1
                self.cond.notify()
                return
            if self.active >= self.limit:
                return
            self.active += 1
        runner = _Runner(self)
        try:
            Dvt.Runtime.submit(runtime, runner.run, None, None, None)
        except GLib.Error as error:
            runner.ran = True
            self.stopped(error)

    def stopped(self, error):
        """A runner has ended without running: if it was the last, fail
        the calls left."""
        with self.cond:
            self.active -= 1
            if self.active > 0:
                return
            calls, self.calls = self.calls, collections.deque()
        for call in calls:
            call.fail(error)

    def next(self):
        with self.cond:
            if not self.calls:
                self.idle += 1
                self.cond.wait(_RUNNER_LINGER)
                self.idle -= 1
                if self.waking:
                    self.waking -= 1
            if self.calls:
                return self.calls.popleft()
            self.active -= 1
            return None


class _DefaultPolicy:
    """Whether a runtime's own properties give every task a policy of its
    own (``has_task_policy(None)``), asked of the C library again only
    after one of the properties it depends on has changed. PyGObject lets
    go of the interpreter around every C call, and a thread waiting for
    the interpreter (a runner, a worker's Python function) takes it then:
    on the path of ``runtime.call()`` from asyncio, one C call per call
    handed the interpreter back and forth two or three times per call."""

    __slots__ = ('known', 'value')

    # What dvt_runtime_has_task_policy() reads when given no options.
    PROPERTIES = ('timeout', 'retries', 'rate-limit', 'rate-limit-burst')

    def __init__(self, runtime):
        # Connected before the first read, so no change is missed. The
        # handlers hold this object, not the runtime.
        for name in self.PROPERTIES:
            runtime.connect('notify::' + name, self.forget)
        self.known = True
        self.value = Dvt.Runtime.has_task_policy(runtime, None)

    def forget(self, *_ignored):
        self.known = False

    def get(self, runtime):
        if not self.known:
            # Known before it is read: a change while it is read makes it
            # unknown again.
            self.known = True
            self.value = Dvt.Runtime.has_task_policy(runtime, None)
        return self.value


class _Runner:
    __slots__ = ('runners', 'ran')

    def __init__(self, runners):
        self.runners = runners
        self.ran = False

    def run(self, task, cancellable, *_ignored):
        _threads.keep_thread_state()
        self.ran = True
        runners = self.runners
        call = runners.next()
        while call is not None:
            call.run()
            call = runners.next()
        Dvt.Task.return_boolean(task, True)

    def __del__(self):
        if self.ran or sys.is_finalizing():
            return
        runtime = self.runners.runtime()
        if runtime is not None and runtime.is_shutdown():
            error = GLib.Error.new_literal(Dvt.error_quark(),
                                           _('The runtime is shut down'),
                                           Dvt.Error.CLOSED)
        else:
            error = GLib.Error.new_literal(Gio.io_error_quark(),
                                           _('The call was cancelled'),
                                           Gio.IOErrorEnum.CANCELLED)
        self.runners.stopped(error)


# ---- Runtime ------------------------------------------------------------------

class Runtime(_EventsMixin, Dvt.Runtime):
    """A Dovetail runtime; see the module documentation for the Python
    forms of its calls."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.shutdown(True, False)
        return False

    def shutdown(self, wait, cancel_pending):
        """Stops accepting work; waits for the work in flight if @wait,
        cancels the work not yet ended if @cancel_pending."""
        self._dvt_shut_down = True  # see interrupts.after_shutdown()
        Dvt.Runtime.shutdown(self, wait, cancel_pending)

    @staticmethod
    def shutdown_all(wait, cancel_pending):
        """Shuts down every registered runtime; returns how many."""
        for runtime in Dvt.Runtime.list_active():
            runtime._dvt_shut_down = True
        return Dvt.Runtime.shutdown_all(wait, cancel_pending)

    def run_blocking(self, func, func_data=None, options=None, cancellable=None,
                     *, user_data=_UNSET):
        """Runs ``func(task, cancellable, func_data)`` on the loop thread
        and blocks until it has completed its task; returns the value."""
        _need_callable('run_blocking', 'func', func)
        func_data = _pick_data(func_data, user_data)
        scope = _errors.Scope()
        try:
            return _interrupts.blocking(Dvt.Runtime.run_blocking, self,
                                        _work(scope, func, func_data), None,
                                        _identify(func, options), cancellable)
        finally:
            scope.close()

    def to_thread_blocking(self, func, func_data=None, options=None,
                           cancellable=None, *, user_data=_UNSET):
        """Runs ``func(task, cancellable, func_data)`` on a worker and
        blocks for the value it completes its task with."""
        _need_callable('to_thread_blocking', 'func', func)
        func_data = _pick_data(func_data, user_data)
        scope = _errors.Scope()
        try:
            return _interrupts.blocking(Dvt.Runtime.to_thread_blocking, self,
                                        _work(scope, func, func_data), None,
                                        _identify(func, options), cancellable)
        finally:
            scope.close()

    def call_blocking(self, fn, *args, dvt_options=None, dvt_cancellable=None,
                      **kwargs):
        """Runs ``fn(*args, **kwargs)`` on a worker and returns its result
        (or raises its exception). ``dvt_options`` (a ``Dvt.Options``:
        timeout, retries...) and ``dvt_cancellable`` apply to the call and
        are not passed to ``fn``."""
        _need_callable('call_blocking', 'fn', fn)
        scope = _errors.Scope()
        call = _Call(scope, contextvars.copy_context().run, (fn,) + args, kwargs)
        try:
            _interrupts.blocking(Dvt.Runtime.invoke_blocking, self, call.run,
                                 None, _identify(fn, dvt_options), dvt_cancellable)
            return call.value
        finally:
            scope.close()

    def to_thread_async(self, func, func_data=None, options=None,
                        cancellable=None, callback=None, user_data=None):
        """Runs ``func(task, cancellable, func_data)`` on a worker;
        ``callback(runtime, result, user_data)`` runs on the caller's
        thread-default context, where ``to_thread_finish(result)`` reads
        the value."""
        _need_callable('to_thread_async', 'func', func)
        scope = _errors.Scope()
        if callback is not None:
            callback = _done('to_thread_async', scope, callback, user_data)
        # func_data is given as a tuple: PyGObject 3.42 expects one for a
        # callback's data in a call whose last argument is variable user data.
        Dvt.Runtime.to_thread_async(self, _work(scope, func, func_data), (),
                                    _identify(func, options), cancellable,
                                    callback, None)

    def to_thread_finish(self, result):
        return _errors.reraising(Dvt.Runtime.to_thread_finish, self, result)

    def submit(self, func, func_data=None, options=None, cancellable=None,
               *, user_data=_UNSET):
        """Queues ``func(task, cancellable, func_data)`` for a worker and
        returns its task, a future."""
        _need_callable('submit', 'func', func)
        func_data = _pick_data(func_data, user_data)
        scope = _errors.Scope()
        task = Dvt.Runtime.submit(self, _work(scope, func, func_data), None,
                                  _identify(func, options), cancellable)
        _errors.keep(task, scope)
        return task

    def submit_call(self, fn, *args, dvt_options=None, dvt_cancellable=None,
                    **kwargs):
        """Queues ``fn(*args, **kwargs)`` for a worker and returns its task,
        a future: ``task.result()`` gives what ``fn`` returned.
        ``dvt_options`` and ``dvt_cancellable`` apply to the call, as for
        ``call_blocking``."""
        _need_callable('submit_call', 'fn', fn)
        scope = _errors.Scope()
        task = Dvt.Runtime.submit(self, _call_work(scope, contextvars.copy_context().run,
                                                   (fn,) + args, kwargs),
                                  None, _identify(fn, dvt_options),
                                  dvt_cancellable)
        _errors.keep(task, scope)
        return task

    def task_group(self, max_concurrency=0, cancel_on_failure=False,
                   return_errors=False, exit_timeout=None):
        """A new :class:`TaskGroup` of this runtime; see there."""
        return TaskGroup(runtime=self, max_concurrency=max_concurrency,
                         cancel_on_failure=cancel_on_failure,
                         return_errors=return_errors, exit_timeout=exit_timeout)

    def schedule(self, func, func_data=None, options=None, cancellable=None,
                 *, user_data=_UNSET):
        """Starts ``func(task, cancellable, func_data)`` on the loop thread
        and returns its task, a future."""
        _need_callable('schedule', 'func', func)
        func_data = _pick_data(func_data, user_data)
        scope = _errors.Scope()
        task = Dvt.Runtime.schedule(self, _work(scope, func, func_data), None,
                                    _identify(func, options), cancellable)
        _errors.keep(task, scope)
        return task

    def map_blocking(self, *args, **kwargs):
        """``map_blocking(fn, iterable, options=None, cancellable=None)``:
        ``fn(item)`` for every item, in parallel; the results in input
        order.

        ``map_blocking(n_items, func, func_data=None, options=None,
        cancellable=None)``: the raw form, ``func(task, cancellable,
        func_data)`` for every index ``task.get_index()``.
        """
        if _is_raw_map(args, kwargs):
            return self._map_blocking_raw(*args, **kwargs)
        return self._map_blocking_items(*args, **kwargs)

    def _map_blocking_raw(self, n_items, func, func_data=None, options=None,
                          cancellable=None, *, user_data=_UNSET):
        _need_callable('map_blocking', 'func', func)
        func_data = _pick_data(func_data, user_data)
        scope = _errors.Scope()
        return self._map_blocking(n_items, _work(scope, func, func_data),
                                  scope, _identify(func, options), cancellable)

    def _map_blocking_items(self, fn, items, options=None, cancellable=None):
        _need_callable('map_blocking', 'fn', fn)
        items = list(items)
        scope = _errors.Scope()
        options = _identify(fn, options)
        fn = _errors.in_caller_context(fn)
        # The library decides whether items may share runners.
        n_runners = Dvt.Runtime.get_map_runners(self, len(items), options)
        if n_runners == 0:
            return self._map_blocking(len(items), _chunks.item_work(scope, fn, items),
                                      scope, options, cancellable)
        chunks = _chunks.Chunks(scope, fn, items, n_runners,
                                options is not None and options.get_return_errors())
        try:
            _interrupts.blocking(Dvt.Runtime.map_blocking, self, n_runners,
                                 chunks.run, None, options, cancellable)
            return chunks.take_results()
        finally:
            scope.close()

    def _map_blocking(self, n_items, func, scope, options, cancellable):
        try:
            return _errors.unwrap_list(_interrupts.blocking(
                Dvt.Runtime.map_blocking, self, n_items, func, None, options,
                cancellable))
        finally:
            scope.close()

    def map_async(self, *args, **kwargs):
        """``map_async(fn, iterable, options=None, cancellable=None,
        callback=None, user_data=None)`` or the raw
        ``map_async(n_items, func, func_data=None, options=None,
        cancellable=None, callback=None, user_data=None)``; read the
        results with ``map_finish(result)`` in the callback."""
        if _is_raw_map(args, kwargs):
            return self._map_async_raw(*args, **kwargs)
        return self._map_async_items(*args, **kwargs)

    def _map_async_raw(self, n_items, func, func_data=None, options=None,
                       cancellable=None, callback=None, user_data=None):
        _need_callable('map_async', 'func', func)
        scope = _errors.Scope()
        self._map_async(n_items, _work(scope, func, func_data), scope,
                        _identify(func, options), cancellable, callback,
                        user_data)

    def _map_async_items(self, fn, items, options=None, cancellable=None,
                         callback=None, user_data=None):
        _need_callable('map_async', 'fn', fn)
        items = list(items)
        scope = _errors.Scope()
        self._map_async(len(items),
                        _chunks.item_work(scope, _errors.in_caller_context(fn), items),
                        scope, _identify(fn, options), cancellable, callback,
                        user_data)

    def _map_async(self, n_items, func, scope, options, cancellable,
                   callback, user_data):
        if callback is not None:
            callback = _done('map_async', scope, callback, user_data)
        # func_data as a tuple: see to_thread_async.
        Dvt.Runtime.map_async(self, n_items, func, (), options, cancellable,
                              callback, None)

    def map_finish(self, result):
        return _errors.unwrap_list(_errors.reraising(Dvt.Runtime.map_finish, self, result))

    def scope_events(self, *, name=None, function=None, task=None,
                     max_depth=1):
        """A ``Dvt.EventScope``: this runtime's signals for the tasks of
        @name, of @function (by identity: two different lambdas never
        match; a bound method matches through its function), both, or the
        one @task (a ``Dvt.Task`` or its id). @max_depth bounds chains of
        its handlers that cause their own events again (1: no re-entry).
        Keep it for as long as its handlers should run."""
        if function is not None:
            _need_callable('scope_events', 'function=', function)
        if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1:
            raise ValueError(_('max_depth must be an int of at least 1, not %r')
                             % (max_depth,))
        target = _function_target(function) if function is not None else None
        task_id = task.get_id() if isinstance(task, Dvt.Task) else (task or 0)
        scope = Dvt.EventScope.new(self, name,
                                   id(target) if target is not None else None,
                                   task_id)
        scope.set_max_depth(max_depth)
        if target is not None:
            # Holds the function, so that its id is not reused while the
            # scope lives.
            scope._dvt_function = target
            _count_function_scopes(1)
            weakref.finalize(scope, _count_function_scopes, -1)
        return scope

    def gather_blocking(self, tasks, options=None, cancellable=None):
        """Waits for every task of @tasks; their values in the same order.
        Raises TypeError for an element that is not a ``Dvt.Task``."""
        tasks = list(tasks)
        for index, task in enumerate(tasks):
            if not isinstance(task, Dvt.Task):
                raise TypeError(_('gather_blocking() needs Dvt.Task elements; '
                                  'element %d is %r') % (index, type(task).__name__))
        return _errors.unwrap_list(_interrupts.blocking(
            Dvt.Runtime.gather_blocking, self, tasks, options, cancellable))


    # ---- asyncio and concurrent.futures --------------------------------------

    def _dvt_runners(self):
        runners = self.__dict__.get('_dvt_runners_')
        if runners is None:
            runners = self.__dict__.setdefault('_dvt_runners_', _Runners(self))
        return runners

    def _dvt_plain(self, options):
        """Whether plain calls with @options can go to the runners: no
        timeout, retries or rate limit applies to each of them, and no
        event scope by function exists (a call must then be a task that
        carries its function's identity)."""
        if _function_scopes:
            return False
        if options is not None:
            return not self.has_task_policy(options)
        policy = self.__dict__.get('_dvt_policy_')
        if policy is None:
            policy = self.__dict__.setdefault('_dvt_policy_', _DefaultPolicy(self))
        return not policy.get(self)

    def call(self, fn, *args, dvt_options=None, **kwargs):
        """``await runtime.call(fn, *args, **kwargs)`` from a running asyncio
        loop: ``fn(*args, **kwargs)`` runs on a worker, in a copy of the
        caller's ``contextvars`` context, like ``asyncio.to_thread`` but
        with the runtime's bounded concurrency. Returns an
        ``asyncio.Future`` of the running loop (the work starts at once).
        Cancelling it cancels the call if it has not started; a plain
        function that has started runs to its end, its result dropped.

        Without ``dvt_options`` and without a runtime-wide timeout, retries
        or rate limit, calls are handed to a few runner tasks (at most
        ``max-workers``) that run them one after another, as
        ``map_blocking`` does with items: the runtime's events count
        runners, not calls. With them, or while an event scope by function
        exists (``scope_events(function=...)``), each call is a task of its
        own (awaited as ``await task``)."""
        _need_callable('call', 'fn', fn)
        loop = asyncio.get_running_loop()
        if dvt_options is None and self._dvt_plain(None):
            future = loop.create_future()
            self._dvt_runners().add(_LoopCall(future, _aio.inbox(loop),
                                              contextvars.copy_context(), fn,
                                              args, kwargs))
            return future
        task = self.submit_call(fn, *args, dvt_options=dvt_options, **kwargs)
        return asyncio.ensure_future(task)

    def map(self, fn, items, options=None):
        """``await runtime.map(fn, items, options=None)`` from a running
        asyncio loop: ``fn(item)`` for every item on the workers (as
        ``map_async``, each item in a copy of the caller's ``contextvars``
        context); the results in input order. Cancelling the awaiting task
        cancels the map."""
        _need_callable('map', 'fn', fn)
        items = list(items)
        # In the caller's context: map_async runs on the bridge thread.
        fn = _errors.in_caller_context(fn)
        return _aio.start(
            lambda cancellable, callback: self.map_async(
                fn, items, options=options, cancellable=cancellable,
                callback=callback),
            self.map_finish)

    def ashutdown(self, cancel_pending=False):
        """``await runtime.ashutdown()``: shuts the runtime down, draining
        (or with @cancel_pending, cancelling) its work, without blocking
        the asyncio loop."""
        self._dvt_shut_down = True
        return _aio.start(
            lambda cancellable, callback: Dvt.Runtime.shutdown_async(
                self, cancel_pending, cancellable, callback, None),
            lambda result: Dvt.Runtime.shutdown_finish(self, result))

    def await_idle(self):
        """``await runtime.await_idle()``: until no task of the runtime is
        queued or running (the runtime stays open)."""
        return _aio.start(
            lambda cancellable, callback: Dvt.Runtime.wait_idle_async(
                self, cancellable, callback, None),
            lambda result: Dvt.Runtime.wait_idle_finish(self, result))

    def executor(self, options=None):
        """A ``concurrent.futures.Executor`` running its work on this
        runtime: see ``Dvt.Executor``."""
        return _futures.Executor(self, options)

    def _dvt_submit_future(self, future, context, fn, args, kwargs, options):
        """Runs ``fn(*args, **kwargs)`` in @context for the
        concurrent.futures.Future @future (see Executor.submit)."""
        if options is None and self._dvt_plain(None):
            self._dvt_runners().add(_FutureCall(future, context, fn, args, kwargs))
            return

        def work():
            if not future.running() and not future.set_running_or_notify_cancel():
                raise _futures.CancelledError()
            return context.run(fn, *args, **kwargs)

        task = self.submit_call(work, dvt_options=options)

        def settle(task):
            if future.done():
                return
            try:
                value = task.result(0)
            except _futures.CancelledError:
                if not future.cancel():
                    _set_future(future, False, _futures.CancelledError())
            except BaseException as exc:  # noqa: B902
                _set_future(future, False, exc)
            else:
                _set_future(future, True, value)
        future.add_done_callback(lambda f: f.cancelled() and task.cancel())
        task.add_done_callback(settle)

    def call_any(self, fn, *args, **kwargs):
        """One call for every direction: see ``Dvt.Runtime.bridge``.
        A plain function runs on a worker, a coroutine function on an
        asyncio loop. From a thread with no running asyncio loop, returns
        the result (a coroutine function runs on Dovetail's background
        asyncio loop); from a running loop, returns an awaitable (a
        coroutine function runs on that loop)."""
        return _directions.call_any(self, fn, args, kwargs)

    def bridge(self, fn=None, *, timeout=None, retries=0):
        """Decorator: ``@runtime.bridge`` or ``@runtime.bridge(timeout=2,
        retries=1)`` gives a plain or coroutine function the forms
        ``f.sync(*args)`` (blocks for the result, from a thread) and
        ``await f.async_(*args)`` (from a running asyncio loop); calling
        ``f(*args)`` picks the form as ``call_any`` does. @timeout
        (seconds) bounds each attempt, @retries failed attempts are tried
        again."""
        return _directions.bridge(self, fn, timeout=timeout, retries=retries)

Runtime = override(Runtime)
__all__.append('Runtime')

# See "Exit and signals" above.
atexit.register(Dvt.Runtime.run_exit_handler)


# ---- Options ------------------------------------------------------------------

class Options(Dvt.Options):
    """Options for one call (timeout, retries, max_concurrency, priority,
    delay, not_before...), as keywords: ``Dvt.Options(priority=GLib.PRIORITY_HIGH,
    delay=0.5)``."""

    def set_retry_filter(self, retry_filter, user_data=None):
        """``retry_filter(task, error)`` decides whether a failed attempt is
        tried again. @error is what the work raised: a GLib.Error, or the
        Python exception itself."""
        if retry_filter is None:
            Dvt.Options.set_retry_filter(self, None, None)
            return

        def run(task, error, *_ignored):
            return bool(retry_filter(task, _errors.peek(error)))
        Dvt.Options.set_retry_filter(self, run, user_data)


Options = override(Options)
__all__.append('Options')


# ---- Task ---------------------------------------------------------------------

class Task(_EventsMixin, Dvt.Task):
    """One piece of work and its result; also a future."""

    def return_value(self, value=None):
        """Completes the task with @value, any Python object."""
        value = _values.to_value(value)
        Dvt.Task.return_value(self, value)

    def return_error(self, error):
        """Fails the task with @error: a GLib.Error, which reaches the
        caller unchanged, or any exception, which reaches it as itself."""
        if not isinstance(error, GLib.Error):
            if not isinstance(error, BaseException):
                raise TypeError(_('return_error() needs an exception, not %r')
                                % type(error).__name__)
            error = _errors.to_error(_errors.scope_of(self), error, error.__traceback__)
        Dvt.Task.return_error(self, error)

    def propagate_value(self):
        """The value of the ended task, or its error raised."""
        return _errors.reraising(Dvt.Task.propagate_value, self)

    def propagate_boolean(self):
        return _errors.reraising(Dvt.Task.propagate_boolean, self)

    def propagate_int(self):
        return _errors.reraising(Dvt.Task.propagate_int, self)

    # ---- concurrent.futures.Future -------------------------------------------

    def done(self):
        """Whether the task has ended (succeeded, failed or was cancelled)."""
        return self.get_completed()

    def cancelled(self):
        """Whether the task has ended cancelled (``G_IO_ERROR_CANCELLED``)."""
        if not self.get_completed() or not self.had_error():
            return False
        try:
            Dvt.Task.propagate_value(self)
        except GLib.Error as error:
            return error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
        return False

    def running(self):
        """Whether the task's Python work has started and the task has not
        ended yet (False for a task whose work the override does not run:
        a cache's, for one)."""
        scope = getattr(self, '_dvt_scope', None)
        return (scope is not None and scope.started and
                not self.get_completed())

    def cancel(self):
        """Cancels the task (see ``dvt_task_cancel``: a running task ends at
        once, its work is told through its cancellable). Returns whether
        the task is cancelled now: False if it had already ended another
        way."""
        if not self.get_completed():
            Dvt.Task.cancel(self)
        return self.cancelled()

    def _dvt_wait(self, timeout):
        """Waits as concurrent.futures does: @timeout None is no limit, 0
        or less does not wait; raises Dvt.TimeoutError if time runs out."""
        if timeout is None:
            limit = 0
        elif timeout <= 0 or timeout != timeout:
            if not self.get_completed():
                raise _futures.TimeoutError()
            return
        else:
            limit = timeout
        try:
            _interrupts.interruptible(self, self.wait, limit)
        except GLib.Error as error:
            raise _futures.from_error(error) from None

    def result(self, timeout=None):
        """Waits until the task has ended (at most @timeout seconds; None:
        as long as it takes; 0: not at all) and returns its value or
        raises its error. Raises ``Dvt.TimeoutError`` (a ``TimeoutError``
        and a ``GLib.Error`` ``G_IO_ERROR_TIMED_OUT``) if the time runs out
        first, ``Dvt.CancelledError`` (a
        ``concurrent.futures.CancelledError`` and a ``GLib.Error``
        ``G_IO_ERROR_CANCELLED``) if the task was cancelled. On the main
        thread, Ctrl-C cancels the task and raises KeyboardInterrupt."""
        self._dvt_wait(timeout)
        try:
            return self.propagate_value()
        except GLib.Error as error:
            if _interrupts.on_main_thread():
                _interrupts.after_shutdown(self.get_runtime(), error)
            converted = _futures.from_error(error)
            if converted is error:
                raise
        raise converted

    def exception(self, timeout=None):
        """The exception the task ended with, or None if it succeeded;
        waits as :meth:`result` does. Raises ``Dvt.CancelledError`` if the
        task was cancelled."""
        self._dvt_wait(timeout)
        try:
            self.propagate_value()
        except GLib.Error as error:
            converted = _futures.from_error(error)
            if isinstance(converted, _futures.CancelledError):
                raise converted from None
            return converted
        except BaseException as exc:  # noqa: B902 (the work's own exception)
            return exc
        return None

    def add_done_callback(self, fn):
        """Calls ``fn(task)`` once the task has ended: at once (on this
        thread) if it has, otherwise on Dovetail's asyncio bridge thread.
        An exception ``fn`` raises is logged and dropped."""
        _need_callable('add_done_callback', 'fn', fn)
        if self.get_completed():
            _futures.call_done_callback(fn, self)
            return
        _aio.watch(lambda cancellable, callback:
                   Dvt.Task.wait_async(self, None, callback, None),
                   lambda result: None,
                   lambda ok, value: _futures.call_done_callback(fn, self))

    # ---- asyncio ---------------------------------------------------------------

    def _dvt_finish_wait(self, result):
        """The outcome of the task, once wait_async has called back with
        @result (None: the task had ended before the await)."""
        try:
            if result is not None:
                Dvt.Task.wait_finish(self, result)
        except GLib.Error:
            # The wait itself failed (cancelled), or reports the task's
            # error, which propagate_value() raises as the Python exception.
            if not self.get_completed():
                raise
        try:
            return self.propagate_value()
        except GLib.Error as error:
            converted = _futures.from_error(error)
            if converted is error:
                raise
        raise converted

    def __await__(self):
        """``await task`` in a running asyncio loop: the task's value, or
        its error raised (``Dvt.CancelledError`` if it was cancelled).
        Cancelling the awaiting asyncio task cancels this task."""
        if self.get_completed():
            # Nothing to wait for: no trip through the bridge thread.
            future = asyncio.get_running_loop().create_future()
            try:
                future.set_result(self._dvt_finish_wait(None))
            except BaseException as exc:  # noqa: B902 (raised by the await)
                future.set_exception(exc)
            return future.__await__()
        return _aio.start(
            lambda cancellable, callback:
                Dvt.Task.wait_async(self, cancellable, callback, None),
            self._dvt_finish_wait, on_cancel=self.cancel).__await__()


Task = override(Task)
__all__.append('Task')


# ---- EventScope ---------------------------------------------------------------

class EventScope(_EventsMixin, Dvt.EventScope):
    """A runtime's event signals for some of its tasks; made with
    ``Runtime.scope_events()``. ``retry`` and ``failed`` handlers get the
    Python exception the work raised."""


EventScope = override(EventScope)
__all__.append('EventScope')


# ---- Callable -----------------------------------------------------------------

def _callable_work(func):
    """Wraps a DvtCallableFunc: an exception it raises fails the call."""
    def run(task, args, cancellable, user_data):
        _threads.keep_thread_state()
        ok, failure = _errors.guard(_errors.scope_of(task), func, task, args,
                                    cancellable, user_data)
        if not ok:
            del task, args, cancellable, user_data
            raise failure
    return run


class Callable(Dvt.Callable):
    """A function bound to a runtime and options, called many times:
    ``func(task, args, cancellable, user_data)`` completes @task."""

    @classmethod
    def new(cls, runtime, func, user_data=None, options=None):
        _need_callable('Callable.new', 'func', func)
        return Dvt.Callable.new(runtime, _callable_work(func), user_data,
                                options)

    @classmethod
    def new_async(cls, runtime, func, user_data=None, options=None):
        _need_callable('Callable.new_async', 'func', func)
        return Dvt.Callable.new_async(runtime, _callable_work(func), user_data,
                                      options)

    def call_blocking(self, args=None, cancellable=None):
        """Calls the function with @args (a GLib.Variant or None) and
        returns the value it completes its task with."""
        # Through the task, which keeps the Python exception of the call
        # for its reader (see _errors.scope_of()); Task.result() also turns
        # Ctrl-C on the main thread into KeyboardInterrupt.
        task = _errors.reraising(Dvt.Callable.submit, self, args, cancellable)
        return task.result()

    def call_finish(self, result):
        return _errors.reraising(Dvt.Callable.call_finish, self, result)

    def acall(self, args=None):
        """``await callable.acall(args)`` from a running asyncio loop: the
        value the function completes its task with. Cancelling the
        awaiting task cancels the call."""
        return _aio.start(
            lambda cancellable, callback:
                Dvt.Callable.call_async(self, args, cancellable, callback, None),
            self.call_finish)


Callable = override(Callable)
__all__.append('Callable')
# ---- Queue --------------------------------------------------------------------

class Queue(Dvt.Queue):
    """A queue shared by threads and main loops, with the conveniences of
    Python's ``queue.Queue``::

        q = Dvt.Queue(max_size=64)          # or order=Dvt.QueueOrder.PRIORITY
        q.put(item)                         # waits while full; put(item, priority=-1)
        item = q.get(timeout=2.5)           # waits while empty; None: no limit
        q.put_nowait(item); q.get_nowait()  # Dvt.Error.FULL / EMPTY
        for item in q: ...                  # until the queue is closed and drained
        with q: ...                         # closes the queue on exit

    Any Python object is an item (``None`` and integers beyond 32 bits
    included) and comes out as itself; the raw calls (``push_blocking``,
    ``try_push``, ``push_async``) take any object too. Failures are
    ``GLib.Error``: ``Dvt.Error.CLOSED``, ``FULL``, ``EMPTY``, and
    ``Gio.IOErrorEnum.TIMED_OUT`` or ``CANCELLED``. From a GLib main loop,
    use ``pop_async``/``pop_finish`` and ``push_async``/``push_finish``."""

    def __init__(self, order=Dvt.QueueOrder.FIFO, max_size=0, **kwargs):
        Dvt.Queue.__init__(self, order=order, max_size=max_size, **kwargs)

    def push_blocking(self, value, priority=0, timeout=0, cancellable=None):
        return Dvt.Queue.push_blocking(self, _values.to_value(value), priority,
                                       timeout, cancellable)

    def try_push(self, value, priority=0):
        return Dvt.Queue.try_push(self, _values.to_value(value), priority)

    def push_async(self, value, *args, **kwargs):
        return Dvt.Queue.push_async(self, _values.to_value(value), *args, **kwargs)

    def pop_blocking(self, timeout=0, cancellable=None):
        return Dvt.Queue.pop_blocking(self, timeout, cancellable)

    @staticmethod
    def _timeout(block, timeout):
        """0 for "no limit", or None for "do not wait"."""
        if not block or timeout == 0:
            return None
        if timeout is None:
            return 0
        if timeout < 0:
            raise ValueError(_("'timeout' must be a non-negative number"))
        return timeout

    def put(self, item, block=True, timeout=None, priority=0, cancellable=None):
        """Pushes @item, waiting at most @timeout seconds (None: as long as
        it takes) while the queue is full; ``block=False`` or a timeout of
        0 does not wait."""
        limit = self._timeout(block, timeout)
        if limit is None:
            self.try_push(item, priority)
        else:
            self.push_blocking(item, priority, limit, cancellable)

    def get(self, block=True, timeout=None, cancellable=None):
        """Takes the next item, waiting at most @timeout seconds (None: as
        long as it takes) while the queue is empty; ``block=False`` or a
        timeout of 0 does not wait."""
        limit = self._timeout(block, timeout)
        if limit is None:
            return self.try_pop()
        return self.pop_blocking(limit, cancellable)

    def put_nowait(self, item, priority=0):
        self.try_push(item, priority)

    def aget(self):
        """``await queue.aget()`` from a running asyncio loop: the next
        item, once there is one. Cancelling the awaiting task withdraws
        the wait and loses no item: one handed to this wait at the instant
        it was cancelled is pushed again (at the back of a FIFO queue)."""
        return _aio.start(
            lambda cancellable, callback:
                Dvt.Queue.pop_async(self, cancellable, callback, None),
            lambda result: Dvt.Queue.pop_finish(self, result),
            on_orphan=self._dvt_push_back)

    def _dvt_push_back(self, item):
        try:
            self.try_push(item)
        except GLib.Error:
            # Full or closed: wait for room off the asyncio thread.
            threading.Thread(target=self._dvt_push_later, args=(item,),
                             daemon=True).start()

    def _dvt_push_later(self, item):
        try:
            self.push_blocking(item)
        except GLib.Error:
            pass  # closed: the item goes with the queue

    def aput(self, item, priority=0):
        """``await queue.aput(item)`` from a running asyncio loop: pushes
        @item once there is room."""
        value = _values.to_value(item)
        return _aio.start(
            lambda cancellable, callback: Dvt.Queue.push_async(
                self, value, priority, cancellable, callback, None),
            lambda result: Dvt.Queue.push_finish(self, result))

    def get_nowait(self):
        return self.try_pop()

    def qsize(self):
        return self.get_n_items()

    def empty(self):
        return self.get_n_items() == 0

    def full(self):
        return 0 < self.get_max_size() <= self.get_n_items()

    def __iter__(self):
        """Takes items until the queue is closed and empty."""
        while True:
            try:
                yield self.pop_blocking()
            except GLib.Error as error:
                if error.matches(Dvt.error_quark(), Dvt.Error.CLOSED):
                    return
                raise

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False


Queue = override(Queue)
__all__.append('Queue')


# ---- Channel and Batcher ------------------------------------------------------
#
# Runtime.produce(gen_func, *args, capacity=1) runs a generator function on
# a worker: each value it yields is sent to the channel (waiting while
# `capacity` values are buffered), and an exception it raises reaches the
# consumer, after the last value, as the same exception object (through
# the errors.Scope of the channel's Python object). The consumer iterates the
# channel from a thread; leaving the loop early closes the channel, which
# makes the generator's pending yield raise GeneratorExit (its `finally`
# clauses run) and ends the producer cleanly.

_inspect = LazyModule('inspect')  # imported at its first use


def _is_closed_error(error):
    return (isinstance(error, GLib.Error) and
            error.matches(Dvt.error_quark(), Dvt.Error.CLOSED))


class _Pump:
    """What the producer of a generator-driven channel and its Python
    consumers share, so that values cross into C several at a time.

    Each call into C lets the GIL go, and the two threads would hand it
    to each other for every value. So the producer holds the values it
    takes in @pending, converted, and sends them in one call to
    Channel.send_many when it has @limit of them, when taking one more
    could put it more than the capacity ahead of the consumer, or at once
    while a consumer waits (@waiting). It holds values back only while
    @batching, set by the Python iterators, which never wait without first
    sending what it holds themselves (rescue()): a generator that is slow
    to give its next value never keeps the values before it from a
    consumer that has nothing else to do. Any other receive (blocking,
    async, try) ends the batching for good (@shared): such a consumer
    does not rescue.

    The values held and those buffered in the channel are never more than
    its capacity together: a rescue moves them from one to the other, and
    so never waits for room."""

    __slots__ = ('lock', 'pending', 'waiting', 'batching', 'shared', 'closed',
                 '_count_lock', 'held', 'starved', 'cond', 'streaming')

    # The most values held: enough to make the calls into C rare, few
    # enough that a consumer starts on them soon.
    LIMIT = 256
    # The least capacity for which batches pay: below it, the values cross
    # one at a time (as with a raw producer), which was faster in
    # `python3 benchmarks/bench-python.py`-like runs of 30 000 values
    # (at 64: 1.1-1.4e5 values/s batched against 1.4-1.5e5 one at a time
    # from asyncio; at 128 even; at 512: 2.5-3.5e5 against 1.7e5).
    MIN_CAPACITY = 128

    def __init__(self):
        self.lock = threading.Lock()       # held while sending @pending
        self._count_lock = threading.Lock()
        self.pending = []
        self.waiting = 0       # consumers waiting for a value
        self.batching = False  # a Python iterator consumes the channel
        # A receive outside the iterators was made: no batching from then on.
        self.shared = False
        self.closed = False    # the consumer has closed the channel
        # The iterators' _Held cells: values they took from the channel
        # and have not given to their loop yet. They still count as
        # ahead of the consumer.
        self.held = set()
        self.starved = False   # the producer waits for the iterators
        # The producer's last send was of a full batch (or filled the
        # channel): it gives values faster than the consumer takes them.
        self.streaming = False
        self.cond = threading.Condition(threading.Lock())

    def backlog(self):
        return sum(cell.n for cell in tuple(self.held))

    def wake(self):
        """Wakes the producer waiting for the iterators to hand values on."""
        with self.cond:
            self.cond.notify_all()

    def rescue(self, channel):
        """Sends the values the producer holds, from a consumer about to
        wait; does nothing while the producer is sending them itself.
        Returns whether it sent any."""
        if not self.pending or not self.lock.acquire(blocking=False):
            return False
        try:
            batch, self.pending = self.pending, []
            if batch:
                Dvt.Channel.send_many(channel, batch, None)
            return bool(batch)
        except GLib.Error as error:
            # Closed: the values go with the channel.
            if not _is_closed_error(error):
                raise
            return False
        finally:
            self.lock.release()

    def begin_wait(self, channel):
        """A consumer found the channel empty and is about to wait: the
        producer must not hold values any more, and those it holds go.
        Returns whether values were sent (then the consumer need not wait)."""
        with self._count_lock:
            self.waiting += 1
        return self.rescue(channel)

    def end_wait(self):
        with self._count_lock:
            self.waiting -= 1


class _Held:
    """How many values an iterator took from the channel and has not
    handed on yet."""

    __slots__ = ('n', 'capacity', 'pump')

    def __init__(self, capacity, pump):
        self.n = 0
        self.capacity = capacity
        self.pump = pump

    def settle(self, n):
        """Sets the count to @n, no more than it was, and wakes a producer
        that waits for it to go down (see _room())."""
        self.n = n
        if self.pump.starved:
            self.pump.wake()


def _drive(channel, cancellable, iterable, pump=None):
    """Sends every value of @iterable; stops quietly once the consumer has
    closed the channel (or the runtime was shut down)."""
    iterator = iter(iterable)
    try:
        if pump is None:
            for item in iterator:
                try:
                    Dvt.Channel.send(channel, _values.to_value(item), cancellable)
                except GLib.Error as error:
                    if _is_closed_error(error):
                        return
                    raise
        else:
            _drive_batched(channel, cancellable, iterator, pump)
    finally:
        close = getattr(iterator, 'close', None)
        if close is not None:
            close()


def _drive_batched(channel, cancellable, iterator, pump):
    """_drive() with a _Pump: see there."""
    send_many = Dvt.Channel.send_many
    to_value = _values.to_value
    lock = pump.lock
    capacity = Dvt.Channel.get_capacity(channel)
    limit = max(1, min(capacity, pump.LIMIT))
    # How many values may still be taken without getting more than the
    # capacity ahead, at least: only receives free room, and a rescue
    # moves values from @pending to the channel.
    free = capacity

    def flush():
        with lock:
            batch, pump.pending = pump.pending, []
            if batch:
                send_many(channel, batch, cancellable)

    try:
        while not pump.closed:
            try:
                item = next(iterator)
            except StopIteration:
                flush()
                return
            except BaseException:
                # The values before the error come first.
                try:
                    flush()
                except GLib.Error:
                    pass
                raise
            value = to_value(item)
            del item
            with lock:
                pump.pending.append(value)
                held = len(pump.pending)
            del value
            free -= 1
            if free <= 0 or held >= limit:
                pump.streaming = True
                flush()
            elif pump.waiting or not pump.batching:
                pump.streaming = False
                flush()
            else:
                continue
            if free <= 0:
                free = _room(channel, cancellable, pump, capacity)
    except GLib.Error as error:
        if _is_closed_error(error):
            return
        raise


def _room(channel, cancellable, pump, capacity):
    """How many values the producer may take: the capacity less the values
    buffered and those the iterators hold. While the iterators hold values
    and there is no room, waits for them to hand values on (a send would
    not wait: the channel's buffer has room). Without such values, a
    channel that is full makes the next send wait."""
    n_items = Dvt.Channel.get_n_items
    with pump.cond:
        pump.starved = True
        try:
            while True:
                # The buffer before the iterators' values: a value taken
                # in between is counted twice rather than not at all.
                buffered = n_items(channel)
                backlog = pump.backlog()
                free = capacity - buffered - backlog
                if free > 0 or backlog == 0 or pump.closed:
                    return free
                if Dvt.Channel.is_closed(channel) or (
                        cancellable is not None and cancellable.is_cancelled()):
                    return free
                # Woken by an iterator handing a value on, or a close; the
                # timeout sees a shutdown or a cancellation.
                pump.cond.wait(0.05)
        finally:
            pump.starved = False


def _producer_work(scope, fn, args, kwargs, pump):
    """Wraps ``fn(*args, **kwargs)``, an iterable's maker (a generator
    function), or an iterable itself (fn None, args[0]), into a
    DvtProduceFunc that sends through @pump."""
    scope_ref = weakref.ref(scope)
    holder = scope.hold_work(fn, args, kwargs)

    def run(channel, cancellable, *_ignored):
        _threads.keep_thread_state()
        fn, args, kwargs = _errors.held(holder)
        iterable = args[0] if fn is None else _Lazy(fn, args, kwargs)
        ok, failure = _errors.guard(scope_ref(), _drive, channel, cancellable, iterable,
                                    pump)
        del fn, args, kwargs, iterable
        if not ok:
            del channel, cancellable, _ignored
            raise failure
        return True
    return run


def _raw_producer_work(scope, func, func_data):
    """Wraps ``func(channel, cancellable, func_data)``, which sends the
    values itself, into a DvtProduceFunc."""
    scope_ref = weakref.ref(scope)
    holder = scope.hold_work(func, func_data)

    def run(channel, cancellable, *_ignored):
        _threads.keep_thread_state()
        func, func_data = _errors.held(holder)
        ok, failure = _errors.guard(scope_ref(), func, channel, cancellable, func_data)
        del func, func_data
        if not ok:
            if _is_closed_error(failure):
                return True
            del channel, cancellable, _ignored
            raise failure
        return True
    return run


class _Lazy:
    """``fn(*args, **kwargs)``, called on the worker when iterated."""

    __slots__ = ('fn', 'args', 'kwargs')

    def __init__(self, fn, args, kwargs):
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def __iter__(self):
        return iter(self.fn(*self.args, **self.kwargs))


class Channel(Dvt.Channel):
    """The consumer's side of ``Runtime.produce()``::

        for value in rt.produce(gen_func, arg, capacity=8):   # from a thread
            ...

    Iterating receives the values in order until the end of the stream;
    an exception the producer raised is re-raised after its last value.
    Leaving the loop early (``break``, an exception) closes the channel,
    so that the producer stops. ``receive_blocking(timeout=0)`` returns
    ``(True, value)``, or ``(False, None)`` at the end of the stream;
    ``with channel:`` closes it on exit. From a GLib main loop, use
    ``receive_async``/``receive_finish``.

    From a running asyncio loop::

        async for value in rt.produce(gen_func, arg, capacity=8):
            ...

    receives without blocking the loop (values already buffered are taken
    at once, without a trip through another thread), with the same
    back-pressure, end and exception; leaving the loop early, or the
    consuming asyncio task being cancelled, closes the channel.
    ``await channel.areceive()`` is ``receive_blocking()``'s twin; a value
    handed to a receive at the instant its awaiting task was cancelled is
    not lost: the next receive of this channel returns it (a receive that
    was already waiting meanwhile may get the value after it first)."""

    def send(self, value, cancellable=None):
        return Dvt.Channel.send(self, _values.to_value(value), cancellable)

    def send_many(self, values, cancellable=None):
        """Sends every item of @values, in order, as many send() calls
        would: returns ``(True, len(values))``. A failure raises, and the
        values after the one that failed are not sent."""
        to_value = _values.to_value
        return Dvt.Channel.send_many(self, [to_value(v) for v in values], cancellable)

    def _dvt_unbatch(self):
        """A receive outside the channel's iterators: from now on the
        producer sends each value as soon as it has it (see _Pump), and
        the values it holds go now."""
        pump = self.__dict__.get('_dvt_pump')
        if pump is not None and not pump.shared:
            pump.shared = True
            pump.batching = False
            pump.rescue(self)

    def receive_blocking(self, timeout=0, cancellable=None):
        """On the main thread, Ctrl-C ends the wait with KeyboardInterrupt
        (the producer goes on until the channel is closed)."""
        self._dvt_unbatch()
        return self._dvt_receive_blocking(timeout, cancellable)

    def _dvt_receive_blocking(self, timeout, cancellable):
        kept = self._dvt_kept()
        if kept is not None:
            return kept
        return _interrupts.blocking(Dvt.Channel.receive_blocking, self, timeout,
                                    cancellable)

    def receive_async(self, *args, **kwargs):
        self._dvt_unbatch()
        return Dvt.Channel.receive_async(self, *args, **kwargs)

    def try_receive(self):
        self._dvt_unbatch()
        kept = self._dvt_kept()
        if kept is not None:
            return kept
        return _errors.reraising(Dvt.Channel.try_receive, self)

    def try_receive_many(self, max_values=0):
        """Every value buffered (at most @max_values; 0: no limit), without
        waiting: ``(True, [values])``, ``(False, None)`` at the end of the
        stream; raises GLib.Error DVT_ERROR_EMPTY when none is buffered,
        and the producer's exception after its last value."""
        self._dvt_unbatch()
        kept = self._dvt_kept()
        if kept is not None:
            return True, [kept[1]]
        return _errors.reraising(Dvt.Channel.try_receive_many, self, max_values)

    def receive_finish(self, result):
        return _errors.reraising(Dvt.Channel.receive_finish, self, result)

    def close(self, reason=None):
        pump = self.__dict__.get('_dvt_pump')
        if pump is not None:
            pump.closed = True
            pump.wake()
        Dvt.Channel.close(self, reason)
        with _errors.lock:
            self._dvt_closed = True
            self.__dict__.pop('_dvt_orphans', None)

    def _dvt_kept(self):
        """``(True, value)`` for a value a cancelled areceive() was handed,
        oldest first, or None."""
        orphans = self.__dict__.get('_dvt_orphans')
        if orphans:
            try:
                return True, orphans.popleft()
            except IndexError:
                pass
        return None

    def _dvt_keep(self, received):
        """on_orphan of areceive(): keeps the value a cancelled receive was
        handed for the next receive (not once the consumer has closed)."""
        ok, value = received
        with _errors.lock:
            if ok and not self.__dict__.get('_dvt_closed'):
                self.__dict__.setdefault('_dvt_orphans',
                                         collections.deque()).append(value)

    def areceive(self):
        """``await channel.areceive()`` from a running asyncio loop:
        ``(True, value)``, or ``(False, None)`` at the end of the stream;
        the producer's exception is raised after its last value."""
        # A coroutine: nothing is taken from the channel until it runs, so
        # an awaiting task cancelled before its first step loses nothing.
        self._dvt_unbatch()
        return self._dvt_areceive()

    async def _dvt_areceive(self):
        kept = self._dvt_kept()
        if kept is None and Dvt.Channel.get_n_items(self) > 0:
            kept = self._dvt_try()
        if kept is not None:
            return kept
        result = await _aio.start(
            lambda cancellable, callback:
                Dvt.Channel.receive_async(self, cancellable, callback, None),
            self.receive_finish, on_orphan=self._dvt_keep)
        if not result[0]:
            # The end of the stream, but a receive cancelled just before
            # this one may have taken the last value (kept by on_orphan,
            # settled before this result): it comes first. The end stays.
            kept = self._dvt_kept()
            if kept is not None:
                return kept
        return result

    def _dvt_take(self, held):
        """Every value buffered, with one call (a list), [] if none is
        yet, or None at the end of the stream; the producer's exception
        is raised. @held (a _Held, or None) counts the values taken."""
        if held is None:
            # Values taken several at a time would let the producer
            # (not one of Runtime.produce's generators) run ahead.
            if Dvt.Channel.get_n_items(self) == 0:
                return []
            kept = self._dvt_try_or_empty()
            if kept is None:
                return []
            ok, value = kept
            return [value] if ok else None
        # Counted before they leave the buffer, so that the producer never
        # misses them (see _room()).
        held.n = held.capacity
        try:
            ok, values = _errors.reraising(Dvt.Channel.try_receive_many, self, 0)
        except GLib.Error as error:
            held.settle(0)
            if not error.matches(Dvt.error_quark(), Dvt.Error.EMPTY):
                raise
            return []
        except BaseException:
            held.settle(0)
            raise
        if not ok:
            held.settle(0)
            return None
        held.settle(len(values))
        return values

    def _dvt_try_or_empty(self):
        try:
            return _errors.reraising(Dvt.Channel.try_receive, self)
        except GLib.Error as error:
            if not error.matches(Dvt.error_quark(), Dvt.Error.EMPTY):
                raise
        return None

    def _dvt_start_iterating(self):
        pump = self.__dict__.get('_dvt_pump')
        if pump is None:
            return None, None
        held = _Held(Dvt.Channel.get_capacity(self), pump)
        pump.held.add(held)
        pump.batching = not pump.shared
        return pump, held

    def __iter__(self):
        pump, held = self._dvt_start_iterating()
        try:
            while True:
                kept = self._dvt_kept()
                if kept is not None:
                    yield kept[1]
                    continue
                # The values buffered are taken with one call, without
                # the main thread's Ctrl-C set-up, which costs more than
                # a receive.
                values = self._dvt_take(held)
                if values is None:
                    return
                if values:
                    for value in values:
                        if held is not None:
                            held.settle(held.n - 1)
                        yield value
                    continue
                if pump is not None and pump.begin_wait(self):
                    pump.end_wait()
                    continue
                try:
                    ok, value = self._dvt_receive_blocking(0, None)
                finally:
                    if pump is not None:
                        pump.end_wait()
                if not ok:
                    return
                yield value
        finally:
            if pump is not None:
                pump.held.discard(held)
            self.close()

    def _dvt_try(self):
        """try_receive(), or None if nothing is buffered after all (another
        consumer took it)."""
        try:
            return _errors.reraising(Dvt.Channel.try_receive, self)
        except GLib.Error as error:
            if not error.matches(Dvt.error_quark(), Dvt.Error.EMPTY):
                raise
        return None

    async def __aiter__(self):
        """``async for value in channel``: see the class."""
        pump, held = self._dvt_start_iterating()
        lingered = False
        try:
            while True:
                kept = self._dvt_kept()
                if kept is not None:
                    yield kept[1]
                    continue
                # Values already buffered are taken at once, with one
                # call: no trip through the bridge thread, no wake-up of
                # the loop.
                values = self._dvt_take(held)
                if values is None:
                    return
                if values:
                    lingered = False
                    for value in values:
                        if held is not None:
                            held.settle(held.n - 1)
                        yield value
                    continue
                if pump is not None and pump.streaming and not lingered:
                    # Waking this loop from another thread costs more than
                    # many values: a producer that streams fills the
                    # channel meanwhile. Once, for one turn of the loop:
                    # then it waits.
                    lingered = True
                    if not pump.rescue(self):
                        await asyncio.sleep(0)
                    continue
                lingered = False
                if pump is not None and pump.begin_wait(self):
                    pump.end_wait()
                    continue
                try:
                    ok, value = await self._dvt_areceive()
                finally:
                    if pump is not None:
                        pump.end_wait()
                if not ok:
                    return
                yield value
        finally:
            if pump is not None:
                pump.held.discard(held)
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False


Channel = override(Channel)
__all__.append('Channel')


def _is_raw_produce(func, args, kwargs):
    """Whether ``produce(func, *args, **kwargs)`` is the raw form."""
    if kwargs or not 2 <= len(args) <= 4 or _inspect.isgeneratorfunction(func):
        return False
    if not isinstance(args[1], int) or isinstance(args[1], bool):
        return False
    try:
        params = _inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return (len(positional) == 3 and
            all(p.kind not in (p.VAR_POSITIONAL, p.KEYWORD_ONLY) or
                p.default is not p.empty for p in params))


def _pump_for(capacity):
    """A _Pump for a generator-driven channel of @capacity, or None where
    values are better sent one at a time."""
    if isinstance(capacity, int) and capacity >= _Pump.MIN_CAPACITY:
        return _Pump()
    return None


def _runtime_produce(self, func, *args, capacity=1, options=None,
                     cancellable=None, **kwargs):
    """Runs a producer on a worker and returns its :class:`Channel`.

    ``rt.produce(gen_func, *args, capacity=1, options=None,
    cancellable=None, **kwargs)``: ``gen_func(*args, **kwargs)`` (a
    generator function, or any function returning an iterable) runs on a
    worker; every value it yields is sent. ``rt.produce(iterable)`` sends
    the values of an iterable. The raw form, with a function that sends
    itself, is ``rt.produce(func, func_data, capacity, options,
    cancellable)`` with ``func(channel, cancellable, func_data)``; it is
    recognised by its function taking exactly three parameters (and not
    being a generator function) and the argument after ``func_data``
    being an ``int``, the capacity."""
    scope = _errors.Scope()
    pump = None
    if not callable(func) and hasattr(func, '__iter__') and not args and not kwargs:
        pump = _pump_for(capacity)
        work = _producer_work(scope, None, (func,), {}, pump)
    elif _is_raw_produce(func, args, kwargs):
        # The raw form: func(channel, cancellable, func_data).
        _need_callable('produce', 'func', func)
        func_data, capacity, *rest = args
        options = rest[0] if len(rest) > 0 else options
        cancellable = rest[1] if len(rest) > 1 else cancellable
        work = _raw_producer_work(scope, func, func_data)
    else:
        _need_callable('produce', 'func', func)
        pump = _pump_for(capacity)
        work = _producer_work(scope, func, args, kwargs, pump)
    channel = _errors.reraising(Dvt.Runtime.produce, self, work, None, capacity,
                                options, cancellable)
    if pump is not None:
        channel._dvt_pump = pump
    channel._dvt_scope = scope
    channel._dvt_runtime = self
    return channel


Runtime.produce = _runtime_produce


def _batch_work(scope, fn):
    """Wraps ``fn(items)`` (a list) into a DvtBatchFunc."""
    scope_ref = weakref.ref(scope)
    holder = scope.hold_work(fn)

    def run(task, items, cancellable, *_ignored):
        _threads.keep_thread_state()
        fn, = _errors.held(holder)
        ok, failure = _errors.guard(scope_ref(), fn, list(items))
        del fn, items
        if not ok:
            del task, cancellable, _ignored
            raise failure
    return run


class Batcher(Dvt.Batcher):
    """Items added from any thread, handed in batches to a function run on
    a worker; made with ``Runtime.batcher()``::

        with rt.batcher(store_rows, max_items=100, max_wait=0.5) as b:
            b.add(row)            # any thread; never blocks
        # leaving the block flushes and waits for every batch

        async with rt.batcher(store_rows, max_items=100) as b:   # asyncio
            b.add(row)
        # the flush and the wait are awaited (await b.aclose())

    ``fn(items)`` gets a list of the items, in the order they were added.
    ``close(timeout=0)`` flushes, waits for every batch and re-raises the
    first exception a batch raised; ``flush()`` dispatches the pending
    items at once and returns the batch's :class:`Task` (or None)."""

    def add(self, item):
        return _errors.reraising(Dvt.Batcher.add, self, _values.to_value(item))

    def close_blocking(self, timeout=0, cancellable=None):
        """On the main thread, Ctrl-C ends the wait with KeyboardInterrupt
        (the batches go on)."""
        return _interrupts.blocking(Dvt.Batcher.close_blocking, self, timeout,
                                    cancellable)

    def close_finish(self, result):
        return _errors.reraising(Dvt.Batcher.close_finish, self, result)

    def close(self, timeout=0, cancellable=None):
        return self.close_blocking(timeout, cancellable)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc_info):
        if exc_type is None:
            self.close()
        else:
            try:
                self.close()
            except Exception:
                pass   # the body's exception wins
        return False

    def aclose(self):
        """``await batcher.aclose()`` from a running asyncio loop: closes,
        flushes and waits for every batch without blocking the loop, then
        re-raises the first exception a batch raised. Cancelling the
        awaiting task ends the wait only: the batcher stays closed and its
        batches run to their end."""
        return _aio.start(
            lambda cancellable, callback:
                Dvt.Batcher.close_async(self, cancellable, callback, None),
            self.close_finish)

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type, *exc_info):
        """``async with rt.batcher(fn) as b:`` awaits :meth:`aclose` on
        exit; the block's own exception wins over a batch's."""
        if exc_type is None:
            await self.aclose()
        else:
            try:
                await self.aclose()
            except Exception:
                pass
        return False


Batcher = override(Batcher)
__all__.append('Batcher')


def _runtime_batcher(self, fn, max_items=100, max_wait=0, options=None):
    """A :class:`Batcher` that calls ``fn(items)`` on a worker for each
    batch of at most @max_items items, dispatched once full or @max_wait
    seconds after its first item (0: no time limit)."""
    _need_callable('batcher', 'fn', fn)
    scope = _errors.Scope()
    batcher = _errors.reraising(Dvt.Batcher.new, self, _batch_work(scope, fn),
                                None, max_items, max_wait, options)
    batcher._dvt_scope = scope
    batcher._dvt_runtime = self
    return batcher


Runtime.batcher = _runtime_batcher


# ---- Gates --------------------------------------------------------------------

class Gate(Dvt.Gate):
    """Anything that admits entrants (Dvt.Semaphore, Dvt.RateLimiter,
    Dvt.Lockout): ``with gate:`` enters (waiting as long as it takes; the
    GIL is released meanwhile) and leaves on the way out, exceptions
    included. ``options.add_gate(gate)`` makes every attempt of a task
    enter it."""

    def __enter__(self):
        self.enter_blocking(None)
        return self

    def __exit__(self, *exc_info):
        self.leave()
        return False

    def aenter(self):
        """``await gate.aenter()`` from a running asyncio loop: waits for
        admission and enters (leave with ``gate.leave()``). Cancelling the
        awaiting task withdraws the wait and holds nothing: an admission
        granted at the instant it was cancelled is left again at once."""
        return _gate_wait(self, lambda cancellable, callback:
                          Dvt.Gate.enter_async(self, cancellable, callback, None),
                          lambda result: Dvt.Gate.enter_finish(self, result), 0)

    async def __aenter__(self):
        """``async with gate:`` enters (waiting without blocking the
        asyncio loop) and leaves on the way out, exceptions included."""
        await self.aenter()
        return self

    async def __aexit__(self, *exc_info):
        self.leave()
        return False


Gate = override(Gate)
__all__.append('Gate')


class Semaphore(Dvt.Semaphore):
    """At most ``value`` entrants inside at once; waiters with a lower
    priority number first::

        sem = Dvt.Semaphore(3)
        with sem: ...                       # priority 0
        with sem.priority(-1): ...          # ahead of priority 0
        async with sem: ...                 # from asyncio (any gate)
        async with sem.priority(-1): ...
    """

    def __init__(self, value=1, **kwargs):
        Dvt.Semaphore.__init__(self, value=value, **kwargs)

    def priority(self, priority, timeout=0, cancellable=None):
        """A context manager that enters with @priority (lower first),
        waiting at most @timeout seconds (0: as long as it takes); an
        asynchronous one too (``async with``, or ``await sem.priority(p)``
        to enter only)."""
        return _GateEntry(self, priority, timeout, cancellable)


Semaphore = override(Semaphore)
__all__.append('Semaphore')


def _gate_wait(gate, begin, finish, timeout, cancellable=None):
    """The asyncio future of an admission to @gate: @begin and @finish are
    an enter_async pair. A wait admitted after its future was cancelled
    (the C side keeps such an admission: see dvt_gate_enter_async) is left
    again, so a cancelled entrant holds nothing. @timeout > 0 bounds the
    wait: ``Dvt.TimeoutError`` once it passes."""
    future = _started_with(cancellable, begin, finish,
                           on_orphan=lambda _entered: Dvt.Gate.leave(gate))
    if not timeout or timeout <= 0:
        return future
    return _timed(future, timeout)


def _started_with(cancellable, begin, finish, **kwargs):
    """``aio.start(begin, finish, **kwargs)`` whose wait also ends when the
    caller's @cancellable (or None) is cancelled. aio.start() cancels the
    GCancellable it gets when the awaiting task is cancelled: that is a
    new one here, so that the caller's own, which may serve other calls,
    is never cancelled by it."""
    if cancellable is None:
        return _aio.start(begin, finish, **kwargs)
    inner = Gio.Cancellable()
    # g_cancellable_connect(): called at once if already cancelled.
    handler = cancellable.connect(lambda *_: inner.cancel())
    future = _aio.start(begin, finish, cancellable=inner, **kwargs)
    future.add_done_callback(lambda _: cancellable.disconnect(handler))
    return future


async def _timed(awaitable, timeout):
    """@awaitable, cancelled after @timeout seconds: then
    ``Dvt.TimeoutError`` (a ``TimeoutError`` and the ``GLib.Error``
    ``G_IO_ERROR_TIMED_OUT``) is raised, as the blocking calls do."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise _futures.TimeoutError() from None


class _GateEntry:
    """``with sem.priority(p):`` and ``async with sem.priority(p):``."""

    def __init__(self, semaphore, priority, timeout, cancellable):
        self._semaphore = semaphore
        self._args = (priority, timeout, cancellable)

    def __enter__(self):
        self._semaphore.enter_with_priority_blocking(*self._args)
        return self._semaphore

    def __exit__(self, *exc_info):
        self._semaphore.leave()
        return False

    def __await__(self):
        """``await sem.priority(p)`` enters (leave with ``sem.leave()``)."""
        semaphore = self._semaphore
        priority, timeout, cancellable = self._args
        return _gate_wait(
            semaphore,
            lambda cancellable, callback: Dvt.Semaphore.enter_with_priority_async(
                semaphore, priority, cancellable, callback, None),
            lambda result: Dvt.Semaphore.enter_with_priority_finish(semaphore, result),
            timeout, cancellable).__await__()

    async def __aenter__(self):
        await self
        return self._semaphore

    async def __aexit__(self, *exc_info):
        self._semaphore.leave()
        return False


class RateLimiter(Dvt.RateLimiter):
    """At most ``limit`` entries in any window of ``period`` seconds:
    ``Dvt.RateLimiter(5, 1.0)``; ``with limiter:`` waits for its turn.
    A limit below 1 or a period not above 0 raises GLib.Error
    (Dvt.Error.INVALID_ARGUMENT)."""

    def __init__(self, limit=1, period=1.0, **kwargs):
        if not (isinstance(limit, int) and 1 <= limit <= 1 << 24 and
                isinstance(period, (int, float)) and 1e-6 <= period <= 3.1536e9):
            # The library's own error (and message).
            Dvt.RateLimiter.new(max(0, min(int(limit), 0xffffffff)), float(period))
        Dvt.RateLimiter.__init__(self, limit=limit, period=period, **kwargs)


RateLimiter = override(RateLimiter)
__all__.append('RateLimiter')


class Lockout(Dvt.Lockout):
    """Holds new entrants off until a time has passed:
    ``lockout.lock_for(seconds)`` after a "retry after" answer; ``with
    lockout:`` waits until the latest lockout has passed."""

    def __init__(self, fifo=False, **kwargs):
        Dvt.Lockout.__init__(self, fifo=fifo, **kwargs)


Lockout = override(Lockout)
__all__.append('Lockout')


# ---- Cache --------------------------------------------------------------------

class Cache(Dvt.Cache):
    """A single-flight cache (see ``Dvt.cached`` for a decorator)."""

    def aget(self, key):
        """``await cache.aget(key)`` from a running asyncio loop: the value
        of @key (a ``GLib.Variant``), shared with the other callers of the
        same run. Cancelling the awaiting task withdraws this caller only:
        the run goes on while others wait."""
        return _aio.start(
            lambda cancellable, callback:
                Dvt.Cache.get_async(self, key, cancellable, callback, None),
            lambda result: _errors.reraising(Dvt.Cache.get_finish, self, result))


Cache = override(Cache)
__all__.append('Cache')


# ---- concurrent.futures, asyncio and decorators ----------------------------------

TimeoutError = _futures.TimeoutError  # noqa: A001
CancelledError = _futures.CancelledError
FIRST_COMPLETED = _futures.FIRST_COMPLETED
FIRST_EXCEPTION = _futures.FIRST_EXCEPTION
ALL_COMPLETED = _futures.ALL_COMPLETED
wait = _futures.wait
as_completed = _futures.as_completed
Executor = _futures.Executor


def cached(runtime, ttl=None, max_size=0, key=None, evict_on_error=True,
           options=None):
    """Decorator: ``@Dvt.cached(runtime, ttl=60, max_size=100)`` memoises
    a plain (or coroutine) function with a ``Dvt.Cache``: concurrent calls
    with equal arguments share one run on a worker, in the first caller's
    ``contextvars`` context; results are kept @ttl seconds (None: until
    evicted; 0: single flight only) for at most @max_size keys (0: no
    limit, else least recently used out first). The key is the pickled
    arguments, or ``key(*args, **kwargs)``, a ``GLib.Variant`` (calls with
    equal keys must then be interchangeable). A run that raises gives its
    exception to every caller of that run; with @evict_on_error (the
    default) it is not kept for later callers.

    ``f(*args)`` blocks for the value; ``await f.aget(*args)`` from a
    running asyncio loop; ``f.cache`` is the ``Dvt.Cache``."""
    return _directions.cached(runtime, ttl=ttl, max_size=max_size, key=key,
                              evict_on_error=evict_on_error, options=options)


__all__ += ['TimeoutError', 'CancelledError', 'FIRST_COMPLETED',
            'FIRST_EXCEPTION', 'ALL_COMPLETED', 'wait', 'as_completed',
            'Executor', 'cached']


# ---- TaskGroup ------------------------------------------------------------------

def _group_timeout(timeout):
    """The C form of a group's timeout: None (no limit) is negative."""
    if timeout is None:
        return -1.0
    if timeout < 0:
        raise ValueError("'timeout' must be None or a non-negative number")
    return float(timeout)


class TaskGroup(Dvt.TaskGroup):
    """An open group of tasks of one runtime, waited for together::

        with rt.task_group(max_concurrency=4) as g:   # or Dvt.TaskGroup(runtime=rt)
            for url in urls:
                g.submit(fetch, url)                  # fn(*args, **kwargs) on a worker
            for task in g.as_completed(timeout=30):   # in the order they end
                print(task.result())
        # on exit: waited for (the first failure raised), then closed;
        # an exception in the block cancels the members first; with
        # exit_timeout=S, what is left after S seconds is cancelled and
        # GLib.Error Gio.IOErrorEnum.TIMED_OUT raised

    From a running asyncio loop, with the same meanings::

        async with rt.task_group() as g:              # awaits the members on exit
            g.submit(fetch, url)
            async for task in g.as_completed():       # or: async for task in g
                print(await task)
            await g.await_(timeout=10)                # g.wait()'s twin
            task = await g.afirst(cancel_rest=True)   # g.first()'s twin

    ``g.wait(timeout=None)`` waits until every member has ended and raises
    the first failure (the exception the work raised), unless
    ``return_errors=True``; when @timeout passes, the members left are
    cancelled and ``GLib.Error`` ``Gio.IOErrorEnum.TIMED_OUT`` is raised.
    ``g.first(timeout=None, cancel_rest=False)`` returns the first member
    to succeed. The other calls (``next_blocking``, ``wait_async``, ...) work
    as in C; ``g.submit_func(func, func_data, options, cancellable)`` is C's
    submit, with a work function. The exceptions of
    the members the group started stay readable (from the wait, from
    ``task.result()``) as long as the group object lives."""

    def __init__(self, runtime=None, exit_timeout=None, **kwargs):
        if runtime is None:
            runtime = Dvt.Runtime.get_default()
        Dvt.TaskGroup.__init__(self, runtime=runtime, **kwargs)
        _group_timeout(exit_timeout)  # checked here rather than at exit
        self._dvt_exit_timeout = exit_timeout

    def _track(self, task, scope):
        """The exception @task's work may raise lives as long as the
        group's Python object (a wait reports it even if the caller dropped
        the task), in the group and not in the task: the C group holds its
        tasks, so a task's Python object holding the exception (whose
        traceback holds the caller's frame, and so the group) would make a
        cycle that Python cannot collect. Also for groups made with
        ``Dvt.TaskGroup.new()``, which does not call __init__."""
        _errors.remember(task, scope)
        with _errors.lock:
            self.__dict__.setdefault('_dvt_scopes', []).append(scope)
        return task

    def submit(self, fn, *args, dvt_options=None, dvt_cancellable=None,
               **kwargs):
        """Queues ``fn(*args, **kwargs)`` for a worker as a member of the
        group and returns its task, a future (``task.result()``).
        ``dvt_options`` and ``dvt_cancellable`` apply to the call, as for
        ``Runtime.submit_call``."""
        _need_callable('submit', 'fn', fn)
        scope = _errors.Scope()
        task = _errors.reraising(Dvt.TaskGroup.submit, self,
                                 _call_work(scope, fn, args, kwargs), None,
                                 _identify(fn, dvt_options), dvt_cancellable)
        return self._track(task, scope)

    def submit_func(self, func, func_data=None, options=None, cancellable=None):
        """Queues ``func(task, cancellable, func_data)``, as
        ``Runtime.submit``, as a member of the group."""
        _need_callable('submit_func', 'func', func)
        scope = _errors.Scope()
        task = _errors.reraising(Dvt.TaskGroup.submit, self,
                                 _work(scope, func, func_data), None,
                                 _identify(func, options), cancellable)
        return self._track(task, scope)

    def schedule(self, func, func_data=None, options=None, cancellable=None):
        """Starts ``func(task, cancellable, func_data)`` on the loop thread,
        as ``Runtime.schedule``, as a member of the group."""
        _need_callable('schedule', 'func', func)
        scope = _errors.Scope()
        task = _errors.reraising(Dvt.TaskGroup.schedule, self,
                                 _work(scope, func, func_data), None,
                                 _identify(func, options), cancellable)
        return self._track(task, scope)

    def add(self, task):
        """Makes @task, started elsewhere, a member (watched only)."""
        Dvt.TaskGroup.add(self, task)

    def _call(self, fn, *args):
        # Ctrl-C on the main thread cancels the members, which ends the wait.
        return _interrupts.interruptible(self, _errors.reraising, fn, *args)

    def wait(self, timeout=None, cancellable=None):
        """Waits until every member has ended; see the class."""
        self._call(Dvt.TaskGroup.wait_blocking, self, _group_timeout(timeout),
                   cancellable)

    def first(self, timeout=None, cancel_rest=False, cancellable=None):
        """The first member to succeed; raises the first failure when every
        member failed, ``GLib.Error`` ``Gio.IOErrorEnum.TIMED_OUT`` when
        @timeout passes first (nothing is cancelled then)."""
        return self._call(Dvt.TaskGroup.first_blocking, self,
                          _group_timeout(timeout), cancel_rest, cancellable)

    def as_completed(self, timeout=None, cancellable=None):
        """Yields the members in the order they end, each once, until every
        member has been yielded and none is left running (members added
        meanwhile included). @timeout bounds the whole iteration:
        ``GLib.Error`` ``Gio.IOErrorEnum.TIMED_OUT`` once it has passed
        (``Dvt.TimeoutError``, also a ``TimeoutError``, from ``async
        for``). Iterate it with ``for`` from a thread, with ``async for``
        from a running asyncio loop."""
        return _Completed(self, timeout, cancellable)

    def _dvt_kept(self):
        """A member handed to a cancelled asyncio next, or None."""
        kept = self.__dict__.get('_dvt_kept_tasks')
        if kept:
            try:
                return kept.popleft()
            except IndexError:
                pass
        return None

    def _dvt_keep(self, task):
        """on_orphan of an asyncio next: the member is yielded by the next
        iteration instead of being lost (None, the end, needs no keeping)."""
        if task is not None:
            with _errors.lock:
                self.__dict__.setdefault('_dvt_kept_tasks',
                                         collections.deque()).append(task)

    def _dvt_next_blocking(self, timeout, cancellable):
        kept = self._dvt_kept()
        if kept is not None:
            return kept
        return self._call(Dvt.TaskGroup.next_blocking, self, timeout, cancellable)

    def _dvt_next_async(self, cancellable):
        """The asyncio future of the next member to end (None: the end)."""
        kept = self._dvt_kept()
        if kept is not None:
            future = asyncio.get_running_loop().create_future()
            future.set_result(kept)
            return future
        return _started_with(
            cancellable,
            lambda cancellable, callback:
                Dvt.TaskGroup.next_async(self, cancellable, callback, None),
            lambda result: _errors.reraising(Dvt.TaskGroup.next_finish, self, result),
            on_orphan=self._dvt_keep)

    def __iter__(self):
        return self.as_completed()

    def __aiter__(self):
        """``async for task in group``: ``as_completed()`` from asyncio."""
        return self.as_completed().__aiter__()

    # ---- asyncio ---------------------------------------------------------------

    def await_(self, timeout=None):
        """``await group.await_()`` from a running asyncio loop: the twin of
        :meth:`wait` (every member ended; the first failure raised; after
        @timeout seconds the members left are cancelled and
        ``GLib.Error`` ``Gio.IOErrorEnum.TIMED_OUT`` is raised).
        Cancelling the awaiting task ends the wait, not the members."""
        limit = _group_timeout(timeout)
        return _aio.start(
            lambda cancellable, callback: Dvt.TaskGroup.wait_async(
                self, limit, cancellable, callback, None),
            lambda result: _errors.reraising(Dvt.TaskGroup.wait_finish, self, result))

    def afirst(self, timeout=None, cancel_rest=False):
        """``await group.afirst()``: the twin of :meth:`first`; when
        @timeout passes first, ``Dvt.TimeoutError`` (a ``TimeoutError``
        and ``GLib.Error`` ``Gio.IOErrorEnum.TIMED_OUT``), nothing
        cancelled."""
        future = _aio.start(
            lambda cancellable, callback: Dvt.TaskGroup.first_async(
                self, cancel_rest, cancellable, callback, None),
            lambda result: _errors.reraising(Dvt.TaskGroup.first_finish, self, result))
        if timeout is None:
            return future
        return _timed(future, _group_timeout(timeout))

    def __len__(self):
        return self.get_n_tasks()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.wait(self.__dict__.get('_dvt_exit_timeout'))
                return False
            self.cancel()
            try:
                self.wait()
            except Exception:
                pass  # the block's own exception is the one that matters
            return False
        finally:
            self.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type, exc, tb):
        """``async with rt.task_group() as g:``: as ``with``, awaited. The
        awaiting task cancelled in the block or during the exit wait
        cancels the members (and still waits for them to end)."""
        try:
            if exc_type is None:
                try:
                    await self.await_(self.__dict__.get('_dvt_exit_timeout'))
                except asyncio.CancelledError:
                    self.cancel()
                    await asyncio.shield(self.await_())
                    raise
                return False
            self.cancel()
            try:
                await asyncio.shield(self.await_())
            except Exception:
                pass  # the block's own exception is the one that matters
            return False
        finally:
            self.close()


TaskGroup = override(TaskGroup)
__all__.append('TaskGroup')


class _Completed:
    """``group.as_completed(timeout)``: iterable from a thread, async
    iterable from a running asyncio loop."""

    __slots__ = ('_group', '_timeout', '_cancellable', '_iterator')

    def __init__(self, group, timeout, cancellable):
        self._group = group
        self._timeout = None if timeout is None else _group_timeout(timeout)
        self._cancellable = cancellable
        self._iterator = None

    def __iter__(self):
        return self

    def __next__(self):
        if self._iterator is None:
            self._iterator = self._blocking()
        return next(self._iterator)

    def _blocking(self):
        group, cancellable = self._group, self._cancellable
        end = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            left = -1.0 if end is None else max(0.0, end - time.monotonic())
            task = group._dvt_next_blocking(left, cancellable)
            if task is None:
                return
            yield task

    async def __aiter__(self):
        group, cancellable = self._group, self._cancellable
        end = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            future = group._dvt_next_async(cancellable)
            if end is None:
                task = await future
            else:
                task = await _timed(future, max(0.0, end - time.monotonic()))
            if task is None:
                return
            yield task
