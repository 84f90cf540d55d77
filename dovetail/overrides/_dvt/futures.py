# futures.py: concurrent.futures for Dovetail tasks (private)
#
# SPDX-License-Identifier: LGPL-2.1-or-later

"""``concurrent.futures`` behaviour for Dovetail.

Private API, for ``gi.overrides.Dvt`` (which exports the public names):

``TimeoutError``, ``CancelledError``
    Exception classes deriving from both the ``concurrent.futures`` class
    (``TimeoutError`` is the builtin one) and ``GLib.Error``: a wait that
    runs out, or a cancelled task, is caught by either kind of ``except``
    and still ``matches()`` its ``G_IO_ERROR_TIMED_OUT`` /
    ``G_IO_ERROR_CANCELLED``. ``from_error(error)`` turns a ``GLib.Error``
    of those two codes into one of them (others are returned unchanged).

``wait(fs, timeout=None, return_when=ALL_COMPLETED)``, ``as_completed(fs, timeout=None)``
    The contract of ``concurrent.futures.wait`` / ``as_completed`` over
    any mix of ``Dvt.Task`` and ``concurrent.futures.Future`` objects
    (anything with ``done()``, ``cancelled()``, ``exception()`` and
    ``add_done_callback()``).

``Executor(runtime, options=None)``
    A ``concurrent.futures.Executor`` whose work runs on the runtime's
    workers (see its docstring).
"""

import builtins
import collections
import concurrent.futures as cf
import contextvars
import logging
import threading
import time

from gi.repository import Gio, GLib

from .i18n import _

__all__ = ['TimeoutError', 'CancelledError', 'from_error', 'wait',
           'as_completed', 'Executor']

_log = logging.getLogger('gi.overrides.Dvt')

FIRST_COMPLETED = cf.FIRST_COMPLETED
FIRST_EXCEPTION = cf.FIRST_EXCEPTION
ALL_COMPLETED = cf.ALL_COMPLETED


def _io_domain():
    return GLib.quark_to_string(Gio.io_error_quark())


class TimeoutError(builtins.TimeoutError, GLib.Error):  # noqa: A001
    """A wait that ran out: a ``TimeoutError`` that is also the
    ``GLib.Error`` ``G_IO_ERROR_TIMED_OUT`` Dovetail used to raise."""

    def __init__(self, message=None, domain=None, code=Gio.IOErrorEnum.TIMED_OUT):
        GLib.Error.__init__(self, message or _('The wait timed out'),
                            domain or _io_domain(), int(code))

    __str__ = GLib.Error.__str__
    __repr__ = GLib.Error.__repr__


class CancelledError(cf.CancelledError, GLib.Error):
    """A cancelled task: ``concurrent.futures.CancelledError`` that is
    also the ``GLib.Error`` ``G_IO_ERROR_CANCELLED``."""

    def __init__(self, message=None, domain=None, code=Gio.IOErrorEnum.CANCELLED):
        GLib.Error.__init__(self, message or _('The task was cancelled'),
                            domain or _io_domain(), int(code))

    __str__ = GLib.Error.__str__
    __repr__ = GLib.Error.__repr__


def from_error(error):
    """@error as one of the classes above when its code is one of theirs."""
    if isinstance(error, (TimeoutError, CancelledError)) or not isinstance(error, GLib.Error):
        return error
    if error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED):
        return CancelledError(error.message, error.domain, error.code)
    if error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT):
        return TimeoutError(error.message, error.domain, error.code)
    return error


def call_done_callback(fn, future):
    """Runs a done callback as concurrent.futures does: an exception it
    raises is logged, not raised."""
    try:
        fn(future)
    except Exception:  # noqa: BLE001
        _log.exception('exception calling callback for %r', future)


# ---- wait and as_completed -------------------------------------------------------

class _Waiter:
    """Collects futures as they complete (from any thread)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.finished = collections.deque()

    def __call__(self, future):
        with self.cond:
            self.finished.append(future)
            self.cond.notify_all()


def _deadline(timeout):
    return None if timeout is None else time.monotonic() + timeout


def _remaining(deadline):
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _failed(future):
    return not future.cancelled() and future.exception(0) is not None


def wait(fs, timeout=None, return_when=ALL_COMPLETED):
    """``concurrent.futures.wait`` for Dovetail tasks and futures: returns
    the named tuple ``(done, not_done)`` of sets once @return_when
    (``FIRST_COMPLETED``, ``FIRST_EXCEPTION``, ``ALL_COMPLETED``) holds or
    @timeout seconds (None: no limit) have passed."""
    fs = set(fs)
    deadline = _deadline(timeout)
    done = {f for f in fs if f.done()}
    not_done = fs - done
    if (return_when == FIRST_COMPLETED and done) or not not_done:
        return cf._base.DoneAndNotDoneFutures(done, not_done)
    if return_when == FIRST_EXCEPTION and any(_failed(f) for f in done):
        return cf._base.DoneAndNotDoneFutures(done, not_done)
    waiter = _Waiter()
    for f in not_done:
        f.add_done_callback(waiter)
    with waiter.cond:
        while not_done:
            stop = False
            while waiter.finished:
                f = waiter.finished.popleft()
                if f in not_done:
                    not_done.discard(f)
                    done.add(f)
                    stop = stop or return_when == FIRST_COMPLETED or (
                        return_when == FIRST_EXCEPTION and _failed(f))
            if stop or not not_done:
                break
            remaining = _remaining(deadline)
            if remaining == 0:
                break
            waiter.cond.wait(remaining)
    return cf._base.DoneAndNotDoneFutures(done, not_done)


def as_completed(fs, timeout=None):
    """``concurrent.futures.as_completed`` for Dovetail tasks and futures:
    yields each future as it completes (those already done first); raises
    ``TimeoutError`` if @timeout seconds (None: no limit), counted from the
    call, pass before all have."""
    deadline = _deadline(timeout)
    fs = set(fs)
    done = {f for f in fs if f.done()}
    pending = fs - done
    waiter = _Waiter()
    for f in pending:
        f.add_done_callback(waiter)

    def generate():
        yield from done
        while pending:
            with waiter.cond:
                while not waiter.finished:
                    remaining = _remaining(deadline)
                    if remaining == 0:
                        raise TimeoutError(
                            _('%d (of %d) futures unfinished') % (len(pending), len(fs)))
                    waiter.cond.wait(remaining)
                batch = list(waiter.finished)
                waiter.finished.clear()
            for f in batch:
                if f in pending:
                    pending.discard(f)
                    yield f
    return generate()


# ---- the executor -------------------------------------------------------------

class Executor(cf.Executor):
    """A ``concurrent.futures.Executor`` over a ``Dvt.Runtime``: each
    ``submit(fn, *args, **kwargs)`` runs ``fn`` on the runtime's workers,
    in the ``contextvars`` context of the caller, and returns a real
    ``concurrent.futures.Future`` (so ``loop.run_in_executor()``,
    ``concurrent.futures.wait()`` and any library taking an executor work).
    @options (a ``Dvt.Options``: timeout, retries...) apply to each call.

    ``map(fn, *iterables, timeout=None)`` submits every call at once and
    yields the results lazily, in order; ``shutdown(wait=True,
    cancel_futures=False)`` refuses new work, cancels what has not started
    if asked, and waits for the rest if asked. The runtime itself is not
    shut down: it belongs to the caller."""

    def __init__(self, runtime, options=None):
        self._runtime = runtime
        self._options = options
        self._lock = threading.Lock()
        self._pending = set()
        self._shutdown = False

    @property
    def runtime(self):
        return self._runtime

    def submit(self, fn, /, *args, **kwargs):
        if not callable(fn):
            raise TypeError(_('submit() needs a callable, not %r') % type(fn).__name__)
        with self._lock:
            if self._shutdown:
                raise RuntimeError(_('cannot schedule new futures after shutdown'))
            future = cf.Future()
            self._pending.add(future)
        future.add_done_callback(self._forget)
        context = contextvars.copy_context()
        try:
            self._runtime._dvt_submit_future(future, context, fn, args, kwargs,
                                             self._options)
        except BaseException:
            future.cancel()
            raise
        return future

    submit.__doc__ = cf.Executor.submit.__doc__

    def _forget(self, future):
        with self._lock:
            self._pending.discard(future)

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._lock:
            self._shutdown = True
            pending = list(self._pending)
        if cancel_futures:
            for future in pending:
                future.cancel()
        if wait:
            # Not the cancelled ones: concurrent.futures.wait() waits for a
            # cancelled future until a runner notifies it.
            cf.wait([f for f in pending if not f.cancelled()])
