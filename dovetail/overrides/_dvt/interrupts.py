# interrupts.py: Ctrl-C during a blocking call of the main thread (private)
#
# SPDX-License-Identifier: LGPL-2.1-or-later

"""Ctrl-C on the main thread, while it is blocked in the C library.

Private API, for ``gi.overrides.Dvt``:

``blocking(fn, *args)``
    ``reraising(fn, *args)`` (see :mod:`.errors`) for a blocking call
    whose first argument is the object called (a runtime, or an object
    built on one) and whose last is its ``GCancellable`` or None: on the
    main thread, Ctrl-C cancels the call and raises ``KeyboardInterrupt``.

``interruptible(target, fn, *args)``
    ``fn(*args)``; on the main thread, Ctrl-C calls ``target.cancel()``
    (a task, a task group) and raises ``KeyboardInterrupt``.

``on_main_thread()``, ``after_shutdown(runtime, error)``
    For a call of the main thread that failed with @error: raises the
    ``KeyboardInterrupt`` of a SIGINT that shut @runtime down (see
    ``after_shutdown``'s docstring).
"""

# While the main thread is blocked in the C library, Python cannot raise
# KeyboardInterrupt: its signal handler only notes the signal, and the
# interpreter raises it once the thread runs Python code again. So, on the
# main thread only, a blocking call runs with a cancellable of its own (and
# Task.result() with its task) that a watcher thread cancels on SIGINT,
# woken through Python's wakeup fd (signal.set_wakeup_fd), while the Python
# handler of SIGINT is the default one, which raises KeyboardInterrupt. The
# call then raises the KeyboardInterrupt, its task cancelled. Other threads
# pay nothing; neither does a call made while another wakeup fd is set (a
# GLib.MainLoop or an asyncio loop running on the main thread, which handle
# signals their own way).
#
# Setting the wakeup fd costs two system calls (Python checks the fd), as
# much as a tenth of a quick call. So the watcher's fd stays in place once
# set, and whether it is still Python's wakeup fd is asked again at most
# every _RECHECK seconds: an fd that someone else set meanwhile is put back
# and left alone, one that someone removed is replaced. A signal that comes
# while no call waits only wakes the watcher. At exit, and in a forked
# child, the watcher's fd is removed (if it is still the one set).
#
# PyGObject 3.42 turns the GError of a call that fails into a GLib.Error by
# running Python code, where a pending KeyboardInterrupt is raised: it then
# prints it through sys.excepthook and raises RuntimeError instead. The
# watcher therefore wraps sys.excepthook before it cancels, so that the
# interrupt of a call is not printed but raised by the call. A runtime
# with shutdown-on-exit cancels the call itself and hands SIGINT on to
# Python afterwards, so the conversion may meet the interrupt before the
# watcher has wrapped the hook: it is printed then, and the call's
# RuntimeError stands for it: the call raises KeyboardInterrupt all the same.

import atexit
import os
import signal
import socket
import sys
import threading
import time

from gi.repository import Gio, GLib

from .errors import reraising

# A runtime with shutdown-on-exit gets SIGINT before Python does: it shuts
# down, cancelling its calls, waits up to this long for their work, and
# then hands the signal on to Python's handler (DVT_EXIT_GRACE_USEC).
_EXIT_GRACE = 2.0

# How long a check that the watcher's fd is Python's wakeup fd holds.
_RECHECK = 0.01

# What PyGObject raises when turning a GError into a GLib.Error raised an
# exception (which it prints through sys.excepthook instead).
_CONVERSION_FAILED = ('Converting the GError failed',)


class _Interrupts:
    __slots__ = ('main', 'waits', 'cancellable', 'write_fd', 'sockets',
                 'interrupted', 'excepthook', 'ours', 'checked_until')

    def __init__(self):
        self.main = threading.main_thread().ident
        self.waits = []          # what Ctrl-C cancels: the main thread's calls
        self.cancellable = None  # the main thread's, until it is cancelled
        self.write_fd = None     # of the watcher's socket pair, once used
        self.sockets = None
        self.interrupted = False
        self.excepthook = None   # the one wrapped while interrupting
        self.ours = False        # the wakeup fd was the watcher's when checked
        self.checked_until = 0.0

    def forget(self):
        """In a forked child: the watcher is the parent's, and so are the
        sockets, which Python's wakeup fd may still point to."""
        if self.sockets is not None:
            self.release()
            for sock in self.sockets:
                sock.close()
        self.__init__()

    def release(self):
        """Removes the watcher's fd from Python's wakeup fd, if it is set
        there (at exit, and in a forked child)."""
        if self.write_fd is None:
            return
        try:
            previous = signal.set_wakeup_fd(-1)
        except ValueError:
            return  # not the main thread (an embedding application's exit)
        if previous not in (-1, self.write_fd):
            signal.set_wakeup_fd(previous)
        self.ours = False
        self.checked_until = 0.0

    def _check(self):
        """Whether Python's wakeup fd is the watcher's (see above)."""
        now = _monotonic()
        if now < self.checked_until:
            return self.ours
        ours = self.write_fd or self._start()
        previous = signal.set_wakeup_fd(ours, warn_on_full_buffer=False)
        self.ours = previous == -1 or previous == ours
        if not self.ours:
            signal.set_wakeup_fd(previous)
        self.checked_until = now + _RECHECK
        return self.ours

    def _start(self):
        read, write = socket.socketpair()
        write.setblocking(False)
        threading.Thread(target=self._watch, args=(read,), daemon=True,
                         name='dvt-sigint').start()
        self.sockets = (read, write)
        self.write_fd = write.fileno()
        return self.write_fd

    def _watch(self, read):
        while True:
            try:
                data = read.recv(64)
            except InterruptedError:
                continue
            except OSError:
                return
            if not data:
                return
            waits = list(self.waits)
            if (signal.SIGINT in data and waits and
                    signal.getsignal(signal.SIGINT) is signal.default_int_handler):
                self.interrupted = True
                self.cancellable = None
                if self.excepthook is None:
                    self.excepthook = sys.excepthook
                    sys.excepthook = self._hook
                for wait in waits:
                    wait.cancel()

    def _hook(self, exc_type, value, tb):
        """sys.excepthook while a call is being interrupted: see above."""
        if not (self.waits and issubclass(exc_type, KeyboardInterrupt)):
            (self.excepthook or sys.__excepthook__)(exc_type, value, tb)

    def _settle(self):
        """The main thread's outermost call has ended."""
        self.interrupted = False
        if self.excepthook is not None:
            if sys.excepthook == self._hook:
                sys.excepthook = self.excepthook
            self.excepthook = None

    def call(self, target, fn, args):
        """``fn(*args)`` on the main thread, ended by Ctrl-C through
        ``target.cancel()``."""
        if not self._check():
            return fn(*args)
        waits = self.waits
        waits.append(target)
        try:
            return fn(*args)
        except BaseException as failure:
            # Also the RuntimeError of a conversion that met the
            # KeyboardInterrupt of a SIGINT handed on by a runtime with
            # shutdown-on-exit, before the watcher saw it: see above.
            if not (self.interrupted or (type(failure) is RuntimeError and
                                         failure.args == _CONVERSION_FAILED)):
                raise
        finally:
            waits.pop()  # calls nest: the last one ends first
            if not waits and (self.interrupted or self.excepthook is not None):
                self._settle()
        # Interrupted: a KeyboardInterrupt still pending is raised here;
        # one that PyGObject caught while it converted the error is not.
        _check_signals()
        raise KeyboardInterrupt

    def run(self, fn, args):
        """``fn(*args)``, a blocking call whose last argument is its
        cancellable, on the main thread. The call gets a cancellable of
        its own: the main thread's, kept until Ctrl-C cancels it, or, when
        the caller gave one, a new one that cancelling the caller's
        cancels too."""
        caller = args[-1]
        link = None
        if caller is None:
            own = self.cancellable
            if own is None:
                own = self.cancellable = Gio.Cancellable()
        else:
            own = Gio.Cancellable()
            link = caller.connect(lambda *_ignored: own.cancel())
        try:
            return self.call(own, reraising, (fn,) + args[:-1] + (own,))
        except GLib.Error as error:
            after_shutdown(args[0], error)
            raise
        finally:
            if link is not None:
                caller.disconnect(link)


_interrupts = _Interrupts()
os.register_at_fork(after_in_child=_interrupts.forget)
atexit.register(_interrupts.release)
_get_ident = threading.get_ident
_monotonic = time.monotonic


def _check_signals():
    """Entering a Python function runs the Python handlers of the signals
    that arrived: the default SIGINT handler raises KeyboardInterrupt."""


def on_main_thread():
    return _get_ident() == _interrupts.main


def after_shutdown(runtime, error):
    """A call of the main thread was released because @runtime was shut
    down while it waited. If the runtime has shutdown-on-exit and no
    Python call shut it down, SIGINT may be what did: the runtime hands the
    signal on to Python once its shutdown is over, and the
    KeyboardInterrupt is then raised here, from the call, rather than at
    whatever line runs by then. @runtime may be an object built on a
    runtime (a channel, a batcher), which names it in _dvt_runtime."""
    runtime = getattr(runtime, '_dvt_runtime', runtime)
    if (not error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED) or
            getattr(runtime, '_dvt_shut_down', False) or not runtime.is_shutdown() or
            not runtime.get_property('shutdown-on-exit')):
        return
    end = time.monotonic() + _EXIT_GRACE + 0.5
    try:
        while time.monotonic() < end:
            time.sleep(0.05)
    except KeyboardInterrupt as interrupt:
        interrupt.__suppress_context__ = True
        raise


def blocking(fn, *args):
    """reraising() for a blocking call whose last argument is its
    cancellable; on the main thread, Ctrl-C ends it (see above)."""
    if _get_ident() != _interrupts.main:
        return reraising(fn, *args)
    return _interrupts.run(fn, args)


def interruptible(target, fn, *args):
    """``fn(*args)``; on the main thread, Ctrl-C ends it through
    ``target.cancel()`` (see above)."""
    if _get_ident() != _interrupts.main:
        return fn(*args)
    return _interrupts.call(target, fn, args)
