# dvthelpers.py: helpers shared by the Python tests of Dovetail
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import sys
import threading

import gi

gi.require_version('Dvt', '1')
gi.require_version('Gio', '2.0')
gi.require_version('GLib', '2.0')

from gi.repository import Dvt, GLib  # noqa: E402

# Nothing here may wait forever: every wait in the tests has a deadline.
DEADLINE = 60.0


def override_module():
    """The loaded gi.overrides.Dvt module."""
    return sys.modules['gi.overrides.Dvt']


def raw_class(name):
    """The introspected class, without the overrides."""
    return getattr(Dvt._introspection_module, name)


class Peak:
    """Counts work in flight and remembers the highest count."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.calls = 0

    def __enter__(self):
        with self.lock:
            self.now += 1
            self.calls += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc):
        with self.lock:
            self.now -= 1


def wait_for(predicate, timeout=DEADLINE):
    """Polls @predicate() from this thread until it is true; fails instead
    of hanging."""
    deadline = GLib.get_monotonic_time() + int(timeout * 1e6)
    while not predicate():
        assert GLib.get_monotonic_time() < deadline, 'condition not met in time'
        threading.Event().wait(0.001)


def run_loop_until(predicate, context=None, timeout=DEADLINE):
    """Iterates @context (the global default one if None) until
    @predicate() is true; fails instead of hanging."""
    context = context or GLib.MainContext.default()
    deadline = GLib.get_monotonic_time() + int(timeout * 1e6)
    tick = GLib.timeout_source_new(50)
    tick.set_callback(lambda *args: GLib.SOURCE_CONTINUE)
    tick.attach(context)
    try:
        while not predicate():
            if GLib.get_monotonic_time() > deadline:
                raise AssertionError('the main context did not get there in time')
            context.iteration(True)
    finally:
        tick.destroy()


def main_loop_run(start, timeout=DEADLINE):
    """Runs a GLib.MainLoop; @start(loop) starts the work and something
    must call loop.quit(). Fails instead of hanging."""
    loop = GLib.MainLoop()
    timed_out = []

    def on_timeout():
        timed_out.append(True)
        loop.quit()
        return GLib.SOURCE_REMOVE

    timer = GLib.timeout_add(int(timeout * 1000), on_timeout)
    GLib.idle_add(lambda: start(loop) and False)
    loop.run()
    if timed_out:
        raise AssertionError('the main loop did not quit in time')
    GLib.source_remove(timer)


STATS_FIELDS = ('queued', 'started', 'done', 'error', 'cancelled', 'running',
                'pending')


def wait_all(runtime, tasks, timeout=20.0):
    """Waits for @tasks, each within @timeout. If one does not end in time,
    shuts @runtime down cancelling its work (which releases every thread
    blocked in it) and fails: a hang becomes a failure."""
    for task in tasks:
        try:
            task.wait(timeout)
        except GLib.Error as error:
            stats = runtime.get_stats()
            counters = {k: getattr(stats, k) for k in STATS_FIELDS}
            runtime.shutdown(False, True)
            raise AssertionError('task %d did not end in %s s (%s); stats: %s'
                                 % (task.get_id(), timeout, error.message,
                                    counters)) from None


def arun(coro):
    """Runs @coro under asyncio.run(), bounded by DEADLINE, checking that
    its thread has no thread-default GLib context (nothing may need one to
    be iterated). Use with the `no_glib_loop` fixture."""
    import asyncio

    async def checked():
        assert GLib.MainContext.get_thread_default() is None
        return await asyncio.wait_for(coro, DEADLINE)
    return asyncio.run(checked())
