# test_queue.py: Dvt.Queue from Python threads and from a GLib main loop
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import gc
import threading
import weakref

import pytest

from dvthelpers import DEADLINE, Dvt, GLib, main_loop_run, wait_for
from gi.repository import Gio, GObject


def assert_error(excinfo, domain, code):
    error = excinfo.value
    assert isinstance(error, GLib.Error)
    assert error.matches(domain, code), (error.domain, error.code, error.message)


DVT_ERROR = Dvt.error_quark()
IO_ERROR = Gio.io_error_quark()


# ---- from plain threads ---------------------------------------------------------

def test_producer_consumer_threads():
    q = Dvt.Queue(max_size=8)
    n = 2000
    got = []

    def produce(start):
        for i in range(start, n, 2):
            q.put(i)

    def consume():
        for item in q:
            got.append(item)

    producers = [threading.Thread(target=produce, args=(s,)) for s in (0, 1)]
    consumers = [threading.Thread(target=consume) for _ in range(2)]
    for t in producers + consumers:
        t.start()
    for t in producers:
        t.join(DEADLINE)
    q.close()
    for t in consumers:
        t.join(DEADLINE)
        assert not t.is_alive()
    assert sorted(got) == list(range(n))


def test_blocking_timeout():
    q = Dvt.Queue(max_size=1)
    with pytest.raises(GLib.Error) as excinfo:
        q.get(timeout=0.01)
    assert_error(excinfo, IO_ERROR, Gio.IOErrorEnum.TIMED_OUT)
    q.put('a')
    with pytest.raises(GLib.Error) as excinfo:
        q.put('b', timeout=0.01)
    assert_error(excinfo, IO_ERROR, Gio.IOErrorEnum.TIMED_OUT)
    assert q.get(timeout=1) == 'a'
    with pytest.raises(ValueError):
        q.get(timeout=-1)


def test_try_errors():
    q = Dvt.Queue(max_size=1)
    with pytest.raises(GLib.Error) as excinfo:
        q.get_nowait()
    assert_error(excinfo, DVT_ERROR, Dvt.Error.EMPTY)
    q.put_nowait(1)
    assert q.full() and not q.empty() and q.qsize() == 1
    with pytest.raises(GLib.Error) as excinfo:
        q.put(2, block=False)
    assert_error(excinfo, DVT_ERROR, Dvt.Error.FULL)
    # The raw calls, as introspected.
    with pytest.raises(GLib.Error) as excinfo:
        q.try_push(3, 0)
    assert_error(excinfo, DVT_ERROR, Dvt.Error.FULL)
    assert q.try_pop() == 1


def test_close_wakes_blocked_threads_and_drains():
    q = Dvt.Queue()
    errors = []

    def blocked_get():
        try:
            q.get()
        except GLib.Error as error:
            errors.append(error)

    threads = [threading.Thread(target=blocked_get) for _ in range(3)]
    for t in threads:
        t.start()
    wait_for(lambda: q.get_n_waiting_poppers() == 3)
    q.close()
    for t in threads:
        t.join(DEADLINE)
    assert len(errors) == 3
    assert all(e.matches(DVT_ERROR, Dvt.Error.CLOSED) for e in errors)

    q2 = Dvt.Queue()
    with q2:
        q2.put('left')
    assert q2.props.closed
    with pytest.raises(GLib.Error) as excinfo:
        q2.put('more')
    assert_error(excinfo, DVT_ERROR, Dvt.Error.CLOSED)
    assert list(q2) == ['left']
    with pytest.raises(GLib.Error) as excinfo:
        q2.get()
    assert_error(excinfo, DVT_ERROR, Dvt.Error.CLOSED)


def test_cancel_blocked_get():
    q = Dvt.Queue()
    cancellable = Gio.Cancellable()
    errors = []

    def blocked_get():
        try:
            q.get(cancellable=cancellable)
        except GLib.Error as error:
            errors.append(error)

    t = threading.Thread(target=blocked_get)
    t.start()
    wait_for(lambda: q.get_n_waiting_poppers() == 1)
    cancellable.cancel()
    t.join(DEADLINE)
    assert errors[0].matches(IO_ERROR, Gio.IOErrorEnum.CANCELLED)
    q.put('still here')
    assert q.get() == 'still here'


# ---- values -----------------------------------------------------------------------

class Thing:
    pass


@pytest.mark.parametrize('value', [None, 0, -5, 2 ** 40, 2 ** 70, 1.5, True, 'text',
                                   b'bytes', (1, 'two'), {'a': [1]}])
def test_any_python_value(value):
    q = Dvt.Queue()
    q.put(value)
    got = q.get()
    assert got == value and type(got) is type(value)


def test_objects_keep_their_identity():
    q = Dvt.Queue()
    things = [Thing(), [1, 2], ValueError('x')]
    for thing in things:
        q.put(thing)
    assert all(q.get() is thing for thing in things)


def test_gvalues_pass_through():
    q = Dvt.Queue()
    v = GObject.Value(GObject.TYPE_UINT64, 7)
    q.push_blocking(v)
    assert q.pop_blocking() == 7


def test_priority_order():
    q = Dvt.Queue(order=Dvt.QueueOrder.PRIORITY)
    for i, priority in enumerate([3, 1, 2, 1, 3, 0]):
        q.put((priority, i), priority=priority)
    assert [q.get() for _ in range(6)] == [(0, 5), (1, 1), (1, 3), (2, 2), (3, 0), (3, 4)]

    lifo = Dvt.Queue.new(Dvt.QueueOrder.LIFO, 0)
    for i in range(3):
        lifo.put(i)
    assert [lifo.get() for _ in range(3)] == [2, 1, 0]


def test_items_left_are_released():
    q = Dvt.Queue()
    thing = Thing()
    ref = weakref.ref(thing)
    q.put(thing)
    del thing
    gc.collect()
    assert ref() is not None
    del q
    gc.collect()
    assert ref() is None


# ---- from a GLib main loop ----------------------------------------------------------

def test_pop_async_on_main_loop_from_threads():
    q = Dvt.Queue(max_size=4)
    n = 200
    got = []
    main_thread = threading.current_thread()

    def on_item(queue, result, loop):
        assert threading.current_thread() is main_thread
        try:
            got.append(queue.pop_finish(result))
        except GLib.Error as error:
            assert error.matches(DVT_ERROR, Dvt.Error.CLOSED)
            loop.quit()
            return
        queue.pop_async(None, on_item, loop)

    def produce():
        for i in range(n):
            q.put(i)
        q.close()

    producer = threading.Thread(target=produce)

    def start(loop):
        q.pop_async(None, on_item, loop)
        producer.start()

    main_loop_run(start)
    producer.join(DEADLINE)
    assert got == list(range(n))


def test_push_async_waits_for_room():
    q = Dvt.Queue(max_size=1)
    q.put('first')
    events = []

    def on_pushed(queue, result, loop):
        events.append(('pushed', queue.push_finish(result)))
        loop.quit()

    getter = threading.Thread(target=lambda: events.append(('got', q.get())))

    def start(loop):
        q.push_async({'second': 2}, 0, None, on_pushed, loop)
        events.append(('waiting', q.get_n_waiting_pushers()))
        getter.start()

    main_loop_run(start)
    getter.join(DEADLINE)
    assert events[0] == ('waiting', 1)
    assert ('got', 'first') in events and ('pushed', True) in events
    assert q.get() == {'second': 2}


def test_pop_async_cancelled_leaves_item():
    q = Dvt.Queue()
    cancellable = Gio.Cancellable()
    outcome = []

    def on_item(queue, result, loop):
        try:
            outcome.append(queue.pop_finish(result))
        except GLib.Error as error:
            outcome.append(error)
        loop.quit()

    def start(loop):
        q.pop_async(cancellable, on_item, loop)
        cancellable.cancel()
        q.put('kept')

    main_loop_run(start)
    assert outcome[0].matches(IO_ERROR, Gio.IOErrorEnum.CANCELLED)
    assert q.get_nowait() == 'kept'
