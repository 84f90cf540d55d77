// test-runtime.js: JavaScript async work through a Dovetail runtime, on
// the GJS main context
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// GJS runs JavaScript only on its own thread, so the work here runs on the
// GJS main context (Dvt.Options use_caller_context, and async_items for
// maps) with the runtime's bounded concurrency, ordering and errors.
// Run by meson through check-stderr.js, which also fails the test on any
// unexpected critical or warning on stderr.

imports.gi.versions.Dvt = '1';
const {Dvt, GLib, Gio} = imports.gi;

imports.searchPath.unshift(GLib.path_get_dirname(imports.system.programPath));
const H = imports.harness;

Gio._promisify(Dvt.Runtime.prototype, 'map_async', 'map_finish');

const DOMAIN_IO = Gio.IOErrorEnum;

// A map item that completes after @delayMs on the main context, counting
// how many items are in flight at once.
function delayedItems(track, delayOf, valueOf) {
    return (task, _cancellable) => {
        const i = task.get_index();
        track.started.push(i);
        track.inFlight++;
        track.peak = Math.max(track.peak, track.inFlight);
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, delayOf(i), () => {
            track.inFlight--;
            track.done.push(i);
            task.return_value(valueOf(i));
            return GLib.SOURCE_REMOVE;
        });
    };
}

function newTrack() {
    return {inFlight: 0, peak: 0, started: [], done: []};
}

async function testOrderedBoundedMap(rt) {
    const n = 8, limit = 2;
    const opts = new Dvt.Options({async_items: true, use_caller_context: true, max_concurrency: limit});
    const track = newTrack();

    // Later items finish sooner, so completion order differs from index order.
    const results = await rt.map_async(n,
        delayedItems(track, i => 5 * (n - i), i => i * 2),
        opts, null);

    H.checkEqual(results, [0, 2, 4, 6, 8, 10, 12, 14], 'map_async: results in index order');
    H.check(track.peak <= limit, `map_async: peak in flight ${track.peak} <= max_concurrency ${limit}`);
    H.check(track.peak === limit, `map_async: the limit was reached (${track.peak} of ${limit} in flight)`);
    H.checkEqual([...track.started].sort((a, b) => a - b), [...Array(n).keys()],
        'map_async: every index started exactly once');
    H.check(JSON.stringify(track.done) !== JSON.stringify([...Array(n).keys()]),
        `map_async: items completed out of index order (${track.done})`);
    H.checkEqual(track.inFlight, 0, 'map_async: nothing left in flight');
}

async function testWiderMap(rt) {
    const n = 30, limit = 3;
    const opts = new Dvt.Options({async_items: true, use_caller_context: true, max_concurrency: limit});
    const track = newTrack();
    // A fixed pseudo-random pattern of delays.
    const results = await rt.map_async(n,
        delayedItems(track, i => (i * 7919) % 13, i => `item-${i}`),
        opts, null);

    H.checkEqual(results, [...Array(n).keys()].map(i => `item-${i}`),
        `map_async: ${n} string results in index order`);
    H.check(track.peak <= limit && track.peak >= 1,
        `map_async: peak in flight ${track.peak} <= ${limit} with ${n} items`);
}

async function testSynchronousItems(rt) {
    // Items that complete before they return, on the caller's context.
    const opts = new Dvt.Options({async_items: true, use_caller_context: true, max_concurrency: 4});
    const results = await rt.map_async(10, task => {
        task.return_value(task.get_index() + 100);
    }, opts, null);
    H.checkEqual(results, [...Array(10).keys()].map(i => i + 100),
        'map_async: items completed at once give ordered results');
}

async function testMapErrors(rt) {
    const opts = new Dvt.Options({async_items: true, use_caller_context: true, max_concurrency: 2});

    // Thrown from the item function itself
    let e = await H.rejection(rt.map_async(6, task => {
        if (task.get_index() === 3)
            throw new GLib.Error(DOMAIN_IO, Gio.IOErrorEnum.NOT_FOUND, 'item 3 is missing');
        task.return_value(task.get_index());
    }, opts, null), 'map_async with a throwing item');
    H.checkGError(e, DOMAIN_IO, Gio.IOErrorEnum.NOT_FOUND, /^item 3 is missing$/,
        'map_async: a GLib.Error thrown by an item reaches the caller unchanged');

    // Returned later, from the main loop
    e = await H.rejection(rt.map_async(4, task => {
        const i = task.get_index();
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, 3, () => {
            if (i === 1)
                task.return_error(new GLib.Error(DOMAIN_IO, Gio.IOErrorEnum.PERMISSION_DENIED, 'no entry'));
            else
                task.return_value(i);
            return GLib.SOURCE_REMOVE;
        });
    }, opts, null), 'map_async with a late return_error');
    H.checkGError(e, DOMAIN_IO, Gio.IOErrorEnum.PERMISSION_DENIED, /^no entry$/,
        'map_async: an error returned later by an item reaches the caller');

    // return_errors: failures land in their slots
    const all = new Dvt.Options({async_items: true, use_caller_context: true, max_concurrency: 2, return_errors: true});
    const results = await rt.map_async(4, task => {
        const i = task.get_index();
        GLib.idle_add(GLib.PRIORITY_DEFAULT, () => {
            if (i % 2)
                task.return_error(new GLib.Error(DOMAIN_IO, Gio.IOErrorEnum.FAILED, `odd ${i}`));
            else
                task.return_value(`even ${i}`);
            return GLib.SOURCE_REMOVE;
        });
    }, all, null);
    H.check(Array.isArray(results) && results.length === 4, 'map_async return_errors: 4 slots');
    H.checkEqual(results[0], 'even 0', 'map_async return_errors: slot 0 holds its value');
    H.checkGError(results[1], DOMAIN_IO, Gio.IOErrorEnum.FAILED, /^odd 1$/,
        'map_async return_errors: slot 1 holds its GLib.Error');
    H.checkEqual(results[2], 'even 2', 'map_async return_errors: slot 2 holds its value');
    H.checkGError(results[3], DOMAIN_IO, Gio.IOErrorEnum.FAILED, /^odd 3$/,
        'map_async return_errors: slot 3 holds its GLib.Error');
}

async function testMapCancel(rt) {
    const opts = new Dvt.Options({async_items: true, use_caller_context: true, max_concurrency: 2});
    const cancellable = new Gio.Cancellable();
    const track = newTrack();
    const p = rt.map_async(20, delayedItems(track, () => 20, i => i), opts, cancellable);
    GLib.timeout_add(GLib.PRIORITY_DEFAULT, 30, () => {
        cancellable.cancel();
        return GLib.SOURCE_REMOVE;
    });
    const e = await H.rejection(p, 'cancelled map_async');
    H.checkGError(e, DOMAIN_IO, Gio.IOErrorEnum.CANCELLED, null,
        'map_async: cancelling ends the map with G_IO_ERROR_CANCELLED');
    H.check(track.started.length < 20, `map_async: items not started when cancelled never start (${track.started.length} of 20 started)`);
    // Late completions of items in flight are dropped quietly.
    await H.until(() => track.inFlight === 0, 2000);
    H.checkEqual(track.inFlight, 0, 'map_async: items in flight at cancellation still end');
}

async function testSchedule(rt) {
    const opts = new Dvt.Options({use_caller_context: true});

    // Completes later from a timeout on this (the GJS main) context; wait()
    // iterates this context meanwhile.
    let ran = false;
    let task = rt.schedule((t, _c) => {
        ran = true;
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, 10, () => {
            t.return_value('scheduled result');
            return GLib.SOURCE_REMOVE;
        });
    }, opts, null);
    H.check(task instanceof Dvt.Task, 'schedule: returns a Dvt.Task');
    H.check(task.get_id() > 0, `schedule: the task has an id (${task.get_id()})`);
    H.check(task.wait(10), 'schedule: wait() returns true once the task ended');
    H.check(ran, 'schedule: the JS function ran (on the GJS thread)');
    H.check(task.get_completed() && !task.had_error(), 'schedule: completed without error');
    H.checkEqual(H.outValue(task.propagate_value()), 'scheduled result',
        'schedule: propagate_value gives the result');

    // Integer result, read while the loop runs instead of wait()
    task = rt.schedule(t => {
        GLib.idle_add(GLib.PRIORITY_DEFAULT, () => {
            t.return_int(4242);
            return GLib.SOURCE_REMOVE;
        });
    }, opts, null);
    H.check(await H.until(() => task.get_completed(), 5000), 'schedule: completes while the main loop runs');
    H.checkEqual(task.propagate_int(), 4242, 'schedule: propagate_int gives 4242');

    // A GLib.Error thrown by the JS function reaches propagate_*()
    task = rt.schedule(() => {
        throw new GLib.Error(DOMAIN_IO, Gio.IOErrorEnum.PERMISSION_DENIED, 'not allowed here');
    }, opts, null);
    H.check(task.wait(10), 'schedule (throws): wait() returns true');
    H.check(task.had_error(), 'schedule (throws): had_error()');
    let e = H.catchError(() => task.propagate_int(), 'schedule (throws): propagate_int');
    H.checkGError(e, DOMAIN_IO, Gio.IOErrorEnum.PERMISSION_DENIED, /^not allowed here$/,
        'schedule: a thrown GLib.Error reaches propagate_int unchanged');
    e = H.catchError(() => task.propagate_value(), 'schedule (throws): propagate_value');
    H.checkGError(e, DOMAIN_IO, Gio.IOErrorEnum.PERMISSION_DENIED, /^not allowed here$/,
        'schedule: a thrown GLib.Error reaches propagate_value unchanged');

    // return_error later
    task = rt.schedule(t => {
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, 5, () => {
            t.return_error(new GLib.Error(DOMAIN_IO, Gio.IOErrorEnum.TIMED_OUT, 'gave up'));
            return GLib.SOURCE_REMOVE;
        });
    }, opts, null);
    H.check(task.wait(10), 'schedule (return_error): wait() returns true');
    e = H.catchError(() => task.propagate_boolean(), 'schedule (return_error): propagate_boolean');
    H.checkGError(e, DOMAIN_IO, Gio.IOErrorEnum.TIMED_OUT, /^gave up$/,
        'schedule: an error returned later reaches propagate_boolean unchanged');

    // wait() with a timeout on work that never completes (the task is kept
    // by the closure), then cancel it.
    let keep = null;
    task = rt.schedule(t => {
        keep = t;
    }, opts, null);
    e = H.catchError(() => task.wait(0.05), 'schedule (never completes): wait(0.05)');
    H.checkGError(e, DOMAIN_IO, Gio.IOErrorEnum.TIMED_OUT, null,
        'schedule: wait() with a timeout fails with G_IO_ERROR_TIMED_OUT');
    task.cancel();
    H.check(task.wait(10), 'schedule: a cancelled task has ended');
    e = H.catchError(() => task.propagate_int(), 'schedule (cancelled): propagate_int');
    H.checkGError(e, DOMAIN_IO, Gio.IOErrorEnum.CANCELLED, null,
        'schedule: a cancelled task fails with G_IO_ERROR_CANCELLED');
    keep = null;
}

// Retries and timeouts apply to JavaScript async work as to any other;
// the back-off and timeout timers run on the runtime's loop thread and the
// work again on this context.
function testPolicy() {
    const rt = new Dvt.Runtime({max_workers: 1, retries: 2, retry_backoff: 0.001});
    const opts = new Dvt.Options({use_caller_context: true});

    const attempts = [];
    let task = rt.schedule(t => {
        attempts.push(t.get_attempt());
        if (attempts.length < 3)
            throw new GLib.Error(DOMAIN_IO, Gio.IOErrorEnum.FAILED, `attempt ${t.get_attempt()}`);
        t.return_value('third time lucky');
    }, opts, null);
    H.check(task.wait(10), 'retries: the retried task ends');
    H.checkEqual(attempts, [1, 2, 3], 'retries: attempts 1, 2 and 3 ran on this context');
    H.checkEqual(H.outValue(task.propagate_value()), 'third time lucky',
        'retries: the third attempt\'s result is the task\'s');

    const timed = new Dvt.Options({use_caller_context: true, timeout: 0.05, retries: 0});
    let keep = null;
    task = rt.schedule(t => {
        keep = t;
    }, timed, null);
    H.check(task.wait(10), 'timeout: a task that never completes still ends');
    const e = H.catchError(() => task.propagate_int(), 'timeout: propagate_int');
    H.checkGError(e, DOMAIN_IO, Gio.IOErrorEnum.TIMED_OUT, null,
        'timeout: the task fails with G_IO_ERROR_TIMED_OUT');
    keep = null;

    const s = rt.get_stats();
    H.check(s.retries === 2 && s.timed_out === 1,
        `stats: 2 retries and 1 timeout counted (${s.retries}, ${s.timed_out})`);
    rt.shutdown(true, false);
}

function testStats(rt) {
    const s = rt.get_stats();
    print(`# stats: queued ${s.queued} started ${s.started} done ${s.done} error ${s.error} ` +
          `cancelled ${s.cancelled} running ${s.running} pending ${s.pending}`);
    H.check(s.queued > 0, 'stats: queued counted');
    H.checkEqual(s.running, 0, 'stats: nothing running once idle');
    H.checkEqual(s.pending, 0, 'stats: nothing pending once idle');
    H.check(s.queued === s.done + s.error + s.cancelled,
        'stats: queued == done + error + cancelled once idle');
    H.check(s.cancelled >= 2, `stats: the cancelled map and task are counted (${s.cancelled})`);
}

async function testShutdown(rt) {
    H.check(!rt.is_shutdown(), 'shutdown: not shut down before');
    rt.shutdown(true, false);
    H.check(rt.is_shutdown(), 'shutdown: is_shutdown() afterwards');

    const opts = new Dvt.Options({async_items: true, use_caller_context: true});
    const e = await H.rejection(rt.map_async(2, t => t.return_value(1), opts, null), 'map_async after shutdown');
    H.checkGError(e, Dvt.Error, Dvt.Error.CLOSED, null, 'shutdown: map_async then fails with Dvt.Error.CLOSED');

    const e2 = H.catchError(() => rt.schedule(t => t.return_value(1),
        new Dvt.Options({use_caller_context: true}), null), 'schedule after shutdown');
    H.checkGError(e2, Dvt.Error, Dvt.Error.CLOSED, null, 'shutdown: schedule then fails with Dvt.Error.CLOSED');

    // A refused blocking call gives GJS an out value to convert (it once
    // left it unset: GJS logged criticals and threw a conversion error).
    const e3 = H.catchError(() => rt.run_blocking(t => t.return_value(1), null, null), 'run_blocking after shutdown');
    H.checkGError(e3, Dvt.Error, Dvt.Error.CLOSED, null, 'shutdown: run_blocking then fails with Dvt.Error.CLOSED');
    const e4 = H.catchError(() => rt.to_thread_blocking(t => t.return_value(1), null, null), 'to_thread_blocking after shutdown');
    H.checkGError(e4, Dvt.Error, Dvt.Error.CLOSED, null, 'shutdown: to_thread_blocking then fails with Dvt.Error.CLOSED');
}

H.run('test-runtime.js', async () => {
    H.check(typeof Dvt.Runtime === 'function', 'Dvt 1 imported through gobject-introspection');
    const rt = new Dvt.Runtime({max_workers: 2});
    H.checkEqual(rt.get_max_workers(), 2, 'runtime: max_workers 2');

    await testOrderedBoundedMap(rt);
    await testWiderMap(rt);
    await testSynchronousItems(rt);
    await testMapErrors(rt);
    await testMapCancel(rt);
    await testSchedule(rt);
    await H.until(() => rt.get_stats().pending === 0, 2000);
    testStats(rt);
    testPolicy();
    await testShutdown(rt);
});
