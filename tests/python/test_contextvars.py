# test_contextvars.py: the caller's contextvars context reaches the work
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# As asyncio.to_thread does: the work runs in a copy of the context of the
# caller at submission; what the work sets stays in its copy.

import asyncio
import contextvars

from dvthelpers import DEADLINE, Dvt

request_id = contextvars.ContextVar('request_id', default=None)


def read():
    return request_id.get()


def read_and_set():
    seen = request_id.get()
    request_id.set('changed by the work')
    return seen


def test_call_blocking_and_submit_call(rt):
    request_id.set('thread-1')
    assert rt.call_blocking(read_and_set) == 'thread-1'
    assert request_id.get() == 'thread-1'
    task = rt.submit_call(read)
    request_id.set('later')
    assert task.result(DEADLINE) == 'thread-1'


def test_executor(rt):
    request_id.set('exec')
    ex = rt.executor()
    future = ex.submit(read_and_set)
    request_id.set('after')
    assert future.result(DEADLINE) == 'exec'
    assert list(ex.map(lambda _: read(), range(3))) == ['after'] * 3
    ex.shutdown()


def test_asyncio_call_map_and_run_in_executor(rt):
    async def one(n):
        request_id.set('coroutine-%d' % n)
        loop = asyncio.get_running_loop()
        values = [await rt.call(read_and_set),
                  (await rt.map(lambda _: read(), [0, 1]))[1],
                  await loop.run_in_executor(rt.executor(), read),
                  await rt.call(read, dvt_options=Dvt.Options(retries=1))]
        assert request_id.get() == 'coroutine-%d' % n
        return values

    async def main():
        return await asyncio.gather(*(one(n) for n in range(20)))

    for n, values in enumerate(asyncio.run(main())):
        assert values == ['coroutine-%d' % n] * 4


def test_call_any_and_bridge(rt):
    @rt.bridge
    def plain():
        return request_id.get()

    @rt.bridge
    async def coro():
        return request_id.get()

    request_id.set('sync side')
    assert rt.call_any(read) == 'sync side'
    assert plain.sync() == 'sync side'
    assert coro.sync() == 'sync side'

    async def main():
        request_id.set('async side')
        return [await rt.call_any(read), await plain.async_(), await coro.async_()]
    assert asyncio.run(main()) == ['async side'] * 3
