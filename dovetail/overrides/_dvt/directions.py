# directions.py: one call for every direction (private)
#
# SPDX-License-Identifier: LGPL-2.1-or-later

"""``call_any``, the ``bridge`` decorator and ``cached``.

Private API, for ``gi.overrides.Dvt``:

``call_any(runtime, fn, args, kwargs)``
    Plain function: ``runtime.call_blocking`` from a thread,
    ``runtime.call`` (an awaitable) from a running asyncio loop.
    Coroutine function: from a thread, run on the background asyncio loop
    (below) and its result returned; from a running loop, an
    ``asyncio.Task`` of that loop. Every form runs in a copy of the
    caller's ``contextvars`` context.

``run_coroutine(coro, timeout=None)``
    Runs @coro on the *background loop*: one asyncio loop per process,
    run by a daemon thread made on first use (and made again in a forked
    child), in a copy of the caller's context; blocks for its result.
    Raises ``Dvt.TimeoutError`` (and cancels @coro) once @timeout seconds
    have passed.

``bridge(runtime, fn, timeout=None, retries=0)``, ``cached(runtime, ...)``
    The decorators documented on ``Dvt.Runtime.bridge`` and ``Dvt.cached``.
"""

import concurrent.futures as cf
import contextvars
import functools
import sys
import threading

from gi.repository import GLib

from . import LazyModule
from . import aio as _aio
from . import futures as _futures
from .i18n import _

# Imported at their first use: see LazyModule.
asyncio = LazyModule('asyncio')
inspect = LazyModule('inspect')
pickle = LazyModule('pickle')

__all__ = ['call_any', 'run_coroutine', 'bridge', 'cached']


def _running_loop():
    if 'asyncio' not in sys.modules:
        return None  # no loop runs in a process that never imported asyncio
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _is_coroutine_function(fn):
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, '__call__', None))


# ---- the background loop -----------------------------------------------------

def _start_background_loop():
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name='dvt-asyncio',
                     daemon=True).start()
    return loop


_background_loop = _aio.PerProcess(_start_background_loop).get


def run_coroutine(coro, timeout=None):
    loop = _background_loop()
    if _running_loop() is loop:
        coro.close()
        raise RuntimeError(_('a blocking call on the loop it would wait for'))
    future = cf.Future()
    holder = []

    def start():
        task = loop.create_task(coro)
        holder.append(task)

        def done(task):
            if task.cancelled():
                future.cancel()
            elif task.exception() is not None:
                future.set_exception(task.exception())
            else:
                future.set_result(task.result())
        task.add_done_callback(done)

    loop.call_soon_threadsafe(start, context=contextvars.copy_context())
    try:
        return future.result(timeout)
    except cf.TimeoutError:
        loop.call_soon_threadsafe(lambda: holder and holder[0].cancel())
        raise _futures.TimeoutError(
            _('The coroutine did not finish in time')) from None
    except cf.CancelledError:
        raise _futures.CancelledError() from None


# ---- call_any -----------------------------------------------------------------

def call_any(runtime, fn, args, kwargs):
    if not callable(fn):
        raise TypeError(_('call_any() needs a callable, not %r') % type(fn).__name__)
    loop = _running_loop()
    if _is_coroutine_function(fn):
        if loop is not None:
            return loop.create_task(fn(*args, **kwargs))
        return run_coroutine(fn(*args, **kwargs))
    if loop is not None:
        return runtime.call(fn, *args, **kwargs)
    return runtime.call_blocking(fn, *args, **kwargs)


# ---- @runtime.bridge --------------------------------------------------------------

class _Bridged:
    """A function with .sync() and .async_() forms (see Runtime.bridge)."""

    def __init__(self, runtime, fn, timeout, retries):
        functools.update_wrapper(self, fn)
        self._runtime = runtime
        self._fn = fn
        self._timeout = timeout
        self._retries = retries
        self._is_coroutine = _is_coroutine_function(fn)
        self._options = None
        if not self._is_coroutine and (timeout is not None or retries):
            from gi.repository import Dvt
            self._options = Dvt.Options(retries=retries)
            if timeout is not None:
                self._options.props.timeout = timeout

    async def _attempts(self, args, kwargs):
        """The coroutine function called with the decorator's timeout per
        attempt and retries (tried again at once)."""
        for attempt in range(self._retries + 1):
            try:
                if self._timeout is None:
                    return await self._fn(*args, **kwargs)
                return await asyncio.wait_for(self._fn(*args, **kwargs), self._timeout)
            except asyncio.TimeoutError:
                if attempt == self._retries:
                    raise _futures.TimeoutError(
                        _('The call timed out')) from None
            except Exception:  # noqa: BLE001 (tried again, or raised)
                if attempt == self._retries:
                    raise
        raise AssertionError('unreachable')

    def sync(self, *args, **kwargs):
        """Blocks for the result; from a thread (not a running loop)."""
        if self._is_coroutine:
            return run_coroutine(self._attempts(args, kwargs))
        try:
            return self._runtime.call_blocking(self._fn, *args,
                                               dvt_options=self._options, **kwargs)
        except GLib.Error as error:
            converted = _futures.from_error(error)
            if converted is error:
                raise
        raise converted

    def async_(self, *args, **kwargs):
        """An awaitable of the result, from a running asyncio loop."""
        loop = asyncio.get_running_loop()
        if self._is_coroutine:
            return loop.create_task(self._attempts(args, kwargs))
        return self._runtime.call(self._fn, *args, dvt_options=self._options,
                                  **kwargs)

    def __call__(self, *args, **kwargs):
        if _running_loop() is not None:
            return self.async_(*args, **kwargs)
        return self.sync(*args, **kwargs)

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        return functools.partial(self.__call__, instance)


def bridge(runtime, fn=None, *, timeout=None, retries=0):
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(_('retries must be a non-negative int, not %r') % (retries,))
    if timeout is not None and not timeout > 0:
        raise ValueError(_('timeout must be a positive number of seconds or None'))

    def decorate(fn):
        if not callable(fn):
            raise TypeError(_('bridge() needs a callable, not %r') % type(fn).__name__)
        return _Bridged(runtime, fn, timeout, retries)
    if fn is not None:
        return decorate(fn)
    return decorate


# ---- @Dvt.cached ----------------------------------------------------------------

class _Raised:
    """The outcome of a run that raised: shared by its callers."""

    __slots__ = ('exc',)

    def __init__(self, exc):
        self.exc = exc


def cached(runtime, ttl=None, max_size=0, key=None, evict_on_error=True,
           options=None):
    from gi.repository import Dvt

    def decorate(fn):
        if not callable(fn):
            raise TypeError(_('cached() needs a callable, not %r') % type(fn).__name__)
        is_coroutine = _is_coroutine_function(fn)
        lock = threading.Lock()
        pending = {}  # printed key -> [args, kwargs, context, callers]

        def to_key(args, kwargs):
            if key is None:
                return GLib.Variant('ay', pickle.dumps((args, sorted(kwargs.items()))))
            k = key(*args, **kwargs)
            if not isinstance(k, GLib.Variant):
                raise TypeError(_('the key function must return a GLib.Variant, not %r')
                                % type(k).__name__)
            return k

        def compute(task, k, cancellable, _data):
            with lock:
                entry = pending.get(k.print_(True))
            if entry is None:  # every caller has left
                task.return_value(_Raised(_futures.CancelledError()))
                return
            args, kwargs, context, _callers = entry
            try:
                if is_coroutine:
                    value = run_coroutine(context.run(fn, *args, **kwargs))
                else:
                    value = context.run(fn, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 (shared by the run's callers)
                value = _Raised(exc)
            task.return_value(value)

        cache = Dvt.Cache.new(runtime, compute, None)
        cache.set_ttl(GLib.MAXDOUBLE if ttl is None else ttl)
        cache.props.max_size = max_size
        if options is not None:
            cache.set_options(options)

        def enter(args, kwargs):
            k = to_key(args, kwargs)
            printed = k.print_(True)
            with lock:
                entry = pending.setdefault(
                    printed, [args, kwargs, contextvars.copy_context(), 0])
                entry[3] += 1
            return k, printed, entry

        def leave(printed, entry):
            with lock:
                entry[3] -= 1
                if entry[3] == 0 and pending.get(printed) is entry:
                    del pending[printed]

        def unwrap(k, value):
            if isinstance(value, _Raised):
                if evict_on_error:
                    cache.invalidate(k)
                raise value.exc
            return value

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            k, printed, entry = enter(args, kwargs)
            try:
                value = cache.get_blocking(k, 0, None)
            finally:
                leave(printed, entry)
            return unwrap(k, value)

        async def aget(*args, **kwargs):
            k, printed, entry = enter(args, kwargs)
            try:
                value = await cache.aget(k)
            finally:
                leave(printed, entry)
            return unwrap(k, value)

        wrapper.aget = functools.wraps(fn)(aget)
        wrapper.cache = cache
        return wrapper
    return decorate
