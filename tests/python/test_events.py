# test_events.py: the event signals of runtimes and tasks, from Python
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A Recorder connects to the seven signals (queued, started, retry,
# throttled, failed, cancelled, finished) of a runtime, optionally with a
# detail (a task name), or of a task, and keeps every event with the
# thread it ran on. A waiting shutdown delivers what is left before the
# events thread stops: after it, the events of a runtime without an event
# context are final.

import threading
import time

import pytest

from dvthelpers import DEADLINE, Dvt, GLib, run_loop_until
from gi.repository import Gio

KINDS = ('queued', 'started', 'retry', 'throttled', 'failed', 'cancelled', 'finished')
TERMINAL = ('failed', 'cancelled', 'finished')
APP_DOMAIN = 'dvt-test-events-error-quark'


def is_io_error(error, code):
    return isinstance(error, GLib.Error) and error.matches(Gio.io_error_quark(), code)


class Event:
    __slots__ = ('kind', 'id', 'name', 'attempt', 'error', 'value', 'thread',
                 'completed', 'own')

    def __repr__(self):
        return '<%s %d %r>' % (self.kind, self.id, self.name)


class Recorder:
    """Every event of @instance (a runtime, or a task when @own), in the
    order the handlers ran; also checks that no two handlers ever run at
    once (@shared: another recorder whose concurrency count to share)."""

    def __init__(self, instance, detail=None, own=False, shared=None, sleep=0.0):
        self.lock = threading.Lock()
        self.events = []
        self.state = shared.state if shared is not None else {'inside': 0, 'overlaps': 0}
        self.sleep = sleep
        self.hook = None
        self.instance = instance
        self.ids = []
        for kind in KINDS:
            name = kind if detail is None else '%s::%s' % (kind, detail)
            self.ids.append(instance.connect(name, self._handler(kind, own)))

    def _handler(self, kind, own):
        def handler(*args):
            with self.lock:
                self.state['inside'] += 1
                if self.state['inside'] > 1:
                    self.state['overlaps'] += 1
            try:
                task, rest = (args[0], args[1:]) if own else (args[1], args[2:])
                ev = Event()
                ev.kind = kind
                ev.id = task.get_id()
                ev.name = task.get_name()
                ev.attempt = task.get_attempt()
                ev.error = None
                ev.value = None
                ev.own = own
                ev.thread = threading.get_ident()
                ev.completed = task.get_completed()
                if kind == 'started':
                    ev.attempt, = rest
                elif kind == 'retry':
                    ev.error, ev.attempt, ev.value = rest
                elif kind in ('throttled', 'finished'):
                    ev.value, = rest
                elif kind in ('failed', 'cancelled'):
                    ev.error, ev.value = rest
                else:
                    assert rest == ()
                if self.sleep:
                    time.sleep(self.sleep)
                with self.lock:
                    self.events.append(ev)
                if self.hook is not None:
                    self.hook(ev, task)
            finally:
                with self.lock:
                    self.state['inside'] -= 1
        return handler

    def disconnect(self):
        for handler_id in self.ids:
            self.instance.disconnect(handler_id)
        self.ids = []

    def snapshot(self, task_id=None):
        with self.lock:
            return [e for e in self.events if task_id is None or e.id == task_id]

    def seq(self, task_id=None):
        return ' '.join(e.kind + (str(e.attempt) if e.kind in ('started', 'retry') else '')
                        for e in self.snapshot(task_id))

    def ids_seen(self):
        seen = []
        for e in self.snapshot():
            if e.id not in seen:
                seen.append(e.id)
        return seen

    def terminals(self, task_id=None):
        return [e for e in self.snapshot(task_id) if e.kind in TERMINAL]

    @property
    def overlaps(self):
        return self.state['overlaps']

    def assert_well_formed(self):
        """Per task: queued first, one terminal event last."""
        for task_id in self.ids_seen():
            kinds = [e.kind for e in self.snapshot(task_id)]
            assert kinds[0] == 'queued', kinds
            assert kinds.count('queued') == 1, kinds
            assert sum(k in TERMINAL for k in kinds) == 1, kinds
            assert kinds[-1] in TERMINAL, kinds


def loop_thread_of(runtime):
    """The ident of the runtime's loop thread, found without a task."""
    found = []
    source = GLib.idle_source_new()
    source.set_callback(lambda *args: found.append(threading.get_ident()) or False)
    source.attach(runtime.get_context())
    deadline = time.monotonic() + DEADLINE
    while not found and time.monotonic() < deadline:
        time.sleep(0.001)
    assert found
    return found[0]


def named(name, **props):
    return Dvt.Options(name=name, **props)


@pytest.fixture
def gate():
    event = threading.Event()
    yield event
    event.set()


# ---- order ---------------------------------------------------------------------

def test_order_success(rt):
    loop = loop_thread_of(rt)
    rec = Recorder(rt)

    def fetch():
        time.sleep(0.02)
        return 42

    assert rt.call_blocking(fetch, dvt_options=named('fetch-url')) == 42
    rt.shutdown(True, False)

    assert rec.seq() == 'queued started1 finished'
    events = rec.snapshot()
    assert len({e.id for e in events}) == 1
    assert all(e.name == 'fetch-url' and not e.own for e in events)
    # Handlers run on the runtime's events thread: neither its loop thread
    # nor this one.
    threads = {e.thread for e in events}
    assert len(threads) == 1
    assert loop not in threads and threading.get_ident() not in threads
    finished = events[-1]
    assert finished.completed
    assert isinstance(finished.value, float)
    assert 0.02 - 0.003 <= finished.value < DEADLINE
    assert rec.overlaps == 0


def test_order_with_retries(rt):
    rec = Recorder(rt)
    attempts = []

    def flaky(task, cancellable, data):
        attempt = task.get_attempt()
        attempts.append(attempt)
        if attempt < 3:
            raise GLib.Error('attempt %d failed' % attempt, APP_DOMAIN, 10 + attempt)
        task.return_value('third time')

    options = Dvt.Options(retries=3, retry_backoff=0.01)
    assert rt.to_thread_blocking(flaky, None, options) == 'third time'
    rt.shutdown(True, False)

    assert attempts == [1, 2, 3]
    assert rec.seq() == 'queued started1 retry1 started2 retry2 started3 finished'
    retries = [e for e in rec.snapshot() if e.kind == 'retry']
    for n, ev in enumerate(retries, start=1):
        assert ev.attempt == n
        assert isinstance(ev.error, GLib.Error)
        assert ev.error.domain == APP_DOMAIN
        assert ev.error.code == 10 + n
        assert ev.error.message == 'attempt %d failed' % n
        assert ev.value == pytest.approx(0.01 * 2 ** (n - 1))
    assert rec.snapshot()[-1].value >= 0.03 - 0.003
    stats = rt.get_stats()
    assert stats.retries == 2 and stats.started == 3


def test_retries_exhausted_last_error(rt):
    rec = Recorder(rt)

    def never(task, cancellable, data):
        raise GLib.Error('attempt %d' % task.get_attempt(), APP_DOMAIN, task.get_attempt())

    with pytest.raises(GLib.Error) as info:
        rt.to_thread_blocking(never, None, Dvt.Options(retries=1, retry_backoff=0.001))
    assert info.value.code == 2
    rt.shutdown(True, False)
    assert rec.seq() == 'queued started1 retry1 started2 failed'
    failed = rec.snapshot()[-1]
    assert (failed.error.domain, failed.error.code, failed.error.message) == \
        (APP_DOMAIN, 2, 'attempt 2')


def test_failed_carries_error(rt):
    rec = Recorder(rt)

    def broken():
        raise GLib.Error('disk on fire', APP_DOMAIN, 7)

    with pytest.raises(GLib.Error):
        rt.call_blocking(broken)
    rt.shutdown(True, False)
    assert rec.seq() == 'queued started1 failed'
    failed = rec.snapshot()[-1]
    assert failed.error.matches(GLib.quark_from_string(APP_DOMAIN), 7)
    assert failed.error.message == 'disk on fire'
    assert failed.value >= 0


def test_python_exception_future(rt):
    """While the call can still be read (a future whose object is alive),
    retry and failed handlers, the runtime's and the task's own, get the
    Python exception the work raised: the very object the caller gets."""
    rec = Recorder(rt)
    calls = []
    connected = threading.Event()

    def flaky():
        connected.wait(DEADLINE)
        calls.append(1)
        raise ValueError('boom %d' % len(calls))

    task = rt.submit_call(flaky, dvt_options=Dvt.Options(retries=1, retry_backoff=0.001))
    own = []
    task.connect('failed', lambda t, error, elapsed: own.append(error))
    connected.set()
    with pytest.raises(ValueError) as info:
        task.result(DEADLINE)
    rt.shutdown(True, False)

    assert rec.seq() == 'queued started1 retry1 started2 failed'
    retry, failed = [e for e in rec.snapshot() if e.kind in ('retry', 'failed')]
    assert isinstance(retry.error, ValueError) and str(retry.error) == 'boom 1'
    assert failed.error is info.value
    assert str(failed.error) == 'boom 2'
    assert own == [info.value]


def test_python_exception_after_the_call_returned():
    """Once a blocking call has returned, the exception is gone from the
    library: a handler delivered later (here, the event context is
    iterated only then) gets the GLib.Error that stood for it, whose
    message names it."""
    context = GLib.MainContext.new()
    runtime = Dvt.Runtime(max_workers=2, event_context=context)
    try:
        rec = Recorder(runtime)

        def broken():
            raise ValueError('boom')

        with pytest.raises(ValueError):
            runtime.call_blocking(broken)
        run_loop_until(lambda: len(rec.terminals()) == 1, context)
        assert rec.seq() == 'queued started1 failed'
        error = rec.snapshot()[-1].error
        assert isinstance(error, GLib.Error)
        assert error.domain == 'dvt-python-exception-quark'
        assert 'ValueError: boom' in error.message
    finally:
        runtime.shutdown(True, False)
        while context.iteration(False):
            pass


def test_timeout_is_failed(rt, gate):
    rec = Recorder(rt)

    def hang():
        gate.wait(DEADLINE)

    with pytest.raises(GLib.Error) as info:
        rt.call_blocking(hang, dvt_options=Dvt.Options(timeout=0.1))
    assert is_io_error(info.value, Gio.IOErrorEnum.TIMED_OUT)
    gate.set()
    rt.shutdown(True, False)
    assert rec.seq() == 'queued started1 failed'
    failed = rec.snapshot()[-1]
    assert is_io_error(failed.error, Gio.IOErrorEnum.TIMED_OUT)
    assert failed.value >= 0.1 - 0.003


def test_cancel_queued_and_running():
    runtime = Dvt.Runtime.new(1)
    try:
        rec = Recorder(runtime)

        def until_cancelled(task, cancellable, data):
            data.set()
            while not cancellable.is_cancelled():
                time.sleep(0.001)
            task.return_value('late')  # dropped: the task has ended

        started = threading.Event()
        running = runtime.submit(until_cancelled, started)
        assert started.wait(DEADLINE)
        queued = runtime.submit_call(lambda: 1)
        queued.cancel()
        running.cancel()
        for task in (running, queued):
            task.wait(DEADLINE)
            with pytest.raises(GLib.Error) as info:
                task.propagate_value()
            assert is_io_error(info.value, Gio.IOErrorEnum.CANCELLED)
        runtime.shutdown(True, False)
        assert rec.seq(running.get_id()) == 'queued started1 cancelled'
        assert rec.seq(queued.get_id()) == 'queued cancelled'
    finally:
        runtime.shutdown(True, False)


def test_shutdown_cancel_pending(rt, gate):
    rec = Recorder(rt)
    tasks = [rt.submit_call(gate.wait, DEADLINE) for _ in range(5)]
    while rt.get_stats().running < 2:
        time.sleep(0.001)
    rt.shutdown(False, True)
    gate.set()
    rt.shutdown(True, False)
    # Final once the waiting shutdown returned.
    for task in tasks:
        assert rec.seq(task.get_id()) in ('queued started1 cancelled', 'queued cancelled')
        assert is_io_error(rec.terminals(task.get_id())[0].error, Gio.IOErrorEnum.CANCELLED)
    rec.assert_well_formed()


# ---- handlers ------------------------------------------------------------------

def test_handler_that_raises(rt, capfd):
    """A handler that raises affects neither the task nor the other
    handlers, nor later events."""
    calls = []

    def bad(runtime, task, elapsed):
        calls.append('bad')
        raise RuntimeError('handler failure')

    rt.connect('finished', bad)
    rec = Recorder(rt)
    assert rt.call_blocking(lambda: 'fine') == 'fine'
    assert rt.call_blocking(lambda: 'again') == 'again'
    task = rt.submit_call(lambda: 'future')
    assert task.result(DEADLINE) == 'future'
    rt.shutdown(True, False)

    assert calls == ['bad'] * 3
    assert len(rec.terminals()) == 3
    assert [e.kind for e in rec.terminals()] == ['finished'] * 3
    assert not task.had_error()
    rec.assert_well_formed()
    assert 'handler failure' in capfd.readouterr().err


def test_detail_scoping(rt):
    everything = Recorder(rt)
    only_a = Recorder(rt, detail='a', shared=everything)
    only_b = Recorder(rt, detail='b', shared=everything)
    only_c = Recorder(rt, detail='c', shared=everything)
    finished_a = []
    rt.connect('finished::a', lambda runtime, task, elapsed: finished_a.append(task.get_name()))

    rt.call_blocking(lambda: 1, dvt_options=named('a'))
    rt.call_blocking(lambda: 2, dvt_options=named('b'))
    rt.call_blocking(lambda: 3)
    rt.call_blocking(lambda: 4, dvt_options=named('a-b'))
    with pytest.raises(ZeroDivisionError):
        rt.call_blocking(lambda: 1 / 0, dvt_options=named('a'))
    rt.shutdown(True, False)

    assert len(everything.terminals()) == 5
    assert only_a.seq() == 'queued started1 finished queued started1 failed'
    assert {e.name for e in only_a.snapshot()} == {'a'}
    assert only_b.seq() == 'queued started1 finished'
    assert only_c.seq() == ''
    assert finished_a == ['a']
    assert everything.overlaps == 0


def test_task_own_signals(gate):
    runtime = Dvt.Runtime.new(1)
    try:
        loop = loop_thread_of(runtime)
        blocker = runtime.submit_call(gate.wait, DEADLINE)
        while runtime.get_stats().running < 1:
            time.sleep(0.001)
        future = runtime.submit_call(lambda: time.sleep(0.03) or 'done')
        other = runtime.submit_call(lambda: 'other')

        # Connected after submission, before it starts.
        own = Recorder(future, own=True)
        seen = []
        future.connect('finished', lambda task, elapsed: seen.append((task.get_id(), elapsed)))
        gate.set()
        assert future.result(DEADLINE) == 'done'
        assert other.result(DEADLINE) == 'other'
        blocker.result(DEADLINE)
        runtime.shutdown(True, False)

        assert own.seq() == 'started1 finished'
        assert {e.id for e in own.snapshot()} == {future.get_id()}
        threads = {e.thread for e in own.snapshot()}
        assert len(threads) == 1 and loop not in threads
        assert all(e.own for e in own.snapshot())
        (task_id, elapsed), = seen
        assert task_id == future.get_id()
        assert elapsed >= 0.03 - 0.003
    finally:
        runtime.shutdown(True, False)


def test_task_own_signals_retry(rt):
    """A future's own signals with retries: started per attempt, retry in
    between, with the error."""
    release = threading.Event()

    def flaky(task, cancellable, data):
        release.wait(DEADLINE)
        if task.get_attempt() < 2:
            raise GLib.Error('first', APP_DOMAIN, 1)
        task.return_value('second')

    task = rt.submit(flaky, None, Dvt.Options(retries=2, retry_backoff=0.001))
    own = Recorder(task, own=True)
    release.set()
    assert task.result(DEADLINE) == 'second'
    rt.shutdown(True, False)
    # Connected after submission: the first start may have come before.
    assert own.seq() in ('started1 retry1 started2 finished', 'retry1 started2 finished')
    retry, = [e for e in own.snapshot() if e.kind == 'retry']
    assert retry.error.message == 'first' and retry.attempt == 1


def test_event_context():
    """With an event context, handlers run where it is iterated (here, on
    this thread), and only then."""
    context = GLib.MainContext.new()
    runtime = Dvt.Runtime(max_workers=2, event_context=context)
    try:
        assert runtime.props.event_context == context
        rec = Recorder(runtime)
        for i in range(3):
            runtime.call_blocking(lambda: i)
        time.sleep(0.02)
        assert rec.snapshot() == []
        tasks = [runtime.submit_call(lambda x=x: x) for x in range(20)]
        for task in tasks:
            task.result(DEADLINE)
        run_loop_until(lambda: len(rec.terminals()) == 23, context)
        runtime.shutdown(True, False)
        while context.iteration(False):
            pass
        assert {e.thread for e in rec.snapshot()} == {threading.get_ident()}
        assert len(rec.snapshot()) == 23 * 3
        assert rec.overlaps == 0
        rec.assert_well_formed()
    finally:
        runtime.shutdown(True, False)
        while context.iteration(False):
            pass


def test_follow_up_work(rt):
    """A handler may submit more work: A's finished starts B, whose events
    arrive too."""
    followers = []

    def start_b(runtime, task, elapsed):
        followers.append(runtime.submit_call(lambda: 'b', dvt_options=named('b')))

    rt.connect('finished::a', start_b)
    rec_b = Recorder(rt, detail='b')
    assert rt.call_blocking(lambda: 'a', dvt_options=named('a')) == 'a'
    deadline = time.monotonic() + DEADLINE
    while not rec_b.terminals() and time.monotonic() < deadline:
        time.sleep(0.001)
    rt.shutdown(True, False)
    b, = followers
    assert b.result(DEADLINE) == 'b'
    assert rec_b.seq() == 'queued started1 finished'
    assert rec_b.ids_seen() == [b.get_id()]


# ---- nothing dropped -------------------------------------------------------------

def test_slow_handler_no_drops(gate):
    runtime = Dvt.Runtime.new(4)
    try:
        calls = []
        counter = {'inside': 0, 'overlaps': 0}
        lock = threading.Lock()

        def slow(rt, task, elapsed):
            with lock:
                counter['inside'] += 1
                counter['overlaps'] += counter['inside'] > 1
            time.sleep(0.1)
            with lock:
                calls.append(task.get_id())
                counter['inside'] -= 1

        runtime.connect('finished', slow)
        running = []

        def work():
            with lock:
                running.append(1)
            gate.wait(DEADLINE)

        tasks = [runtime.submit_call(work) for _ in range(4)]
        while len(running) < 4:
            time.sleep(0.001)
        gate.set()
        for task in tasks:
            task.result(DEADLINE)
        runtime.shutdown(True, False)
        assert sorted(calls) == sorted(t.get_id() for t in tasks)
        assert counter['overlaps'] == 0
    finally:
        runtime.shutdown(True, False)


def test_many_threads_no_drops():
    runtime = Dvt.Runtime.new(4)
    try:
        rec = Recorder(runtime)

        def submitter(n):
            for i in range(n):
                if i % 2:
                    runtime.call_blocking(lambda: i)
                else:
                    runtime.submit_call(lambda: i).result(DEADLINE)

        threads = [threading.Thread(target=submitter, args=(100,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        runtime.shutdown(True, False)
        assert len([e for e in rec.snapshot() if e.kind == 'finished']) == 400
        assert len(rec.ids_seen()) == 400
        assert len(rec.snapshot()) == 1200
        assert rec.overlaps == 0
        rec.assert_well_formed()
    finally:
        runtime.shutdown(True, False)


# ---- throttled, maps, unwatched tasks, trace -------------------------------------

def test_throttled(rt):
    rec = Recorder(rt)
    rt.set_rate_limit(20, 1)
    tasks = [rt.submit_call(lambda: 1) for _ in range(3)]
    for task in tasks:
        task.result(DEADLINE)
    rt.shutdown(True, False)
    assert rec.seq(tasks[0].get_id()) == 'queued started1 finished'
    for n, task in enumerate(tasks[1:], start=1):
        assert rec.seq(task.get_id()) == 'queued throttled started1 finished'
        throttled, = [e for e in rec.snapshot(task.get_id()) if e.kind == 'throttled']
        assert 0 < throttled.value <= n * 0.05 + 0.003
    assert rt.get_stats().throttled == 2


def test_map_is_one_task(rt):
    rec = Recorder(rt)
    assert rt.map_blocking(lambda x: x * 2, range(30),
                           options=named('batch')) == [x * 2 for x in range(30)]
    rt.shutdown(True, False)
    assert rec.seq() == 'queued started1 finished'
    assert {e.name for e in rec.snapshot()} == {'batch'}


def test_not_watched_before_connect(gate):
    runtime = Dvt.Runtime.new(1)
    try:
        early = runtime.submit_call(gate.wait, DEADLINE)
        queued_early = runtime.submit_call(lambda: 'early')
        rec = Recorder(runtime)
        late = runtime.submit_call(lambda: 'late')
        gate.set()
        for task in (early, queued_early, late):
            task.result(DEADLINE)
        runtime.shutdown(True, False)
        assert rec.ids_seen() == [late.get_id()]
        assert rec.seq() == 'queued started1 finished'
    finally:
        runtime.shutdown(True, False)


def test_trace_property():
    runtime = Dvt.Runtime(max_workers=1, trace=True)
    try:
        assert runtime.props.trace
        runtime.props.trace = False
        assert not runtime.props.trace
    finally:
        runtime.shutdown(True, False)
