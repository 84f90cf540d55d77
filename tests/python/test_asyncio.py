# test_asyncio.py: Dovetail awaited from asyncio (issue 11 item 3)
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Every test runs its coroutines under asyncio.run() (or a loop of its
# own), and no GLib main context is iterated by the test: the `no_glib_loop`
# fixture checks that an idle source on the global default context never
# runs, and each coroutine checks that its thread has no thread-default
# GLib context of its own.

import asyncio
import concurrent.futures as cf
import gc
import threading
import sys
import time

import pytest

from dvthelpers import DEADLINE, Dvt, GLib, arun
from gi.repository import Gio


pytestmark = pytest.mark.usefixtures('no_glib_loop')


run = arun


class Boom(Exception):
    pass


def boom(*_args):
    raise Boom('boom')


def test_await_task(rt):
    async def main():
        value = await rt.submit_call(pow, 2, 10)
        with pytest.raises(Boom):
            await rt.submit_call(boom)
        task = rt.submit_call(str.upper, 'a')
        assert await task == 'A'
        assert await task == 'A'       # awaiting an ended task again
        failed = rt.submit_call(boom)
        failed.wait(DEADLINE)
        for _ in range(2):             # ended before the await
            with pytest.raises(Boom):
                await failed
        return value
    assert run(main()) == 1024


def test_await_raw_work_task(rt):
    def work(task, cancellable, data):
        task.return_value(data * 2)

    async def main():
        return await rt.submit(work, 21)
    assert run(main()) == 42


def test_call_many(rt):
    async def main():
        return await asyncio.gather(*(rt.call(pow, i, 2) for i in range(500)))
    assert run(main()) == [i * i for i in range(500)]


def test_call_kwargs_and_exception(rt):
    async def main():
        assert await rt.call(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]
        with pytest.raises(Boom) as info:
            await rt.call(boom)
        return info.value
    assert str(run(main())) == 'boom'


def test_call_runs_on_a_worker(rt):
    async def main():
        return await rt.call(threading.get_ident)
    assert run(main()) != threading.get_ident()


def test_call_timeout_option(rt):
    release = threading.Event()

    async def main():
        with pytest.raises(TimeoutError) as info:
            await rt.call(release.wait, DEADLINE,
                          dvt_options=Dvt.Options(timeout=0.05))
        return info.value
    try:
        error = run(main())
    finally:
        release.set()
    assert isinstance(error, GLib.Error)
    assert error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)


def test_call_follows_a_runtime_timeout_set_between_calls(rt):
    # The override remembers whether the runtime's own properties give each
    # call a policy; setting one must be seen by the next call.
    release = threading.Event()

    async def main():
        assert await rt.call(pow, 2, 3) == 8          # no policy yet
        rt.props.timeout = 0.05
        with pytest.raises(TimeoutError):
            await rt.call(release.wait, DEADLINE)
        rt.props.timeout = 0
        return await rt.call(pow, 3, 2)
    try:
        assert run(main()) == 9
    finally:
        release.set()


def test_cancelling_the_awaiting_task_cancels_the_dvt_task(rt):
    seen = threading.Event()
    started = threading.Event()

    def work(task, cancellable, data):
        started.set()
        cancellable.connect(lambda *_: seen.set())
        seen.wait(DEADLINE)
        task.return_value(None)

    async def main():
        task = rt.submit(work)
        waiter = asyncio.ensure_future(task)
        await asyncio.sleep(0.01)   # the waiter's first step awaits the task
        while not started.is_set():
            await asyncio.sleep(0.005)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        return task
    task = run(main())
    assert seen.wait(DEADLINE)
    task.wait(DEADLINE)
    assert task.cancelled()


def test_cancelling_the_dvt_task_ends_the_await(rt):
    release = threading.Event()

    async def main():
        task = rt.submit_call(release.wait, DEADLINE)
        waiter = asyncio.ensure_future(task)
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(Dvt.CancelledError) as info:
            await waiter
        return info.value
    try:
        error = run(main())
    finally:
        release.set()
    assert isinstance(error, cf.CancelledError)
    assert isinstance(error, GLib.Error)
    assert error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)


def test_call_cancelled_before_it_starts_never_runs():
    ran = []
    release = threading.Event()
    with Dvt.Runtime.new(1) as runtime:
        async def main():
            blocker = runtime.call(release.wait, DEADLINE)
            queued = runtime.call(ran.append, 'ran')
            await asyncio.sleep(0.01)
            queued.cancel()
            release.set()
            await blocker
            # a call after it still runs
            assert await runtime.call(pow, 2, 2) == 4
        run(main())
    assert ran == []


def test_call_after_shutdown_fails(rt):
    rt.shutdown(True, False)

    async def main():
        with pytest.raises(GLib.Error) as info:
            await rt.call(pow, 2, 2)
        return info.value
    assert run(main()).matches(Dvt.error_quark(), Dvt.Error.CLOSED)


def test_calls_queued_at_a_cancelling_shutdown_end():
    release = threading.Event()
    runtime = Dvt.Runtime.new(1)

    async def main():
        calls = [runtime.call(release.wait, DEADLINE) for _ in range(2)]
        await asyncio.sleep(0.02)
        runtime.shutdown(False, True)
        release.set()
        return await asyncio.gather(*calls, return_exceptions=True)
    try:
        outcomes = run(main())
    finally:
        release.set()
        runtime.shutdown(True, False)
    # The first was running (a plain function runs to its end); none hangs.
    assert len(outcomes) == 2


def test_map(rt):
    async def main():
        assert await rt.map(str.upper, []) == []
        assert await rt.map(lambda x: x * 2, range(100)) == [x * 2 for x in range(100)]
        with pytest.raises(Boom):
            await rt.map(boom, range(3))
    run(main())


def test_queue_aget_aput():
    async def main():
        queue = Dvt.Queue(max_size=1)
        await queue.aput('a')
        putter = asyncio.ensure_future(queue.aput('b'))   # waits for room
        await asyncio.sleep(0.01)
        assert not putter.done()
        assert await queue.aget() == 'a'
        await putter
        assert await queue.aget() == 'b'

        # a cancelled aget loses no item
        getter = asyncio.ensure_future(queue.aget())
        await asyncio.sleep(0.01)
        getter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await getter
        await queue.aput(None)
        assert await queue.aget() is None

        # from a thread to asyncio
        threading.Thread(target=lambda: [queue.put(i) for i in range(5)]).start()
        return [await queue.aget() for _ in range(5)]
    assert run(main()) == list(range(5))


def test_result_not_returned_to_a_cancelled_awaiter_is_an_orphan():
    """The awaiting task cancelled after the adapter's future got its
    result but before the task resumed: the await raises CancelledError,
    and the result goes to on_orphan (a queue's item is pushed back)
    rather than being lost."""
    aio = sys.modules['gi.overrides._dvt.aio']

    async def main():
        loop = asyncio.get_running_loop()
        orphans = []
        future = aio._Future(loop=loop)
        future._dvt_orphan = orphans.append

        async def awaiter():
            return await future

        task = asyncio.ensure_future(awaiter())
        await asyncio.sleep(0)          # the task waits on the future
        future.set_result('item')
        task.cancel()                   # before the task resumed
        with pytest.raises(asyncio.CancelledError):
            await task
        assert orphans == ['item']

        queue = Dvt.Queue()
        getter = asyncio.ensure_future(awaiter_of(queue))
        while queue.get_n_waiting_poppers() == 0:
            await asyncio.sleep(0.001)
        queue.put_nowait('x')
        while not getter.done():
            getter.cancel()
            await asyncio.sleep(0)
        if getter.cancelled():
            while queue.qsize() == 0:
                await asyncio.sleep(0.001)
            return queue.get_nowait()
        return getter.result()

    async def awaiter_of(queue):
        return await queue.aget()

    assert run(main()) == 'x'


def test_cache_aget(rt):
    runs = []

    def compute(task, key, cancellable, data):
        runs.append(key.unpack())
        time.sleep(0.01)
        task.return_value(key.unpack() * 10)

    cache = Dvt.Cache.new(rt, compute, None)

    async def main():
        return await asyncio.gather(*(cache.aget(GLib.Variant('i', i % 3))
                                      for i in range(30)))
    assert run(main()) == [i % 3 * 10 for i in range(30)]
    assert sorted(runs) == [0, 1, 2]


def test_callable_acall(rt):
    def double(task, args, cancellable, data):
        task.return_value(args.unpack() * 2)

    callable_ = Dvt.Callable.new(rt, double)

    async def main():
        return await callable_.acall(GLib.Variant('i', 21))
    assert run(main()) == 42


def test_ashutdown_and_await_idle():
    runtime = Dvt.Runtime.new(2)

    async def main():
        calls = [runtime.call(time.sleep, 0.01) for _ in range(4)]
        await runtime.await_idle()
        assert all(c.done() for c in calls)
        assert not runtime.is_shutdown()
        pending = runtime.call(time.sleep, 0.01)
        await runtime.ashutdown()
        await pending
        assert runtime.is_shutdown()
        await runtime.ashutdown()      # twice is fine
    run(main())


def test_loop_closed_before_completion(rt):
    release = threading.Event()
    task = rt.submit_call(release.wait, DEADLINE)
    loop = asyncio.new_event_loop()

    async def start():
        asyncio.ensure_future(rt.call(release.wait, DEADLINE))
        asyncio.ensure_future(task)
        await asyncio.sleep(0.01)

    loop.run_until_complete(start())
    loop.close()
    release.set()
    assert task.result(DEADLINE) is True
    rt.call_blocking(time.sleep, 0.01)   # the outcomes have been dropped
    time.sleep(0.05)
    gc.collect()


def test_awaited_tasks_are_collected(rt):
    async def main():
        for i in range(50):
            assert await rt.submit_call(pow, i, 2) == i * i
    run(main())
    gc.collect()


def test_forked_child_makes_its_own_bridge(rt):
    import os
    import signal

    async def use(runtime):
        assert await runtime.submit_call(pow, 2, 3) == 8
        assert await runtime.call(pow, 3, 2) == 9
        queue = Dvt.Queue()
        await queue.aput(1)
        return await queue.aget()

    assert run(use(rt)) == 1          # the parent's bridge thread exists now
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            signal.alarm(int(DEADLINE))
            with Dvt.Runtime.new(1) as child:
                status = 0 if asyncio.run(use(child)) == 1 else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_call_events_reach_a_function_scope(rt):
    def work(x):
        return x + 1

    finished = []
    scope = rt.scope_events(function=work)
    scope.connect('finished', lambda *args: finished.append(args))

    async def main():
        return await asyncio.gather(*(rt.call(work, i) for i in range(3)))
    assert run(main()) == [1, 2, 3]
    deadline = time.monotonic() + DEADLINE
    while len(finished) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(finished) == 3
    del scope
