# test_context.py: Dvt.Context, the request context that follows the work
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import threading

import pytest

from dvthelpers import DEADLINE, Dvt, GLib, run_loop_until

KEY = 'request-id'


def current_id():
    current = Dvt.Context.get_current()
    return current.get_string(KEY) if current is not None else None


@pytest.fixture
def runtime():
    rt = Dvt.Runtime.new(2)
    yield rt
    rt.shutdown(True, False)


def request(value):
    return Dvt.Context.new().with_string(KEY, value)


def test_values():
    base = Dvt.Context.new()
    one = base.with_string(KEY, 'r1')
    two = one.with_(  # 'with' is a Python keyword: PyGObject adds '_'
        'count', 42)
    assert base.get_string(KEY) is None
    assert one.get_string(KEY) == 'r1'
    found, value = two.lookup('count')
    assert found and value == 42
    assert not one.lookup('count')[0]
    assert sorted(two.get_keys()) == ['count', KEY]


def test_push_pop_and_run():
    ctx = request('outer')
    assert Dvt.Context.get_current() is None
    ctx.push()
    try:
        assert current_id() == 'outer'
        captured = Dvt.Context.capture()
    finally:
        ctx.pop()
    assert Dvt.Context.get_current() is None

    seen = []
    thread = threading.Thread(
        target=lambda: captured.run(lambda: seen.append(current_id())))
    thread.start()
    thread.join(DEADLINE)
    assert seen == ['outer']


def test_follows_blocking_call(runtime):
    ctx = request('blocking')
    ctx.push()
    try:
        assert runtime.call_blocking(current_id) == 'blocking'
        assert runtime.map_blocking(lambda i: current_id(), range(50)) == \
            ['blocking'] * 50
    finally:
        ctx.pop()
    # A worker keeps nothing of it.
    for _ in range(4):
        assert runtime.call_blocking(current_id) is None


def test_follows_to_thread_async(runtime):
    ctx = request('async')
    results = []

    def done(rt, result, *_):
        results.append((current_id(), rt.to_thread_finish(result)))

    ctx.push()
    try:
        runtime.to_thread_async(lambda task, cancellable, *_:
                                task.return_value(current_id()),
                                callback=done)
    finally:
        ctx.pop()
    run_loop_until(lambda: results)
    assert results == [('async', 'async')]


def test_threads_do_not_mix(runtime):
    wrong = []

    def body(i):
        ctx = request('thread-%d' % i)
        ctx.push()
        try:
            for _ in range(100):
                seen = runtime.call_blocking(current_id)
                if seen != 'thread-%d' % i:
                    wrong.append(seen)
        finally:
            ctx.pop()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    assert wrong == []
