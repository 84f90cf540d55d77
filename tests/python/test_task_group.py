# test_task_group.py: Dvt.TaskGroup from plain Python threads and from
# asyncio.run()
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import asyncio
import gc
import random
import threading
import time

import pytest

from dvthelpers import DEADLINE, Dvt, GLib, Peak, arun
from gi.repository import Gio

DVT_ERROR = Dvt.error_quark()
IO_ERROR = Gio.io_error_quark()


def assert_error(excinfo, domain, code):
    error = excinfo.value
    assert isinstance(error, GLib.Error)
    assert error.matches(domain, code), (error.domain, error.code, error.message)


def block_until(event):
    assert event.wait(DEADLINE)
    return 'released'


def test_context_manager_waits(rt, no_leaked_exceptions):
    results = []
    with rt.task_group() as g:
        tasks = [g.submit(pow, 2, i) for i in range(20)]
        g.submit(results.append, 'side effect')
    assert [t.result() for t in tasks] == [2 ** i for i in range(20)]
    assert results == ['side effect']
    assert g.is_closed()
    assert len(g) == 21
    with pytest.raises(GLib.Error) as excinfo:
        g.submit(pow, 2, 2)
    assert_error(excinfo, DVT_ERROR, Dvt.Error.CLOSED)


def test_submit_keywords_and_options(rt):
    def f(a, b=0, *, c):
        return a + b + c

    with rt.task_group() as g:
        task = g.submit(f, 1, b=2, c=3, dvt_options=Dvt.Options(timeout=30))
    assert task.result() == 6


def test_first_failure_is_raised_others_run(rt, no_leaked_exceptions):
    done = []

    def fail():
        raise ValueError('boom')

    g = rt.task_group()
    for i in range(5):
        g.submit(done.append, i)
    g.submit(fail)
    with pytest.raises(ValueError, match='boom'):
        g.wait()
    assert sorted(done) == list(range(5))


def test_exit_timeout_cancels(rt):
    event = threading.Event()
    g = rt.task_group()
    task = g.submit(block_until, event)
    with pytest.raises(GLib.Error) as excinfo:
        g.wait(timeout=0.05)
    assert_error(excinfo, IO_ERROR, Gio.IOErrorEnum.TIMED_OUT)
    with pytest.raises(GLib.Error) as excinfo:
        task.result()
    assert_error(excinfo, IO_ERROR, Gio.IOErrorEnum.CANCELLED)
    event.set()


def test_exception_in_block_cancels(rt):
    event = threading.Event()
    with pytest.raises(KeyError):
        with rt.task_group() as g:
            task = g.submit(block_until, event)
            raise KeyError('body')
    assert task.get_completed()
    with pytest.raises(GLib.Error) as excinfo:
        task.result()
    assert_error(excinfo, IO_ERROR, Gio.IOErrorEnum.CANCELLED)
    event.set()


def test_as_completed_order():
    rt = Dvt.Runtime.new(4)
    try:
        events = [threading.Event() for _ in range(3)]
        g = rt.task_group()
        tasks = [g.submit(block_until, e) for e in events]
        completed = g.as_completed(timeout=DEADLINE)
        for i in (2, 0, 1):
            events[i].set()
            assert next(completed) is tasks[i]
        # Everything was handed out and nothing runs: the end.
        assert list(completed) == []
        assert list(g.as_completed()) == []
    finally:
        rt.shutdown(True, False)


def test_as_completed_timeout(rt):
    event = threading.Event()
    g = rt.task_group()
    g.submit(block_until, event)
    with pytest.raises(GLib.Error) as excinfo:
        for _ in g.as_completed(timeout=0.05):
            pass
    assert_error(excinfo, IO_ERROR, Gio.IOErrorEnum.TIMED_OUT)
    event.set()
    g.wait()


def test_max_concurrency_from_threads(rt):
    peak = Peak()
    rt4 = Dvt.Runtime.new(4)
    try:
        def work():
            with peak:
                time.sleep(0.001)

        g = rt4.task_group(max_concurrency=2)

        def submitter():
            for _ in range(50):
                g.submit(work)

        threads = [threading.Thread(target=submitter) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        g.wait()
        assert peak.calls == 200
        assert 1 <= peak.peak <= 2
    finally:
        rt4.shutdown(True, False)


def test_first(rt, no_leaked_exceptions):
    event = threading.Event()

    def fail():
        raise RuntimeError('no')

    g = rt.task_group()
    blocked = g.submit(block_until, event)
    g.submit(fail)
    g.submit(lambda: 'yes')
    first = g.first(cancel_rest=True)
    assert first.result() == 'yes'
    with pytest.raises(GLib.Error):
        blocked.result()
    event.set()

    g2 = rt.task_group()
    g2.submit(fail)
    with pytest.raises(RuntimeError, match='no'):
        g2.first()

    with pytest.raises(GLib.Error) as excinfo:
        rt.task_group().first()
    assert_error(excinfo, DVT_ERROR, Dvt.Error.EMPTY)


def test_return_errors(rt, no_leaked_exceptions):
    def fail(i):
        raise ValueError(i)

    g = rt.task_group(return_errors=True)
    for i in range(4):
        g.submit(fail if i % 2 else str, i)
    g.wait()
    outcomes = []
    for task in g.get_tasks():
        try:
            outcomes.append(task.result())
        except ValueError as exc:
            outcomes.append(exc.args[0])
    assert outcomes == ['0', 1, '2', 3]


def test_add_foreign_and_shutdown():
    rt = Dvt.Runtime.new(2)
    g = rt.task_group()
    task = rt.submit_call(pow, 3, 3)
    g.add(task)
    with pytest.raises(GLib.Error) as excinfo:
        g.add(task)
    assert_error(excinfo, DVT_ERROR, Dvt.Error.INVALID_ARGUMENT)
    g.wait()
    rt.shutdown(True, False)
    with pytest.raises(GLib.Error) as excinfo:
        g.submit(pow, 2, 2)
    assert_error(excinfo, DVT_ERROR, Dvt.Error.CLOSED)


def test_wait_from_many_threads(rt):
    g = rt.task_group()
    for i in range(100):
        g.submit(time.sleep, 0.0005)
    errors = []

    def waiter():
        try:
            g.wait(timeout=DEADLINE)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=waiter) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert g.get_n_unfinished() == 0


def test_first_in_block_cancels_rest_without_failing(rt):
    event = threading.Event()
    with rt.task_group() as g:
        slow = g.submit(block_until, event)
        g.submit(lambda: 'fast')
        assert g.first(cancel_rest=True).result() == 'fast'
    # The group cancelled the rest itself: the exit wait does not fail.
    assert slow.get_completed()
    event.set()


def test_raw_constructor_and_dropped_tasks(rt, no_leaked_exceptions):
    g = Dvt.TaskGroup.new(rt)

    def fail():
        raise LookupError('kept')

    g.submit(fail)          # the task is dropped at once
    gc.collect()
    with pytest.raises(LookupError, match='kept'):
        g.wait()


def test_work_functions(rt):
    g = rt.task_group()
    on_worker = g.submit_func(lambda task, c, d: task.return_value(d * 2), 21)
    on_loop = g.schedule(lambda task, c, d: task.return_value('loop'))
    g.wait(timeout=DEADLINE)
    assert on_worker.result() == 42
    assert on_loop.result() == 'loop'
    assert [t.result() for t in g.get_tasks()] == [42, 'loop']


def test_exit_timeout_of_the_block(rt):
    event = threading.Event()
    with pytest.raises(GLib.Error) as excinfo:
        with rt.task_group(exit_timeout=0.05) as g:
            task = g.submit(block_until, event)
    assert_error(excinfo, IO_ERROR, Gio.IOErrorEnum.TIMED_OUT)
    assert task.get_completed()
    assert g.is_closed()
    event.set()
    with pytest.raises(ValueError):
        rt.task_group(exit_timeout=-1)


# ---- asyncio ---------------------------------------------------------------------
#
# Under asyncio.run(), with no GLib main context iterated by the test.

asyncio_test = pytest.mark.usefixtures('no_glib_loop')


class Boom(Exception):
    pass


def fail_after(event):
    assert event.wait(DEADLINE)
    raise Boom('boom')


@asyncio_test
def test_async_with_and_async_for_in_end_order():
    rt = Dvt.Runtime.new(4)
    try:
        events = [threading.Event() for _ in range(3)]

        async def main():
            async with rt.task_group() as g:
                tasks = [g.submit(block_until, e) for e in events]
                order = []
                completed = g.as_completed(timeout=DEADLINE).__aiter__()
                for i in (2, 0, 1):
                    events[i].set()
                    task = await completed.__anext__()
                    assert task is tasks[i]
                    assert await task == 'released'
                    order.append(i)
                # Everything was handed out and nothing runs: the end.
                assert [t async for t in completed] == []
                assert [t async for t in g] == []
                late = g.submit(lambda: 5)
            assert late.result() == 5
            assert g.is_closed()
            return order

        assert arun(main()) == [2, 0, 1]
    finally:
        rt.shutdown(True, False)


@asyncio_test
def test_await_raises_first_failure_others_run(rt, no_leaked_exceptions):
    async def main():
        g = rt.task_group()
        event = threading.Event()
        bad = g.submit(fail_after, event)
        good = g.submit(block_until, event)
        event.set()
        with pytest.raises(Boom):
            await g.await_()
        assert good.result() == 'released'
        with pytest.raises(Boom):
            await bad
        g.close()

        g = rt.task_group(return_errors=True)
        g.submit(boom_now)
        g.submit(lambda: 1)
        await g.await_()
        g.close()

    arun(main())


def boom_now():
    raise Boom('now')


@asyncio_test
def test_await_timeout_cancels_the_rest(rt):
    async def main():
        event = threading.Event()
        g = rt.task_group()
        task = g.submit(block_until, event)
        with pytest.raises(GLib.Error) as excinfo:
            await g.await_(timeout=0.05)
        assert excinfo.value.matches(IO_ERROR, Gio.IOErrorEnum.TIMED_OUT)
        assert task.done() and task.cancelled()
        event.set()

        event = threading.Event()
        g = rt.task_group()
        g.submit(block_until, event)
        with pytest.raises(Dvt.TimeoutError):
            async for _ in g.as_completed(timeout=0.05):
                pass
        event.set()
        await g.await_()

    arun(main())


@asyncio_test
def test_afirst(rt, no_leaked_exceptions):
    async def main():
        event = threading.Event()
        g = rt.task_group()
        slow = g.submit(block_until, event)
        g.submit(boom_now)
        quick = g.submit(lambda: 'quick')
        first = await g.afirst(cancel_rest=True)
        assert first is quick and await first == 'quick'
        with pytest.raises(GLib.Error):
            slow.result(DEADLINE)
        assert slow.cancelled()
        g.close()

        g = rt.task_group()
        g.submit(block_until, event)
        with pytest.raises(Dvt.TimeoutError):
            await g.afirst(timeout=0.05)
        event.set()
        assert await g.afirst() is not None
        await g.await_()

    arun(main())


@asyncio_test
def test_exception_or_cancellation_in_block_cancels_members(rt):
    event = threading.Event()

    async def body(tasks):
        async with rt.task_group() as g:
            tasks.append(g.submit(block_until, event))
            await asyncio.sleep(DEADLINE)

    async def main():
        tasks = []
        with pytest.raises(Boom):
            async with rt.task_group() as g:
                tasks.append(g.submit(block_until, event))
                raise Boom('in the block')
        inner = asyncio.ensure_future(body(tasks))
        while len(tasks) < 2:
            await asyncio.sleep(0.001)
        inner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await inner
        return tasks

    for task in arun(main()):
        assert task.done() and task.cancelled()
    event.set()


@asyncio_test
def test_cancelled_async_iteration_loses_no_member(rt):
    """Async iterations over as_completed() cancelled at random instants
    (wait_for timeouts) while members end: every member is handed out
    exactly once, over all the iterations."""
    n = 200

    def work(i):
        if i % 5 == 0:
            time.sleep(0.0005)
        return i

    async def main():
        g = rt.task_group()
        tasks = [g.submit(work, i) for i in range(n)]
        seen = []
        rng = random.Random(7)
        done = False
        while not done:
            completed = g.as_completed().__aiter__()
            while True:
                try:
                    task = await asyncio.wait_for(completed.__anext__(),
                                                  rng.choice((0, 1e-4, 1e-3)))
                except asyncio.TimeoutError:
                    break          # this iteration is over; start another
                except StopAsyncIteration:
                    done = True
                    break
                seen.append(task)
        await g.await_()
        return tasks, seen

    tasks, seen = arun(main())
    assert sorted(t.result() for t in seen) == list(range(n))
    assert {id(t) for t in seen} == {id(t) for t in tasks}


@asyncio_test
def test_group_from_a_thread_and_asyncio_at_once(rt):
    g = rt.task_group()

    async def main():
        thread = threading.Thread(
            target=lambda: [g.submit(lambda i=i: i) for i in range(100)])
        thread.start()
        for i in range(100, 200):
            g.submit(lambda i=i: i)
        await asyncio.to_thread(thread.join)
        return sorted([await t async for t in g])

    assert arun(main()) == list(range(200))
    g.close()


@asyncio_test
def test_async_as_completed_with_a_cancellable(rt):
    event = threading.Event()
    g = rt.task_group()
    g.submit(block_until, event)

    async def main():
        own = Gio.Cancellable()
        # Cancelling the awaiting task leaves the caller's cancellable be.
        iteration = asyncio.ensure_future(
            g.as_completed(cancellable=own).__aiter__().__anext__())
        await asyncio.sleep(0.01)
        iteration.cancel()
        with pytest.raises(asyncio.CancelledError):
            await iteration
        assert not own.is_cancelled()
        # The caller's cancellable ends the wait, not the members.
        asyncio.get_running_loop().call_later(0.01, own.cancel)
        with pytest.raises(GLib.Error) as excinfo:
            async for _ in g.as_completed(cancellable=own):
                pass
        assert excinfo.value.matches(IO_ERROR, Gio.IOErrorEnum.CANCELLED)
        assert g.get_n_unfinished() == 1
        event.set()
        return [await t async for t in g]

    assert arun(main()) == ['released']
    g.close()
