// test-async.mjs: Dovetail's main-loop twins awaited from an ES module
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Run with `gjs -m`. Every _async/_finish pair is promisified with
// Gio._promisify and awaited: run_async with JavaScript async work on the
// GJS main context (use_caller_context), map_async with JavaScript items,
// a future's wait_async (success, failure, a cancelled wait), gather_async,
// wait_idle_async, cancel_all, shutdown_async (called twice), and the
// task and runtime properties with their notify signals on the GJS main
// context (event_context). Promises resolve only while the main loop
// runs: harness.run() runs a GLib.MainLoop until the async main function
// ends (GJS 1.74 has no GLib.MainLoop.runAsync(); from GJS 1.76 an
// ES module can `await loop.runAsync()` instead).

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Dvt from 'gi://Dvt?version=1';

// The shared helpers are a legacy-imports script; GJS still provides the
// `imports` object to ES modules.
const [thisFile] = GLib.filename_from_uri(import.meta.url);
imports.searchPath.unshift(GLib.path_get_dirname(thisFile));
const H = imports.harness;

Gio._promisify(Dvt.Runtime.prototype, 'run_async', 'run_finish');
Gio._promisify(Dvt.Runtime.prototype, 'map_async', 'map_finish');
Gio._promisify(Dvt.Runtime.prototype, 'gather_async', 'gather_finish');
Gio._promisify(Dvt.Runtime.prototype, 'wait_idle_async', 'wait_idle_finish');
Gio._promisify(Dvt.Runtime.prototype, 'shutdown_async', 'shutdown_finish');
Gio._promisify(Dvt.Task.prototype, 'wait_async', 'wait_finish');
Gio._promisify(Dvt.Callable.prototype, 'call_async', 'call_finish');
Gio._promisify(Gio.File.prototype, 'load_contents_async', 'load_contents_finish');

const IO = Gio.IOErrorEnum;
const mainContext = GLib.MainContext.default();
const here = new Dvt.Options({use_caller_context: true});

// run_finish returns its gboolean, marked (skip), beside the out value in
// GJS 1.74 ([true, value]); Gio._promisify drops the true and resolves to
// [value]. Newer GJS resolves to the value itself. Accept both.
function runValue(r) {
    return Array.isArray(r) && r.length === 1 ? r[0] : r;
}

// Calls @fn once, @ms from now, from the main loop.
function after(ms, fn) {
    GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
        fn();
        return GLib.SOURCE_REMOVE;
    });
}

const sleep = ms => new Promise(resolve => after(ms, resolve));
const cancelSoon = cancellable => after(10, () => cancellable.cancel());

// Async work that completes its task with @value from a GLib timeout.
const later = (ms, value) => task => after(ms, () => task.return_value(value));

// Schedules work that does not complete its task: it hands the task over
// (that reference keeps it alive) through the promise `started`, for the
// test to complete or cancel. Returns the future and that promise.
function scheduleHeld(rt) {
    let hand;
    const started = new Promise(resolve => {
        hand = resolve;
    });
    const future = rt.schedule(t => hand(t), here, null);
    return {future, started};
}

async function testRunAsync(rt) {
    // Completed from a GLib timeout on this context.
    let onMain = null;
    let r = await rt.run_async(task => {
        onMain = mainContext.is_owner();
        later(10, 'from a timeout')(task);
    }, here, null);
    H.checkEqual(runValue(r), 'from a timeout', 'run_async: the value returned from a GLib timeout');
    H.check(onMain === true, 'run_async: the work ran on the GJS main context');

    // A JavaScript async function awaiting a Gio async call.
    const [, expected] = GLib.file_get_contents(thisFile);
    r = await rt.run_async(async (task, cancellable) => {
        try {
            const [contents] = await Gio.File.new_for_path(thisFile).load_contents_async(cancellable);
            task.return_value(contents.length);
        } catch (e) {
            task.return_error(e);
        }
    }, here, null);
    H.checkEqual(runValue(r), expected.length, 'run_async: an async function completes from a Gio async call');

    // The same, failing: the Gio error reaches the caller unchanged.
    const missing = GLib.build_filenamev([GLib.get_tmp_dir(), `dvt-no-such-file-${GLib.random_int()}`]);
    const direct = H.catchError(() => Gio.File.new_for_path(missing).load_contents(null), 'load_contents');
    const e = await H.rejection(rt.run_async(async (task, cancellable) => {
        try {
            await Gio.File.new_for_path(missing).load_contents_async(cancellable);
            task.return_value('found');
        } catch (err) {
            task.return_error(err);
        }
    }, here, null), 'run_async on a missing file');
    H.checkGError(e, IO, IO.NOT_FOUND, null, 'run_async: rejects with the Gio error (G_IO_ERROR_NOT_FOUND)');
    H.check(e instanceof GLib.Error && direct instanceof GLib.Error && e.message === direct.message,
        `run_async: the message is unchanged (${e && e.message})`);

    // Cancelled through the call's cancellable: the work (which keeps its
    // task and never completes it) sees its own cancellable cancelled.
    let workTask = null, workCancellable = null;
    const cancellable = new Gio.Cancellable();
    const p = rt.run_async((task, taskCancellable) => {
        workTask = task;
        workCancellable = taskCancellable;
    }, here, cancellable);
    cancelSoon(cancellable);
    H.checkGError(await H.rejection(p, 'cancelled run_async'), IO, IO.CANCELLED, null,
        'run_async: cancelling the call rejects with G_IO_ERROR_CANCELLED');
    H.check(workCancellable !== null && workCancellable.is_cancelled(),
        'run_async: the work\'s cancellable was cancelled');
    workTask = null;
}

async function testMapAsync(rt) {
    const n = 6, limit = 2;
    let inFlight = 0, peak = 0, allOnMain = true;
    const opts = new Dvt.Options({use_caller_context: true, async_items: true, max_concurrency: limit});
    const results = await rt.map_async(n, async task => {
        const i = task.get_index();
        allOnMain &&= mainContext.is_owner();
        peak = Math.max(peak, ++inFlight);
        await sleep(3 * (n - i));   // later items finish sooner
        inFlight--;
        task.return_value(`item ${i}`);
    }, opts, null);
    H.checkEqual(results, [...Array(n).keys()].map(i => `item ${i}`),
        'map_async: JavaScript async items give results in index order');
    H.check(peak >= 1 && peak <= limit, `map_async: at most ${limit} items in flight (peak ${peak})`);
    H.check(allOnMain, 'map_async: every item ran on the GJS main context');
}

async function testWaitAsync(rt) {
    // Success, completed later from a timeout.
    let task = rt.schedule(later(10, 'later'), here, null);
    H.check(!task.completed, 'wait_async: the future is not completed yet');
    H.checkEqual(await task.wait_async(null), true, 'wait_async: resolves to true for a task that succeeds');
    H.check(task.completed, 'wait_async: the future\'s completed property is true afterwards');
    H.checkEqual(H.outValue(task.propagate_value()), 'later', 'wait_async: the value is read with propagate_value');

    // On a task that has already ended, the callback still comes after
    // the call has returned.
    let resolved = false;
    const again = task.wait_async(null).then(v => {
        resolved = true;
        return v;
    });
    H.check(!resolved, 'wait_async: not resolved during the call, even for an ended task');
    H.checkEqual(await again, true, 'wait_async: an ended task resolves at once afterwards');

    // A GLib.Error thrown by the work: the wait rejects with it, unchanged,
    // in a domain of the application's own.
    const domain = GLib.quark_from_string('dvt-gjs-test-error');
    task = rt.schedule(() => {
        throw new GLib.Error(domain, 7, 'thrown by JavaScript');
    }, here, null);
    let e = await H.rejection(task.wait_async(null), 'wait_async on a throwing future');
    H.check(e instanceof GLib.Error && e.domain === domain && e.code === 7 && e.message === 'thrown by JavaScript',
        `wait_async: rejects with the thrown GLib.Error unchanged (${H.describe(e)})`);
    H.check(task.completed && task.had_error(), 'wait_async: the failed future is completed, with an error');
    e = H.catchError(() => task.propagate_int(), 'propagate_int of the failed future');
    H.check(e instanceof GLib.Error && e.domain === domain && e.code === 7,
        'wait_async: propagate_int throws the same error');

    // Returned later with return_error.
    task = rt.schedule(t => after(1, () => t.return_error(new GLib.Error(IO, IO.PERMISSION_DENIED, 'no entry'))),
        here, null);
    H.checkGError(await H.rejection(task.wait_async(null), 'wait_async on a late return_error'),
        IO, IO.PERMISSION_DENIED, /^no entry$/, 'wait_async: an error returned later rejects unchanged');

    // A JavaScript exception that is no GLib.Error: GJS carries it as a
    // GError of its own domain and turns it back into an Error.
    task = rt.schedule(() => {
        throw new TypeError('not a GLib.Error');
    }, here, null);
    e = await H.rejection(task.wait_async(null), 'wait_async on a future throwing a TypeError');
    H.check(e instanceof Error && /not a GLib\.Error/.test(e.message),
        `wait_async: a plain JavaScript exception rejects with its message (${H.describe(e)})`);

    // A cancelled wait ends the wait only; the task goes on.
    const held = scheduleHeld(rt);
    task = held.future;
    const cancellable = new Gio.Cancellable();
    const waiting = task.wait_async(cancellable);
    cancelSoon(cancellable);
    H.checkGError(await H.rejection(waiting, 'cancelled wait_async'), IO, IO.CANCELLED, null,
        'wait_async: cancelling the wait rejects with G_IO_ERROR_CANCELLED');
    H.check(!task.completed && !task.get_cancellable().is_cancelled(),
        'wait_async: a cancelled wait leaves the task running, not cancelled');
    (await held.started).return_value('after the wait');
    H.checkEqual(await task.wait_async(null), true, 'wait_async: a new wait sees the task succeed');
    H.checkEqual(H.outValue(task.propagate_value()), 'after the wait', 'wait_async: with its value');
}

async function testGatherAsync(rt) {
    const futures = [0, 1, 2, 3].map(i => rt.schedule(later(3 * (4 - i), i * 10), here, null));
    H.checkEqual(await rt.gather_async(futures, null, null), [0, 10, 20, 30],
        'gather_async: results in the order of the futures');

    // Without return_errors the first failure rejects (and futures that
    // have not started yet are cancelled), so each gather gets new ones.
    const failing = () => [0, 1, 2].map(i => rt.schedule(t => {
        if (i === 1)
            throw new GLib.Error(IO, IO.NOT_SUPPORTED, 'item 1 refuses');
        t.return_value(i);
    }, here, null));
    H.checkGError(await H.rejection(rt.gather_async(failing(), null, null), 'gather_async with a failure'),
        IO, IO.NOT_SUPPORTED, /^item 1 refuses$/, 'gather_async: the first failure rejects unchanged');

    const slots = await rt.gather_async(failing(), new Dvt.Options({return_errors: true}), null);
    H.check(slots.length === 3 && slots[0] === 0 && slots[2] === 2 &&
            slots[1] instanceof GLib.Error && slots[1].matches(IO, IO.NOT_SUPPORTED),
    `gather_async: return_errors puts the GLib.Error in its slot (${slots.map(H.describe)})`);
}

async function testWaitIdle(rt) {
    const tasks = [5, 1, 3, 2].map(ms => rt.schedule(later(ms, ms), here, null));
    H.check(rt.pending >= 1, `wait_idle_async: the runtime's pending property counts the work (${rt.pending})`);
    H.checkEqual(await rt.wait_idle_async(null), true, 'wait_idle_async: resolves to true');
    H.check(tasks.every(t => t.completed), 'wait_idle_async: every task had ended');
    H.check(rt.pending === 0 && rt.running === 0,
        `wait_idle_async: pending and running read 0 (${rt.pending}, ${rt.running})`);

    // A cancelled wait for idleness.
    const held = scheduleHeld(rt);
    const cancellable = new Gio.Cancellable();
    const waiting = rt.wait_idle_async(cancellable);
    cancelSoon(cancellable);
    H.checkGError(await H.rejection(waiting, 'cancelled wait_idle_async'), IO, IO.CANCELLED, null,
        'wait_idle_async: cancelling the wait rejects with G_IO_ERROR_CANCELLED');
    H.check(!rt.is_shutdown() && rt.pending === 1, 'wait_idle_async: the runtime and its task go on');
    (await held.started).return_value(1);
    H.checkEqual(await rt.wait_idle_async(null), true, 'wait_idle_async: idle once the last task ended');
}

async function testCancelAll(rt) {
    await rt.wait_idle_async(null);
    const held = [0, 1, 2].map(() => scheduleHeld(rt));
    await Promise.all(held.map(h => h.started));
    const tasks = held.map(h => h.future);
    H.checkEqual(rt.cancel_all(), 3, 'cancel_all: returns 3 for three running tasks');
    for (const task of tasks) {
        H.checkGError(await H.rejection(task.wait_async(null), 'wait_async on a task cancel_all cancelled'),
            IO, IO.CANCELLED, null, `cancel_all: task ${task.id} ends with G_IO_ERROR_CANCELLED`);
    }
    H.checkEqual(rt.cancel_all(), 0, 'cancel_all: 0 when nothing is left');
    const r = await rt.run_async(t => t.return_value('still open'), here, null);
    H.checkEqual(runValue(r), 'still open', 'cancel_all: the runtime still accepts work');
}

// The properties and their notifications, on a runtime whose events come
// on the GJS main context (its event_context). Connect to the runtime
// before submitting: its running and pending counts notify only for tasks
// accepted while it has a handler.
async function testNotify() {
    const rt = new Dvt.Runtime({max_workers: 1, event_context: mainContext});
    const pending = [];
    rt.connect('notify::pending', runtime => {
        pending.push({value: runtime.pending, onMain: mainContext.is_owner()});
    });

    const seen = [], where = {};
    const opts = new Dvt.Options({use_caller_context: true, name: 'watched'});
    const task = rt.schedule(later(20, 'seen'), opts, null);
    task.connect('finished', () => seen.push('finished'));
    task.connect('notify::completed', t => {
        seen.push(`completed=${t.completed}`);
        where.onMain = mainContext.is_owner();
        where.depth = GLib.main_depth();
    });
    H.checkEqual(task.name, 'watched', 'properties: task.name is the options\' name');
    H.check(typeof task.id === 'number' && task.id === task.get_id() && task.id > 0,
        `properties: task.id is its execution id (${task.id})`);
    H.checkEqual(task.attempt, 1, 'properties: task.attempt is 1');

    await task.wait_async(null);
    H.check(await H.until(() => seen.length >= 2), 'notify::completed: the handler ran');
    await sleep(20);
    H.checkEqual(seen, ['finished', 'completed=true'],
        'notify::completed: once, after the task\'s finished signal, reading true');
    H.check(where.onMain === true && where.depth >= 1,
        `notify::completed: on the GJS main context, from its main loop (depth ${where.depth})`);

    // A cancelled future is completed too.
    let cancelledNotes = 0;
    const doomed = scheduleHeld(rt);
    doomed.future.connect('notify::completed', () => cancelledNotes++);
    await doomed.started;
    doomed.future.cancel();
    H.check(await H.until(() => cancelledNotes === 1), 'notify::completed: a cancelled future notifies too');

    H.check(await H.until(() => pending.length > 0 && pending[pending.length - 1].value === 0),
        `notify::pending: the last notification reads 0 (${pending.map(p => p.value)})`);
    H.check(pending.every(p => p.onMain), 'notify::pending: every notification on the GJS main context');

    await rt.shutdown_async(false, null);
}

// A request context pushed around a call is current in its work and its
// completion, and not after.
async function testContext(rt) {
    const current = () => Dvt.Context.get_current()?.get_string('request-id') ?? null;
    const ctx = Dvt.Context.new().with_string('request-id', 'js-request');
    ctx.push();
    const promise = rt.run_async(task => later(5, current())(task), here, null);
    ctx.pop();
    H.checkEqual(current(), null, 'Context: popped, none is current');
    H.checkEqual(runValue(await promise), 'js-request', 'Context: the work sees the context of its submitter');
}

async function testCallable(rt) {
    // JavaScript runs on the GJS main thread only: a callable of
    // JavaScript work is async work run on the caller's context.
    const options = new Dvt.Options({use_caller_context: true});
    options.set_name('double');
    const double = Dvt.Callable.new_async(rt, (task, args) => task.return_value(2 * args.unpack()), options);
    H.checkEqual(double.dup_options().get_name(), 'double', 'Callable: keeps a copy of its options');
    const values = await Promise.all([1, 2, 3].map(n => double.call_async(new GLib.Variant('i', n), null)));
    H.checkEqual(values.map(runValue), [2, 4, 6], 'Callable: call_async resolves to each call\'s value');
    const task = double.submit(new GLib.Variant('i', 21), null);
    await task.wait_async(null);
    H.checkEqual(H.outValue(task.propagate_value()), 42, 'Callable: submit returns a future');
}

async function testShutdown(rt) {
    const slow = rt.schedule(later(20, 'drained'), here, null);
    const first = rt.shutdown_async(false, null);
    const second = rt.shutdown_async(false, null);
    H.check(rt.is_shutdown(), 'shutdown_async: the runtime refuses work at once');
    H.checkGError(H.catchError(() => rt.schedule(t => t.return_value(1), here, null), 'schedule after shutdown_async'),
        Dvt.Error, Dvt.Error.CLOSED, null, 'shutdown_async: schedule then fails with Dvt.Error.CLOSED');
    H.checkEqual(await Promise.all([first, second]), [true, true], 'shutdown_async: both calls resolve to true');
    H.check(slow.completed && !slow.had_error(), 'shutdown_async: the work in flight was drained, not cancelled');
    H.checkEqual(H.outValue(slow.propagate_value()), 'drained', 'shutdown_async: with its value');
    H.checkEqual(await rt.shutdown_async(false, null), true, 'shutdown_async: a later call resolves too');
    H.checkGError(await H.rejection(rt.run_async(t => t.return_value(1), here, null), 'run_async after shutdown'),
        Dvt.Error, Dvt.Error.CLOSED, null, 'shutdown_async: run_async then rejects with Dvt.Error.CLOSED');

    // With cancel_pending, work that would never end is cancelled.
    const other = new Dvt.Runtime({max_workers: 1});
    const stuck = scheduleHeld(other);
    await stuck.started;
    H.checkEqual(await other.shutdown_async(true, null), true, 'shutdown_async (cancel_pending): resolves');
    H.checkGError(H.catchError(() => stuck.future.propagate_int(), 'propagate_int of the cancelled task'),
        IO, IO.CANCELLED, null, 'shutdown_async (cancel_pending): the stuck task was cancelled');
}

H.run('test-async.mjs', async () => {
    const rt = new Dvt.Runtime({max_workers: 2});
    await testRunAsync(rt);
    await testMapAsync(rt);
    await testWaitAsync(rt);
    await testGatherAsync(rt);
    await testWaitIdle(rt);
    await testCancelAll(rt);
    await testNotify();
    await testContext(rt);
    await testCallable(rt);
    await rt.wait_idle_async(null);
    const s = rt.get_stats();
    H.check(s.pending === 0 && s.queued === s.done + s.error + s.cancelled,
        `stats: queued ${s.queued} == done ${s.done} + error ${s.error} + cancelled ${s.cancelled} once idle`);
    await testShutdown(rt);
});
