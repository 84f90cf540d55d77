// test-task-group.mjs: Dvt.TaskGroup from GJS, through its promisified
// async pairs
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A smoke test, run with `gjs -m` through check-stderr.js: JavaScript
// async work scheduled through a group on the GJS main context
// (use_caller_context), then wait_async (all, the first failure, the exit
// timeout), next_async in the order the members end, first_async with
// cancel_rest, and add/close errors.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Dvt from 'gi://Dvt?version=1';

const [thisFile] = GLib.filename_from_uri(import.meta.url);
imports.searchPath.unshift(GLib.path_get_dirname(thisFile));
const H = imports.harness;

Gio._promisify(Dvt.TaskGroup.prototype, 'wait_async', 'wait_finish');
Gio._promisify(Dvt.TaskGroup.prototype, 'next_async', 'next_finish');
Gio._promisify(Dvt.TaskGroup.prototype, 'first_async', 'first_finish');

const IO = Gio.IOErrorEnum;
const here = new Dvt.Options({use_caller_context: true});

function after(ms, fn) {
    GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
        fn();
        return GLib.SOURCE_REMOVE;
    });
}

// Async work that completes its task with @value after @ms.
const later = (ms, value) => task => after(ms, () => task.return_value(value));
const failLater = (ms, message) => task => after(ms, () =>
    task.return_error(new GLib.Error(IO, IO.PERMISSION_DENIED, message)));
// Async work that ends only when cancelled: holds its task until then.
const held = [];
const untilCancelled = task => held.push(task);

async function testWaitAll(rt) {
    const g = Dvt.TaskGroup.new(rt);
    const tasks = [30, 10, 20].map(ms => g.schedule(later(ms, ms), here, null));
    H.checkEqual(g.get_n_unfinished(), 3, 'wait_async: three members in flight');
    H.checkEqual(await g.wait_async(-1, null), true, 'wait_async: resolves to true once all ended');
    H.checkEqual(g.get_n_unfinished(), 0, 'wait_async: nothing left running');
    H.checkEqual(tasks.map(t => H.outValue(t.propagate_value())), [30, 10, 20],
        'wait_async: each member has its own value');
    H.checkEqual(g.get_tasks().length, 3, 'get_tasks: the members in order');
}

async function testFirstFailure(rt) {
    const g = new Dvt.TaskGroup({runtime: rt});
    g.schedule(later(5, 'ok'), here, null);
    g.schedule(failLater(10, 'denied'), here, null);
    const e = await H.rejection(g.wait_async(-1, null), 'wait_async with a failing member');
    H.checkGError(e, IO, IO.PERMISSION_DENIED, /denied/, 'wait_async: rejects with the failure, unchanged');
}

async function testExitTimeout(rt) {
    const g = Dvt.TaskGroup.new(rt);
    const task = g.schedule(untilCancelled, here, null);
    const e = await H.rejection(g.wait_async(0.02, null), 'wait_async with an exit timeout');
    H.checkGError(e, IO, IO.TIMED_OUT, null, 'wait_async: the exit timeout rejects with TIMED_OUT');
    H.check(task.completed, 'wait_async: the member left was cancelled');
}

async function testNext(rt) {
    const g = Dvt.TaskGroup.new(rt);
    [30, 5, 15].forEach(ms => g.schedule(later(ms, ms), here, null));
    const order = [];
    for (;;) {
        const task = await g.next_async(null);
        if (task === null)
            break;
        order.push(H.outValue(task.propagate_value()));
    }
    H.checkEqual(order, [5, 15, 30], 'next_async: the members in the order they end, then null');
}

async function testFirst(rt) {
    const g = Dvt.TaskGroup.new(rt);
    const slow = g.schedule(untilCancelled, here, null);
    g.schedule(failLater(1, 'first fails'), here, null);
    g.schedule(later(10, 'winner'), here, null);
    const first = await g.first_async(true, null);
    H.checkEqual(H.outValue(first.propagate_value()), 'winner', 'first_async: the first success');
    H.check(slow.completed, 'first_async: cancel_rest cancelled the rest');
}

async function testClosed(rt) {
    const g = Dvt.TaskGroup.new(rt);
    g.close();
    const e = H.catchError(() => g.schedule(later(1, 1), here, null), 'schedule on a closed group');
    H.checkGError(e, Dvt.Error, Dvt.Error.CLOSED, null, 'schedule on a closed group throws CLOSED');
    H.check(g.closed, 'close: the closed property is true');
}

H.run('test-task-group.mjs', async () => {
    const rt = Dvt.Runtime.new(2);
    try {
        await testWaitAll(rt);
        await testFirstFailure(rt);
        await testExitTimeout(rt);
        await testNext(rt);
        await testFirst(rt);
        await testClosed(rt);
    } finally {
        held.length = 0;
        rt.shutdown(true, false);
    }
});
