# test_gates.py: Dvt.Semaphore, Dvt.RateLimiter, Dvt.Lockout from Python
# threads, and options.add_gate()
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import threading
import time

import pytest

from dvthelpers import Dvt, GLib
from gi.repository import Gio

DVT_ERROR = Dvt.error_quark()
IO_ERROR = Gio.io_error_quark()


class Peak:
    """Counts entrants inside at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.inside = 0
        self.peak = 0

    def __enter__(self):
        with self.lock:
            self.inside += 1
            self.peak = max(self.peak, self.inside)

    def __exit__(self, *exc_info):
        with self.lock:
            self.inside -= 1


def run_threads(n, target):
    threads = [threading.Thread(target=target) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_semaphore_with_from_threads():
    sem = Dvt.Semaphore(3)
    assert isinstance(sem, Dvt.Gate)
    assert sem.get_value() == 3
    peak = Peak()

    def work():
        for _ in range(200):
            with sem:
                with peak:
                    time.sleep(0)

    run_threads(8, work)
    assert peak.peak <= 3
    assert sem.get_available() == 3
    assert sem.get_n_waiting() == 0


def test_semaphore_leaves_on_exception():
    sem = Dvt.Semaphore(1)
    with pytest.raises(ZeroDivisionError):
        with sem:
            1 / 0
    assert sem.get_available() == 1


def test_semaphore_priority_order():
    sem = Dvt.Semaphore(1)
    order = []
    assert sem.try_enter()
    threads = []
    for index, priority in enumerate([3, 1, 2, 1, 0]):
        def work(priority=priority, index=index):
            with sem.priority(priority):
                order.append((priority, index))
        thread = threading.Thread(target=work)
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 30
        while sem.get_n_waiting() < index + 1:
            assert time.monotonic() < deadline
            time.sleep(0.001)
    sem.leave()
    for thread in threads:
        thread.join()
    assert order == sorted(order)
    assert sem.get_available() == 1


def test_semaphore_timeout_and_cancel():
    sem = Dvt.Semaphore(1)
    with sem:
        with pytest.raises(GLib.Error) as excinfo:
            sem.enter_blocking_timeout(0.02, None)
        assert excinfo.value.matches(IO_ERROR, Gio.IOErrorEnum.TIMED_OUT)
        cancellable = Gio.Cancellable()
        threading.Timer(0.02, cancellable.cancel).start()
        with pytest.raises(GLib.Error) as excinfo:
            sem.enter_blocking(cancellable)
        assert excinfo.value.matches(IO_ERROR, Gio.IOErrorEnum.CANCELLED)
    assert sem.get_available() == 1


def test_semaphore_async_on_a_main_loop():
    sem = Dvt.Semaphore(1)
    context = GLib.MainContext.new()
    context.push_thread_default()
    try:
        results = []

        def done(source, result, *args):
            results.append(source.enter_finish(result))

        assert sem.try_enter()
        sem.enter_async(None, done)
        deadline = time.monotonic() + 30
        while sem.get_n_waiting() < 1:
            context.iteration(False)
            assert time.monotonic() < deadline
        threading.Thread(target=sem.leave).start()
        while not results:
            context.iteration(False)
            assert time.monotonic() < deadline
        assert results == [True]
        sem.leave()
    finally:
        context.pop_thread_default()
    assert sem.get_available() == 1


@pytest.mark.parametrize('limit,period', [(0, 1.0), (1, 0.0), (1, -1.0),
                                          (1, float('nan')), (1, float('inf'))])
def test_limiter_bad_arguments(limit, period):
    with pytest.raises(GLib.Error) as excinfo:
        Dvt.RateLimiter(limit, period)
    assert excinfo.value.matches(DVT_ERROR, Dvt.Error.INVALID_ARGUMENT)
    with pytest.raises(GLib.Error) as excinfo:
        Dvt.RateLimiter.new(limit, period)
    assert excinfo.value.matches(DVT_ERROR, Dvt.Error.INVALID_ARGUMENT)


def test_limiter_admits_caller_n_plus_one_once_the_window_slides():
    limiter = Dvt.RateLimiter(3, 0.2)
    assert (limiter.get_limit(), limiter.get_period()) == (3, 0.2)
    times = []

    def work():
        for _ in range(2):
            with limiter:
                times.append(time.monotonic())

    start = time.monotonic()
    run_threads(4, work)
    assert len(times) == 8
    # 8 entries at 3 per 0.2 s: the 7th cannot come before 0.4 s.
    assert time.monotonic() - start >= 0.4
    assert limiter.get_n_waiting() == 0


def test_lockout():
    lockout = Dvt.Lockout(fifo=True)
    assert lockout.get_fifo()
    with lockout:
        pass
    for bad in (-1.0, float('nan'), float('inf')):
        with pytest.raises(GLib.Error) as excinfo:
            lockout.lock_for(bad)
        assert excinfo.value.matches(DVT_ERROR, Dvt.Error.INVALID_ARGUMENT)
    start = time.monotonic()
    lockout.lock_for(0.1)
    assert lockout.get_remaining() > 0
    assert not lockout.try_enter()
    entered = []

    def work():
        with lockout:
            entered.append(time.monotonic() - start)

    run_threads(3, work)
    assert len(entered) == 3 and min(entered) >= 0.1


def test_options_add_gate(rt):
    sem = Dvt.Semaphore(2)
    options = Dvt.Options()
    options.add_gate(sem)
    assert list(options.get_gates()) == [sem]
    peak = Peak()

    def work(x):
        with peak:
            time.sleep(0.002)
        return x * 2

    assert rt.map_blocking(work, range(30), options=options) == [x * 2 for x in range(30)]
    assert peak.peak <= 2
    deadline = time.monotonic() + 30
    while sem.get_available() != 2:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    assert rt.call_blocking(pow, 2, 10, dvt_options=options) == 1024


def test_options_gate_wait_counts_as_throttled(rt):
    sem = Dvt.Semaphore(1)
    options = Dvt.Options()
    options.add_gate(sem)
    throttled = []
    rt.connect('throttled', lambda runtime, task, wait: throttled.append(wait))
    with sem:
        task = rt.submit_call(lambda: 42, dvt_options=options)
        deadline = time.monotonic() + 30
        while sem.get_n_waiting() < 1:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        assert not task.get_completed()
    assert task.result() == 42
    assert rt.get_stats().throttled == 1
    deadline = time.monotonic() + 30
    while not throttled:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    assert throttled == [0.0]
