/* test-channel.vala: Dvt.Channel and Dvt.Batcher from Vala, with `yield`
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A smoke test: a producer written in Vala runs on a worker and the main
 * loop receives its values with `yield channel.receive_async ()`, then its
 * error; a consumer's close stops an endless producer; a batcher whose
 * batch function is a Vala closure is closed with `yield close_async ()`.
 * Prints TAP; a watchdog thread ends it if anything hangs.
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

static Value int_value (int i) {
    var v = Value (typeof (int));
    v.set_int (i);
    return v;
}

static async void values_then_error (Dvt.Runtime rt) {
    try {
        var channel = rt.produce ((ch, cancellable) => {
            for (int i = 0; i < 10; i++)
                ch.send (int_value (i), cancellable);
            throw new IOError.NOT_FOUND ("no more");
        }, 2, null, null);

        int sum = 0, n = 0;
        try {
            while (true) {
                Value v;
                if (!(yield channel.receive_async (null, out v)))
                    break;
                sum += v.get_int ();
                n++;
            }
            check (false, "values: the producer's error should have come");
        } catch (IOError.NOT_FOUND e) {
            check (e.message == "no more", "values: the producer's error after its last value");
        }
        check (n == 10 && sum == 45, "values: receive_async got the 10 values in order (n %d, sum %d)".printf (n, sum));

        Value v;
        bool more = yield channel.receive_async (null, out v);
        check (!more, "values: then the end of the stream (false, no error)");
    } catch (GLib.Error e) {
        unexpected (e, "values");
    }
}

static async void close_stops_producer (Dvt.Runtime rt) {
    int stopped = 0;
    try {
        var channel = rt.produce ((ch, cancellable) => {
            try {
                for (int i = 0; ; i++)
                    ch.send (int_value (i), cancellable);
            } catch (Dvt.Error.CLOSED e) {
                AtomicInt.set (ref stopped, 1);
                return true;
            }
        }, 1, null, null);

        Value v;
        yield channel.receive_async (null, out v);
        check (v.get_int () == 0, "close: the first value");
        channel.close ("done");
        while (AtomicInt.get (ref stopped) == 0) {
            Idle.add (close_stops_producer.callback);
            yield;
        }
        check (true, "close: the producer's send failed with Dvt.Error.CLOSED");
        try {
            yield channel.receive_async (null, out v);
            check (false, "close: receive_async should have failed");
        } catch (Dvt.Error.CLOSED e) {
            check (true, "close: receive_async throws Dvt.Error.CLOSED");
        }
    } catch (GLib.Error e) {
        unexpected (e, "close");
    }
}

static async void batcher (Dvt.Runtime rt) {
    int total = 0;
    int batches = 0;
    try {
        var b = new Dvt.Batcher (rt, (task, items, cancellable) => {
            foreach (unowned Value? v in items.data)
                AtomicInt.add (ref total, v.get_int ());
            AtomicInt.inc (ref batches);
        }, 4, 0.5, null);
        for (int i = 1; i <= 10; i++)
            b.add (int_value (i));
        bool ok = yield b.close_async (null);
        check (ok, "batcher: close_async succeeds");
        check (AtomicInt.get (ref total) == 55, "batcher: every item reached a batch (sum %d)".printf (total));
        check (AtomicInt.get (ref batches) == 3, "batcher: 3 batches of at most 4 (%d)".printf (batches));
        try {
            b.add (int_value (0));
            check (false, "batcher: add after close should fail");
        } catch (Dvt.Error.CLOSED e) {
            check (true, "batcher: add after close throws Dvt.Error.CLOSED");
        }
    } catch (GLib.Error e) {
        unexpected (e, "batcher");
    }
}

static async void run (MainLoop loop) {
    var rt = new Dvt.Runtime (2);
    yield values_then_error (rt);
    yield close_stops_producer (rt);
    yield batcher (rt);
    rt.shutdown (true, false);
    loop.quit ();
}

static void* watchdog () {
    Thread.usleep (60 * 1000000);
    printerr ("test-channel: watchdog: no result after 60 s, giving up\n");
    Process.exit (1);
}

public static int main (string[] args) {
    new Thread<void*> ("watchdog", watchdog);

    var loop = new MainLoop (null, false);
    run.begin (loop);
    loop.run ();

    print ("1..%d\n", n_checks);
    if (n_failed > 0) {
        printerr ("test-channel: %d of %d checks failed\n", n_failed, n_checks);
        return 1;
    }
    return 0;
}
