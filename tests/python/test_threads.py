# test_threads.py: many Python threads, the loop thread, nested waits
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import threading

import pytest

from dvthelpers import DEADLINE, Dvt, GLib, run_loop_until, wait_all
from gi.repository import Gio


def load_contents(task, cancellable, path):
    def done(file, result):
        try:
            task.return_value(bytes(file.load_contents_finish(result)[1]))
        except GLib.Error as error:
            task.return_error(error)

    Gio.File.new_for_path(path).load_contents_async(cancellable, done)


def run_threads(n, target):
    """Runs target(i) on @n threads at once; returns their results in
    order, re-raising the first failure."""
    results = [None] * n
    failures = []
    barrier = threading.Barrier(n)

    def body(i):
        try:
            barrier.wait(DEADLINE)
            results[i] = target(i)
        except BaseException as exc:  # noqa: B902
            failures.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
        assert not t.is_alive(), 'a calling thread hangs'
    if failures:
        raise failures[0]
    return results


class Boom(Exception):
    pass


def test_many_threads_every_blocking_call(rt, tmp_file):
    expected = tmp_file.read_bytes()

    def value(task, cancellable, i):
        task.return_value(i)

    def glib_fail(task, cancellable, i):
        raise GLib.Error('thread %d' % i, 'my-app-error-quark', i)

    def caller(i):
        for j in range(10):
            k = i * 100 + j
            assert rt.to_thread_blocking(value, k) == k
            assert rt.run_blocking(value, k) == k
            assert rt.call_blocking(lambda: k) == k
            assert rt.submit(value, k).result(DEADLINE) == k
            assert rt.submit_call(pow, k, 2).result(DEADLINE) == k * k
        assert rt.run_blocking(load_contents, str(tmp_file)) == expected
        assert rt.map_blocking(lambda x: x + i, range(50)) == [x + i for x in range(50)]
        assert rt.map_blocking(5, lambda task, c, d: task.return_value(task.get_index() + i)) == [
            x + i for x in range(5)]
        tasks = [rt.submit_call(str, x) for x in range(5)]
        assert rt.gather_blocking(tasks) == [str(x) for x in range(5)]
        with pytest.raises(GLib.Error) as info:
            rt.to_thread_blocking(glib_fail, i)
        assert (info.value.domain, info.value.code, info.value.message) == (
            'my-app-error-quark', i, 'thread %d' % i)
        exc = None
        try:
            rt.call_blocking(lambda: (_ for _ in ()).throw(Boom(i)))
        except Boom as caught:
            exc = caught
        assert exc is not None and exc.args == (i,)
        return i

    assert run_threads(16, caller) == list(range(16))


def test_many_threads_one_future(rt):
    release = threading.Event()

    def slow(x):
        release.wait(DEADLINE)
        return x

    task = rt.submit_call(slow, 'shared')
    threading.Timer(0.05, release.set).start()
    assert run_threads(8, lambda i: task.result(DEADLINE)) == ['shared'] * 8


def test_many_threads_run_blocking_raw_forms(rt):
    def work(task, cancellable, data):
        task.return_value(data)

    def caller(i):
        return [rt.run_blocking(work, (i, j), None, None) for j in range(50)]

    results = run_threads(8, caller)
    assert results == [[(i, j) for j in range(50)] for i in range(8)]


def test_async_callback_on_the_calling_threads_context(rt):
    def worker_thread(i):
        context = GLib.MainContext.new()
        context.push_thread_default()
        try:
            got = []
            rt.to_thread_async(lambda task, c, d: task.return_value(d), i,
                               callback=lambda r, res, u: got.append(
                                   (threading.get_ident(), r.to_thread_finish(res))))
            run_loop_until(lambda: got, context)
            # Let the runtime release the function on this context.
            while context.iteration(False):
                pass
            return got[0] == (threading.get_ident(), i)
        finally:
            context.pop_thread_default()

    assert all(run_threads(6, worker_thread))


# ---- the loop thread ----------------------------------------------------------

def test_blocking_calls_on_the_loop_thread_fail_at_once(rt):
    other = rt.submit_call(lambda: 'other')
    other.result(DEADLINE)
    release = threading.Event()
    # Not ended when the loop thread waits for it: waiting on a task that
    # has ended returns at once, wherever it is done.
    pending = rt.submit_call(release.wait, DEADLINE)

    def value(task, cancellable, data):
        task.return_value(data)

    attempts = {
        'run_blocking': lambda: rt.run_blocking(value),
        'to_thread_blocking': lambda: rt.to_thread_blocking(value),
        'call_blocking': lambda: rt.call_blocking(abs, -1),
        'map_blocking': lambda: rt.map_blocking(2, value),
        'map_items': lambda: rt.map_blocking(abs, [-1]),
        'gather_blocking': lambda: rt.gather_blocking([other]),
        'wait': lambda: pending.wait(0),
    }

    def on_loop(task, cancellable, data):
        outcome = {}
        for name, attempt in attempts.items():
            try:
                attempt()
                outcome[name] = 'returned'
            except GLib.Error as error:
                outcome[name] = (error.domain, error.code)
        task.return_value(outcome)

    outcome = rt.schedule(on_loop).result(DEADLINE)
    release.set()
    assert pending.result(DEADLINE) is True
    deadlock = ('dvt-error-quark', int(Dvt.Error.WOULD_DEADLOCK))
    assert outcome == {name: deadlock for name in attempts}


def test_would_deadlock_message(rt):
    def on_loop(task, cancellable, data):
        try:
            rt.to_thread_blocking(lambda t, c, d: t.return_value(1), None, None, None)
        except GLib.Error as error:
            task.return_value(error.message)

    message = rt.schedule(on_loop).result(DEADLINE)
    assert 'loop' in message


def test_loop_thread_can_use_async_calls(rt):
    # What the WOULD_DEADLOCK message recommends: async calls work there.
    def on_loop(task, cancellable, data):
        def done(runtime, result, user_data):
            task.return_value(runtime.to_thread_finish(result) + 1)

        rt.to_thread_async(lambda t, c, d: t.return_value(41), callback=done)

    assert rt.schedule(on_loop).result(DEADLINE) == 42


# ---- nested waits ----------------------------------------------------------------
# More of them, in successive runtimes, in test_isolated.py.

@pytest.mark.parametrize('how', ['call_blocking', 'to_thread_blocking', 'result',
                                 'map_blocking', 'gather_blocking'])
def test_nested_waits_do_not_starve_the_pool(how):
    workers = 2
    runtime = Dvt.Runtime.new(workers)

    def leaf(x):
        return x * 10

    def nested(x):
        if how == 'call_blocking':
            return runtime.call_blocking(leaf, x)
        if how == 'to_thread_blocking':
            return runtime.to_thread_blocking(
                lambda task, c, d: task.return_value(leaf(d)), x)
        if how == 'result':
            return runtime.submit_call(leaf, x).result(DEADLINE)
        if how == 'map_blocking':
            return sum(runtime.map_blocking(leaf, [x]))
        return runtime.gather_blocking([runtime.submit_call(leaf, x)])[0]

    try:
        tasks = [runtime.submit_call(nested, x) for x in range(3 * workers)]
        wait_all(runtime, tasks)
        assert runtime.gather_blocking(tasks) == [x * 10 for x in range(3 * workers)]
    finally:
        runtime.shutdown(True, False)
