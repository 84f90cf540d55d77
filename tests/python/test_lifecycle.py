# test_lifecycle.py: shutdown, the default runtime, the loop context, stats
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import threading

import pytest

from dvthelpers import DEADLINE, Dvt, GLib, run_loop_until
from gi.repository import Gio


def value_work(task, cancellable, user_data):
    task.return_value(user_data)


def fail_work(task, cancellable, user_data):
    raise GLib.Error('failed', 'my-app-error-quark', 1)


def nothing(task, cancellable, user_data):
    pass


def assert_closed(error):
    assert error.matches(Dvt.error_quark(), Dvt.Error.CLOSED)
    assert error.message  # a sentence a person can act on


# ---- shutdown ----------------------------------------------------------------------

def test_shutdown_is_idempotent_and_reported():
    runtime = Dvt.Runtime.new(2)
    assert runtime.is_shutdown() is False
    runtime.shutdown(True, False)
    assert runtime.is_shutdown() is True
    runtime.shutdown(True, False)
    runtime.shutdown(False, True)
    assert runtime.is_shutdown() is True


CLOSED_CALLS = {
    'run_blocking': lambda rt: rt.run_blocking(value_work, None, None, None),
    'to_thread_blocking': lambda rt: rt.to_thread_blocking(value_work, None, None, None),
    'submit': lambda rt: rt.submit(value_work, None, None, None),
    'schedule': lambda rt: rt.schedule(value_work, None, None, None),
    'map_blocking': lambda rt: rt.map_blocking(3, value_work, None, None, None),
    'map_items': lambda rt: rt.map_blocking(abs, [1, 2]),
    'call_blocking': lambda rt: rt.call_blocking(abs, -1),
    'submit_call': lambda rt: rt.submit_call(abs, -1),
}


@pytest.mark.parametrize('call', sorted(CLOSED_CALLS))
def test_closed_after_shutdown(call):
    runtime = Dvt.Runtime.new(1)
    runtime.shutdown(True, False)
    with pytest.raises(GLib.Error) as info:
        CLOSED_CALLS[call](runtime)
    assert_closed(info.value)


def test_closed_after_shutdown_async():
    runtime = Dvt.Runtime.new(1)
    runtime.shutdown(True, False)
    errors = []

    def done(rt, result, finish):
        try:
            finish(result)
        except GLib.Error as error:
            errors.append(error)

    runtime.to_thread_async(value_work, callback=done, user_data=runtime.to_thread_finish)
    runtime.map_async(2, value_work, callback=done, user_data=runtime.map_finish)
    run_loop_until(lambda: len(errors) == 2)
    for error in errors:
        assert_closed(error)


def test_shutdown_drains_work_in_flight():
    runtime = Dvt.Runtime.new(2)
    release = threading.Event()

    def slow(task, cancellable, user_data):
        release.wait(DEADLINE)
        task.return_value(user_data)

    tasks = [runtime.submit(slow, i) for i in range(4)]
    threading.Timer(0.05, release.set).start()
    runtime.shutdown(True, False)  # waits
    assert all(t.get_completed() for t in tasks)
    assert [t.propagate_value() for t in tasks] == [0, 1, 2, 3]


def test_shutdown_cancelling_releases_waiters():
    runtime = Dvt.Runtime.new(1)
    release = threading.Event()
    started = threading.Event()
    outcome = []

    def stuck(task, cancellable, user_data):
        started.set()
        release.wait(DEADLINE)
        task.return_value('late')

    def waiter():
        try:
            outcome.append(runtime.to_thread_blocking(stuck))
        except GLib.Error as error:
            outcome.append(error)

    thread = threading.Thread(target=waiter)
    thread.start()
    assert started.wait(DEADLINE)
    runtime.shutdown(False, True)
    thread.join(DEADLINE)
    assert not thread.is_alive()
    (error,) = outcome
    assert error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    release.set()
    runtime.shutdown(True, False)


def test_shutdown_from_many_threads():
    runtime = Dvt.Runtime.new(2)
    threads = [threading.Thread(target=runtime.shutdown, args=(True, False))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
        assert not t.is_alive()
    assert runtime.is_shutdown()


# ---- default runtime --------------------------------------------------------------

def test_default_runtime_lazy_reused_recreated():
    first = Dvt.Runtime.get_default()
    assert first is Dvt.Runtime.get_default()
    assert not first.is_shutdown()
    assert first.call_blocking(lambda: 'default') == 'default'
    first.shutdown(True, False)
    second = Dvt.Runtime.get_default()
    assert second != first
    assert not second.is_shutdown()
    assert first.is_shutdown()
    assert second.to_thread_blocking(value_work, 'again', None, None) == 'again'


# ---- loop context ---------------------------------------------------------------

def test_get_context_runs_on_the_loop_thread(rt):
    context = rt.get_context()
    assert isinstance(context, GLib.MainContext)
    assert context != GLib.MainContext.default()
    seen = []
    event = threading.Event()

    def on_idle(*args):
        seen.append((threading.get_ident(), GLib.MainContext.get_thread_default()))
        event.set()
        return GLib.SOURCE_REMOVE

    source = GLib.idle_source_new()
    source.set_callback(on_idle)
    source.attach(context)
    assert event.wait(DEADLINE)
    ((thread, thread_default),) = seen
    assert thread != threading.get_ident()
    assert thread_default == context


def test_max_workers_and_name():
    runtime = Dvt.Runtime.new(3)
    try:
        assert runtime.get_max_workers() == 3
        assert runtime.props.max_workers == 3
        assert runtime.call_blocking(lambda: 'works') == 'works'
    finally:
        runtime.shutdown(True, False)
    # Construct-only properties, from Python's GObject constructor.
    runtime = Dvt.Runtime(max_workers=2, name='pytest-runtime')
    try:
        assert runtime.get_name() == 'pytest-runtime'
        assert runtime.props.name == 'pytest-runtime'
        assert runtime.get_max_workers() == 2
        assert runtime.call_blocking(lambda: 'works') == 'works'
    finally:
        runtime.shutdown(True, False)
    runtime = Dvt.Runtime.new(0)
    try:
        assert runtime.get_max_workers() >= 1
    finally:
        runtime.shutdown(True, False)


# ---- stats ------------------------------------------------------------------------

def test_stats_count_calls():
    runtime = Dvt.Runtime.new(2)
    try:
        before = runtime.get_stats()
        assert (before.queued, before.done, before.error, before.cancelled) == (0, 0, 0, 0)

        assert runtime.to_thread_blocking(value_work, 1, None, None) == 1
        with pytest.raises(GLib.Error):
            runtime.to_thread_blocking(fail_work, None, None, None)
        with pytest.raises(GLib.Error):
            runtime.to_thread_blocking(nothing, None, None, None)
        task = runtime.submit(value_work, 2, None, None)
        task.wait(DEADLINE)

        stats = runtime.get_stats()
        assert stats.queued == 4
        assert stats.started == 4
        assert stats.done == 2
        assert stats.error == 2
        assert stats.cancelled == 0
        assert stats.running == 0
        assert stats.pending == 0
        assert stats.queued == stats.done + stats.error + stats.cancelled

        # A snapshot is a copy: it does not change afterwards.
        runtime.to_thread_blocking(value_work, 3, None, None)
        assert stats.done == 2
        assert runtime.get_stats().done == 3
        copy = stats.copy()
        assert copy.queued == stats.queued
    finally:
        runtime.shutdown(True, False)


def test_stats_count_cancelled():
    runtime = Dvt.Runtime.new(1)
    release = threading.Event()

    def blocker(task, cancellable, user_data):
        release.wait(DEADLINE)
        task.return_value(None)

    try:
        first = runtime.submit(blocker)
        queued = runtime.submit(blocker)
        queued.cancel()
        release.set()
        first.wait(DEADLINE)
        queued.wait(DEADLINE)
        run_loop_until(lambda: runtime.get_stats().pending == 0)
        stats = runtime.get_stats()
        assert stats.cancelled == 1
        assert stats.done == 1
        assert stats.queued == stats.done + stats.error + stats.cancelled
    finally:
        runtime.shutdown(True, False)


def test_stats_while_running(rt):
    release = threading.Event()
    started = threading.Event()

    def slow(task, cancellable, user_data):
        started.set()
        release.wait(DEADLINE)
        task.return_value(None)

    task = rt.submit(slow)
    assert started.wait(DEADLINE)
    stats = rt.get_stats()
    assert stats.running == 1
    assert stats.pending == 1
    release.set()
    task.wait(DEADLINE)


def test_stats_count_a_map_once():
    runtime = Dvt.Runtime.new(2)
    try:
        assert runtime.map_blocking(abs, [-1, -2, -3]) == [1, 2, 3]
        assert runtime.map_blocking(4, lambda task, c, d: task.return_value(1)) == [1] * 4
        run_loop_until(lambda: runtime.get_stats().pending == 0)
        stats = runtime.get_stats()
        assert stats.queued == 2
        assert stats.done == 2
    finally:
        runtime.shutdown(True, False)
