# test_override.py: the Pythonic forms added by gi.overrides.Dvt
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import threading

import pytest

from dvthelpers import DEADLINE, Dvt, GLib, main_loop_run
from gi.repository import Gio, GObject

MAIN_THREAD = threading.get_ident()


def double_index(task, cancellable, user_data):
    task.return_value(task.get_index() * 2)


def load_contents(task, cancellable, path):
    def done(file, result):
        try:
            task.return_value(bytes(file.load_contents_finish(result)[1]))
        except GLib.Error as error:
            task.return_error(error)

    Gio.File.new_for_path(path).load_contents_async(cancellable, done)


# ---- optional and keyword arguments ------------------------------------------

def test_to_thread_blocking_defaults(rt):
    def work(task, cancellable, user_data):
        task.return_value(user_data)

    assert rt.to_thread_blocking(work) is None
    assert rt.to_thread_blocking(work, 'positional') == 'positional'
    assert rt.to_thread_blocking(work, func_data='func_data') == 'func_data'
    assert rt.to_thread_blocking(work, user_data='user_data') == 'user_data'
    assert rt.to_thread_blocking(work, options=Dvt.Options(name='n'),
                                 cancellable=Gio.Cancellable()) is None
    with pytest.raises(TypeError):
        rt.to_thread_blocking(work, 1, user_data=2)


def test_run_blocking_keywords(rt, tmp_file):
    cancellable = Gio.Cancellable()
    data = rt.run_blocking(load_contents, str(tmp_file), cancellable=cancellable)
    assert data == tmp_file.read_bytes()
    data = rt.run_blocking(load_contents, user_data=str(tmp_file),
                           options=Dvt.Options(name='load'))
    assert data == tmp_file.read_bytes()


def test_run_blocking_cancellable_keyword_cancels(rt):
    cancellable = Gio.Cancellable()
    kept = []

    def never(task, c, user_data):
        kept.append(task)
        threading.Timer(0.02, cancellable.cancel).start()

    with pytest.raises(GLib.Error) as info:
        rt.run_blocking(never, cancellable=cancellable)
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    kept.clear()


def test_run_blocking_completes_synchronously_many_times(rt):
    # The function completes its task before it returns: the override hands
    # the value over once the function has returned.
    def work(task, cancellable, i):
        task.return_value(i)

    assert [rt.run_blocking(work, i) for i in range(300)] == list(range(300))


def test_to_thread_blocking_many_times(rt):
    def work(task, cancellable, i):
        task.return_value(i)

    assert [rt.to_thread_blocking(work, i) for i in range(300)] == list(range(300))


def test_map_blocking_raw_form_keywords(rt):
    options = Dvt.Options(max_concurrency=2)
    assert rt.map_blocking(5, double_index, options=options) == [0, 2, 4, 6, 8]
    assert rt.map_blocking(n_items=3, func=double_index) == [0, 2, 4]
    assert rt.map_blocking(0, double_index) == []


def test_submit_schedule_keywords(rt, tmp_file):
    t1 = rt.submit(double_index)
    t2 = rt.schedule(load_contents, user_data=str(tmp_file))
    t3 = rt.submit(lambda task, c, d: task.return_value(d), func_data='d',
                   options=Dvt.Options(name='third'))
    assert rt.gather_blocking([t1, t2, t3]) == [0, tmp_file.read_bytes(), 'd']
    assert t3.get_name() == 'third'


def test_to_thread_async_keywords(rt):
    results = []
    loops = []

    def work(task, cancellable, user_data):
        task.return_value(user_data)

    def done(runtime, result, user_data):
        results.append((user_data, runtime.to_thread_finish(result),
                        threading.get_ident()))
        if len(results) == 2:
            loops[0].quit()

    def start(loop):
        loops.append(loop)
        rt.to_thread_async(work, 'func-data', callback=done, user_data='one')
        rt.to_thread_async(work, callback=done)

    main_loop_run(start)
    assert sorted(results, key=repr) == sorted(
        [('one', 'func-data', MAIN_THREAD), (None, None, MAIN_THREAD)], key=repr)


def test_to_thread_async_without_callback(rt):
    done = threading.Event()

    def work(task, cancellable, user_data):
        task.return_value(None)
        done.set()

    rt.to_thread_async(work)
    assert done.wait(DEADLINE)
    # Let the runtime free the function on this thread's context.
    ctx = GLib.MainContext.default()
    while ctx.iteration(False):
        pass


def test_to_thread_async_run_of_callbacks(rt):
    """Completions that pile up are delivered in one run; the tasks the
    callbacks keep stay readable, the others are freed by the runtime."""
    import time
    results = []
    kept = []

    def work(task, cancellable, n):
        task.return_value(n)

    def done(runtime, result, n):
        results.append((n, runtime.to_thread_finish(result)))
        if n % 50 == 0:
            kept.append(result)

    for n in range(200):
        rt.to_thread_async(work, n, callback=done, user_data=n)
    end = time.monotonic() + DEADLINE
    while rt.get_stats().done < 200 and time.monotonic() < end:
        time.sleep(0.001)
    ctx = GLib.MainContext.default()
    while len(results) < 200 and time.monotonic() < end:
        ctx.iteration(False)
    assert sorted(results) == [(n, n) for n in range(200)]
    assert len(kept) == 4
    assert all(task.get_completed() and not task.had_error() for task in kept)


def test_map_async_raw_keywords(rt):
    results = []

    def done(runtime, result, loop):
        results.append(runtime.map_finish(result))
        loop.quit()

    main_loop_run(lambda loop: rt.map_async(4, double_index, callback=done,
                                            user_data=loop))
    assert results == [[0, 2, 4, 6]]


def test_gather_blocking_keywords(rt):
    tasks = [rt.submit_call(lambda i=i: i) for i in range(4)]
    assert rt.gather_blocking(tasks, options=Dvt.Options()) == [0, 1, 2, 3]
    assert rt.gather_blocking(iter(tasks)) == [0, 1, 2, 3]


# ---- plain functions ------------------------------------------------------------

def test_call_blocking(rt):
    def add(a, b=0, *, c=0):
        assert threading.get_ident() != MAIN_THREAD
        return a + b + c

    assert rt.call_blocking(add, 1) == 1
    assert rt.call_blocking(add, 1, 2, c=3) == 6


def test_call_blocking_returns_the_same_object(rt):
    obj = object()
    assert rt.call_blocking(lambda: obj) is obj
    assert rt.call_blocking(lambda: None) is None
    big = 10 ** 30
    assert rt.call_blocking(lambda: big) == big


def test_submit_call_future(rt):
    release = threading.Event()

    def slow(x):
        release.wait(DEADLINE)
        return x * 2

    task = rt.submit_call(slow, 21)
    assert isinstance(task, Dvt.Task)
    with pytest.raises(GLib.Error) as info:
        task.result(0.02)
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)
    release.set()
    assert task.result() == 42
    assert task.result(DEADLINE) == 42


def test_map_blocking_over_iterable(rt):
    assert rt.map_blocking(str.upper, ['a', 'b', 'c']) == ['A', 'B', 'C']
    assert rt.map_blocking(lambda x: x * x, range(500)) == [x * x for x in range(500)]
    assert rt.map_blocking(lambda x: x, (x for x in 'xyz')) == ['x', 'y', 'z']
    assert rt.map_blocking(lambda x: x, []) == []


def test_map_blocking_over_iterable_keeps_objects(rt):
    items = [object(), None, [1], {'k': 'v'}, 2 ** 70, Gio.Cancellable()]
    results = rt.map_blocking(lambda x: x, items)
    assert all(a is b for a, b in zip(results, items))
    assert len(results) == len(items)


def test_map_blocking_over_iterable_return_errors(rt):
    def inverse(x):
        if x == 2:
            raise GLib.Error('two', 'my-app-error-quark', 2)
        return 1 / x

    results = rt.map_blocking(inverse, [1, 0, 2, 4],
                              options=Dvt.Options(return_errors=True))
    assert results[0] == 1.0 and results[3] == 0.25
    assert isinstance(results[1], ZeroDivisionError)
    assert isinstance(results[2], GLib.Error) and results[2].code == 2


def test_map_blocking_over_iterable_with_cancellable(rt):
    assert rt.map_blocking(abs, [-1, -2], cancellable=Gio.Cancellable()) == [1, 2]
    cancelled = Gio.Cancellable()
    cancelled.cancel()
    with pytest.raises(GLib.Error) as info:
        rt.map_blocking(abs, [-1, -2], None, cancelled)
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)


def test_map_async_over_iterable(rt):
    results = []

    def done(runtime, result, loop):
        results.append(runtime.map_finish(result))
        loop.quit()

    main_loop_run(lambda loop: rt.map_async(len, ['', 'a', 'bb'], callback=done,
                                            user_data=loop))
    assert results == [[0, 1, 2]]


# ---- Task ---------------------------------------------------------------------------

@pytest.mark.parametrize('value', [None, 0, -1, 2 ** 31, -(2 ** 31) - 1, 2 ** 63 - 1,
                                   2 ** 64, -(2 ** 70), True, False, 1.25, 'text',
                                   b'bytes', [1, 'a'], {'a': 1}, (1, 2)])
def test_return_value_any_python_value(rt, value):
    def work(task, cancellable, user_data):
        task.return_value(value)

    result = rt.to_thread_blocking(work)
    assert result == value
    assert type(result) is type(value)


def test_return_value_gvalue(rt):
    def work(task, cancellable, user_data):
        task.return_value(GObject.Value(GObject.TYPE_UINT64, 2 ** 64 - 1))

    assert rt.to_thread_blocking(work) == 2 ** 64 - 1


def test_task_result_of_schedule(rt, tmp_file):
    task = rt.schedule(load_contents, str(tmp_file))
    assert task.result(DEADLINE) == tmp_file.read_bytes()


def test_return_error_with_exception_from_gio_callback(rt):
    # An async function whose GIO callback fails its task with a Python
    # exception: the caller gets that exception.
    class ParseError(Exception):
        pass

    def work(task, cancellable, user_data):
        def later():
            task.return_error(ParseError('bad header'))
            return GLib.SOURCE_REMOVE

        source = GLib.idle_source_new()
        source.set_callback(lambda *args: later())
        source.attach(GLib.MainContext.get_thread_default())

    with pytest.raises(ParseError, match='bad header'):
        rt.run_blocking(work)
    task = rt.schedule(work)
    with pytest.raises(ParseError):
        task.result(DEADLINE)


def test_return_error_rejects_non_exceptions(rt):
    def work(task, cancellable, user_data):
        try:
            task.return_error('not an exception')
        except TypeError as error:
            task.return_value(str(error))

    assert 'exception' in rt.to_thread_blocking(work)


def test_runtime_context_manager():
    with Dvt.Runtime.new(1) as runtime:
        assert runtime.call_blocking(lambda: 'inside') == 'inside'
        assert not runtime.is_shutdown()
    assert runtime.is_shutdown()
    with pytest.raises(GLib.Error) as info:
        runtime.call_blocking(lambda: None)
    assert info.value.matches(Dvt.error_quark(), Dvt.Error.CLOSED)


# ---- per-call options for the plain-function forms ----------------------------

def test_call_blocking_takes_dvt_options_and_cancellable(rt):
    seen = []

    def flaky(x, *, scale=1):
        seen.append((x, scale))
        if len(seen) < 2:
            raise ValueError('first attempt fails')
        return x * scale

    options = Dvt.Options(retries=1, retry_backoff=0.001)
    assert rt.call_blocking(flaky, 5, scale=3, dvt_options=options) == 15
    # the options and the cancellable are not passed on to the function
    assert seen == [(5, 3), (5, 3)]

    cancellable = Gio.Cancellable()
    cancellable.cancel()
    with pytest.raises(GLib.Error) as info:
        rt.call_blocking(flaky, 1, dvt_cancellable=cancellable)
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)


def test_submit_call_takes_dvt_options(rt):
    release = threading.Event()

    def stuck():
        release.wait(DEADLINE)
        return 'late'

    task = rt.submit_call(stuck, dvt_options=Dvt.Options(timeout=0.05))
    try:
        with pytest.raises(GLib.Error) as info:
            task.result(DEADLINE)
        assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)
    finally:
        release.set()
