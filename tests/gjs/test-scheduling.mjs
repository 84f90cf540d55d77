// test-scheduling.mjs: timed starts from GJS, through wait_async
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Run with `gjs -m`. JavaScript async work is scheduled on the GJS main
// context (use_caller_context) with a delay or a not-before time: it never
// starts before its time, and the future resolves through wait_async; a
// delayed task cancelled before its start ends cancelled and never runs.
// A priority is accepted as an option like the others.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Dvt from 'gi://Dvt?version=1';

const [thisFile] = GLib.filename_from_uri(import.meta.url);
imports.searchPath.unshift(GLib.path_get_dirname(thisFile));
const H = imports.harness;

Gio._promisify(Dvt.Task.prototype, 'wait_async', 'wait_finish');
Gio._promisify(Dvt.Runtime.prototype, 'shutdown_async', 'shutdown_finish');

const IO = Gio.IOErrorEnum;

H.run('test-scheduling.mjs', async () => {
    const rt = new Dvt.Runtime({max_workers: 2});

    // A delay: the work starts 150 ms after the call at the earliest.
    let startedAt = 0;
    const called = GLib.get_monotonic_time();
    const delayed = rt.schedule(task => {
        startedAt = GLib.get_monotonic_time();
        task.return_value('late');
    }, new Dvt.Options({use_caller_context: true, delay: 0.15}), null);
    H.check(!delayed.completed, 'a delayed future is not completed at once');
    H.checkEqual(await delayed.wait_async(null), true, 'wait_async resolves for a delayed task');
    H.check(startedAt - called >= 150000, 'the delayed work did not start before its delay');
    H.checkEqual(H.outValue(delayed.propagate_value()), 'late', 'the delayed task\'s value');

    // not-before, with a priority.
    const notBefore = GLib.get_monotonic_time() + 100000;
    let ranAt = 0;
    const timed = rt.schedule(task => {
        ranAt = GLib.get_monotonic_time();
        task.return_value(1);
    }, new Dvt.Options({use_caller_context: true, not_before: notBefore,
        priority: GLib.PRIORITY_HIGH}), null);
    H.checkEqual(await timed.wait_async(null), true, 'wait_async resolves for a not-before task');
    H.check(ranAt >= notBefore, 'the work did not start before not_before');

    // Cancelled before its start: ends cancelled, never runs.
    let ran = false;
    const never = rt.schedule(task => {
        ran = true;
        task.return_value(0);
    }, new Dvt.Options({use_caller_context: true, delay: 60}), null);
    never.cancel();
    H.checkGError(await H.rejection(never.wait_async(null), 'wait_async on a cancelled delayed task'),
        IO, IO.CANCELLED, null, 'wait_async rejects with G_IO_ERROR_CANCELLED for a task cancelled before its start');
    H.check(never.completed, 'the cancelled delayed task is completed');
    H.check(!ran, 'the cancelled delayed work never ran');
    H.checkEqual(rt.get_stats().cancelled, 1, 'counted as cancelled');

    await rt.shutdown_async(false, null);
});
