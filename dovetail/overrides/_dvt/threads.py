# threads.py: Python thread states kept by worker threads (private)
#
# SPDX-License-Identifier: LGPL-2.1-or-later

"""Worker threads that run Python keep their Python thread state.

Private API, for the work wrappers of ``gi.overrides.Dvt`` and the other
modules here:

``keep_thread_state()``
    Called at the start of Python work on a worker thread (cheap once the
    thread keeps its state).
"""

# PyGObject calls Python on a worker thread through PyGILState_Ensure(): on
# a thread Python did not create, that makes a Python thread state, and
# PyGILState_Release() at the end of the call destroys it again (with an
# mmap() and munmap() of its frame stack each time). A worker that runs
# Python keeps its thread state instead: one more PyGILState_Ensure() for
# the thread's lifetime. A worker thread that ends leaves its thread state
# behind; the next thread to keep one frees those of the threads that have
# ended (only on Linux, where /proc tells which threads still run).

import os
import sys
import threading

from .errors import lock


def _thread_api():
    if (sys.implementation.name != 'cpython' or
            not os.path.isdir('/proc/self/task') or
            not getattr(sys, '_is_gil_enabled', lambda: True)()):
        return None
    try:
        import ctypes
        api = ctypes.pythonapi
        api.PyGILState_Ensure.restype = ctypes.c_int
        for name in ('PyThreadState_Get', 'PyInterpreterState_Get',
                     'PyInterpreterState_ThreadHead', 'PyThreadState_Next'):
            getattr(api, name).restype = ctypes.c_void_p
        for name in ('PyInterpreterState_ThreadHead', 'PyThreadState_Next',
                     'PyThreadState_GetID', 'PyThreadState_Clear',
                     'PyThreadState_Delete'):
            getattr(api, name).argtypes = [ctypes.c_void_p]
        api.PyThreadState_GetID.restype = ctypes.c_uint64
        api.PyThreadState_Clear.restype = None
        api.PyThreadState_Delete.restype = None
        return api
    except (ImportError, AttributeError):
        return None


_api = _thread_api()
_thread_local = threading.local()
# native thread id -> (address, id) of the Python thread state it keeps
_kept_states = {}


def _free_states_of_ended_threads(api):
    """Frees the thread states kept by worker threads that have ended.
    A state is freed only if it is still listed by the interpreter under
    the same unique id: a thread Python made removes its own."""
    ended = [tid for tid in _kept_states
             if not os.path.exists('/proc/self/task/%d' % tid)]
    if not ended:
        return
    listed = set()
    state = api.PyInterpreterState_ThreadHead(api.PyInterpreterState_Get())
    while state:
        listed.add((state, api.PyThreadState_GetID(state)))
        state = api.PyThreadState_Next(state)
    for tid in ended:
        kept = _kept_states.pop(tid)
        if kept in listed:
            api.PyThreadState_Clear(kept[0])
            api.PyThreadState_Delete(kept[0])


def keep_thread_state():
    """Called at the start of Python work on a worker thread."""
    if _api is None or getattr(_thread_local, 'kept', False):
        return
    with lock:
        tid = threading.get_native_id()
        # A thread that kept a state has the flag set: a state recorded
        # under this id belonged to an ended thread whose id was reused.
        old = _kept_states.pop(tid, None)
        if old is not None:
            _kept_states[-1 - tid] = old  # never a live id: freed below
        _free_states_of_ended_threads(_api)
        _api.PyGILState_Ensure()
        state = _api.PyThreadState_Get()
        _kept_states[tid] = (state, _api.PyThreadState_GetID(state))
        _thread_local.kept = True
