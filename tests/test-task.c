/* test-task.c: tasks as futures (submit, schedule, wait, cancel, read)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"
#include <string.h>

/* ---- helpers ----------------------------------------------------------- */

/* A work function that blocks until its gate opens, ignoring
 * cancellation, and reports what it saw. */
typedef struct
{
  Gate     gate;
  int      started;
  int      finished;
  int      saw_cancelled;
  int      destroyed;
  gint64   result;
} Blocker;

static void
blocker_init (Blocker *b,
              gint64   result)
{
  memset (b, 0, sizeof *b);
  gate_init (&b->gate);
  b->result = result;
}

static void
blocker_destroyed (gpointer data)
{
  Blocker *b = data;

  g_atomic_int_inc (&b->destroyed);
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
  if (cancellable != NULL && g_cancellable_is_cancelled (cancellable))
    g_atomic_int_inc (&b->saw_cancelled);
  /* A pointer result that nobody will read once the task was cancelled:
   * it must be freed anyway. */
  if (b->result < 0)
    dvt_task_return_pointer (task, g_strdup ("late result"), g_free);
  else
    dvt_task_return_int (task, b->result);
  g_atomic_int_inc (&b->finished);
}

typedef struct
{
  int calls;
  int destroyed;
} Counter;

static void
work_count (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  Counter *counter = user_data;

  dvt_task_return_int (task, g_atomic_int_add (&counter->calls, 1) + 1);
}

static void
count_destroy (gpointer data)
{
  Counter *counter = data;

  g_atomic_int_inc (&counter->destroyed);
}

/* ---- futures ----------------------------------------------------------- */

static void
work_int (DvtTask      *task,
          GCancellable *cancellable,
          gpointer      user_data,
          GError      **error)
{
  dvt_task_return_int (task, GPOINTER_TO_INT (user_data));
}

static void
test_submit_value (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;

  task = dvt_runtime_submit (rt, work_int, GINT_TO_POINTER (1234), NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (task);
  g_assert_true (dvt_task_get_runtime (task) == rt);

  g_assert_true (dvt_task_wait (task, 0, &error));
  g_assert_no_error (error);
  g_assert_true (dvt_task_get_completed (task));
  g_assert_false (dvt_task_had_error (task));
  g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, 1234);
  g_assert_no_error (error);
  /* Reading again gives the same copy. */
  g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, 1234);
  /* Waiting again on an ended task returns at once. */
  g_assert_true (dvt_task_wait (task, 0.001, &error));
  g_assert_no_error (error);
}

static gboolean
schedule_later_cb (gpointer user_data)
{
  DvtTask *task = user_data;

  dvt_task_return_int (task, 77);
  return G_SOURCE_REMOVE;
}

static void
async_later (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  GSource *source = g_timeout_source_new (10);

  g_source_set_callback (source, schedule_later_cb, g_object_ref (task), g_object_unref);
  g_source_attach (source, g_main_context_get_thread_default ());
  g_source_unref (source);
}

static void
test_schedule_value (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;
  Counter counter = { 0, 0 };

  task = dvt_runtime_schedule (rt, async_later, &counter, count_destroy, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (task);
  g_assert_true (dvt_task_wait (task, 0, &error));
  g_assert_no_error (error);
  g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, 77);
  g_assert_no_error (error);

  g_clear_object (&task);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&counter.destroyed) == 1, 20));
}

static void
test_wait_timeout (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;
  Blocker b;

  blocker_init (&b, 5);
  task = dvt_runtime_submit (rt, work_blocker, &b, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  g_assert_false (dvt_task_wait (task, 0.05, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_assert_false (dvt_task_get_completed (task));

  /* A timed-out wait does not end the task. */
  gate_open (&b.gate);
  g_assert_true (dvt_task_wait (task, 30.0 * slow, &error));
  g_assert_no_error (error);
  g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, 5);
  g_assert_no_error (error);
  g_assert_cmpint (b.saw_cancelled, ==, 0);

  gate_clear (&b.gate);
}

typedef struct
{
  DvtTask *task;
  int      ok;
  gint64   value;
} Waiter;

static gpointer
waiter_thread (gpointer data)
{
  Waiter *w = data;
  g_autoptr(GError) error = NULL;

  if (dvt_task_wait (w->task, 0, &error))
    {
      w->value = dvt_task_propagate_int (w->task, &error);
      w->ok = error == NULL;
    }

  return NULL;
}

static void
test_wait_many_threads (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;
  Waiter waiters[6];
  GThread *threads[6];
  Blocker b;

  blocker_init (&b, 31);
  task = dvt_runtime_submit (rt, work_blocker, &b, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  for (guint i = 0; i < G_N_ELEMENTS (waiters); i++)
    {
      waiters[i] = (Waiter) { task, FALSE, 0 };
      threads[i] = g_thread_new ("waiter", waiter_thread, &waiters[i]);
    }
  /* Let them park. */
  g_usleep (20000);
  for (guint i = 0; i < G_N_ELEMENTS (waiters); i++)
    g_assert_false (g_atomic_int_get (&waiters[i].ok));

  gate_open (&b.gate);
  for (guint i = 0; i < G_N_ELEMENTS (waiters); i++)
    {
      g_thread_join (threads[i]);
      g_assert_true (waiters[i].ok);
      g_assert_cmpint (waiters[i].value, ==, 31);
    }

  gate_clear (&b.gate);
}

/* ---- reading results --------------------------------------------------- */

typedef enum
{
  KIND_INT,
  KIND_BOOLEAN,
  KIND_STRING_VALUE,
  KIND_OBJECT_VALUE,
  KIND_POINTER,
  KIND_ERROR,
  KIND_NOTHING_VALUE,
} ResultKind;

static void
work_kind (DvtTask      *task,
           GCancellable *cancellable,
           gpointer      user_data,
           GError      **error)
{
  g_auto(GValue) v = G_VALUE_INIT;

  switch ((ResultKind) GPOINTER_TO_INT (user_data))
    {
    case KIND_INT:
      dvt_task_return_int (task, G_GINT64_CONSTANT (-9000000000));
      break;
    case KIND_BOOLEAN:
      dvt_task_return_boolean (task, TRUE);
      break;
    case KIND_STRING_VALUE:
      g_value_init (&v, G_TYPE_STRING);
      g_value_set_string (&v, "héllo");
      dvt_task_return_value (task, &v);
      break;
    case KIND_OBJECT_VALUE:
      {
        g_autoptr(GCancellable) object = g_cancellable_new ();

        g_value_init (&v, G_TYPE_CANCELLABLE);
        g_value_set_object (&v, object);
        dvt_task_return_value (task, &v);
      }
      break;
    case KIND_POINTER:
      dvt_task_return_pointer (task, g_strdup ("pointer"), g_free);
      break;
    case KIND_ERROR:
      g_set_error (error, TEST_ERROR, 3, "kind error %d", 3);
      break;
    case KIND_NOTHING_VALUE:
      dvt_task_return_value (task, NULL);
      break;
    }
}

static DvtTask *
run_kind (DvtRuntime *rt,
          ResultKind  kind)
{
  g_autoptr(GError) error = NULL;
  DvtTask *task;

  task = dvt_runtime_submit (rt, work_kind, GINT_TO_POINTER (kind), NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (dvt_task_wait (task, 0, &error));
  g_assert_no_error (error);

  return task;
}

static void
test_propagate (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;

  {
    g_autoptr(DvtTask) task = run_kind (rt, KIND_INT);
    g_auto(GValue) v = G_VALUE_INIT;

    g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, G_GINT64_CONSTANT (-9000000000));
    g_assert_no_error (error);
    g_assert_true (dvt_task_propagate_value (task, &v, &error));
    g_assert_no_error (error);
    g_assert_true (G_VALUE_HOLDS_INT64 (&v));
    g_assert_cmpint (g_value_get_int64 (&v), ==, G_GINT64_CONSTANT (-9000000000));
  }
  {
    g_autoptr(DvtTask) task = run_kind (rt, KIND_BOOLEAN);

    g_assert_true (dvt_task_propagate_boolean (task, &error));
    g_assert_no_error (error);
  }
  {
    g_autoptr(DvtTask) task = run_kind (rt, KIND_STRING_VALUE);
    g_auto(GValue) v1 = G_VALUE_INIT;
    g_auto(GValue) v2 = G_VALUE_INIT;

    /* Each reader gets its own copy. */
    g_assert_true (dvt_task_propagate_value (task, &v1, &error));
    g_assert_true (dvt_task_propagate_value (task, &v2, &error));
    g_assert_no_error (error);
    g_assert_cmpstr (g_value_get_string (&v1), ==, "héllo");
    g_assert_cmpstr (g_value_get_string (&v2), ==, "héllo");
    g_assert_true (g_value_get_string (&v1) != g_value_get_string (&v2));
  }
  {
    g_autoptr(DvtTask) task = run_kind (rt, KIND_OBJECT_VALUE);
    g_auto(GValue) v = G_VALUE_INIT;

    g_assert_true (dvt_task_propagate_value (task, &v, &error));
    g_assert_no_error (error);
    g_assert_true (G_IS_CANCELLABLE (g_value_get_object (&v)));
  }
  {
    g_autoptr(DvtTask) task = run_kind (rt, KIND_POINTER);
    g_autofree char *p = dvt_task_propagate_pointer (task, &error);

    g_assert_no_error (error);
    g_assert_cmpstr (p, ==, "pointer");
  }
  {
    /* A pointer read as a value moves too. */
    g_autoptr(DvtTask) task = run_kind (rt, KIND_POINTER);
    g_auto(GValue) v = G_VALUE_INIT;

    g_assert_true (dvt_task_propagate_value (task, &v, &error));
    g_assert_no_error (error);
    g_assert_true (G_VALUE_HOLDS_POINTER (&v));
    g_assert_cmpstr (g_value_get_pointer (&v), ==, "pointer");
    g_free (g_value_get_pointer (&v));
  }
  {
    /* A pointer nobody reads is freed with the task (valgrind checks). */
    g_autoptr(DvtTask) task = run_kind (rt, KIND_POINTER);

    g_assert_false (dvt_task_had_error (task));
  }
  {
    g_autoptr(DvtTask) task = run_kind (rt, KIND_NOTHING_VALUE);
    g_auto(GValue) v = G_VALUE_INIT;

    g_assert_true (dvt_task_propagate_value (task, &v, &error));
    g_assert_no_error (error);
    assert_null_value (&v);
  }
  {
    g_autoptr(DvtTask) task = run_kind (rt, KIND_ERROR);
    g_auto(GValue) v = G_VALUE_INIT;

    g_assert_true (dvt_task_had_error (task));
    g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, -1);
    g_assert_error (error, TEST_ERROR, 3);
    g_assert_cmpstr (error->message, ==, "kind error 3");
    g_clear_error (&error);
    g_assert_false (dvt_task_propagate_boolean (task, &error));
    g_assert_error (error, TEST_ERROR, 3);
    g_clear_error (&error);
    g_assert_null (dvt_task_propagate_pointer (task, &error));
    g_assert_error (error, TEST_ERROR, 3);
    g_clear_error (&error);
    g_assert_false (dvt_task_propagate_value (task, &v, &error));
    g_assert_error (error, TEST_ERROR, 3);
    assert_null_value (&v);
    g_clear_error (&error);
  }
}

/* ---- cancellation ------------------------------------------------------ */

static void
test_cancel_queued (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) blocker = NULL;
  g_autoptr(DvtTask) victim = NULL;
  g_autoptr(DvtTask) after = NULL;
  Counter counter = { 0, 0 };
  Blocker b;

  blocker_init (&b, 1);
  blocker = dvt_runtime_submit (rt, work_blocker, &b, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  /* The only worker is busy from now on. */
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&b.started) == 1, 20));

  victim = dvt_runtime_submit (rt, work_count, &counter, count_destroy, NULL, NULL, &error);
  g_assert_no_error (error);
  after = dvt_runtime_submit (rt, work_count, &counter, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  dvt_task_cancel (victim);
  /* The cancelled task has ended, without waiting for the worker. */
  g_assert_true (dvt_task_get_completed (victim));
  g_assert_true (dvt_task_wait (victim, 0, &error));
  g_assert_no_error (error);
  g_assert_true (dvt_task_had_error (victim));
  g_assert_cmpint (dvt_task_propagate_int (victim, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_true (g_cancellable_is_cancelled (dvt_task_get_cancellable (victim)));

  gate_open (&b.gate);
  g_assert_true (dvt_task_wait (after, 0, &error));
  g_assert_no_error (error);
  /* Only the task after it ran. */
  g_assert_cmpint (dvt_task_propagate_int (after, &error), ==, 1);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (counter.calls, ==, 1);

  /* Cancelling again, or cancelling a task that ended, does nothing. */
  dvt_task_cancel (victim);
  dvt_task_cancel (after);
  g_assert_cmpint (dvt_task_propagate_int (after, &error), ==, 1);
  g_assert_no_error (error);

  g_clear_object (&victim);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&counter.destroyed) == 1, 20));

  gate_clear (&b.gate);
}

static void
test_cancel_running (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;
  Waiter waiter;
  GThread *thread;
  Blocker b;

  blocker_init (&b, -1);
  task = dvt_runtime_submit (rt, work_blocker, &b, blocker_destroyed, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&b.started) == 1, 20));

  waiter = (Waiter) { task, FALSE, 0 };
  thread = g_thread_new ("waiter", waiter_thread, &waiter);
  g_usleep (10000);

  dvt_task_cancel (task);
  /* The waiter is released while the work is still blocked on its gate. */
  g_thread_join (thread);
  g_assert_false (waiter.ok);
  g_assert_true (dvt_task_get_completed (task));
  g_assert_cmpint (g_atomic_int_get (&b.finished), ==, 0);
  g_assert_true (g_cancellable_is_cancelled (dvt_task_get_cancellable (task)));
  g_assert_null (dvt_task_propagate_pointer (task, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  /* The work runs on, sees its cancellable cancelled, and its late result
   * is dropped without a leak and without a warning. */
  gate_open (&b.gate);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&b.finished) == 1, 20));
  g_assert_cmpint (g_atomic_int_get (&b.saw_cancelled), ==, 1);
  g_assert_null (dvt_task_propagate_pointer (task, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  g_clear_object (&task);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&b.destroyed) == 1, 20));
  gate_clear (&b.gate);
}

/* Honours its cancellable: returns as soon as it is cancelled. */
static void
work_until_cancelled (DvtTask      *task,
                      GCancellable *cancellable,
                      gpointer      user_data,
                      GError      **error)
{
  int *started = user_data;

  g_atomic_int_inc (started);
  while (!g_cancellable_set_error_if_cancelled (cancellable, error))
    g_usleep (500);
}

static void
test_cancel_caller_cancellable (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) t1 = NULL;
  g_autoptr(DvtTask) t2 = NULL;
  int started = 0;

  /* Cancelling a task does not cancel the caller's cancellable. */
  t1 = dvt_runtime_submit (rt, work_until_cancelled, &started, NULL, NULL, cancellable, &error);
  g_assert_no_error (error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&started) == 1, 20));
  g_assert_true (dvt_task_get_cancellable (t1) != cancellable);
  dvt_task_cancel (t1);
  g_assert_true (dvt_task_wait (t1, 0, &error));
  g_assert_no_error (error);
  g_assert_false (g_cancellable_is_cancelled (cancellable));
  g_assert_false (dvt_task_propagate_boolean (t1, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  /* Cancelling the caller's cancellable cancels the task. */
  t2 = dvt_runtime_submit (rt, work_until_cancelled, &started, NULL, NULL, cancellable, &error);
  g_assert_no_error (error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&started) == 2, 20));
  g_cancellable_cancel (cancellable);
  g_assert_true (dvt_task_wait (t2, 0, &error));
  g_assert_no_error (error);
  g_assert_false (dvt_task_propagate_boolean (t2, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_true (g_cancellable_is_cancelled (dvt_task_get_cancellable (t2)));

  dvt_runtime_shutdown (rt, TRUE, FALSE);
}

/* Records the cancellable it was given; keeps a reference to it, a
 * handler on it, or data on it, as asked. */
typedef struct
{
  GCancellable *seen;
  int           keep;     /* 0: nothing, 1: a reference, 2: a handler, 3: data */
  gulong        handler;
  int           destroyed;
} Seen;

static void
on_seen_cancelled (GCancellable *cancellable,
                   gpointer      data)
{
}

static void
seen_handler_destroyed (gpointer  data,
                        GClosure *closure)
{
  Seen *seen = data;

  g_atomic_int_inc (&seen->destroyed);
}

static void
work_see_cancellable (DvtTask      *task,
                      GCancellable *cancellable,
                      gpointer      user_data,
                      GError      **error)
{
  Seen *seen = user_data;

  g_assert_nonnull (cancellable);
  seen->seen = cancellable;
  if (seen->keep == 1)
    g_object_ref (cancellable);
  else if (seen->keep == 2)
    seen->handler = g_signal_connect_data (cancellable, "cancelled",
                                           G_CALLBACK (on_seen_cancelled), seen,
                                           seen_handler_destroyed, 0);
  else if (seen->keep == 3)
    g_object_set_data (G_OBJECT (cancellable), "kept", seen);
  dvt_task_return_int (task, 1);
}

/* A future's work always gets a cancellable. One that nothing else can
 * hold when the work returns is used again for later work (making one per
 * task costs more than the rest of the hand-off); one that is held, has a
 * handler or data stays the task's own, so every cancellable that user
 * code can still reach belongs to one task only. */
static void
test_cancellable_reuse (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(GError) error = NULL;

  for (int keep = 0; keep <= 3; keep++)
    {
      Seen seen = { NULL, keep, 0, 0 };
      g_autoptr(DvtTask) task = NULL;
      g_autoptr(DvtTask) blocked = NULL;
      int started = 0;

      task = dvt_runtime_submit (rt, work_see_cancellable, &seen, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (dvt_task_wait (task, 0, &error));
      g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, 1);
      g_assert_no_error (error);

      if (keep != 0)
        g_assert_true (dvt_task_get_cancellable (task) == seen.seen);

      /* Whatever the next task got, cancelling it leaves this one's
       * cancellable alone, and the other way round. */
      blocked = dvt_runtime_submit (rt, work_until_cancelled, &started, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (POLL_UNTIL (g_atomic_int_get (&started) == 1, 20));
      g_assert_true (dvt_task_get_cancellable (blocked) != dvt_task_get_cancellable (task));
      g_cancellable_cancel (dvt_task_get_cancellable (task));
      g_assert_false (g_cancellable_is_cancelled (dvt_task_get_cancellable (blocked)));
      dvt_task_cancel (blocked);
      g_assert_true (dvt_task_wait (blocked, 0, &error));
      g_assert_no_error (error);
      if (keep != 0)
        g_assert_true (g_cancellable_is_cancelled (seen.seen));

      if (keep == 1)
        g_object_unref (seen.seen);
      else if (keep == 2)
        {
          /* The handler's closure goes with the task's cancellable. */
          g_clear_object (&task);
          g_assert_cmpint (seen.destroyed, ==, 1);
        }
    }

  dvt_runtime_shutdown (rt, TRUE, FALSE);
}

static void
async_count (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  int *calls = user_data;

  g_atomic_int_inc (calls);
  dvt_task_return_boolean (task, TRUE);
}

static void
test_schedule_cancel_queued (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) victim = NULL;
  g_autoptr(DvtTask) other = NULL;
  GMainContext *context = g_main_context_new ();
  int calls = 0;

  /* Async work bound to this thread's context cannot start before the
   * context is iterated: cancel it first. */
  g_main_context_push_thread_default (context);
  dvt_options_set_use_caller_context (options, TRUE);
  victim = dvt_runtime_schedule (rt, async_count, &calls, NULL, options, NULL, &error);
  g_assert_no_error (error);
  other = dvt_runtime_schedule (rt, async_count, &calls, NULL, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (calls, ==, 0);

  dvt_task_cancel (victim);
  g_assert_true (dvt_task_get_completed (victim));

  /* Waiting on the other iterates this context and runs it. */
  g_assert_true (dvt_task_wait (other, 0, &error));
  g_assert_no_error (error);
  g_assert_true (dvt_task_propagate_boolean (other, &error));
  g_assert_no_error (error);

  while (g_main_context_iteration (context, FALSE))
    ;
  g_assert_cmpint (calls, ==, 1);
  g_assert_false (dvt_task_propagate_boolean (victim, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  g_main_context_pop_thread_default (context);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_main_context_unref (context);
}

/* An async work function that keeps its task, to be completed by the test
 * (complete_held_cb) on the caller's context. */
typedef struct
{
  DvtTask *task;     /* kept by the work function once it has run */
  GThread *ran_on;
} Held;

static void
async_keep (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  Held *held = user_data;

  held->ran_on = g_thread_self ();
  held->task = g_object_ref (task);
}

/* On the caller's context: completes the kept task once the work function
 * has run (the start of the work and this source may be dispatched in
 * either order). */
static gboolean
complete_held_cb (gpointer user_data)
{
  Held *held = user_data;

  if (held->task == NULL)
    return G_SOURCE_CONTINUE;
  dvt_task_return_int (held->task, 77);
  g_clear_object (&held->task);
  return G_SOURCE_REMOVE;
}

static void
test_wait_timeout_caller_context (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;
  GMainContext *context = g_main_context_new ();
  Held held = { NULL, NULL };
  GSource *source;

  /* Waiting iterates this thread's context, where the work runs; a
   * deadline still applies. Nothing completes the task until the first
   * wait has timed out, however late this thread runs: the test then
   * attaches the source that completes it, which only iterating this
   * context dispatches. */
  g_main_context_push_thread_default (context);
  dvt_options_set_use_caller_context (options, TRUE);
  task = dvt_runtime_schedule (rt, async_keep, &held, NULL, options, NULL, &error);
  g_assert_no_error (error);

  g_assert_false (dvt_task_wait (task, 0.01, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_assert_false (dvt_task_get_completed (task));

  source = g_idle_source_new ();
  g_source_set_callback (source, complete_held_cb, &held, NULL);
  g_source_attach (source, context);
  g_source_unref (source);

  g_assert_true (dvt_task_wait (task, 30.0 * slow, &error));
  g_assert_no_error (error);
  g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, 77);
  g_assert_no_error (error);
  g_assert_true (held.ran_on == g_thread_self ());
  g_assert_null (held.task);

  g_main_context_pop_thread_default (context);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_main_context_unref (context);
}

/* ---- identity ---------------------------------------------------------- */

typedef struct
{
  DvtRuntime *rt;
  guint       n;
  guint64    *ids;
} IdThread;

static gpointer
id_thread (gpointer data)
{
  IdThread *it = data;
  Counter counter = { 0, 0 };

  for (guint i = 0; i < it->n; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(DvtTask) task = dvt_runtime_submit (it->rt, work_count, &counter, NULL,
                                                    NULL, NULL, &error);

      g_assert_no_error (error);
      it->ids[i] = dvt_task_get_id (task);
      g_assert_true (dvt_task_wait (task, 0, &error));
    }

  return NULL;
}

static void
test_ids (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GHashTable) seen = g_hash_table_new (g_int64_hash, g_int64_equal);
  guint64 previous = 0;
  Counter counter = { 0, 0 };
  IdThread its[4];
  GThread *threads[4];
  guint n = is_valgrind () ? 50 : 500;

  /* Sequential submissions: ids start at 1 or more and increase. */
  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(DvtTask) task = dvt_runtime_submit (rt, work_count, &counter, NULL,
                                                    NULL, NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (dvt_task_get_id (task), >=, 1);
      g_assert_cmpuint (dvt_task_get_id (task), >, previous);
      previous = dvt_task_get_id (task);
      g_assert_true (dvt_task_wait (task, 0, &error));
    }

  /* Concurrent submissions: ids stay unique. */
  for (guint i = 0; i < G_N_ELEMENTS (its); i++)
    {
      its[i] = (IdThread) { rt, n, g_new0 (guint64, n) };
      threads[i] = g_thread_new ("ids", id_thread, &its[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (its); i++)
    {
      g_thread_join (threads[i]);
      for (guint j = 0; j < n; j++)
        {
          g_assert_cmpuint (its[i].ids[j], >, previous);
          if (j > 0)
            g_assert_cmpuint (its[i].ids[j], >, its[i].ids[j - 1]);
          g_assert_false (g_hash_table_contains (seen, &its[i].ids[j]));
          g_hash_table_add (seen, &its[i].ids[j]);
        }
    }
  g_assert_cmpuint (g_hash_table_size (seen), ==, n * G_N_ELEMENTS (its));

  for (guint i = 0; i < G_N_ELEMENTS (its); i++)
    g_free (its[i].ids);
}

typedef struct
{
  char  *name;
  guint  attempt;
  guint  index;
} SeenInside;

static void
work_look_inside (DvtTask      *task,
                  GCancellable *cancellable,
                  gpointer      user_data,
                  GError      **error)
{
  SeenInside *seen = user_data;

  seen->name = g_strdup (dvt_task_get_name (task));
  seen->attempt = dvt_task_get_attempt (task);
  seen->index = dvt_task_get_index (task);
  dvt_task_return_boolean (task, TRUE);
}

static void
test_name_and_attempt (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  SeenInside seen = { NULL, 0, 99 };

  {
    g_autoptr(DvtTask) task = dvt_runtime_submit (rt, work_look_inside, &seen, NULL,
                                                  NULL, NULL, &error);

    g_assert_no_error (error);
    g_assert_null (dvt_task_get_name (task));
    g_assert_true (dvt_task_wait (task, 0, &error));
    g_assert_null (seen.name);
    g_assert_cmpuint (seen.attempt, ==, 1);
    g_assert_cmpuint (seen.index, ==, 0);
    g_assert_cmpuint (dvt_task_get_attempt (task), ==, 1);
  }

  dvt_options_set_name (options, "fetch-thumbnails");
  {
    g_autoptr(DvtTask) task = dvt_runtime_submit (rt, work_look_inside, &seen, NULL,
                                                  options, NULL, &error);

    g_assert_no_error (error);
    g_assert_cmpstr (dvt_task_get_name (task), ==, "fetch-thumbnails");
    g_assert_true (dvt_task_wait (task, 0, &error));
    g_assert_cmpstr (seen.name, ==, "fetch-thumbnails");
    g_clear_pointer (&seen.name, g_free);
    g_assert_cmpuint (dvt_task_get_attempt (task), ==, 1);

    /* The options were read at submission. */
    dvt_options_set_name (options, "changed");
    g_assert_cmpstr (dvt_task_get_name (task), ==, "fetch-thumbnails");

    dvt_task_set_name (task, "renamed");
    g_assert_cmpstr (dvt_task_get_name (task), ==, "renamed");
    dvt_task_set_name (task, NULL);
    g_assert_null (dvt_task_get_name (task));
  }

  /* Scheduled (async) tasks get the name too. */
  {
    g_autoptr(DvtTask) task = dvt_runtime_schedule (rt, work_look_inside, &seen, NULL,
                                                    options, NULL, &error);

    g_assert_no_error (error);
    g_assert_true (dvt_task_wait (task, 0, &error));
    g_assert_cmpstr (seen.name, ==, "changed");
    g_clear_pointer (&seen.name, g_free);
    g_assert_cmpuint (seen.attempt, ==, 1);
  }
}

static void
test_async_result (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;
  g_autoptr(GObject) source = NULL;

  task = dvt_runtime_submit (rt, work_int, GINT_TO_POINTER (3), NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (G_IS_ASYNC_RESULT (task));
  source = g_async_result_get_source_object (G_ASYNC_RESULT (task));
  g_assert_true (source == G_OBJECT (rt));
  g_assert_null (g_async_result_get_user_data (G_ASYNC_RESULT (task)));
  g_assert_false (g_async_result_is_tagged (G_ASYNC_RESULT (task), dvt_runtime_to_thread_async));
  g_assert_true (dvt_task_wait (task, 0, &error));
}

/* ---- releasing tasks after their callbacks ----------------------------- */

/* Tasks whose callbacks a context delivers in one run are freed by a
 * worker: none is lost, none freed twice, a task the callback keeps stays
 * intact, and a shutdown from a callback still frees the rest. */
typedef struct
{
  GThread *caller;
  guint    n;
  guint    callbacks;
  gint64   sum;
  int      finalized;           /* atomic */
  int      finalized_elsewhere; /* atomic */
  DvtTask *kept;
  gboolean shutdown_in_callback;
} Release;

static void
release_finalized (gpointer  data,
                   GObject  *where_the_object_was)
{
  Release *r = data;

  if (g_thread_self () != r->caller)
    g_atomic_int_inc (&r->finalized_elsewhere);
  g_atomic_int_inc (&r->finalized);
}

static void
release_done (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  Release *r = data;
  g_auto(GValue) value = G_VALUE_INIT;
  GError *error = NULL;

  g_assert_true (g_thread_self () == r->caller);
  g_assert_true (dvt_runtime_to_thread_finish (DVT_RUNTIME (source), result, &value, &error));
  g_assert_no_error (error);
  r->sum += g_value_get_int64 (&value);
  g_object_weak_ref (G_OBJECT (result), release_finalized, r);
  if (++r->callbacks == 7)
    r->kept = g_object_ref (DVT_TASK (result));
  if (r->callbacks == 3 && r->shutdown_in_callback)
    dvt_runtime_shutdown (DVT_RUNTIME (source), FALSE, FALSE);
}

static guint64
count_done (DvtRuntime *rt)
{
  g_autoptr(DvtStats) stats = dvt_runtime_get_stats (rt);

  return stats->done;
}

static void
run_release (gboolean shutdown_in_callback)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GMainContext) context = g_main_context_new ();
  Release r = { g_thread_self (), 300, 0, 0, 0, 0, NULL, shutdown_in_callback };
  gint64 expected = 0;

  g_main_context_push_thread_default (context);
  for (guint i = 0; i < r.n; i++)
    {
      dvt_runtime_to_thread_async (rt, work_int, GINT_TO_POINTER (i), NULL, NULL, NULL,
                                   release_done, &r);
      expected += i;
    }

  /* Every completion waits in the mailbox: one iteration delivers all. */
  g_assert_true (POLL_UNTIL (count_done (rt) == r.n, 20));
  g_assert_true (ITERATE_UNTIL (context, r.callbacks == r.n, 20));
  g_assert_cmpint (r.sum, ==, expected);

  /* Freed eventually; the kept one is not. Where they are freed (a
   * worker, in a batch, or here when a worker has not let go of one yet)
   * is the library's business: it promises neither. */
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&r.finalized) == (int) r.n - 1, 20));
  g_test_message ("%d of %u freed on another thread",
                  g_atomic_int_get (&r.finalized_elsewhere), r.n - 1);
  g_assert_true (DVT_IS_TASK (r.kept));
  g_assert_true (dvt_task_get_completed (r.kept));
  g_assert_false (dvt_task_had_error (r.kept));

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_clear_object (&r.kept);
  g_assert_cmpint (g_atomic_int_get (&r.finalized), ==, r.n);
  g_main_context_pop_thread_default (context);
}

static void
test_release_after_callbacks (void)
{
  run_release (FALSE);
}

static void
test_release_shutdown_in_callback (void)
{
  run_release (TRUE);
}

/* ---- the spare task of blocking calls ---------------------------------- */

/* A blocking call's task is kept by the calling thread for its next call
 * when nothing else can see it; the next call must not be able to tell. */
typedef struct
{
  gboolean  keep;
  gboolean  set_data;
  gboolean  connect;
  DvtTask  *task;
  DvtTask  *kept;
  guint64   id;
  guint     attempt;
  const char *name;
  gpointer  data_seen;
  gulong    handler_seen;
  int       handler_destroyed;
} Sighting;

static void
never_called (DvtTask *task)
{
  g_assert_not_reached ();
}

static void
count_closure_destroyed (gpointer  data,
                         GClosure *closure)
{
  g_atomic_int_inc ((int *) data);
}

static void
work_seen (DvtTask      *task,
           GCancellable *cancellable,
           gpointer      user_data,
           GError      **error)
{
  Sighting *s = user_data;

  s->task = task;
  s->id = dvt_task_get_id (task);
  s->attempt = dvt_task_get_attempt (task);
  s->name = dvt_task_get_name (task);
  s->data_seen = g_object_get_data (G_OBJECT (task), "test-data");
  s->handler_seen = g_signal_handler_find (task, G_SIGNAL_MATCH_UNBLOCKED,
                                           0, 0, NULL, NULL, NULL);
  if (s->keep)
    s->kept = g_object_ref (task);
  if (s->set_data)
    g_object_set_data (G_OBJECT (task), "test-data", s);
  if (s->connect)
    g_signal_connect_data (task, "finished", G_CALLBACK (never_called),
                           &s->handler_destroyed, count_closure_destroyed, 0);
  dvt_task_return_int (task, 7);
}

static void
call_seen (DvtRuntime *rt,
           Sighting       *s,
           DvtOptions *options)
{
  g_auto(GValue) value = G_VALUE_INIT;
  GError *error = NULL;

  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_seen, s, NULL, options, NULL,
                                                 &value, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_value_get_int64 (&value), ==, 7);
}

static gpointer
calls_thread (gpointer data)
{
  for (guint i = 0; i < 10; i++)
    {
      Sighting s = { 0 };

      call_seen (data, &s, NULL);
    }

  return NULL;
}

static void
test_recycle_blocking_calls (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) named = dvt_options_new ();
  Sighting a = { 0 }, b = { 0 }, with_data = { .set_data = TRUE },
       after_data = { 0 }, with_handler = { .connect = TRUE },
       after_handler = { 0 }, keeper = { .keep = TRUE }, after_keep = { 0 },
       with_name = { 0 }, after_name = { 0 };
  int n_before;

  /* The second call reuses the first one's task, as a new task, if the
   * worker let go of it before the first call woke up. A caller woken from
   * a park may take the worker's CPU first: on a busy machine it often
   * does, under valgrind (whose threads take turns) always. */
  for (guint i = 0; i < 100; i++)
    {
      a = b = (Sighting) { 0 };
      call_seen (rt, &a, NULL);
      call_seen (rt, &b, NULL);
      if (b.task == a.task)
        break;
    }
  if (b.task != a.task)
    g_test_message ("no call reused its task: each woke before its worker let go");
  g_assert_cmpuint (b.id, >, a.id);
  g_assert_cmpuint (b.attempt, ==, 1);
  g_assert_null (b.name);

  /* Data, handlers and references keep a task from being reused. */
  call_seen (rt, &with_data, NULL);
  call_seen (rt, &after_data, NULL);
  g_assert_null (after_data.data_seen);

  call_seen (rt, &with_handler, NULL);
  /* Freed where its last reference goes: its "finished" event may still
   * hold it, waiting to be emitted, when the call returns. */
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&with_handler.handler_destroyed) == 1, 20));
  call_seen (rt, &after_handler, NULL);
  g_assert_cmpuint (after_handler.handler_seen, ==, 0);

  call_seen (rt, &keeper, NULL);
  call_seen (rt, &after_keep, NULL);
  g_assert_true (after_keep.task != keeper.kept);
  g_assert_cmpuint (dvt_task_get_id (keeper.kept), ==, keeper.id);
  g_assert_true (dvt_task_get_completed (keeper.kept));
  g_assert_cmpint (dvt_task_propagate_int (keeper.kept, NULL), ==, 7);
  g_clear_object (&keeper.kept);

  dvt_options_set_name (named, "named");
  call_seen (rt, &with_name, named);
  g_assert_cmpstr (with_name.name, ==, "named");
  call_seen (rt, &after_name, NULL);
  g_assert_null (after_name.name);

  /* A thread's spare goes when the thread ends; a task that a worker
   * still held when its call returned goes once the worker lets go (one of
   * the calls above may still be counted in n_before). */
  n_before = g_type_get_instance_count (DVT_TYPE_TASK);
  g_thread_join (g_thread_new ("calls", calls_thread, rt));
  g_assert_true (POLL_UNTIL (g_type_get_instance_count (DVT_TYPE_TASK) <= n_before, 20));
}

/* A work function that waits for its own task can never be released by
 * that wait: it fails at once with DVT_ERROR_WOULD_DEADLOCK, whatever the
 * timeout (it once waited out the whole timeout, or forever). Also for a
 * future given to a gather, and for a map item waiting for its item task. */
typedef struct
{
  int      kind;       /* 0: dvt_task_wait, 1: gather of the task, 2: wait, no limit */
  GError  *error;
  gint64   waited;
} SelfWait;

static void
wait_for_self (DvtTask      *task,
               GCancellable *cancellable,
               gpointer      user_data,
               GError      **error)
{
  SelfWait *sw = user_data;
  gint64 start = g_get_monotonic_time ();

  if (sw->kind == 1)
    {
      GArray *results = dvt_runtime_gather_blocking (dvt_task_get_runtime (task), &task, 1,
                                                     NULL, NULL, &sw->error);

      g_assert_null (results);
    }
  else
    g_assert_false (dvt_task_wait (task, sw->kind == 0 ? 30 : 0, &sw->error));
  sw->waited = g_get_monotonic_time () - start;
  dvt_task_return_int (task, 1);
}

static void
test_wait_self (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);

  for (int kind = 0; kind < 3; kind++)
    for (int how = 0; how < 3; how++)
      {
        g_autoptr(GError) error = NULL;
        SelfWait sw = { kind, NULL, 0 };

        if (kind == 1 && how == 2)
          continue;  /* a map item is no task to gather */

        if (how == 0)
          g_assert_true (dvt_runtime_to_thread_blocking (rt, wait_for_self, &sw, NULL, NULL,
                                                         NULL, NULL, &error));
        else if (how == 1)
          {
            g_autoptr(DvtTask) task = dvt_runtime_submit (rt, wait_for_self, &sw, NULL, NULL,
                                                          NULL, &error);

            g_assert_nonnull (task);
            g_assert_true (dvt_task_wait (task, 0, &error));
            g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, 1);
          }
        else
          {
            g_autoptr(GArray) results = dvt_runtime_map_blocking (rt, 1, wait_for_self, &sw,
                                                                  NULL, NULL, NULL, &error);

            g_assert_nonnull (results);
          }
        g_assert_no_error (error);
        g_assert_error (sw.error, DVT_ERROR, DVT_ERROR_WOULD_DEADLOCK);
        g_assert_cmpint (sw.waited, <, 5 * G_USEC_PER_SEC);
        g_clear_error (&sw.error);
      }
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/task/submit/value", test_submit_value);
  g_test_add_func ("/task/schedule/value", test_schedule_value);
  g_test_add_func ("/task/wait/timeout", test_wait_timeout);
  g_test_add_func ("/task/wait/many-threads", test_wait_many_threads);
  g_test_add_func ("/task/wait/self", test_wait_self);
  g_test_add_func ("/task/wait/timeout-caller-context", test_wait_timeout_caller_context);
  g_test_add_func ("/task/propagate", test_propagate);
  g_test_add_func ("/task/cancel/queued", test_cancel_queued);
  g_test_add_func ("/task/cancel/running", test_cancel_running);
  g_test_add_func ("/task/cancel/caller-cancellable", test_cancel_caller_cancellable);
  g_test_add_func ("/task/cancel/cancellable-reuse", test_cancellable_reuse);
  g_test_add_func ("/task/schedule/cancel-queued", test_schedule_cancel_queued);
  g_test_add_func ("/task/ids", test_ids);
  g_test_add_func ("/task/name-and-attempt", test_name_and_attempt);
  g_test_add_func ("/task/async-result", test_async_result);
  g_test_add_func ("/task/release/after-callbacks", test_release_after_callbacks);
  g_test_add_func ("/task/recycle/blocking-calls", test_recycle_blocking_calls);
  g_test_add_func ("/task/release/shutdown-in-callback", test_release_shutdown_in_callback);

  return g_test_run ();
}
