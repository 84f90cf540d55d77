# test_futures.py: Dovetail as concurrent.futures (issue 11 item 3)
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The executor tests run one body over a ThreadPoolExecutor and over
# Dvt.Executor: both must behave the same. Dvt.wait / Dvt.as_completed are
# checked the same way over both kinds of futures, and over Dvt.Task.

import asyncio
import concurrent.futures as cf
import threading
import time

import pytest

from dvthelpers import DEADLINE, Dvt, GLib
from gi.repository import Gio


class Boom(Exception):
    pass


def boom():
    raise Boom('boom')


@pytest.fixture(params=['threads', 'dovetail'])
def executor(request):
    if request.param == 'threads':
        with cf.ThreadPoolExecutor(2) as ex:
            yield ex
        return
    with Dvt.Runtime.new(2) as runtime:
        ex = runtime.executor()
        assert isinstance(ex, cf.Executor)
        yield ex
        ex.shutdown(wait=True)


@pytest.fixture(params=['concurrent.futures', 'Dvt'])
def waiting(request):
    """(wait, as_completed): the standard ones, or Dovetail's."""
    if request.param == 'Dvt':
        return Dvt.wait, Dvt.as_completed
    return cf.wait, cf.as_completed


def test_submit_result_and_exception(executor):
    future = executor.submit(pow, 2, 8)
    assert isinstance(future, cf.Future)
    assert future.result(DEADLINE) == 256
    assert future.exception(DEADLINE) is None
    failed = executor.submit(boom)
    with pytest.raises(Boom):
        failed.result(DEADLINE)
    assert isinstance(failed.exception(), Boom)


def test_wait_all_first_completed_and_first_exception(executor, waiting):
    wait, _ = waiting
    release = threading.Event()
    fast = [executor.submit(pow, i, 2) for i in range(4)]
    done, not_done = wait(fast, timeout=DEADLINE)
    assert done == set(fast) and not not_done

    slow = executor.submit(release.wait, DEADLINE)
    quick = executor.submit(int, 7)
    done, not_done = wait([slow, quick], timeout=DEADLINE,
                          return_when=cf.FIRST_COMPLETED)
    assert quick in done and slow in not_done

    done, not_done = wait([slow], timeout=0.05)
    assert not done and not_done == {slow}

    failing = executor.submit(boom)
    done, not_done = wait([slow, failing], timeout=DEADLINE,
                          return_when=cf.FIRST_EXCEPTION)
    assert failing in done and slow in not_done
    release.set()
    assert slow.result(DEADLINE) is True


def test_as_completed(executor, waiting):
    _, as_completed = waiting
    release = threading.Event()
    futures = [executor.submit(pow, i, 2) for i in range(6)]
    assert sorted(f.result() for f in as_completed(futures, timeout=DEADLINE)) == \
        [i * i for i in range(6)]

    slow = executor.submit(release.wait, DEADLINE)
    quick = executor.submit(int, 1)
    seen = []
    with pytest.raises(TimeoutError):
        for f in as_completed([slow, quick], timeout=0.2):
            seen.append(f)
    assert seen == [quick]
    release.set()
    slow.result(DEADLINE)


def test_map_lazy_with_timeout(executor):
    assert list(executor.map(pow, range(5), range(5), timeout=DEADLINE)) == \
        [i ** i for i in range(5)]
    release = threading.Event()
    results = executor.map(lambda x: release.wait(DEADLINE) and x, [1, 2])
    assert next(iter([0])) == 0  # nothing consumed yet: map returned at once
    release.set()
    assert list(results) == [1, 2]

    hold = threading.Event()
    results = executor.map(lambda x: hold.wait(DEADLINE) and x, [1], timeout=0.05)
    with pytest.raises(TimeoutError):
        list(results)
    hold.set()


def test_shutdown_cancel_futures(executor):
    release = threading.Event()
    busy = [executor.submit(release.wait, DEADLINE) for _ in range(2)]
    time.sleep(0.05)
    queued = [executor.submit(int, i) for i in range(5)]
    executor.shutdown(wait=False, cancel_futures=True)
    release.set()
    for f in busy:
        assert f.result(DEADLINE) is True
    for f in queued:
        # (concurrent.futures.wait would wait for a cancelled future of a
        # ThreadPoolExecutor that no thread notifies: poll done())
        deadline = time.monotonic() + DEADLINE
        while not f.done() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert f.cancelled() or f.result() in range(5)
    assert any(f.cancelled() for f in queued)
    with pytest.raises(RuntimeError):
        executor.submit(int, 1)


def test_run_in_executor(executor):
    async def main():
        loop = asyncio.get_running_loop()
        values = await asyncio.gather(*(loop.run_in_executor(executor, pow, i, 3)
                                        for i in range(10)))
        with pytest.raises(Boom):
            await loop.run_in_executor(executor, boom)
        return values
    assert asyncio.run(main()) == [i ** 3 for i in range(10)]


# ---- Dvt.Task as a future ---------------------------------------------------------

def test_task_future_methods(rt):
    release = threading.Event()
    started = threading.Event()

    def slow():
        started.set()
        release.wait(DEADLINE)
        return 'done'

    task = rt.submit_call(slow)
    assert started.wait(DEADLINE)
    assert not task.done() and task.running() and not task.cancelled()
    with pytest.raises(TimeoutError) as info:
        task.result(0)                    # 0: do not wait
    assert isinstance(info.value, GLib.Error)
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)
    with pytest.raises(Dvt.TimeoutError):
        task.result(timeout=0.02)
    with pytest.raises(TimeoutError):
        task.exception(timeout=0.02)
    called = []
    task.add_done_callback(called.append)
    release.set()
    assert task.result() == 'done'        # None: as long as it takes
    assert task.done() and not task.running() and task.exception() is None
    deadline = time.monotonic() + DEADLINE
    while not called and time.monotonic() < deadline:
        time.sleep(0.005)
    assert called == [task]
    task.add_done_callback(called.append)  # done: called at once
    assert called == [task, task]


def test_task_exception_and_cancel(rt):
    failed = rt.submit_call(boom)
    assert isinstance(failed.exception(DEADLINE), Boom)
    with pytest.raises(Boom):
        failed.result()
    assert not failed.cancel()            # ended: cannot be cancelled

    release = threading.Event()
    task = rt.submit_call(release.wait, DEADLINE)
    assert task.cancel()
    assert task.cancelled() and task.done()
    with pytest.raises(cf.CancelledError) as info:
        task.result()
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    with pytest.raises(Dvt.CancelledError):
        task.exception()
    release.set()


def test_wait_and_as_completed_over_tasks(rt):
    release = threading.Event()
    tasks = [rt.submit_call(pow, i, 2) for i in range(5)]
    slow = rt.submit_call(release.wait, DEADLINE)
    done, not_done = Dvt.wait(tasks + [slow], timeout=DEADLINE,
                              return_when=Dvt.FIRST_COMPLETED)
    assert done and done <= set(tasks)
    done, not_done = Dvt.wait(tasks + [slow], timeout=0.05)
    assert done == set(tasks) and not_done == {slow}
    mixed = [slow, cf.ThreadPoolExecutor(1).submit(int, 3)]
    release.set()
    assert sorted(map(str, (f.result() for f in Dvt.as_completed(mixed, DEADLINE)))) == \
        ['3', 'True']


def test_executor_with_options():
    release = threading.Event()
    with Dvt.Runtime.new(2) as runtime:
        ex = Dvt.Executor(runtime, Dvt.Options(timeout=0.05))
        late = ex.submit(release.wait, DEADLINE)
        with pytest.raises(TimeoutError):
            late.result(DEADLINE)
        release.set()
        assert ex.submit(pow, 2, 2).result(DEADLINE) == 4
        ex.shutdown()
