/* test-lifecycle.c: shutdown, the default runtime, threads, nested waits
 * and counters
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"
#include <string.h>

/* ---- helpers ----------------------------------------------------------- */

typedef struct
{
  int calls;
  int destroyed;
} Counter;

static guint64
stats_queued (DvtRuntime *rt)
{
  g_autoptr(DvtStats) stats = dvt_runtime_get_stats (rt);

  return stats->queued;
}

static void
counter_destroy (gpointer data)
{
  Counter *c = data;

  g_atomic_int_inc (&c->destroyed);
}

static void
work_count (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  Counter *c = user_data;

  dvt_task_return_int (task, g_atomic_int_add (&c->calls, 1) + 1);
}

static void
work_count_slowly (DvtTask      *task,
                   GCancellable *cancellable,
                   gpointer      user_data,
                   GError      **error)
{
  Counter *c = user_data;

  g_usleep (2000);
  dvt_task_return_int (task, g_atomic_int_add (&c->calls, 1) + 1);
}

typedef struct
{
  Gate gate;
  int  started;
  int  finished;
} Blocker;

static void
blocker_init (Blocker *b)
{
  memset (b, 0, sizeof *b);
  gate_init (&b->gate);
}

static void
work_blocker (DvtTask      *task,
              GCancellable *cancellable,
              gpointer      user_data,
              GError      **error)
{
  Blocker *b = user_data;

  g_atomic_int_inc (&b->started);
  gate_wait (&b->gate);
  dvt_task_return_pointer (task, g_strdup ("late"), g_free);
  g_atomic_int_inc (&b->finished);
}

/* ---- shutdown ---------------------------------------------------------- */

static void
test_shutdown_idempotent (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  Counter c = { 0, 0 };

  g_assert_false (dvt_runtime_is_shutdown (rt));
  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_count, &c, NULL, NULL, NULL, NULL, &error));

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_true (dvt_runtime_is_shutdown (rt));
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  dvt_runtime_shutdown (rt, FALSE, TRUE);
  dvt_runtime_shutdown (rt, TRUE, TRUE);
  dvt_runtime_shutdown (rt, FALSE, FALSE);
  g_assert_true (dvt_runtime_is_shutdown (rt));
}

typedef struct
{
  DvtRuntime *rt;
  Gate       *start;
  gboolean    wait;
  gboolean    cancel;
} ShutdownThread;

static gpointer
shutdown_thread (gpointer data)
{
  ShutdownThread *st = data;

  gate_wait (st->start);
  dvt_runtime_shutdown (st->rt, st->wait, st->cancel);
  g_assert_true (dvt_runtime_is_shutdown (st->rt));

  return NULL;
}

static void
test_shutdown_concurrent (void)
{
  for (int round = 0; round < 2; round++)
    {
      g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
      ShutdownThread st[6];
      GThread *threads[6];
      DvtTask *tasks[20];
      Counter c = { 0, 0 };
      Gate start;

      gate_init (&start);
      for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
        {
          g_autoptr(GError) error = NULL;

          tasks[i] = dvt_runtime_submit (rt, work_count_slowly, &c, NULL, NULL, NULL, &error);
          g_assert_no_error (error);
        }

      for (guint i = 0; i < G_N_ELEMENTS (st); i++)
        {
          /* Round 0: only draining shutdowns; round 1: mixed. */
          st[i] = (ShutdownThread) { rt, &start, i % 2 == 0, round == 1 && i % 3 == 0 };
          threads[i] = g_thread_new ("shutdown", shutdown_thread, &st[i]);
        }
      gate_open (&start);
      for (guint i = 0; i < G_N_ELEMENTS (st); i++)
        g_thread_join (threads[i]);

      /* Waiting shutdowns returned after every task had ended. */
      for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
        {
          g_autoptr(GError) error = NULL;

          g_assert_true (dvt_task_get_completed (tasks[i]));
          if (round == 0)
            {
              dvt_task_propagate_int (tasks[i], &error);
              g_assert_no_error (error);
            }
          g_object_unref (tasks[i]);
        }
      if (round == 0)
        g_assert_cmpint (c.calls, ==, G_N_ELEMENTS (tasks));

      gate_clear (&start);
    }
}

typedef struct
{
  GError  *error;
  gboolean called;
} ClosedCallback;

static void
closed_to_thread_cb (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  ClosedCallback *cc = user_data;

  g_assert_false (dvt_runtime_to_thread_finish (DVT_RUNTIME (source), result, NULL,
                                                &cc->error));
  cc->called = TRUE;
}

static void
closed_map_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  ClosedCallback *cc = user_data;

  g_assert_null (dvt_runtime_map_finish (DVT_RUNTIME (source), result, &cc->error));
  cc->called = TRUE;
}

static void
test_shutdown_closed (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtStats) before = NULL;
  g_autoptr(DvtStats) after = NULL;
  ClosedCallback cc = { NULL, FALSE };
  Counter c = { 0, 0 };
  GValue value = G_VALUE_INIT;
  DvtTask *task;
  GArray *results;

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  before = dvt_runtime_get_stats (rt);

  task = dvt_runtime_submit (rt, work_count, &c, counter_destroy, NULL, NULL, &error);
  g_assert_null (task);
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_assert_cmpstr (error->message, !=, "");
  g_clear_error (&error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&c.destroyed) == 1, 10));

  task = dvt_runtime_schedule (rt, work_count, &c, counter_destroy, NULL, NULL, &error);
  g_assert_null (task);
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&c.destroyed) == 2, 10));

  /* A refused blocking call still sets its out value, to a NULL pointer,
   * as every failed call does (bindings read it whatever the outcome). */
  g_assert_false (dvt_runtime_run_blocking (rt, work_count, &c, NULL, NULL, NULL, &value, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  assert_null_value (&value);
  g_value_unset (&value);
  g_clear_error (&error);

  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_count, &c, NULL, NULL, NULL, &value, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  assert_null_value (&value);
  g_value_unset (&value);
  g_clear_error (&error);

  results = dvt_runtime_map_blocking (rt, 10, work_count, &c, NULL, NULL, NULL, &error);
  g_assert_null (results);
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);

  /* The async forms report it through their callback. */
  dvt_runtime_to_thread_async (rt, work_count, &c, counter_destroy, NULL, NULL,
                               closed_to_thread_cb, &cc);
  while (!cc.called)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (cc.error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&cc.error);
  g_assert_true (ITERATE_UNTIL (NULL, g_atomic_int_get (&c.destroyed) == 3, 10));

  cc.called = FALSE;
  dvt_runtime_map_async (rt, 10, work_count, &c, counter_destroy, NULL, NULL,
                         closed_map_cb, &cc);
  while (!cc.called)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (cc.error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&cc.error);
  g_assert_true (ITERATE_UNTIL (NULL, g_atomic_int_get (&c.destroyed) == 4, 10));

  /* Nothing ran, nothing was counted as accepted, each destroy ran once. */
  g_assert_cmpint (c.calls, ==, 0);
  g_assert_cmpint (c.destroyed, ==, 4);
  after = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (after->queued, ==, before->queued);
}

static void
test_shutdown_drain (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  DvtTask *tasks[30];
  Counter c = { 0, 0 };

  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    {
      g_autoptr(GError) error = NULL;

      tasks[i] = dvt_runtime_submit (rt, work_count_slowly, &c, counter_destroy, NULL, NULL,
                                     &error);
      g_assert_no_error (error);
    }

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  /* Everything queued ran to its end before shutdown returned. */
  g_assert_cmpint (g_atomic_int_get (&c.calls), ==, G_N_ELEMENTS (tasks));
  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    {
      g_autoptr(GError) error = NULL;
      gint64 v;

      g_assert_true (dvt_task_get_completed (tasks[i]));
      v = dvt_task_propagate_int (tasks[i], &error);
      g_assert_no_error (error);
      g_assert_cmpint (v, >=, 1);
      g_assert_cmpint (v, <=, G_N_ELEMENTS (tasks));
      g_object_unref (tasks[i]);
    }
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&c.destroyed) == G_N_ELEMENTS (tasks), 10));
}

static void
test_shutdown_no_wait (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;
  g_autoptr(DvtTask) queued = NULL;
  Counter c = { 0, 0 };
  Blocker b;

  blocker_init (&b);
  task = dvt_runtime_submit (rt, work_blocker, &b, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&b.started) == 1, 20));
  queued = dvt_runtime_submit (rt, work_count, &c, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  /* Returns at once, although work is in flight; that work goes on. */
  dvt_runtime_shutdown (rt, FALSE, FALSE);
  g_assert_true (dvt_runtime_is_shutdown (rt));
  g_assert_false (dvt_task_get_completed (task));

  gate_open (&b.gate);
  g_assert_true (dvt_task_wait (task, 0, &error));
  g_assert_no_error (error);
  g_assert_true (dvt_task_wait (queued, 0, &error));
  g_assert_cmpint (dvt_task_propagate_int (queued, &error), ==, 1);
  g_assert_no_error (error);
  {
    g_autofree char *late = dvt_task_propagate_pointer (task, &error);

    g_assert_no_error (error);
    g_assert_cmpstr (late, ==, "late");
  }

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  gate_clear (&b.gate);
}

/* Blocked callers of every kind, released by a cancelling shutdown. */
typedef struct
{
  DvtRuntime *rt;
  DvtTask    *task;
  Blocker    *blocker;
  int         kind;
  gboolean    returned;
  gboolean    result;
  GError     *error;
} BlockedCaller;

static DvtTask *kept_async_task;

static void
async_keep_forever (DvtTask      *task,
                    GCancellable *cancellable,
                    gpointer      user_data,
                    GError      **error)
{
  int *started = user_data;

  /* Keeps its task: only the test completes it, after shutdown. */
  kept_async_task = g_object_ref (task);
  g_atomic_int_inc (started);
}

static int async_started;
static Counter map_counter;

static gpointer
blocked_caller_thread (gpointer data)
{
  BlockedCaller *bc = data;

  switch (bc->kind)
    {
    case 0:   /* waits on a running task */
    case 1:   /* waits on a queued task */
      bc->result = dvt_task_wait (bc->task, 0, &bc->error);
      if (bc->result)
        dvt_task_propagate_int (bc->task, &bc->error);
      break;
    case 2:   /* blocks in to_thread_blocking on running work */
      bc->result = dvt_runtime_to_thread_blocking (bc->rt, work_blocker, bc->blocker, NULL, NULL,
                                                   NULL, NULL, &bc->error);
      break;
    case 3:   /* blocks in run_blocking on async work that never ends */
      bc->result = dvt_runtime_run_blocking (bc->rt, async_keep_forever, &async_started, NULL,
                                             NULL, NULL, NULL, &bc->error);
      break;
    case 4:   /* blocks in map_blocking, whose items cannot start */
      {
        GArray *results = dvt_runtime_map_blocking (bc->rt, 10, work_count, &map_counter, NULL,
                                                    NULL, NULL, &bc->error);

        bc->result = results != NULL;
        g_clear_pointer (&results, g_array_unref);
      }
      break;
    }
  g_atomic_int_set (&bc->returned, TRUE);

  return NULL;
}

static void
test_shutdown_cancel_releases_waiters (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) running = NULL;
  g_autoptr(DvtTask) queued = NULL;
  g_autoptr(DvtStats) stats = NULL;
  BlockedCaller bc[5];
  GThread *threads[5];
  Counter c = { 0, 0 };
  Blocker b1, b2;

  blocker_init (&b1);
  blocker_init (&b2);
  running = dvt_runtime_submit (rt, work_blocker, &b1, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&b1.started) == 1, 20));

  bc[0] = (BlockedCaller) { rt, running, NULL, 0, FALSE, FALSE, NULL };
  bc[2] = (BlockedCaller) { rt, NULL, &b2, 2, FALSE, FALSE, NULL };
  bc[3] = (BlockedCaller) { rt, NULL, NULL, 3, FALSE, FALSE, NULL };
  threads[2] = g_thread_new ("to-thread", blocked_caller_thread, &bc[2]);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&b2.started) == 1, 20));
  /* Both workers are busy: this one stays queued. */
  queued = dvt_runtime_submit (rt, work_count, &c, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  bc[1] = (BlockedCaller) { rt, queued, NULL, 1, FALSE, FALSE, NULL };
  threads[0] = g_thread_new ("wait-running", blocked_caller_thread, &bc[0]);
  threads[1] = g_thread_new ("wait-queued", blocked_caller_thread, &bc[1]);
  threads[3] = g_thread_new ("run-blocking", blocked_caller_thread, &bc[3]);
  bc[4] = (BlockedCaller) { rt, NULL, NULL, 4, FALSE, FALSE, NULL };
  threads[4] = g_thread_new ("map-blocking", blocked_caller_thread, &bc[4]);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&async_started) == 1, 20));
  /* All five calls accepted (the map included). */
  g_assert_true (POLL_UNTIL (stats_queued (rt) == 5, 20));
  g_usleep (20000);
  for (guint i = 0; i < G_N_ELEMENTS (bc); i++)
    g_assert_false (g_atomic_int_get (&bc[i].returned));

  dvt_runtime_shutdown (rt, FALSE, TRUE);

  /* Every blocked caller returns, with an error, while the work it
   * waited for is still blocked. */
  for (guint i = 0; i < G_N_ELEMENTS (bc); i++)
    {
      g_thread_join (threads[i]);
      g_assert_nonnull (bc[i].error);
      g_test_message ("caller %u: %s", i, bc[i].error->message);
      g_assert_error (bc[i].error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_clear_error (&bc[i].error);
    }
  g_assert_cmpint (g_atomic_int_get (&b1.finished), ==, 0);
  g_assert_cmpint (g_atomic_int_get (&b2.finished), ==, 0);

  /* The work ends later; its results are dropped quietly. */
  gate_open (&b1.gate);
  gate_open (&b2.gate);
  dvt_task_return_int (kept_async_task, 1);
  g_clear_object (&kept_async_task);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&b1.finished) == 1 &&
                             g_atomic_int_get (&b2.finished) == 1, 20));

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  /* The queued task and the map's items never ran. */
  g_assert_cmpint (c.calls, ==, 0);
  g_assert_cmpint (map_counter.calls, ==, 0);

  stats = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (stats->queued, ==, 5);
  g_assert_cmpuint (stats->cancelled, ==, 5);
  g_assert_cmpuint (stats->pending, ==, 0);

  gate_clear (&b1.gate);
  gate_clear (&b2.gate);
}

static void
work_shutdown_own_runtime (DvtTask      *task,
                           GCancellable *cancellable,
                           gpointer      user_data,
                           GError      **error)
{
  gboolean cancel = GPOINTER_TO_INT (user_data);

  /* From one of its own threads: returns without waiting for itself. */
  dvt_runtime_shutdown (dvt_task_get_runtime (task), TRUE, cancel);
  dvt_task_return_int (task, 5);
}

static void
test_shutdown_from_own_threads (void)
{
  for (int cancel = FALSE; cancel <= TRUE; cancel++)
    {
      /* From a worker, and from the loop thread. */
      for (int on_loop = FALSE; on_loop <= TRUE; on_loop++)
        {
          g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
          g_autoptr(GError) error = NULL;
          g_autoptr(DvtTask) task = NULL;
          gint64 v;

          if (on_loop)
            task = dvt_runtime_schedule (rt, work_shutdown_own_runtime, GINT_TO_POINTER (cancel),
                                         NULL, NULL, NULL, &error);
          else
            task = dvt_runtime_submit (rt, work_shutdown_own_runtime, GINT_TO_POINTER (cancel),
                                       NULL, NULL, NULL, &error);
          g_assert_no_error (error);
          g_assert_true (dvt_task_wait (task, 0, &error));
          g_assert_no_error (error);
          g_assert_true (dvt_runtime_is_shutdown (rt));

          /* A cancelling shutdown cancels the very task that called it. */
          v = dvt_task_propagate_int (task, &error);
          if (cancel)
            g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          else
            {
              g_assert_no_error (error);
              g_assert_cmpint (v, ==, 5);
            }

          dvt_runtime_shutdown (rt, TRUE, FALSE);
        }
    }
}

/* ---- the default runtime ------------------------------------------------ */

static void
test_default_runtime (void)
{
  DvtRuntime *first;
  DvtRuntime *second;
  g_autoptr(GError) error = NULL;
  Counter c = { 0, 0 };
  guint n_threads;

  if (!g_test_subprocess ())
    {
      /* In a fresh process, so that "lazily" can be observed. */
      g_test_trap_subprocess (NULL, (guint64) (120 * slow * G_USEC_PER_SEC),
                              G_TEST_SUBPROCESS_INHERIT_STDERR);
      g_test_trap_assert_passed ();
      return;
    }

  /* No default runtime (no loop thread) before first use. */
  n_threads = count_threads (NULL, NULL);
  g_assert_cmpuint (n_threads, ==, 1);

  first = dvt_runtime_get_default ();
  g_assert_true (DVT_IS_RUNTIME (first));
  g_assert_cmpuint (count_threads (NULL, NULL), >, n_threads);
  g_assert_true (dvt_runtime_get_default () == first);
  g_assert_false (dvt_runtime_is_shutdown (first));
  g_assert_true (dvt_runtime_to_thread_blocking (first, work_count, &c, NULL, NULL, NULL, NULL,
                                                 &error));
  g_assert_no_error (error);

  dvt_runtime_shutdown (first, TRUE, FALSE);
  g_assert_true (dvt_runtime_is_shutdown (first));

  second = dvt_runtime_get_default ();
  g_assert_true (second != first);
  g_assert_false (dvt_runtime_is_shutdown (second));
  g_assert_true (dvt_runtime_get_default () == second);
  g_assert_true (dvt_runtime_to_thread_blocking (second, work_count, &c, NULL, NULL, NULL, NULL,
                                                 &error));
  g_assert_no_error (error);
  g_assert_cmpint (c.calls, ==, 2);

  /* The first stays valid (transfer none) and keeps refusing work. */
  g_assert_false (dvt_runtime_to_thread_blocking (first, work_count, &c, NULL, NULL, NULL, NULL,
                                                  &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);

  dvt_runtime_shutdown (second, TRUE, FALSE);
}

/* ---- threads ------------------------------------------------------------ */

static void
test_thread_names (void)
{
  const char *names[] = { "lc-short", "dvt-default" };

  /* A runtime's name names its loop thread (Linux keeps 15 bytes). */
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      DvtRuntime *rt = g_object_new (DVT_TYPE_RUNTIME, "name", names[i], NULL);
      guint n_named = 0;

      g_assert_cmpstr (dvt_runtime_get_name (rt), ==, names[i]);
      if (!POLL_UNTIL ((count_threads (names[i], &n_named), n_named == 1), 0.5))
        {
          g_test_message ("no thread is named after the runtime \"%s\"", names[i]);
          g_test_fail ();
        }
      dvt_test_runtime_free (rt);
    }
}

static void
async_answer (DvtTask      *task,
              GCancellable *cancellable,
              gpointer      user_data,
              GError      **error)
{
  dvt_task_return_int (task, 42);
}

static void
to_thread_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  int *n = user_data;

  g_assert_true (dvt_runtime_to_thread_finish (DVT_RUNTIME (source), result, NULL, NULL));
  (*n)++;
}

static void
exercise_runtime (DvtRuntime *rt)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  Counter c = { 0, 0 };
  int n_callbacks = 0;

  results = dvt_runtime_map_blocking (rt, 200, work_count_slowly, &c, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (dvt_runtime_run_blocking (rt, async_answer, NULL, NULL, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 8; i++)
    dvt_runtime_to_thread_async (rt, work_count, &c, NULL, NULL, NULL, to_thread_cb,
                                 &n_callbacks);
  while (n_callbacks < 8)
    g_main_context_iteration (NULL, TRUE);
}

/* GLib keeps up to 2 idle threads of its shared thread pool around. */
#define GLIB_IDLE_THREADS 2

static void
test_unref_stops_threads (void)
{
  guint baseline;
  guint n_named;

  /* In this process, so that valgrind sees the runtime's whole life.
   * Idle threads left by earlier tests may only go away meanwhile. */
  baseline = count_threads (NULL, NULL);

  for (int round = 0; round < 3; round++)
    {
      DvtRuntime *rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 4,
                                     "name", "lc-unref", NULL);

      exercise_runtime (rt);
      /* The loop thread. */
      g_assert_true (POLL_UNTIL ((count_threads ("lc-unref", &n_named), n_named == 1), 20));
      add_weak_pointer_atomic (G_OBJECT (rt), (gpointer *) &rt);
      /* Without waiting, the shutdown leaves the threads to the unref. */
      dvt_runtime_shutdown (rt, FALSE, FALSE);
      g_object_unref (rt);

      /* Finalized once the last task lets go of it (a worker may still be
       * dropping one); then the loop thread is gone and the workers are
       * back with GLib. */
      g_assert_true (POLL_UNTIL (g_atomic_pointer_get (&rt) == NULL, 20));
      g_assert_true (POLL_UNTIL ((count_threads ("lc-unref", &n_named), n_named == 0), 20));
      g_assert_true (POLL_UNTIL (count_threads (NULL, NULL) <= baseline + GLIB_IDLE_THREADS, 30));
    }
}

typedef struct
{
  Gate gate;
  int  finished;
} Finisher;

static void
work_hold_last_ref (DvtTask      *task,
                    GCancellable *cancellable,
                    gpointer      user_data,
                    GError      **error)
{
  Finisher *f = user_data;

  gate_wait (&f->gate);
  dvt_task_return_int (task, 1);
  g_atomic_int_inc (&f->finished);
}

static void
test_unref_from_worker (void)
{
  guint baseline;
  guint n_named;

  /* In this process, so that valgrind sees the runtime's whole life.
   * Idle threads left by earlier tests may only go away meanwhile. */
  baseline = count_threads (NULL, NULL);

  for (int round = 0; round < 3; round++)
    {
      DvtRuntime *rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 2,
                                     "name", "lc-worker", NULL);
      g_autoptr(GError) error = NULL;
      DvtTask *task;
      Finisher f = { 0 };

      gate_init (&f.gate);
      task = dvt_runtime_submit (rt, work_hold_last_ref, &f, NULL, NULL, NULL, &error);
      g_assert_no_error (error);

      /* Drop every reference but the runtime's own: the runtime is
       * finalized by its own worker once the task ends there. */
      dvt_runtime_shutdown (rt, FALSE, FALSE);
      g_object_unref (task);
      g_object_unref (rt);
      gate_open (&f.gate);

      g_assert_true (POLL_UNTIL (g_atomic_int_get (&f.finished) == 1, 20));
      g_assert_true (POLL_UNTIL ((count_threads ("lc-worker", &n_named), n_named == 0), 30));
      g_assert_true (POLL_UNTIL (count_threads (NULL, NULL) <= baseline + GLIB_IDLE_THREADS, 30));
      gate_clear (&f.gate);
    }
}

static gboolean
complete_on_loop_cb (gpointer user_data)
{
  dvt_task_return_int (user_data, 1);
  return G_SOURCE_REMOVE;
}

static void
async_complete_soon (DvtTask      *task,
                     GCancellable *cancellable,
                     gpointer      user_data,
                     GError      **error)
{
  GSource *source = g_timeout_source_new (20);

  /* The timeout holds the last reference to the task, and the task the
   * last one to the runtime: the runtime ends on its own loop thread. */
  g_source_set_callback (source, complete_on_loop_cb, g_object_ref (task), g_object_unref);
  g_source_attach (source, g_main_context_get_thread_default ());
  g_source_unref (source);
}

static void
test_unref_from_loop (void)
{
  guint baseline = count_threads (NULL, NULL);
  guint n_named;

  for (int round = 0; round < 3; round++)
    {
      DvtRuntime *rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 2,
                                     "name", "lc-loopfin", NULL);
      g_autoptr(GError) error = NULL;
      Counter c = { 0, 0 };
      DvtTask *task;

      /* Some workers exist too. */
      g_assert_true (dvt_runtime_to_thread_blocking (rt, work_count, &c, NULL, NULL, NULL, NULL,
                                                     &error));
      task = dvt_runtime_schedule (rt, async_complete_soon, NULL, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      add_weak_pointer_atomic (G_OBJECT (rt), (gpointer *) &rt);
      dvt_runtime_shutdown (rt, FALSE, FALSE);
      g_object_unref (task);
      g_object_unref (rt);

      g_assert_true (POLL_UNTIL (g_atomic_pointer_get (&rt) == NULL, 20));
      g_assert_true (POLL_UNTIL ((count_threads ("lc-loopfin", &n_named), n_named == 0), 20));
      g_assert_true (POLL_UNTIL (count_threads (NULL, NULL) <= baseline + GLIB_IDLE_THREADS, 30));
    }
}

/* ---- nested waits ------------------------------------------------------- */

typedef enum
{
  NEST_WAIT,
  NEST_TO_THREAD,
  NEST_GATHER,
} NestHow;

typedef struct
{
  DvtRuntime *rt;
  NestHow     how;
  int         depth;
  int         timeouts;
} Nest;

static void
work_nested (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error);

typedef struct
{
  Nest *nest;
  int   depth;
} NestCall;

static void
work_nested (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  NestCall *call = user_data;
  NestCall *inner;
  g_autoptr(GError) local_error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(DvtTask) child = NULL;
  g_autoptr(GArray) results = NULL;

  if (call->depth == 0)
    {
      g_usleep (500);
      dvt_task_return_int (task, 1);
      return;
    }

  inner = g_new0 (NestCall, 1);
  inner->nest = call->nest;
  inner->depth = call->depth - 1;

  switch (call->nest->how)
    {
    case NEST_WAIT:
      child = dvt_runtime_submit (call->nest->rt, work_nested, inner, g_free, NULL, NULL,
                                  &local_error);
      g_assert_no_error (local_error);
      /* A generous deadline: a starved pool would hit it. */
      if (!dvt_task_wait (child, 60.0 * slow, &local_error))
        {
          g_atomic_int_inc (&call->nest->timeouts);
          g_propagate_error (error, g_steal_pointer (&local_error));
          return;
        }
      dvt_task_return_int (task, dvt_task_propagate_int (child, NULL) + 1);
      break;

    case NEST_TO_THREAD:
      if (!dvt_runtime_to_thread_blocking (call->nest->rt, work_nested, inner, NULL, NULL, NULL,
                                           &value, error))
        {
          g_free (inner);
          return;
        }
      g_free (inner);
      dvt_task_return_int (task, g_value_get_int64 (&value) + 1);
      break;

    case NEST_GATHER:
      child = dvt_runtime_submit (call->nest->rt, work_nested, inner, g_free, NULL, NULL,
                                  &local_error);
      g_assert_no_error (local_error);
      results = dvt_runtime_gather_blocking (call->nest->rt, &child, 1, NULL, NULL, error);
      if (results == NULL)
        return;
      dvt_task_return_int (task, g_value_get_int64 (&g_array_index (results, GValue, 0)) + 1);
      break;
    }
}

static void
check_nested (guint   max_workers,
              guint   n_outer,
              int     depth,
              NestHow how)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (max_workers);
  Nest nest = { rt, how, depth, 0 };
  DvtTask **tasks = g_new0 (DvtTask *, n_outer);

  for (guint i = 0; i < n_outer; i++)
    {
      g_autoptr(GError) error = NULL;
      NestCall *call = g_new0 (NestCall, 1);

      call->nest = &nest;
      call->depth = depth;
      tasks[i] = dvt_runtime_submit (rt, work_nested, call, g_free, NULL, NULL, &error);
      g_assert_no_error (error);
    }

  for (guint i = 0; i < n_outer; i++)
    {
      g_autoptr(GError) error = NULL;

      gint64 v;

      g_assert_true (dvt_task_wait (tasks[i], 0, &error));
      v = dvt_task_propagate_int (tasks[i], &error);
      g_assert_no_error (error);
      g_assert_cmpint (v, ==, depth + 1);
      g_object_unref (tasks[i]);
    }
  g_assert_cmpint (nest.timeouts, ==, 0);
  g_free (tasks);
}

static void
nested_wait_body (void)
{
  check_nested (2, 2, 1, NEST_WAIT);
  check_nested (2, 4, 1, NEST_WAIT);    /* 2 × max-workers */
  check_nested (2, 8, 1, NEST_WAIT);
  check_nested (1, 4, 5, NEST_WAIT);    /* chains, one worker */
}

static void
nested_to_thread_body (void)
{
  check_nested (2, 4, 1, NEST_TO_THREAD);
  check_nested (2, 8, 2, NEST_TO_THREAD);
  check_nested (1, 3, 4, NEST_TO_THREAD);
}

static void
nested_gather_body (void)
{
  check_nested (2, 4, 1, NEST_GATHER);
  check_nested (2, 8, 2, NEST_GATHER);
}

static void
test_nested_wait (void)
{
  nested_wait_body ();
}

static void
test_nested_to_thread (void)
{
  nested_to_thread_body ();
}

static void
test_nested_gather (void)
{
  nested_gather_body ();
}

/* After nested waits (compensating workers come and go, and GLib hands
 * their threads to other pools), a runtime with 2 workers still runs 2
 * tasks at once: the pool's bookkeeping survives its threads. */
static void
test_nested_then_parallel (void)
{
  for (int round = 0; round < 10; round++)
    {
      g_autoptr(DvtTestRuntime) rt = NULL;
      g_autoptr(DvtTestRuntime) fresh = NULL;

      check_nested (2, 8, 1, NEST_WAIT);
      rt = dvt_runtime_new (2);
      fresh = dvt_runtime_new (2);

      for (int which = 0; which < 2; which++)
        {
          DvtRuntime *target = which == 0 ? rt : fresh;
          g_autoptr(GError) error = NULL;
          g_autoptr(DvtTask) blocker = NULL;
          g_autoptr(DvtTask) second = NULL;
          Counter c = { 0, 0 };
          Blocker b;

          /* Nested waits on this runtime first. */
          if (which == 0)
            {
              Nest nest = { target, NEST_WAIT, 1, 0 };

              for (int i = 0; i < 8; i++)
                {
                  NestCall call = { &nest, 1 };
                  g_autoptr(DvtTask) t = dvt_runtime_submit (target, work_nested,
                                                             g_memdup2 (&call, sizeof call),
                                                             g_free, NULL, NULL, &error);

                  g_assert_no_error (error);
                  g_assert_true (dvt_task_wait (t, 0, &error));
                }
            }

          blocker_init (&b);
          blocker = dvt_runtime_submit (target, work_blocker, &b, NULL, NULL, NULL, &error);
          g_assert_no_error (error);
          g_assert_true (POLL_UNTIL (g_atomic_int_get (&b.started) == 1, 20));
          second = dvt_runtime_submit (target, work_count, &c, NULL, NULL, NULL, &error);
          g_assert_no_error (error);
          /* Runs beside the blocker, not after it. */
          g_assert_true (dvt_task_wait (second, 20.0 * slow, &error));
          g_assert_no_error (error);
          g_assert_cmpint (c.calls, ==, 1);

          gate_open (&b.gate);
          g_assert_true (dvt_task_wait (blocker, 0, &error));
          gate_clear (&b.gate);
        }
    }
}

/* ---- counters ----------------------------------------------------------- */

static void
work_fail (DvtTask      *task,
           GCancellable *cancellable,
           gpointer      user_data,
           GError      **error)
{
  g_set_error_literal (error, TEST_ERROR, 1, "failed on purpose");
}

static void
async_forget (DvtTask      *task,
              GCancellable *cancellable,
              gpointer      user_data,
              GError      **error)
{
}

static void
test_stats (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtStats) empty = NULL;
  g_autoptr(DvtStats) stats = NULL;
  g_autoptr(DvtStats) copy = NULL;
  g_autoptr(DvtStats) later = NULL;
  g_autoptr(GCancellable) cancelled = g_cancellable_new ();
  g_autoptr(DvtTask) blocker = NULL;
  DvtTask *victims[2];
  GArray *results;
  Counter c = { 0, 0 };
  Blocker b;

  empty = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (empty->queued, ==, 0);
  g_assert_cmpuint (empty->started, ==, 0);
  g_assert_cmpuint (empty->done + empty->error + empty->cancelled, ==, 0);
  g_assert_cmpuint (empty->running, ==, 0);
  g_assert_cmpuint (empty->pending, ==, 0);

  /* 5 successes */
  for (int i = 0; i < 5; i++)
    g_assert_true (dvt_runtime_to_thread_blocking (rt, work_count, &c, NULL, NULL, NULL, NULL, &error));
  /* 3 failures */
  for (int i = 0; i < 3; i++)
    {
      g_autoptr(DvtTask) task = dvt_runtime_submit (rt, work_fail, NULL, NULL, NULL, NULL,
                                                    &error);

      g_assert_no_error (error);
      g_assert_true (dvt_task_wait (task, 0, &error));
      g_assert_true (dvt_task_had_error (task));
    }
  /* 1 success that blocks the only worker, 2 queued tasks cancelled */
  blocker_init (&b);
  blocker = dvt_runtime_submit (rt, work_blocker, &b, NULL, NULL, NULL, &error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&b.started) == 1, 20));
  for (int i = 0; i < 2; i++)
    {
      victims[i] = dvt_runtime_submit (rt, work_count, &c, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
    }
  {
    g_autoptr(DvtStats) busy = dvt_runtime_get_stats (rt);

    g_assert_cmpuint (busy->running, ==, 1);
    g_assert_cmpuint (busy->pending, ==, 3);
  }
  for (int i = 0; i < 2; i++)
    {
      dvt_task_cancel (victims[i]);
      g_object_unref (victims[i]);
    }
  gate_open (&b.gate);
  g_assert_true (dvt_task_wait (blocker, 0, &error));
  /* 1 run_blocking success, 1 run_blocking failure (not completed) */
  g_assert_true (dvt_runtime_run_blocking (rt, async_answer, NULL, NULL, NULL, NULL, NULL, &error));
  g_assert_false (dvt_runtime_run_blocking (rt, async_forget, NULL, NULL, NULL, NULL, NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_NOT_COMPLETED);
  g_clear_error (&error);
  /* 1 map (counts once) */
  results = dvt_runtime_map_blocking (rt, 20, work_count, &c, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_array_unref (results);
  /* 1 call cancelled before it could start */
  g_cancellable_cancel (cancelled);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_count, &c, NULL, NULL, cancelled, NULL,
                                                  &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  stats = dvt_runtime_get_stats (rt);
  g_test_message ("queued %" G_GUINT64_FORMAT " started %" G_GUINT64_FORMAT
                  " done %" G_GUINT64_FORMAT " error %" G_GUINT64_FORMAT
                  " cancelled %" G_GUINT64_FORMAT " running %" G_GUINT64_FORMAT
                  " pending %" G_GUINT64_FORMAT,
                  stats->queued, stats->started, stats->done, stats->error,
                  stats->cancelled, stats->running, stats->pending);
  g_assert_cmpuint (stats->queued, ==, 5 + 3 + 1 + 2 + 2 + 1 + 1);
  g_assert_cmpuint (stats->done, ==, 5 + 1 + 1 + 1);
  g_assert_cmpuint (stats->error, ==, 3 + 1);
  g_assert_cmpuint (stats->cancelled, ==, 2 + 1);
  g_assert_cmpuint (stats->queued, ==, stats->done + stats->error + stats->cancelled);
  /* Cancelled-before-start tasks never started. */
  g_assert_cmpuint (stats->started, ==, 5 + 3 + 1 + 2 + 1);
  g_assert_cmpuint (stats->running, ==, 0);
  g_assert_cmpuint (stats->pending, ==, 0);

  /* A snapshot is a copy: it does not move, and copies are equal. */
  copy = dvt_stats_copy (stats);
  g_assert_true (copy != stats);
  g_assert_cmpmem (copy, sizeof *copy, stats, sizeof *stats);
  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_count, &c, NULL, NULL, NULL, NULL, &error));
  later = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (later->queued, ==, stats->queued + 1);
  g_assert_cmpuint (later->done, ==, stats->done + 1);
  g_assert_cmpmem (copy, sizeof *copy, stats, sizeof *stats);
  g_assert_true (G_TYPE_IS_BOXED (DVT_TYPE_STATS));

  gate_clear (&b.gate);
}

/* A runtime with an event-context whose caller dropped its own reference
 * to the context: the runtime's mailbox on it holds the last one. When
 * the runtime is finalized by its own worker, that worker lets go of the
 * core last and frees it, mailbox and context included. GLib once
 * unlocked the freed context there, every round (valgrind and ASan report
 * it; this test runs under both in CI). */
static void
note_finalized (gpointer  data,
                GObject  *where_the_object_was)
{
  g_atomic_int_set ((int *) data, 1);
}

static void
test_event_context_last_ref (void)
{
  guint rounds = is_valgrind () ? 3 : 20;

  for (guint round = 0; round < rounds; round++)
    {
      GMainContext *context = g_main_context_new ();
      DvtRuntime *rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 2,
                                     "event-context", context, NULL);
      g_autoptr(GError) error = NULL;
      DvtTask *task;
      Finisher f = { 0 };

      int finalized = 0;

      /* Not a weak pointer: it is cleared on the worker, without an
       * atomic store. */
      g_object_weak_ref (G_OBJECT (rt), note_finalized, &finalized);
      g_main_context_unref (context);
      gate_init (&f.gate);
      task = dvt_runtime_submit (rt, work_hold_last_ref, &f, NULL, NULL, NULL, &error);
      g_assert_no_error (error);

      /* The task holds the runtime: it is finalized on the worker. */
      dvt_runtime_shutdown (rt, FALSE, FALSE);
      g_object_unref (task);
      g_object_unref (rt);
      gate_open (&f.gate);

      g_assert_true (POLL_UNTIL (g_atomic_int_get (&f.finished) == 1, 20));
      g_assert_true (POLL_UNTIL (g_atomic_int_get (&finalized) == 1, 20));
      gate_clear (&f.gate);
    }
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/lifecycle/shutdown/idempotent", test_shutdown_idempotent);
  g_test_add_func ("/lifecycle/shutdown/concurrent", test_shutdown_concurrent);
  g_test_add_func ("/lifecycle/shutdown/closed", test_shutdown_closed);
  g_test_add_func ("/lifecycle/shutdown/drain", test_shutdown_drain);
  g_test_add_func ("/lifecycle/shutdown/no-wait", test_shutdown_no_wait);
  g_test_add_func ("/lifecycle/shutdown/cancel-releases-waiters",
                   test_shutdown_cancel_releases_waiters);
  g_test_add_func ("/lifecycle/shutdown/from-own-threads", test_shutdown_from_own_threads);
  g_test_add_func ("/lifecycle/default-runtime", test_default_runtime);
  g_test_add_func ("/lifecycle/thread-names", test_thread_names);
  g_test_add_func ("/lifecycle/unref-stops-threads", test_unref_stops_threads);
  g_test_add_func ("/lifecycle/unref-from-worker", test_unref_from_worker);
  g_test_add_func ("/lifecycle/unref-from-loop", test_unref_from_loop);
  g_test_add_func ("/lifecycle/event-context-last-ref", test_event_context_last_ref);
  g_test_add_func ("/nested/wait", test_nested_wait);
  g_test_add_func ("/nested/to-thread-blocking", test_nested_to_thread);
  g_test_add_func ("/nested/gather", test_nested_gather);
  g_test_add_func ("/nested/then-parallel", test_nested_then_parallel);
  g_test_add_func ("/stats/mixed", test_stats);

  return g_test_run ();
}
