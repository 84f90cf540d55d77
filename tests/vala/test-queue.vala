/* test-queue.vala: Dvt.Queue from Vala, through its async methods
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A smoke test: values pushed and popped with `yield` on a main loop (order,
 * back-pressure with a blocking consumer thread, priority, cancellation,
 * close). Prints TAP; a watchdog thread ends it if anything hangs.
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

static Value string_value (string s) {
    var v = Value (typeof (string));
    v.set_string (s);
    return v;
}

static async void fifo () {
    var q = new Dvt.Queue (Dvt.QueueOrder.FIFO, 0);
    try {
        foreach (var s in new string[] { "one", "two", "three" })
            check (yield q.push_async (string_value (s), 0, null), "fifo: push_async (\"%s\")".printf (s));
        string got = "";
        for (int i = 0; i < 3; i++) {
            Value v;
            yield q.pop_async (null, out v);
            got += v.get_string () + ";";
        }
        check (got == "one;two;three;", "fifo: pop_async in order (got %s)".printf (got));
    } catch (GLib.Error e) {
        unexpected (e, "fifo");
    }
}

/* A full queue: the async push waits until a consumer thread makes room. */
static async void back_pressure () {
    var q = new Dvt.Queue (Dvt.QueueOrder.FIFO, 1);
    try {
        yield q.push_async (string_value ("a"), 0, null);
        var consumer = new Thread<string> ("consumer", () => {
            while (q.get_n_waiting_pushers () == 0)
                Thread.usleep (1000);
            Value v;
            try {
                q.pop_blocking (0, null, out v);
            } catch (GLib.Error e) {
                return "error: " + e.message;
            }
            return v.get_string ();
        });
        check (yield q.push_async (string_value ("b"), 0, null), "back-pressure: the waiting push went in");
        check (consumer.join () == "a", "back-pressure: the consumer thread took the first item");
        Value v;
        q.try_pop (out v);
        check (v.get_string () == "b", "back-pressure: then the second item");
    } catch (GLib.Error e) {
        unexpected (e, "back-pressure");
    }
}

static async void priority () {
    var q = new Dvt.Queue (Dvt.QueueOrder.PRIORITY, 0);
    try {
        yield q.push_async (string_value ("low"), 5, null);
        yield q.push_async (string_value ("high"), -1, null);
        Value v;
        yield q.pop_async (null, out v);
        check (v.get_string () == "high", "priority: the lowest value first");
    } catch (GLib.Error e) {
        unexpected (e, "priority");
    }
}

static async void cancel_and_close () {
    var q = new Dvt.Queue (Dvt.QueueOrder.FIFO, 0);
    var cancellable = new Cancellable ();
    Idle.add (() => {
        cancellable.cancel ();
        return Source.REMOVE;
    });
    try {
        Value v;
        yield q.pop_async (cancellable, out v);
        check (false, "cancel: pop_async should have failed");
    } catch (IOError.CANCELLED e) {
        check (true, "cancel: pop_async throws IOError.CANCELLED");
    } catch (GLib.Error e) {
        unexpected (e, "cancel");
    }

    Idle.add (() => {
        q.close ();
        return Source.REMOVE;
    });
    try {
        Value v;
        yield q.pop_async (null, out v);
        check (false, "close: pop_async should have failed");
    } catch (Dvt.Error.CLOSED e) {
        check (true, "close: a waiting pop_async throws Dvt.Error.CLOSED");
    } catch (GLib.Error e) {
        unexpected (e, "close");
    }
    check (q.closed, "close: the closed property is true");
}

static async void run (MainLoop loop) {
    yield fifo ();
    yield back_pressure ();
    yield priority ();
    yield cancel_and_close ();
    loop.quit ();
}

static void* watchdog () {
    Thread.usleep (60 * 1000000);
    printerr ("test-queue: watchdog: no result after 60 s, giving up\n");
    Process.exit (1);
}

public static int main (string[] args) {
    new Thread<void*> ("watchdog", watchdog);

    var loop = new MainLoop (null, false);
    run.begin (loop);
    loop.run ();

    print ("1..%d\n", n_checks);
    if (n_failed > 0) {
        printerr ("test-queue: %d of %d checks failed\n", n_failed, n_checks);
        return 1;
    }
    return 0;
}
