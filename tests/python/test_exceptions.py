# test_exceptions.py: errors raised by work reach the caller
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A GLib.Error arrives unchanged (domain, code, message); any other Python
# exception arrives as the same object, re-raised with the traceback of the
# work function, on every path. The side table that carries exceptions
# across the C library must not keep anything once nobody can read it.

import gc
import threading
import traceback

import pytest

from dvthelpers import (DEADLINE, Dvt, GLib, main_loop_run, override_module,
                        raw_class, run_loop_until, wait_all)
from gi.repository import Gio


class WorkError(Exception):
    def __init__(self, message, detail=None):
        super().__init__(message)
        self.detail = detail


class NotAnException(BaseException):
    pass


def raiser(exc):
    """A work function (task, cancellable, user_data) raising @exc."""
    def work_that_raises(task, cancellable, user_data):
        raise exc
    return work_that_raises


def plain_raiser(exc):
    def plain_function_that_raises(*args, **kwargs):
        raise exc
    return plain_function_that_raises


def glib_error():
    return GLib.Error('the widget is gone', 'my-app-error-quark', 42)


def assert_same_glib_error(error):
    assert isinstance(error, GLib.Error)
    assert (error.domain, error.code, error.message) == (
        'my-app-error-quark', 42, 'the widget is gone')


def tb_names(exc):
    return [frame.name for frame in traceback.extract_tb(exc.__traceback__)]


def wait_for_no_exceptions(before, timeout=DEADLINE):
    """The runtime drops its references to finished tasks on its own
    threads, and some on this thread's context: wait for that, then check
    that the side table is back where it was."""
    def settled():
        gc.collect()
        return override_module()._live_exception_count() == before
    run_loop_until(settled, timeout=timeout)


@pytest.fixture
def baseline():
    gc.collect()
    before = override_module()._live_exception_count()
    yield before
    wait_for_no_exceptions(before)


# ---- every path, Python exceptions ----------------------------------------------

BLOCKING_PATHS = ['to_thread_blocking', 'run_blocking', 'submit', 'schedule',
                  'map_blocking', 'map_items', 'call_blocking', 'submit_call']


def call_path(rt, path, exc):
    if path in ('to_thread_blocking', 'run_blocking'):
        return getattr(rt, path)(raiser(exc))
    if path in ('submit', 'schedule'):
        task = getattr(rt, path)(raiser(exc))
        assert task.wait(DEADLINE)
        return task.propagate_value()
    if path == 'map_blocking':
        return rt.map_blocking(3, raiser(exc))
    if path == 'map_items':
        return rt.map_blocking(plain_raiser(exc), [1, 2, 3])
    if path == 'call_blocking':
        return rt.call_blocking(plain_raiser(exc), 1, key='word')
    if path == 'submit_call':
        return rt.submit_call(plain_raiser(exc)).result(DEADLINE)
    raise AssertionError(path)


@pytest.mark.parametrize('path', BLOCKING_PATHS)
def test_python_exception_is_the_same_object(rt, baseline, path):
    exc = WorkError('bad input', detail={'line': 3})
    with pytest.raises(WorkError) as info:
        call_path(rt, path, exc)
    assert info.value is exc
    assert info.value.detail == {'line': 3}
    names = tb_names(info.value)
    assert names[-1] in ('work_that_raises', 'plain_function_that_raises')


@pytest.mark.parametrize('path', BLOCKING_PATHS)
def test_builtin_exception_type_and_message(rt, baseline, path):
    with pytest.raises(KeyError) as info:
        call_path(rt, path, KeyError('missing-key'))
    assert info.value.args == ('missing-key',)


@pytest.mark.parametrize('path', BLOCKING_PATHS)
def test_glib_error_unchanged(rt, baseline, path):
    with pytest.raises(GLib.Error) as info:
        call_path(rt, path, glib_error())
    assert_same_glib_error(info.value)


@pytest.mark.parametrize('path', ['to_thread_blocking', 'submit', 'call_blocking'])
def test_base_exception_crosses_too(rt, baseline, path):
    with pytest.raises(NotAnException):
        call_path(rt, path, NotAnException('stop'))


def test_exception_chain_kept(rt, baseline):
    def work():
        try:
            {}['x']
        except KeyError as cause:
            raise WorkError('wrapped') from cause

    with pytest.raises(WorkError) as info:
        rt.call_blocking(work)
    assert isinstance(info.value.__cause__, KeyError)


def test_exception_from_a_deeper_frame(rt, baseline):
    def deepest():
        raise ValueError('deep')

    def middle():
        deepest()

    with pytest.raises(ValueError) as info:
        rt.call_blocking(middle)
    assert tb_names(info.value)[-2:] == ['middle', 'deepest']


def test_future_read_twice(rt, baseline):
    exc = WorkError('twice')
    task = rt.submit(raiser(exc))
    task.wait(DEADLINE)
    with pytest.raises(WorkError) as first:
        task.propagate_value()
    depth = len(tb_names(first.value))
    with pytest.raises(WorkError) as second:
        task.result()
    assert first.value is second.value is exc
    # Each raise starts again from the work's own traceback.
    assert len(tb_names(second.value)) <= depth + 1
    assert task.had_error()


def test_to_thread_finish_raises(rt, baseline):
    exc = WorkError('async')
    caught = []

    def done(runtime, result, loop):
        try:
            runtime.to_thread_finish(result)
        except WorkError as error:
            caught.append(error)
        loop.quit()

    main_loop_run(lambda loop: rt.to_thread_async(raiser(exc), callback=done,
                                                  user_data=loop))
    assert caught == [exc]


def test_map_finish_raises(rt, baseline):
    exc = WorkError('map async')
    caught = []

    def done(runtime, result, loop):
        try:
            runtime.map_finish(result)
        except WorkError as error:
            caught.append(error)
        loop.quit()

    main_loop_run(lambda loop: rt.map_async(plain_raiser(exc), [1],
                                            callback=done, user_data=loop))
    assert caught == [exc]


def test_map_return_errors_slots_hold_exceptions(rt, baseline):
    errors = {1: ValueError('one'), 3: glib_error()}

    def work(task, cancellable, user_data):
        i = task.get_index()
        if i in errors:
            raise errors[i]
        task.return_value(i)

    options = Dvt.Options(return_errors=True)
    results = rt.map_blocking(5, work, options=options)
    assert results[0] == 0 and results[2] == 2 and results[4] == 4
    assert results[1] is errors[1]
    assert_same_glib_error(results[3])

    results = rt.map_blocking(lambda x: 10 // x, [5, 0, 2], options=options)
    assert results[0] == 2 and results[2] == 5
    assert isinstance(results[1], ZeroDivisionError)


def test_map_async_return_errors_slots_hold_exceptions(rt, baseline):
    exc = ValueError('slot')
    results = []

    def work(x):
        if x == 'bad':
            raise exc
        return x

    def done(runtime, result, loop):
        results.extend(runtime.map_finish(result))
        loop.quit()

    options = Dvt.Options(return_errors=True)
    main_loop_run(lambda loop: rt.map_async(work, ['ok', 'bad'], options=options,
                                            callback=done, user_data=loop))
    assert results == ['ok', exc]
    assert results[1] is exc


def test_gather_raises_and_returns_exceptions(rt, baseline):
    exc = WorkError('gathered')
    ok = rt.submit_call(lambda: 'fine')
    bad = rt.submit(raiser(exc))
    with pytest.raises(WorkError) as info:
        rt.gather_blocking([ok, bad])
    assert info.value is exc
    assert rt.gather_blocking([ok, bad], Dvt.Options(return_errors=True)) == ['fine', exc]


def test_nested_calls_carry_the_same_exception(rt, baseline):
    exc = WorkError('inner')

    def outer():
        return rt.call_blocking(plain_raiser(exc))

    task = rt.submit_call(outer)
    wait_all(rt, [task])
    with pytest.raises(WorkError) as info:
        task.result()
    assert info.value is exc
    names = tb_names(info.value)
    assert 'outer' in names and names[-1] == 'plain_function_that_raises'


def test_exception_seen_through_the_introspected_api(rt, baseline):
    # A reader without the overrides gets a GLib.Error that says what
    # happened.
    task = rt.submit(raiser(ValueError('bad value')))
    task.wait(DEADLINE)
    with pytest.raises(GLib.Error) as info:
        raw_class('Task').propagate_value(task)
    assert info.value.domain == 'dvt-python-exception-quark'
    assert 'ValueError: bad value' in info.value.message
    # ... and the override still turns it into the exception.
    with pytest.raises(ValueError):
        task.propagate_value()


def test_exception_raised_in_a_gio_callback_with_return_error(rt, baseline, tmp_file):
    def work(task, cancellable, path):
        def done(file, result):
            try:
                ok, contents, etag = file.load_contents_finish(result)
                int(bytes(contents))  # not a number: ValueError
            except Exception as error:
                task.return_error(error)

        Gio.File.new_for_path(path).load_contents_async(cancellable, done)

    with pytest.raises(ValueError) as info:
        rt.run_blocking(work, str(tmp_file))
    assert 'invalid literal' in str(info.value)


# ---- no leaks ---------------------------------------------------------------------

def test_unread_future_leaks_nothing(rt, baseline):
    tasks = [rt.submit(raiser(WorkError('unread %d' % i))) for i in range(20)]
    for task in tasks:
        task.wait(DEADLINE)
    assert override_module()._live_exception_count() >= baseline + 20
    del tasks, task


def test_unread_schedule_leaks_nothing(rt, baseline):
    task = rt.schedule(raiser(WorkError('unread')))
    task.wait(DEADLINE)
    del task


def test_map_first_failure_leaks_nothing(rt, baseline):
    # Every item fails; only one failure is reported.
    with pytest.raises(WorkError):
        rt.map_blocking(plain_raiser(WorkError('all')), range(50))
    assert override_module()._live_exception_count() == baseline


def test_gather_first_failure_leaks_nothing(rt, baseline):
    tasks = [rt.submit(raiser(WorkError(str(i)))) for i in range(5)]
    with pytest.raises(WorkError):
        rt.gather_blocking(tasks)
    del tasks


def test_to_thread_async_unread_leaks_nothing(rt, baseline):
    def done(runtime, result, loop):
        loop.quit()  # never calls to_thread_finish

    main_loop_run(lambda loop: rt.to_thread_async(raiser(WorkError('x')),
                                                  callback=done, user_data=loop))


def test_map_async_unread_leaks_nothing(rt, baseline):
    def done(runtime, result, loop):
        loop.quit()

    main_loop_run(lambda loop: rt.map_async(plain_raiser(WorkError('x')), [1, 2],
                                            callback=done, user_data=loop))


def test_late_exception_after_cancel_leaks_nothing(rt, baseline):
    started = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    def stubborn(task, cancellable, user_data):
        started.set()
        release.wait(DEADLINE)
        finished.set()
        raise WorkError('nobody hears this')

    cancellable = Gio.Cancellable()
    threading.Thread(target=lambda: (started.wait(DEADLINE), cancellable.cancel())).start()
    with pytest.raises(GLib.Error) as info:
        rt.to_thread_blocking(stubborn, cancellable=cancellable)
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    release.set()
    assert finished.wait(DEADLINE)


def test_blocking_call_leaves_nothing_behind(rt, baseline):
    for path in ('to_thread_blocking', 'run_blocking', 'map_blocking',
                 'call_blocking'):
        with pytest.raises(WorkError):
            call_path(rt, path, WorkError(path))
        assert override_module()._live_exception_count() == baseline
