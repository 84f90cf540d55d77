# conftest.py: fixtures for the Python tests of Dovetail
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Run from meson (`meson test --suite python`), which points
# GI_TYPELIB_PATH, LD_LIBRARY_PATH and PYTHONPATH into the build tree, or by
# hand with the same variables:
#   /usr/bin/python3 -m pytest -p no:cacheprovider tests/python

import faulthandler
import gc
import signal
import sys
import time

import pytest

from dvthelpers import DEADLINE, Dvt, override_module

# A fatal GLib warning or critical (G_DEBUG=fatal-warnings, as meson runs
# these tests) stops the process with SIGTRAP, which faulthandler does not
# watch by default: print every thread's Python stack first, then die of it
# as before. sys.__stderr__ is the real stderr under --capture=sys (see
# meson.build).
if hasattr(signal, 'SIGTRAP'):
    faulthandler.register(signal.SIGTRAP, file=sys.__stderr__, all_threads=True,
                          chain=True)


@pytest.fixture
def rt():
    """A runtime with two workers, shut down (waiting) after the test."""
    runtime = Dvt.Runtime.new(2)
    yield runtime
    runtime.shutdown(True, False)


@pytest.fixture
def tmp_file(tmp_path):
    path = tmp_path / 'data.txt'
    path.write_bytes(b'hello dovetail\n' * 100)
    return path


@pytest.fixture
def no_leaked_exceptions():
    """Checks that the override's side table of Python exceptions is empty
    again once the test has dropped its results, allowing a moment: the
    worker that ended a task lets go of it (and of what it holds) just
    after it woke the waiter."""
    gc.collect()
    before = override_module()._live_exception_count()
    yield
    deadline = time.monotonic() + DEADLINE
    while True:
        gc.collect()
        if override_module()._live_exception_count() == before:
            break
        assert time.monotonic() < deadline, 'exceptions still stored'
        time.sleep(0.005)


@pytest.fixture
def no_glib_loop():
    """Fails the test if anything iterates the global default context (for
    asyncio tests: nothing may need a GLib main loop of the test's)."""
    from dvthelpers import GLib
    ran = []
    source = GLib.idle_source_new()
    source.set_callback(lambda *_: ran.append(True) or GLib.SOURCE_CONTINUE)
    source.attach(GLib.MainContext.default())
    yield
    source.destroy()
    assert not ran, 'the global default GLib context was iterated'
