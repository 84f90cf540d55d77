/* test-task-group.vala: Dvt.TaskGroup from Vala, through its async methods
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A smoke test: blocking work submitted through a group, then `yield
 * group.wait_async (...)` (all, the first failure, the exit timeout),
 * `yield group.next_async (...)` in the order of ending, and `yield
 * group.first_async (...)`, on a main loop. Prints TAP; a watchdog thread
 * ends it if anything hangs.
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

static Dvt.Task submit_ms (Dvt.TaskGroup g, int ms) throws GLib.Error {
    var task = g.submit ((t, c) => {
        Thread.usleep (ms * 1000);
        t.return_int (ms);
    }, null, null);
    return task;
}

static async void wait_all (Dvt.Runtime rt) {
    var g = new Dvt.TaskGroup (rt);
    try {
        for (int i = 1; i <= 5; i++)
            submit_ms (g, i);
        check (yield g.wait_async (-1, null), "wait_async: every member ended");
        check (g.get_n_unfinished () == 0, "wait_async: nothing left running");
        var tasks = g.get_tasks ();
        check (tasks.length == 5, "get_tasks: five members");
        check (tasks[2].propagate_int () == 3, "get_tasks: in the order they joined");
    } catch (GLib.Error e) {
        unexpected (e, "wait_all");
    }
}

static async void first_failure (Dvt.Runtime rt) {
    var g = new Dvt.TaskGroup (rt);
    try {
        submit_ms (g, 1);
        g.submit ((t, c) => {
            throw new IOError.PERMISSION_DENIED ("denied");
        }, null, null);
        yield g.wait_async (-1, null);
        check (false, "first failure: wait_async should have failed");
    } catch (IOError.PERMISSION_DENIED e) {
        check (e.message == "denied", "first failure: wait_async throws the member's error unchanged");
    } catch (GLib.Error e) {
        unexpected (e, "first_failure");
    }
}

static async void exit_timeout (Dvt.Runtime rt) {
    var g = new Dvt.TaskGroup (rt);
    try {
        g.submit ((t, c) => {
            while (!c.is_cancelled ())
                Thread.usleep (1000);
            t.return_boolean (false);
        }, null, null);
        yield g.wait_async (0.02, null);
        check (false, "exit timeout: wait_async should have failed");
    } catch (IOError.TIMED_OUT e) {
        check (g.get_n_unfinished () == 0, "exit timeout: throws IOError.TIMED_OUT, the member cancelled");
    } catch (GLib.Error e) {
        unexpected (e, "exit_timeout");
    }
}

static async void next_and_first (Dvt.Runtime rt) {
    var g = new Dvt.TaskGroup (rt);
    g.max_concurrency = 1;
    try {
        foreach (int ms in new int[] { 3, 1, 2 })
            submit_ms (g, ms);
        string order = "";
        for (;;) {
            var task = yield g.next_async (null);
            if (task == null)
                break;
            order += "%d;".printf ((int) task.propagate_int ());
        }
        /* One at a time: they end in the order they were submitted. */
        check (order == "3;1;2;", "next_async: each member once, then null (got %s)".printf (order));

        var g2 = new Dvt.TaskGroup (rt);
        g2.submit ((t, c) => {
            throw new IOError.FAILED ("no");
        }, null, null);
        submit_ms (g2, 5);
        var first = yield g2.first_async (true, null);
        check (first.propagate_int () == 5, "first_async: the first success");
    } catch (GLib.Error e) {
        unexpected (e, "next_and_first");
    }
}

static async void run (Dvt.Runtime rt, MainLoop loop) {
    yield wait_all (rt);
    yield first_failure (rt);
    yield exit_timeout (rt);
    yield next_and_first (rt);
    loop.quit ();
}

static void* watchdog () {
    Thread.usleep (60 * 1000000);
    printerr ("test-task-group: watchdog: no result after 60 s, giving up\n");
    Process.exit (1);
}

public static int main (string[] args) {
    new Thread<void*> ("watchdog", watchdog);

    var rt = new Dvt.Runtime (2);
    var loop = new MainLoop (null, false);
    run.begin (rt, loop);
    loop.run ();
    rt.shutdown (true, false);

    print ("1..%d\n", n_checks);
    if (n_failed > 0) {
        printerr ("test-task-group: %d of %d checks failed\n", n_failed, n_checks);
        return 1;
    }
    return 0;
}
