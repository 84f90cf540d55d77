# test_policy.py: timeouts, retries, the rate limit and cancellation, from
# Python
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Both call forms: the raw introspected ones (work(task, cancellable,
# user_data) with Dvt.Options) and the override's plain-function forms
# (call_blocking, submit_call, map_blocking(fn, items)), which take their
# timeout and retries from the runtime's properties. Work that has to hang
# waits on a threading.Event that the test sets before it ends, so that no
# worker is left blocked when the runtime shuts down.

import math
import threading
import time

import pytest

from dvthelpers import DEADLINE, Dvt, GLib, main_loop_run
from gi.repository import Gio

# A timeout long enough for the work to have started before it passes.
SHORT = 0.3
# Timers count in whole milliseconds.
TOL = 0.003


def eventually(predicate, timeout=DEADLINE):
    """The runtime cancels the cancellable of a task it ends before or
    after it releases the task's waiters: a released caller waits for
    the cancellation with this."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.001)
    return True


def is_timed_out(error):
    return isinstance(error, GLib.Error) and error.matches(
        Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)


def is_cancelled(error):
    return isinstance(error, GLib.Error) and error.matches(
        Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)


class Hang:
    """Blocking work that ignores cancellation until released; remembers
    the cancellable it was given."""

    def __init__(self):
        self.release = threading.Event()
        self.started = threading.Event()   # the work, or an async function, began
        self.running = threading.Event()   # a blocking function began
        self.finished = threading.Event()  # and returned
        self.cancellables = []
        self.saw_cancelled = []

    def work(self, task, cancellable, user_data):
        self.cancellables.append(cancellable)
        self.running.set()
        self.started.set()
        try:
            self.release.wait(DEADLINE)
            self.saw_cancelled.append(cancellable is not None and cancellable.is_cancelled())
            task.return_value('late')
        finally:
            self.finished.set()

    def plain(self, *args):
        self.running.set()
        self.started.set()
        try:
            self.release.wait(DEADLINE)
            return 'late'
        finally:
            self.finished.set()

    def finish(self):
        self.release.set()
        if self.running.is_set():
            assert self.finished.wait(DEADLINE)


@pytest.fixture
def hang():
    h = Hang()
    yield h
    h.release.set()


def elapsed_since(start):
    return time.monotonic() - start


# ---- timeouts: raw forms -----------------------------------------------------

def test_timeout_to_thread_blocking(rt, hang):
    start = time.monotonic()
    with pytest.raises(GLib.Error) as info:
        rt.to_thread_blocking(hang.work, None, Dvt.Options(timeout=SHORT), None)
    assert is_timed_out(info.value)
    assert SHORT - TOL <= elapsed_since(start) < SHORT + DEADLINE / 4
    # Released while the work still runs; it was given a cancellable, and
    # the timeout cancelled it: before or after releasing the caller, so
    # the work looks once it is cancelled.
    assert not hang.finished.is_set()
    assert hang.running.wait(DEADLINE)
    cancellable, = hang.cancellables
    assert cancellable is not None and eventually(cancellable.is_cancelled)
    hang.finish()
    assert hang.saw_cancelled == [True]
    assert rt.get_stats().timed_out == 1
    assert rt.get_stats().error == 1


def test_timeout_run_blocking(rt):
    kept = []

    def never(task, cancellable, user_data):
        kept.append((task, cancellable))  # completes "later": never

    with pytest.raises(GLib.Error) as info:
        rt.run_blocking(never, None, Dvt.Options(timeout=SHORT), None)
    assert is_timed_out(info.value)
    (task, cancellable), = kept
    assert cancellable is not None and eventually(cancellable.is_cancelled)
    assert task.get_completed()
    # Completing it late is harmless.
    task.return_value('too late')
    kept.clear()


def test_timeout_submit_and_schedule(rt, hang):
    kept = []

    def never(task, cancellable, user_data):
        kept.append(task)

    for task in (rt.submit(hang.work, None, Dvt.Options(timeout=SHORT), None),
                 rt.schedule(never, None, Dvt.Options(timeout=SHORT), None)):
        assert task.wait(DEADLINE)
        with pytest.raises(GLib.Error) as info:
            task.propagate_value()
        assert is_timed_out(info.value)
        with pytest.raises(GLib.Error) as info:
            task.result(DEADLINE)
        assert is_timed_out(info.value)
        assert eventually(task.get_cancellable().is_cancelled)
    kept.clear()
    hang.finish()
    assert rt.get_stats().timed_out == 2


def test_timeout_to_thread_async(rt, hang):
    outcome = []

    def done(runtime, result, loop):
        try:
            outcome.append(runtime.to_thread_finish(result))
        except GLib.Error as error:
            outcome.append(error)
        loop.quit()

    main_loop_run(lambda loop: rt.to_thread_async(hang.work, None, Dvt.Options(timeout=SHORT),
                                                  None, done, loop))
    assert len(outcome) == 1 and is_timed_out(outcome[0])
    hang.finish()


def test_timeout_option_zero_disables_runtime_timeout(hang):
    runtime = Dvt.Runtime(max_workers=2, timeout=0.05)
    try:
        def slow(task, cancellable, user_data):
            time.sleep(0.2)
            task.return_value('done')

        assert runtime.props.timeout == 0.05
        assert runtime.to_thread_blocking(slow, None, Dvt.Options(timeout=0), None) == 'done'
        assert runtime.to_thread_blocking(slow, None, Dvt.Options(timeout=60), None) == 'done'
        with pytest.raises(GLib.Error) as info:
            runtime.to_thread_blocking(hang.work, None, None, None)
        assert is_timed_out(info.value)
        hang.finish()
    finally:
        runtime.shutdown(True, False)


# ---- timeouts: plain functions and the runtime's properties -------------------

def test_runtime_timeout_plain_forms(hang):
    runtime = Dvt.Runtime(max_workers=2, timeout=SHORT)
    try:
        with pytest.raises(GLib.Error) as info:
            runtime.call_blocking(hang.plain)
        assert is_timed_out(info.value)

        with pytest.raises(GLib.Error) as info:
            runtime.submit_call(hang.plain).result(DEADLINE)
        assert is_timed_out(info.value)
        # (Both workers are still busy with work that ignores the timeout:
        # let it return, or the next calls would time out in the queue.)
        hang.finish()
        assert runtime.get_stats().timed_out == 2
        hang = Hang()

        # Each item within the timeout; all of them together well beyond
        # it: the runtime's timeout never caps the whole map.
        def item(x):
            time.sleep(0.05)
            return x * 2

        start = time.monotonic()
        assert runtime.map_blocking(item, range(12), options=Dvt.Options(max_concurrency=1)) \
            == [x * 2 for x in range(12)]
        assert elapsed_since(start) > SHORT

        # An item that hangs times out on its own.
        results = runtime.map_blocking(lambda x: hang.plain() if x == 2 else x, range(4),
                                       options=Dvt.Options(return_errors=True))
        assert results[:2] == [0, 1] and results[3] == 3
        assert is_timed_out(results[2])
        hang.finish()
        # Map items are not counted as tasks.
        assert runtime.get_stats().timed_out == 2
    finally:
        hang.release.set()
        runtime.shutdown(True, False)


def test_plain_forms_per_call_options_and_cancellable(rt, hang):
    # Timeout for one call.
    with pytest.raises(GLib.Error) as info:
        rt.call_blocking(hang.plain, dvt_options=Dvt.Options(timeout=SHORT))
    assert is_timed_out(info.value)
    hang.finish()

    # Retries for one call; keyword arguments still reach the function.
    flaky = Flaky(fail_times=2)
    assert rt.call_blocking(lambda *, key: flaky.plain() + key, key='!',
                            dvt_options=Dvt.Options(retries=2, retry_backoff=0.001)) \
        == 'ok after 2!'
    flaky = Flaky(fail_times=1)
    task = rt.submit_call(flaky.plain, dvt_options=Dvt.Options(retries=1, retry_backoff=0.001))
    assert task.result(DEADLINE) == 'ok after 1'
    assert task.get_attempt() == 2

    # A cancellable for one call: cancelled before, the function never runs.
    cancelled = Gio.Cancellable()
    cancelled.cancel()
    ran = []
    with pytest.raises(GLib.Error) as info:
        rt.call_blocking(ran.append, 1, dvt_cancellable=cancelled)
    assert is_cancelled(info.value)
    with pytest.raises(GLib.Error) as info:
        rt.submit_call(ran.append, 2, dvt_cancellable=cancelled).result(DEADLINE)
    assert is_cancelled(info.value)
    rt.shutdown(True, False)
    assert ran == []


def test_map_deadline_plain_form(rt):
    def item(x):
        if x == 0:
            return 'fast'
        # Plain functions do not see a cancellable: wait a bounded time.
        time.sleep(2.0)
        return x

    start = time.monotonic()
    with pytest.raises(GLib.Error) as info:
        rt.map_blocking(item, range(4), options=Dvt.Options(deadline=SHORT, max_concurrency=2))
    assert is_timed_out(info.value)
    # Released at the deadline, not when the items return.
    assert elapsed_since(start) < 1.5
    # Fast items never trip a deadline.
    assert rt.map_blocking(lambda x: x + 1, range(200),
                           options=Dvt.Options(deadline=DEADLINE)) == list(range(1, 201))


def test_map_deadline_cancels_items_raw(rt):
    seen = []

    def item(task, cancellable, user_data):
        deadline = time.monotonic() + DEADLINE
        while not cancellable.is_cancelled() and time.monotonic() < deadline:
            time.sleep(0.001)
        seen.append(cancellable.is_cancelled())
        task.return_value(None)

    with pytest.raises(GLib.Error) as info:
        rt.map_blocking(4, item, None, Dvt.Options(deadline=SHORT, max_concurrency=2), None)
    assert is_timed_out(info.value)
    rt.shutdown(True, False)
    assert seen and all(seen)
    assert len(seen) <= 2


def test_gather_deadline(rt, hang):
    fast = rt.submit_call(lambda: 'fast')
    slow = rt.submit(hang.work)
    assert hang.started.wait(DEADLINE)
    with pytest.raises(GLib.Error) as info:
        rt.gather_blocking([fast, slow], options=Dvt.Options(deadline=SHORT))
    assert is_timed_out(info.value)
    assert fast.result() == 'fast'
    with pytest.raises(GLib.Error) as info:
        slow.result()
    assert is_cancelled(info.value)
    assert eventually(slow.get_cancellable().is_cancelled)
    hang.finish()


# ---- retries ----------------------------------------------------------------------

class Flaky:
    """Raises a new exception object on each failing attempt."""

    def __init__(self, fail_times, exc_type=ValueError):
        self.fail_times = fail_times
        self.exc_type = exc_type
        self.raised = []
        self.attempts = []

    def work(self, task, cancellable, user_data):
        self.attempts.append(task.get_attempt())
        self.fail_or_return(task.return_value)

    def plain(self, *args):
        self.attempts.append(len(self.attempts) + 1)
        return self.fail_or_return(lambda value: value)

    def fail_or_return(self, give):
        if len(self.raised) < self.fail_times:
            exc = self.exc_type('attempt %d' % (len(self.raised) + 1))
            self.raised.append(exc)
            raise exc
        return give('ok after %d' % len(self.raised))


def test_retries_last_exception_reaches_caller(rt):
    flaky = Flaky(fail_times=10)
    options = Dvt.Options(retries=2, retry_backoff=0.001)
    with pytest.raises(ValueError) as info:
        rt.to_thread_blocking(flaky.work, None, options, None)
    assert flaky.attempts == [1, 2, 3]
    assert len(flaky.raised) == 3
    assert info.value is flaky.raised[-1]
    assert str(info.value) == 'attempt 3'
    stats = rt.get_stats()
    assert (stats.retries, stats.started, stats.error) == (2, 3, 1)


def test_retries_success_after_failures(rt):
    flaky = Flaky(fail_times=2)
    task = rt.submit(flaky.work, None, Dvt.Options(retries=5, retry_backoff=0.001), None)
    assert task.result(DEADLINE) == 'ok after 2'
    assert task.get_attempt() == 3
    assert flaky.attempts == [1, 2, 3]


def test_retries_glib_error_unchanged(rt):
    attempts = []

    def work(task, cancellable, user_data):
        attempts.append(task.get_attempt())
        raise GLib.Error('refused on attempt %d' % task.get_attempt(), 'my-app-error-quark',
                         100 + task.get_attempt())

    with pytest.raises(GLib.Error) as info:
        rt.run_blocking(work, None, Dvt.Options(retries=3, retry_backoff=0.001), None)
    assert (info.value.domain, info.value.code, info.value.message) == (
        'my-app-error-quark', 104, 'refused on attempt 4')
    assert attempts == [1, 2, 3, 4]


def test_retries_plain_forms_runtime_default():
    runtime = Dvt.Runtime(max_workers=2, retries=2, retry_backoff=0.001)
    try:
        assert runtime.props.retries == 2
        flaky = Flaky(fail_times=2)
        assert runtime.call_blocking(flaky.plain) == 'ok after 2'
        assert len(flaky.attempts) == 3

        flaky = Flaky(fail_times=2, exc_type=KeyError)
        assert runtime.submit_call(flaky.plain).result(DEADLINE) == 'ok after 2'

        always = Flaky(fail_times=100, exc_type=OSError)
        with pytest.raises(OSError) as info:
            runtime.call_blocking(always.plain)
        assert info.value is always.raised[-1]
        assert len(always.raised) == 3

        # Map items are retried one by one.
        failed = {}
        lock = threading.Lock()

        def item(x):
            with lock:
                failed[x] = failed.get(x, 0) + 1
                first = failed[x] == 1
            if first:
                raise RuntimeError('item %d failed once' % x)
            return x * x

        assert runtime.map_blocking(item, range(10)) == [x * x for x in range(10)]
        assert failed == {x: 2 for x in range(10)}
    finally:
        runtime.shutdown(True, False)


def test_retry_filter_lambda(rt):
    asked = []
    options = Dvt.Options(retries=10, retry_backoff=0.001)
    options.set_retry_filter(lambda task, error: asked.append(task.get_attempt())
                             or error.code == 1)

    codes = iter([1, 1, 2, 1])

    def work(task, cancellable, user_data):
        raise GLib.Error('code', 'my-app-error-quark', next(codes))

    with pytest.raises(GLib.Error) as info:
        rt.to_thread_blocking(work, None, options, None)
    assert info.value.code == 2
    assert asked == [1, 2, 3]


def test_retry_filter_sees_python_exception(rt):
    # A filter written in Python decides on the exception the work raised,
    # as the caller would see it.
    seen = []

    def transient_only(task, error):
        seen.append(error)
        return isinstance(error, ConnectionError)

    options = Dvt.Options(retries=5, retry_backoff=0.001)
    options.set_retry_filter(transient_only)
    raised = iter([ConnectionResetError('reset'), ConnectionRefusedError('refused'),
                   PermissionError('denied'), ConnectionError('never')])

    def work(task, cancellable, user_data):
        raise next(raised)

    with pytest.raises(PermissionError):
        rt.to_thread_blocking(work, None, options, None)
    assert [type(e) for e in seen] == [ConnectionResetError, ConnectionRefusedError,
                                       PermissionError]


def test_retry_default_filter_skips_cancelled_and_timed_out(rt):
    for code in (Gio.IOErrorEnum.CANCELLED, Gio.IOErrorEnum.TIMED_OUT):
        attempts = []

        def work(task, cancellable, user_data):
            attempts.append(task.get_attempt())
            raise GLib.Error('own', 'g-io-error-quark', int(code))

        with pytest.raises(GLib.Error) as info:
            rt.to_thread_blocking(work, None, Dvt.Options(retries=3, retry_backoff=0.001), None)
        assert info.value.code == int(code) and info.value.message == 'own'
        assert attempts == [1]


def test_retry_async_func_from_callback(rt):
    attempts = []

    def work(task, cancellable, user_data):
        attempts.append(task.get_attempt())

        def later():
            if task.get_attempt() < 3:
                task.return_error(ValueError('attempt %d' % task.get_attempt()))
            else:
                task.return_value('third time')
            return GLib.SOURCE_REMOVE

        source = GLib.idle_source_new()
        source.set_callback(lambda *args: later())
        source.attach(GLib.MainContext.get_thread_default())

    options = Dvt.Options(retries=3, retry_backoff=0.001)
    assert rt.run_blocking(work, None, options, None) == 'third time'
    assert attempts == [1, 2, 3]
    attempts.clear()
    options.props.retries = 1
    with pytest.raises(ValueError, match='attempt 2'):
        rt.schedule(work, None, options, None).result(DEADLINE)
    assert attempts == [1, 2]


def test_retry_backoff_and_cancel_during_it(rt):
    starts = []

    def work(task, cancellable, user_data):
        starts.append(time.monotonic())
        raise ValueError('fails')

    options = Dvt.Options(retries=2, retry_backoff=0.05, retry_max_delay=60)
    with pytest.raises(ValueError):
        rt.to_thread_blocking(work, None, options, None)
    assert len(starts) == 3
    assert starts[1] - starts[0] >= 0.05 - TOL
    assert starts[2] - starts[1] >= 0.10 - TOL

    # A long back-off, cancelled: the call ends at once, no attempt
    # follows.
    starts.clear()
    cancellable = Gio.Cancellable()
    threading.Timer(0.05, cancellable.cancel).start()
    start = time.monotonic()
    with pytest.raises(GLib.Error) as info:
        rt.to_thread_blocking(work, None, Dvt.Options(retries=3, retry_backoff=60), cancellable)
    assert is_cancelled(info.value)
    assert elapsed_since(start) < DEADLINE / 4
    time.sleep(0.05)
    assert len(starts) == 1


def test_retry_timeout_during_backoff(rt):
    calls = []

    def fails(task, cancellable, user_data):
        calls.append(1)
        raise ValueError('fails')

    start = time.monotonic()
    with pytest.raises(GLib.Error) as info:
        rt.to_thread_blocking(fails, None, Dvt.Options(retries=3, retry_backoff=60,
                                                       timeout=SHORT), None)
    assert is_timed_out(info.value)
    assert elapsed_since(start) < DEADLINE / 4
    assert calls == [1]


# ---- cancellation -----------------------------------------------------------------

ENTRY_POINTS = ['run_blocking', 'to_thread_blocking', 'to_thread_async', 'submit',
                'schedule', 'map_blocking', 'map_items', 'gather']


def run_entry(rt, entry, cancellable, hang, kept):
    """Calls @entry with @cancellable; returns the error it ended with."""
    def keep(task, c, user_data):
        kept.append((task, c))
        hang.started.set()

    try:
        if entry == 'run_blocking':
            rt.run_blocking(keep, cancellable=cancellable)
        elif entry == 'to_thread_blocking':
            rt.to_thread_blocking(hang.work, cancellable=cancellable)
        elif entry == 'to_thread_async':
            outcome = []

            def done(runtime, result, loop):
                try:
                    outcome.append(runtime.to_thread_finish(result))
                except GLib.Error as error:
                    outcome.append(error)
                loop.quit()

            main_loop_run(lambda loop: rt.to_thread_async(hang.work, cancellable=cancellable,
                                                          callback=done, user_data=loop))
            return outcome[0]
        elif entry in ('submit', 'schedule'):
            func = hang.work if entry == 'submit' else keep
            task = getattr(rt, entry)(func, cancellable=cancellable)
            assert task.wait(DEADLINE)
            assert eventually(task.get_cancellable().is_cancelled)
            task.propagate_value()
        elif entry == 'map_blocking':
            rt.map_blocking(6, hang.work, cancellable=cancellable)
        elif entry == 'map_items':
            rt.map_blocking(hang.plain, range(6), None, cancellable)
        elif entry == 'gather':
            tasks = [rt.submit(hang.work) for _ in range(3)]
            try:
                rt.gather_blocking(tasks, cancellable=cancellable)
            finally:
                for task in tasks:
                    assert task.get_completed()
                    assert eventually(task.get_cancellable().is_cancelled)
    except GLib.Error as error:
        return error
    raise AssertionError('%s was not cancelled' % entry)


@pytest.mark.parametrize('entry', ENTRY_POINTS)
def test_cancellable_before(rt, hang, entry):
    cancellable = Gio.Cancellable()
    cancellable.cancel()
    kept = []
    error = run_entry(rt, entry, cancellable, hang, kept)
    assert is_cancelled(error)
    if entry != 'gather':  # its tasks were submitted before it
        assert not hang.started.is_set()
    kept.clear()
    hang.finish()


@pytest.mark.parametrize('entry', ENTRY_POINTS)
def test_cancellable_mid_run(rt, hang, entry):
    cancellable = Gio.Cancellable()
    kept = []

    def cancel_once_started():
        if hang.started.wait(DEADLINE):
            time.sleep(0.01)
        cancellable.cancel()

    canceller = threading.Thread(target=cancel_once_started)
    canceller.start()
    start = time.monotonic()
    error = run_entry(rt, entry, cancellable, hang, kept)
    canceller.join(DEADLINE)
    assert is_cancelled(error)
    assert elapsed_since(start) < DEADLINE / 4
    # Released without waiting for the work, which ignores cancellation.
    assert hang.started.is_set()
    if hang.running.is_set():
        assert not hang.finished.is_set()
    for task, c in kept:
        assert c is not None and eventually(c.is_cancelled)
    kept.clear()
    hang.finish()
    if hang.saw_cancelled:
        rt.shutdown(True, False)
        assert all(hang.saw_cancelled)


def test_cancel_queued_never_runs(hang):
    runtime = Dvt.Runtime.new(1)
    try:
        blocker = runtime.submit(hang.work)
        assert hang.started.wait(DEADLINE)
        ran = []
        cancellable = Gio.Cancellable()
        by_cancellable = runtime.submit(lambda t, c, d: ran.append(1) or t.return_value(1),
                                        cancellable=cancellable)
        by_task = runtime.submit_call(ran.append, 2)
        cancellable.cancel()
        by_task.cancel()
        for task in (by_cancellable, by_task):
            assert task.get_completed()
            with pytest.raises(GLib.Error) as info:
                task.result()
            assert is_cancelled(info.value)
        hang.finish()
        assert blocker.result(DEADLINE) == 'late'
        runtime.shutdown(True, False)
        assert ran == []
    finally:
        hang.release.set()
        runtime.shutdown(True, False)


def test_submit_call_cancel_running(rt, hang):
    task = rt.submit_call(hang.plain)
    assert hang.started.wait(DEADLINE)
    start = time.monotonic()
    task.cancel()
    with pytest.raises(GLib.Error) as info:
        task.result(DEADLINE)
    assert is_cancelled(info.value)
    assert elapsed_since(start) < DEADLINE / 4
    assert not hang.finished.is_set()
    hang.finish()


# ---- the rate limit ----------------------------------------------------------------

@pytest.mark.parametrize('rate', [0, -1, -0.5, math.nan, math.inf, 2e9])
def test_rate_limit_refused(rt, rate):
    with pytest.raises(GLib.Error) as info:
        rt.set_rate_limit(rate, 0)
    assert info.value.matches(Dvt.error_quark(), Dvt.Error.INVALID_ARGUMENT)
    assert 'rate limit' in info.value.message
    assert rt.props.rate_limit == 0


def test_rate_limit_spacing_and_clear():
    runtime = Dvt.Runtime.new(8)
    try:
        assert runtime.set_rate_limit(10, 2)
        assert (runtime.props.rate_limit, runtime.props.rate_limit_burst) == (10, 2)
        t0 = time.monotonic()
        tasks = [runtime.submit_call(time.monotonic) for _ in range(5)]
        starts = sorted(task.result(DEADLINE) for task in tasks)
        for k in range(2, 5):
            assert starts[k] - t0 >= (k - 1) * 0.1 - TOL
        assert runtime.get_stats().throttled == 3

        runtime.clear_rate_limit()
        assert runtime.props.rate_limit == 0
        assert runtime.map_blocking(lambda x: x, range(20)) == list(range(20))
        assert runtime.get_stats().throttled == 3
    finally:
        runtime.shutdown(True, False)


def test_rate_limit_properties_and_burst_default():
    runtime = Dvt.Runtime(max_workers=8, rate_limit=4.0)
    try:
        assert runtime.props.rate_limit == 4.0
        assert runtime.props.rate_limit_burst == 0
        # Burst max(1, 4) = 4: four start at once, the fifth is held back.
        tasks = [runtime.submit_call(lambda: None) for _ in range(4)]
        assert runtime.get_stats().throttled == 0
        tasks.append(runtime.submit_call(lambda: None))
        assert runtime.get_stats().throttled == 1
        for task in tasks:
            task.result(DEADLINE)
    finally:
        runtime.shutdown(True, False)


# ---- the default runtime -------------------------------------------------------------

@pytest.fixture
def default_rt():
    runtime = Dvt.Runtime.get_default()
    saved = {name: runtime.get_property(name)
             for name in ('timeout', 'retries', 'retry-backoff')}
    yield runtime
    for name, value in saved.items():
        runtime.set_property(name, value)


def test_default_runtime_timeout_and_retries(default_rt, hang):
    default_rt.props.retries = 2
    default_rt.props.retry_backoff = 0.001
    flaky = Flaky(fail_times=2)
    assert default_rt.call_blocking(flaky.plain) == 'ok after 2'
    assert len(flaky.attempts) == 3

    default_rt.props.retries = 0
    default_rt.props.timeout = SHORT
    with pytest.raises(GLib.Error) as info:
        Dvt.Runtime.get_default().call_blocking(hang.plain)
    assert is_timed_out(info.value)
    hang.finish()

    # The options of one call win over the default runtime's.
    default_rt.props.timeout = 0
    kept = []
    with pytest.raises(GLib.Error) as info:
        default_rt.run_blocking(lambda task, c, d: kept.append(task), None,
                                Dvt.Options(timeout=SHORT), None)
    assert is_timed_out(info.value)
    assert eventually(kept[0].get_cancellable().is_cancelled)
    kept.clear()
