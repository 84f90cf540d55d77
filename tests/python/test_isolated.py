# test_isolated.py: scenarios that may crash or hang, each in a child
# interpreter (see isolated.py)
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'isolated.py')
TIMEOUT = 240


def run_isolated(*args):
    try:
        proc = subprocess.run([sys.executable, '-X', 'faulthandler', SCRIPT] + [str(a) for a in args],
                              capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as expired:
        pytest.fail('isolated.py %s hung for %d s\n%s' % (
            ' '.join(map(str, args)), TIMEOUT, expired.stdout or ''))
    how = ('killed by signal %d' % -proc.returncode if proc.returncode < 0
           else 'exit status %d' % proc.returncode)
    assert proc.returncode == 0 and proc.stdout.strip().endswith('ok'), (
        'isolated.py %s: %s\n--- stdout\n%s\n--- stderr (end)\n%s' % (
            ' '.join(map(str, args)), how, proc.stdout, proc.stderr[-3000:]))
    return proc.stdout


def run_report(*args):
    """The "name value" pairs a scenario printed before its "ok"."""
    out = run_isolated(*args).split()
    return dict(zip(out[0:-1:2], out[1::2])), out


# Nested waits must never starve a bounded pool (behaviour 7): 6 tasks on 2
# workers each block on another task, in several runtimes one after the
# other, as a test suite does. (Hung when a pool thread handed back to GLib
# kept its "announced" spinner count into the next runtime; fixed by
# f925b27.)
@pytest.mark.parametrize('how', ['call_blocking', 'to_thread_blocking', 'result',
                                 'map_blocking', 'gather_blocking'])
def test_nested_waits_in_successive_runtimes(how):
    run_isolated('nested-' + how, 20)


# PyGObject frees a function given to a call when the library says it is
# done with it (a (scope call) function: when the call returns). The library
# must not run it after that, even when a cancellation releases the caller
# early or when an async function completes its task before it returns.
# (Crashed with the (scope call) blocking calls; fixed by faacfb0.)
@pytest.mark.parametrize('api', ['override', 'raw'])
def test_run_blocking_function_completing_its_task_at_once(api):
    run_isolated('run-blocking-sync-completion', api)


@pytest.mark.parametrize('api', ['override', 'raw'])
def test_to_thread_blocking_cancelled_while_its_function_runs(api):
    run_isolated('to-thread-blocking-cancel', api)


@pytest.mark.parametrize('api', ['override', 'raw'])
def test_map_blocking_cancelled_while_items_run(api):
    run_isolated('map-blocking-cancel', api)


# Ctrl-C on the main thread (SIGINT 0.3 s into a 5 s blocking call whose
# work ignores cancellation) raises KeyboardInterrupt from the call, at
# once, and cancels its task; the runtime goes on working. The bound is
# generous: the machine may be busy. With shutdown_on_exit the runtime
# gets the signal first: it shuts down (releasing the call), waits up to
# its exit grace of 2 s for the work, and then hands the signal on to
# Python; the call raises the KeyboardInterrupt then, not a GLib.Error.
# (Waited for the work, or raised the runtime's error, before.)
@pytest.mark.parametrize('on_exit', ['plain', 'on-exit'])
@pytest.mark.parametrize('call', ['call_blocking', 'to_thread_blocking', 'run_blocking',
                                  'map_blocking_items', 'map_blocking_raw', 'result'])
def test_ctrl_c_interrupts_a_blocking_call_of_the_main_thread(call, on_exit):
    report, out = run_report('ctrl-c', call, on_exit)
    assert report['from_call'] == 'True', out
    assert report['works'] == 'True', out
    assert int(report['cancelled']) >= 1, out
    assert float(report['elapsed']) < (2.0 if on_exit == 'plain' else 2.0 + 2.0), out


# Ctrl-C on the main thread while it iterates a channel whose producer
# sleeps (ignoring cancellation): KeyboardInterrupt from the loop, at once;
# leaving the loop closed the channel.
def test_ctrl_c_interrupts_iterating_a_channel():
    report, out = run_report('ctrl-c-channel')
    assert report['from_call'] == 'True', out
    assert report['closed'] == 'True', out
    assert report['works'] == 'True', out
    assert float(report['elapsed']) < 2.0, out


# The Ctrl-C watcher's wakeup fd stays set between calls (setting it costs
# two system calls per call otherwise), but never in place of the
# application's: an fd set before the first call, or between calls, stays
# set; one removed between calls is replaced, so that Ctrl-C interrupts
# the next call; at exit the watcher's fd is removed.
def test_ctrl_c_watcher_leaves_the_applications_wakeup_fd_alone():
    report, out = run_report('ctrl-c-wakeup-fd')
    assert report['kept_before'] == 'True', out
    assert report['kept_between'] == 'True', out
    assert report['interrupted'] == 'True', out
    assert report['works'] == 'True', out
    assert report['released'] == 'True', out
