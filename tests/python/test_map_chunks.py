# test_map_chunks.py: map_blocking(fn, items) runs items in runs on a few
# runners; each item keeps its own meaning
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import threading
import time

import pytest

from dvthelpers import DEADLINE, Dvt, GLib, Peak, main_loop_run, override_module

from gi.repository import Gio


@pytest.fixture
def runner_calls(monkeypatch):
    """Counts the calls of the chunked path's runner (0: one task per item)."""
    chunks = override_module()._Chunks
    original = chunks.run
    calls = []

    def run(self, *args):
        calls.append(threading.get_ident())
        return original(self, *args)

    monkeypatch.setattr(chunks, 'run', run)
    return calls


def test_order_of_10000_items_on_workers(rt, runner_calls):
    caller = threading.get_ident()
    threads = set()

    def work(x):
        threads.add(threading.get_ident())
        return x * 3

    assert rt.map_blocking(work, range(10000)) == [x * 3 for x in range(10000)]
    assert caller not in threads
    # One runner per worker at most, not one task per item.
    assert 1 <= len(runner_calls) <= rt.get_max_workers()


def test_uneven_items_all_run_once(rt, runner_calls):
    seen = []

    def work(x):
        if x % 97 == 0:
            time.sleep(0.002)
        seen.append(x)
        return -x

    assert rt.map_blocking(work, range(3000)) == [-x for x in range(3000)]
    assert sorted(seen) == list(range(3000))


def test_return_errors_puts_each_failure_in_its_slot(rt, runner_calls):
    def work(x):
        if x % 100 == 7:
            raise ValueError(x)
        if x % 100 == 9:
            raise GLib.Error('nine', 'my-app-error-quark', x)
        return x

    results = rt.map_blocking(work, range(1000),
                              options=Dvt.Options(return_errors=True))
    assert runner_calls
    for x, result in enumerate(results):
        if x % 100 == 7:
            assert isinstance(result, ValueError) and result.args == (x,)
            # The traceback starts in the work function.
            assert result.__traceback__.tb_frame.f_code is work.__code__
        elif x % 100 == 9:
            assert isinstance(result, GLib.Error) and result.code == x
        else:
            assert result == x


def test_first_failure_stops_later_items(rt, runner_calls):
    ran = []
    error = ValueError('item 40')

    def work(x):
        ran.append(x)
        if x == 40:
            raise error
        return x

    with pytest.raises(ValueError) as info:
        rt.map_blocking(work, range(10000),
                        options=Dvt.Options(max_concurrency=1))
    assert info.value is error
    assert runner_calls
    assert ran == list(range(41))


def test_first_failure_stops_every_runner(rt, runner_calls):
    ran = []

    def work(x):
        ran.append(x)
        if x == 500:
            raise KeyError(x)
        time.sleep(0.0005)
        return x

    with pytest.raises(KeyError):
        rt.map_blocking(work, range(5000))
    # The other runner finishes the item it is running, then stops.
    assert 500 in ran and len(ran) < 2000


def test_glib_error_of_an_item_reaches_the_caller_unchanged(rt, runner_calls):
    def work(x):
        if x == 3:
            raise GLib.Error('three', 'my-app-error-quark', 3)
        return x

    with pytest.raises(GLib.Error) as info:
        rt.map_blocking(work, range(10))
    assert info.value.domain == 'my-app-error-quark' and info.value.code == 3


def test_cancelling_midway_stops_remaining_items(rt, runner_calls):
    cancellable = Gio.Cancellable()
    ran = []

    def work(x):
        ran.append(x)
        if x == 25:
            cancellable.cancel()
        return x

    with pytest.raises(GLib.Error) as info:
        rt.map_blocking(work, range(10000), Dvt.Options(max_concurrency=1),
                        cancellable)
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    assert ran == list(range(26))


def test_cancelling_from_another_thread(rt, runner_calls):
    cancellable = Gio.Cancellable()
    ran = []

    def work(x):
        ran.append(x)
        time.sleep(0.001)
        return x

    timer = threading.Timer(0.05, cancellable.cancel)
    timer.start()
    try:
        with pytest.raises(GLib.Error) as info:
            rt.map_blocking(work, range(100000), cancellable=cancellable)
    finally:
        timer.join()
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    # Let the runners see the cancellation and leave.
    time.sleep(0.05)
    count = len(ran)
    time.sleep(0.05)
    assert len(ran) == count < 100000


@pytest.mark.parametrize('limit, expected', [(3, 3), (0, 1)])
def test_max_concurrency_is_never_exceeded(runner_calls, limit, expected):
    runtime = Dvt.Runtime.new(8)
    peak = Peak()

    def work(x):
        with peak:
            time.sleep(0.0005)
        return x

    try:
        options = Dvt.Options(max_concurrency=limit)
        assert runtime.map_blocking(work, range(400), options=options) == list(range(400))
    finally:
        runtime.shutdown(True, False)
    assert runner_calls
    assert 1 <= peak.peak <= expected


def test_per_item_timeout_falls_back_to_one_task_per_item(rt, runner_calls):
    release = threading.Event()

    def work(x):
        if x == 1:
            release.wait(10)  # ignores its cancellable
        return x

    options = Dvt.Options(timeout=0.2, return_errors=True)
    try:
        results = rt.map_blocking(work, range(6), options=options)
    finally:
        release.set()
    assert runner_calls == []
    assert results[0] == 0 and results[2:] == [2, 3, 4, 5]
    assert isinstance(results[1], GLib.Error)
    assert results[1].matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)


def test_per_item_retries_fall_back_to_one_task_per_item(rt, runner_calls):
    # test_policy.py checks that each item is retried on its own.
    options = Dvt.Options(retries=1)
    assert rt.map_blocking(abs, range(-3, 0), options=options) == [3, 2, 1]
    assert runner_calls == []
    rt.set_rate_limit(1000, 10)
    assert rt.map_blocking(abs, range(-3, 0)) == [3, 2, 1]
    assert runner_calls == []


def test_progress_counts_items(rt, runner_calls):
    seen = []
    rt.connect('progress', lambda runtime, task, done, total: seen.append((done, total)))
    assert rt.map_blocking(abs, range(-50, 0)) == list(range(50, 0, -1))
    assert runner_calls == []
    deadline = time.monotonic() + 10
    while (50, 50) not in seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (50, 50) in seen
    assert all(total == 50 for done, total in seen)


def test_empty_items(rt, runner_calls):
    assert rt.map_blocking(abs, []) == []


# ---- no item starts once the call has ended -----------------------------------
#
# However a map ends (cancelled from another thread, past its deadline, or
# by a shutdown that cancels pending work), once map_blocking() has raised
# no further item of it may start. The runtime ends the map's task and
# cancels its cancellable, in either order; the items must not depend on
# which comes first.

class Admissions:
    """fn(item) for the maps below: counts the items it is entered for.
    Once told to abort it fails every item, so that runners left going by
    a bug stop soon instead of running 100 000 items."""

    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0
        self.abort = False

    def fn(self, x):
        with self.lock:
            self.count += 1
        if self.abort:
            raise RuntimeError('aborted by the test')
        time.sleep(0.001)
        return x


def end_map(how, runtime, cancellable):
    """Starts a thread that ends the map running on @runtime in a moment."""
    def end():
        time.sleep(0.02)
        if how == 'cancel':
            cancellable.cancel()
        elif how == 'shutdown-wait':
            runtime.shutdown(True, True)
        elif how == 'shutdown-nowait':
            runtime.shutdown(False, True)
    thread = threading.Thread(target=end)
    thread.start()
    return thread


# 'runs': the runners of map_blocking(fn, items); 'tasks': one task per
# item (retries make each item a task of its own).
@pytest.mark.parametrize('path', ['runs', 'tasks'])
@pytest.mark.parametrize('how', ['cancel', 'deadline', 'shutdown-wait', 'shutdown-nowait'])
def test_no_item_starts_after_the_call_has_raised(how, path):
    # A race: the runtime may release the caller before the runners learn
    # that the map has ended. Tried several times.
    for _ in range(8):
        runtime = Dvt.Runtime.new(2)
        admissions = Admissions()
        cancellable = Gio.Cancellable()
        options = Dvt.Options(deadline=0.05 if how == 'deadline' else 0,
                              retries=1 if path == 'tasks' else 0)
        ender = end_map(how, runtime, cancellable)
        try:
            with pytest.raises(GLib.Error):
                runtime.map_blocking(admissions.fn, range(100000), options=options,
                                     cancellable=cancellable)
            at_end = admissions.count
            time.sleep(0.1)
            late = admissions.count - at_end
        finally:
            admissions.abort = True
            ender.join(DEADLINE)
            runtime.shutdown(True, True)
        # Each of the (at most max-workers) runners or item tasks may have
        # been let in to its item just before the map ended, and have
        # counted it just after we read the count: at most one each.
        assert late <= runtime.get_max_workers(), (
            '%d items started after map_blocking() raised' % late)


def test_no_item_starts_after_map_async_has_failed(rt):
    cancellable = Gio.Cancellable()
    admissions = Admissions()
    seen = {}

    def done(runtime, result, user_data):
        try:
            runtime.map_finish(result)
        except GLib.Error as error:
            seen['error'] = error
        seen['count'] = admissions.count
        seen['loop'].quit()

    def start(loop):
        seen['loop'] = loop
        rt.map_async(admissions.fn, range(100000), cancellable=cancellable,
                     callback=done)
        threading.Timer(0.02, cancellable.cancel).start()

    try:
        main_loop_run(start)
        time.sleep(0.1)
        late = admissions.count - seen['count']
    finally:
        admissions.abort = True
    assert seen['error'].matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    assert late <= rt.get_max_workers()
