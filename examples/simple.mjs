#!/usr/bin/gjs -m
// simple.mjs: Dovetail from a JavaScript ES module (GJS), with await
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// From a build tree:
//   GI_TYPELIB_PATH=build/dovetail LD_LIBRARY_PATH=build/dovetail \
//     gjs -m examples/simple.mjs [FILE]
//
// The same ideas as simple.js, with every call awaited: each _async
// method and its _finish become a promise through Gio._promisify. GJS runs
// JavaScript on its own thread only, so JavaScript work is given to the
// runtime with use_caller_context and runs on this thread's main context,
// with the runtime's bounded concurrency, timeouts and retries. Promises
// resolve while a main loop runs: this module runs one with
// GLib.MainLoop.run() until main() is done (GJS 1.76 and later can
// `await loop.runAsync()` instead).

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Dvt from 'gi://Dvt?version=1';
import System from 'system';

Gio._promisify(Dvt.Runtime.prototype, 'run_async', 'run_finish');
Gio._promisify(Dvt.Runtime.prototype, 'map_async', 'map_finish');
Gio._promisify(Dvt.Runtime.prototype, 'shutdown_async', 'shutdown_finish');
Gio._promisify(Dvt.Task.prototype, 'wait_async', 'wait_finish');
Gio._promisify(Gio.File.prototype, 'load_contents_async', 'load_contents_finish');

// In GJS 1.74 run_finish also returns the boolean that the introspection
// data marks as skipped, so the promise resolves to [value]; newer GJS
// resolves to the value.
const unwrap = r => (Array.isArray(r) && r.length === 1 ? r[0] : r);

async function main(runtime, path) {
    const here = new Dvt.Options({use_caller_context: true});

    // An async function as the work: it awaits a Gio call and completes
    // its task; an error reaches the caller unchanged.
    try {
        const length = unwrap(await runtime.run_async(async (task, cancellable) => {
            try {
                const [contents] = await Gio.File.new_for_path(path).load_contents_async(cancellable);
                task.return_value(contents.length);
            } catch (error) {
                task.return_error(error);
            }
        }, here, null));
        print(`${path}: ${length} bytes`);
    } catch (error) {
        print(`cannot read ${path}: ${error.message}`);
    }

    // An ordered map of async items, at most 2 in flight: items finish in
    // reverse order, the results keep the order of the indexes.
    const items = new Dvt.Options({use_caller_context: true, async_items: true, max_concurrency: 2});
    const results = await runtime.map_async(5, task => {
        const i = task.get_index();
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, 10 * (5 - i), () => {
            task.return_value(`item ${i}`);
            return GLib.SOURCE_REMOVE;
        });
    }, items, null);
    print(`map: ${JSON.stringify(results)}`);

    // A future: start it, then await its end; a failure rejects the wait.
    const future = runtime.schedule(() => {
        throw new GLib.Error(Gio.IOErrorEnum, Gio.IOErrorEnum.BUSY, 'try again later');
    }, here, null);
    try {
        await future.wait_async(null);
    } catch (error) {
        print(`the future failed: ${error.message}`);
    }

    // Stop without blocking the main loop, once the work has drained.
    await runtime.shutdown_async(false, null);
    print('shut down');
}

const loop = new GLib.MainLoop(null, false);
let status = 0;
main(Dvt.Runtime.new(0), ARGV[0] ?? '/etc/os-release').catch(error => {
    logError(error);
    status = 1;
}).finally(() => loop.quit());
loop.run();
System.exit(status);
