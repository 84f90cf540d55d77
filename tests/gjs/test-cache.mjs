// test-cache.mjs: a Dvt.Cache from GJS, through get_async/get_finish
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Run with `gjs -m`. GJS runs JavaScript on its own thread only, so the
// cache's function is async work (Dvt.CacheFlags.ASYNC_WORK) started on
// the GJS main context (use_caller_context), completing its task from a
// GLib timeout. Concurrent get_async calls of one key share one run; a
// cancelled call ends its own wait only; the last one leaving cancels the
// run; values are kept, invalidated and counted; a key of the wrong type
// rejects with Dvt.Error.INVALID_ARGUMENT.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Dvt from 'gi://Dvt?version=1';

const [thisFile] = GLib.filename_from_uri(import.meta.url);
imports.searchPath.unshift(GLib.path_get_dirname(thisFile));
const H = imports.harness;

Gio._promisify(Dvt.Cache.prototype, 'get_async', 'get_finish');
Gio._promisify(Dvt.Runtime.prototype, 'shutdown_async', 'shutdown_finish');

const IO = Gio.IOErrorEnum;
const mainContext = GLib.MainContext.default();

// get_finish returns its gboolean, marked (skip), beside the out value in
// GJS 1.74; Gio._promisify then resolves to [value]. Accept both.
const valueOf = r => (Array.isArray(r) && r.length === 1 ? r[0] : r);

H.run('test-cache.mjs', async () => {
    const rt = new Dvt.Runtime({max_workers: 2});
    const calls = new Map();
    let onMain = true;
    const cancellables = [];

    // Completes each run 20 ms later with "<key>#<run>", unless it was
    // cancelled meanwhile.
    const cache = Dvt.Cache.new_full(rt, new GLib.VariantType('s'), Dvt.CacheFlags.ASYNC_WORK,
        (task, key, cancellable) => {
            const k = key.unpack();
            const n = (calls.get(k) ?? 0) + 1;
            calls.set(k, n);
            onMain &&= mainContext.is_owner();
            cancellables.push(cancellable);
            GLib.timeout_add(GLib.PRIORITY_DEFAULT, 20, () => {
                if (cancellable.is_cancelled())
                    task.return_error(new GLib.Error(IO, IO.CANCELLED, 'run cancelled'));
                else
                    task.return_value(`${k}#${n}`);
                return GLib.SOURCE_REMOVE;
            });
        });
    cache.set_options(new Dvt.Options({use_caller_context: true}));
    const key = s => new GLib.Variant('s', s);

    // Five callers, one run.
    const values = await Promise.all([0, 1, 2, 3, 4].map(() => cache.get_async(key('a'), null)));
    H.checkEqual(values.map(valueOf), Array(5).fill('a#1'), 'get_async: five callers share one run');
    H.checkEqual(calls.get('a'), 1, 'get_async: the function ran once');
    H.check(onMain, 'the cache function ran on the GJS main context');

    // Stored: a later call does not run it again.
    H.checkEqual(valueOf(await cache.get_async(key('a'), null)), 'a#1', 'get_async: a stored value');
    H.checkEqual([cache.get_hits(), cache.get_runs(), cache.n_entries], [1, 1, 1],
        'counters: one hit, one run, one entry');

    // One caller cancels its wait: the other still gets the value.
    const mine = new Gio.Cancellable();
    const cancelled = cache.get_async(key('b'), mine);
    const other = cache.get_async(key('b'), null);
    mine.cancel();
    H.checkGError(await H.rejection(cancelled, 'a cancelled get_async'), IO, IO.CANCELLED, null,
        'get_async: cancelling a call rejects it with G_IO_ERROR_CANCELLED');
    H.checkEqual(valueOf(await other), 'b#1', 'get_async: the other caller still gets the run\'s value');

    // Everyone leaves: the run is cancelled, nothing is stored.
    const c1 = new Gio.Cancellable(), c2 = new Gio.Cancellable();
    const both = [cache.get_async(key('c'), c1), cache.get_async(key('c'), c2)];
    await H.sleep(1);
    c1.cancel();
    c2.cancel();
    for (const p of both)
        await H.rejection(p, 'a cancelled get_async');
    H.check(await H.until(() => cancellables.at(-1).is_cancelled()),
        'the run is cancelled once its last caller left');
    H.check(await H.until(() => rt.pending === 0), 'the cancelled run ends');
    H.checkEqual(cache.n_entries, 2, 'nothing stored for the abandoned key');
    H.checkEqual(valueOf(await cache.get_async(key('c'), null)), 'c#2', 'the next caller starts a new run');

    // Invalidated: run again.
    H.check(cache.invalidate(key('a')), 'invalidate: the key was stored');
    H.checkEqual(valueOf(await cache.get_async(key('a'), null)), 'a#2', 'invalidate: the next call runs again');

    // A key of the wrong type.
    H.checkGError(await H.rejection(cache.get_async(new GLib.Variant('i', 1), null), 'a wrong key'),
        Dvt.Error, Dvt.Error.INVALID_ARGUMENT, /type/, 'get_async: a key of the wrong type is refused');

    await rt.shutdown_async(false, null);
    H.checkGError(await H.rejection(cache.get_async(key('a'), null), 'get_async after shutdown'),
        Dvt.Error, Dvt.Error.CLOSED, null, 'get_async: Dvt.Error.CLOSED once the runtime is shut down');
});
