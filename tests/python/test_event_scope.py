# test_event_scope.py: event scopes from Python (function identity, name,
# task id), the re-entry bound, and progress
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A waiting shutdown returns once the events thread has delivered every
# event, so what handlers recorded is final after it.

import threading
import time

import pytest

from dvthelpers import DEADLINE, Dvt, GLib
from gi.repository import Gio


class Calls:
    """Task ids a handler was called for, with the threads it ran on."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ids = []
        self.threads = set()

    def __call__(self, scope, task, *args):
        with self.lock:
            self.ids.append(task.get_id())
            self.threads.add(threading.get_ident())


def test_two_lambdas_never_match(rt):
    first = lambda: 1  # noqa: E731
    second = lambda: 1  # noqa: E731
    calls = Calls()
    scope = rt.scope_events(function=first)
    scope.connect('finished', calls)

    assert rt.call_blocking(first) == 1
    assert rt.call_blocking(second) == 1
    assert rt.call_blocking(second) == 1
    future = rt.submit_call(first)
    assert future.result(DEADLINE) == 1
    rt.shutdown(True, False)

    assert len(calls.ids) == 2
    assert future.get_id() in calls.ids
    assert len(calls.threads) == 1 and threading.get_ident() not in calls.threads
    del scope


def test_every_entry_point_carries_the_function(rt):
    def work(task, cancellable, data):
        task.return_value(data)

    def item(x):
        return x * 2

    calls, item_calls = Calls(), Calls()
    scope = rt.scope_events(function=work)
    scope.connect('finished', calls)
    item_scope = rt.scope_events(function=item)
    item_scope.connect('finished', item_calls)

    assert rt.to_thread_blocking(work, 1) == 1
    assert rt.submit(work, 2).result(DEADLINE) == 2
    assert rt.map_blocking(3, work, 3) == [3, 3, 3]
    assert rt.map_blocking(item, range(4)) == [0, 2, 4, 6]
    loop = GLib.MainLoop()
    rt.to_thread_async(work, 4, callback=lambda *a: loop.quit())
    loop.run()
    rt.shutdown(True, False)

    assert len(calls.ids) == 4   # the map is one task
    assert len(item_calls.ids) == 1


def test_bound_method_matches_through_its_function(rt):
    class Fetcher:
        def fetch(self):
            return 'page'

    fetcher = Fetcher()
    calls = Calls()
    scope = rt.scope_events(function=fetcher.fetch)
    scope.connect('finished', calls)
    rt.call_blocking(fetcher.fetch)   # a new bound method object
    rt.call_blocking(Fetcher().fetch)
    rt.call_blocking(str)
    rt.shutdown(True, False)
    assert len(calls.ids) == 2


def test_name_and_function(rt):
    def fetch():
        return 1

    both, by_name = Calls(), Calls()
    s1 = rt.scope_events(name='fetch-url', function=fetch)
    s1.connect('finished', both)
    s2 = rt.scope_events(name='fetch-url')
    s2.connect('finished', by_name)

    named = Dvt.Options(name='fetch-url')
    rt.call_blocking(fetch, dvt_options=named)
    rt.call_blocking(lambda: 2, dvt_options=named)
    rt.call_blocking(fetch)
    rt.shutdown(True, False)
    assert len(both.ids) == 1
    assert len(by_name.ids) == 2
    assert s2.get_name() == 'fetch-url'


def test_one_execution_by_task(rt):
    gate = threading.Event()
    slow = rt.submit_call(gate.wait, DEADLINE)
    other = rt.submit_call(lambda: 'other')
    calls = Calls()
    scope = rt.scope_events(task=slow)
    scope.connect('finished', calls)
    by_id = rt.scope_events(task=slow.get_id())
    id_calls = Calls()
    by_id.connect('finished', id_calls)
    gate.set()
    slow.result(DEADLINE)
    other.result(DEADLINE)
    rt.shutdown(True, False)
    assert calls.ids == [slow.get_id()]
    assert id_calls.ids == [slow.get_id()]


def test_invalid_combinations(rt):
    task = rt.submit_call(lambda: 1)
    task.result(DEADLINE)
    with pytest.raises(GLib.Error) as info:
        rt.scope_events(task=task, name='x')
    assert info.value.matches(Dvt.error_quark(), Dvt.Error.INVALID_ARGUMENT)
    assert 'task id' in info.value.message
    with pytest.raises(GLib.Error):
        rt.scope_events(task=task, function=len)
    with pytest.raises(GLib.Error):
        rt.scope_events(name='')
    with pytest.raises(GLib.Error):
        rt.scope_events(task=task.get_id() + 1000)
    with pytest.raises(TypeError):
        rt.scope_events(function=42)
    with pytest.raises(ValueError):
        rt.scope_events(max_depth=0)
    # Nothing at all: every task.
    assert rt.scope_events().get_max_depth() == 1


def run_chain(rt, max_depth):
    """A scope whose finished handler submits the same function again."""
    def step():
        return 1

    calls = Calls()
    caused = []
    done = Calls()
    rt.connect('finished', done)
    kwargs = {} if max_depth is None else {'max_depth': max_depth}
    scope = rt.scope_events(function=step, **kwargs)

    def handler(scope, task, elapsed):
        calls(scope, task)
        caused.append(rt.submit_call(step))
    scope.connect('finished', handler)

    rt.call_blocking(step)
    expected = (max_depth or 1) + 1
    deadline = time.monotonic() + DEADLINE
    while len(done.ids) < expected and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.05)
    rt.shutdown(True, False)
    for task in caused:
        assert task.result(DEADLINE) == 1   # follow-up work ran
    return calls, caused, done


def test_reentry_off_by_default(rt):
    calls, caused, done = run_chain(rt, None)
    assert len(calls.ids) == 1
    assert len(caused) == 1
    assert len(done.ids) == 2   # the runtime's own handler saw the follow-up


def test_reentry_bounded_at_depth_3(rt):
    calls, caused, done = run_chain(rt, 3)
    assert len(calls.ids) == 3
    assert len(caused) == 3
    assert len(done.ids) == 4


def test_concurrent_completions_slow_handler():
    """Four tasks ending at once, a slow handler that submits follow-up
    work: four calls, none dropped and none re-entered."""
    rt = Dvt.Runtime.new(4)
    try:
        def work():
            return 1

        calls = Calls()
        scope = rt.scope_events(function=work)

        def handler(scope, task, elapsed):
            calls(scope, task)
            time.sleep(0.03)
            rt.submit_call(work)
        scope.connect('finished', handler)

        start = threading.Barrier(4)

        def caller():
            start.wait()
            rt.call_blocking(work)
        threads = [threading.Thread(target=caller) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.monotonic() + DEADLINE
        while len(calls.ids) < 4 and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.1)
    finally:
        rt.shutdown(True, False)
    assert len(calls.ids) == 4
    assert len(set(calls.ids)) == 4
    assert len(calls.threads) == 1


def test_scope_handler_gets_python_exception(rt):
    def broken():
        raise KeyError('missing')

    # While the call can be read (a future kept alive), as for the
    # runtime's own handlers.
    seen = []
    scope = rt.scope_events(function=broken)
    scope.connect('failed', lambda s, task, error, elapsed: seen.append(error))
    future = rt.submit_call(broken)
    with pytest.raises(KeyError) as info:
        future.result(DEADLINE)
    rt.shutdown(True, False)
    assert seen == [info.value]


def test_dropping_the_scope_stops_it(rt):
    def work():
        return 1

    calls = Calls()
    scope = rt.scope_events(function=work)
    scope.connect('finished', calls)
    rt.call_blocking(work)
    deadline = time.monotonic() + DEADLINE
    while not calls.ids and time.monotonic() < deadline:
        time.sleep(0.001)
    del scope
    rt.call_blocking(work)
    rt.shutdown(True, False)
    assert len(calls.ids) == 1


def test_progress(rt):
    seen = []
    ended = []

    def on_progress(runtime, task, done, total):
        seen.append((done, total, bool(ended)))
    rt.connect('progress', on_progress)
    rt.connect('finished', lambda runtime, task, elapsed: ended.append(task))
    assert rt.map_blocking(lambda x: x, range(500)) == list(range(500))
    rt.shutdown(True, False)

    assert seen
    assert all(total == 500 for _, total, _ in seen)
    dones = [d for d, _, _ in seen]
    assert dones == sorted(dones)
    assert dones[-1] == 500
    assert not any(after for _, _, after in seen)


def test_counters_after_a_mixed_run(rt):
    """Counters match their definitions after successes, failures, retries,
    a timeout and a cancellation; custom counters accumulate."""
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise OSError('not yet')
        return 'ok'

    def broken():
        raise ValueError('never')

    retrying = Dvt.Options(retries=2, retry_backoff=0.001)
    for i in range(5):
        assert rt.call_blocking(int, i) == i
    assert rt.call_blocking(flaky, dvt_options=retrying) == 'ok'
    with pytest.raises(ValueError):
        rt.call_blocking(broken, dvt_options=retrying)
    with pytest.raises(GLib.Error) as info:
        rt.call_blocking(time.sleep, 0.3, dvt_options=Dvt.Options(timeout=0.05))
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)
    gate = threading.Event()
    blocker = rt.submit_call(gate.wait, DEADLINE)
    blocker2 = rt.submit_call(gate.wait, DEADLINE)
    queued = rt.submit_call(int, 1)     # waits behind the two blockers
    queued.cancel()
    gate.set()
    blocker.result(DEADLINE)
    blocker2.result(DEADLINE)
    rt.inc_stat('pages', 2)
    rt.inc_stat('pages', 3)
    rt.shutdown(True, False)

    stats = rt.get_stats()
    assert stats.queued == 5 + 1 + 1 + 1 + 3
    assert stats.done == 5 + 1 + 2
    assert stats.error == 2           # broken, and the timeout
    assert stats.timed_out == 1
    assert stats.cancelled == 1
    assert stats.retries == 2 + 2
    assert stats.started == 5 + 3 + 3 + 1 + 2
    assert stats.queued == stats.done + stats.error + stats.cancelled
    assert stats.running == 0 and stats.pending == 0
    assert stats.get_counter('pages') == 5
