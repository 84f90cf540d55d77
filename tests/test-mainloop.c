/* test-mainloop.c: the main-loop twins of the blocking calls
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"

#include <string.h>

static void
work_int (DvtTask      *task,
          GCancellable *cancellable,
          gpointer      user_data,
          GError      **error)
{
  dvt_task_return_int (task, GPOINTER_TO_INT (user_data));
}

static void
work_fail (DvtTask      *task,
           GCancellable *cancellable,
           gpointer      user_data,
           GError      **error)
{
  g_set_error (error, TEST_ERROR, 7, "failed on purpose");
}

/* Until cancelled, then cancelled. */
static void
work_until_cancelled (DvtTask      *task,
                      GCancellable *cancellable,
                      gpointer      user_data,
                      GError      **error)
{
  g_assert_true (POLL_UNTIL (g_cancellable_is_cancelled (cancellable), 30));
  g_cancellable_set_error_if_cancelled (cancellable, error);
}

/* ---- dvt_task_wait_async -------------------------------------------------- */

static void
test_wait_async_value_and_error (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) ok = dvt_runtime_submit (rt, work_int, GINT_TO_POINTER (42), NULL,
                                              NULL, NULL, &error);
  g_autoptr(DvtTask) bad = dvt_runtime_submit (rt, work_fail, NULL, NULL, NULL, NULL, &error);
  Ready r;

  ready_init (&r);
  dvt_task_wait_async (ok, NULL, on_ready, &r);
  ready_wait (&r);
  g_assert_true (dvt_task_wait_finish (ok, r.result, &error));
  g_assert_no_error (error);
  g_assert_cmpint (dvt_task_propagate_int (ok, &error), ==, 42);
  g_clear_object (&r.result);

  /* The task's own error, unchanged. */
  ready_init (&r);
  dvt_task_wait_async (bad, NULL, on_ready, &r);
  ready_wait (&r);
  g_assert_false (dvt_task_wait_finish (bad, r.result, &error));
  g_assert_error (error, TEST_ERROR, 7);
  g_assert_cmpstr (error->message, ==, "failed on purpose");
  g_clear_object (&r.result);
}

/* 1 000 tasks each ending just before, during or after the call: every
 * wait completes once, on this thread, never lost. */
typedef struct
{
  int n_done;
  int n_ok;
} Many;

static void
on_many_ready (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Many *m = user_data;
  g_autoptr(GError) error = NULL;

  if (dvt_task_wait_finish (DVT_TASK (source), result, &error))
    m->n_ok++;
  m->n_done++;
}

static void
test_wait_async_race (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  guint n = is_valgrind () ? 100 : 1000;
  GPtrArray *tasks = g_ptr_array_new_with_free_func (g_object_unref);
  Many m = { 0, 0 };

  for (guint i = 0; i < n; i++)
    {
      DvtTask *task = dvt_runtime_submit (rt, work_int, GINT_TO_POINTER (i), NULL, NULL,
                                          NULL, NULL);

      /* A third have surely ended, a third may be running. */
      if (i % 3 == 0)
        g_assert_true (dvt_task_wait (task, 0, NULL));
      dvt_task_wait_async (task, NULL, on_many_ready, &m);
      g_ptr_array_add (tasks, task);
    }
  g_assert_true (ITERATE_UNTIL (NULL, m.n_done == (int) n, 60));
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpint (m.n_done, ==, n);
  g_assert_cmpint (m.n_ok, ==, n);
  g_ptr_array_unref (tasks);
}

/* Cancelling the wait ends the wait only. */
static void
test_wait_async_cancel_wait (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GCancellable) wait_cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = dvt_runtime_submit (rt, work_until_cancelled, NULL, NULL,
                                                NULL, NULL, &error);
  Ready r;

  ready_init (&r);
  dvt_task_wait_async (task, wait_cancellable, on_ready, &r);
  g_cancellable_cancel (wait_cancellable);
  ready_wait (&r);
  g_assert_false (dvt_task_wait_finish (task, r.result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (dvt_task_get_completed (task));
  g_clear_object (&r.result);

  /* Already cancelled: the same, and the task still goes on. */
  ready_init (&r);
  dvt_task_wait_async (task, wait_cancellable, on_ready, &r);
  ready_wait (&r);
  g_assert_false (dvt_task_wait_finish (task, r.result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (dvt_task_get_completed (task));
  g_clear_object (&r.result);

  /* The task's end then completes a new wait, as cancelled. */
  ready_init (&r);
  dvt_task_wait_async (task, NULL, on_ready, &r);
  dvt_task_cancel (task);
  ready_wait (&r);
  g_assert_false (dvt_task_wait_finish (task, r.result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_object (&r.result);
}

/* A runtime shut down with cancel_pending: waits end with
 * G_IO_ERROR_CANCELLED, once, on this thread. */
static void
test_wait_async_shutdown (void)
{
  DvtRuntime *rt = dvt_runtime_new (1);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) running = dvt_runtime_submit (rt, work_until_cancelled, NULL, NULL,
                                                   NULL, NULL, &error);
  g_autoptr(DvtTask) queued = dvt_runtime_submit (rt, work_int, NULL, NULL, NULL, NULL,
                                                  &error);
  Ready r1, r2;

  ready_init (&r1);
  ready_init (&r2);
  dvt_task_wait_async (running, NULL, on_ready, &r1);
  dvt_task_wait_async (queued, NULL, on_ready, &r2);
  dvt_runtime_shutdown (rt, FALSE, TRUE);
  ready_wait (&r1);
  ready_wait (&r2);
  g_assert_false (dvt_task_wait_finish (running, r1.result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (dvt_task_wait_finish (queued, r2.result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_object (&r1.result);
  g_clear_object (&r2.result);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_object_unref (rt);
}

/* Callbacks on the caller's thread-default context, from another thread. */
typedef struct
{
  DvtRuntime *rt;
  gboolean    on_right_thread;
  int         n;
} OtherThread;

static void
on_other_ready (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  OtherThread *o = user_data;

  o->n++;
}

static gpointer
other_thread (gpointer data)
{
  OtherThread *o = data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(DvtTask) task = NULL;
  Ready r;

  g_main_context_push_thread_default (context);
  task = dvt_runtime_submit (o->rt, work_int, GINT_TO_POINTER (5), NULL, NULL, NULL, NULL);
  ready_init (&r);
  dvt_task_wait_async (task, NULL, on_ready, &r);   /* asserts the thread */
  g_assert_true (ITERATE_UNTIL (context, r.n > 0, 30));
  g_assert_true (dvt_task_wait_finish (task, r.result, NULL));
  g_clear_object (&r.result);
  g_main_context_pop_thread_default (context);
  o->on_right_thread = TRUE;

  return NULL;
}

static void
test_wait_async_context (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  OtherThread o = { rt, FALSE, 0 };

  g_thread_join (g_thread_new ("other", other_thread, &o));
  g_assert_true (o.on_right_thread);
  /* Nothing was delivered to this thread's context. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpint (o.n, ==, 0);
  (void) on_other_ready;
}

/* ---- run_async, gather_async ------------------------------------------------ */

static gboolean
complete_int (gpointer data)
{
  DvtTask *task = data;

  dvt_task_return_int (task, 9);
  g_object_unref (task);
  return G_SOURCE_REMOVE;
}

/* Completes from an idle source on the loop thread: GIO style. */
static void
start_async (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  g_idle_add (complete_int, g_object_ref (task));
}

static void
test_run_async (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;
  Ready r;

  ready_init (&r);
  dvt_runtime_run_async (rt, start_async, NULL, NULL, NULL, NULL, on_ready, &r);
  ready_wait (&r);
  g_assert_true (dvt_runtime_run_finish (rt, r.result, &value, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_value_get_int64 (&value), ==, 9);
  g_clear_object (&r.result);
}

static void
test_gather_async (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) return_errors = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  DvtTask *tasks[3];
  Ready r;

  /* Ended before the gathers: a failing gather cancels those waiting. */
  for (int i = 0; i < 3; i++)
    {
      tasks[i] = dvt_runtime_submit (rt, i == 1 ? work_fail : work_int,
                                     GINT_TO_POINTER (i * 10), NULL, NULL, NULL, NULL);
      g_assert_true (dvt_task_wait (tasks[i], 0, NULL));
    }

  /* The first failure. */
  ready_init (&r);
  dvt_runtime_gather_async (rt, tasks, 3, NULL, NULL, on_ready, &r);
  ready_wait (&r);
  g_assert_null (dvt_runtime_gather_finish (rt, r.result, &error));
  g_assert_error (error, TEST_ERROR, 7);
  g_clear_error (&error);
  g_clear_object (&r.result);

  /* Each outcome in its slot, in order. */
  dvt_options_set_return_errors (return_errors, TRUE);
  ready_init (&r);
  dvt_runtime_gather_async (rt, tasks, 3, return_errors, NULL, on_ready, &r);
  ready_wait (&r);
  results = dvt_runtime_gather_finish (rt, r.result, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (results->len, ==, 3);
  g_assert_cmpint (g_value_get_int64 (&g_array_index (results, GValue, 0)), ==, 0);
  g_assert_true (G_VALUE_HOLDS (&g_array_index (results, GValue, 1), G_TYPE_ERROR));
  g_assert_cmpint (g_value_get_int64 (&g_array_index (results, GValue, 2)), ==, 20);
  g_clear_object (&r.result);
  g_clear_pointer (&results, g_array_unref);

  /* Empty: at once (in a later iteration), empty. */
  ready_init (&r);
  dvt_runtime_gather_async (rt, NULL, 0, NULL, NULL, on_ready, &r);
  ready_wait (&r);
  results = dvt_runtime_gather_finish (rt, r.result, &error);
  g_assert_cmpuint (results->len, ==, 0);
  g_clear_object (&r.result);

  for (int i = 0; i < 3; i++)
    g_object_unref (tasks[i]);
}

/* The deadline and the cancellable end the gather and cancel the rest. */
static void
test_gather_async_deadline_cancel (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) slow1 = dvt_runtime_submit (rt, work_until_cancelled, NULL, NULL, NULL,
                                                NULL, NULL);
  g_autoptr(DvtTask) slow2 = dvt_runtime_submit (rt, work_until_cancelled, NULL, NULL, NULL,
                                                 NULL, NULL);
  Ready r;

  dvt_options_set_deadline (options, 0.05);
  ready_init (&r);
  dvt_runtime_gather_async (rt, &slow1, 1, options, NULL, on_ready, &r);
  ready_wait (&r);
  g_assert_null (dvt_runtime_gather_finish (rt, r.result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_clear_object (&r.result);
  g_assert_true (dvt_task_wait (slow1, 0, NULL));
  g_assert_true (dvt_task_had_error (slow1));

  ready_init (&r);
  dvt_runtime_gather_async (rt, &slow2, 1, NULL, cancellable, on_ready, &r);
  g_cancellable_cancel (cancellable);
  ready_wait (&r);
  g_assert_null (dvt_runtime_gather_finish (rt, r.result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_object (&r.result);
  g_assert_true (dvt_task_wait (slow2, 0, NULL));
}

/* ---- shutdown_async, wait_idle, cancel_all ----------------------------------- */

static gboolean
count_tick (gpointer data)
{
  g_atomic_int_inc ((int *) data);
  return G_SOURCE_CONTINUE;
}

static void
work_sleep (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  g_usleep (GPOINTER_TO_UINT (user_data));
  dvt_task_return_int (task, 1);
}

/* A GTK-style loop drains the work with shutdown_async while it goes on
 * running (a timeout source keeps firing); two calls both complete. */
static void
test_shutdown_async_drains (void)
{
  DvtRuntime *rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  int ticks = 0;
  guint tick = g_timeout_add (5, count_tick, &ticks);
  Ready r1, r2;
  int n_tasks = 8;

  for (int i = 0; i < n_tasks; i++)
    dvt_runtime_to_thread_async (rt, work_sleep, GUINT_TO_POINTER (50000), NULL, NULL,
                                 NULL, NULL, NULL);

  ready_init (&r1);
  ready_init (&r2);
  dvt_runtime_shutdown_async (rt, FALSE, NULL, on_ready, &r1);
  dvt_runtime_shutdown_async (rt, FALSE, NULL, on_ready, &r2);
  g_assert_true (dvt_runtime_is_shutdown (rt));
  ready_wait (&r1);
  ready_wait (&r2);
  g_assert_true (dvt_runtime_shutdown_finish (rt, r1.result, &error));
  g_assert_true (dvt_runtime_shutdown_finish (rt, r2.result, &error));
  g_assert_no_error (error);
  /* The work was drained, not cancelled, while the loop kept going. */
  {
    g_autoptr(DvtStats) stats = dvt_runtime_get_stats (rt);

    g_assert_cmpuint (stats->done, ==, n_tasks);
  }
  g_assert_cmpint (ticks, >, 0);
  g_source_remove (tick);
  g_clear_object (&r1.result);
  g_clear_object (&r2.result);
  g_object_unref (rt);
}

/* An async function that ends its task on a timer or on its cancellable,
 * whichever comes first, as a GIO call does. */
typedef struct
{
  DvtTask *task;
  GSource *timer;
  GSource *cancel;
} Pending;

static void
pending_free (Pending *p)
{
  g_source_destroy (p->timer);
  g_source_unref (p->timer);
  if (p->cancel != NULL)
    {
      g_source_destroy (p->cancel);
      g_source_unref (p->cancel);
    }
  g_object_unref (p->task);
  g_free (p);
}

static gboolean
pending_timer (gpointer data)
{
  Pending *p = data;

  dvt_task_return_int (p->task, 1);
  pending_free (p);
  return G_SOURCE_REMOVE;
}

static gboolean
pending_cancelled (GCancellable *cancellable,
                   gpointer      data)
{
  Pending *p = data;

  dvt_task_return_new_error (p->task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
  pending_free (p);
  return G_SOURCE_REMOVE;
}

static void
async_timer_or_cancel (DvtTask      *task,
                       GCancellable *cancellable,
                       gpointer      user_data,
                       GError      **error)
{
  Pending *p = g_new0 (Pending, 1);
  GMainContext *context = g_main_context_get_thread_default ();

  p->task = g_object_ref (task);
  p->timer = g_timeout_source_new_seconds (60);
  g_source_set_callback (p->timer, pending_timer, p, NULL);
  g_source_attach (p->timer, context);
  if (cancellable != NULL)
    {
      p->cancel = g_cancellable_source_new (cancellable);
      g_source_set_callback (p->cancel, G_SOURCE_FUNC (pending_cancelled), p, NULL);
      g_source_attach (p->cancel, context);
    }
}

typedef struct
{
  GThread *thread;
  int     *calls;
  int      index;
  int     *done;
} RunCall;

static void
run_call_ready (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  RunCall *rc = user_data;
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_thread_self () == rc->thread);
  g_assert_cmpint (++rc->calls[rc->index], ==, 1);
  if (!dvt_runtime_run_finish (DVT_RUNTIME (source), result, &value, &error))
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  (*rc->done)++;
}

/* shutdown_async with cancel_pending while run_async starts are still
 * queued for the loop thread: each callback runs once, on the caller's
 * context. (A cancelled task posted its callback through the node that
 * still held its queued start: the callback then ran on the loop thread,
 * and twice.) */
static void
test_shutdown_async_cancels_queued_starts (void)
{
  enum { N_TASKS = 100 };
  int rounds = is_valgrind () ? 10 : 200;

  for (int round = 0; round < rounds; round++)
    {
      DvtRuntime *rt = dvt_runtime_new (2);
      g_autoptr(GError) error = NULL;
      int calls[N_TASKS] = { 0 };
      RunCall rcs[N_TASKS];
      int done = 0;
      Ready r;

      for (int i = 0; i < N_TASKS; i++)
        {
          rcs[i] = (RunCall) { g_thread_self (), calls, i, &done };
          dvt_runtime_run_async (rt, async_timer_or_cancel, NULL, NULL, NULL, NULL,
                                 run_call_ready, &rcs[i]);
        }
      if (round % 2 == 1)
        g_usleep (g_random_int_range (0, 2000));

      ready_init (&r);
      dvt_runtime_shutdown_async (rt, TRUE, NULL, on_ready, &r);
      ready_wait (&r);
      g_assert_true (dvt_runtime_shutdown_finish (rt, r.result, &error));
      g_assert_no_error (error);
      while (done < N_TASKS)
        g_main_context_iteration (NULL, TRUE);
      /* Nothing late. */
      while (g_main_context_iteration (NULL, FALSE))
        ;
      for (int i = 0; i < N_TASKS; i++)
        g_assert_cmpint (calls[i], ==, 1);
      g_clear_object (&r.result);
      g_object_unref (rt);
    }
}

static void
test_shutdown_async_cancels (void)
{
  DvtRuntime *rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = dvt_runtime_submit (rt, work_until_cancelled, NULL, NULL, NULL,
                                                NULL, NULL);
  Ready r;

  ready_init (&r);
  dvt_runtime_shutdown_async (rt, TRUE, NULL, on_ready, &r);
  ready_wait (&r);
  g_assert_true (dvt_runtime_shutdown_finish (rt, r.result, &error));
  g_assert_true (dvt_task_get_completed (task));
  g_assert_true (dvt_task_had_error (task));
  g_clear_object (&r.result);
  g_object_unref (rt);
}

static void
test_wait_idle (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(DvtTask) blocker = NULL;
  Ready r;

  /* Idle at once when nothing runs. */
  g_assert_true (dvt_runtime_wait_idle (rt, 0, NULL, &error));
  g_assert_no_error (error);

  for (int i = 0; i < 4; i++)
    dvt_runtime_to_thread_async (rt, work_sleep, GUINT_TO_POINTER (20000), NULL, NULL,
                                 NULL, NULL, NULL);
  g_assert_true (dvt_runtime_wait_idle (rt, 0, NULL, &error));
  {
    g_autoptr(DvtStats) stats = dvt_runtime_get_stats (rt);

    g_assert_cmpuint (stats->done, ==, 4);
    g_assert_cmpuint (stats->pending, ==, 0);
  }
  g_assert_false (dvt_runtime_is_shutdown (rt));

  /* A timeout and a cancellation end the wait, not the work. */
  blocker = dvt_runtime_submit (rt, work_until_cancelled, NULL, NULL, NULL, NULL, NULL);
  g_assert_false (dvt_runtime_wait_idle (rt, 0.05, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_cancellable_cancel (cancellable);
  g_assert_false (dvt_runtime_wait_idle (rt, 0, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (dvt_task_get_completed (blocker));

  /* Asynchronously: completes once the blocker is cancelled. */
  ready_init (&r);
  dvt_runtime_wait_idle_async (rt, NULL, on_ready, &r);
  g_assert_cmpuint (dvt_runtime_cancel_all (rt), ==, 1);
  ready_wait (&r);
  g_assert_true (dvt_runtime_wait_idle_finish (rt, r.result, &error));
  g_assert_no_error (error);
  g_clear_object (&r.result);
  g_assert_true (dvt_task_had_error (blocker));

  /* The runtime is still open. */
  {
    g_auto(GValue) value = G_VALUE_INIT;

    g_assert_true (dvt_runtime_to_thread_blocking (rt, work_int, GINT_TO_POINTER (3), NULL,
                                                   NULL, NULL, &value, &error));
    g_assert_cmpint (g_value_get_int64 (&value), ==, 3);
  }
  g_assert_cmpuint (dvt_runtime_cancel_all (rt), ==, 0);
}

/* From a work function, waiting for the runtime to be idle could never
 * end: refused at once. */
static void
work_waits_idle (DvtTask      *task,
                 GCancellable *cancellable,
                 gpointer      user_data,
                 GError      **error)
{
  GError *local_error = NULL;

  g_assert_false (dvt_runtime_wait_idle (dvt_task_get_runtime (task), 10, NULL, &local_error));
  g_assert_error (local_error, DVT_ERROR, DVT_ERROR_WOULD_DEADLOCK);
  g_propagate_error (error, local_error);
}

static void
test_wait_idle_self (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;

  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_waits_idle, NULL, NULL, NULL,
                                                  NULL, NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_WOULD_DEADLOCK);
}

/* ---- properties to bind to ---------------------------------------------------- */

static void
count_notify (GObject    *object,
              GParamSpec *pspec,
              gpointer    user_data)
{
  g_atomic_int_inc ((int *) user_data);
}

/* A future's completed and attempt notify on the event context, as its
 * signals do; its id and name read as properties. */
static void
test_task_properties (void)
{
  g_autoptr(GMainContext) context = g_main_context_ref_thread_default ();
  DvtRuntime *rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 2, "event-context",
                                 context, NULL);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(DvtTask) task = NULL;
  g_autofree char *name = NULL;
  gboolean completed = TRUE;
  guint64 id = 0;
  guint attempt = 0;
  int n_completed = 0, n_attempt = 0, n_name = 0;

  dvt_options_set_retries (options, 2);
  dvt_options_set_retry_backoff (options, 0.001);
  task = dvt_runtime_submit (rt, work_fail, NULL, NULL, options, NULL, NULL);
  g_signal_connect (task, "notify::completed", G_CALLBACK (count_notify), &n_completed);
  g_signal_connect (task, "notify::attempt", G_CALLBACK (count_notify), &n_attempt);
  g_signal_connect (task, "notify::name", G_CALLBACK (count_notify), &n_name);
  g_assert_true (dvt_task_wait (task, 0, NULL));
  g_assert_true (ITERATE_UNTIL (NULL, n_completed == 1, 30));

  g_object_get (task, "completed", &completed, "id", &id, "attempt", &attempt, NULL);
  g_assert_true (completed);
  g_assert_cmpuint (id, ==, dvt_task_get_id (task));
  g_assert_cmpuint (attempt, ==, 3);
  /* Attempts 2 and 3 started, if they started after the handler was
   * connected (the first retry may have come before). */
  g_assert_cmpint (n_attempt, >=, 1);
  g_assert_cmpint (n_attempt, <=, 2);

  g_object_set (task, "name", "renamed", NULL);
  g_object_get (task, "name", &name, NULL);
  g_assert_cmpstr (name, ==, "renamed");
  g_assert_cmpint (n_name, ==, 1);
  dvt_task_set_name (task, "renamed");  /* unchanged: no notify */
  g_assert_cmpint (n_name, ==, 1);

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_object_unref (rt);
}

typedef struct
{
  DvtRuntime *rt;
  int         n_running;
  int         n_pending;
  guint64     last_pending;
  guint64     max_running;
} Counts;

static void
on_counts (GObject    *object,
           GParamSpec *pspec,
           gpointer    user_data)
{
  Counts *c = user_data;
  guint64 running, pending;

  g_object_get (object, "running", &running, "pending", &pending, NULL);
  if (g_str_equal (pspec->name, "running"))
    c->n_running++;
  else
    c->n_pending++;
  c->last_pending = pending;
  c->max_running = MAX (c->max_running, running);
}

/* The runtime's running and pending counts notify on the event context,
 * coalesced (one batch of events, one notification at most: far fewer
 * than tasks), with the values at delivery; the last one seen is 0. */
static void
test_runtime_counts (void)
{
  g_autoptr(GMainContext) context = g_main_context_ref_thread_default ();
  DvtRuntime *rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 2, "event-context",
                                 context, NULL);
  guint n = is_valgrind () ? 50 : 500;
  Counts c = { rt, 0, 0, G_MAXUINT64, 0 };

  g_signal_connect (rt, "notify::running", G_CALLBACK (on_counts), &c);
  g_signal_connect (rt, "notify::pending", G_CALLBACK (on_counts), &c);
  for (guint i = 0; i < n; i++)
    dvt_runtime_to_thread_async (rt, work_sleep, GUINT_TO_POINTER (500), NULL, NULL, NULL,
                                 NULL, NULL);
  /* The events are delivered here while the tasks run. */
  g_assert_true (ITERATE_UNTIL (NULL, c.last_pending == 0, 60));
  while (g_main_context_iteration (NULL, FALSE))
    ;

  g_test_message ("%u tasks: %d running and %d pending notifications, at most %"
                  G_GUINT64_FORMAT " running", n, c.n_running, c.n_pending, c.max_running);
  g_assert_cmpint (c.n_pending, >=, 1);
  g_assert_cmpint (c.n_pending, <, (int) n);
  g_assert_cmpuint (c.max_running, <=, 2);
  {
    guint64 running = 1, pending = 1;

    g_object_get (rt, "running", &running, "pending", &pending, NULL);
    g_assert_cmpuint (running, ==, 0);
    g_assert_cmpuint (pending, ==, 0);
  }

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_object_unref (rt);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/mainloop/wait-async/value-and-error", test_wait_async_value_and_error);
  g_test_add_func ("/mainloop/wait-async/race", test_wait_async_race);
  g_test_add_func ("/mainloop/wait-async/cancel-wait", test_wait_async_cancel_wait);
  g_test_add_func ("/mainloop/wait-async/shutdown", test_wait_async_shutdown);
  g_test_add_func ("/mainloop/wait-async/context", test_wait_async_context);
  g_test_add_func ("/mainloop/run-async", test_run_async);
  g_test_add_func ("/mainloop/gather-async", test_gather_async);
  g_test_add_func ("/mainloop/gather-async/deadline-cancel", test_gather_async_deadline_cancel);
  g_test_add_func ("/mainloop/shutdown-async/drains", test_shutdown_async_drains);
  g_test_add_func ("/mainloop/shutdown-async/cancels", test_shutdown_async_cancels);
  g_test_add_func ("/mainloop/shutdown-async/cancels-queued-starts",
                   test_shutdown_async_cancels_queued_starts);
  g_test_add_func ("/mainloop/wait-idle", test_wait_idle);
  g_test_add_func ("/mainloop/wait-idle/self", test_wait_idle_self);
  g_test_add_func ("/mainloop/properties/task", test_task_properties);
  g_test_add_func ("/mainloop/properties/runtime-counts", test_runtime_counts);

  return g_test_run ();
}
