/* test-vala.vala: Dovetail from Vala, through the generated dovetail-1.vapi
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every check runs even when an earlier one failed; the program exits 1 if
 * any failed, and a watchdog thread ends it if the runtime ever hangs.
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

static int64 value_int (GLib.Value v) {
    if (v.holds (typeof (int64)))
        return v.get_int64 ();
    if (v.holds (typeof (int)))
        return v.get_int ();
    return int64.MIN;
}

/* to_thread_blocking with a Vala closure: the delegate captures locals and
 * returns a value through the task. */
static void test_to_thread_blocking (Dvt.Runtime rt) {
    int base_value = 40;
    bool ran_on_worker = false;
    unowned Thread<void*> caller = Thread.self<void*> ();

    try {
        Value result;
        bool ok = rt.to_thread_blocking ((task, cancellable) => {
            ran_on_worker = Thread.self<void*> () != caller;
            task.return_int (base_value + 2);
        }, null, null, out result);
        check (ok, "to_thread_blocking returns true");
        check (value_int (result) == 42, "to_thread_blocking: closure result is 42 (got %s)".printf (result.strdup_contents ()));
        check (ran_on_worker, "to_thread_blocking: the closure ran on a worker thread");
    } catch (GLib.Error e) {
        unexpected (e, "to_thread_blocking");
    }

    /* A string result, through return_value */
    try {
        Value result;
        rt.to_thread_blocking ((task, cancellable) => {
            Value v = Value (typeof (string));
            v.set_string ("from vala");
            task.return_value (v);
        }, null, null, out result);
        check (result.holds (typeof (string)) && result.get_string () == "from vala",
               "to_thread_blocking: return_value carries a string");
    } catch (GLib.Error e) {
        unexpected (e, "to_thread_blocking (string)");
    }
}

/* map_blocking: ordered results, with at most max_concurrency items at once */
static void test_map_blocking (Dvt.Runtime rt) {
    uint N = 64;
    int LIMIT = 2;
    int in_flight = 0;
    int peak = 0;

    var opts = new Dvt.Options ();
    opts.max_concurrency = LIMIT;

    try {
        var results = rt.map_blocking (N, (task, cancellable) => {
            int now = AtomicInt.add (ref in_flight, 1) + 1;
            int seen = AtomicInt.get (ref peak);
            while (now > seen && !AtomicInt.compare_and_exchange (ref peak, seen, now))
                seen = AtomicInt.get (ref peak);
            /* Finish out of order: early items take longer. */
            Thread.usleep ((N - task.get_index ()) * 50);
            AtomicInt.add (ref in_flight, -1);
            task.return_int ((int64) task.get_index () * task.get_index ());
        }, opts, null);

        check (results.length == N, "map_blocking: %u results (got %u)".printf (N, results.length));
        /* The VAPI types the result as GLib.Array<GLib.Value?>, which Vala
         * reads as an array of GValue pointers (g_array_index (a, GValue*,
         * i)) and crashes on; the C array holds GValue structs, so view it
         * as GLib.Array<GLib.Value>. See tests/vala/README. */
        unowned GLib.Array<GLib.Value> slots = (GLib.Array<GLib.Value>) results;
        bool ordered = true;
        for (uint i = 0; i < slots.length; i++) {
            unowned Value v = slots.index (i);
            if (value_int (v) != (int64) i * i) {
                ordered = false;
                print ("# slot %u holds %s\n", i, v.strdup_contents ());
                break;
            }
        }
        check (ordered, "map_blocking: results in index order");
        check (AtomicInt.get (ref peak) <= LIMIT,
               "map_blocking: peak in flight %d <= max_concurrency %d".printf (AtomicInt.get (ref peak), LIMIT));
        check (AtomicInt.get (ref peak) >= 1, "map_blocking: items ran");
    } catch (GLib.Error e) {
        unexpected (e, "map_blocking");
    }
}

/* submit returns a future: wait for it, then read it */
static void test_submit_wait_propagate (Dvt.Runtime rt) {
    try {
        var task = rt.submit ((task, cancellable) => {
            Thread.usleep (2000);
            task.return_int (7);
        }, null, null);
        check (task.get_id () > 0, "submit: the task has an id");
        check (task.wait (30.0), "submit: wait reports the task ended");
        check (task.get_completed (), "submit: the task is completed");
        check (!task.had_error (), "submit: the task did not fail");
        check (task.propagate_int () == 7, "submit: propagate_int gives 7");

        Value v;
        check (task.propagate_value (out v), "submit: propagate_value succeeds");
        check (value_int (v) == 7, "submit: propagate_value gives 7 too");
    } catch (GLib.Error e) {
        unexpected (e, "submit");
    }
}

/* An error thrown from the work reaches the caller unchanged */
static void test_errors (Dvt.Runtime rt) {
    try {
        Value v;
        rt.to_thread_blocking ((task, cancellable) => {
            throw new IOError.PERMISSION_DENIED ("no access to %s", "the vault");
        }, null, null, out v);
        check (false, "to_thread_blocking: a thrown error is raised");
    } catch (IOError.PERMISSION_DENIED e) {
        check (e.message == "no access to the vault",
               "to_thread_blocking: thrown IOError reaches the caller with its message (%s)".printf (e.message));
    } catch (GLib.Error e) {
        unexpected (e, "to_thread_blocking (thrown)");
    }

    /* return_error from a submitted task, read through propagate */
    try {
        var task = rt.submit ((task, cancellable) => {
            task.return_error (new IOError.NOT_FOUND ("nothing here"));
        }, null, null);
        task.wait (30.0);
        check (task.had_error (), "submit: had_error after return_error");
        try {
            task.propagate_int ();
            check (false, "submit: propagate_int raises the work's error");
        } catch (IOError.NOT_FOUND e) {
            check (e.message == "nothing here", "submit: propagate_int raises IOError.NOT_FOUND unchanged");
        }
    } catch (GLib.Error e) {
        unexpected (e, "submit (error)");
    }

    /* A map whose item throws fails as a whole with that error */
    try {
        rt.map_blocking (8, (task, cancellable) => {
            if (task.get_index () == 5)
                throw new ConvertError.ILLEGAL_SEQUENCE ("bad item %u", task.get_index ());
            task.return_int (task.get_index ());
        }, null, null);
        check (false, "map_blocking: a failing item fails the map");
    } catch (ConvertError.ILLEGAL_SEQUENCE e) {
        check (e.message == "bad item 5", "map_blocking: the item's error reaches the caller (%s)".printf (e.message));
    } catch (GLib.Error e) {
        unexpected (e, "map_blocking (error)");
    }

    /* A thread function that neither returns nor throws */
    try {
        Value v;
        rt.to_thread_blocking ((task, cancellable) => {
            /* forgets to complete the task */
        }, null, null, out v);
        check (false, "to_thread_blocking: an uncompleted task fails");
    } catch (Dvt.Error.NOT_COMPLETED e) {
        check (true, "to_thread_blocking: an uncompleted task fails with Dvt.Error.NOT_COMPLETED");
    } catch (GLib.Error e) {
        unexpected (e, "to_thread_blocking (not completed)");
    }
}

/* to_thread_async as a Vala async method: the work runs on a worker, the
 * completion comes back on this thread's main context. */
static async void to_thread_async_run (Dvt.Runtime rt, MainLoop loop) {
    unowned Thread<void*> caller = Thread.self<void*> ();
    bool on_worker = false;

    try {
        Value v;
        yield rt.to_thread_async ((task, cancellable) => {
            on_worker = Thread.self<void*> () != caller;
            task.return_int (99);
        }, null, null, out v);
        check (value_int (v) == 99, "to_thread_async: yield gives the result (%s)".printf (v.strdup_contents ()));
        check (on_worker, "to_thread_async: the work ran on a worker thread");
        check (Thread.self<void*> () == caller, "to_thread_async: resumed on the caller's thread");
    } catch (GLib.Error e) {
        unexpected (e, "to_thread_async");
    }

    try {
        Value v;
        yield rt.to_thread_async ((task, cancellable) => {
            throw new IOError.TIMED_OUT ("too slow");
        }, null, null, out v);
        check (false, "to_thread_async: a thrown error is raised by the finish");
    } catch (IOError.TIMED_OUT e) {
        check (e.message == "too slow", "to_thread_async: the work's IOError reaches the caller");
    } catch (GLib.Error e) {
        unexpected (e, "to_thread_async (error)");
    }

    loop.quit ();
}

static void test_to_thread_async (Dvt.Runtime rt) {
    var ctx = new MainContext ();
    ctx.push_thread_default ();
    var loop = new MainLoop (ctx, false);
    to_thread_async_run.begin (rt, loop);
    loop.run ();
    ctx.pop_thread_default ();
}

/* The main-loop twins as Vala async methods, on a runtime of their own
 * (so that the main runtime's counters stay as test_stats expects) whose
 * events come on this thread's context. Each yield resumes on that
 * context, which test_mainloop_twins runs with a MainLoop. */

/* Resumes after @ms, from the thread-default context's main loop. */
static async void nap (uint ms) {
    var source = new TimeoutSource (ms);
    source.set_callback (nap.callback);
    source.attach (MainContext.get_thread_default ());
    yield;
}

/* Cancels @cancellable after a short while, from the main loop. */
static void cancel_soon (Cancellable cancellable) {
    var source = new TimeoutSource (10);
    source.set_callback (() => {
        cancellable.cancel ();
        return Source.REMOVE;
    });
    source.attach (MainContext.get_thread_default ());
}

static async void twins_run (Dvt.Runtime rt, MainLoop loop) {
    unowned Thread<void*> caller = Thread.self<void*> ();
    var here = new Dvt.Options ();
    here.use_caller_context = true;

    /* run_async: the work starts on the runtime's loop thread and
     * completes its task from a timeout there; the yield resumes here. */
    try {
        bool on_loop_thread = false;
        Value v;
        yield rt.run_async ((task, cancellable) => {
            on_loop_thread = Thread.self<void*> () != caller;
            var source = new TimeoutSource (5);
            source.set_callback (() => {
                task.return_int (17);
                return Source.REMOVE;
            });
            source.attach (MainContext.get_thread_default ());
        }, null, null, out v);
        check (value_int (v) == 17, "run_async: yield gives the value (%s)".printf (v.strdup_contents ()));
        check (on_loop_thread, "run_async: the work ran on the runtime's loop thread");
        check (Thread.self<void*> () == caller, "run_async: resumed on the caller's thread");
    } catch (GLib.Error e) {
        unexpected (e, "run_async");
    }

    /* run_async with use_caller_context: the work runs here too. */
    try {
        bool on_caller = false;
        Value v;
        yield rt.run_async ((task, cancellable) => {
            on_caller = Thread.self<void*> () == caller;
            Value s = Value (typeof (string));
            s.set_string ("here");
            task.return_value (s);
        }, here, null, out v);
        check (v.holds (typeof (string)) && v.get_string () == "here" && on_caller,
               "run_async (use_caller_context): ran on this thread, gives a string");
    } catch (GLib.Error e) {
        unexpected (e, "run_async (use_caller_context)");
    }

    /* A failing run_async: the error comes back unchanged. */
    try {
        Value v;
        yield rt.run_async ((task, cancellable) => {
            throw new IOError.PERMISSION_DENIED ("no access to %s", "the vault");
        }, here, null, out v);
        check (false, "run_async: a thrown error is raised by the yield");
    } catch (GLib.Error e) {
        check (e.domain == IOError.quark () && e.code == IOError.PERMISSION_DENIED &&
               e.message == "no access to the vault",
               "run_async: the work's error arrives unchanged (%s %d: %s)".printf (e.domain.to_string (), e.code, e.message));
    }

    /* wait_async on a future, read through properties. */
    try {
        var task = rt.submit ((task, cancellable) => {
            Thread.usleep (2000);
            task.return_int (7);
        }, null, null);
        bool ok = yield task.wait_async (null);
        check (ok && task.completed, "wait_async: true, and task.completed reads true");
        check (task.propagate_int () == 7, "wait_async: the future's value is 7");
    } catch (GLib.Error e) {
        unexpected (e, "wait_async");
    }

    /* wait_async on a failing future: its error, unchanged. */
    try {
        var task = rt.submit ((task, cancellable) => {
            task.return_error (new ConvertError.ILLEGAL_SEQUENCE ("bad byte at %d", 3));
        }, null, null);
        yield task.wait_async (null);
        check (false, "wait_async: a failed future raises its error");
    } catch (GLib.Error e) {
        check (e.domain == ConvertError.quark () && e.code == ConvertError.ILLEGAL_SEQUENCE &&
               e.message == "bad byte at 3",
               "wait_async: a failed future's error arrives unchanged (%s %d: %s)".printf (e.domain.to_string (), e.code, e.message));
    }

    /* A cancelled wait ends the wait only; the task goes on. The work
     * (run here, use_caller_context) keeps its task in held. */
    Dvt.Task? held = null;
    try {
        var task = rt.schedule ((task, cancellable) => { held = task; }, here, null);
        var cancellable = new Cancellable ();
        cancel_soon (cancellable);
        try {
            yield task.wait_async (cancellable);
            check (false, "wait_async: a cancelled wait raises");
        } catch (IOError.CANCELLED e) {
            check (!task.completed && !task.get_cancellable ().is_cancelled (),
                   "wait_async: a cancelled wait raises IOError.CANCELLED and leaves the task running");
        }
        check (rt.pending == 1, "runtime.pending reads 1 while the held task runs (got %llu)".printf (rt.pending));
        held.return_int (5);
        held = null;
        check ((yield task.wait_async (null)) && task.propagate_int () == 5,
               "wait_async: a new wait sees the task end with its value");
    } catch (GLib.Error e) {
        unexpected (e, "wait_async (cancelled)");
    }

    /* gather_async: results in the order of the futures. */
    try {
        Dvt.Task[] tasks = {};
        for (int i = 0; i < 4; i++) {
            int n = i;
            tasks += rt.submit ((task, cancellable) => {
                Thread.usleep ((4 - n) * 1000);
                task.return_int (n * 10);
            }, null, null);
        }
        var results = yield rt.gather_async (tasks, null, null);
        /* Array<Value?> in the VAPI, GValue structs in C: see the README. */
        unowned GLib.Array<GLib.Value> slots = (GLib.Array<GLib.Value>) results;
        bool ok = slots.length == 4;
        for (uint i = 0; ok && i < slots.length; i++)
            ok = value_int (slots.index (i)) == i * 10;
        check (ok, "gather_async: results in the order of the tasks");
    } catch (GLib.Error e) {
        unexpected (e, "gather_async");
    }

    try {
        Dvt.Task[] tasks = {};
        tasks += rt.submit ((task, cancellable) => { task.return_int (1); }, null, null);
        tasks += rt.submit ((task, cancellable) => {
            throw new IOError.NOT_FOUND ("gone");
        }, null, null);
        yield rt.gather_async (tasks, null, null);
        check (false, "gather_async: a failing task fails the gather");
    } catch (IOError.NOT_FOUND e) {
        check (e.message == "gone", "gather_async: the failing task's IOError arrives unchanged");
    } catch (GLib.Error e) {
        unexpected (e, "gather_async (error)");
    }

    /* wait_idle_async: every task has ended afterwards. */
    try {
        Dvt.Task[] tasks = {};
        for (int i = 0; i < 6; i++) {
            tasks += rt.submit ((task, cancellable) => {
                Thread.usleep (1000);
                task.return_boolean (true);
            }, null, null);
        }
        bool idle = yield rt.wait_idle_async (null);
        bool all_completed = true;
        foreach (var task in tasks)
            all_completed &= task.completed;
        check (idle && all_completed && rt.pending == 0 && rt.running == 0,
               "wait_idle_async: every task completed, pending and running read 0 (%llu, %llu)".printf (rt.pending, rt.running));
    } catch (GLib.Error e) {
        unexpected (e, "wait_idle_async");
    }

    /* notify::completed on this context (the runtime's event_context). */
    try {
        int notes = 0;
        bool notes_here = true;
        var task = rt.schedule ((task, cancellable) => { held = task; }, here, null);
        task.notify["completed"].connect (() => {
            notes++;
            notes_here &= Thread.self<void*> () == caller;
        });
        while (held == null)
            yield nap (1);
        held.return_int (1);
        held = null;
        yield task.wait_async (null);
        for (int i = 0; i < 1000 && notes == 0; i++)
            yield nap (2);
        yield nap (20);
        check (notes == 1 && notes_here, "notify::completed: once, on this thread (%d)".printf (notes));
    } catch (GLib.Error e) {
        unexpected (e, "notify::completed");
    }

    /* cancel_all on two held tasks, then shutdown_async twice: both
     * complete. */
    try {
        var kept = new GenericArray<Dvt.Task> ();
        Dvt.Task[] tasks = {};
        for (int i = 0; i < 2; i++)
            tasks += rt.schedule ((task, cancellable) => { kept.add (task); }, here, null);
        while (kept.length < 2)
            yield nap (1);
        check (rt.cancel_all () == 2, "cancel_all: cancels the two running tasks");
        try {
            yield tasks[1].wait_async (null);
            check (false, "cancel_all: a cancelled task's wait raises");
        } catch (IOError.CANCELLED e) {
            check (tasks[0].completed, "cancel_all: the tasks end with IOError.CANCELLED");
        }
    } catch (GLib.Error e) {
        unexpected (e, "cancel_all");
    }

    int first_done = 0;
    rt.shutdown_async.begin (false, null, (obj, res) => {
        try {
            if (rt.shutdown_async.end (res))
                first_done = 1;
        } catch (GLib.Error e) {
            unexpected (e, "shutdown_async (first)");
        }
    });
    try {
        bool second = yield rt.shutdown_async (false, null);
        while (first_done == 0)
            yield nap (1);
        check (second && first_done == 1 && rt.is_shutdown (), "shutdown_async: two calls, both complete");
    } catch (GLib.Error e) {
        unexpected (e, "shutdown_async (second)");
    }

    loop.quit ();
}

static void test_mainloop_twins () {
    var ctx = new MainContext ();
    ctx.push_thread_default ();
    var rt = (Dvt.Runtime) Object.new (typeof (Dvt.Runtime), "max-workers", 2, "event-context", ctx);
    var loop = new MainLoop (ctx, false);
    twins_run.begin (rt, loop);
    loop.run ();
    ctx.pop_thread_default ();
}

/* schedule: an async function that completes its task later, from a
 * timeout on the context it started on (the runtime's loop thread). The
 * closure keeps the task alive by capturing it. */
static void test_schedule (Dvt.Runtime rt) {
    try {
        var task = rt.schedule ((task, cancellable) => {
            var source = new TimeoutSource (5);
            source.set_callback (() => {
                task.return_int (123);
                return Source.REMOVE;
            });
            source.attach (MainContext.get_thread_default ());
        }, null, null);
        check (task.wait (30.0), "schedule: wait reports the task ended");
        check (task.propagate_int () == 123, "schedule: a late completion from a timeout gives 123");
    } catch (GLib.Error e) {
        unexpected (e, "schedule");
    }
}

/* gather_blocking: several futures, results in the order given */
static void test_gather (Dvt.Runtime rt) {
    try {
        Dvt.Task[] tasks = {};
        for (int i = 0; i < 4; i++) {
            int n = i;
            tasks += rt.submit ((task, cancellable) => {
                Thread.usleep ((4 - n) * 1000);
                task.return_int (n * 10);
            }, null, null);
        }
        var results = rt.gather_blocking (tasks, null, null);
        unowned GLib.Array<GLib.Value> slots = (GLib.Array<GLib.Value>) results;
        bool ok = slots.length == 4;
        for (uint i = 0; ok && i < slots.length; i++)
            ok = value_int (slots.index (i)) == i * 10;
        check (ok, "gather_blocking: results in the order of the tasks");
    } catch (GLib.Error e) {
        unexpected (e, "gather_blocking");
    }
}

/* An owned (notified) closure is released once the task is done with it:
 * what it captured is freed. */
static int closure_released = 0;

/* The closure holds the only reference to the object it captures. */
static Dvt.Task submit_capturing (Dvt.Runtime rt) throws GLib.Error {
    var captured = new Object ();
    captured.weak_ref (() => { AtomicInt.set (ref closure_released, 1); });
    return rt.submit ((task, cancellable) => {
        task.return_boolean (captured is Object);
    }, null, null);
}

static void test_closure_released (Dvt.Runtime rt) {
    try {
        var task = submit_capturing (rt);
        task.wait (30.0);
        check (task.propagate_boolean (), "submit: closure saw its captured object");
        task = null;
    } catch (GLib.Error e) {
        unexpected (e, "submit (closure release)");
    }

    for (int i = 0; i < 1000 && AtomicInt.get (ref closure_released) == 0; i++)
        Thread.usleep (1000);
    check (AtomicInt.get (ref closure_released) != 0,
           "submit: the closure and what it captured are freed after the task");
}

/* The counters after the runs above; the runtime is idle by now. Per the
 * DvtStats docs, each task, each map and each gather counts once in
 * queued. */
static void test_stats (Dvt.Runtime rt, uint64 expect_queued, uint64 expect_done, uint64 expect_error) {
    Dvt.Stats stats = rt.get_stats ();

    print ("# stats: queued %llu started %llu done %llu error %llu cancelled %llu running %llu pending %llu\n",
           stats.queued, stats.started, stats.done, stats.error, stats.cancelled, stats.running, stats.pending);
    check (stats.queued == expect_queued,
           "stats: queued %llu == %llu (every task and map once)".printf (stats.queued, expect_queued));
    check (stats.done == expect_done, "stats: done %llu == %llu".printf (stats.done, expect_done));
    check (stats.error == expect_error, "stats: error %llu == %llu".printf (stats.error, expect_error));
    check (stats.cancelled == 0, "stats: nothing cancelled");
    check (stats.running == 0, "stats: nothing running once idle");
    check (stats.pending == 0, "stats: nothing pending once idle");
    check (stats.queued == stats.done + stats.error + stats.cancelled,
           "stats: queued == done + error + cancelled once idle");
    check (stats.started >= stats.done + stats.error, "stats: every ended task was started");
}

/* shutdown, then every entry point fails with Dvt.Error.CLOSED */
static void test_shutdown (Dvt.Runtime rt) {
    check (!rt.is_shutdown (), "shutdown: not shut down before");
    rt.shutdown (true, false);
    check (rt.is_shutdown (), "shutdown: is_shutdown afterwards");
    rt.shutdown (true, false);
    check (rt.is_shutdown (), "shutdown: a second call is harmless");

    try {
        var task = rt.submit ((task, cancellable) => { task.return_int (1); }, null, null);
        check (false, "shutdown: submit fails afterwards (got task %llu)".printf (task.get_id ()));
    } catch (Dvt.Error.CLOSED e) {
        check (true, "shutdown: submit fails with Dvt.Error.CLOSED");
    } catch (GLib.Error e) {
        unexpected (e, "submit after shutdown");
    }

    try {
        Value v;
        rt.to_thread_blocking ((task, cancellable) => { task.return_int (1); }, null, null, out v);
        check (false, "shutdown: to_thread_blocking fails afterwards");
    } catch (Dvt.Error.CLOSED e) {
        check (true, "shutdown: to_thread_blocking fails with Dvt.Error.CLOSED");
    } catch (GLib.Error e) {
        unexpected (e, "to_thread_blocking after shutdown");
    }

    try {
        rt.map_blocking (3, (task, cancellable) => { task.return_int (1); }, null, null);
        check (false, "shutdown: map_blocking fails afterwards");
    } catch (Dvt.Error.CLOSED e) {
        check (true, "shutdown: map_blocking fails with Dvt.Error.CLOSED");
    } catch (GLib.Error e) {
        unexpected (e, "map_blocking after shutdown");
    }
}

/* Timeouts, retries and the rate limit, on a runtime of their own so that
 * the counters of the main one stay as they are. */
static void test_policy () {
    var rt = (Dvt.Runtime) Object.new (typeof (Dvt.Runtime), "max-workers", 2,
                                       "retries", 2, "retry-backoff", 0.001);
    check (rt.retries == 2, "policy: the runtime's retries property reads 2");
    int calls = 0;
    try {
        Value result;
        rt.to_thread_blocking ((task, cancellable) => {
            if (++calls < 3)
                throw new IOError.FAILED ("attempt %u", task.get_attempt ());
            task.return_int (task.get_attempt ());
        }, null, null, out result);
        check (calls == 3 && result.get_int64 () == 3,
               "policy: a function failing twice succeeds on attempt 3 (calls %d)".printf (calls));
    } catch (GLib.Error e) {
        unexpected (e, "policy: retried to_thread_blocking");
    }

    var options = new Dvt.Options ();
    options.timeout = 0.05;
    options.retries = 0;
    try {
        Value result;
        rt.to_thread_blocking ((task, cancellable) => {
            while (!cancellable.is_cancelled ())
                Thread.usleep (1000);
            task.return_boolean (true);
        }, options, null, out result);
        check (false, "policy: a task past its timeout fails");
    } catch (IOError.TIMED_OUT e) {
        check (true, "policy: a task past its timeout fails with IOError.TIMED_OUT");
    } catch (GLib.Error e) {
        unexpected (e, "policy: timed-out to_thread_blocking");
    }

    try {
        rt.set_rate_limit (0, 0);
        check (false, "policy: a rate limit of 0 is refused");
    } catch (Dvt.Error.INVALID_ARGUMENT e) {
        check (true, "policy: a rate limit of 0 is refused with Dvt.Error.INVALID_ARGUMENT");
    } catch (GLib.Error e) {
        unexpected (e, "policy: set_rate_limit (0)");
    }

    var stats = rt.get_stats ();
    check (stats.retries == 2 && stats.timed_out == 1,
           "policy: stats count 2 retries and 1 timeout (got %llu, %llu)".printf (stats.retries, stats.timed_out));
    rt.shutdown (true, false);
}

/* An event scope by name, with re-entry bounded at 2, and a refused
 * combination; on a runtime of its own. */
static void test_event_scope () {
    var rt = new Dvt.Runtime (2);
    var options = new Dvt.Options ();
    options.name = "vala-chain";
    int calls = 0;
    try {
        var scope = new Dvt.EventScope (rt, "vala-chain", null, 0);
        scope.max_depth = 2;
        scope.finished.connect ((s, task, elapsed) => {
            AtomicInt.inc (ref calls);
            try {
                rt.submit ((t, c) => { t.return_int (1); }, options, null);
            } catch (GLib.Error e) {
                unexpected (e, "event scope: follow-up submit");
            }
        });
        Value result;
        rt.to_thread_blocking ((t, c) => { t.return_int (1); }, options, null, out result);
        var deadline = get_monotonic_time () + 10 * 1000000;
        while (AtomicInt.get (ref calls) < 2 && get_monotonic_time () < deadline)
            Thread.usleep (1000);
        Thread.usleep (50000);
        rt.shutdown (true, false);
        check (AtomicInt.get (ref calls) == 2,
               "event scope: max_depth 2 gives exactly 2 calls (got %d)".printf (AtomicInt.get (ref calls)));
    } catch (GLib.Error e) {
        unexpected (e, "event scope");
    }

    try {
        new Dvt.EventScope (rt, "", null, 0);
        check (false, "event scope: an empty name is refused");
    } catch (Dvt.Error.INVALID_ARGUMENT e) {
        check (true, "event scope: an empty name is refused with Dvt.Error.INVALID_ARGUMENT");
    } catch (GLib.Error e) {
        unexpected (e, "event scope: empty name");
    }
    rt.shutdown (true, false);
}

/* invoke_blocking: the function keeps its result on the Vala side. */
static void test_invoke_blocking () {
    var rt = new Dvt.Runtime (2);
    int kept = 0;
    bool on_worker = false;
    var caller = Thread.self<void*> ();
    try {
        rt.invoke_blocking (() => {
            kept = 21 * 2;
            on_worker = Thread.self<void*> () != caller;
            return true;
        }, null, null);
        check (kept == 42 && on_worker, "invoke_blocking: ran on a worker and kept its result");
    } catch (GLib.Error e) {
        unexpected (e, "invoke_blocking");
    }
    try {
        rt.invoke_blocking (() => { throw new IOError.NOT_FOUND ("kept nothing"); }, null, null);
        check (false, "invoke_blocking: a thrown error is raised");
    } catch (IOError.NOT_FOUND e) {
        check (e.message == "kept nothing", "invoke_blocking: the thrown error reaches the caller");
    } catch (GLib.Error e) {
        unexpected (e, "invoke_blocking error");
    }
    rt.shutdown (true, false);
}

/* A request context pushed around a call is current in its work */
static void test_context () {
    var rt = new Dvt.Runtime (2);
    var ctx = new Dvt.Context ().with_string ("request-id", "vala-request");
    ctx.push ();
    try {
        Value result;
        rt.to_thread_blocking ((task, cancellable) => {
            var v = Value (typeof (string));
            v.set_string (Dvt.Context.get_current ().get_string ("request-id"));
            task.return_value (v);
        }, null, null, out result);
        check (result.get_string () == "vala-request", "Context: the work sees the submitter's context");
    } catch (GLib.Error e) {
        unexpected (e, "context");
    }
    ctx.pop ();
    check (Dvt.Context.get_current () == null, "Context: popped, none is current");
    rt.shutdown (true, false);
}

/* A callable: one function bound to a runtime and options, called twice */
static void test_callable () {
    var rt = new Dvt.Runtime (2);
    var options = new Dvt.Options ();
    options.set_name ("double");
    var double = new Dvt.Callable (rt, (task, args, cancellable) => {
        task.return_value (2 * args.get_int32 ());
    }, options);
    check (double.dup_options ().get_name () == "double", "Callable: keeps its options");
    try {
        Value result;
        double.call_blocking (new Variant.int32 (21), null, out result);
        check (result.get_int () == 42, "Callable: call_blocking returns the value");
        var task = double.submit (new Variant.int32 (2), null);
        task.wait (0);
        check (task.propagate_int () == 4, "Callable: submit returns a future");
    } catch (GLib.Error e) {
        unexpected (e, "callable");
    }
    rt.shutdown (true, false);
}

/* A Dvt.Cache with a Vala closure on a worker: get_async twice at once
 * (one run), a stored value by get_blocking, a caller's own task, a
 * cancelled get_async that leaves the run to the other caller, and a key
 * of the wrong type. */
static async void cache_run (Dvt.Cache cache, MainLoop loop) {
    try {
        string? first = null;
        cache.get_async.begin (new Variant.string ("x"), null, (obj, res) => {
            try {
                Value a;
                cache.get_async.end (res, out a);
                first = a.get_string ();
            } catch (GLib.Error e) {
                unexpected (e, "cache: first get_async");
            }
        });
        Value b;
        yield cache.get_async (new Variant.string ("x"), null, out b);
        while (first == null)
            yield nap (5);
        check (b.get_string () == "X#1" && first == "X#1",
               "cache: two get_async at once yield the value (%s)".printf (b.strdup_contents ()));
        check (cache.get_runs () == 1, "cache: two concurrent get_async share one run");

        Value c;
        cache.get_blocking (new Variant.string ("x"), 0, null, out c);
        check (c.get_string () == "X#1" && cache.get_hits () == 1, "cache: get_blocking gives the stored value");

        var task = cache.get (new Variant.string ("y"), null);
        check (task.wait (30.0) && task.propagate_value (out c) && c.get_string () == "Y#2",
               "cache: get returns the caller's own task");
    } catch (GLib.Error e) {
        unexpected (e, "cache");
    }

    /* A cancelled wait; the other caller still gets the value. */
    var cancellable = new Cancellable ();
    Value d = Value (typeof (string));
    bool other_done = false;
    cache.get_async.begin (new Variant.string ("slow"), null, (obj, res) => {
        try {
            cache.get_async.end (res, out d);
        } catch (GLib.Error e) {
            unexpected (e, "cache: the other caller");
        }
        other_done = true;
    });
    try {
        Value v;
        cancel_soon (cancellable);
        yield cache.get_async (new Variant.string ("slow"), cancellable, out v);
        check (false, "cache: a cancelled get_async fails");
    } catch (IOError.CANCELLED e) {
        check (true, "cache: a cancelled get_async fails with IOError.CANCELLED");
    } catch (GLib.Error e) {
        unexpected (e, "cache: cancelled get_async");
    }
    while (!other_done)
        yield nap (5);
    check (d.get_string () == "SLOW#3", "cache: the other caller gets the run's value (%s)".printf (d.strdup_contents ()));

    try {
        Value v;
        yield cache.get_async (new Variant.int32 (1), null, out v);
        check (false, "cache: a key of the wrong type is refused");
    } catch (Dvt.Error.INVALID_ARGUMENT e) {
        check (true, "cache: a key of the wrong type fails with Dvt.Error.INVALID_ARGUMENT");
    } catch (GLib.Error e) {
        unexpected (e, "cache: wrong key");
    }
    loop.quit ();
}

static void test_cache () {
    var ctx = new MainContext ();
    ctx.push_thread_default ();
    var rt = new Dvt.Runtime (2);
    int runs = 0;
    var cache = new Dvt.Cache.full (rt, VariantType.STRING, Dvt.CacheFlags.NONE, (task, key, cancellable) => {
        int n = AtomicInt.add (ref runs, 1) + 1;
        Thread.usleep (key.get_string () == "slow" ? 100000 : 10000);
        Value v = Value (typeof (string));
        v.set_string ("%s#%d".printf (key.get_string ().up (), n));
        task.return_value (v);
    });
    var loop = new MainLoop (ctx, false);
    cache_run.begin (cache, loop);
    loop.run ();
    rt.shutdown (true, false);
    ctx.pop_thread_default ();
}

static void* watchdog () {
    Thread.usleep (60 * 1000000);
    printerr ("test-vala: watchdog: no result after 60 s, giving up\n");
    Process.exit (1);
}

public static int main (string[] args) {
    new Thread<void*> ("watchdog", watchdog);

    var rt = new Dvt.Runtime (4);
    check (rt.get_max_workers () == 4, "runtime: max_workers is 4");

    test_to_thread_blocking (rt);
    test_map_blocking (rt);
    test_submit_wait_propagate (rt);
    test_errors (rt);
    test_to_thread_async (rt);
    test_schedule (rt);
    test_gather (rt);
    test_closure_released (rt);
    test_policy ();
    test_event_scope ();
    test_invoke_blocking ();
    test_context ();
    test_callable ();
    test_mainloop_twins ();
    test_cache ();
    /* queued: to_thread_blocking x2, map, submit (4); errors: 4 calls (8);
     * to_thread_async x2 (10); schedule (11); 4 submits (15); submit (16).
     * A gather waits for tasks already counted and adds none. The 5 that
     * failed are the 4 of test_errors and one to_thread_async. */
    test_stats (rt, 16, 11, 5);
    test_shutdown (rt);

    print ("1..%d\n", n_checks);
    if (n_failed > 0) {
        printerr ("test-vala: %d of %d checks failed\n", n_failed, n_checks);
        return 1;
    }
    return 0;
}
