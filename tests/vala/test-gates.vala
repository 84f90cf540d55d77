/* test-gates.vala: the gates from Vala, through `yield enter_async ()`
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A smoke test on a main loop: a semaphore entered with yield (a waiter
 * admitted when a thread leaves, priority order, a cancelled wait), a rate
 * limiter's window, a lockout, and a bad limiter. Prints TAP; a watchdog
 * thread ends it if anything hangs.
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

static async void semaphore () {
    var sem = new Dvt.Semaphore (1);
    try {
        check (yield sem.enter_async (null), "semaphore: yield enter_async");
        check (sem.get_available () == 0, "semaphore: no permit left");

        /* A thread leaves a moment later: the waiting entry gets the permit. */
        new Thread<void*> ("leave", () => {
            Thread.usleep (20000);
            sem.leave ();
            return null;
        });
        check (yield sem.enter_async (null), "semaphore: admitted when a thread leaves");

        /* Priority order among waiters. */
        string order = "";
        int pending = 3;
        SourceFunc resume = semaphore.callback;
        foreach (var p in new int[] { 3, 1, 2 }) {
            int priority = p;
            sem.enter_with_priority_async.begin (priority, null, (obj, res) => {
                try {
                    sem.enter_with_priority_async.end (res);
                    order += "%d;".printf (priority);
                    sem.leave ();
                } catch (GLib.Error e) {
                    unexpected (e, "priority");
                }
                if (--pending == 0)
                    resume ();
            });
        }
        sem.leave ();
        yield;
        check (order == "1;2;3;", "semaphore: by priority (got %s)".printf (order));

        /* A cancelled wait. */
        check (sem.try_enter (), "semaphore: try_enter");
        var cancellable = new Cancellable ();
        Idle.add (() => { cancellable.cancel (); return Source.REMOVE; });
        try {
            yield sem.enter_async (cancellable);
            check (false, "semaphore: a cancelled wait must throw");
        } catch (IOError.CANCELLED e) {
            check (true, "semaphore: a cancelled wait throws IOError.CANCELLED");
        }
        sem.leave ();
        check (sem.get_available () == 1, "semaphore: no permit lost");
    } catch (GLib.Error e) {
        unexpected (e, "semaphore");
    }
}

static async void limiter_and_lockout () {
    try {
        var limiter = new Dvt.RateLimiter (2, 0.05);
        var start = get_monotonic_time ();
        for (int i = 0; i < 3; i++) {
            yield limiter.enter_async (null);
            limiter.leave ();
        }
        check (get_monotonic_time () - start >= 50000, "limiter: the third entry waited for the window");

        var lockout = new Dvt.Lockout (true);
        start = get_monotonic_time ();
        lockout.lock_for (0.05);
        yield lockout.enter_async (null);
        lockout.leave ();
        check (get_monotonic_time () - start >= 50000, "lockout: yield enter_async waited");
    } catch (GLib.Error e) {
        unexpected (e, "limiter and lockout");
    }
    try {
        new Dvt.RateLimiter (0, 1);
        check (false, "limiter: a limit of 0 must throw");
    } catch (Dvt.Error.INVALID_ARGUMENT e) {
        check (true, "limiter: a limit of 0 throws Dvt.Error.INVALID_ARGUMENT");
    } catch (GLib.Error e) {
        unexpected (e, "bad limiter");
    }
}

static async void run (MainLoop loop) {
    yield semaphore ();
    yield limiter_and_lockout ();
    loop.quit ();
}

static void* watchdog () {
    Thread.usleep (60 * 1000000);
    printerr ("test-gates: watchdog: no result after 60 s, giving up\n");
    Process.exit (1);
}

public static int main (string[] args) {
    new Thread<void*> ("watchdog", watchdog);

    var loop = new MainLoop (null, false);
    run.begin (loop);
    loop.run ();

    print ("1..%d\n", n_checks);
    if (n_failed > 0) {
        printerr ("test-gates: %d of %d checks failed\n", n_failed, n_checks);
        return 1;
    }
    return 0;
}
