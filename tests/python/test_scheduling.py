# test_scheduling.py: priority and timed starts (Dvt.Options priority=,
# delay=, not_before=) from Python
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Only what the library promises is asserted: the order in which queued
# work starts behind one busy worker, and that a delayed task never starts
# before its time (never how soon after).

import threading
import time

import pytest

from dvthelpers import DEADLINE, Dvt, GLib, main_loop_run
from gi.repository import Gio


def is_cancelled(error):
    return isinstance(error, GLib.Error) and error.matches(
        Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)


@pytest.fixture
def rt1():
    """A runtime with one worker, shut down (waiting) after the test."""
    runtime = Dvt.Runtime.new(1)
    yield runtime
    runtime.shutdown(True, False)


def block_worker(runtime):
    """Submits a first task that holds the only worker until the returned
    event is set."""
    started = threading.Event()
    release = threading.Event()

    def hold():
        started.set()
        release.wait(DEADLINE)

    task = runtime.submit_call(hold)
    assert started.wait(DEADLINE)
    return task, release


def test_options_keywords():
    options = Dvt.Options(priority=GLib.PRIORITY_HIGH, delay=1.5, not_before=42)
    assert options.props.priority == GLib.PRIORITY_HIGH
    assert options.props.delay == 1.5
    assert options.props.not_before == 42
    assert Dvt.Options().props.priority == GLib.PRIORITY_DEFAULT
    copy = options.copy()
    assert (copy.props.priority, copy.props.delay, copy.props.not_before) == \
        (GLib.PRIORITY_HIGH, 1.5, 42)


def test_priority_order(rt1):
    blocker, release = block_worker(rt1)
    priorities = [GLib.PRIORITY_LOW, GLib.PRIORITY_DEFAULT, GLib.PRIORITY_HIGH,
                  GLib.PRIORITY_DEFAULT_IDLE, -50, 10] * 10
    order = []
    tasks = [rt1.submit_call(order.append, i,
                             dvt_options=Dvt.Options(priority=p))
             for i, p in enumerate(priorities)]
    release.set()
    for task in tasks:
        task.result()
    blocker.result()

    # By priority, then in submission order among equals.
    assert order == sorted(range(len(priorities)),
                           key=lambda i: (priorities[i], i))


def test_priority_fifo_among_equals(rt1):
    blocker, release = block_worker(rt1)
    order = []
    options = Dvt.Options(priority=GLib.PRIORITY_LOW)
    tasks = [rt1.submit_call(order.append, i, dvt_options=options)
             for i in range(200)]
    release.set()
    for task in tasks:
        task.result()
    blocker.result()
    assert order == list(range(200))


def test_delay(rt):
    started = []
    called = time.monotonic()
    task = rt.submit_call(lambda: started.append(time.monotonic()),
                          dvt_options=Dvt.Options(delay=0.2))
    task.result()
    assert started[0] - called >= 0.2

    # A blocking call waits through the delay.
    called = time.monotonic()
    assert rt.call_blocking(time.monotonic,
                            dvt_options=Dvt.Options(delay=0.1)) - called >= 0.1


def test_delay_from_a_main_loop(rt):
    """to_thread_async with a delay: the callback comes on this thread's
    main loop, after the work, which did not start before its time."""
    outcome = []
    called = []

    def work(task, cancellable, user_data):
        task.return_value(time.monotonic())

    def done(runtime, result, loop):
        outcome.append(runtime.to_thread_finish(result))
        loop.quit()

    def start(loop):
        called.append(time.monotonic())
        rt.to_thread_async(work, None, Dvt.Options(delay=0.1), None, done, loop)

    main_loop_run(start)
    assert len(outcome) == 1 and outcome[0] - called[0] >= 0.1


def test_not_before(rt):
    not_before = GLib.get_monotonic_time() + 150000
    task = rt.submit_call(GLib.get_monotonic_time,
                          dvt_options=Dvt.Options(not_before=not_before))
    assert task.result() >= not_before


def test_cancel_before_start(rt):
    ran = threading.Event()
    cancelled = []
    rt.connect('cancelled', lambda runtime, task, error, elapsed:
               cancelled.append(task.get_id()))
    task = rt.submit_call(ran.set, dvt_options=Dvt.Options(delay=60))
    began = time.monotonic()
    task.cancel()
    with pytest.raises(GLib.Error) as info:
        task.result()
    assert is_cancelled(info.value)
    assert time.monotonic() - began < DEADLINE

    end = time.monotonic() + DEADLINE
    while not cancelled and time.monotonic() < end:
        time.sleep(0.01)
    assert cancelled == [task.get_id()]
    stats = rt.get_stats()
    assert (stats.queued, stats.cancelled, stats.started) == (1, 1, 0)
    assert not ran.is_set()


def test_shutdown_cancels_delayed():
    runtime = Dvt.Runtime.new(1)
    ran = threading.Event()
    task = runtime.submit_call(ran.set, dvt_options=Dvt.Options(delay=60))
    runtime.shutdown(True, True)
    with pytest.raises(GLib.Error) as info:
        task.result()
    assert is_cancelled(info.value)
    assert not ran.is_set()
