// test-thread-refused.js: JavaScript handed to a worker thread
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// GJS refuses to call a JavaScript function from any thread but its own:
// it prints a critical ("Attempting to run a JS callback on a different
// thread") and returns without running it. A JS DvtThreadFunc given to a
// worker is therefore never run, and its task must end with
// Dvt.Error.NOT_COMPLETED, a message saying that the function returned
// without completing it, and never hang.
//
// The criticals are expected: do not run this with
// G_DEBUG=fatal-criticals. check-stderr.js requires them (they prove the
// function was refused, not skipped) and rejects any other critical.

imports.gi.versions.Dvt = '1';
const {Dvt, GLib, Gio} = imports.gi;

imports.searchPath.unshift(GLib.path_get_dirname(imports.system.programPath));
const H = imports.harness;

Gio._promisify(Dvt.Runtime.prototype, 'to_thread_async', 'to_thread_finish');
Gio._promisify(Dvt.Runtime.prototype, 'map_async', 'map_finish');

const NOT_COMPLETED_RE = /returned without completing/;

function checkNotCompleted(e, what) {
    return H.checkGError(e, Dvt.Error, Dvt.Error.NOT_COMPLETED, NOT_COMPLETED_RE, what);
}

// The raw callback form: the result is the task itself, so its error can
// also be read through Dvt.Task.propagate_boolean(), which has no GValue
// out argument.
function toThreadRaw(rt, func) {
    return new Promise(resolve => {
        rt.to_thread_async(func, null, null, (source, result) => {
            let finishError = null, finishValue;
            try {
                finishValue = rt.to_thread_finish(result);
            } catch (e) {
                finishError = e;
            }
            resolve({source, result, finishError, finishValue});
        });
    });
}

H.run('test-thread-refused.js', async () => {
    const rt = new Dvt.Runtime({max_workers: 2});
    let ran = 0;
    const jsThreadFunc = (task, _cancellable) => {
        ran++;
        task.return_value(1);
    };

    // 1. Awaited through Gio._promisify: the promise must reject with the
    //    task's own error.
    const e = await H.rejection(rt.to_thread_async(jsThreadFunc, null, null),
        'awaited to_thread_async with a JS thread function');
    checkNotCompleted(e, 'to_thread_async (awaited): rejects with Dvt.Error.NOT_COMPLETED, "returned without completing"');

    // 2. The callback form: the callback runs, on this thread, with the task
    const r = await toThreadRaw(rt, jsThreadFunc);
    H.check(r.source === rt, 'to_thread_async: the callback gets the runtime as its source');
    H.check(r.result instanceof Dvt.Task, 'to_thread_async: the callback gets the task as its result');
    checkNotCompleted(r.finishError, 'to_thread_finish: throws Dvt.Error.NOT_COMPLETED, "returned without completing"');
    if (r.result instanceof Dvt.Task) {
        H.check(r.result.get_completed() && r.result.had_error(), 'to_thread_async: the task ended with an error');
        const e2 = H.catchError(() => r.result.propagate_boolean(), 'task.propagate_boolean');
        checkNotCompleted(e2, 'to_thread_async: the task itself holds Dvt.Error.NOT_COMPLETED');
        if (e2 instanceof GLib.Error)
            print(`# message: ${e2.message}`);
    }

    // 3. submit: a future that a JS caller waits on
    const task = rt.submit(jsThreadFunc, null, null);
    H.check(task.wait(20), 'submit: wait() returns once the refused task ended (no hang)');
    H.check(task.had_error(), 'submit: the refused task had an error');
    checkNotCompleted(H.catchError(() => task.propagate_int(), 'submit: propagate_int'),
        'submit: propagate_int throws Dvt.Error.NOT_COMPLETED');

    // 3b. invoke_blocking: a refused DvtCallFunc returns false without an
    //     error, which is not a success.
    checkNotCompleted(H.catchError(() => rt.invoke_blocking(() => {
        ran++;
        return true;
    }, null, null), 'invoke_blocking'), 'invoke_blocking: throws Dvt.Error.NOT_COMPLETED');

    // 4. The runtime is still usable: the same work on the caller's context
    const results = await rt.map_async(3, t => t.return_value(t.get_index() + 1),
        new Dvt.Options({async_items: true, use_caller_context: true}), null);
    H.checkEqual(results, [1, 2, 3], 'the runtime still runs JS work on the main context afterwards');

    const s = rt.get_stats();
    print(`# stats: queued ${s.queued} done ${s.done} error ${s.error} cancelled ${s.cancelled} pending ${s.pending}`);
    H.check(s.error >= 3, `stats: the refused tasks count as errors (${s.error})`);

    // 5. A map of blocking items (the default): each item runs on a worker,
    //    so the map fails with NOT_COMPLETED. (Last: the runtime frees the
    //    map's JS function from a worker thread, which crashes GJS.)
    const e3 = await H.rejection(rt.map_async(3, jsThreadFunc, new Dvt.Options({max_concurrency: 2}), null),
        'map_async with JS items on workers');
    checkNotCompleted(e3, 'map_async (items on workers): rejects with Dvt.Error.NOT_COMPLETED');

    H.checkEqual(ran, 0, 'the JS thread function never ran');

    rt.shutdown(true, false);
});
