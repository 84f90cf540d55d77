#!/usr/bin/python3
# isolated.py: scenarios that can crash or hang the process, run by
# test_isolated.py in a child interpreter each, so that a crash or a hang
# fails one test instead of ending the whole suite.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Usage: isolated.py SCENARIO [API]
#   API is "raw" (the introspected methods, without the overrides) or
#   "override" (the default); for "ctrl-c", the call and "on-exit" or not. Prints "ok" and exits 0 on success; exits 3
#   with a diagnosis when a wait runs out of time.

import os
import signal
import sys
import threading
import time
import traceback

import gi

gi.require_version('Dvt', '1')
gi.require_version('Gio', '2.0')
from gi.repository import Dvt, Gio, GLib  # noqa: E402

DEADLINE = 30.0
STATS = ('queued', 'started', 'done', 'error', 'cancelled', 'running', 'pending')


def stuck(what, runtime):
    stats = runtime.get_stats()
    print('stuck: %s; stats %s' % (what, {k: getattr(stats, k) for k in STATS}),
          flush=True)
    os._exit(3)


def api(name):
    if name == 'raw':
        return Dvt._introspection_module.Runtime
    return Dvt.Runtime


# ---- nested waits ------------------------------------------------------------

def nested(how, iterations):
    """Several runtimes one after the other (each test of a suite makes
    its own), each with 2 workers and 6 tasks that each block on another
    task of the same runtime."""
    for iteration in range(iterations):
        runtime = Dvt.Runtime.new(2)

        def leaf(x):
            return x * 10

        def inner(x):
            if how == 'call_blocking':
                return runtime.call_blocking(leaf, x)
            if how == 'to_thread_blocking':
                return runtime.to_thread_blocking(
                    lambda task, c, d: task.return_value(leaf(d)), x)
            if how == 'result':
                return runtime.submit_call(leaf, x).result(DEADLINE)
            if how == 'map_blocking':
                return sum(runtime.map_blocking(leaf, [x]))
            if how == 'gather_blocking':
                return runtime.gather_blocking([runtime.submit_call(leaf, x)])[0]
            raise ValueError(how)

        tasks = [runtime.submit_call(inner, x) for x in range(6)]
        try:
            results = [t.result(DEADLINE) for t in tasks]
        except GLib.Error as error:
            if error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT):
                stuck('nested %s, runtime %d of %d' % (how, iteration + 1, iterations),
                      runtime)
            raise
        assert results == [x * 10 for x in range(6)], results
        runtime.shutdown(True, False)


# ---- functions still running when the blocking call returns -------------------

def run_blocking_sync_completion(Runtime):
    """An async function that completes its task before it returns, called
    from 4 threads at once."""
    runtime = Dvt.Runtime.new(2)

    def work(task, cancellable, *user_data):
        task.return_value(7)

    def body():
        for _ in range(2000):
            assert Runtime.run_blocking(runtime, work, None, None, None) == 7

    threads = [threading.Thread(target=body) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runtime.shutdown(True, False)


def cancel_while_running(Runtime, call):
    """A blocking call cancelled while its function runs: the caller is
    released at once, the function keeps running a little Python code."""
    runtime = Dvt.Runtime.new(2)
    for _ in range(200):
        cancellable = Gio.Cancellable()
        started = threading.Event()

        def work(task, c, *user_data):
            started.set()
            time.sleep(0.002)
            total = sum(range(1000))
            time.sleep(0.002)
            task.return_value(total)

        threading.Thread(target=lambda: (started.wait(DEADLINE),
                                         cancellable.cancel())).start()
        try:
            if call == 'to_thread_blocking':
                Runtime.to_thread_blocking(runtime, work, None, None, cancellable)
            else:
                Runtime.map_blocking(runtime, 4, work, None, None, cancellable)
        except GLib.Error as error:
            assert error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    time.sleep(0.2)  # let the last functions return
    runtime.shutdown(True, False)


# ---- Ctrl-C during a blocking call of the main thread ----------------------------

# Work that takes 5 s and ignores its cancellable; run_blocking's completes
# its task from a timeout on the loop thread.
def sleeping(task, cancellable, user_data):
    time.sleep(5)
    task.return_value(1)


def sleeping_async(task, cancellable, user_data):
    source = GLib.timeout_source_new(5000)
    source.set_callback(lambda *args: task.return_value(1) or GLib.SOURCE_REMOVE)
    source.attach(GLib.MainContext.ref_thread_default())


CTRL_C_CALLS = {
    'call_blocking': lambda rt: rt.call_blocking(time.sleep, 5),
    'to_thread_blocking': lambda rt: rt.to_thread_blocking(sleeping),
    'run_blocking': lambda rt: rt.run_blocking(sleeping_async),
    'map_blocking_items': lambda rt: rt.map_blocking(time.sleep, [5, 5, 5]),
    'map_blocking_raw': lambda rt: rt.map_blocking(3, sleeping),
    'result': lambda rt: rt.submit_call(time.sleep, 5).result(),
}


def ctrl_c(call, on_exit):
    """SIGINT 0.3 s into a 5 s blocking call of the main thread: the call
    raises KeyboardInterrupt. Prints how long after the signal, and
    whether it came from the call's line, its task was cancelled and the
    runtime still works."""
    runtime = Dvt.Runtime(max_workers=2, shutdown_on_exit=on_exit)
    sent = []

    def interrupt():
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Timer(0.3, interrupt).start()
    line = sys._getframe().f_lineno + 2
    try:
        CTRL_C_CALLS[call](runtime)
    except KeyboardInterrupt as interrupted:
        elapsed = time.monotonic() - sent[0]
        where = traceback.extract_tb(interrupted.__traceback__)[0]
    else:
        raise AssertionError('no KeyboardInterrupt')
    from_call = where.filename == __file__ and where.lineno == line
    if on_exit:
        works = runtime.is_shutdown()
    else:
        works = runtime.call_blocking(abs, -4) == 4
        runtime.shutdown(False, True)
    print('elapsed %.3f from_call %s cancelled %d works %s'
          % (elapsed, from_call, runtime.get_stats().cancelled, works), flush=True)
    # The work still sleeps in its worker: do not wait for it.
    print('ok', flush=True)
    os._exit(0)


def slow_values():
    time.sleep(5)   # ignores any cancellation
    yield 1


def ctrl_c_channel():
    """SIGINT 0.3 s into `for x in runtime.produce(gen)` on the main thread,
    whose generator sleeps 5 s: KeyboardInterrupt from the loop's line, at
    once; leaving the loop closed the channel; the runtime still works."""
    runtime = Dvt.Runtime(max_workers=2)
    sent = []

    def interrupt():
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Timer(0.3, interrupt).start()
    channel = runtime.produce(slow_values)
    line = sys._getframe().f_lineno + 2
    try:
        for x in channel:
            pass
    except KeyboardInterrupt as interrupted:
        elapsed = time.monotonic() - sent[0]
        where = traceback.extract_tb(interrupted.__traceback__)[0]
    else:
        raise AssertionError('no KeyboardInterrupt')
    from_loop = where.filename == __file__ and where.lineno == line
    works = runtime.call_blocking(abs, -4) == 4
    print('elapsed %.3f from_call %s closed %s works %s'
          % (elapsed, from_loop, channel.is_closed(), works), flush=True)
    runtime.shutdown(False, True)
    print('ok', flush=True)
    os._exit(0)


def ctrl_c_wakeup_fd():
    """Python's wakeup fd and the Ctrl-C watcher (see _dvt/interrupts.py):
    an fd of the application's, set before the first call or between
    calls, stays set; once it is removed, Ctrl-C interrupts a call again;
    at exit the watcher's fd is removed. Prints what it found."""
    import socket
    runtime = Dvt.Runtime(max_workers=2)
    mine = socket.socketpair()
    for sock in mine:
        sock.setblocking(False)
    fd = mine[1].fileno()
    after = 0.05  # longer than the watcher's recheck

    # Set before the first call: left alone.
    signal.set_wakeup_fd(fd)
    runtime.call_blocking(abs, -1)
    kept_before = signal.set_wakeup_fd(-1) == fd

    # Set between calls: left alone from the next check on.
    runtime.call_blocking(abs, -1)
    signal.set_wakeup_fd(fd)
    time.sleep(after)
    runtime.call_blocking(abs, -1)
    kept_between = signal.set_wakeup_fd(-1) == fd

    # Removed between calls (as an asyncio loop does when it closes):
    # Ctrl-C interrupts the next call.
    time.sleep(after)
    sent = []

    def interrupt():
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Timer(0.3, interrupt).start()
    try:
        runtime.call_blocking(time.sleep, 5)
    except KeyboardInterrupt:
        interrupted = time.monotonic() - sent[0] < 2.0
    else:
        interrupted = False
    works = runtime.call_blocking(abs, -4) == 4
    print('kept_before %s kept_between %s interrupted %s works %s'
          % (kept_before, kept_between, interrupted, works), flush=True)
    # The sleeping work is not waited for (os._exit), but atexit is run
    # by hand: the watcher's fd goes.
    import atexit
    atexit._run_exitfuncs()
    print('released %s' % (signal.set_wakeup_fd(-1) == -1), flush=True)
    print('ok', flush=True)
    os._exit(0)


def main():
    scenario = sys.argv[1]
    which = sys.argv[2] if len(sys.argv) > 2 else 'override'
    if scenario.startswith('nested-'):
        nested(scenario[len('nested-'):], int(which))
    elif scenario == 'run-blocking-sync-completion':
        run_blocking_sync_completion(api(which))
    elif scenario == 'to-thread-blocking-cancel':
        cancel_while_running(api(which), 'to_thread_blocking')
    elif scenario == 'map-blocking-cancel':
        cancel_while_running(api(which), 'map_blocking')
    elif scenario == 'ctrl-c-channel':
        ctrl_c_channel()
    elif scenario == 'ctrl-c-wakeup-fd':
        ctrl_c_wakeup_fd()
    elif scenario == 'ctrl-c':
        ctrl_c(which, sys.argv[3] == 'on-exit')
    else:
        raise SystemExit('unknown scenario ' + scenario)
    print('ok', flush=True)


if __name__ == '__main__':
    main()
