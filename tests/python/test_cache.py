# test_cache.py: Dvt.Cache from Python, through the introspected API
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Keys are GLib.Variant values; the cache's function is called as
# func(task, key, cancellable, user_data) on a worker and completes its
# task with task.return_value() (any Python object) or
# task.return_error(GLib.Error). Callers are plain threads, a GLib main
# loop (get_async) and asyncio coroutines (each awaiting its own task of
# the cache). The @Dvt.cached decorator is tested in test_directions.py.

import asyncio
import collections
import threading
import time

import pytest

from dvthelpers import DEADLINE, Dvt, GLib, main_loop_run
from gi.repository import Gio

IO = Gio.IOErrorEnum


def key(n):
    return GLib.Variant('i', n)


class Counting:
    """A cache function that counts its runs per key and returns a new
    object for each run. While `hold` is clear, runs wait for it (or for
    their cancellation)."""

    def __init__(self, delay=0.0):
        self.lock = threading.Lock()
        self.calls = collections.Counter()
        self.cancelled = 0
        self.running = 0
        self.delay = delay
        self.hold = threading.Event()
        self.hold.set()
        self.fail = None

    def __call__(self, task, k, cancellable, user_data):
        n = k.unpack()
        with self.lock:
            self.calls[n] += 1
            self.running += 1
        try:
            if self.delay:
                time.sleep(self.delay)
            deadline = time.monotonic() + DEADLINE
            while not self.hold.wait(0.002):
                if cancellable.is_cancelled() or time.monotonic() > deadline:
                    break
            if cancellable.is_cancelled():
                with self.lock:
                    self.cancelled += 1
                task.return_error(GLib.Error.new_literal(
                    Gio.io_error_quark(), 'cancelled', IO.CANCELLED))
            elif self.fail is not None:
                task.return_error(self.fail)
            else:
                task.return_value({'key': n, 'run': self.calls[n]})
        finally:
            with self.lock:
                self.running -= 1

    def wait_running(self, n):
        deadline = time.monotonic() + DEADLINE
        while True:
            with self.lock:
                if self.running == n:
                    return
            assert time.monotonic() < deadline, 'the runs did not start'
            time.sleep(0.001)


@pytest.fixture
def work():
    return Counting()


@pytest.fixture
def cache(rt, work):
    return Dvt.Cache.new(rt, work, None)


# ---- plain threads --------------------------------------------------------------

def test_value_stored_and_shared(cache, work):
    first = cache.get_blocking(key(1), 0, None)
    assert first == {'key': 1, 'run': 1}
    # The very object the run returned, to every caller.
    assert cache.get_blocking(key(1), 0, None) is first
    assert cache.props.n_entries == 1
    assert cache.get_hits() == 1 and cache.get_misses() == 1 and cache.get_runs() == 1
    found, value = cache.lookup(key(1))
    assert found and value is first
    found, value = cache.lookup(key(2))
    assert not found and value is None


def test_threads_share_one_run_per_key(rt, work):
    work.delay = 0.005
    cache = Dvt.Cache.new(rt, work, None)
    errors = []

    def caller(seed):
        try:
            for i in range(200):
                n = (seed * 7 + i) % 10
                assert cache.get_blocking(key(n), DEADLINE, None)['key'] == n
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    assert not errors
    assert work.calls == {n: 1 for n in range(10)}
    assert cache.get_runs() == 10


def test_one_caller_leaving_keeps_the_run(cache, work):
    work.hold.clear()
    mine = cache.get(key(3), None)
    other = cache.get(key(3), None)
    work.wait_running(1)
    mine.cancel()
    with pytest.raises(GLib.Error) as info:
        mine.result(DEADLINE)
    assert info.value.matches(Gio.io_error_quark(), IO.CANCELLED)
    assert not other.get_completed()
    work.hold.set()
    assert other.result(DEADLINE) == {'key': 3, 'run': 1}
    assert work.cancelled == 0


def test_last_caller_leaving_cancels_the_run(cache, work):
    work.hold.clear()
    callers = [cache.get(key(4), None) for _ in range(3)]
    work.wait_running(1)
    for task in callers:
        task.cancel()
    work.wait_running(0)
    assert work.cancelled == 1
    # The key is free again: a new run.
    work.hold.set()
    assert cache.get_blocking(key(4), DEADLINE, None) == {'key': 4, 'run': 2}


def test_blocking_wait_limit(cache, work):
    work.hold.clear()
    other = cache.get(key(5), None)
    work.wait_running(1)
    with pytest.raises(GLib.Error) as info:
        cache.get_blocking(key(5), 0.02, None)
    assert info.value.matches(Gio.io_error_quark(), IO.TIMED_OUT)
    work.hold.set()
    assert other.result(DEADLINE)['run'] == 1


def test_errors_unchanged_and_not_kept(cache, work):
    work.fail = GLib.Error.new_literal(Gio.io_error_quark(), 'no entry', IO.PERMISSION_DENIED)
    for _ in range(2):
        with pytest.raises(GLib.Error) as info:
            cache.get_blocking(key(6), 0, None)
        assert info.value.matches(Gio.io_error_quark(), IO.PERMISSION_DENIED)
        assert info.value.message == 'no entry'
    assert work.calls[6] == 2

    cache.props.evict_on_error = False
    for _ in range(2):
        with pytest.raises(GLib.Error):
            cache.get_blocking(key(6), 0, None)
    assert work.calls[6] == 3


def test_ttl_max_size_invalidate(cache, work):
    assert cache.props.ttl == GLib.MAXDOUBLE
    cache.props.max_size = 2
    for n in (1, 2, 3):
        cache.get_blocking(key(n), 0, None)
    assert cache.props.n_entries == 2
    assert not cache.lookup(key(1))[0]

    assert cache.invalidate(key(3))
    assert cache.get_blocking(key(3), 0, None)['run'] == 2
    cache.clear()
    assert cache.props.n_entries == 0

    cache.set_ttl(0)
    cache.get_blocking(key(1), 0, None)
    cache.get_blocking(key(1), 0, None)
    assert work.calls[1] == 3 and cache.props.n_entries == 0

    cache.set_ttl(0.01)
    cache.get_blocking(key(2), 0, None)
    deadline = time.monotonic() + DEADLINE
    while cache.props.n_entries != 0:
        assert time.monotonic() < deadline
        time.sleep(0.005)

    for bad in (-1, float('inf'), float('nan')):
        with pytest.raises(GLib.Error) as info:
            cache.set_ttl(bad)
        assert info.value.matches(Dvt.error_quark(), Dvt.Error.INVALID_ARGUMENT)
    assert cache.get_ttl() == 0.01


def test_key_type(rt, work):
    cache = Dvt.Cache.new_full(rt, GLib.VariantType.new('i'), Dvt.CacheFlags.NONE, work, None)
    assert cache.get_blocking(key(1), 0, None)['key'] == 1
    with pytest.raises(GLib.Error) as info:
        cache.get_blocking(GLib.Variant('s', 'one'), 0, None)
    assert info.value.matches(Dvt.error_quark(), Dvt.Error.INVALID_ARGUMENT)
    assert "'one'" in info.value.message


def test_options(rt, work):
    cache = Dvt.Cache.new(rt, work, None)
    cache.set_options(Dvt.Options(timeout=0.02, name='cached'))
    assert cache.dup_options().props.name == 'cached'
    work.hold.clear()
    with pytest.raises(GLib.Error) as info:
        cache.get_blocking(key(1), 0, None)
    assert info.value.matches(Gio.io_error_quark(), IO.TIMED_OUT)
    work.hold.set()


def test_shutdown_ends_waits(work):
    runtime = Dvt.Runtime.new(2)
    cache = Dvt.Cache.new(runtime, work, None)
    work.hold.clear()
    task = cache.get(key(1), None)
    work.wait_running(1)
    runtime.shutdown(False, True)
    with pytest.raises(GLib.Error) as info:
        task.result(DEADLINE)
    assert info.value.matches(Gio.io_error_quark(), IO.CANCELLED)
    with pytest.raises(GLib.Error) as info:
        cache.get_blocking(key(1), 0, None)
    assert info.value.matches(Dvt.error_quark(), Dvt.Error.CLOSED)
    runtime.shutdown(True, False)


# ---- a GLib main loop -------------------------------------------------------------

def test_get_async_on_the_main_loop(cache, work):
    got = []
    main = threading.get_ident()

    def start(loop):
        def done(source, result, n):
            got.append((n, source.get_finish(result), threading.get_ident()))
            if len(got) == 6:
                loop.quit()

        for i in range(6):
            cache.get_async(key(i % 2), None, done, i)
        return False

    main_loop_run(start)
    assert sorted(n for n, _, _ in got) == list(range(6))
    assert all(thread == main for _, _, thread in got)
    assert all(value['key'] == n % 2 for n, value, _ in got)
    assert work.calls == {0: 1, 1: 1}


# ---- asyncio --------------------------------------------------------------------

async def aget(cache, k):
    """The value of @k, awaited from asyncio: this coroutine's own task of
    the cache, waited for in a thread of the default executor. Cancelling
    the coroutine cancels that task only."""
    task = cache.get(k, None)
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, task.wait, DEADLINE)
    except asyncio.CancelledError:
        task.cancel()
        raise
    return task.propagate_value()


def test_asyncio_callers_share_runs(cache, work):
    work.delay = 0.005

    async def main():
        return await asyncio.gather(*(aget(cache, key(i % 4)) for i in range(40)))

    values = asyncio.run(main())
    assert [v['key'] for v in values] == [i % 4 for i in range(40)]
    assert work.calls == {n: 1 for n in range(4)}


def test_asyncio_cancelling_one_coroutine(cache, work):
    work.hold.clear()

    async def main():
        waiters = [asyncio.create_task(aget(cache, key(8))) for _ in range(3)]
        await asyncio.get_running_loop().run_in_executor(None, work.wait_running, 1)
        waiters[0].cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiters[0]
        assert work.cancelled == 0
        work.hold.set()
        return await asyncio.gather(*waiters[1:])

    assert asyncio.run(main()) == [{'key': 8, 'run': 1}] * 2
    assert work.calls[8] == 1 and work.cancelled == 0


def test_asyncio_and_threads_together(cache, work):
    work.delay = 0.002
    from_threads = []

    def caller():
        from_threads.extend(cache.get_blocking(key(i % 5), DEADLINE, None)['key']
                            for i in range(50))

    async def main():
        threads = [threading.Thread(target=caller) for _ in range(3)]
        for t in threads:
            t.start()
        values = await asyncio.gather(*(aget(cache, key(i % 5)) for i in range(50)))
        for t in threads:
            await asyncio.get_running_loop().run_in_executor(None, t.join, DEADLINE)
        return values

    values = asyncio.run(main())
    assert [v['key'] for v in values] == [i % 5 for i in range(50)]
    assert len(from_threads) == 150
    assert work.calls == {n: 1 for n in range(5)}


# The decorator over Dvt.Cache, Dvt.cached, is tested in test_directions.py.
