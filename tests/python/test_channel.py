# test_channel.py: Runtime.produce() (Dvt.Channel) and Runtime.batcher()
# (Dvt.Batcher) from Python threads, and the channel's async face on a
# GLib main loop
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import asyncio
import random
import threading

import pytest

from dvthelpers import DEADLINE, Dvt, GLib, arun, main_loop_run, wait_for
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


def counted(n, sent):
    """0 .. n-1, each appended to @sent once its send has returned."""
    for i in range(n):
        yield i
        sent.append(i)


# From 128 on, values cross in batches (see "values in batches" below).
@pytest.mark.parametrize('capacity', [1, 3, 300, 2000])
def test_back_pressure(rt, capacity):
    n = 3 * capacity + 200
    sent = []
    channel = rt.produce(counted, n, sent, capacity=capacity)
    wait_for(lambda: channel.get_n_items() == capacity)
    threading.Event().wait(0.02)
    assert len(sent) <= capacity
    received = 0
    for x in channel:
        assert x == received
        received += 1
        # Never more than `capacity` ahead of the consumer, values an
        # iterator holds included.
        assert len(sent) <= received + capacity
        if received % 211 == 0:
            threading.Event().wait(0.002)
    assert received == n


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


# ---- asyncio ---------------------------------------------------------------------
#
# Under asyncio.run(), with no GLib main context iterated by the test.

pytestmark_asyncio = pytest.mark.usefixtures('no_glib_loop')


async def until(predicate):
    while not predicate():
        await asyncio.sleep(0.001)


@pytestmark_asyncio
def test_async_for_in_order_with_exception_after_last_value(rt, no_leaked_exceptions):
    class Broken(Exception):
        pass

    def gen(n):
        yield from range(n)
        raise Broken('producer broke')

    async def main():
        got = []
        with pytest.raises(Broken, match='producer broke'):
            async for x in rt.produce(gen, 500, capacity=4):
                got.append(x)
        # Then through areceive(), the end waited for.
        channel = rt.produce(gen, 3, capacity=4)
        while channel.get_n_items() == 0 or not channel.is_closed():
            await asyncio.sleep(0.001)
        for i in range(3):
            assert await channel.areceive() == (True, i)
        with pytest.raises(Broken, match='producer broke'):
            await channel.areceive()
        return got

    assert arun(main()) == list(range(500))


@pytestmark_asyncio
def test_async_for_back_pressure(rt):
    capacity = 3
    sent = []

    async def main():
        channel = rt.produce(counted, 300, sent, capacity=capacity)
        await until(lambda: channel.get_n_items() == capacity)
        await asyncio.sleep(0.02)
        assert len(sent) <= capacity
        received = 0
        async for x in channel:
            assert x == received
            received += 1
            # Never more than `capacity` ahead of the consumer.
            assert len(sent) <= received + capacity
            if received % 50 == 0:
                await asyncio.sleep(0.001)   # a slow consumer now and then
        return received

    assert arun(main()) == 300


@pytestmark_asyncio
def test_cancelled_consumer_closes_the_channel(rt):
    state = {'closed': False}
    started = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
                started.set()
                threading.Event().wait(0.001)
        finally:
            state['closed'] = True

    async def consume(channel, got):
        async for x in channel:
            got.append(x)

    async def main():
        channel = rt.produce(endless, capacity=2)
        got = []
        consumer = asyncio.ensure_future(consume(channel, got))
        await until(lambda: len(got) >= 5)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert got == list(range(len(got)))
        assert channel.is_closed()
        with pytest.raises(GLib.Error) as excinfo:
            await channel.areceive()
        assert excinfo.value.matches(DVT_ERROR, Dvt.Error.CLOSED)

    arun(main())
    wait_for(lambda: state['closed'])
    assert rt.wait_idle(DEADLINE, None)
    assert rt.get_stats().error == 0


@pytestmark_asyncio
def test_async_break_closes_and_end_of_stream(rt):
    async def main():
        channel = rt.produce(range(1000), capacity=2)
        async for x in channel:
            if x == 3:
                break
        # The loop's iterator is closed (by asyncio) once dropped.
        await until(lambda: channel.is_closed())
        with pytest.raises(GLib.Error) as excinfo:
            channel.try_receive()
        assert excinfo.value.matches(DVT_ERROR, Dvt.Error.CLOSED)
        channel = rt.produce([7])
        assert await channel.areceive() == (True, 7)
        assert tuple(await channel.areceive()) == (False, None)
        assert tuple(await channel.areceive()) == (False, None)

    arun(main())
    assert rt.wait_idle(DEADLINE, None)


@pytestmark_asyncio
def test_cancelled_receive_loses_no_value(rt):
    """Receives cancelled at random instants (by wait_for timeouts) while a
    producer sends: every value is received exactly once."""
    n = 400

    def gen():
        for i in range(n):
            if i % 7 == 0:
                threading.Event().wait(0.0005)
            yield i

    async def main():
        channel = rt.produce(gen, capacity=1)
        got = []
        rng = random.Random(13)
        while True:
            try:
                ok, value = await asyncio.wait_for(channel.areceive(),
                                                   rng.choice((0, 1e-4, 1e-3)))
            except asyncio.TimeoutError:
                continue
            if not ok:
                return got
            got.append(value)

    got = arun(main())
    assert sorted(got) == list(range(n))


@pytestmark_asyncio
def test_async_consumer_beside_a_thread_consumer(rt):
    async def main():
        channel = rt.produce(range(2000), capacity=8)
        from_thread = []

        def drain():
            while True:
                ok, value = channel.receive_blocking(DEADLINE)
                if not ok:
                    return
                from_thread.append(value)

        thread = threading.Thread(target=drain)
        thread.start()
        mine = []
        while True:
            ok, value = await channel.areceive()
            if not ok:
                break
            mine.append(value)
        await asyncio.to_thread(thread.join)
        return mine + from_thread

    assert sorted(arun(main())) == list(range(2000))


@pytestmark_asyncio
def test_async_with_batcher(rt, no_leaked_exceptions):
    lock = threading.Lock()
    seen = []

    def handle(items):
        with lock:
            seen.extend(items)

    async def main():
        async with rt.batcher(handle, max_items=16, max_wait=0.01) as b:
            thread = threading.Thread(target=lambda: [b.add(-i) for i in range(1, 501)])
            thread.start()
            for i in range(500):
                b.add(i)
                if i % 100 == 0:
                    await asyncio.sleep(0)
            await asyncio.to_thread(thread.join)
        assert b.is_closed()
        with pytest.raises(GLib.Error) as excinfo:
            b.add(1)
        assert excinfo.value.matches(DVT_ERROR, Dvt.Error.CLOSED)

        def broken(items):
            if 3 in items:
                raise KeyError('three')

        b = rt.batcher(broken, max_items=2)
        for i in range(6):
            b.add(i)
        with pytest.raises(KeyError, match='three'):
            await b.aclose()

    arun(main())
    assert sorted(seen) == list(range(-500, 500))


@pytestmark_asyncio
def test_cancelled_aclose_leaves_the_batches_running(rt):
    release = threading.Event()
    done = []

    def slow(items):
        release.wait(DEADLINE)
        done.extend(items)

    b = rt.batcher(slow, max_items=2)

    async def main():
        for i in range(4):
            b.add(i)
        closing = asyncio.ensure_future(b.aclose())
        await until(lambda: b.is_closed())
        await asyncio.sleep(0.01)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing

    arun(main())
    assert b.is_closed()
    release.set()
    b.close(DEADLINE)
    assert sorted(done) == [0, 1, 2, 3]


# ---- values in batches ------------------------------------------------------------
# A generator's values cross into C several at a time (Channel.send_many),
# and the iterators take every buffered value at once
# (Channel.try_receive_many): none of it may show, in values, order,
# back-pressure, latency or the producer's error.

def test_send_many_and_try_receive_many(rt):
    def producer(channel, cancellable, data):
        ok, n_sent = channel.send_many([1, 'two', None, {'four': 4}], cancellable)
        assert ok and n_sent == 4
        assert channel.send_many([], cancellable) == (True, 0)

    channel = rt.produce(producer, None, 8, None, None)
    wait_for(lambda: channel.get_n_items() == 4)
    ok, values = channel.try_receive_many(2)
    assert ok and values == [1, 'two']
    ok, values = channel.try_receive_many(0)
    assert ok and values == [None, {'four': 4}]
    # Then the end (once the producer has returned), never a value twice.
    while True:
        try:
            ok, values = channel.try_receive_many(0)
        except GLib.Error as error:
            assert error.matches(DVT_ERROR, Dvt.Error.EMPTY)
            threading.Event().wait(0.001)
            continue
        assert not ok and not values
        break


def test_send_many_after_close_reports_how_many(rt):
    result = {}

    def producer(channel, cancellable, data):
        data.wait(DEADLINE)
        try:
            channel.send_many(list(range(10)), cancellable)
        except GLib.Error as error:
            result['error'] = error

    started = threading.Event()
    channel = rt.produce(producer, started, 4, None, None)
    channel.close('enough')
    started.set()
    assert rt.wait_idle(DEADLINE, None)
    assert result['error'].matches(DVT_ERROR, Dvt.Error.CLOSED)
    assert 'enough' in result['error'].message


class Lockstep:
    """A generator that gives its next value only once the consumer has
    the one before: a producer that held a value back to fill a batch
    would wait forever."""

    def __init__(self):
        self.received = []
        self.step = threading.Condition()

    def gen(self, n):
        for i in range(n):
            yield i
            with self.step:
                assert self.step.wait_for(lambda: len(self.received) > i, DEADLINE)

    def got(self, value):
        with self.step:
            self.received.append(value)
            self.step.notify_all()


@pytest.mark.parametrize('capacity', [2, 1000])
def test_a_slow_generator_holds_no_value_back(rt, capacity):
    lockstep = Lockstep()
    for x in rt.produce(lockstep.gen, 50, capacity=capacity):
        lockstep.got(x)
    assert lockstep.received == list(range(50))


@pytest.mark.parametrize('capacity', [4, 1000])
def test_batched_exception_after_last_value(rt, capacity, no_leaked_exceptions):
    class Broken(Exception):
        pass

    def gen(n):
        yield from range(n)
        raise Broken('producer broke')

    got = []
    with pytest.raises(Broken, match='producer broke'):
        for x in rt.produce(gen, 5000, capacity=capacity):
            got.append(x)
    assert got == list(range(5000))


@pytest.mark.parametrize('capacity', [2, 1000])
def test_batched_early_stop(rt, capacity):
    state = {'closed': False}

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            state['closed'] = True

    got = []
    for x in rt.produce(endless, capacity=capacity):
        got.append(x)
        if x == 3000:
            break
    assert got == list(range(3001))
    wait_for(lambda: state['closed'])
    assert rt.wait_idle(DEADLINE, None)
    assert rt.get_stats().error == 0


@pytestmark_asyncio
@pytest.mark.parametrize('capacity', [3, 300, 2000])
def test_async_for_batched(rt, capacity, no_leaked_exceptions):
    """async for: order, back-pressure with slow stretches, and the
    producer's exception after a long stream."""
    class Broken(Exception):
        pass

    n = 3 * capacity + 700
    sent = []

    def gen():
        yield from counted(n, sent)
        raise Broken('producer broke')

    async def main():
        channel = rt.produce(gen, capacity=capacity)
        await until(lambda: channel.get_n_items() == capacity)
        await asyncio.sleep(0.02)
        assert len(sent) <= capacity
        received = 0
        with pytest.raises(Broken, match='producer broke'):
            async for x in channel:
                assert x == received
                received += 1
                assert len(sent) <= received + capacity
                if received % 211 == 0:
                    await asyncio.sleep(0.002)
        return received

    assert arun(main()) == n


@pytestmark_asyncio
@pytest.mark.parametrize('capacity', [2, 1000])
def test_async_for_slow_generator_holds_no_value_back(rt, capacity):
    lockstep = Lockstep()

    async def main():
        async for x in rt.produce(lockstep.gen, 50, capacity=capacity):
            lockstep.got(x)

    arun(main())
    assert lockstep.received == list(range(50))


@pytest.mark.parametrize('how', ['blocking', 'try', 'try_many'])
def test_a_receive_outside_the_iterators_gets_held_values(rt, how):
    """An iterator took the first value, so the producer may hold the next
    ones; a plain receive of the second value, made while the generator
    waits for it, still gets it."""
    lockstep = Lockstep()
    channel = rt.produce(lockstep.gen, 50, capacity=1000)
    iterator = iter(channel)
    lockstep.got(next(iterator))
    for i in range(1, 50):
        if how == 'blocking':
            ok, value = channel.receive_blocking(DEADLINE)
        else:
            while True:
                try:
                    if how == 'try':
                        ok, value = channel.try_receive()
                    else:
                        ok, values = channel.try_receive_many(1)
                        value = values[0] if ok else None
                    break
                except GLib.Error as error:
                    assert error.matches(DVT_ERROR, Dvt.Error.EMPTY)
                    threading.Event().wait(0.0005)
        assert ok and value == i
        lockstep.got(value)
    iterator.close()
