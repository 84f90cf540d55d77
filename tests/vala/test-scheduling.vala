/* test-scheduling.vala: timed starts from Vala, through wait_async
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A smoke test: a future submitted with a delay (never started before it),
 * awaited with `yield wait_async`; a priority given as an option; a delayed
 * future cancelled before its start ends cancelled and never runs. Prints
 * TAP; a watchdog thread ends it if anything hangs.
 */

static int n_failed = 0;
static int n_checks = 0;

static void check (bool ok, string what) {
    n_checks++;
    if (ok) {
        print ("ok %d - %s\n", n_checks, what);
    } else {
        n_failed++;
        print ("not ok %d - %s\n", n_checks, what);
    }
}

static void unexpected (GLib.Error e, string where) {
    check (false, "%s: unexpected error %s %d: %s".printf (where, e.domain.to_string (), e.code, e.message));
}

static async void delayed (Dvt.Runtime rt) {
    int64 started = 0;
    int64 called = GLib.get_monotonic_time ();
    var options = new Dvt.Options ();
    options.delay = 0.15;
    options.priority = GLib.Priority.HIGH;
    try {
        var task = rt.submit ((task, cancellable) => {
            started = GLib.get_monotonic_time ();  /* read after the wait */
            task.return_int (7);
        }, options, null);
        check (yield task.wait_async (null), "delay: wait_async reports success");
        check (started - called >= 150000, "delay: the work did not start before its delay");
        check (task.propagate_int () == 7, "delay: propagate_int gives 7");
    } catch (GLib.Error e) {
        unexpected (e, "delay");
    }
}

static async void cancelled_before_start (Dvt.Runtime rt) {
    int ran = 0;
    var options = new Dvt.Options ();
    options.delay = 60;
    try {
        var task = rt.submit ((task, cancellable) => {
            ran = 1;
            task.return_int (0);
        }, options, null);
        task.cancel ();
        try {
            yield task.wait_async (null);
            check (false, "cancel: wait_async should fail");
        } catch (GLib.Error e) {
            check (e is IOError.CANCELLED, "cancel: wait_async fails with G_IO_ERROR_CANCELLED");
        }
        check (task.get_completed (), "cancel: the task is completed");
        check (ran == 0, "cancel: the work never ran");
        check (rt.get_stats ().cancelled == 1, "cancel: counted as cancelled");
    } catch (GLib.Error e) {
        unexpected (e, "cancel");
    }
}

static async void run (MainLoop loop) {
    var rt = new Dvt.Runtime (2);
    yield delayed (rt);
    yield cancelled_before_start (rt);
    rt.shutdown (true, false);
    loop.quit ();
}

static void* watchdog () {
    Thread.usleep (60 * 1000000);
    printerr ("test-scheduling: watchdog: no result after 60 s, giving up\n");
    Process.exit (1);
}

public static int main (string[] args) {
    new Thread<void*> ("watchdog", watchdog);

    var loop = new MainLoop (null, false);
    run.begin (loop);
    loop.run ();

    print ("1..%d\n", n_checks);
    if (n_failed > 0) {
        printerr ("test-scheduling: %d of %d checks failed\n", n_failed, n_checks);
        return 1;
    }
    return 0;
}
