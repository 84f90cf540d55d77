# test_registry.py: the registry of runtimes, the default runtime, the
# shutdown hook, and shutdown at exit and on SIGINT/SIGTERM (in child
# interpreters)
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import gc
import signal
import subprocess
import sys
import textwrap

import pytest

from dvthelpers import Dvt

TIMEOUT = 60


def names(runtimes):
    return [r.get_name() for r in runtimes]


# ---- the default runtime -----------------------------------------------------

def test_default_alive_and_recreated():
    if Dvt.Runtime.default_is_alive():
        Dvt.Runtime.get_default().shutdown(True, False)
    assert Dvt.Runtime.default_is_alive() is False

    first = Dvt.Runtime.get_default()
    assert Dvt.Runtime.default_is_alive() is True
    assert first in Dvt.Runtime.list_active()
    first.shutdown(True, False)
    assert Dvt.Runtime.default_is_alive() is False

    second = Dvt.Runtime.get_default()
    assert second != first
    assert Dvt.Runtime.default_is_alive() is True
    assert second.call_blocking(lambda: 'again') == 'again'
    active = Dvt.Runtime.list_active()
    assert second in active and first not in active
    second.shutdown(True, False)


# ---- the registry ----------------------------------------------------------------

def test_list_active():
    listed = Dvt.Runtime(name='py-listed', max_workers=1)
    unlisted = Dvt.Runtime(name='py-unlisted', max_workers=1, auto_register=False)
    try:
        assert listed.props.auto_register is True
        assert unlisted.props.auto_register is False
        active = names(Dvt.Runtime.list_active())
        assert 'py-listed' in active
        assert 'py-unlisted' not in active

        listed.shutdown(False, False)
        assert 'py-listed' not in names(Dvt.Runtime.list_active())
    finally:
        listed.shutdown(True, False)
        unlisted.shutdown(True, False)


def test_registry_keeps_no_runtime_alive():
    finalized = []
    runtime = Dvt.Runtime(name='py-weak', max_workers=1)
    runtime.weak_ref(lambda: finalized.append(True))
    assert 'py-weak' in names(Dvt.Runtime.list_active())
    runtime.shutdown(True, False)
    del runtime
    gc.collect()
    assert finalized == [True]


def test_shutdown_all():
    a = Dvt.Runtime(name='py-a', max_workers=1)
    b = Dvt.Runtime(name='py-b', max_workers=1)
    unlisted = Dvt.Runtime(name='py-unlisted', max_workers=1, auto_register=False)
    try:
        n_active = len(Dvt.Runtime.list_active())
        assert n_active >= 2
        assert Dvt.Runtime.shutdown_all(True, False) == n_active
        assert a.is_shutdown() and b.is_shutdown()
        assert not unlisted.is_shutdown()
        assert Dvt.Runtime.list_active() == []
        assert Dvt.Runtime.shutdown_all(True, True) == 0
    finally:
        unlisted.shutdown(True, False)


def test_replacing_the_hook_does_not_run_it():
    ran = []
    Dvt.Runtime.set_shutdown_hook(lambda *args: ran.append(1))
    Dvt.Runtime.set_shutdown_hook(lambda *args: ran.append(2))
    Dvt.Runtime.set_shutdown_hook(None)
    assert ran == []


def test_shutdown_on_exit_property():
    runtime = Dvt.Runtime(max_workers=1)
    try:
        assert runtime.props.shutdown_on_exit is False
        notified = []
        runtime.connect('notify::shutdown-on-exit', lambda *args: notified.append(1))
        runtime.props.shutdown_on_exit = True
        runtime.props.shutdown_on_exit = True
        assert runtime.props.shutdown_on_exit is True
        assert notified == [1]
    finally:
        runtime.shutdown(True, False)


# ---- exit and signals, in child interpreters ---------------------------------------

# The child: a runtime with shutdown_on_exit=True running work that waits
# for its cancellable, then what the test asks for.
CHILD = textwrap.dedent('''
    import os, signal, sys, threading, time
    import gi
    gi.require_version('Dvt', '1')
    from gi.repository import Dvt

    how = sys.argv[1]
    if 'hook' in how:
        Dvt.Runtime.set_shutdown_hook(lambda *args: print('hook', flush=True))

    started = threading.Event()

    def work(task, cancellable, data):
        started.set()
        while not cancellable.is_cancelled():
            time.sleep(0.001)
        print('cancelled', flush=True)
        task.return_value(None)

    runtime = Dvt.Runtime(shutdown_on_exit=True, max_workers=2)
    task = runtime.submit(work)
    assert started.wait(30)

    if how.startswith('exit'):
        sys.exit(0)
    try:
        os.kill(os.getpid(), getattr(signal, how.split('-')[0]))
        # Short sleeps: Python runs its handler between two of them (the
        # signal may come back while a long sleep is about to begin).
        for _ in range(3000):
            time.sleep(0.01)
        print('no signal', flush=True)
    except KeyboardInterrupt:
        print('KeyboardInterrupt', runtime.is_shutdown(), flush=True)
''')


def run_child(how):
    proc = subprocess.run([sys.executable, '-c', CHILD, how], capture_output=True,
                          text=True, timeout=TIMEOUT)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize('how, status, out', [
    # The runtime is shut down (its work cancelled), then the process exits.
    ('exit', 0, 'cancelled\n'),
    # The hook runs once, instead of the shutdown.
    ('exit-hook', 0, 'hook\n'),
    # Shut down first, then the signal ends the process.
    ('SIGTERM', -signal.SIGTERM, 'cancelled\n'),
    ('SIGTERM-hook', -signal.SIGTERM, 'hook\n'),
    # Shut down first, then Python's handler raises KeyboardInterrupt.
    ('SIGINT', 0, 'cancelled\nKeyboardInterrupt True\n'),
    # Python survives the signal and exits: the hook ran once, on the
    # signal; neither the signal nor the exit shut the runtime down.
    ('SIGINT-hook', 0, 'hook\nKeyboardInterrupt False\n'),
])
def test_exit_and_signals(how, status, out):
    got_status, got_out, err = run_child(how)
    assert (got_status, got_out) == (status, out), err
    assert 'WARNING' not in err and 'CRITICAL' not in err, err
