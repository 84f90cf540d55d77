# test_callable.py: Dvt.Callable from threads and from a main loop
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import asyncio

import pytest

from dvthelpers import Dvt, GLib, run_loop_until


@pytest.fixture
def runtime():
    rt = Dvt.Runtime.new(2)
    yield rt
    rt.shutdown(True, False)


def double_it(task, args, cancellable, *_):
    n = args.unpack()
    if n < 0:
        task.return_error(GLib.Error.new_literal(
            GLib.quark_from_string('test'), 'negative', 1))
    else:
        task.return_value(2 * n)


def test_call_blocking(runtime):
    options = Dvt.Options()
    options.set_name('double')
    callable_ = Dvt.Callable.new(runtime, double_it, options=options)
    assert callable_.props.runtime == runtime
    assert not callable_.props.is_async
    assert callable_.dup_options().get_name() == 'double'
    assert callable_.call_blocking(GLib.Variant('i', 21), None) == 42
    with pytest.raises(GLib.Error, match='negative'):
        callable_.call_blocking(GLib.Variant('i', -1), None)


def test_submit(runtime):
    callable_ = Dvt.Callable.new(runtime, double_it)
    tasks = [callable_.submit(GLib.Variant('i', i), None) for i in range(20)]
    assert [t.wait(60) and t.propagate_value() for t in tasks] == \
        [2 * i for i in range(20)]


def test_call_async_on_main_loop(runtime):
    callable_ = Dvt.Callable.new(runtime, double_it)
    results = []
    callable_.call_async(GLib.Variant('i', 5), None,
                         lambda c, res, *_: results.append(c.call_finish(res)))
    run_loop_until(lambda: results)
    assert results == [10]


def test_call_async_from_asyncio(runtime):
    callable_ = Dvt.Callable.new(runtime, double_it)

    async def main():
        # A blocking call run in asyncio's own executor, beside the loop.
        return await asyncio.to_thread(callable_.call_blocking,
                                       GLib.Variant('i', 4), None)

    assert asyncio.run(main()) == 8


def test_async_work(runtime):
    def later(task, args, cancellable, *_):
        # Async work starts on the runtime's loop thread: completes later,
        # from a source on that thread's context.
        source = GLib.timeout_source_new(5)
        source.set_callback(lambda *_: task.return_value('later') or False)
        source.attach(GLib.MainContext.get_thread_default())

    callable_ = Dvt.Callable.new_async(runtime, later)
    assert callable_.props.is_async
    assert callable_.call_blocking(None, None) == 'later'


def test_python_exception_fails_the_call(runtime):
    def broken(task, args, cancellable, *_):
        raise ValueError('bad args')

    callable_ = Dvt.Callable.new(runtime, broken)
    with pytest.raises(ValueError, match='bad args'):
        callable_.call_blocking(None, None)
    task = callable_.submit(None, None)
    task.wait(60)
    with pytest.raises(ValueError, match='bad args'):
        task.propagate_value()


def test_user_data(runtime):
    def add(task, args, cancellable, user_data):
        task.return_value(args.unpack() + user_data)

    callable_ = Dvt.Callable.new(runtime, add, 100)
    assert callable_.call_blocking(GLib.Variant('i', 1), None) == 101


def test_python_exception_reaches_call_finish(runtime):
    def broken(task, args, cancellable, *_):
        raise KeyError('missing')

    callable_ = Dvt.Callable.new(runtime, broken)
    outcome = []

    def done(c, res, *_):
        try:
            c.call_finish(res)
        except KeyError as exc:
            outcome.append(exc)

    callable_.call_async(None, None, done)
    run_loop_until(lambda: outcome)
    assert isinstance(outcome[0], KeyError)
