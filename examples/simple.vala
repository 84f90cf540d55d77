/* simple.vala: Dovetail from Vala
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Built by meson as build/examples/simple-vala, or by hand against an
 * installed Dovetail:
 *   valac --pkg dovetail-1 --pkg gio-2.0 examples/simple.vala
 */

/* From main-loop code nothing blocks: an async method yields on a future
 * and then on the shutdown, while the main loop runs. */
async void sum_then_stop (Dvt.Runtime runtime, MainLoop loop) {
    try {
        var future = runtime.submit ((task, cancellable) => {
            task.return_int (6 * 7);
        }, null, null);
        yield future.wait_async (null);   /* raises the work's error, if any */
        print ("6 * 7 = %s (completed: %s)\n",
               future.propagate_int ().to_string (), future.completed.to_string ());
        yield runtime.shutdown_async (false, null);
        print ("shut down\n");
    } catch (Error e) {
        printerr ("%s\n", e.message);
    }
    loop.quit ();
}

int main (string[] args) {
    var runtime = new Dvt.Runtime (0);
    var path = args.length > 1 ? args[1] : "/etc/os-release";

    try {
        /* A blocking function, on one of the runtime's worker threads. */
        Value sum;
        runtime.to_thread_blocking ((task, cancellable) => {
            int64 total = 0;
            for (int i = 1; i <= 1000; i++)
                total += i;
            task.return_int (total);
        }, null, null, out sum);
        print ("1 + 2 + ... + 1000 = %s\n", sum.get_int64 ().to_string ());

        /* A GIO asynchronous operation, started on the runtime's loop
         * thread; its callback completes the task. */
        Value length;
        runtime.run_blocking ((task, cancellable) => {
            var file = File.new_for_path (path);
            file.load_contents_async.begin (cancellable, (obj, res) => {
                try {
                    uint8[] contents;
                    file.load_contents_async.end (res, out contents, null);
                    task.return_int (contents.length);
                } catch (Error e) {
                    task.return_error (e.copy ());  /* reaches the caller unchanged */
                }
            });
        }, null, null, out length);
        print ("%s: %s bytes\n", path, length.get_int64 ().to_string ());

        /* An ordered parallel map, at most 4 items at once. */
        var options = new Dvt.Options ();
        options.max_concurrency = 4;
        var squares = runtime.map_blocking (6, (task, cancellable) => {
            var i = task.get_index ();
            task.return_int (i * i);
        }, options);
        var line = new StringBuilder ("squares:");
        for (uint i = 0; i < squares.length; i++)
            line.append_printf (" %s", squares.index (i).get_int64 ().to_string ());
        print ("%s\n", line.str);

        var loop = new MainLoop ();
        sum_then_stop.begin (runtime, loop);
        loop.run ();
    } catch (Error e) {
        printerr ("%s\n", e.message);
        return 1;
    } finally {
        runtime.shutdown (true, false);
    }

    return 0;
}
