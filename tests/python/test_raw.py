# test_raw.py: the raw introspected call forms, as documented by GI
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Work functions here are `work(task, cancellable, user_data)` and complete
# their task with task.return_value() or by raising GLib.Error. The calls
# go through the overrides (which must keep these forms working); the
# "introspected" tests at the end call the introspected methods directly,
# without the overrides.

import threading
import time

import pytest

from dvthelpers import DEADLINE, Dvt, GLib, Peak, main_loop_run, raw_class, wait_all
from gi.repository import Gio, GObject

MAIN_THREAD = threading.get_ident()


def square(task, cancellable, user_data):
    task.return_value(task.get_index() ** 2)


def load_contents(task, cancellable, path):
    """A DvtAsyncFunc: starts a GIO operation; its callback completes."""
    def done(file, result):
        try:
            ok, contents, etag = file.load_contents_finish(result)
            task.return_value(bytes(contents))
        except GLib.Error as error:
            task.return_error(error)

    Gio.File.new_for_path(path).load_contents_async(cancellable, done)


# ---- run_blocking -----------------------------------------------------------

def test_run_blocking_value(rt):
    def work(task, cancellable, user_data):
        task.return_value(user_data * 2)

    assert rt.run_blocking(work, 21, None, None) == 42


def test_run_blocking_gio_load_contents(rt, tmp_file):
    # Plain sequential code using a GIO async API, no main loop here.
    data = rt.run_blocking(load_contents, str(tmp_file), None, None)
    assert data == tmp_file.read_bytes()
    # Again, to see the loop thread keeps serving.
    assert rt.run_blocking(load_contents, str(tmp_file), None, None) == data


def test_run_blocking_gio_error_unchanged(rt, tmp_path):
    missing = str(tmp_path / 'missing')
    with pytest.raises(GLib.Error) as info:
        rt.run_blocking(load_contents, missing, None, None)
    assert info.value.domain == 'g-io-error-quark'
    assert info.value.code == Gio.IOErrorEnum.NOT_FOUND
    assert 'missing' in info.value.message


def test_run_blocking_starts_on_the_loop_thread(rt):
    seen = {}

    def work(task, cancellable, user_data):
        seen['thread'] = threading.get_ident()
        seen['context'] = GLib.MainContext.get_thread_default()
        task.return_value(True)

    assert rt.run_blocking(work, None, None, None) is True
    assert seen['thread'] != MAIN_THREAD
    assert seen['context'] == rt.get_context()


def test_run_blocking_use_caller_context(rt, tmp_file):
    seen = []

    def work(task, cancellable, path):
        seen.append(threading.get_ident())
        load_contents(task, cancellable, path)

    options = Dvt.Options(use_caller_context=True)
    data = rt.run_blocking(work, str(tmp_file), options, None)
    assert data == tmp_file.read_bytes()
    assert seen == [threading.get_ident()]


def test_run_blocking_cancelled(rt):
    cancellable = Gio.Cancellable()

    def never(task, c, holder):
        holder.append(task)  # kept: completes "later", which never comes
        threading.Timer(0.02, cancellable.cancel).start()

    holder = []
    with pytest.raises(GLib.Error) as info:
        rt.run_blocking(never, holder, None, cancellable)
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    holder.clear()


# ---- to_thread_blocking ----------------------------------------------------------

def test_to_thread_blocking_value(rt):
    def work(task, cancellable, user_data):
        assert threading.get_ident() != MAIN_THREAD
        task.return_value(user_data + ['done'])

    assert rt.to_thread_blocking(work, ['start'], None, None) == ['start', 'done']


def test_to_thread_blocking_user_data_is_always_passed(rt):
    def work(task, cancellable, *user_data):
        task.return_value(user_data)

    assert rt.to_thread_blocking(work, None, None, None) == (None,)
    assert rt.to_thread_blocking(work, 'x', None, None) == ('x',)


def test_to_thread_blocking_glib_error_unchanged(rt):
    def work(task, cancellable, user_data):
        raise GLib.Error('no such widget', 'my-app-error-quark', 17)

    with pytest.raises(GLib.Error) as info:
        rt.to_thread_blocking(work, None, None, None)
    assert info.value.domain == 'my-app-error-quark'
    assert info.value.code == 17
    assert info.value.message == 'no such widget'


def test_to_thread_blocking_return_error(rt):
    def work(task, cancellable, user_data):
        task.return_error(GLib.Error('denied', 'g-io-error-quark',
                                     Gio.IOErrorEnum.PERMISSION_DENIED))

    with pytest.raises(GLib.Error) as info:
        rt.to_thread_blocking(work, None, None, None)
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.PERMISSION_DENIED)
    assert info.value.message == 'denied'


@pytest.mark.parametrize('call', ['to_thread_blocking', 'run_blocking'])
def test_not_completed(rt, call):
    def nothing(task, cancellable, user_data):
        pass

    with pytest.raises(GLib.Error) as info:
        getattr(rt, call)(nothing, None, None, None)
    assert info.value.matches(Dvt.error_quark(), Dvt.Error.NOT_COMPLETED)


def test_typed_returns(rt):
    def boolean(task, cancellable, user_data):
        task.return_boolean(True)

    def integer(task, cancellable, user_data):
        task.return_int(-(2 ** 40))

    assert rt.to_thread_blocking(boolean, None, None, None) is True
    assert rt.to_thread_blocking(integer, None, None, None) == -(2 ** 40)
    t = rt.submit(integer, None, None, None)
    t.wait(DEADLINE)
    assert t.propagate_int() == -(2 ** 40)
    t = rt.submit(boolean, None, None, None)
    t.wait(DEADLINE)
    assert t.propagate_boolean() is True


# ---- to_thread_async / to_thread_finish --------------------------------------------

def test_to_thread_async_main_loop(rt):
    results = []

    def work(task, cancellable, user_data):
        task.return_value(('worker', threading.get_ident() != MAIN_THREAD))

    def done(runtime, result, loop):
        results.append((runtime, loop, threading.get_ident(),
                        runtime.to_thread_finish(result)))
        loop.quit()

    loops = []

    def start(loop):
        loops.append(loop)
        rt.to_thread_async(work, None, None, None, done, loop)

    main_loop_run(start)
    (runtime, user_data, thread, value), = results
    assert runtime == rt
    assert user_data is loops[0]
    assert thread == MAIN_THREAD  # the callback runs on the caller's context
    assert value == ('worker', True)


def test_to_thread_async_error(rt):
    errors = []

    def work(task, cancellable, user_data):
        raise GLib.Error('bad', 'my-app-error-quark', 3)

    def done(runtime, result, user_data):
        try:
            runtime.to_thread_finish(result)
        except GLib.Error as error:
            errors.append(error)
        user_data.quit()

    main_loop_run(lambda loop: rt.to_thread_async(work, None, None, None,
                                                  done, loop))
    (error,) = errors
    assert (error.domain, error.code, error.message) == ('my-app-error-quark', 3, 'bad')


# ---- schedule and submit: futures ------------------------------------------------

def test_schedule_future(rt, tmp_file):
    task = rt.schedule(load_contents, str(tmp_file), None, None)
    assert isinstance(task, Dvt.Task)
    assert task.wait(DEADLINE) is True
    assert task.get_completed()
    assert not task.had_error()
    assert task.propagate_value() == tmp_file.read_bytes()
    # Reading twice gives the same value.
    assert task.propagate_value() == tmp_file.read_bytes()


def test_submit_future(rt):
    def work(task, cancellable, user_data):
        assert isinstance(cancellable, Gio.Cancellable)
        task.return_value({'sum': sum(user_data)})

    task = rt.submit(work, [1, 2, 3], None, None)
    assert task.wait(0) is True
    assert task.propagate_value() == {'sum': 6}
    assert task.get_id() > 0
    assert task.get_attempt() == 1


def test_task_ids_are_unique(rt):
    tasks = [rt.submit(square, None, None, None) for _ in range(20)]
    for t in tasks:
        t.wait(DEADLINE)
    ids = [t.get_id() for t in tasks]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_task_name(rt):
    seen = []

    def work(task, cancellable, user_data):
        seen.append(task.get_name())
        task.set_name('renamed')
        task.return_value(None)

    task = rt.submit(work, None, Dvt.Options(name='target'), None)
    task.wait(DEADLINE)
    assert seen == ['target']
    assert task.get_name() == 'renamed'


def test_wait_with_timeout(rt):
    release = threading.Event()

    def slow(task, cancellable, user_data):
        release.wait(DEADLINE)
        task.return_value('late')

    task = rt.submit(slow, None, None, None)
    with pytest.raises(GLib.Error) as info:
        task.wait(0.05)
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)
    assert not task.get_completed()
    release.set()
    assert task.wait(DEADLINE) is True
    assert task.propagate_value() == 'late'


def test_cancel_running_future(rt):
    started = threading.Event()
    saw_cancel = threading.Event()

    def cooperative(task, cancellable, user_data):
        started.set()
        deadline = time.monotonic() + DEADLINE
        while not cancellable.is_cancelled() and time.monotonic() < deadline:
            time.sleep(0.005)
        saw_cancel.set()
        task.return_value('ignored')

    task = rt.submit(cooperative, None, None, None)
    assert started.wait(DEADLINE)
    task.cancel()
    assert task.wait(DEADLINE)
    with pytest.raises(GLib.Error) as info:
        task.propagate_value()
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    assert task.get_cancellable().is_cancelled()
    assert saw_cancel.wait(DEADLINE)


def test_cancel_queued_future_never_starts(rt):
    release = threading.Event()
    ran = []

    def blocker(task, cancellable, user_data):
        release.wait(DEADLINE)
        task.return_value(None)

    def queued(task, cancellable, user_data):
        ran.append(True)
        task.return_value(None)

    blockers = [rt.submit(blocker, None, None, None) for _ in range(2)]
    task = rt.submit(queued, None, None, None)
    task.cancel()
    release.set()
    for b in blockers:
        b.wait(DEADLINE)
    assert task.wait(DEADLINE)
    with pytest.raises(GLib.Error) as info:
        task.propagate_value()
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    assert ran == []


def test_cancellable_argument_cancels_future(rt):
    cancellable = Gio.Cancellable()
    release = threading.Event()

    def slow(task, c, user_data):
        release.wait(DEADLINE)
        task.return_value(None)

    task = rt.submit(slow, None, None, cancellable)
    cancellable.cancel()
    assert task.wait(DEADLINE)
    release.set()
    with pytest.raises(GLib.Error) as info:
        task.propagate_value()
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)


# ---- map --------------------------------------------------------------------

def test_map_blocking_order(rt):
    def work(task, cancellable, user_data):
        i = task.get_index()
        if i % 7 == 0:
            time.sleep(0.001)  # finish out of order
        task.return_value(i * user_data)

    n = 600
    assert rt.map_blocking(n, work, 3, None, None) == [i * 3 for i in range(n)]


def test_map_blocking_empty(rt):
    def never(task, cancellable, user_data):
        raise AssertionError('called')

    assert rt.map_blocking(0, never, None, None, None) == []


def test_map_blocking_return_errors(rt):
    def work(task, cancellable, user_data):
        i = task.get_index()
        if i % 2:
            raise GLib.Error('odd %d' % i, 'my-app-error-quark', i)
        task.return_value(i)

    results = rt.map_blocking(6, work, None, Dvt.Options(return_errors=True), None)
    assert results[0::2] == [0, 2, 4]
    for i, error in zip((1, 3, 5), results[1::2]):
        assert isinstance(error, GLib.Error)
        assert (error.domain, error.code, error.message) == ('my-app-error-quark', i, 'odd %d' % i)


def test_map_blocking_first_failure(rt):
    def work(task, cancellable, user_data):
        if task.get_index() == 3:
            raise GLib.Error('three', 'my-app-error-quark', 3)
        task.return_value(task.get_index())

    with pytest.raises(GLib.Error) as info:
        rt.map_blocking(50, work, None, None, None)
    assert (info.value.domain, info.value.code, info.value.message) == ('my-app-error-quark', 3, 'three')


@pytest.mark.parametrize('limit', [0, 1, 2, 3])
def test_map_blocking_max_concurrency(limit):
    # More workers than the limit, so that the limit is what bounds it.
    runtime = Dvt.Runtime.new(6)
    peak = Peak()

    def work(task, cancellable, user_data):
        with peak:
            time.sleep(0.002)
        task.return_value(task.get_index())

    try:
        options = Dvt.Options(max_concurrency=limit)
        assert runtime.map_blocking(40, work, None, options, None) == list(range(40))
    finally:
        runtime.shutdown(True, False)
    assert peak.calls == 40
    assert 1 <= peak.peak <= max(1, limit)


def test_map_blocking_async_items_gio(rt, tmp_path):
    paths = []
    for i in range(8):
        p = tmp_path / ('f%d' % i)
        p.write_bytes(b'x' * i)
        paths.append(str(p))

    def load(task, cancellable, paths):
        load_contents(task, cancellable, paths[task.get_index()])

    options = Dvt.Options(async_items=True, max_concurrency=3)
    results = rt.map_blocking(len(paths), load, paths, options, None)
    assert results == [b'x' * i for i in range(8)]


def test_map_async_main_loop(rt):
    results = []

    def done(runtime, result, user_data):
        results.append((threading.get_ident(), runtime.map_finish(result)))
        user_data.quit()

    main_loop_run(lambda loop: rt.map_async(10, square, None, None, None, done, loop))
    (thread, values), = results
    assert thread == MAIN_THREAD
    assert values == [i * i for i in range(10)]


def test_map_async_return_errors(rt):
    results = []

    def work(task, cancellable, user_data):
        if task.get_index() == 1:
            raise GLib.Error('one', 'my-app-error-quark', 1)
        task.return_value('ok')

    def done(runtime, result, loop):
        results.extend(runtime.map_finish(result))
        loop.quit()

    options = Dvt.Options(return_errors=True)
    main_loop_run(lambda loop: rt.map_async(3, work, None, options, None, done, loop))
    assert results[0] == 'ok' and results[2] == 'ok'
    assert results[1].matches(GLib.quark_from_string('my-app-error-quark'), 1)


# ---- gather --------------------------------------------------------------------

MIXED = [1, 'two', 3.5, True, None, [4, 5], {'six': 6}, b'seven', (8,), 2 ** 40]


def test_gather_blocking_ordered_mixed_types(rt):
    def work(task, cancellable, value):
        if isinstance(value, int) and not isinstance(value, bool) and value == 1:
            time.sleep(0.02)  # the first one finishes last
        task.return_value(value)

    tasks = [rt.submit(work, v, None, None) for v in MIXED]
    tasks.append(rt.schedule(lambda task, c, d: task.return_value(Gio.Cancellable()),
                             None, None, None))
    results = rt.gather_blocking(tasks, None, None)
    assert results[:-1] == MIXED
    assert isinstance(results[-1], Gio.Cancellable)


def test_gather_blocking_empty(rt):
    assert rt.gather_blocking([], None, None) == []


def test_gather_blocking_return_errors(rt):
    def fail(task, cancellable, user_data):
        raise GLib.Error('nope', 'my-app-error-quark', 9)

    tasks = [rt.submit(square, None, None, None), rt.submit(fail, None, None, None)]
    results = rt.gather_blocking(tasks, Dvt.Options(return_errors=True), None)
    assert results[0] == 0
    assert results[1].matches(GLib.quark_from_string('my-app-error-quark'), 9)


def test_gather_blocking_first_failure(rt):
    def fail(task, cancellable, user_data):
        raise GLib.Error('nope', 'my-app-error-quark', 9)

    tasks = [rt.submit(square, None, None, None), rt.submit(fail, None, None, None)]
    with pytest.raises(GLib.Error) as info:
        rt.gather_blocking(tasks, None, None)
    assert info.value.message == 'nope'


def test_gather_blocking_nested(rt):
    # Each outer task gathers inner tasks from a worker: nested waits on a
    # two-worker pool must not starve it.
    def inner(task, cancellable, value):
        task.return_value(value)

    def outer(task, cancellable, base):
        subtasks = [rt.submit(inner, base + i, None, None) for i in range(3)]
        task.return_value(rt.gather_blocking(subtasks, None, None))

    outers = [rt.submit(outer, 10 * k, None, None) for k in range(4)]
    wait_all(rt, outers)
    assert rt.gather_blocking(outers, None, None) == [
        [10 * k, 10 * k + 1, 10 * k + 2] for k in range(4)]


# ---- Options --------------------------------------------------------------------

def test_options_properties():
    options = Dvt.Options()
    assert options.props.name is None
    assert options.props.max_concurrency == -1
    assert options.props.return_errors is False
    assert options.props.async_items is False
    assert options.props.use_caller_context is False

    options = Dvt.Options(name='n', max_concurrency=4, return_errors=True,
                          async_items=True, use_caller_context=True)
    assert options.get_name() == 'n'
    assert options.get_max_concurrency() == 4
    assert options.get_return_errors() is True
    assert options.get_async_items() is True
    assert options.get_use_caller_context() is True

    copy = options.copy()
    options.set_max_concurrency(1)
    options.props.name = 'changed'
    assert copy.props.max_concurrency == 4
    assert copy.props.name == 'n'
    assert Dvt.Options.new().props.max_concurrency == -1


# ---- the introspected methods, without the overrides -----------------------------

def test_introspected_submit_and_gather(rt):
    Runtime = raw_class('Runtime')
    Task = raw_class('Task')

    def work(task, cancellable, *user_data):
        Task.return_value(task, GObject.Value(GObject.TYPE_PYOBJECT, user_data))

    tasks = [Runtime.submit(rt, work, i, None, None) for i in range(5)]
    assert Runtime.gather_blocking(rt, tasks, None, None) == [(i,) for i in range(5)]
    Task.wait(tasks[0], DEADLINE)
    assert Task.propagate_value(tasks[0]) == (0,)


def test_introspected_map_blocking(rt):
    Runtime = raw_class('Runtime')

    def work(task, cancellable, *user_data):
        if task.get_index() == 2:
            raise GLib.Error('two', 'my-app-error-quark', 2)
        raw_class('Task').return_value(task, task.get_index())

    results = Runtime.map_blocking(rt, 4, work, None,
                                   Dvt.Options(return_errors=True), None)
    assert results[:2] == [0, 1] and results[3] == 3
    assert results[2].matches(GLib.quark_from_string('my-app-error-quark'), 2)
