# chunks.py: a map over Python items, shared among a few runners (private)
#
# SPDX-License-Identifier: LGPL-2.1-or-later

"""The work of ``Runtime.map_blocking(fn, items)`` and ``map_async(fn,
items)``.

Private API, for ``gi.overrides.Dvt``:

``item_work(scope, fn, items)``
    A ``DvtMapFunc`` for a map of ``len(items)`` items, each a task of its
    own: item ``i`` returns ``fn(items[i])``.

``Chunks(scope, fn, items, n_runners, return_errors)``
    The same items for a map of @n_runners items, each a runner that calls
    ``fn`` over runs of items (``Runtime.get_map_runners()`` tells how
    many, or that each item must be a task of its own): ``.run`` is the
    ``DvtMapFunc``; ``.take_results()`` the results once the map has
    succeeded, in input order.

@scope is the call's :class:`.errors.Scope`: the exceptions of the items
go there, and its end stops any item from starting.
"""

import threading
import weakref

from gi.module import get_introspection_module

from .errors import guard, unwrap_list
from .errors import held as _held
from .threads import keep_thread_state
from .values import box

Dvt = get_introspection_module('Dvt')


def item_work(scope, fn, items):
    """Wraps fn(item) into a DvtMapFunc."""
    scope_ref = weakref.ref(scope)
    holder = scope.hold_work(fn, items)

    def run(task, cancellable, *_ignored):
        keep_thread_state()
        fn, items = _held(holder)
        ok, value = guard(scope_ref(), fn, items[task.get_index()])
        del fn, items
        if not ok:
            del task, cancellable, _ignored
            raise value
        Dvt.Task.return_value(task, box(value))
    return run


class Chunks:
    """``fn(item)`` for every item of ``map_blocking(fn, items)``, run by a
    few map items (runners, at most one per worker and never more than
    max-concurrency), each calling ``fn`` in a loop over runs of
    consecutive items it claims. A run is a share of what is left (guided
    scheduling: long runs first, single items at the end), so the workers
    stay busy whatever the items cost, and a Python function is entered
    once per runner instead of once per item.

    Item by item, the map keeps its meaning: results in input order; in
    return-errors mode each failure in its slot; otherwise the first
    failure stops every runner before its next item and fails the map.
    Each item is let in only while the map's holder (Scope.hold_work) is
    not empty, and the call empties it before it returns or raises,
    however the map ends: no item starts after that. Cancelling the map's
    cancellable empties it too, so that a cancellation stops the runners
    before their next item even before the caller is released (the
    runtime may cancel it before or after it releases the caller)."""

    __slots__ = ('scope', 'held', 'results', 'return_errors', 'n_runners',
                 'next', 'failed', 'lock')

    def __init__(self, scope, fn, items, n_runners, return_errors):
        self.scope = scope
        self.held = scope.hold_work(fn, items)
        self.results = [None] * len(items)
        self.return_errors = return_errors
        self.n_runners = n_runners
        self.next = 0
        self.failed = False  # a slot holds a failure
        self.lock = threading.Lock()

    def _claim(self, n):
        """The next run of items, as a range: empty at the end, and once
        the map has ended."""
        with self.lock:
            if not self.held:
                return range(0)
            start = self.next
            self.next = end = min(n, start + max(1, (n - start) // (2 * self.n_runners)))
        return range(start, end)

    def _cancelled(self, *_ignored):
        self.held.clear()

    def run(self, task, cancellable, *_ignored):
        keep_thread_state()
        if cancellable is not None:
            # The map's own cancellable, which ends with the map: the
            # handler is not disconnected.
            cancellable.connect(self._cancelled)
        scope, results, held = self.scope, self.results, self.held
        # Empty when another runner failed, or the map has ended: this
        # runner has nothing to do, and must not fail the map itself.
        fn, items = tuple(held) or (None, ())
        n = len(items)
        run = self._claim(n)
        while run:
            for i in run:
                # Each item is let in by this test, one step under the
                # interpreter lock: once the caller has emptied the
                # holder, no runner starts another item.
                if not held:
                    break
                ok, value = guard(scope, fn, items[i])
                if not ok:
                    if not self.return_errors:
                        held.clear()  # the others stop before their next item
                        del task, cancellable, _ignored, scope, fn, items, results
                        raise value
                    self.failed = True
                results[i] = value
            run = self._claim(n)
        Dvt.Task.return_boolean(task, True)

    def take_results(self):
        results, self.results = self.results, None
        return unwrap_list(results) if self.failed else results
