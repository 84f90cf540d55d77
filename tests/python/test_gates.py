# test_gates.py: Dvt.Semaphore, Dvt.RateLimiter, Dvt.Lockout from Python
# threads, and options.add_gate()
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import threading
import asyncio
import time

import pytest

from dvthelpers import Dvt, GLib, arun
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


# ---- asyncio ---------------------------------------------------------------------
#
# Under asyncio.run(), with no GLib main context iterated by the test.

async def until(predicate):
    """Polls @predicate() from a coroutine (the caller's arun() bounds it)."""
    while not predicate():
        await asyncio.sleep(0.001)


@pytest.mark.usefixtures('no_glib_loop')
def test_async_with_semaphore_beside_threads():
    sem = Dvt.Semaphore(3)
    peak = Peak()

    def thread_work():
        for _ in range(50):
            with sem:
                with peak:
                    time.sleep(0)

    async def coro_work():
        for _ in range(10):
            async with sem:
                with peak:
                    await asyncio.sleep(0)

    async def main():
        threads = [threading.Thread(target=thread_work) for _ in range(2)]
        for thread in threads:
            thread.start()
        await asyncio.gather(*(coro_work() for _ in range(12)))
        await asyncio.to_thread(lambda: [t.join() for t in threads])

    arun(main())
    assert peak.peak <= 3
    assert sem.get_available() == 3
    assert sem.get_n_waiting() == 0


@pytest.mark.usefixtures('no_glib_loop')
def test_async_semaphore_priority_order():
    sem = Dvt.Semaphore(1)
    order = []

    async def waiter(priority):
        async with sem.priority(priority) as entered:
            assert entered is sem
            order.append(priority)

    async def main():
        assert sem.try_enter()
        waiters = []
        for priority in (5, -3, 0, -3, 2):
            waiters.append(asyncio.ensure_future(waiter(priority)))
            await until(lambda: sem.get_n_waiting() == len(waiters))
        sem.leave()
        await asyncio.gather(*waiters)

    arun(main())
    assert order == [-3, -3, 0, 2, 5]
    assert sem.get_available() == 1


@pytest.mark.usefixtures('no_glib_loop')
def test_async_gate_timeout_cancellable_and_aenter():
    sem = Dvt.Semaphore(1)

    async def main():
        await sem.aenter()             # enter only: leave() by hand
        with pytest.raises(Dvt.TimeoutError) as excinfo:
            await sem.priority(0, timeout=0.02)
        assert excinfo.value.matches(IO_ERROR, Gio.IOErrorEnum.TIMED_OUT)
        cancellable = Gio.Cancellable()
        asyncio.get_running_loop().call_later(0.02, cancellable.cancel)
        with pytest.raises(GLib.Error) as excinfo:
            async with sem.priority(0, cancellable=cancellable):
                pass
        assert excinfo.value.matches(IO_ERROR, Gio.IOErrorEnum.CANCELLED)
        # Cancelling the awaiting task leaves the caller's cancellable be.
        await until(lambda: sem.get_n_waiting() == 0)
        own = Gio.Cancellable()
        waiter = asyncio.ensure_future(sem.priority(0, cancellable=own).__aenter__())
        await until(lambda: sem.get_n_waiting() == 1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert not own.is_cancelled()
        sem.leave()
        await until(lambda: sem.get_n_waiting() == 0)

    arun(main())
    assert sem.get_available() == 1


@pytest.mark.usefixtures('no_glib_loop')
def test_cancelled_async_entrant_holds_nothing():
    """A waiter cancelled at the instant it is admitted gives its permit
    back (the admission that won the race is left by the override), in a
    loop over both orders of the race."""
    sem = Dvt.Semaphore(1)
    outcomes = {'entered': 0, 'cancelled': 0}

    async def main():
        for i in range(300):
            await until(lambda: sem.get_available() == 1)
            assert sem.try_enter()
            waiter = asyncio.ensure_future(
                sem.aenter() if i % 2 else sem.priority(i % 5).__aenter__())
            await until(lambda: sem.get_n_waiting() == 1)
            if i % 3:
                sem.leave()          # hands the permit to the waiter ...
                waiter.cancel()      # ... as it is cancelled
            else:
                waiter.cancel()
                threading.Thread(target=sem.leave).start()
            try:
                await waiter
            except asyncio.CancelledError:
                outcomes['cancelled'] += 1
            else:
                outcomes['entered'] += 1
                sem.leave()
        await until(lambda: sem.get_available() == 1)

    arun(main())
    assert sum(outcomes.values()) == 300
    assert sem.get_available() == 1
    assert sem.get_n_waiting() == 0


@pytest.mark.usefixtures('no_glib_loop')
def test_async_with_limiter_and_lockout():
    limiter = Dvt.RateLimiter(2, 0.2)
    lockout = Dvt.Lockout()
    admitted = []

    async def through_limiter():
        async with limiter:
            admitted.append(time.monotonic())

    async def main():
        begin = time.monotonic()
        await asyncio.gather(*(through_limiter() for _ in range(5)))
        through = time.monotonic() - begin
        start = time.monotonic()
        lockout.lock_for(0.1)
        async with lockout:
            waited = time.monotonic() - start
        return through, waited

    through, waited = arun(main())
    assert waited >= 0.1 - 1e-3
    assert len(admitted) == 5
    # Never more than 2 in any window of 0.2 s: the fifth is admitted at
    # least 0.4 s after the first, which came after the start. (The times
    # each coroutine saw on resuming are later than its admission by as
    # much as the loop took to get to it, so they say nothing of windows.)
    assert through >= 0.4 - 1e-3
    assert limiter.get_n_waiting() == 0
