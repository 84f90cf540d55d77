# test_directions.py: one call for every direction (issue 13 item 4)
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# runtime.call_any() from a thread and from a running asyncio loop, with a
# plain function and with a coroutine function; @runtime.bridge with its
# .sync() and .async_() forms and its options; @Dvt.cached.

import asyncio
import collections
import threading
import time

import pytest

from dvthelpers import DEADLINE, Dvt, GLib
from gi.repository import Gio


class Boom(Exception):
    pass


def where():
    return threading.get_ident()


async def coro_where(x=0):
    await asyncio.sleep(0)
    return threading.get_ident(), x


# ---- call_any in the four directions ----------------------------------------------

def test_thread_to_plain(rt):
    assert rt.call_any(pow, 2, 5) == 32
    assert rt.call_any(where) != threading.get_ident()   # on a worker


def test_thread_to_coroutine(rt):
    ident, x = rt.call_any(coro_where, 7)
    assert x == 7
    assert ident != threading.get_ident()                # on the background loop


def test_loop_to_plain(rt):
    async def main():
        awaitable = rt.call_any(where)
        assert not isinstance(awaitable, int)
        return await awaitable
    assert asyncio.run(main()) != threading.get_ident()


def test_loop_to_coroutine(rt):
    async def main():
        return await rt.call_any(coro_where, 3)
    ident, x = asyncio.run(main())
    assert (ident, x) == (threading.get_ident(), 3)      # on the caller's loop


def test_errors_in_every_direction(rt):
    def plain():
        raise Boom('plain')

    async def coro():
        raise Boom('coro')

    with pytest.raises(Boom):
        rt.call_any(plain)
    with pytest.raises(Boom):
        rt.call_any(coro)

    async def main():
        with pytest.raises(Boom):
            await rt.call_any(plain)
        with pytest.raises(Boom):
            await rt.call_any(coro)
    asyncio.run(main())


def test_call_any_needs_a_callable(rt):
    with pytest.raises(TypeError):
        rt.call_any(42)


# ---- @runtime.bridge ---------------------------------------------------------------

def test_bridge_plain_function(rt):
    @rt.bridge
    def add(a, b=1):
        """Adds."""
        return a + b

    assert add.__name__ == 'add' and add.__doc__ == 'Adds.'
    assert add.sync(1, b=2) == 3
    assert add(4) == 5                                  # from a thread: sync

    async def main():
        return [await add.async_(1), await add(2, b=5)]  # from a loop: awaitable
    assert asyncio.run(main()) == [2, 7]


def test_bridge_coroutine_function(rt):
    @rt.bridge()
    async def twice(x):
        await asyncio.sleep(0)
        return 2 * x

    assert twice.sync(4) == 8 and twice(5) == 10

    async def main():
        return [await twice.async_(1), await twice(2)]
    assert asyncio.run(main()) == [2, 4]


def test_bridge_timeout(rt):
    release = threading.Event()

    @rt.bridge(timeout=0.05)
    def slow():
        release.wait(DEADLINE)

    @rt.bridge(timeout=0.05)
    async def slow_coro():
        await asyncio.sleep(DEADLINE)

    try:
        with pytest.raises(TimeoutError) as info:
            slow.sync()
        assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)
        with pytest.raises(TimeoutError):
            slow_coro.sync()

        async def main():
            with pytest.raises(TimeoutError):
                await slow.async_()
            with pytest.raises(TimeoutError):
                await slow_coro.async_()
        asyncio.run(main())
    finally:
        release.set()


def test_bridge_retries(rt):
    attempts = collections.Counter()

    @rt.bridge(retries=2)
    def flaky(name):
        attempts[name] += 1
        if attempts[name] < 3:
            raise Boom(name)
        return name

    @rt.bridge(retries=1)
    async def flaky_coro(name):
        attempts[name] += 1
        if attempts[name] < 3:
            raise Boom(name)
        return name

    assert flaky.sync('a') == 'a' and attempts['a'] == 3
    with pytest.raises(Boom):
        flaky_coro.sync('b')             # 2 attempts, both fail
    assert attempts['b'] == 2

    async def main():
        return await flaky.async_('c'), await flaky_coro.async_('b')
    assert asyncio.run(main()) == ('c', 'b')


def test_bridge_bad_options(rt):
    with pytest.raises(ValueError):
        rt.bridge(retries=-1)
    with pytest.raises(ValueError):
        rt.bridge(timeout=0)


# ---- @Dvt.cached -------------------------------------------------------------------

def test_cached_shares_runs(rt):
    calls = collections.Counter()

    @Dvt.cached(rt, ttl=60, max_size=10)
    def square(x, scale=1):
        calls[(x, scale)] += 1
        time.sleep(0.005)
        return x * x * scale

    results = []
    threads = [threading.Thread(target=lambda: results.extend(square(i % 3) for i in range(30)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    assert sorted(results) == sorted([i % 3 * (i % 3) for i in range(30)] * 4)
    assert calls == {(0, 1): 1, (1, 1): 1, (2, 1): 1}
    assert square(2, scale=10) == 40 and calls[(2, 10)] == 1
    assert square.__name__ == 'square'

    async def main():
        return await asyncio.gather(*(square.aget(i % 4) for i in range(20)))
    assert asyncio.run(main()) == [i % 4 * (i % 4) for i in range(20)]
    assert calls[(3, 1)] == 1


def test_cached_errors_and_key(rt):
    calls = collections.Counter()

    @Dvt.cached(rt, key=lambda path, **kw: GLib.Variant('s', path))
    def read(path, verbose=False):
        calls[path] += 1
        if path == 'missing':
            raise FileNotFoundError(path)
        return path.upper()

    assert read('a') == 'A' and read('a', verbose=True) == 'A'
    assert calls['a'] == 1
    for _ in range(2):
        with pytest.raises(FileNotFoundError):
            read('missing')
    assert calls['missing'] == 2          # evict_on_error: not kept
    read.cache.invalidate(GLib.Variant('s', 'a'))
    assert read('a') == 'A' and calls['a'] == 2

    @Dvt.cached(rt, key=lambda x: x)
    def bad_key(x):
        return x
    with pytest.raises(TypeError):
        bad_key(1)


def test_cached_coroutine_function(rt):
    calls = []

    @Dvt.cached(rt)
    async def fetch(x):
        calls.append(x)
        await asyncio.sleep(0.001)
        return -x

    assert fetch(3) == -3 and fetch(3) == -3 and calls == [3]


# ---- translations --------------------------------------------------------------------

I18N_CHILD = r'''
import ctypes, locale, sys
locale.setlocale(locale.LC_ALL, '')
import gi
gi.require_version('Dvt', '1')
from gi.repository import Dvt
Dvt.Runtime.new(1).shutdown(True, False)   # the library binds its domain
ctypes.CDLL(None).bindtextdomain(b'dovetail-1', sys.argv[1].encode())
print(Dvt.TimeoutError().message)
print(Dvt.CancelledError().message)
'''


@pytest.mark.parametrize('language, expected', [
    ('de', ['Die Wartezeit ist abgelaufen', 'Die Aufgabe wurde abgebrochen']),
    ('fr', ['Le délai d’attente a expiré', 'La tâche a été annulée']),
])
def test_messages_are_translated(language, expected):
    import os
    import subprocess
    import sys
    typelib_dirs = os.environ.get('GI_TYPELIB_PATH', '').split(os.pathsep)
    localedir = os.path.join(os.path.dirname(os.path.abspath(typelib_dirs[0])), 'po')
    if not os.path.exists(os.path.join(localedir, language, 'LC_MESSAGES', 'dovetail-1.mo')):
        pytest.skip('no compiled catalogue in the build tree')
    env = dict(os.environ, LANGUAGE=language, LC_ALL='C.UTF-8')
    out = subprocess.run([sys.executable, '-c', I18N_CHILD, localedir], env=env,
                         capture_output=True, text=True, timeout=DEADLINE, check=True)
    assert out.stdout.splitlines() == expected
