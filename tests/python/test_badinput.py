# test_badinput.py: bad arguments are refused at the call, before anything
# is queued, on every entry point of the overrides
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import pytest

from dvthelpers import Dvt


def work(task, cancellable, user_data):
    task.return_value(user_data)


def done(source, result, user_data):
    pass


# Every call that takes work, with @bad in the work's place. A work that is
# not callable would otherwise be queued and fail only once it ran (the
# futures from their result(), the blocking calls after a round trip).
CALLS = {
    'run_blocking': lambda rt, bad: rt.run_blocking(bad),
    'to_thread_blocking': lambda rt, bad: rt.to_thread_blocking(bad),
    'call_blocking': lambda rt, bad: rt.call_blocking(bad, 1),
    'to_thread_async': lambda rt, bad: rt.to_thread_async(bad, callback=done),
    'submit': lambda rt, bad: rt.submit(bad),
    'submit_call': lambda rt, bad: rt.submit_call(bad, 1),
    'schedule': lambda rt, bad: rt.schedule(bad),
    'map_blocking raw': lambda rt, bad: rt.map_blocking(3, bad),
    'map_blocking items': lambda rt, bad: rt.map_blocking(bad, [1, 2]),
    'map_async raw': lambda rt, bad: rt.map_async(3, bad, callback=done),
    'map_async items': lambda rt, bad: rt.map_async(bad, [1, 2], callback=done),
    # A callback that is not callable would fail only when the work is over.
    'to_thread_async callback': lambda rt, bad: rt.to_thread_async(work, callback=bad),
    'map_async raw callback': lambda rt, bad: rt.map_async(3, work, callback=bad),
    'map_async items callback': lambda rt, bad: rt.map_async(abs, [1, 2], callback=bad),
}


# None is no callback; an int first is the count of a map's raw form.
CASES = [(call, bad) for call in CALLS
         for bad in (12345.0 if call.endswith('items') else 12345, None, 'work')
         if not (call.endswith('callback') and bad is None)]


@pytest.mark.parametrize('call, bad', CASES)
def test_work_that_is_not_callable_is_refused_before_it_is_queued(rt, call, bad):
    with pytest.raises(TypeError) as info:
        CALLS[call](rt, bad)
    assert 'needs a callable' in str(info.value)
    assert type(bad).__name__ in str(info.value)
    assert rt.get_stats().queued == 0


@pytest.mark.parametrize('elements, index', [
    (lambda task: [None], 0),
    (lambda task: [task, 7, task], 1),
    (lambda task: [task, Dvt.Options()], 1),
], ids=['None', 'int', 'Options'])
def test_gather_of_something_else_than_tasks_is_refused(rt, elements, index):
    task = rt.submit_call(abs, -3)
    elements = elements(task)
    with pytest.raises(TypeError) as info:
        rt.gather_blocking(elements)
    message = str(info.value)
    assert 'element %d' % index in message
    assert type(elements[index]).__name__ in message
    # The tasks given are left alone.
    assert task.result(60) == 3
    assert rt.gather_blocking([task]) == [3]


# A Task made by a binding without a runtime (GObject.new) is no task of
# any runtime; its calls must not crash (the task layer must not assume
# that every task has a runtime and a core).
def test_a_task_made_without_a_runtime_does_not_crash():
    from gi.repository import GObject
    task = GObject.new(Dvt.Task)
    assert task.get_runtime() is None
    assert not task.get_completed()
    task.cancel()
    task.get_cancellable()
    del task
