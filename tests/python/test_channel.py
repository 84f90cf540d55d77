# test_channel.py: Runtime.produce() (Dvt.Channel) and Runtime.batcher()
# (Dvt.Batcher) from Python threads, and the channel's async face on a
# GLib main loop
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import threading

import pytest

from dvthelpers import DEADLINE, Dvt, GLib, main_loop_run, wait_for
from gi.repository import Gio

DVT_ERROR = Dvt.error_quark()
IO_ERROR = Gio.io_error_quark()


# ---- channels --------------------------------------------------------------------

def test_generator_values_in_order(rt):
    def numbers(n, step=1):
        for i in range(0, n, step):
            yield i

    assert list(rt.produce(numbers, 100, step=2)) == list(range(0, 100, 2))


def test_any_object_crosses(rt):
    items = [None, 2 ** 70, 'text', {'a': [1, 2]}, (1, 2), -5, 3.5]
    assert list(rt.produce(lambda: iter(items))) == items
    assert list(rt.produce(items)) == items


def test_exception_after_last_value(rt, no_leaked_exceptions):
    class Broken(Exception):
        pass

    def gen():
        yield 1
        yield 2
        raise Broken('producer broke')

    got = []
    with pytest.raises(Broken, match='producer broke') as excinfo:
        for x in rt.produce(gen, capacity=4):
            got.append(x)
    assert got == [1, 2]
    # The traceback reaches into the generator.
    assert any(f.name == 'gen' for f in excinfo.traceback)
    del excinfo


def test_back_pressure(rt):
    capacity = 3
    sent = []

    def gen():
        for i in range(200):
            yield i
            sent.append(i)   # runs once the send of i has returned

    channel = rt.produce(gen, capacity=capacity)
    wait_for(lambda: channel.get_n_items() == capacity)
    threading.Event().wait(0.02)
    assert len(sent) <= capacity
    received = 0
    for x in channel:
        assert x == received
        received += 1
        # Never more than `capacity` ahead of the consumer.
        assert len(sent) <= received + capacity
    assert received == 200


def test_early_stop_closes_the_producer(rt):
    state = {'closed': False, 'yielded': 0}

    def endless():
        try:
            while True:
                state['yielded'] += 1
                yield state['yielded']
        finally:
            state['closed'] = True

    for x in rt.produce(endless, capacity=2):
        if x == 5:
            break
    # Leaving the loop closed the channel: the generator was closed on its
    # worker, and its task ended in success.
    wait_for(lambda: state['closed'])
    assert rt.wait_idle(DEADLINE, None)
    assert rt.get_stats().error == 0


def test_close_from_consumer(rt):
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    with rt.produce(endless) as channel:
        ok, value = channel.receive_blocking(0)
        assert ok and value == 0
    with pytest.raises(GLib.Error) as excinfo:
        channel.receive_blocking(0)
    assert excinfo.value.matches(DVT_ERROR, Dvt.Error.CLOSED)
    assert rt.wait_idle(DEADLINE, None)


def test_end_of_stream(rt):
    channel = rt.produce([1])
    assert channel.receive_blocking(0) == (True, 1)
    assert tuple(channel.receive_blocking(0)) == (False, None)
    assert tuple(channel.receive_blocking(0)) == (False, None)


def test_raw_form(rt):
    def producer(channel, cancellable, data):
        for i in range(data):
            channel.send(i, cancellable)

    assert list(rt.produce(producer, 4, 1, None, None)) == [0, 1, 2, 3]


def test_consumers_in_threads(rt):
    n = 3000
    channel = rt.produce(range(n), capacity=8)
    seen = []
    lock = threading.Lock()

    def consume():
        while True:
            ok, value = channel.receive_blocking(DEADLINE)
            if not ok:
                return
            with lock:
                seen.append(value)

    threads = [threading.Thread(target=consume) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(n))


def test_receive_async_on_a_main_loop(rt):
    channel = rt.produce(range(20), capacity=2)
    got = []

    def start(loop):
        def on_received(source, result):
            assert source is channel
            ok, value = channel.receive_finish(result)
            if ok:
                got.append(value)
                channel.receive_async(None, on_received)
            else:
                loop.quit()
        channel.receive_async(None, on_received)

    main_loop_run(start)
    assert got == list(range(20))


def test_shutdown_ends_the_channel():
    rt = Dvt.Runtime.new(2)

    def endless():
        while True:
            yield 'x'

    channel = rt.produce(endless, capacity=2)
    wait_for(lambda: channel.get_n_items() == 2)
    rt.shutdown(True, False)
    assert channel.get_n_items() == 0
    with pytest.raises(GLib.Error) as excinfo:
        channel.receive_blocking(0)
    assert excinfo.value.matches(DVT_ERROR, Dvt.Error.CLOSED)
    with pytest.raises(GLib.Error) as excinfo:
        rt.produce(endless)
    assert excinfo.value.matches(DVT_ERROR, Dvt.Error.CLOSED)


def test_bad_capacity(rt):
    for capacity in (0, -1):
        with pytest.raises(GLib.Error) as excinfo:
            rt.produce([1], capacity=capacity)
        assert excinfo.value.matches(DVT_ERROR, Dvt.Error.INVALID_ARGUMENT)


# ---- batchers --------------------------------------------------------------------

def test_batcher_by_count_and_close(rt):
    batches = []
    with rt.batcher(batches.append, max_items=4) as b:
        for i in range(10):
            b.add(i)
    assert sorted(len(x) for x in batches) == [2, 4, 4]
    assert sorted(i for x in batches for i in x) == list(range(10))
    with pytest.raises(GLib.Error) as excinfo:
        b.add(1)
    assert excinfo.value.matches(DVT_ERROR, Dvt.Error.CLOSED)


def test_batcher_by_time(rt):
    batches = []
    b = rt.batcher(batches.append, max_items=1000, max_wait=0.05)
    b.add('a')
    b.add({'b': 1})
    wait_for(lambda: len(batches) == 1)
    assert batches == [['a', {'b': 1}]]
    b.close()


def test_batcher_from_threads(rt):
    lock = threading.Lock()
    seen = []

    def handle(items):
        with lock:
            seen.extend(items)

    b = rt.batcher(handle, max_items=16, max_wait=0.001)

    def add(start):
        for i in range(start, start + 500):
            b.add(i)

    threads = [threading.Thread(target=add, args=(k * 500,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    b.close()
    assert sorted(seen) == list(range(2000))


def test_batcher_exception_from_close(rt, no_leaked_exceptions):
    def handle(items):
        if 3 in items:
            raise KeyError('three')

    b = rt.batcher(handle, max_items=2)
    for i in range(6):
        b.add(i)
    with pytest.raises(KeyError, match='three'):
        b.close()
    del b


def test_batcher_flush(rt):
    batches = []
    b = rt.batcher(batches.append, max_items=100)
    assert b.flush() is None
    b.add(1)
    task = b.flush()
    task.result(DEADLINE)
    assert batches == [[1]]
    b.close()


def test_batcher_bad_sizes(rt):
    for kwargs in ({'max_items': 0}, {'max_items': -3}, {'max_wait': -1.0},
                   {'max_wait': float('nan')}):
        with pytest.raises(GLib.Error) as excinfo:
            rt.batcher(print, **kwargs)
        assert excinfo.value.matches(DVT_ERROR, Dvt.Error.INVALID_ARGUMENT)


def test_function_returning_an_iterable(rt):
    # Not the raw form, although the second argument is an int.
    assert list(rt.produce(range, 0, 5)) == [0, 1, 2, 3, 4]

    def make(prefix, n):
        return ['%s%d' % (prefix, i) for i in range(n)]

    assert list(rt.produce(make, 'x', 3)) == ['x0', 'x1', 'x2']
