#!/usr/bin/gjs -m
// simple.js: Dovetail from JavaScript (GJS)
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// From a build tree:
//   GI_TYPELIB_PATH=build/dovetail LD_LIBRARY_PATH=build/dovetail \
//     gjs -m examples/simple.js
//
// GJS runs JavaScript on its own thread only, so JavaScript work is given
// to the runtime with use-caller-context: it runs on this thread's main
// context, with the runtime's ordering and bounded concurrency. (A
// JavaScript function handed to a worker thread is refused by GJS, and its
// task ends with an error instead of hanging.)
//
// This module uses callbacks; simple.mjs beside it does the same with
// await on the promisified _async calls.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Dvt from 'gi://Dvt';
import System from 'system';

const ARGV = System.programArgs;

Gio._promisify(Dvt.Runtime.prototype, 'map_async', 'map_finish');

const runtime = Dvt.Runtime.new(0);
const here = new Dvt.Options({use_caller_context: true});

// Blocking from sequential code: the GIO operation runs on this thread's
// context, which run_blocking iterates while it waits. (GJS 1.74 also
// returns the boolean that the introspection data marks as skipped.)
const path = ARGV[0] ?? '/etc/os-release';
try {
    const [, length] = runtime.run_blocking((task, cancellable) => {
        Gio.File.new_for_path(path).load_contents_async(cancellable, (file, result) => {
            try {
                const [, contents] = file.load_contents_finish(result);
                task.return_value(contents.length);
            } catch (error) {
                task.return_error(error);  // reaches the caller unchanged
            }
        });
    }, here, null);
    print(`${path}: ${length} bytes`);
} catch (error) {
    print(`cannot read ${path}: ${error.message}`);
}

// An ordered map of async items, at most 2 in flight, awaited as a promise.
// Items finish in reverse order; the results keep the order of the indexes.
const options = new Dvt.Options({
    use_caller_context: true,
    async_items: true,
    max_concurrency: 2,
});
const loop = new GLib.MainLoop(null, false);

runtime.map_async(5, (task, cancellable) => {
    const i = task.get_index();
    GLib.timeout_add(GLib.PRIORITY_DEFAULT, 10 * (5 - i), () => {
        task.return_value(`item ${i}`);
        return GLib.SOURCE_REMOVE;
    });
}, options, null).then(results => {
    print(`map: ${JSON.stringify(results)}`);
}).catch(error => {
    print(`map failed: ${error.message}`);
}).finally(() => loop.quit());

loop.run();
runtime.shutdown(true, false);
