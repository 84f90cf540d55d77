# test_names.py: every fixed name of the design is reachable from Python
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import subprocess
import sys

import pytest

from dvthelpers import Dvt, override_module, raw_class

RUNTIME_METHODS = [
    'new', 'get_default', 'get_context', 'run_blocking', 'to_thread_blocking',
    'to_thread_async', 'to_thread_finish', 'schedule', 'submit',
    'map_blocking', 'map_async', 'map_finish', 'gather_blocking', 'shutdown',
    'is_shutdown', 'get_stats',
]

TASK_METHODS = [
    'wait', 'cancel', 'get_cancellable', 'get_id', 'get_name', 'set_name',
    'get_attempt', 'get_index', 'get_completed', 'had_error',
    'return_value', 'return_boolean', 'return_int', 'return_error',
    'propagate_value', 'propagate_boolean', 'propagate_int',
]

OPTIONS_PROPERTIES = ['name', 'max-concurrency', 'return-errors',
                      'async-items', 'use-caller-context']

STATS_FIELDS = ['queued', 'started', 'done', 'error', 'cancelled',
                'running', 'pending']


def test_import_in_a_fresh_interpreter():
    code = ('import gi; gi.require_version("Dvt", "1"); '
            'from gi.repository import Dvt; '
            'print(Dvt.Runtime.__module__, Dvt._version)')
    out = subprocess.run([sys.executable, '-c', code], check=True,
                         capture_output=True, text=True, timeout=60)
    module, version = out.stdout.split()
    assert module == 'gi.overrides.Dvt'
    assert version == '1'


def test_the_override_comes_from_this_build_tree():
    builddir = os.environ.get('G_TEST_BUILDDIR')
    if builddir is None:
        pytest.skip('not run from meson')
    build_root = os.path.dirname(os.path.abspath(builddir))
    path = os.path.abspath(override_module().__file__)
    assert path == os.path.join(build_root, 'python', 'gi', 'overrides', 'Dvt.py')


@pytest.mark.parametrize('name', RUNTIME_METHODS)
def test_runtime_method(name):
    assert callable(getattr(Dvt.Runtime, name))
    # The introspected method exists too, under the same name.
    assert callable(getattr(raw_class('Runtime'), name))


@pytest.mark.parametrize('name', TASK_METHODS)
def test_task_method(name):
    assert callable(getattr(Dvt.Task, name))
    assert callable(getattr(raw_class('Task'), name))


def test_error_domain_and_codes():
    assert Dvt.Error.CLOSED != Dvt.Error.WOULD_DEADLOCK
    for name in ('FAILED', 'CLOSED', 'WOULD_DEADLOCK', 'NOT_COMPLETED',
                 'INVALID_ARGUMENT'):
        assert isinstance(getattr(Dvt.Error, name), int)
    assert Dvt.error_quark() != 0


def test_options_properties():
    names = {p.name for p in Dvt.Options.list_properties()}
    assert set(OPTIONS_PROPERTIES) <= names


def test_stats_fields(rt):
    stats = rt.get_stats()
    for field in STATS_FIELDS:
        assert isinstance(getattr(stats, field), int)


def test_runtime_properties():
    names = {p.name for p in Dvt.Runtime.list_properties()}
    assert {'max-workers', 'name'} <= names


def test_override_classes_are_the_registered_ones(rt):
    assert type(rt) is Dvt.Runtime
    assert issubclass(Dvt.Runtime, raw_class('Runtime'))
    task = rt.submit(lambda task, cancellable, data: task.return_value(1))
    assert type(task) is Dvt.Task
    assert task.result(10) == 1
