/* test-policy.c: timeouts, retries with back-off, the rate limit, and
 * cancellation on every entry point
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Time limits: lower bounds (a timeout does not fire early, a back-off is
 * waited out, the rate limit spaces starts) hold with a small tolerance
 * for the millisecond granularity of timers; upper bounds (a caller is
 * released promptly) are generous and scaled by `slow`.
 */

#include "dvt-test-util.h"
#include <math.h>
#include <string.h>

/* Timers count in whole milliseconds, rounded up; clocks are read a little
 * before or after the events they stand for. */
#define TOL 0.003

/* Any "prompt" release must come within this much of when it was due. */
#define PROMPT (5.0 * slow)

/* A timeout long enough for the work to have started before it passes,
 * where a test needs that (the machine may be busy). */
#define SHORT (0.3 * slow)

/* ---- helpers ----------------------------------------------------------- */

static double
seconds_since (gint64 start)
{
  return (double) (g_get_monotonic_time () - start) / G_USEC_PER_SEC;
}

static double
seconds_between (gint64 from,
                 gint64 to)
{
  return (double) (to - from) / G_USEC_PER_SEC;
}

#define assert_elapsed(start, at_least, at_most)                             \
  G_STMT_START {                                                             \
    double _e = seconds_since (start);                                       \
    g_test_message ("elapsed %.4f s (expected %.4f .. %.4f)", _e,            \
                    (double) (at_least), (double) (at_most));                \
    g_assert_cmpfloat (_e, >=, (double) (at_least) - TOL);                   \
    g_assert_cmpfloat (_e, <, (double) (at_most));                           \
  } G_STMT_END

/* A pointer result whose freeing is counted. */
typedef struct
{
  int *counter;
} Tracked;

static gpointer
tracked_new (int *counter)
{
  Tracked *t = g_new0 (Tracked, 1);

  t->counter = counter;
  return t;
}

static void
tracked_free (gpointer data)
{
  Tracked *t = data;

  g_atomic_int_inc (t->counter);
  g_free (t);
}

static DvtStats *
stats_of (DvtRuntime *rt)
{
  return dvt_runtime_get_stats (rt);
}

static gboolean
is_cancelled (GCancellable *cancellable)
{
  return cancellable != NULL && g_cancellable_is_cancelled (cancellable);
}

/* Blocking work that ignores cancellation: it blocks until its gate opens,
 * then completes with a tracked pointer that nobody may read any more. */
typedef struct
{
  Gate gate;
  int  started;
  int  finished;
  int  had_cancellable;
  int  saw_cancelled;
  int  results_freed;
  int  data_destroyed;
} Hang;

static void
hang_init (Hang *h)
{
  memset (h, 0, sizeof *h);
  gate_init (&h->gate);
}

/* Lets every started function return, then frees the gate. */
static void
hang_finish (Hang *h)
{
  gate_open (&h->gate);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&h->finished) ==
                             g_atomic_int_get (&h->started), 30));
  gate_clear (&h->gate);
}

static void
hang_data_destroyed (gpointer data)
{
  Hang *h = data;

  g_atomic_int_inc (&h->data_destroyed);
}

static void
work_hang (DvtTask      *task,
           GCancellable *cancellable,
           gpointer      user_data,
           GError      **error)
{
  Hang *h = user_data;

  if (cancellable != NULL)
    g_atomic_int_inc (&h->had_cancellable);
  g_atomic_int_inc (&h->started);
  gate_wait (&h->gate);
  if (is_cancelled (cancellable))
    g_atomic_int_inc (&h->saw_cancelled);
  dvt_task_return_pointer (task, tracked_new (&h->results_freed), tracked_free);
  g_atomic_int_inc (&h->finished);
}

/* Blocking work that honours its cancellable: it returns as soon as it is
 * cancelled (and gives up, failing, after a long while). */
typedef struct
{
  int started;
  int finished;
  int had_cancellable;
  int saw_cancelled;
} Coop;

static void
work_coop (DvtTask      *task,
           GCancellable *cancellable,
           gpointer      user_data,
           GError      **error)
{
  Coop *c = user_data;
  gint64 end = g_get_monotonic_time () + (gint64) (30 * slow * G_USEC_PER_SEC);

  if (cancellable != NULL)
    g_atomic_int_inc (&c->had_cancellable);
  g_atomic_int_inc (&c->started);
  while (cancellable != NULL && !g_cancellable_is_cancelled (cancellable) &&
         g_get_monotonic_time () < end)
    g_usleep (500);

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    g_atomic_int_inc (&c->saw_cancelled);
  else
    g_set_error_literal (error, TEST_ERROR, 99, "never cancelled");
  g_atomic_int_inc (&c->finished);
}

/* An async function that keeps its task and never completes it. */
typedef struct
{
  DvtTask      *task;         /* atomic */
  GCancellable *cancellable;  /* what the function was given */
  int           calls;
  int           results_freed;
  int           data_destroyed;
} Keep;

static void
async_keep (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  Keep *k = user_data;

  if (cancellable != NULL)
    k->cancellable = g_object_ref (cancellable);
  g_atomic_pointer_set (&k->task, g_object_ref (task));
  g_atomic_int_inc (&k->calls);
}

static void
keep_data_destroyed (gpointer data)
{
  Keep *k = data;

  g_atomic_int_inc (&k->data_destroyed);
}

/* Completes the kept task late: the result must be dropped and freed. */
static void
keep_release (Keep *k)
{
  DvtTask *task = g_atomic_pointer_get (&k->task);

  if (task != NULL)
    {
      int freed = g_atomic_int_get (&k->results_freed);

      g_assert_true (dvt_task_get_completed (task));
      dvt_task_return_pointer (task, tracked_new (&k->results_freed), tracked_free);
      g_assert_cmpint (g_atomic_int_get (&k->results_freed), ==, freed + 1);
      g_object_unref (task);
      k->task = NULL;
    }
  g_clear_object (&k->cancellable);
}

static void
work_int (DvtTask      *task,
          GCancellable *cancellable,
          gpointer      user_data,
          GError      **error)
{
  dvt_task_return_int (task, GPOINTER_TO_INT (user_data));
}

static void
work_count (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  dvt_task_return_int (task, g_atomic_int_add ((int *) user_data, 1) + 1);
}

/* Sleeps user_data milliseconds (scaled), then returns them. */
static void
work_sleep (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  g_usleep ((gulong) (GPOINTER_TO_UINT (user_data) * 1000 * slow));
  dvt_task_return_int (task, GPOINTER_TO_UINT (user_data));
}

/* The result of an async call, delivered to a callback on this thread. */
typedef struct
{
  DvtRuntime *rt;
  gboolean    done;
  gboolean    on_caller_thread;
  GThread    *thread;
  gboolean    ok;
  GValue      value;
  GArray     *results;
  GError     *error;
  gint64      when;
} AsyncOutcome;

static void
async_outcome_init (AsyncOutcome *o,
                    DvtRuntime   *rt)
{
  memset (o, 0, sizeof *o);
  o->rt = rt;
  o->thread = g_thread_self ();
}

static void
async_outcome_clear (AsyncOutcome *o)
{
  if (G_IS_VALUE (&o->value))
    g_value_unset (&o->value);
  g_clear_pointer (&o->results, g_array_unref);
  g_clear_error (&o->error);
}

static void
to_thread_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  AsyncOutcome *o = user_data;

  o->on_caller_thread = g_thread_self () == o->thread;
  o->ok = dvt_runtime_to_thread_finish (o->rt, result, &o->value, &o->error);
  o->when = g_get_monotonic_time ();
  o->done = TRUE;
}

static void
map_cb (GObject      *source,
        GAsyncResult *result,
        gpointer      user_data)
{
  AsyncOutcome *o = user_data;

  o->on_caller_thread = g_thread_self () == o->thread;
  o->results = dvt_runtime_map_finish (o->rt, result, &o->error);
  o->ok = o->results != NULL;
  o->when = g_get_monotonic_time ();
  o->done = TRUE;
}

/* Cancels a cancellable from another thread once *counter reaches target. */
typedef struct
{
  GCancellable *cancellable;
  int          *counter;
  int           target;
} Canceller;

static gpointer
canceller_thread (gpointer data)
{
  Canceller *c = data;

  g_assert_true (POLL_UNTIL (g_atomic_int_get (c->counter) >= c->target, 30));
  g_usleep (10000);
  g_cancellable_cancel (c->cancellable);
  g_object_unref (c->cancellable);
  g_free (c);

  return NULL;
}

static GThread *
cancel_when (GCancellable *cancellable,
             int          *counter,
             int           target)
{
  Canceller *c = g_new0 (Canceller, 1);

  c->cancellable = g_object_ref (cancellable);
  c->counter = counter;
  c->target = target;

  return g_thread_new ("canceller", canceller_thread, c);
}

/* Work that fails as planned, attempt by attempt, and records when each
 * attempt ran. */
#define MAX_CALLS 64

typedef struct
{
  GMutex  lock;
  GQuark  domain;             /* of the failures */
  int     codes[8];           /* per attempt; -1: succeed */
  guint   n_codes;            /* later attempts repeat the last */
  gboolean wait_cancel;       /* fail only once cancelled */
  int     calls;
  guint   attempts[MAX_CALLS];
  gint64  starts[MAX_CALLS];
  gint64  ends[MAX_CALLS];
  int     destroyed;
  GThread *destroyed_on;
} Flaky;

static void
flaky_destroyed (gpointer data)
{
  Flaky *f = data;

  f->destroyed_on = g_thread_self ();
  g_atomic_int_inc (&f->destroyed);
}

static void
flaky_init (Flaky  *f,
            GQuark  domain,
            guint   n_codes,
            ...)
{
  va_list args;

  memset (f, 0, sizeof *f);
  g_mutex_init (&f->lock);
  f->domain = domain != 0 ? domain : TEST_ERROR;
  f->n_codes = n_codes;
  va_start (args, n_codes);
  for (guint i = 0; i < n_codes; i++)
    f->codes[i] = va_arg (args, int);
  va_end (args);
}

static void
flaky_clear (Flaky *f)
{
  g_mutex_clear (&f->lock);
}

static int
flaky_calls (Flaky *f)
{
  int calls;

  g_mutex_lock (&f->lock);
  calls = f->calls;
  g_mutex_unlock (&f->lock);

  return calls;
}

/* What the attempt @attempt of work driven by @f does. */
static void
flaky_attempt (Flaky        *f,
               DvtTask      *task,
               guint         attempt,
               gboolean      via_error,
               GError      **error)
{
  int code = f->codes[MIN (attempt, f->n_codes) - 1];

  if (code < 0)
    dvt_task_return_int (task, 1000 + attempt);
  else if (via_error && error != NULL)
    g_set_error (error, f->domain, code, "attempt %u failed with %d", attempt, code);
  else
    dvt_task_return_new_error (task, f->domain, code, "attempt %u failed with %d",
                               attempt, code);
}

static void
work_flaky (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  Flaky *f = user_data;
  guint attempt = dvt_task_get_attempt (task);
  int n;

  g_mutex_lock (&f->lock);
  n = g_atomic_int_add (&f->calls, 1);  /* cancel_when() reads it unlocked */
  g_assert_cmpint (n, <, MAX_CALLS);
  f->attempts[n] = attempt;
  f->starts[n] = g_get_monotonic_time ();
  g_mutex_unlock (&f->lock);

  if (f->wait_cancel)
    {
      g_assert_true (POLL_UNTIL (is_cancelled (cancellable), 30));
      g_cancellable_set_error_if_cancelled (cancellable, error);
    }
  else
    /* Odd attempts fail through @error, even ones through the task. */
    flaky_attempt (f, task, attempt, attempt % 2 == 1, error);

  g_mutex_lock (&f->lock);
  f->ends[n] = g_get_monotonic_time ();
  g_mutex_unlock (&f->lock);
}

static void
assert_attempts (Flaky *f,
                 int    n)
{
  g_assert_cmpint (flaky_calls (f), ==, n);
  for (int i = 0; i < n; i++)
    g_assert_cmpuint (f->attempts[i], ==, (guint) i + 1);
}

/* Waits until @f's work has run @calls times and then the task has
 * entered its back-off (the retry counter of @rt reached @retries). */
static void
wait_for_backoff (DvtRuntime *rt,
                  Flaky      *f,
                  int         calls,
                  guint64     retries)
{
  g_assert_true (POLL_UNTIL (flaky_calls (f) == calls, 30));
  g_assert_true (POLL_UNTIL (({ g_autoptr(DvtStats) s = stats_of (rt);
                                s->retries == retries; }), 30));
}

static DvtOptions *
retry_options (int    retries,
               double backoff)
{
  DvtOptions *options = dvt_options_new ();

  dvt_options_set_retries (options, retries);
  dvt_options_set_retry_backoff (options, backoff);

  return options;
}

static DvtOptions *
timeout_options (double timeout)
{
  DvtOptions *options = dvt_options_new ();

  dvt_options_set_timeout (options, timeout);

  return options;
}

/* ---- timeouts: every entry point --------------------------------------- */

static void
test_timeout_run_blocking (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = timeout_options (SHORT);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtStats) stats = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  Keep k = { 0 };
  DvtTask *task;
  gint64 start = g_get_monotonic_time ();

  /* The async work never completes its task but keeps it. */
  g_assert_false (dvt_runtime_run_blocking (rt, async_keep, &k, keep_data_destroyed, options,
                                            NULL, &value, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  assert_elapsed (start, SHORT, SHORT + PROMPT);
  g_assert_cmpint (k.calls, ==, 1);
  /* The function had returned: its data is freed before the call returns. */
  g_assert_cmpint (k.data_destroyed, ==, 1);

  task = g_atomic_pointer_get (&k.task);
  g_assert_true (dvt_task_get_completed (task));
  g_assert_true (dvt_task_had_error (task));
  g_assert_true (g_cancellable_is_cancelled (dvt_task_get_cancellable (task)));
  /* The GIO operation it started must be able to stop: it was given the
   * task's cancellable, and the timeout cancelled it. */
  g_assert_nonnull (k.cancellable);
  g_assert_true (g_cancellable_is_cancelled (k.cancellable));

  keep_release (&k);

  stats = stats_of (rt);
  g_assert_cmpuint (stats->timed_out, ==, 1);
  g_assert_cmpuint (stats->error, ==, 1);
  g_assert_cmpuint (stats->done, ==, 0);
  g_assert_cmpuint (stats->cancelled, ==, 0);
}

static void
test_timeout_to_thread_blocking (void)
{
  /* First, so that it outlives the tasks, whose results free into it. */
  Hang h;
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = timeout_options (SHORT);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtStats) stats = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  gint64 start;

  hang_init (&h);
  start = g_get_monotonic_time ();
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_hang, &h, hang_data_destroyed,
                                                  options, NULL, &value, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  assert_elapsed (start, SHORT, SHORT + PROMPT);

  /* Released while the work still runs; its data is freed where it
   * returns. */
  g_assert_cmpint (g_atomic_int_get (&h.started), ==, 1);
  g_assert_cmpint (g_atomic_int_get (&h.finished), ==, 0);
  g_assert_cmpint (g_atomic_int_get (&h.data_destroyed), ==, 0);

  hang_finish (&h);
  /* The late result is dropped and freed, and so is the data. */
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&h.results_freed) == 1, 20));
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&h.data_destroyed) == 1, 20));

  stats = stats_of (rt);
  g_assert_cmpuint (stats->timed_out, ==, 1);
  g_assert_cmpuint (stats->error, ==, 1);
  g_assert_cmpuint (stats->done, ==, 0);
}

/* The work of a blocking call with a timeout gets a cancellable, which the
 * timeout cancels: work that looks at it can stop. */
static void
test_timeout_to_thread_blocking_cancellable (void)
{
  /* First, so that it outlives the tasks, whose results free into it. */
  Hang h;
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = timeout_options (SHORT);
  g_autoptr(GError) error = NULL;

  hang_init (&h);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_hang, &h, NULL, options, NULL,
                                                  NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  hang_finish (&h);
  g_assert_cmpint (h.had_cancellable, ==, 1);
  g_assert_cmpint (h.saw_cancelled, ==, 1);
}

static void
test_timeout_to_thread_async (void)
{
  /* First, so that it outlives the tasks, whose results free into it. */
  Hang h;
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = timeout_options (SHORT);
  g_autoptr(DvtStats) stats = NULL;
  AsyncOutcome o;
  gint64 start = g_get_monotonic_time ();

  hang_init (&h);
  async_outcome_init (&o, rt);
  dvt_runtime_to_thread_async (rt, work_hang, &h, hang_data_destroyed, options, NULL,
                               to_thread_cb, &o);
  g_assert_true (ITERATE_UNTIL (NULL, o.done, 30));
  g_assert_true (o.on_caller_thread);
  g_assert_false (o.ok);
  g_assert_error (o.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpfloat (seconds_between (start, o.when), >=, SHORT - TOL);
  g_assert_cmpfloat (seconds_between (start, o.when), <, SHORT + PROMPT);
  /* The callback did not wait for the work. */
  g_assert_cmpint (g_atomic_int_get (&h.started), ==, 1);
  g_assert_cmpint (g_atomic_int_get (&h.finished), ==, 0);

  hang_finish (&h);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&h.results_freed) == 1, 20));
  /* The data is freed on this thread's context. */
  g_assert_true (ITERATE_UNTIL (NULL, g_atomic_int_get (&h.data_destroyed) == 1, 20));
  async_outcome_clear (&o);

  stats = stats_of (rt);
  g_assert_cmpuint (stats->timed_out, ==, 1);
  g_assert_cmpuint (stats->error, ==, 1);
}

static void
test_timeout_submit (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = timeout_options (SHORT);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;
  g_autoptr(DvtStats) stats = NULL;
  Coop c = { 0 };
  gint64 start = g_get_monotonic_time ();

  task = dvt_runtime_submit (rt, work_coop, &c, NULL, options, NULL, &error);
  g_assert_no_error (error);
  /* A wait that outlasts the timeout sees the task end. */
  g_assert_true (dvt_task_wait (task, 30 * slow, &error));
  g_assert_no_error (error);
  assert_elapsed (start, SHORT, SHORT + PROMPT);
  g_assert_true (dvt_task_had_error (task));
  g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_assert_null (dvt_task_propagate_pointer (task, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);

  /* Its cancellable was cancelled; the work saw it and stopped. */
  g_assert_true (g_cancellable_is_cancelled (dvt_task_get_cancellable (task)));
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&c.finished) == 1, 20));
  g_assert_cmpint (c.had_cancellable, ==, 1);
  g_assert_cmpint (c.saw_cancelled, ==, 1);
  /* The work's own CANCELLED did not replace the timeout. */
  g_clear_error (&error);
  g_assert_false (dvt_task_propagate_boolean (task, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);

  stats = stats_of (rt);
  g_assert_cmpuint (stats->timed_out, ==, 1);
  g_assert_cmpuint (stats->error, ==, 1);
  g_assert_cmpuint (stats->cancelled, ==, 0);
}

static void
test_timeout_submit_late_pointer (void)
{
  /* First, so that it outlives the tasks, whose results free into it. */
  Hang h;
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = timeout_options (SHORT);
  g_autoptr(GError) error = NULL;
  DvtTask *task;

  hang_init (&h);
  task = dvt_runtime_submit (rt, work_hang, &h, hang_data_destroyed, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (dvt_task_wait (task, 30 * slow, &error));
  g_assert_null (dvt_task_propagate_pointer (task, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);

  /* The future is dropped before the work returns: its late pointer
   * result is freed all the same, and so is the function's data. */
  g_object_unref (task);
  hang_finish (&h);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&h.results_freed) == 1, 20));
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&h.data_destroyed) == 1, 20));
  g_assert_cmpint (h.saw_cancelled, ==, 1);
}

static void
test_timeout_schedule (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = timeout_options (SHORT);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;
  g_autoptr(DvtStats) stats = NULL;
  Keep k = { 0 };
  gint64 start = g_get_monotonic_time ();

  task = dvt_runtime_schedule (rt, async_keep, &k, keep_data_destroyed, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (dvt_task_wait (task, 30 * slow, &error));
  assert_elapsed (start, SHORT, SHORT + PROMPT);
  g_assert_false (dvt_task_propagate_boolean (task, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);

  g_assert_true (g_atomic_pointer_get (&k.task) == task);
  g_assert_nonnull (k.cancellable);
  /* Waiters are released first, then the cancellable is cancelled. */
  g_assert_true (POLL_UNTIL (g_cancellable_is_cancelled (k.cancellable), 20));
  g_assert_true (dvt_task_get_cancellable (task) == k.cancellable);

  keep_release (&k);
  g_clear_object (&task);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&k.data_destroyed) == 1, 20));

  stats = stats_of (rt);
  g_assert_cmpuint (stats->timed_out, ==, 1);
  g_assert_cmpuint (stats->error, ==, 1);
}

/* The runtime's timeout applies by default; a call's timeout replaces it:
 * 0 disables it, a shorter or longer one wins. */
static void
test_timeout_runtime_default_and_override (void)
{
  /* First, so that it outlives the tasks, whose results free into it. */
  Hang h;
  g_autoptr(DvtTestRuntime) rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 2,
                                           "timeout", 0.05, NULL);
  g_autoptr(DvtTestRuntime) rt_long = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 2,
                                                "timeout", 3600.0, NULL);
  g_autoptr(DvtOptions) none = timeout_options (0);
  g_autoptr(DvtOptions) longer = timeout_options (3600);
  g_autoptr(DvtOptions) shorter = timeout_options (0.05);
  g_autoptr(DvtOptions) unset = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  double timeout = -1;
  gint64 start;

  g_object_get (rt, "timeout", &timeout, NULL);
  g_assert_cmpfloat (timeout, ==, 0.05);
  g_assert_cmpfloat (dvt_options_get_timeout (unset), ==, -1);

  /* The runtime's default. */
  hang_init (&h);
  start = g_get_monotonic_time ();
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_hang, &h, NULL, NULL, NULL, NULL,
                                                  &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  assert_elapsed (start, 0.05, 0.05 + PROMPT);
  g_clear_error (&error);
  hang_finish (&h);

  /* Options at -1 mean the runtime's default too. */
  hang_init (&h);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_hang, &h, NULL, unset, NULL, NULL,
                                                  &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  hang_finish (&h);

  /* 0: no timeout for this call. The work takes four times the runtime's
   * timeout. */
  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_sleep, GUINT_TO_POINTER (200), NULL,
                                                 none, NULL, &value, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_value_get_int64 (&value), ==, 200);
  g_value_unset (&value);

  /* A longer timeout for this call. */
  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_sleep, GUINT_TO_POINTER (200), NULL,
                                                 longer, NULL, &value, &error));
  g_assert_no_error (error);
  g_value_unset (&value);

  /* A shorter one: an hour for the runtime, 50 ms for this call. */
  hang_init (&h);
  start = g_get_monotonic_time ();
  g_assert_false (dvt_runtime_to_thread_blocking (rt_long, work_hang, &h, NULL, shorter, NULL,
                                                  NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  assert_elapsed (start, 0.05, 0.05 + PROMPT);
  g_clear_error (&error);
  hang_finish (&h);

  /* The options were read when the call was made. */
  {
    g_autoptr(DvtTask) task = NULL;
    Coop c = { 0 };

    task = dvt_runtime_submit (rt, work_coop, &c, NULL, shorter, NULL, &error);
    g_assert_no_error (error);
    dvt_options_set_timeout (shorter, 0);
    g_assert_true (dvt_task_wait (task, 30 * slow, &error));
    g_assert_false (dvt_task_propagate_boolean (task, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    g_assert_true (POLL_UNTIL (g_atomic_int_get (&c.finished) == g_atomic_int_get (&c.started), 20));
  }
}

/* A timeout runs from when the call is accepted: queueing included. A
 * task that times out in the queue never runs. */
static void
test_timeout_while_queued (void)
{
  /* First, so that it outlives the tasks, whose results free into it. */
  Hang h;
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(DvtOptions) options = timeout_options (0.05);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) blocker = NULL;
  g_autoptr(DvtTask) victim = NULL;
  g_autoptr(DvtStats) stats = NULL;
  int calls = 0;
  gint64 start;

  hang_init (&h);
  blocker = dvt_runtime_submit (rt, work_hang, &h, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&h.started) == 1, 20));

  start = g_get_monotonic_time ();
  victim = dvt_runtime_submit (rt, work_count, &calls, NULL, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (dvt_task_wait (victim, 30 * slow, &error));
  assert_elapsed (start, 0.05, 0.05 + PROMPT);
  g_assert_false (dvt_task_propagate_boolean (victim, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);

  hang_finish (&h);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (calls, ==, 0);

  stats = stats_of (rt);
  g_assert_cmpuint (stats->timed_out, ==, 1);
  g_assert_cmpuint (stats->started, ==, 1);
}

/* Counts: timeouts are failures, counted in timed_out too; a work's own
 * TIMED_OUT error is a failure but not a timeout of the runtime's. */
static void
work_own_timed_out (DvtTask      *task,
                    GCancellable *cancellable,
                    gpointer      user_data,
                    GError      **error)
{
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "the server did not answer");
}

static void
test_timeout_stats (void)
{
  /* First, so that it outlives the tasks, whose results free into it. */
  Hang h;
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtOptions) options = timeout_options (SHORT);
  g_autoptr(DvtStats) stats = NULL;
  g_autoptr(GError) error = NULL;

  hang_init (&h);
  for (guint i = 0; i < 3; i++)
    {
      g_assert_false (dvt_runtime_to_thread_blocking (rt, work_hang, &h, NULL, options, NULL,
                                                      NULL, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
      g_clear_error (&error);
    }
  for (guint i = 0; i < 2; i++)
    {
      g_assert_true (dvt_runtime_to_thread_blocking (rt, work_int, GINT_TO_POINTER (1), NULL,
                                                     options, NULL, NULL, &error));
      g_assert_no_error (error);
    }
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_own_timed_out, NULL, NULL, options,
                                                  NULL, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpstr (error->message, ==, "the server did not answer");

  hang_finish (&h);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  stats = stats_of (rt);
  g_assert_cmpuint (stats->queued, ==, 6);
  g_assert_cmpuint (stats->started, ==, 6);
  g_assert_cmpuint (stats->done, ==, 2);
  g_assert_cmpuint (stats->error, ==, 4);
  g_assert_cmpuint (stats->timed_out, ==, 3);
  g_assert_cmpuint (stats->cancelled, ==, 0);
  g_assert_cmpuint (stats->retries, ==, 0);
  g_assert_cmpuint (stats->pending, ==, 0);
  g_assert_cmpuint (stats->running, ==, 0);
}

/* Fast work under a long timeout: every task succeeds, and no timer
 * outlives its task (a timer holds its task, which holds the runtime). */
static void
test_timeout_timers_released (void)
{
  DvtRuntime *rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 2, "timeout", 3600.0, NULL);
  g_autoptr(GError) error = NULL;
  guint n = is_valgrind () ? 20 : 200;
  Keep k = { 0 };

  g_object_add_weak_pointer (G_OBJECT (rt), (gpointer *) &rt);

  for (guint i = 0; i < n; i++)
    {
      g_auto(GValue) value = G_VALUE_INIT;
      g_autoptr(DvtTask) task = NULL;

      g_assert_true (dvt_runtime_to_thread_blocking (rt, work_int, GINT_TO_POINTER (i), NULL,
                                                     NULL, NULL, &value, &error));
      g_assert_no_error (error);
      g_assert_cmpint (g_value_get_int64 (&value), ==, i);

      task = dvt_runtime_submit (rt, work_int, GINT_TO_POINTER (i), NULL, NULL, NULL, &error);
      g_assert_true (dvt_task_wait (task, 0, &error));
      g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, i);
      g_assert_no_error (error);
    }

  /* One that is cancelled ends its timer too. */
  {
    g_autoptr(DvtTask) task = dvt_runtime_schedule (rt, async_keep, &k, NULL, NULL, NULL,
                                                    &error);

    g_assert_true (POLL_UNTIL (g_atomic_int_get (&k.calls) == 1, 20));
    dvt_task_cancel (task);
    keep_release (&k);
  }

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_object_unref (rt);
  g_assert_null (rt);
}

static void async_flaky (DvtTask      *task,
                         GCancellable *cancellable,
                         gpointer      user_data,
                         GError      **error);

/* Async work on the caller's own context: the timers still live on the
 * loop thread, and a caller iterating its context while it waits is woken
 * by a timeout; retries start again on the caller's context. */
static void
item_async_keep_odd (DvtTask      *task,
                     GCancellable *cancellable,
                     gpointer      user_data,
                     GError      **error)
{
  GPtrArray *kept = user_data;

  if (dvt_task_get_index (task) % 2 == 1)
    g_ptr_array_add (kept, g_object_ref (task));
  else
    dvt_task_return_int (task, dvt_task_get_index (task));
}

static void
test_timeout_caller_context (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = timeout_options (SHORT);
  g_autoptr(DvtOptions) retrying = retry_options (2, 0.001);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) kept = g_ptr_array_new_with_free_func (g_object_unref);
  GMainContext *context = g_main_context_new ();
  Keep k = { 0 };
  gint64 start;

  g_main_context_push_thread_default (context);
  dvt_options_set_use_caller_context (options, TRUE);
  dvt_options_set_use_caller_context (retrying, TRUE);

  /* run_blocking: the function runs here, the timeout releases us. */
  start = g_get_monotonic_time ();
  g_assert_false (dvt_runtime_run_blocking (rt, async_keep, &k, NULL, options, NULL, NULL,
                                            &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  assert_elapsed (start, SHORT, SHORT + PROMPT);
  g_assert_cmpint (k.calls, ==, 1);
  /* Waiters are released first, then the cancellable is cancelled. */
  g_assert_true (POLL_UNTIL (g_cancellable_is_cancelled (k.cancellable), 20));
  keep_release (&k);
  g_clear_error (&error);

  /* schedule, then wait (which iterates this context). */
  {
    g_autoptr(DvtTask) task = dvt_runtime_schedule (rt, async_keep, &k, NULL, options, NULL,
                                                    &error);

    start = g_get_monotonic_time ();
    g_assert_true (dvt_task_wait (task, 30 * slow, &error));
    assert_elapsed (start, SHORT - 0.05, SHORT + PROMPT);
    g_assert_false (dvt_task_propagate_boolean (task, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    g_clear_error (&error);
    keep_release (&k);
  }

  /* Async map items on this context: the odd ones time out. */
  {
    g_autoptr(GArray) results = NULL;

    dvt_options_set_async_items (options, TRUE);
    dvt_options_set_return_errors (options, TRUE);
    results = dvt_runtime_map_blocking (rt, 6, item_async_keep_odd, kept, NULL, options, NULL,
                                        &error);
    g_assert_no_error (error);
    for (guint i = 0; i < 6; i++)
      {
        GValue *v = &g_array_index (results, GValue, i);

        if (i % 2)
          g_assert_error ((GError *) g_value_get_boxed (v), G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
        else
          g_assert_cmpint (g_value_get_int64 (v), ==, i);
      }
    g_assert_cmpuint (kept->len, ==, 3);
  }

  /* Retries come back to this context. */
  {
    g_auto(GValue) value = G_VALUE_INIT;
    Flaky f;

    flaky_init (&f, 0, 3, 1, 2, -1);
    g_assert_true (dvt_runtime_run_blocking (rt, async_flaky, &f, NULL, retrying, NULL, &value,
                                             &error));
    g_assert_no_error (error);
    g_assert_cmpint (g_value_get_int64 (&value), ==, 1003);
    assert_attempts (&f, 3);
    flaky_clear (&f);
  }

  g_main_context_pop_thread_default (context);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  while (g_main_context_iteration (context, FALSE))
    ;
  g_main_context_unref (context);
}

/* ---- timeouts: maps ---------------------------------------------------- */

typedef struct
{
  guint  hang_mod;       /* items with index % hang_mod == 1 wait to be cancelled */
  guint  sleep_ms;       /* the others sleep this long (scaled) */
  int    calls;
  int    hung;
  int    saw_cancelled;
  int    others_cancelled;
  GMutex lock;
  gint64 starts[MAX_CALLS];
  guint  n_starts;
} MapWork;

static void
map_work_init (MapWork *mw,
               guint    hang_mod,
               guint    sleep_ms)
{
  memset (mw, 0, sizeof *mw);
  g_mutex_init (&mw->lock);
  mw->hang_mod = hang_mod;
  mw->sleep_ms = sleep_ms;
}

static void
item_work (DvtTask      *task,
           GCancellable *cancellable,
           gpointer      user_data,
           GError      **error)
{
  MapWork *mw = user_data;
  guint i = dvt_task_get_index (task);

  g_atomic_int_inc (&mw->calls);
  g_mutex_lock (&mw->lock);
  if (mw->n_starts < MAX_CALLS)
    mw->starts[mw->n_starts++] = g_get_monotonic_time ();
  g_mutex_unlock (&mw->lock);

  if (mw->hang_mod != 0 && (mw->hang_mod == 1 || i % mw->hang_mod == 1))
    {
      g_atomic_int_inc (&mw->hung);
      if (POLL_UNTIL (is_cancelled (cancellable), 30))
        {
          g_atomic_int_inc (&mw->saw_cancelled);
          g_cancellable_set_error_if_cancelled (cancellable, error);
        }
      else
        g_set_error (error, TEST_ERROR, 99, "item %u was never cancelled", i);
      return;
    }

  if (mw->sleep_ms > 0)
    g_usleep ((gulong) (mw->sleep_ms * 1000 * slow));
  if (is_cancelled (cancellable))
    g_atomic_int_inc (&mw->others_cancelled);
  dvt_task_return_int (task, (gint64) i * 10);
}

static void
test_map_item_timeout_return_errors (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtOptions) options = timeout_options (SHORT);
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  g_autoptr(DvtStats) stats = NULL;
  MapWork mw;

  map_work_init (&mw, 4, 1);
  dvt_options_set_return_errors (options, TRUE);
  results = dvt_runtime_map_blocking (rt, 12, item_work, &mw, NULL, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (results);
  g_assert_cmpuint (results->len, ==, 12);
  for (guint i = 0; i < 12; i++)
    {
      GValue *v = &g_array_index (results, GValue, i);

      if (i % 4 == 1)
        {
          g_assert_true (G_VALUE_HOLDS (v, G_TYPE_ERROR));
          g_assert_error ((GError *) g_value_get_boxed (v), G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
        }
      else
        g_assert_cmpint (g_value_get_int64 (v), ==, i * 10);
    }

  /* Each timed-out item's own cancellable was cancelled, and only its. */
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (mw.calls, ==, 12);
  g_assert_cmpint (mw.hung, ==, 3);
  g_assert_cmpint (mw.saw_cancelled, ==, 3);
  g_assert_cmpint (mw.others_cancelled, ==, 0);

  /* Items are not tasks: one map, done. */
  stats = stats_of (rt);
  g_assert_cmpuint (stats->queued, ==, 1);
  g_assert_cmpuint (stats->done, ==, 1);
  g_assert_cmpuint (stats->error, ==, 0);
  g_assert_cmpuint (stats->timed_out, ==, 0);
  g_mutex_clear (&mw.lock);
}

static void
test_map_item_timeout_fails_map (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = timeout_options (SHORT);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtStats) stats = NULL;
  GArray *results;
  MapWork mw;
  gint64 start = g_get_monotonic_time ();

  /* One at a time: item 0 succeeds, item 1 times out, the rest never
   * start. */
  map_work_init (&mw, 4, 0);
  dvt_options_set_max_concurrency (options, 1);
  results = dvt_runtime_map_blocking (rt, 40, item_work, &mw, NULL, options, NULL, &error);
  g_assert_null (results);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  assert_elapsed (start, SHORT, SHORT + PROMPT);

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (mw.calls, ==, 2);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&mw.saw_cancelled) == 1, 20));

  stats = stats_of (rt);
  g_assert_cmpuint (stats->queued, ==, 1);
  g_assert_cmpuint (stats->error, ==, 1);
  g_mutex_clear (&mw.lock);
}

/* The runtime's timeout applies to each item, never to the whole map:
 * many items, each well within it, together take longer. Each item sleeps
 * a hundredth of the timeout, so that a loaded machine (it once took a
 * 40 ms item past a 0.25 s timeout) does not time one out. */
static void
test_map_runtime_timeout_per_item (void)
{
  double timeout = 2.0 * slow;
  g_autoptr(DvtTestRuntime) rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 2,
                                           "timeout", timeout, NULL);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(DvtOptions) item_timeout = timeout_options (timeout);
  g_autoptr(GError) error = NULL;
  MapWork mw;
  guint n = 120;

  dvt_options_set_max_concurrency (options, 1);
  dvt_options_set_max_concurrency (item_timeout, 1);
  /* item_work() multiplies by slow too. */
  map_work_init (&mw, 0, (guint) (timeout / slow * 1000 / 100));

  for (guint round = 0; round < 2; round++)
    {
      g_autoptr(GArray) results = NULL;
      gint64 start = g_get_monotonic_time ();

      results = dvt_runtime_map_blocking (rt, n, item_work, &mw, NULL,
                                          round == 0 ? options : item_timeout, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (results->len, ==, n);
      for (guint i = 0; i < n; i++)
        g_assert_cmpint (g_value_get_int64 (&g_array_index (results, GValue, i)), ==, i * 10);
      /* The map outlasted the timeout. */
      g_assert_cmpfloat (seconds_since (start), >, timeout);
    }
  g_mutex_clear (&mw.lock);
}

/* Async items with a timeout: those that never complete time out, each
 * on its own; the others complete from a timer. */
typedef struct
{
  GMutex   lock;
  GPtrArray *kept;
  GPtrArray *kept_cancellables;
  int      results_freed;
  int      calls;
} AsyncKeepItems;

static gboolean
complete_item_later (gpointer data)
{
  DvtTask *task = data;

  dvt_task_return_int (task, (gint64) dvt_task_get_index (task) * 10);

  return G_SOURCE_REMOVE;
}

static void
item_async_some_never (DvtTask      *task,
                       GCancellable *cancellable,
                       gpointer      user_data,
                       GError      **error)
{
  AsyncKeepItems *a = user_data;
  guint i = dvt_task_get_index (task);

  g_atomic_int_inc (&a->calls);
  if (i % 2 == 1)
    {
      g_mutex_lock (&a->lock);
      g_ptr_array_add (a->kept, g_object_ref (task));
      g_ptr_array_add (a->kept_cancellables, cancellable != NULL ? g_object_ref (cancellable)
                                                                 : NULL);
      g_mutex_unlock (&a->lock);
    }
  else
    {
      GSource *source = g_timeout_source_new (5);

      g_source_set_callback (source, complete_item_later, g_object_ref (task), g_object_unref);
      g_source_attach (source, g_main_context_get_thread_default ());
      g_source_unref (source);
    }
}

static void
test_map_async_items_timeout (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = timeout_options (SHORT);
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  AsyncKeepItems a = { 0 };
  guint n = 8;

  g_mutex_init (&a.lock);
  a.kept = g_ptr_array_new ();
  a.kept_cancellables = g_ptr_array_new ();
  dvt_options_set_async_items (options, TRUE);
  dvt_options_set_return_errors (options, TRUE);
  results = dvt_runtime_map_blocking (rt, n, item_async_some_never, &a, NULL, options, NULL,
                                      &error);
  g_assert_no_error (error);
  g_assert_cmpuint (results->len, ==, n);
  for (guint i = 0; i < n; i++)
    {
      GValue *v = &g_array_index (results, GValue, i);

      if (i % 2 == 1)
        g_assert_error ((GError *) g_value_get_boxed (v), G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
      else
        g_assert_cmpint (g_value_get_int64 (v), ==, i * 10);
    }

  g_assert_cmpuint (a.kept->len, ==, n / 2);
  for (guint i = 0; i < a.kept->len; i++)
    {
      DvtTask *task = g_ptr_array_index (a.kept, i);
      GCancellable *cancellable = g_ptr_array_index (a.kept_cancellables, i);

      /* Each was told through its cancellable; completing late is
       * harmless and frees the result. */
      g_assert_nonnull (cancellable);
      g_assert_true (g_cancellable_is_cancelled (cancellable));
      dvt_task_return_pointer (task, tracked_new (&a.results_freed), tracked_free);
      g_object_unref (task);
      g_object_unref (cancellable);
    }
  g_assert_cmpint (a.results_freed, ==, (int) n / 2);

  g_ptr_array_unref (a.kept);
  g_ptr_array_unref (a.kept_cancellables);
  g_mutex_clear (&a.lock);
}

/* Many fast items under a runtime timeout shorter than the whole map:
 * async items too. */
static void
item_async_timer (DvtTask      *task,
                  GCancellable *cancellable,
                  gpointer      user_data,
                  GError      **error)
{
  GSource *source = g_timeout_source_new ((guint) (20 * slow));

  g_source_set_callback (source, complete_item_later, g_object_ref (task), g_object_unref);
  g_source_attach (source, g_main_context_get_thread_default ());
  g_source_unref (source);
}

static void
test_map_async_items_runtime_timeout_per_item (void)
{
  /* A hundred times an item's timer (see the test above). */
  double timeout = 2.0 * slow;
  guint n = 120;
  g_autoptr(DvtTestRuntime) rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 2,
                                           "timeout", timeout, NULL);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  gint64 start = g_get_monotonic_time ();

  dvt_options_set_async_items (options, TRUE);
  dvt_options_set_max_concurrency (options, 1);
  results = dvt_runtime_map_blocking (rt, n, item_async_timer, NULL, NULL, options, NULL,
                                      &error);
  g_assert_no_error (error);
  for (guint i = 0; i < n; i++)
    g_assert_cmpint (g_value_get_int64 (&g_array_index (results, GValue, i)), ==, i * 10);
  g_assert_cmpfloat (seconds_since (start), >, timeout);
}

static void
check_map_deadline (DvtRuntime *rt,
                    DvtOptions *options)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtStats) before = stats_of (rt);
  g_autoptr(DvtStats) after = NULL;
  GArray *results;
  MapWork mw;
  gint64 start = g_get_monotonic_time ();

  /* Items 1, 3, 5... wait to be cancelled: the map cannot finish. */
  map_work_init (&mw, 2, 0);
  dvt_options_set_max_concurrency (options, 2);
  dvt_options_set_deadline (options, 0.1);
  results = dvt_runtime_map_blocking (rt, 50, item_work, &mw, NULL, options, NULL, &error);
  g_assert_null (results);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  assert_elapsed (start, 0.1, 0.1 + PROMPT);

  /* The running items were told; the rest never started. */
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&mw.saw_cancelled) ==
                             g_atomic_int_get (&mw.hung), 20));
  g_assert_cmpint (mw.hung, >=, 1);
  {
    int calls = g_atomic_int_get (&mw.calls);

    g_usleep (20000);
    g_assert_cmpint (g_atomic_int_get (&mw.calls), ==, calls);
    g_assert_cmpint (calls, <, 50);
  }

  after = stats_of (rt);
  g_assert_cmpuint (after->queued - before->queued, ==, 1);
  g_assert_cmpuint (after->error - before->error, ==, 1);
  g_assert_cmpuint (after->timed_out - before->timed_out, ==, 1);
  g_mutex_clear (&mw.lock);
}

static void
test_map_deadline (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) plain = dvt_options_new ();
  g_autoptr(DvtOptions) with_retries = retry_options (2, 0.001);

  /* Items run by the runners (no per-item policy)... */
  check_map_deadline (rt, plain);
  /* ... and items dispatched as tasks of their own. */
  check_map_deadline (rt, with_retries);
}

/* Fast items never trip the deadline of the whole map. */
static void
test_map_deadline_fast_items (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(DvtOptions) with_timeout = timeout_options (10 * slow);
  g_autoptr(DvtStats) stats = NULL;
  g_autoptr(GError) error = NULL;
  guint n = is_valgrind () ? 200 : 3000;
  MapWork mw;

  map_work_init (&mw, 0, 0);
  dvt_options_set_deadline (options, 20 * slow);
  dvt_options_set_deadline (with_timeout, 20 * slow);
  for (guint round = 0; round < 2; round++)
    {
      g_autoptr(GArray) results = NULL;

      results = dvt_runtime_map_blocking (rt, n, item_work, &mw, NULL,
                                          round == 0 ? options : with_timeout, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (results->len, ==, n);
      for (guint i = 0; i < n; i++)
        g_assert_cmpint (g_value_get_int64 (&g_array_index (results, GValue, i)), ==, i * 10);
    }

  stats = stats_of (rt);
  g_assert_cmpuint (stats->timed_out, ==, 0);
  g_assert_cmpuint (stats->done, ==, 2);
  g_mutex_clear (&mw.lock);
}

static void
test_map_async_deadline (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  AsyncOutcome o;
  MapWork mw;
  gint64 start = g_get_monotonic_time ();

  map_work_init (&mw, 1, 0);  /* every item waits to be cancelled */
  async_outcome_init (&o, rt);
  dvt_options_set_deadline (options, 0.1);
  dvt_runtime_map_async (rt, 10, item_work, &mw, NULL, options, NULL, map_cb, &o);
  g_assert_true (ITERATE_UNTIL (NULL, o.done, 30));
  g_assert_true (o.on_caller_thread);
  g_assert_null (o.results);
  g_assert_error (o.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpfloat (seconds_between (start, o.when), >=, 0.1 - TOL);
  g_assert_cmpfloat (seconds_between (start, o.when), <, 0.1 + PROMPT);

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (mw.saw_cancelled, ==, mw.hung);
  g_assert_cmpint (mw.calls, <=, 2);
  async_outcome_clear (&o);
  g_mutex_clear (&mw.lock);
}

/* ---- timeouts: gathers ------------------------------------------------- */

static void
test_gather_deadline (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  Coop c = { 0 };
  DvtTask *tasks[4];
  GArray *results;
  gint64 start;

  tasks[0] = dvt_runtime_submit (rt, work_int, GINT_TO_POINTER (7), NULL, NULL, NULL, &error);
  tasks[1] = dvt_runtime_submit (rt, work_coop, &c, NULL, NULL, NULL, &error);
  tasks[2] = dvt_runtime_submit (rt, work_int, GINT_TO_POINTER (8), NULL, NULL, NULL, &error);
  tasks[3] = dvt_runtime_submit (rt, work_coop, &c, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&c.started) == 2, 20));
  /* The quick ones must have finished before the deadline, which nothing
   * promises on a busy machine unless the test waits for it. */
  g_assert_true (POLL_UNTIL (dvt_task_get_completed (tasks[0]) &&
                             dvt_task_get_completed (tasks[2]), 20));

  dvt_options_set_deadline (options, 0.1);
  start = g_get_monotonic_time ();
  results = dvt_runtime_gather_blocking (rt, tasks, 4, options, NULL, &error);
  g_assert_null (results);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  assert_elapsed (start, 0.1, 0.1 + PROMPT);
  g_clear_error (&error);

  /* The unfinished tasks were cancelled, and told so; the finished ones
   * keep their results. */
  for (guint i = 0; i < 4; i++)
    {
      g_assert_true (dvt_task_get_completed (tasks[i]));
      if (i % 2 == 1)
        {
          g_assert_false (dvt_task_propagate_boolean (tasks[i], &error));
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          g_clear_error (&error);
          g_assert_true (g_cancellable_is_cancelled (dvt_task_get_cancellable (tasks[i])));
        }
      else
        {
          g_assert_cmpint (dvt_task_propagate_int (tasks[i], &error), ==, 7 + i / 2);
          g_assert_no_error (error);
        }
    }
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&c.saw_cancelled) == 2, 20));

  for (guint i = 0; i < 4; i++)
    g_object_unref (tasks[i]);
}

/* A gather is not a task: past its deadline it counts nothing itself
 * (DvtStats: "tasks that ended because their timeout passed, and maps past
 * their deadline"); the task it cancelled counts as cancelled. */
static void
test_gather_deadline_stats (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtStats) before = NULL;
  g_autoptr(DvtStats) after = NULL;
  g_autoptr(DvtTask) task = NULL;
  GArray *results;
  Coop c = { 0 };

  task = dvt_runtime_submit (rt, work_coop, &c, NULL, NULL, NULL, &error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&c.started) == 1, 20));
  before = stats_of (rt);
  dvt_options_set_deadline (options, 0.05);
  results = dvt_runtime_gather_blocking (rt, &task, 1, options, NULL, &error);
  g_assert_null (results);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  after = stats_of (rt);
  g_assert_cmpuint (after->queued - before->queued, ==, 0);
  g_assert_cmpuint (after->cancelled - before->cancelled, ==, 1);
  g_assert_cmpuint (after->error - before->error, ==, 0);
  g_assert_cmpuint (after->timed_out - before->timed_out, ==, 0);
}

static void
test_gather_deadline_fast (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  DvtTask *tasks[20];

  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    tasks[i] = dvt_runtime_submit (rt, work_int, GINT_TO_POINTER (i), NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  dvt_options_set_deadline (options, 20 * slow);
  dvt_options_set_timeout (options, 10 * slow);
  results = dvt_runtime_gather_blocking (rt, tasks, G_N_ELEMENTS (tasks), options, NULL, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    {
      g_assert_cmpint (g_value_get_int64 (&g_array_index (results, GValue, i)), ==, i);
      g_object_unref (tasks[i]);
    }
}

static void
test_gather_item_timeout (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtOptions) options = timeout_options (0.05);
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  g_autoptr(DvtStats) stats = NULL;
  Coop c = { 0 };
  DvtTask *tasks[4];
  gint64 start;

  for (guint i = 0; i < 4; i++)
    tasks[i] = i % 2 ? dvt_runtime_submit (rt, work_coop, &c, NULL, NULL, NULL, &error)
                     : dvt_runtime_submit (rt, work_int, GINT_TO_POINTER (i), NULL, NULL, NULL,
                                           &error);
  g_assert_no_error (error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&c.started) == 2, 20));
  /* The quick ones finish before the timeout only if the test waits. */
  g_assert_true (POLL_UNTIL (dvt_task_get_completed (tasks[0]) &&
                             dvt_task_get_completed (tasks[2]), 20));

  /* Return-errors: each slow task times out in its slot. */
  dvt_options_set_return_errors (options, TRUE);
  start = g_get_monotonic_time ();
  results = dvt_runtime_gather_blocking (rt, tasks, 4, options, NULL, &error);
  g_assert_no_error (error);
  assert_elapsed (start, 0.05, 0.05 + PROMPT);
  for (guint i = 0; i < 4; i++)
    {
      GValue *v = &g_array_index (results, GValue, i);

      if (i % 2)
        {
          g_assert_error ((GError *) g_value_get_boxed (v), G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
          /* The task itself timed out, and was told. */
          g_assert_false (dvt_task_propagate_boolean (tasks[i], &error));
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
          g_clear_error (&error);
          g_assert_true (g_cancellable_is_cancelled (dvt_task_get_cancellable (tasks[i])));
        }
      else
        g_assert_cmpint (g_value_get_int64 (v), ==, i);
    }
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&c.saw_cancelled) == 2, 20));
  for (guint i = 0; i < 4; i++)
    g_object_unref (tasks[i]);

  stats = stats_of (rt);
  g_assert_cmpuint (stats->timed_out, ==, 2);

  /* Without return-errors, the gather fails with the timeout. */
  tasks[0] = dvt_runtime_submit (rt, work_int, GINT_TO_POINTER (0), NULL, NULL, NULL, &error);
  tasks[1] = dvt_runtime_submit (rt, work_coop, &c, NULL, NULL, NULL, &error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&c.started) == 3, 20));
  dvt_options_set_return_errors (options, FALSE);
  start = g_get_monotonic_time ();
  g_assert_null (dvt_runtime_gather_blocking (rt, tasks, 2, options, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  assert_elapsed (start, 0.05, 0.05 + PROMPT);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&c.saw_cancelled) == 3, 20));
  g_object_unref (tasks[0]);
  g_object_unref (tasks[1]);
}

/* ---- retries ----------------------------------------------------------- */

static void
test_retry_attempts (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = retry_options (3, 0.001);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtStats) stats = NULL;
  Flaky f;

  /* Blocking call: 3 retries, 4 attempts, the last error unchanged. */
  flaky_init (&f, 0, 5, 1, 2, 3, 4, 5);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_flaky, &f, NULL, options, NULL,
                                                  NULL, &error));
  g_assert_error (error, TEST_ERROR, 4);
  g_assert_cmpstr (error->message, ==, "attempt 4 failed with 4");
  g_clear_error (&error);
  assert_attempts (&f, 4);
  flaky_clear (&f);

  /* A future: its attempt number grew. */
  flaky_init (&f, 0, 5, 1, 2, 3, 4, 5);
  {
    g_autoptr(DvtTask) task = dvt_runtime_submit (rt, work_flaky, &f, NULL, options, NULL,
                                                  &error);

    g_assert_true (dvt_task_wait (task, 0, &error));
    g_assert_cmpuint (dvt_task_get_attempt (task), ==, 4);
    g_assert_null (dvt_task_propagate_pointer (task, &error));
    g_assert_error (error, TEST_ERROR, 4);
    g_assert_cmpstr (error->message, ==, "attempt 4 failed with 4");
    g_clear_error (&error);
  }
  assert_attempts (&f, 4);
  flaky_clear (&f);

  /* No retries: one attempt. */
  dvt_options_set_retries (options, 0);
  flaky_init (&f, 0, 1, 1);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_flaky, &f, NULL, options, NULL,
                                                  NULL, &error));
  g_assert_error (error, TEST_ERROR, 1);
  g_clear_error (&error);
  assert_attempts (&f, 1);
  flaky_clear (&f);

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  stats = stats_of (rt);
  g_assert_cmpuint (stats->queued, ==, 3);
  g_assert_cmpuint (stats->started, ==, 9);
  g_assert_cmpuint (stats->retries, ==, 6);
  g_assert_cmpuint (stats->error, ==, 3);
  g_assert_cmpuint (stats->done, ==, 0);
  g_assert_cmpuint (stats->timed_out, ==, 0);
}

static void
test_retry_success_after_failures (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = retry_options (5, 0.001);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtStats) stats = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  Flaky f;

  flaky_init (&f, 0, 3, 1, 2, -1);
  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_flaky, &f, NULL, options, NULL,
                                                 &value, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_value_get_int64 (&value), ==, 1003);
  assert_attempts (&f, 3);
  flaky_clear (&f);

  stats = stats_of (rt);
  g_assert_cmpuint (stats->queued, ==, 1);
  g_assert_cmpuint (stats->started, ==, 3);
  g_assert_cmpuint (stats->retries, ==, 2);
  g_assert_cmpuint (stats->done, ==, 1);
  g_assert_cmpuint (stats->error, ==, 0);
}

/* The runtime's retries apply by default; options override them. */
static void
test_retry_runtime_default (void)
{
  g_autoptr(DvtTestRuntime) rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 2, "retries", 2,
                                           "retry-backoff", 0.001, NULL);
  g_autoptr(DvtOptions) none = retry_options (0, -1);
  g_autoptr(DvtOptions) more = retry_options (4, -1);
  g_autoptr(GError) error = NULL;
  guint retries = 0;
  Flaky f;

  g_object_get (rt, "retries", &retries, NULL);
  g_assert_cmpuint (retries, ==, 2);

  flaky_init (&f, 0, 1, 5);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_flaky, &f, NULL, NULL, NULL, NULL,
                                                  &error));
  g_assert_error (error, TEST_ERROR, 5);
  g_clear_error (&error);
  assert_attempts (&f, 3);
  flaky_clear (&f);

  flaky_init (&f, 0, 1, 5);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_flaky, &f, NULL, none, NULL, NULL,
                                                  &error));
  g_clear_error (&error);
  assert_attempts (&f, 1);
  flaky_clear (&f);

  flaky_init (&f, 0, 1, 5);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_flaky, &f, NULL, more, NULL, NULL,
                                                  &error));
  g_clear_error (&error);
  assert_attempts (&f, 5);
  flaky_clear (&f);
}

static void
test_runtime_policy_defaults (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  double timeout = -1, backoff = -1, max_delay = -1, jitter = -1, rate = -1;
  guint retries = 99, burst = 99;

  g_object_get (rt, "timeout", &timeout, "retries", &retries, "retry-backoff", &backoff,
                "retry-max-delay", &max_delay, "retry-jitter", &jitter, "rate-limit", &rate,
                "rate-limit-burst", &burst, NULL);
  g_assert_cmpfloat (timeout, ==, 0);
  g_assert_cmpuint (retries, ==, 0);
  g_assert_cmpfloat (backoff, ==, 0.1);
  g_assert_cmpfloat (max_delay, ==, 30);
  g_assert_cmpfloat (jitter, ==, 0);
  g_assert_cmpfloat (rate, ==, 0);
  g_assert_cmpuint (burst, ==, 0);
}

/* Back-off before retry n: base·2^(n−1). Each delay runs from the end of
 * the failed attempt to the start of the next. */
static void
test_retry_backoff (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = retry_options (3, 0.03);
  g_autoptr(GError) error = NULL;
  Flaky f;

  dvt_options_set_retry_max_delay (options, 60);
  flaky_init (&f, 0, 1, 1);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_flaky, &f, NULL, options, NULL,
                                                  NULL, &error));
  g_assert_error (error, TEST_ERROR, 1);
  assert_attempts (&f, 4);
  for (int n = 1; n <= 3; n++)
    {
      double delay = 0.03 * (1 << (n - 1));
      double gap = seconds_between (f.ends[n - 1], f.starts[n]);

      g_test_message ("retry %d: %.4f s (back-off %.3f s)", n, gap, delay);
      g_assert_cmpfloat (gap, >=, delay - TOL);
      g_assert_cmpfloat (gap, <, delay + PROMPT);
    }
  flaky_clear (&f);
}

/* The delay is capped: 10 retries with a base of 0.1 s would take 102 s
 * uncapped; capped at 0.02 s they take about 0.2 s. */
static void
test_retry_max_delay (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = retry_options (10, 0.1);
  g_autoptr(GError) error = NULL;
  Flaky f;
  gint64 start = g_get_monotonic_time ();

  dvt_options_set_retry_max_delay (options, 0.02);
  flaky_init (&f, 0, 1, 1);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_flaky, &f, NULL, options, NULL,
                                                  NULL, &error));
  g_assert_error (error, TEST_ERROR, 1);
  assert_elapsed (start, 10 * 0.02, 5 * slow);
  assert_attempts (&f, 11);
  for (int n = 1; n <= 10; n++)
    g_assert_cmpfloat (seconds_between (f.ends[n - 1], f.starts[n]), >=, 0.02 - TOL);
  flaky_clear (&f);
}

/* Jitter j multiplies each delay by a factor in [1 − j, 1 + j]. */
static void
test_retry_jitter (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtOptions) options = retry_options (1, 0.04);
  g_autoptr(GError) error = NULL;
  Flaky f[20];
  DvtTask *tasks[G_N_ELEMENTS (f)];
  double shortest = G_MAXDOUBLE;

  dvt_options_set_retry_jitter (options, 0.5);
  for (guint i = 0; i < G_N_ELEMENTS (f); i++)
    {
      flaky_init (&f[i], 0, 2, 1, -1);
      tasks[i] = dvt_runtime_submit (rt, work_flaky, &f[i], NULL, options, NULL, &error);
      g_assert_no_error (error);
    }
  for (guint i = 0; i < G_N_ELEMENTS (f); i++)
    {
      double gap;

      g_assert_true (dvt_task_wait (tasks[i], 0, &error));
      g_assert_cmpint (dvt_task_propagate_int (tasks[i], &error), ==, 1002);
      g_assert_no_error (error);
      gap = seconds_between (f[i].ends[0], f[i].starts[1]);
      g_assert_cmpfloat (gap, >=, 0.04 * 0.5 - TOL);
      g_assert_cmpfloat (gap, <, 0.04 * 1.5 + PROMPT);
      shortest = MIN (shortest, gap);
      g_object_unref (tasks[i]);
      flaky_clear (&f[i]);
    }
  g_test_message ("shortest jittered delay: %.4f s", shortest);
  /* Without jitter no delay would be under 0.04 s; with it, among 20
   * delays spread over [0.02, 0.06] one is (all but certainly). */
  if (!is_valgrind ())
    g_assert_cmpfloat (shortest, <, 0.038);
}

typedef struct
{
  int      calls;
  guint    attempts[8];
  DvtTask *task;
  int      wrong_task;
  int      destroyed;
  gboolean always;
} FilterData;

static gboolean
filter_transient (DvtTask      *task,
                  const GError *error,
                  gpointer      user_data)
{
  FilterData *fd = user_data;
  int n = g_atomic_int_add (&fd->calls, 1);

  if (n < 8)
    fd->attempts[n] = dvt_task_get_attempt (task);
  if (g_atomic_pointer_get (&fd->task) != NULL && g_atomic_pointer_get (&fd->task) != task)
    g_atomic_int_inc (&fd->wrong_task);

  return fd->always || g_error_matches (error, TEST_ERROR, 1);
}

static void
filter_destroyed (gpointer data)
{
  FilterData *fd = data;

  g_atomic_int_inc (&fd->destroyed);
}

static void
test_retry_filter (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  DvtOptions *options = retry_options (10, 0.001);
  g_autoptr(GError) error = NULL;
  FilterData fd = { 0 };
  Flaky f;

  /* Only code 1 is retried: 1, 1, then 2 ends it. */
  dvt_options_set_retry_filter (options, filter_transient, &fd, filter_destroyed);
  flaky_init (&f, 0, 3, 1, 1, 2);
  {
    g_autoptr(DvtTask) task = dvt_runtime_submit (rt, work_flaky, &f, NULL, options, NULL,
                                                  &error);

    g_atomic_pointer_set (&fd.task, task);
    g_assert_true (dvt_task_wait (task, 0, &error));
    g_assert_false (dvt_task_propagate_boolean (task, &error));
    g_assert_error (error, TEST_ERROR, 2);
    g_assert_cmpstr (error->message, ==, "attempt 3 failed with 2");
    g_clear_error (&error);
    g_atomic_pointer_set (&fd.task, NULL);
  }
  assert_attempts (&f, 3);
  g_assert_cmpint (fd.calls, ==, 3);
  g_assert_cmpint (fd.wrong_task, ==, 0);
  for (guint i = 0; i < 3; i++)
    g_assert_cmpuint (fd.attempts[i], ==, i + 1);
  flaky_clear (&f);

  /* A filter is asked only while retries are left. */
  fd.calls = 0;
  fd.always = TRUE;
  dvt_options_set_retries (options, 2);
  flaky_init (&f, 0, 1, 7);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_flaky, &f, NULL, options, NULL,
                                                  NULL, &error));
  g_assert_error (error, TEST_ERROR, 7);
  g_clear_error (&error);
  assert_attempts (&f, 3);
  g_assert_cmpint (fd.calls, ==, 2);
  flaky_clear (&f);

  /* Its data is freed once neither the options nor a task need it. */
  g_assert_cmpint (fd.destroyed, ==, 0);
  g_object_unref (options);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&fd.destroyed) == 1, 20));

  /* Replacing a filter frees the old one's data. */
  {
    g_autoptr(DvtOptions) o2 = dvt_options_new ();
    FilterData fd2 = { 0 };

    dvt_options_set_retry_filter (o2, filter_transient, &fd2, filter_destroyed);
    dvt_options_set_retry_filter (o2, NULL, NULL, NULL);
    g_assert_cmpint (fd2.destroyed, ==, 1);
  }
}

/* By default every error is retried but CANCELLED, TIMED_OUT and CLOSED,
 * even when the work itself fails with them. */
static void
test_retry_default_filter (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = retry_options (3, 0.001);
  struct { GQuark domain; int code; int attempts; } cases[] = {
    { G_IO_ERROR, G_IO_ERROR_CANCELLED, 1 },
    { G_IO_ERROR, G_IO_ERROR_TIMED_OUT, 1 },
    { DVT_ERROR, DVT_ERROR_CLOSED, 1 },
    { G_IO_ERROR, G_IO_ERROR_NOT_FOUND, 4 },
    { G_IO_ERROR, G_IO_ERROR_FAILED, 4 },
    { DVT_ERROR, DVT_ERROR_FAILED, 4 },
    { TEST_ERROR, 0, 4 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *message = NULL;
      Flaky f;

      flaky_init (&f, cases[i].domain, 1, cases[i].code);
      g_assert_false (dvt_runtime_to_thread_blocking (rt, work_flaky, &f, NULL, options, NULL,
                                                      NULL, &error));
      g_assert_error (error, cases[i].domain, cases[i].code);
      message = g_strdup_printf ("attempt %d failed with %d", cases[i].attempts, cases[i].code);
      g_assert_cmpstr (error->message, ==, message);
      assert_attempts (&f, cases[i].attempts);
      flaky_clear (&f);
    }
}

static gboolean
filter_always (DvtTask      *task,
               const GError *error,
               gpointer      user_data)
{
  return TRUE;
}

/* A task's own cancellation is never retried, whatever the filter says. */
static void
test_retry_never_after_cancel (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = retry_options (5, 0.001);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;
  Flaky f;

  dvt_options_set_retry_filter (options, filter_always, NULL, NULL);
  flaky_init (&f, 0, 1, 1);
  f.wait_cancel = TRUE;
  task = dvt_runtime_submit (rt, work_flaky, &f, NULL, options, NULL, &error);
  g_assert_true (POLL_UNTIL (flaky_calls (&f) == 1, 20));
  dvt_task_cancel (task);
  g_assert_true (dvt_task_wait (task, 0, &error));
  g_assert_false (dvt_task_propagate_boolean (task, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (flaky_calls (&f), ==, 1);
  flaky_clear (&f);
}

/* The timeout covers every attempt and back-off: retrying stops when it
 * passes, whatever the filter says. */
static void
test_retry_timeout_during_retries (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = retry_options (1000, 0.01);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtStats) stats = NULL;
  gint64 start = g_get_monotonic_time ();
  int calls;
  Flaky f;

  dvt_options_set_retry_max_delay (options, 0.01);
  dvt_options_set_retry_filter (options, filter_always, NULL, NULL);
  dvt_options_set_timeout (options, 0.3);
  flaky_init (&f, 0, 1, 1);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_flaky, &f, NULL, options, NULL,
                                                  NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  assert_elapsed (start, 0.3, 0.3 + PROMPT);

  calls = flaky_calls (&f);
  g_assert_cmpint (calls, >=, 2);
  g_usleep (50000);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (flaky_calls (&f), ==, calls);

  /* The timeout came during an attempt or during a back-off. */
  stats = stats_of (rt);
  g_assert_cmpuint (stats->timed_out, ==, 1);
  g_assert_cmpuint (stats->error, ==, 1);
  g_assert_cmpuint (stats->retries, >=, (guint64) calls - 1);
  g_assert_cmpuint (stats->retries, <=, (guint64) calls);
  g_assert_cmpuint (stats->started, ==, (guint64) calls);
  flaky_clear (&f);
}

/* Async functions are retried too, failing from a later callback or at
 * once. */
typedef struct
{
  DvtTask *task;
  Flaky   *f;
} FlakyLater;

static gboolean
flaky_later_cb (gpointer data)
{
  FlakyLater *fl = data;

  flaky_attempt (fl->f, fl->task, dvt_task_get_attempt (fl->task), FALSE, NULL);
  g_object_unref (fl->task);
  g_free (fl);

  return G_SOURCE_REMOVE;
}

static void
async_flaky (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  Flaky *f = user_data;
  guint attempt = dvt_task_get_attempt (task);
  FlakyLater *fl;
  GSource *source;
  int n;

  g_mutex_lock (&f->lock);
  n = f->calls++;
  f->attempts[n] = attempt;
  f->starts[n] = g_get_monotonic_time ();
  g_mutex_unlock (&f->lock);

  /* Attempt 2 fails at once; the others complete from an idle callback. */
  if (attempt == 2)
    {
      flaky_attempt (f, task, attempt, TRUE, error);
      return;
    }

  fl = g_new0 (FlakyLater, 1);
  fl->task = g_object_ref (task);
  fl->f = f;
  source = g_idle_source_new ();
  g_source_set_callback (source, flaky_later_cb, fl, NULL);
  g_source_attach (source, g_main_context_get_thread_default ());
  g_source_unref (source);
}

static void
test_retry_async_func (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = retry_options (3, 0.001);
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  Flaky f;

  /* run_blocking: two failures, then success. */
  flaky_init (&f, 0, 3, 1, 2, -1);
  g_assert_true (dvt_runtime_run_blocking (rt, async_flaky, &f, flaky_destroyed, options, NULL,
                                           &value, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_value_get_int64 (&value), ==, 1003);
  assert_attempts (&f, 3);
  /* The data lived through the retries, and was freed once, before the
   * call returned. */
  g_assert_cmpint (f.destroyed, ==, 1);
  flaky_clear (&f);

  /* schedule: every attempt fails; the last error is returned. */
  flaky_init (&f, 0, 4, 1, 2, 3, 4);
  {
    g_autoptr(DvtTask) task = dvt_runtime_schedule (rt, async_flaky, &f, NULL, options, NULL,
                                                    &error);

    g_assert_true (dvt_task_wait (task, 0, &error));
    g_assert_false (dvt_task_propagate_boolean (task, &error));
    g_assert_error (error, TEST_ERROR, 4);
    g_assert_cmpstr (error->message, ==, "attempt 4 failed with 4");
    g_assert_cmpuint (dvt_task_get_attempt (task), ==, 4);
  }
  assert_attempts (&f, 4);
  flaky_clear (&f);
}

static void
test_retry_to_thread_async (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = retry_options (2, 0.001);
  AsyncOutcome o;
  Flaky f;

  flaky_init (&f, 0, 2, 1, -1);
  async_outcome_init (&o, rt);
  dvt_runtime_to_thread_async (rt, work_flaky, &f, flaky_destroyed, options, NULL,
                               to_thread_cb, &o);
  g_assert_true (ITERATE_UNTIL (NULL, o.done, 30));
  g_assert_no_error (o.error);
  g_assert_true (o.ok);
  g_assert_cmpint (g_value_get_int64 (&o.value), ==, 1002);
  assert_attempts (&f, 2);
  /* The data lived through the retry and is freed once, on this thread. */
  g_assert_true (ITERATE_UNTIL (NULL, g_atomic_int_get (&f.destroyed) == 1, 20));
  g_assert_true (f.destroyed_on == g_thread_self ());
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpint (f.destroyed, ==, 1);
  async_outcome_clear (&o);
  flaky_clear (&f);

  flaky_init (&f, 0, 3, 1, 2, 3);
  async_outcome_init (&o, rt);
  dvt_runtime_to_thread_async (rt, work_flaky, &f, NULL, options, NULL, to_thread_cb, &o);
  g_assert_true (ITERATE_UNTIL (NULL, o.done, 30));
  g_assert_false (o.ok);
  g_assert_error (o.error, TEST_ERROR, 3);
  assert_attempts (&f, 3);
  async_outcome_clear (&o);
  flaky_clear (&f);
}

/* Cancelling during the back-off ends the task at once; no attempt
 * follows, and the back-off timer goes with the task. */
static void
test_retry_cancel_during_backoff (void)
{
  DvtRuntime *rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = retry_options (3, 30);
  g_autoptr(GError) error = NULL;
  DvtTask *task;
  Flaky f;
  gint64 start;

  g_object_add_weak_pointer (G_OBJECT (rt), (gpointer *) &rt);
  flaky_init (&f, 0, 1, 1);
  task = dvt_runtime_submit (rt, work_flaky, &f, NULL, options, NULL, &error);
  wait_for_backoff (rt, &f, 1, 1);
  g_assert_false (dvt_task_get_completed (task));

  start = g_get_monotonic_time ();
  dvt_task_cancel (task);
  g_assert_true (dvt_task_wait (task, 0, &error));
  assert_elapsed (start, 0, PROMPT);
  g_assert_false (dvt_task_propagate_boolean (task, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_object_unref (task);

  /* Nothing is left to wait for: shutting down is prompt, and the
   * runtime goes with its last reference. */
  start = g_get_monotonic_time ();
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  assert_elapsed (start, 0, PROMPT);
  g_assert_cmpint (flaky_calls (&f), ==, 1);
  g_object_unref (rt);
  g_assert_null (rt);
  flaky_clear (&f);
}

static void
test_retry_caller_cancel_during_backoff (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = retry_options (3, 30);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  GThread *canceller;
  gint64 start = g_get_monotonic_time ();
  Flaky f;

  flaky_init (&f, 0, 1, 1);
  canceller = cancel_when (cancellable, &f.calls, 1);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_flaky, &f, NULL, options,
                                                  cancellable, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  assert_elapsed (start, 0, PROMPT);
  g_thread_join (canceller);

  start = g_get_monotonic_time ();
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  assert_elapsed (start, 0, PROMPT);
  g_assert_cmpint (flaky_calls (&f), ==, 1);
  flaky_clear (&f);
}

static void
test_retry_timeout_during_backoff (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = retry_options (3, 30);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtStats) stats = NULL;
  gint64 start = g_get_monotonic_time ();
  Flaky f;

  dvt_options_set_timeout (options, 0.1);
  flaky_init (&f, 0, 1, 1);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_flaky, &f, NULL, options, NULL,
                                                  NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  assert_elapsed (start, 0.1, 0.1 + PROMPT);

  start = g_get_monotonic_time ();
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  assert_elapsed (start, 0, PROMPT);
  g_assert_cmpint (flaky_calls (&f), ==, 1);

  stats = stats_of (rt);
  g_assert_cmpuint (stats->timed_out, ==, 1);
  g_assert_cmpuint (stats->retries, ==, 1);
  flaky_clear (&f);
}

static void
test_retry_shutdown_during_backoff (void)
{
  g_autoptr(GError) error = NULL;
  Flaky f;

  /* Cancelling shutdown: the task ends cancelled, at once. */
  {
    g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
    g_autoptr(DvtOptions) options = retry_options (3, 30);
    g_autoptr(DvtTask) task = NULL;
    gint64 start;

    flaky_init (&f, 0, 1, 1);
    task = dvt_runtime_submit (rt, work_flaky, &f, NULL, options, NULL, &error);
    wait_for_backoff (rt, &f, 1, 1);
    start = g_get_monotonic_time ();
    dvt_runtime_shutdown (rt, TRUE, TRUE);
    assert_elapsed (start, 0, PROMPT);
    g_assert_true (dvt_task_get_completed (task));
    g_assert_false (dvt_task_propagate_boolean (task, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
    g_assert_cmpint (flaky_calls (&f), ==, 1);
    flaky_clear (&f);
  }

  /* Draining shutdown: the retry still runs, and succeeds. */
  {
    g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
    g_autoptr(DvtOptions) options = retry_options (3, 0.05);
    g_autoptr(DvtTask) task = NULL;

    flaky_init (&f, 0, 2, 1, -1);
    task = dvt_runtime_submit (rt, work_flaky, &f, NULL, options, NULL, &error);
    wait_for_backoff (rt, &f, 1, 1);
    dvt_runtime_shutdown (rt, TRUE, FALSE);
    g_assert_true (dvt_task_get_completed (task));
    g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, 1002);
    g_assert_no_error (error);
    assert_attempts (&f, 2);
    flaky_clear (&f);
  }
}

/* Map items are retried each on its own. */
typedef struct
{
  int    calls;
  int    wrong_attempt;
  int    per_item[16];
} MapFlaky;

static void
item_flaky (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  MapFlaky *mf = user_data;
  guint i = dvt_task_get_index (task);
  guint attempt = dvt_task_get_attempt (task);
  int n = g_atomic_int_add (&mf->per_item[i], 1) + 1;

  g_atomic_int_inc (&mf->calls);
  if ((guint) n != attempt)
    g_atomic_int_inc (&mf->wrong_attempt);

  /* Item 3 always fails; the others fail once. */
  if (i == 3 || attempt == 1)
    g_set_error (error, TEST_ERROR, (int) attempt, "item %u, attempt %u", i, attempt);
  else
    dvt_task_return_int (task, (gint64) i * 100 + attempt);
}

static void
item_async_flaky (DvtTask      *task,
                  GCancellable *cancellable,
                  gpointer      user_data,
                  GError      **error)
{
  item_flaky (task, cancellable, user_data, error);
}

static void
test_retry_map_items (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtOptions) options = retry_options (2, 0.001);

  for (guint async = 0; async < 2; async++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GArray) results = NULL;
      g_autoptr(DvtStats) before = stats_of (rt);
      g_autoptr(DvtStats) after = NULL;
      MapFlaky mf = { 0 };

      dvt_options_set_async_items (options, async);
      dvt_options_set_return_errors (options, TRUE);
      results = dvt_runtime_map_blocking (rt, 10, async ? item_async_flaky : item_flaky, &mf,
                                          NULL, options, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (results->len, ==, 10);
      for (guint i = 0; i < 10; i++)
        {
          GValue *v = &g_array_index (results, GValue, i);

          if (i == 3)
            {
              /* The last attempt's error. */
              g_assert_error ((GError *) g_value_get_boxed (v), TEST_ERROR, 3);
              g_assert_cmpstr (((GError *) g_value_get_boxed (v))->message, ==,
                               "item 3, attempt 3");
              g_assert_cmpint (mf.per_item[i], ==, 3);
            }
          else
            {
              g_assert_cmpint (g_value_get_int64 (v), ==, i * 100 + 2);
              g_assert_cmpint (mf.per_item[i], ==, 2);
            }
        }
      g_assert_cmpint (mf.calls, ==, 9 * 2 + 3);
      g_assert_cmpint (mf.wrong_attempt, ==, 0);

      after = stats_of (rt);
      g_assert_cmpuint (after->retries - before->retries, ==, 9 + 2);
      g_assert_cmpuint (after->queued - before->queued, ==, 1);
      g_assert_cmpuint (after->done - before->done, ==, 1);

      /* Without return-errors, item 3's last error fails the map. */
      g_clear_pointer (&results, g_array_unref);
      memset (&mf, 0, sizeof mf);
      dvt_options_set_return_errors (options, FALSE);
      results = dvt_runtime_map_blocking (rt, 10, async ? item_async_flaky : item_flaky, &mf,
                                          NULL, options, NULL, &error);
      g_assert_null (results);
      g_assert_error (error, TEST_ERROR, 3);
      g_assert_cmpstr (error->message, ==, "item 3, attempt 3");
      dvt_runtime_shutdown (rt, TRUE, FALSE);
      g_assert_cmpint (mf.per_item[3], ==, 3);
      g_object_unref (rt);
      rt = dvt_runtime_new (4);
    }
}

/* ---- the rate limit ---------------------------------------------------- */

static void
test_rate_refused (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  double refused[] = { 0, -1, -0.001, -INFINITY, NAN, INFINITY, 2e9 };
  double rate = -1;
  guint burst = 99;

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_false (dvt_runtime_set_rate_limit (rt, refused[i], 0, &error));
      g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
      g_test_message ("%g: %s", refused[i], error->message);
      g_assert_nonnull (strstr (error->message, "rate limit"));
      g_object_get (rt, "rate-limit", &rate, NULL);
      g_assert_cmpfloat (rate, ==, 0);
    }

  /* A refused value leaves a limit in place unchanged. */
  {
    g_autoptr(GError) error = NULL;

    g_assert_true (dvt_runtime_set_rate_limit (rt, 5, 2, &error));
    g_assert_no_error (error);
    g_assert_false (dvt_runtime_set_rate_limit (rt, -5, 0, &error));
    g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
    g_object_get (rt, "rate-limit", &rate, "rate-limit-burst", &burst, NULL);
    g_assert_cmpfloat (rate, ==, 5);
    g_assert_cmpuint (burst, ==, 2);
  }

  dvt_runtime_clear_rate_limit (rt);
  g_object_get (rt, "rate-limit", &rate, NULL);
  g_assert_cmpfloat (rate, ==, 0);
}

typedef struct
{
  GMutex lock;
  gint64 starts[MAX_CALLS];
  guint  n;
} Starts;

static void
work_record_start (DvtTask      *task,
                   GCancellable *cancellable,
                   gpointer      user_data,
                   GError      **error)
{
  Starts *s = user_data;

  g_mutex_lock (&s->lock);
  g_assert_cmpuint (s->n, <, MAX_CALLS);
  s->starts[s->n++] = g_get_monotonic_time ();
  g_mutex_unlock (&s->lock);
  dvt_task_return_boolean (task, TRUE);
}

static int
compare_gint64 (gconstpointer a,
                gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

/* Submits @n tasks recording their starts, waits for them, and checks
 * that start k (in order) came no sooner than (k − burst + 1)/rate after
 * @t0, and that the throttled count grew by exactly n − burst. */
static void
check_rate (DvtRuntime *rt,
            double      rate,
            guint       burst,
            guint       n)
{
  g_autoptr(DvtStats) before = stats_of (rt);
  g_autoptr(DvtStats) after = NULL;
  g_autoptr(GError) error = NULL;
  DvtTask *tasks[MAX_CALLS];
  Starts s = { 0 };
  gint64 t0;

  g_mutex_init (&s.lock);
  t0 = g_get_monotonic_time ();
  for (guint i = 0; i < n; i++)
    {
      tasks[i] = dvt_runtime_submit (rt, work_record_start, &s, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      if (i + 1 == burst)
        {
          /* The first burst started without being held back. */
          g_autoptr(DvtStats) now = stats_of (rt);

          g_assert_cmpuint (now->throttled, ==, before->throttled);
        }
    }
  for (guint i = 0; i < n; i++)
    {
      g_assert_true (dvt_task_wait (tasks[i], 0, &error));
      g_assert_true (dvt_task_propagate_boolean (tasks[i], &error));
      g_object_unref (tasks[i]);
    }

  g_assert_cmpuint (s.n, ==, n);
  qsort (s.starts, n, sizeof (gint64), compare_gint64);
  for (guint k = burst; k < n; k++)
    {
      double due = (double) (k - burst + 1) / rate;

      g_test_message ("start %u: %.4f s (due %.4f s)", k, seconds_between (t0, s.starts[k]), due);
      g_assert_cmpfloat (seconds_between (t0, s.starts[k]), >=, due - TOL);
    }

  after = stats_of (rt);
  /* Under valgrind the submissions themselves can be slower than the
   * rate, and a start found a token refilled: then fewer are held back. */
  if (slow > 1.0)
    g_assert_cmpuint (after->throttled - before->throttled, <=, n - burst);
  else
    g_assert_cmpuint (after->throttled - before->throttled, ==, n - burst);
  g_mutex_clear (&s.lock);
}

static void
test_rate_burst_default (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (8);
  g_autoptr(GError) error = NULL;
  double rate = 0;
  guint burst = 99;

  /* Burst 0 means max (1, rate): 4 at once, then one per 0.25 s. */
  g_assert_true (dvt_runtime_set_rate_limit (rt, 4, 0, &error));
  g_assert_no_error (error);
  g_object_get (rt, "rate-limit", &rate, "rate-limit-burst", &burst, NULL);
  g_assert_cmpfloat (rate, ==, 4);
  g_assert_cmpuint (burst, ==, 0);
  check_rate (rt, 4, 4, 7);
}

/* Under one start per second, max (1, rate) is 1: the second start is
 * held back (and cancelling it means it never runs). */
static void
test_rate_burst_default_below_one (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) first = NULL;
  g_autoptr(DvtTask) second = NULL;
  g_autoptr(DvtStats) stats = NULL;
  int calls = 0;
  gint64 start;

  g_assert_true (dvt_runtime_set_rate_limit (rt, 0.5, 0, &error));
  first = dvt_runtime_submit (rt, work_count, &calls, NULL, NULL, NULL, &error);
  g_assert_true (dvt_task_wait (first, 0, &error));
  g_assert_cmpint (dvt_task_propagate_int (first, &error), ==, 1);

  second = dvt_runtime_submit (rt, work_count, &calls, NULL, NULL, NULL, &error);
  stats = stats_of (rt);
  g_assert_cmpuint (stats->throttled, ==, 1);
  g_usleep (20000);
  g_assert_false (dvt_task_get_completed (second));

  start = g_get_monotonic_time ();
  dvt_task_cancel (second);
  g_assert_true (dvt_task_wait (second, 0, &error));
  assert_elapsed (start, 0, PROMPT);
  g_assert_false (dvt_task_propagate_boolean (second, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  start = g_get_monotonic_time ();
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  assert_elapsed (start, 0, PROMPT);
  g_assert_cmpint (calls, ==, 1);
}

/* A start held back by the rate limit waits on a timer while its timeout
 * keeps running: it can time out before it ever starts. */
static void
test_rate_timeout_while_throttled (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = timeout_options (0.05);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtStats) stats = NULL;
  int calls = 0;
  gint64 start;

  /* One start a minute; the first uses it. */
  g_assert_true (dvt_runtime_set_rate_limit (rt, 1.0 / 60, 1, &error));
  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_count, &calls, NULL, NULL, NULL,
                                                 NULL, &error));
  start = g_get_monotonic_time ();
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_count, &calls, NULL, options, NULL,
                                                  NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  assert_elapsed (start, 0.05, 0.05 + PROMPT);

  start = g_get_monotonic_time ();
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  assert_elapsed (start, 0, PROMPT);
  g_assert_cmpint (calls, ==, 1);

  stats = stats_of (rt);
  g_assert_cmpuint (stats->throttled, ==, 1);
  g_assert_cmpuint (stats->timed_out, ==, 1);
  g_assert_cmpuint (stats->started, ==, 1);
}

static void
test_rate_burst_explicit (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (8);
  g_autoptr(GError) error = NULL;

  g_assert_true (dvt_runtime_set_rate_limit (rt, 10, 3, &error));
  check_rate (rt, 10, 3, 7);
}

static void
test_rate_properties (void)
{
  g_autoptr(DvtTestRuntime) rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 8,
                                           "rate-limit", 10.0, "rate-limit-burst", 2, NULL);

  check_rate (rt, 10, 2, 5);
}

/* Every attempt counts, retries included. */
static void
test_rate_retries_throttled (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = retry_options (1, 0.001);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtStats) stats = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  gint64 t0;
  Flaky f;

  g_assert_true (dvt_runtime_set_rate_limit (rt, 5, 1, &error));
  flaky_init (&f, 0, 2, 1, -1);
  t0 = g_get_monotonic_time ();
  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_flaky, &f, NULL, options, NULL,
                                                 &value, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_value_get_int64 (&value), ==, 1002);
  assert_attempts (&f, 2);
  /* The retry waited for the rate limit's next start. */
  g_assert_cmpfloat (seconds_between (t0, f.starts[1]), >=, 0.2 - TOL);

  stats = stats_of (rt);
  g_assert_cmpuint (stats->throttled, ==, 1);
  g_assert_cmpuint (stats->retries, ==, 1);
  flaky_clear (&f);
}

static void
test_rate_clear (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtStats) stats = NULL;
  double rate = -1;
  int calls = 0;
  gint64 start;

  /* One start a minute: the first one uses the whole burst. */
  g_assert_true (dvt_runtime_set_rate_limit (rt, 1.0 / 60, 1, &error));
  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_count, &calls, NULL, NULL, NULL,
                                                 NULL, &error));
  dvt_runtime_clear_rate_limit (rt);
  g_object_get (rt, "rate-limit", &rate, NULL);
  g_assert_cmpfloat (rate, ==, 0);

  start = g_get_monotonic_time ();
  for (guint i = 0; i < 10; i++)
    g_assert_true (dvt_runtime_to_thread_blocking (rt, work_count, &calls, NULL, NULL, NULL,
                                                   NULL, &error));
  assert_elapsed (start, 0, PROMPT);
  g_assert_cmpint (calls, ==, 11);

  stats = stats_of (rt);
  g_assert_cmpuint (stats->throttled, ==, 0);
}

static void
test_rate_map (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (8);
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  g_autoptr(DvtStats) stats = NULL;
  MapWork mw;
  gint64 t0;

  g_assert_true (dvt_runtime_set_rate_limit (rt, 10, 2, &error));
  map_work_init (&mw, 0, 0);
  t0 = g_get_monotonic_time ();
  results = dvt_runtime_map_blocking (rt, 6, item_work, &mw, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 6; i++)
    g_assert_cmpint (g_value_get_int64 (&g_array_index (results, GValue, i)), ==, i * 10);

  g_assert_cmpuint (mw.n_starts, ==, 6);
  qsort (mw.starts, mw.n_starts, sizeof (gint64), compare_gint64);
  for (guint k = 2; k < 6; k++)
    g_assert_cmpfloat (seconds_between (t0, mw.starts[k]), >=, (k - 1) * 0.1 - TOL);

  stats = stats_of (rt);
  g_assert_cmpuint (stats->throttled, ==, 4);
  g_assert_cmpuint (stats->queued, ==, 1);
  g_assert_cmpuint (stats->done, ==, 1);
  g_mutex_clear (&mw.lock);
}

/* Map items held back by the rate limit end with the map: its deadline
 * passes, they never start, and their timers do not outlive them. A
 * waiting shutdown then leaves nothing of the runtime behind: its last
 * reference frees it. Looped: the mail of the items ended with the map
 * once stayed in the loop's mailbox after its thread had stopped, holding
 * the runtime (most rounds with DVT_FAULT_INJECT=1). */
static void
test_rate_map_deadline (void)
{
  guint rounds = is_valgrind () ? 5 : 20;

  for (guint round = 0; round < rounds; round++)
    {
      DvtRuntime *rt = dvt_runtime_new (2);
      g_autoptr(DvtOptions) options = dvt_options_new ();
      g_autoptr(GError) error = NULL;
      MapWork mw;
      gint64 start;

      g_object_add_weak_pointer (G_OBJECT (rt), (gpointer *) &rt);
      g_assert_true (dvt_runtime_set_rate_limit (rt, 1.0 / 60, 1, &error));
      map_work_init (&mw, 0, 0);
      dvt_options_set_deadline (options, 0.1);
      start = g_get_monotonic_time ();
      g_assert_null (dvt_runtime_map_blocking (rt, 3, item_work, &mw, NULL, options, NULL, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
      assert_elapsed (start, 0.1, 0.1 + PROMPT);

      start = g_get_monotonic_time ();
      dvt_runtime_shutdown (rt, TRUE, FALSE);
      assert_elapsed (start, 0, PROMPT);
      /* The first start is free (burst 1); the next would wait a minute.
       * On a loaded machine even the first may not have started in time. */
      g_assert_cmpint (mw.calls, <=, 1);
      g_object_unref (rt);
      g_assert_null (rt);
      g_mutex_clear (&mw.lock);
    }
}

/* ---- cancellation on every entry point --------------------------------- */

typedef enum
{
  ENTRY_RUN_BLOCKING,
  ENTRY_TO_THREAD_BLOCKING,
  ENTRY_TO_THREAD_ASYNC,
  ENTRY_SUBMIT,
  ENTRY_SCHEDULE,
  ENTRY_MAP_BLOCKING,
  ENTRY_MAP_ASYNC,
  ENTRY_GATHER,
  N_ENTRIES
} Entry;

static const char *entry_names[N_ENTRIES] = {
  "run-blocking", "to-thread-blocking", "to-thread-async", "submit", "schedule",
  "map-blocking", "map-async", "gather",
};

/* Runs @entry with @cancellable (cancelled before, or cancelled by
 * another thread once the work has started) and checks that the call ends
 * cancelled, promptly, without waiting for work that ignores it. */
static void
check_cancel (Entry    entry,
              gboolean before)
{
  /* First, so that it outlives the tasks, whose results free into it. */
  Hang h;
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  GThread *canceller = NULL;
  DvtTask *tasks[3] = { NULL, NULL, NULL };
  AsyncOutcome o;
  Keep k = { 0 };
  gint64 start;
  int *started;

  hang_init (&h);
  async_outcome_init (&o, rt);
  started = entry == ENTRY_RUN_BLOCKING || entry == ENTRY_SCHEDULE ? &k.calls : &h.started;
  if (before)
    g_cancellable_cancel (cancellable);
  else
    canceller = cancel_when (cancellable, started, 1);

  start = g_get_monotonic_time ();
  switch (entry)
    {
    case ENTRY_RUN_BLOCKING:
      g_assert_false (dvt_runtime_run_blocking (rt, async_keep, &k, NULL, NULL, cancellable,
                                                NULL, &error));
      break;
    case ENTRY_TO_THREAD_BLOCKING:
      g_assert_false (dvt_runtime_to_thread_blocking (rt, work_hang, &h, NULL, NULL,
                                                      cancellable, NULL, &error));
      break;
    case ENTRY_TO_THREAD_ASYNC:
      dvt_runtime_to_thread_async (rt, work_hang, &h, NULL, NULL, cancellable, to_thread_cb,
                                   &o);
      g_assert_true (ITERATE_UNTIL (NULL, o.done, 30));
      g_assert_true (o.on_caller_thread);
      g_assert_false (o.ok);
      error = g_steal_pointer (&o.error);
      break;
    case ENTRY_SUBMIT:
    case ENTRY_SCHEDULE:
      tasks[0] = entry == ENTRY_SUBMIT
                 ? dvt_runtime_submit (rt, work_hang, &h, NULL, NULL, cancellable, &error)
                 : dvt_runtime_schedule (rt, async_keep, &k, NULL, NULL, cancellable, &error);
      g_assert_no_error (error);
      g_assert_nonnull (tasks[0]);
      g_assert_true (dvt_task_wait (tasks[0], 30 * slow, &error));
      g_assert_no_error (error);
      g_assert_false (dvt_task_propagate_boolean (tasks[0], &error));
      /* The task's own cancellable was cancelled, not replaced. */
      g_assert_true (dvt_task_get_cancellable (tasks[0]) != cancellable);
      g_assert_true (g_cancellable_is_cancelled (dvt_task_get_cancellable (tasks[0])));
      break;
    case ENTRY_MAP_BLOCKING:
      g_assert_null (dvt_runtime_map_blocking (rt, 20, work_hang, &h, NULL, NULL, cancellable,
                                               &error));
      break;
    case ENTRY_MAP_ASYNC:
      dvt_runtime_map_async (rt, 20, work_hang, &h, NULL, NULL, cancellable, map_cb, &o);
      g_assert_true (ITERATE_UNTIL (NULL, o.done, 30));
      g_assert_true (o.on_caller_thread);
      g_assert_null (o.results);
      error = g_steal_pointer (&o.error);
      break;
    case ENTRY_GATHER:
      /* Two running, one queued behind them. */
      for (guint i = 0; i < 3; i++)
        {
          tasks[i] = dvt_runtime_submit (rt, work_hang, &h, NULL, NULL, NULL, &error);
          g_assert_no_error (error);
        }
      g_assert_null (dvt_runtime_gather_blocking (rt, tasks, 3, NULL, cancellable, &error));
      break;
    default:
      g_assert_not_reached ();
    }

  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  assert_elapsed (start, 0, PROMPT);
  if (canceller != NULL)
    g_thread_join (canceller);

  /* Released while the work that ignores cancellation still runs. */
  g_assert_cmpint (g_atomic_int_get (&h.finished), ==, 0);
  /* (The tasks of a gather were submitted before it: they may have
   * started.) */
  if (before && entry != ENTRY_GATHER)
    g_assert_cmpint (g_atomic_int_get (started), ==, 0);
  else if (!before)
    g_assert_cmpint (g_atomic_int_get (started), >=, 1);

  if (entry == ENTRY_GATHER)
    for (guint i = 0; i < 3; i++)
      {
        g_autoptr(GError) task_error = NULL;

        g_assert_true (dvt_task_get_completed (tasks[i]));
        g_assert_false (dvt_task_propagate_boolean (tasks[i], &task_error));
        g_assert_error (task_error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        g_assert_true (g_cancellable_is_cancelled (dvt_task_get_cancellable (tasks[i])));
      }

  if (!before && (entry == ENTRY_RUN_BLOCKING || entry == ENTRY_SCHEDULE))
    {
      /* The async work was told through the cancellable it was given. */
      g_assert_nonnull (k.cancellable);
      g_assert_true (g_cancellable_is_cancelled (k.cancellable));
    }
  keep_release (&k);

  /* Let the work return: what it saw, and what never started. */
  gate_open (&h.gate);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (h.finished, ==, h.started);
  g_assert_cmpint (h.saw_cancelled, ==, h.started);
  if (before && entry != ENTRY_GATHER)
    g_assert_cmpint (h.started, ==, 0);
  else if (entry == ENTRY_MAP_BLOCKING || entry == ENTRY_MAP_ASYNC || entry == ENTRY_GATHER)
    g_assert_cmpint (h.started, <=, 2);  /* the queued ones never ran */
  /* Late results are freed. */
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&h.results_freed) == h.finished, 20));
  gate_clear (&h.gate);

  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    g_clear_object (&tasks[i]);
  async_outcome_clear (&o);
  /* Anything freed on this context. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static void
test_cancel_before (gconstpointer data)
{
  check_cancel ((Entry) GPOINTER_TO_INT (data), TRUE);
}

static void
test_cancel_mid_run (gconstpointer data)
{
  check_cancel ((Entry) GPOINTER_TO_INT (data), FALSE);
}

/* Cancelling queued work, by the caller's cancellable or on the task:
 * its function never runs, and it ends at once. */
static gpointer
blocking_victim_thread (gpointer data)
{
  gpointer *args = data;
  DvtRuntime *rt = args[0];
  GCancellable *cancellable = args[1];
  int *calls = args[2];
  GError *error = NULL;
  gboolean ok;

  ok = dvt_runtime_to_thread_blocking (rt, work_count, calls, NULL, NULL, cancellable, NULL,
                                       &error);
  g_assert_false (ok);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_error_free (error);

  return NULL;
}

static void
test_cancel_queued_never_runs (void)
{
  /* First, so that it outlives the tasks, whose results free into it. */
  Hang h;
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(GCancellable) c1 = g_cancellable_new ();
  g_autoptr(GCancellable) c2 = g_cancellable_new ();
  g_autoptr(GCancellable) c3 = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) blocker = NULL;
  g_autoptr(DvtTask) by_cancellable = NULL;
  g_autoptr(DvtTask) by_task = NULL;
  g_autoptr(DvtStats) stats = NULL;
  GPtrArray *many = g_ptr_array_new_with_free_func (g_object_unref);
  gpointer args[3];
  GThread *thread;
  AsyncOutcome o;
  int calls = 0;

  hang_init (&h);
  blocker = dvt_runtime_submit (rt, work_hang, &h, NULL, NULL, NULL, &error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&h.started) == 1, 20));

  by_cancellable = dvt_runtime_submit (rt, work_count, &calls, NULL, NULL, c1, &error);
  by_task = dvt_runtime_submit (rt, work_count, &calls, NULL, NULL, NULL, &error);
  async_outcome_init (&o, rt);
  dvt_runtime_to_thread_async (rt, work_count, &calls, NULL, NULL, c2, to_thread_cb, &o);
  args[0] = rt;
  args[1] = c3;
  args[2] = &calls;
  thread = g_thread_new ("victim", blocking_victim_thread, args);
  g_assert_true (POLL_UNTIL (({ g_autoptr(DvtStats) s = stats_of (rt); s->queued == 5; }), 20));
  /* Submitted and cancelled at once, many times. */
  for (guint i = 0; i < 100; i++)
    {
      DvtTask *t = dvt_runtime_submit (rt, work_count, &calls, NULL, NULL, NULL, &error);

      dvt_task_cancel (t);
      g_assert_true (dvt_task_get_completed (t));
      g_ptr_array_add (many, t);
    }

  g_cancellable_cancel (c1);
  g_assert_true (dvt_task_get_completed (by_cancellable));
  dvt_task_cancel (by_task);
  g_assert_true (dvt_task_get_completed (by_task));
  g_cancellable_cancel (c2);
  g_assert_true (ITERATE_UNTIL (NULL, o.done, 30));
  g_assert_error (o.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_cancellable_cancel (c3);
  g_thread_join (thread);

  g_assert_false (dvt_task_propagate_boolean (by_cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (dvt_task_propagate_boolean (by_task, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* The worker frees up: none of them runs. */
  hang_finish (&h);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (calls, ==, 0);

  stats = stats_of (rt);
  g_assert_cmpuint (stats->cancelled, ==, 104);
  g_assert_cmpuint (stats->started, ==, 1);
  async_outcome_clear (&o);
  g_ptr_array_unref (many);
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* Cancelling a map cancels its unfinished items: the running ones see
 * their cancellable cancelled, the others never start. */
static void
test_cancel_map_items (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) plain = dvt_options_new ();
  g_autoptr(DvtOptions) with_timeout = timeout_options (3600);

  for (guint round = 0; round < 2; round++)
    {
      DvtOptions *options = round == 0 ? plain : with_timeout;
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      g_autoptr(GError) error = NULL;
      GThread *canceller;
      MapWork mw;
      gint64 start = g_get_monotonic_time ();

      map_work_init (&mw, 1, 0);  /* every item waits to be cancelled */
      dvt_options_set_max_concurrency (options, 2);
      canceller = cancel_when (cancellable, &mw.calls, 2);
      g_assert_null (dvt_runtime_map_blocking (rt, 30, item_work, &mw, NULL, options,
                                               cancellable, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      assert_elapsed (start, 0, PROMPT);
      g_thread_join (canceller);

      g_assert_true (POLL_UNTIL (g_atomic_int_get (&mw.saw_cancelled) == 2, 20));
      g_usleep (20000);
      g_assert_cmpint (g_atomic_int_get (&mw.calls), ==, 2);
      g_mutex_clear (&mw.lock);
    }
}

static void
test_cancel_gather_items (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  GThread *canceller;
  DvtTask *tasks[4];
  Coop c = { 0 };
  gint64 start;

  /* Two running, two queued. */
  for (guint i = 0; i < 4; i++)
    tasks[i] = dvt_runtime_submit (rt, work_coop, &c, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  canceller = cancel_when (cancellable, &c.started, 2);
  start = g_get_monotonic_time ();
  g_assert_null (dvt_runtime_gather_blocking (rt, tasks, 4, NULL, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  assert_elapsed (start, 0, PROMPT);
  g_thread_join (canceller);

  for (guint i = 0; i < 4; i++)
    {
      g_autoptr(GError) task_error = NULL;

      g_assert_true (dvt_task_get_completed (tasks[i]));
      g_assert_false (dvt_task_propagate_boolean (tasks[i], &task_error));
      g_assert_error (task_error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_assert_true (g_cancellable_is_cancelled (dvt_task_get_cancellable (tasks[i])));
    }
  /* The running ones were told; the queued ones never started (see
   * /policy/cancel/gather-queued-never-start for the deterministic
   * version of this check). */
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (c.started, ==, 2);
  g_assert_cmpint (c.saw_cancelled, ==, 2);

  for (guint i = 0; i < 4; i++)
    g_object_unref (tasks[i]);
}

/* The same, made deterministic: when the gather's cancellation reaches
 * the first running task, that task's worker is let go (its work returns
 * at once) and, while the gather is still inside that cancellation, it
 * has every chance to pick up a queued task. A queued task of a cancelled
 * gather must never start: the gather must have cancelled it already. */
typedef struct
{
  Coop *coop;
  int   started_meanwhile;
} HoldCancel;

static void
hold_cancel (GCancellable *cancellable,
             gpointer      user_data)
{
  HoldCancel *hc = user_data;

  /* Give a freed worker time to start a queued task (bounded). */
  if (POLL_UNTIL (g_atomic_int_get (&hc->coop->started) > 2, 0.5))
    g_atomic_int_set (&hc->started_meanwhile, 1);
}

static void
check_gather_queued_never_start (gboolean by_deadline)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  GThread *canceller = NULL;
  DvtTask *tasks[4];
  Coop c = { 0 };
  HoldCancel hc = { &c, 0 };

  /* Two running, two queued. */
  for (guint i = 0; i < 4; i++)
    tasks[i] = dvt_runtime_submit (rt, work_coop, &c, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&c.started) == 2, 20));
  g_signal_connect (dvt_task_get_cancellable (tasks[0]), "cancelled",
                    G_CALLBACK (hold_cancel), &hc);

  if (by_deadline)
    dvt_options_set_deadline (options, 0.05);
  else
    canceller = cancel_when (cancellable, &c.started, 2);
  g_assert_null (dvt_runtime_gather_blocking (rt, tasks, 4, options,
                                              by_deadline ? NULL : cancellable, &error));
  if (by_deadline)
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  else
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  if (canceller != NULL)
    g_thread_join (canceller);

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  for (guint i = 0; i < 4; i++)
    {
      g_autoptr(GError) task_error = NULL;

      g_assert_false (dvt_task_propagate_boolean (tasks[i], &task_error));
      g_assert_error (task_error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_object_unref (tasks[i]);
    }
  g_assert_cmpint (hc.started_meanwhile, ==, 0);
  g_assert_cmpint (c.started, ==, 2);
}

static void
test_cancel_gather_queued_never_start (void)
{
  check_gather_queued_never_start (FALSE);
}

static void
test_gather_deadline_queued_never_start (void)
{
  check_gather_queued_never_start (TRUE);
}

/* A timeout's message names the task when it has a name, and the call
 * when a map with a name runs out of its deadline. */
static void
test_timeout_message_names_task (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  Coop c = { 0 };

  dvt_options_set_name (options, "fetch-url");
  dvt_options_set_timeout (options, 0.05);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_coop, &c, NULL, options, NULL,
                                                  NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpstr (error->message, ==, "The task “fetch-url” timed out after 0.05 seconds");
  g_clear_error (&error);

  dvt_options_set_timeout (options, 0);
  dvt_options_set_deadline (options, 0.05);
  g_assert_null (dvt_runtime_map_blocking (rt, 4, work_coop, &c, NULL, options, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpstr (error->message, ==,
                   "The call “fetch-url” did not finish within its deadline of 0.05 seconds");
  dvt_runtime_shutdown (rt, TRUE, FALSE);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/policy/timeout/run-blocking", test_timeout_run_blocking);
  g_test_add_func ("/policy/timeout/to-thread-blocking", test_timeout_to_thread_blocking);
  g_test_add_func ("/policy/timeout/to-thread-blocking/cancellable",
                   test_timeout_to_thread_blocking_cancellable);
  g_test_add_func ("/policy/timeout/to-thread-async", test_timeout_to_thread_async);
  g_test_add_func ("/policy/timeout/submit", test_timeout_submit);
  g_test_add_func ("/policy/timeout/message-names-task", test_timeout_message_names_task);
  g_test_add_func ("/policy/timeout/submit/late-pointer", test_timeout_submit_late_pointer);
  g_test_add_func ("/policy/timeout/schedule", test_timeout_schedule);
  g_test_add_func ("/policy/timeout/runtime-default-and-override",
                   test_timeout_runtime_default_and_override);
  g_test_add_func ("/policy/timeout/while-queued", test_timeout_while_queued);
  g_test_add_func ("/policy/timeout/stats", test_timeout_stats);
  g_test_add_func ("/policy/timeout/timers-released", test_timeout_timers_released);
  g_test_add_func ("/policy/timeout/caller-context", test_timeout_caller_context);

  g_test_add_func ("/policy/map/item-timeout/return-errors", test_map_item_timeout_return_errors);
  g_test_add_func ("/policy/map/item-timeout/fails-map", test_map_item_timeout_fails_map);
  g_test_add_func ("/policy/map/item-timeout/async-items", test_map_async_items_timeout);
  g_test_add_func ("/policy/map/runtime-timeout-per-item", test_map_runtime_timeout_per_item);
  g_test_add_func ("/policy/map/runtime-timeout-per-item/async-items",
                   test_map_async_items_runtime_timeout_per_item);
  g_test_add_func ("/policy/map/deadline", test_map_deadline);
  g_test_add_func ("/policy/map/deadline/fast-items", test_map_deadline_fast_items);
  g_test_add_func ("/policy/map/deadline/async", test_map_async_deadline);

  g_test_add_func ("/policy/gather/deadline", test_gather_deadline);
  g_test_add_func ("/policy/gather/deadline/stats", test_gather_deadline_stats);
  g_test_add_func ("/policy/gather/deadline/fast", test_gather_deadline_fast);
  g_test_add_func ("/policy/gather/item-timeout", test_gather_item_timeout);

  g_test_add_func ("/policy/retry/attempts", test_retry_attempts);
  g_test_add_func ("/policy/retry/success-after-failures", test_retry_success_after_failures);
  g_test_add_func ("/policy/retry/runtime-default", test_retry_runtime_default);
  g_test_add_func ("/policy/runtime/defaults", test_runtime_policy_defaults);
  g_test_add_func ("/policy/retry/backoff", test_retry_backoff);
  g_test_add_func ("/policy/retry/max-delay", test_retry_max_delay);
  g_test_add_func ("/policy/retry/jitter", test_retry_jitter);
  g_test_add_func ("/policy/retry/filter", test_retry_filter);
  g_test_add_func ("/policy/retry/default-filter", test_retry_default_filter);
  g_test_add_func ("/policy/retry/never-after-cancel", test_retry_never_after_cancel);
  g_test_add_func ("/policy/retry/timeout-during-retries", test_retry_timeout_during_retries);
  g_test_add_func ("/policy/retry/async-func", test_retry_async_func);
  g_test_add_func ("/policy/retry/to-thread-async", test_retry_to_thread_async);
  g_test_add_func ("/policy/retry/backoff/cancel", test_retry_cancel_during_backoff);
  g_test_add_func ("/policy/retry/backoff/caller-cancel", test_retry_caller_cancel_during_backoff);
  g_test_add_func ("/policy/retry/backoff/timeout", test_retry_timeout_during_backoff);
  g_test_add_func ("/policy/retry/backoff/shutdown", test_retry_shutdown_during_backoff);
  g_test_add_func ("/policy/retry/map-items", test_retry_map_items);

  g_test_add_func ("/policy/rate/refused", test_rate_refused);
  g_test_add_func ("/policy/rate/burst-default", test_rate_burst_default);
  g_test_add_func ("/policy/rate/burst-default-below-one", test_rate_burst_default_below_one);
  g_test_add_func ("/policy/rate/burst-explicit", test_rate_burst_explicit);
  g_test_add_func ("/policy/rate/timeout-while-throttled", test_rate_timeout_while_throttled);
  g_test_add_func ("/policy/rate/properties", test_rate_properties);
  g_test_add_func ("/policy/rate/retries-throttled", test_rate_retries_throttled);
  g_test_add_func ("/policy/rate/clear", test_rate_clear);
  g_test_add_func ("/policy/rate/map", test_rate_map);
  g_test_add_func ("/policy/rate/map-deadline", test_rate_map_deadline);

  for (int e = 0; e < N_ENTRIES; e++)
    {
      g_autofree char *before = g_strdup_printf ("/policy/cancel/before/%s", entry_names[e]);
      g_autofree char *mid = g_strdup_printf ("/policy/cancel/mid-run/%s", entry_names[e]);

      g_test_add_data_func (before, GINT_TO_POINTER (e), test_cancel_before);
      g_test_add_data_func (mid, GINT_TO_POINTER (e), test_cancel_mid_run);
    }
  g_test_add_func ("/policy/cancel/queued-never-runs", test_cancel_queued_never_runs);
  g_test_add_func ("/policy/cancel/map-items", test_cancel_map_items);
  g_test_add_func ("/policy/cancel/gather-items", test_cancel_gather_items);
  g_test_add_func ("/policy/cancel/gather-queued-never-start",
                   test_cancel_gather_queued_never_start);
  g_test_add_func ("/policy/gather/deadline/queued-never-start",
                   test_gather_deadline_queued_never_start);

  return g_test_run ();
}
