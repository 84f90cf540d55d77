/* test-task-group.c: DvtTaskGroup, from threads and from main loops
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"

/* ---- work functions ------------------------------------------------------------ */

/* Returns its data as an int. */
static void
return_index (DvtTask      *task,
              GCancellable *cancellable,
              gpointer      data,
              GError      **error)
{
  dvt_task_return_int (task, GPOINTER_TO_INT (data));
}

/* Fails with TEST_ERROR, its data as the code. */
static void
fail_with_code (DvtTask      *task,
                GCancellable *cancellable,
                gpointer      data,
                GError      **error)
{
  g_set_error (error, TEST_ERROR, GPOINTER_TO_INT (data), "failure %d", GPOINTER_TO_INT (data));
}

/* Blocks until its cancellable is cancelled. */
static void
block_until_cancelled (DvtTask      *task,
                       GCancellable *cancellable,
                       gpointer      data,
                       GError      **error)
{
  while (!g_cancellable_is_cancelled (cancellable))
    g_usleep (1000);
  g_cancellable_set_error_if_cancelled (cancellable, error);
}

/* Waits for its gate, then returns TRUE. */
static void
wait_gate (DvtTask      *task,
           GCancellable *cancellable,
           gpointer      data,
           GError      **error)
{
  gate_wait (data);
  dvt_task_return_boolean (task, TRUE);
}

static DvtTaskGroup *
new_group (DvtRuntime *rt)
{
  DvtTaskGroup *group = dvt_task_group_new (rt);

  g_assert_nonnull (group);
  return group;
}

static void
submit (DvtTaskGroup  *group,
        DvtThreadFunc  func,
        gpointer       data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = dvt_task_group_submit (group, func, data, NULL, NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (task);
}

/* ---- all ------------------------------------------------------------------------ */

static void
test_wait_all (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(GPtrArray) tasks = NULL;
  g_autoptr(GError) error = NULL;

  for (int i = 0; i < 50; i++)
    submit (group, return_index, GINT_TO_POINTER (i));
  g_assert_cmpuint (dvt_task_group_get_n_tasks (group), ==, 50);

  g_assert_true (dvt_task_group_wait_blocking (group, -1, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (dvt_task_group_get_n_unfinished (group), ==, 0);

  tasks = dvt_task_group_get_tasks (group);
  g_assert_cmpuint (tasks->len, ==, 50);
  for (int i = 0; i < 50; i++)
    {
      g_assert_cmpint (dvt_task_propagate_int (g_ptr_array_index (tasks, i), &error), ==, i);
      g_assert_no_error (error);
    }

  /* An empty group, and one waited for again. */
  {
    g_autoptr(DvtTaskGroup) empty = new_group (rt);

    g_assert_true (dvt_task_group_wait_blocking (empty, -1, NULL, &error));
    g_assert_no_error (error);
  }
  g_assert_true (dvt_task_group_wait_blocking (group, 0, NULL, &error));
  g_assert_no_error (error);
}

static void
test_wait_first_failure (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(GPtrArray) tasks = NULL;
  g_autoptr(GError) error = NULL;

  for (int i = 0; i < 20; i++)
    submit (group, i == 7 ? fail_with_code : return_index, GINT_TO_POINTER (i));

  g_assert_false (dvt_task_group_wait_blocking (group, -1, NULL, &error));
  g_assert_error (error, TEST_ERROR, 7);
  g_assert_cmpstr (error->message, ==, "failure 7");
  g_clear_error (&error);

  /* Without cancel-on-failure, the others ran to their end. */
  tasks = dvt_task_group_get_tasks (group);
  for (int i = 0; i < 20; i++)
    if (i != 7)
      {
        g_assert_cmpint (dvt_task_propagate_int (g_ptr_array_index (tasks, i), &error), ==, i);
        g_assert_no_error (error);
      }
}

static void
test_wait_return_errors (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(GPtrArray) tasks = NULL;
  g_autoptr(GError) error = NULL;

  dvt_task_group_set_return_errors (group, TRUE);
  g_assert_true (dvt_task_group_get_return_errors (group));
  for (int i = 0; i < 10; i++)
    submit (group, i % 2 ? fail_with_code : return_index, GINT_TO_POINTER (i));

  g_assert_true (dvt_task_group_wait_blocking (group, -1, NULL, &error));
  g_assert_no_error (error);

  tasks = dvt_task_group_get_tasks (group);
  for (int i = 0; i < 10; i++)
    {
      gint64 v = dvt_task_propagate_int (g_ptr_array_index (tasks, i), &error);

      if (i % 2)
        {
          g_assert_error (error, TEST_ERROR, i);
          g_clear_error (&error);
        }
      else
        {
          g_assert_no_error (error);
          g_assert_cmpint (v, ==, i);
        }
    }
}

static void
test_cancel_on_failure (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(GPtrArray) tasks = NULL;
  g_autoptr(GError) error = NULL;

  dvt_task_group_set_cancel_on_failure (group, TRUE);
  g_assert_true (dvt_task_group_get_cancel_on_failure (group));
  /* Two places: a blocked member and the failing one; three held back. */
  dvt_task_group_set_max_concurrency (group, 2);
  submit (group, block_until_cancelled, NULL);
  submit (group, fail_with_code, GINT_TO_POINTER (3));
  for (int i = 0; i < 3; i++)
    submit (group, block_until_cancelled, NULL);

  g_assert_false (dvt_task_group_wait_blocking (group, -1, NULL, &error));
  /* The failure, not the cancellations it caused. */
  g_assert_error (error, TEST_ERROR, 3);
  g_clear_error (&error);

  tasks = dvt_task_group_get_tasks (group);
  for (guint i = 0; i < 5; i++)
    {
      if (i == 1)
        continue;
      g_assert_false (dvt_task_propagate_boolean (g_ptr_array_index (tasks, i), &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_clear_error (&error);
    }

  /* Once tripped, a member that joins later is cancelled before it starts. */
  {
    g_autoptr(DvtTask) late = dvt_task_group_submit (group, block_until_cancelled, NULL, NULL,
                                                     NULL, NULL, &error);

    g_assert_no_error (error);
    g_assert_true (dvt_task_wait (late, 5 * slow, NULL));
    g_assert_true (dvt_task_had_error (late));
    g_assert_false (dvt_task_group_wait_blocking (group, -1, NULL, &error));
    g_assert_error (error, TEST_ERROR, 3);
    g_clear_error (&error);
  }
}

/* Without cancel-on-failure, a cancellation alone is the failure reported. */
static void
test_wait_cancelled_member (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(DvtTask) task = dvt_task_group_submit (group, block_until_cancelled, NULL, NULL,
                                                   NULL, NULL, NULL);
  g_autoptr(GError) error = NULL;

  submit (group, return_index, NULL);
  dvt_task_cancel (task);
  g_assert_false (dvt_task_group_wait_blocking (group, -1, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

typedef struct
{
  int in_flight;  /* atomic */
  int peak;       /* atomic */
  int ran;        /* atomic */
  int late;       /* atomic: ran on after their task was cancelled */
} Flight;

static void
count_flight (DvtTask      *task,
              GCancellable *cancellable,
              gpointer      data,
              GError      **error)
{
  Flight *f = data;
  int now = g_atomic_int_add (&f->in_flight, 1) + 1;
  int peak;

  while ((peak = g_atomic_int_get (&f->peak)) < now &&
         !g_atomic_int_compare_and_exchange (&f->peak, peak, now))
    ;
  g_usleep (g_random_int_range (0, 300));
  g_atomic_int_inc (&f->ran);
  if (g_cancellable_is_cancelled (cancellable))
    g_atomic_int_inc (&f->late);
  g_atomic_int_add (&f->in_flight, -1);
  dvt_task_return_boolean (task, TRUE);
}

/* ---- the exit timeout ------------------------------------------------------------- */

static void
test_exit_timeout (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(GPtrArray) tasks = NULL;
  g_autoptr(GError) error = NULL;
  Flight f = { 0, 0, 0, 0 };

  dvt_task_group_set_max_concurrency (group, 1);
  submit (group, return_index, GINT_TO_POINTER (1));
  g_assert_true (dvt_task_group_wait_blocking (group, -1, NULL, &error));
  submit (group, block_until_cancelled, NULL);
  submit (group, count_flight, &f);   /* held back: never starts */

  g_assert_false (dvt_task_group_wait_blocking (group, 0.05, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_assert_cmpuint (dvt_task_group_get_n_unfinished (group), ==, 0);

  tasks = dvt_task_group_get_tasks (group);
  g_assert_cmpint (dvt_task_propagate_int (g_ptr_array_index (tasks, 0), &error), ==, 1);
  for (guint i = 1; i < 3; i++)
    {
      g_assert_false (dvt_task_propagate_boolean (g_ptr_array_index (tasks, i), &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_clear_error (&error);
    }
  /* The held-back one never started. */
  g_assert_cmpint (f.ran, ==, 0);
}

static void
test_exit_timeout_zero (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(GError) error = NULL;
  Gate gate;

  gate_init (&gate);
  for (int i = 0; i < 4; i++)
    submit (group, block_until_cancelled, NULL);
  /* A member that ignores its cancellable still ends at once. */
  submit (group, wait_gate, &gate);

  g_assert_false (dvt_task_group_wait_blocking (group, 0, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpuint (dvt_task_group_get_n_unfinished (group), ==, 0);

  gate_open (&gate);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  gate_clear (&gate);
}

/* ---- max-concurrency ---------------------------------------------------------------- */

static void
test_max_concurrency (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (8);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(GError) error = NULL;
  Flight f = { 0, 0, 0, 0 };

  dvt_task_group_set_max_concurrency (group, 3);
  g_assert_cmpuint (dvt_task_group_get_max_concurrency (group), ==, 3);
  for (int i = 0; i < 300; i++)
    submit (group, count_flight, &f);
  g_assert_true (dvt_task_group_wait_blocking (group, -1, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (f.ran, ==, 300);
  g_assert_cmpint (f.peak, <=, 3);
  g_assert_cmpint (f.peak, >=, 1);

  /* Raising it starts those held back. */
  {
    Gate gate;
    g_autoptr(DvtTaskGroup) g2 = new_group (rt);

    gate_init (&gate);
    dvt_task_group_set_max_concurrency (g2, 1);
    submit (g2, wait_gate, &gate);
    submit (g2, wait_gate, &gate);
    g_assert_cmpuint (dvt_task_group_get_n_unfinished (g2), ==, 2);
    dvt_task_group_set_max_concurrency (g2, 0);
    gate_open (&gate);
    g_assert_true (dvt_task_group_wait_blocking (g2, -1, NULL, &error));
    g_assert_no_error (error);
    gate_clear (&gate);
  }
}

/* A member held back and cancelled never starts, and its place goes on. */
static void
test_held_cancel (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) held = NULL;
  Flight f = { 0, 0, 0, 0 };
  Gate gate;

  gate_init (&gate);
  dvt_task_group_set_max_concurrency (group, 1);
  submit (group, wait_gate, &gate);
  held = dvt_task_group_submit (group, count_flight, &f, NULL, NULL, cancellable, &error);
  g_assert_no_error (error);
  submit (group, count_flight, &f);

  g_cancellable_cancel (cancellable);   /* the caller's cancellable, while held */
  g_assert_true (dvt_task_wait (held, 5 * slow, &error));
  g_assert_true (dvt_task_had_error (held));

  gate_open (&gate);
  g_assert_false (dvt_task_group_wait_blocking (group, -1, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (f.ran, ==, 1);
  gate_clear (&gate);
}

static int n_gate_freed;  /* atomic */
static int gate_started;  /* atomic */

/* wait_gate (), telling that it started. */
static void
start_then_wait_gate (DvtTask      *task,
                      GCancellable *cancellable,
                      gpointer      data,
                      GError      **error)
{
  g_atomic_int_set (&gate_started, 1);
  wait_gate (task, cancellable, data, error);
}

static void
count_gate_free (gpointer data)
{
  g_atomic_int_inc (&n_gate_freed);
}

/* A blocking member cancelled while its function runs on (ignoring its
 * cancellable) has ended, but keeps its place until the function returns;
 * its data goes then. */
static void
test_place_kept_while_running (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) running = NULL;
  Flight f = { 0, 0, 0, 0 };
  Gate gate;

  gate_init (&gate);
  n_gate_freed = 0;
  dvt_task_group_set_max_concurrency (group, 1);
  gate_started = 0;
  running = dvt_task_group_submit (group, start_then_wait_gate, &gate, count_gate_free,
                                   NULL, NULL, &error);
  g_assert_no_error (error);
  submit (group, count_flight, &f);

  g_assert_true (POLL_UNTIL (g_atomic_int_get (&gate_started), 5));
  dvt_task_cancel (running);
  g_assert_true (dvt_task_get_completed (running));
  /* Give the held member a chance to start wrongly. */
  g_usleep (50000);
  g_assert_cmpint (g_atomic_int_get (&f.ran), ==, 0);
  g_assert_cmpint (g_atomic_int_get (&n_gate_freed), ==, 0);

  gate_open (&gate);
  /* Cancelled by dvt_task_cancel(), not by the group: a failure. */
  g_assert_false (dvt_task_group_wait_blocking (group, -1, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (f.ran, ==, 1);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&n_gate_freed) == 1, 5));
  gate_clear (&gate);
}

/* ---- next ---------------------------------------------------------------------- */

static void
test_next_order (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(GError) error = NULL;
  DvtTask *tasks[3];
  Gate gates[3];

  for (int i = 0; i < 3; i++)
    {
      gate_init (&gates[i]);
      tasks[i] = dvt_task_group_submit (group, wait_gate, &gates[i], NULL, NULL, NULL, &error);
      g_assert_no_error (error);
    }

  /* Nothing has ended: a poll times out. */
  g_assert_null (dvt_task_group_next_blocking (group, 0, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);

  for (int k = 0; k < 3; k++)
    {
      int i = (k + 2) % 3;      /* 2, 0, 1 */
      g_autoptr(DvtTask) next = NULL;

      gate_open (&gates[i]);
      next = dvt_task_group_next_blocking (group, -1, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (next == tasks[i]);
    }

  /* The end: every member handed out, none running. */
  g_assert_null (dvt_task_group_next_blocking (group, -1, NULL, &error));
  g_assert_no_error (error);

  for (int i = 0; i < 3; i++)
    {
      g_object_unref (tasks[i]);
      gate_clear (&gates[i]);
    }
}

/* A member that ended before next() was called is not lost, however the
 * two race. */
static void
test_next_already_finished (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(GError) error = NULL;

  for (int i = 0; i < 2000; i++)
    {
      g_autoptr(DvtTask) task = dvt_task_group_submit (group, return_index, GINT_TO_POINTER (i),
                                                       NULL, NULL, NULL, &error);
      g_autoptr(DvtTask) next = NULL;

      g_assert_no_error (error);
      if (i % 2)
        g_assert_true (dvt_task_wait (task, 0, NULL));
      next = dvt_task_group_next_blocking (group, -1, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (next == task);
    }

  /* A foreign task that has ended joins as ended. */
  {
    g_autoptr(DvtTask) task = dvt_runtime_submit (rt, return_index, NULL, NULL, NULL, NULL, &error);
    g_autoptr(DvtTask) next = NULL;

    g_assert_true (dvt_task_wait (task, 0, NULL));
    g_assert_true (dvt_task_group_add (group, task, &error));
    g_assert_no_error (error);
    next = dvt_task_group_next_blocking (group, 0, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (next == task);
  }
  g_assert_null (dvt_task_group_next_blocking (group, -1, NULL, &error));
  g_assert_no_error (error);
}

/* ---- first --------------------------------------------------------------------- */

static void
succeed_late (DvtTask      *task,
              GCancellable *cancellable,
              gpointer      data,
              GError      **error)
{
  g_usleep (20000);
  dvt_task_return_int (task, 42);
}

static void
test_first (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(GError) error = NULL;

  /* The first success; the rest cancelled. */
  {
    g_autoptr(DvtTaskGroup) group = new_group (rt);
    g_autoptr(DvtTask) blocked = dvt_task_group_submit (group, block_until_cancelled, NULL,
                                                        NULL, NULL, NULL, &error);
    g_autoptr(DvtTask) first = NULL;

    submit (group, fail_with_code, GINT_TO_POINTER (1));
    submit (group, succeed_late, NULL);
    first = dvt_task_group_first_blocking (group, -1, TRUE, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpint (dvt_task_propagate_int (first, &error), ==, 42);
    g_assert_true (dvt_task_wait (blocked, 5 * slow, NULL));
    g_assert_false (dvt_task_propagate_boolean (blocked, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
  }

  /* Every member failed: the first failure. */
  {
    g_autoptr(DvtTaskGroup) group = new_group (rt);

    dvt_task_group_set_max_concurrency (group, 1);
    submit (group, fail_with_code, GINT_TO_POINTER (1));
    submit (group, fail_with_code, GINT_TO_POINTER (2));
    g_assert_null (dvt_task_group_first_blocking (group, -1, FALSE, NULL, &error));
    g_assert_error (error, TEST_ERROR, 1);
    g_clear_error (&error);
  }

  /* No member at all. */
  {
    g_autoptr(DvtTaskGroup) group = new_group (rt);

    g_assert_null (dvt_task_group_first_blocking (group, -1, FALSE, NULL, &error));
    g_assert_error (error, DVT_ERROR, DVT_ERROR_EMPTY);
    g_clear_error (&error);
  }

  /* A wait limit cancels nothing. */
  {
    g_autoptr(DvtTaskGroup) group = new_group (rt);

    submit (group, block_until_cancelled, NULL);
    g_assert_null (dvt_task_group_first_blocking (group, 0.02, TRUE, NULL, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    g_clear_error (&error);
    g_assert_cmpuint (dvt_task_group_get_n_unfinished (group), ==, 1);
    /* A cancellation the group asked for is no failure of the group. */
    g_assert_cmpuint (dvt_task_group_cancel (group), ==, 1);
    g_assert_true (dvt_task_group_wait_blocking (group, -1, NULL, &error));
    g_assert_no_error (error);
  }
}

/* ---- cancellation of waits ------------------------------------------------------ */

static gboolean
cancel_later (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

static gpointer
cancel_thread_main (gpointer data)
{
  g_usleep (20000);
  g_cancellable_cancel (data);
  return NULL;
}

static void
test_cancel_wait (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  GThread *thread;

  submit (group, block_until_cancelled, NULL);

  thread = g_thread_new ("cancel", cancel_thread_main, cancellable);
  g_assert_false (dvt_task_group_wait_blocking (group, -1, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_thread_join (thread);
  /* The wait ended, the member goes on. */
  g_assert_cmpuint (dvt_task_group_get_n_unfinished (group), ==, 1);

  g_assert_null (dvt_task_group_next_blocking (group, -1, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  dvt_task_group_cancel (group);
  g_assert_true (dvt_task_group_wait_blocking (group, -1, NULL, &error));
  g_assert_no_error (error);
}

/* ---- from a main loop ------------------------------------------------------------ */

static void
test_async (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(GError) error = NULL;
  Ready r;

  /* Callbacks come on this thread's default context (the global one). */
  ready_init (&r);

  /* wait_async */
  {
    g_autoptr(DvtTaskGroup) group = new_group (rt);

    for (int i = 0; i < 10; i++)
      submit (group, return_index, GINT_TO_POINTER (i));
    dvt_task_group_wait_async (group, -1, NULL, on_ready, &r);
    ready_wait (&r);
    g_assert_true (dvt_task_group_wait_finish (group, r.result, &error));
    g_assert_no_error (error);
    ready_clear (&r);

    /* Over before the call: the callback still comes later. */
    dvt_task_group_wait_async (group, -1, NULL, on_ready, &r);
    g_assert_cmpint (r.n, ==, 0);
    ready_wait (&r);
    g_assert_true (dvt_task_group_wait_finish (group, r.result, &error));
    ready_clear (&r);
  }

  /* Members that join while a wait_async waits are waited for too. */
  {
    g_autoptr(DvtTaskGroup) group = new_group (rt);
    g_autoptr(GPtrArray) tasks = NULL;
    Gate gate;

    gate_init (&gate);
    submit (group, wait_gate, &gate);
    dvt_task_group_wait_async (group, -1, NULL, on_ready, &r);
    submit (group, succeed_late, NULL);
    gate_open (&gate);
    ready_wait (&r);
    g_assert_true (dvt_task_group_wait_finish (group, r.result, &error));
    g_assert_no_error (error);
    ready_clear (&r);
    tasks = dvt_task_group_get_tasks (group);
    g_assert_true (dvt_task_get_completed (g_ptr_array_index (tasks, 1)));
    gate_clear (&gate);
  }

  /* An empty group: next_async ends at once, first_async fails. */
  {
    g_autoptr(DvtTaskGroup) group = new_group (rt);

    dvt_task_group_next_async (group, NULL, on_ready, &r);
    ready_wait (&r);
    g_assert_null (dvt_task_group_next_finish (group, r.result, &error));
    g_assert_no_error (error);
    ready_clear (&r);

    dvt_task_group_first_async (group, FALSE, NULL, on_ready, &r);
    ready_wait (&r);
    g_assert_null (dvt_task_group_first_finish (group, r.result, &error));
    g_assert_error (error, DVT_ERROR, DVT_ERROR_EMPTY);
    g_clear_error (&error);
    ready_clear (&r);
  }

  /* next_async, to the end */
  {
    g_autoptr(DvtTaskGroup) group = new_group (rt);
    guint seen = 0;

    for (int i = 0; i < 10; i++)
      submit (group, return_index, GINT_TO_POINTER (1 << i));
    for (;;)
      {
        g_autoptr(DvtTask) next = NULL;

        dvt_task_group_next_async (group, NULL, on_ready, &r);
        ready_wait (&r);
        next = dvt_task_group_next_finish (group, r.result, &error);
        g_assert_no_error (error);
        ready_clear (&r);
        if (next == NULL)
          break;
        seen |= (guint) dvt_task_propagate_int (next, NULL);
      }
    g_assert_cmpuint (seen, ==, 0x3ff);
  }

  /* first_async */
  {
    g_autoptr(DvtTaskGroup) group = new_group (rt);
    g_autoptr(DvtTask) first = NULL;

    submit (group, block_until_cancelled, NULL);
    submit (group, succeed_late, NULL);
    dvt_task_group_first_async (group, TRUE, NULL, on_ready, &r);
    ready_wait (&r);
    first = dvt_task_group_first_finish (group, r.result, &error);
    g_assert_no_error (error);
    g_assert_cmpint (dvt_task_propagate_int (first, NULL), ==, 42);
    ready_clear (&r);
    /* The rest was cancelled by the group: no failure. */
    g_assert_true (dvt_task_group_wait_blocking (group, -1, NULL, &error));
    g_assert_no_error (error);
  }

  /* the exit timeout */
  {
    g_autoptr(DvtTaskGroup) group = new_group (rt);

    submit (group, block_until_cancelled, NULL);
    submit (group, return_index, NULL);
    dvt_task_group_wait_async (group, 0.05, NULL, on_ready, &r);
    ready_wait (&r);
    g_assert_false (dvt_task_group_wait_finish (group, r.result, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    g_clear_error (&error);
    ready_clear (&r);
    g_assert_cmpuint (dvt_task_group_get_n_unfinished (group), ==, 0);

    submit (group, block_until_cancelled, NULL);
    dvt_task_group_wait_async (group, 0, NULL, on_ready, &r);
    ready_wait (&r);
    g_assert_false (dvt_task_group_wait_finish (group, r.result, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    g_clear_error (&error);
    ready_clear (&r);
  }

  /* cancelled waits */
  {
    g_autoptr(DvtTaskGroup) group = new_group (rt);
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();
    g_autoptr(GCancellable) cancelled = g_cancellable_new ();
    GSource *source = g_idle_source_new ();

    submit (group, block_until_cancelled, NULL);
    g_source_set_callback (source, cancel_later, cancellable, NULL);
    g_source_attach (source, NULL);
    g_source_unref (source);
    dvt_task_group_next_async (group, cancellable, on_ready, &r);
    ready_wait (&r);
    g_assert_null (dvt_task_group_next_finish (group, r.result, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
    ready_clear (&r);

    g_cancellable_cancel (cancelled);
    dvt_task_group_wait_async (group, -1, cancelled, on_ready, &r);
    ready_wait (&r);
    g_assert_false (dvt_task_group_wait_finish (group, r.result, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
    ready_clear (&r);

    /* The member went on; it is still handed out. */
    dvt_task_group_cancel (group);
    {
      g_autoptr(DvtTask) next = dvt_task_group_next_blocking (group, -1, NULL, &error);

      g_assert_no_error (error);
      g_assert_nonnull (next);
    }
  }
}

/* Async members on this thread's context are driven by a blocking wait. */
static void
start_and_return (DvtTask      *task,
                  GCancellable *cancellable,
                  gpointer      data,
                  GError      **error)
{
  dvt_task_return_int (task, 5);
}

static void
test_caller_context (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;

  g_main_context_push_thread_default (context);
  dvt_options_set_use_caller_context (options, TRUE);
  for (int i = 0; i < 3; i++)
    {
      g_autoptr(DvtTask) task = dvt_task_group_schedule (group, start_and_return, NULL, NULL,
                                                         options, NULL, &error);
      g_assert_no_error (error);
      g_assert_nonnull (task);
    }
  g_assert_true (dvt_task_group_wait_blocking (group, 30 * slow, NULL, &error));
  g_assert_no_error (error);
  g_main_context_pop_thread_default (context);
}

/* ---- events ---------------------------------------------------------------------- */

static void
on_scoped_finished (DvtEventScope *scope,
                    DvtTask       *task,
                    double         elapsed,
                    gpointer       data)
{
  g_atomic_int_inc ((int *) data);
}

/* A member's events are scoped by the function given to the group (which
 * runs it through a wrapper of its own). */
static void
test_event_scope (void)
{
  g_autoptr(DvtRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(DvtEventScope) scope = NULL;
  g_autoptr(GError) error = NULL;
  int n_finished = 0;

  scope = dvt_event_scope_new (rt, NULL, return_index, 0, &error);
  g_assert_no_error (error);
  g_signal_connect (scope, "finished", G_CALLBACK (on_scoped_finished), &n_finished);

  for (int i = 0; i < 3; i++)
    submit (group, return_index, GINT_TO_POINTER (i));
  submit (group, succeed_late, NULL);
  g_assert_true (dvt_task_group_wait_blocking (group, -1, NULL, &error));
  g_assert_no_error (error);

  /* A waiting shutdown returns once every event has been delivered. */
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (g_atomic_int_get (&n_finished), ==, 3);
}

/* ---- closing, shutdown, bad input --------------------------------------------------- */

static int n_freed;

static void
count_free (gpointer data)
{
  g_atomic_int_inc (&n_freed);
}

static void
test_close (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(DvtTask) foreign = dvt_runtime_submit (rt, return_index, NULL, NULL, NULL, NULL, NULL);
  g_autoptr(GError) error = NULL;
  DvtTask *task;

  submit (group, return_index, NULL);
  g_assert_false (dvt_task_group_is_closed (group));
  dvt_task_group_close (group);
  dvt_task_group_close (group);
  g_assert_true (dvt_task_group_is_closed (group));

  n_freed = 0;
  task = dvt_task_group_submit (group, return_index, NULL, count_free, NULL, NULL, &error);
  g_assert_null (task);
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_cmpint (n_freed, ==, 1);
  g_assert_false (dvt_task_group_add (group, foreign, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);

  /* The members already in go on. */
  g_assert_true (dvt_task_group_wait_blocking (group, -1, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (dvt_task_group_get_n_tasks (group), ==, 1);
}

static void
test_shutdown (void)
{
  g_autoptr(DvtRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtRuntime) other = dvt_runtime_new (1);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(DvtTask) foreign = dvt_runtime_submit (other, return_index, NULL, NULL, NULL, NULL, NULL);
  g_autoptr(GError) error = NULL;
  DvtTask *task;

  dvt_task_group_set_max_concurrency (group, 1);
  submit (group, block_until_cancelled, NULL);
  submit (group, block_until_cancelled, NULL);   /* held back */

  dvt_runtime_shutdown (rt, FALSE, TRUE);

  n_freed = 0;
  task = dvt_task_group_submit (group, return_index, NULL, count_free, NULL, NULL, &error);
  g_assert_null (task);
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_cmpint (n_freed, ==, 1);
  g_assert_false (dvt_task_group_add (group, foreign, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);

  /* The members were cancelled: the wait ends. */
  g_assert_false (dvt_task_group_wait_blocking (group, -1, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  dvt_runtime_shutdown (other, TRUE, FALSE);
}

typedef struct
{
  DvtTaskGroup *group;
  GError       *error;
  gboolean      ok;
} SelfWait;

static void
wait_own_group (DvtTask      *task,
                GCancellable *cancellable,
                gpointer      data,
                GError      **error)
{
  SelfWait *s = data;

  s->ok = dvt_task_group_wait_blocking (s->group, -1, NULL, &s->error);
  dvt_task_return_boolean (task, TRUE);
}

static void
wait_on_loop (DvtTask      *task,
              GCancellable *cancellable,
              gpointer      data,
              GError      **error)
{
  SelfWait *s = data;

  s->ok = dvt_task_group_wait_blocking (s->group, -1, NULL, &s->error);
  dvt_task_return_boolean (task, TRUE);
}

static void
test_bad_input (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(DvtTask) task = dvt_runtime_submit (rt, return_index, NULL, NULL, NULL, NULL, NULL);
  g_autoptr(GError) error = NULL;
  SelfWait s = { group, NULL, TRUE };

  g_assert_true (dvt_task_group_add (group, task, &error));
  g_assert_false (dvt_task_group_add (group, task, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* A member waiting for its own group. */
  submit (group, wait_own_group, &s);
  g_assert_true (dvt_task_group_wait_blocking (group, -1, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (s.ok);
  g_assert_error (s.error, DVT_ERROR, DVT_ERROR_WOULD_DEADLOCK);
  g_clear_error (&s.error);

  /* The runtime's loop thread. */
  {
    g_autoptr(DvtTaskGroup) other = new_group (rt);

    s.group = other;
    s.ok = TRUE;
    g_assert_true (dvt_runtime_run_blocking (rt, wait_on_loop, &s, NULL, NULL, NULL, NULL, &error));
    g_assert_no_error (error);
    g_assert_false (s.ok);
    g_assert_error (s.error, DVT_ERROR, DVT_ERROR_WOULD_DEADLOCK);
    g_clear_error (&s.error);
  }

  if (g_test_undefined ())
    {
      g_test_expect_message ("Dovetail", G_LOG_LEVEL_CRITICAL, "*DVT_IS_TASK*");
      g_assert_false (dvt_task_group_add (group, NULL, &error));
      g_test_assert_expected_messages ();
      g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);
    }
}

/* ---- stress ------------------------------------------------------------------------- */

typedef struct
{
  DvtTaskGroup *group;
  int           n_handed;   /* atomic */
  int           done;       /* atomic */
} Consumer;

static gpointer
consumer_main (gpointer data)
{
  Consumer *c = data;

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      DvtTask *task = dvt_task_group_next_blocking (c->group, -1, NULL, &error);

      g_assert_no_error (error);
      if (task == NULL)
        {
          /* The end, or a moment when everything so far was handed out. */
          if (g_atomic_int_get (&c->done))
            break;
          g_usleep (100);
          continue;
        }
      g_assert_true (dvt_task_get_completed (task));
      g_atomic_int_inc (&c->n_handed);
      g_object_unref (task);
    }

  return NULL;
}

static void
test_stress (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtTaskGroup) group = new_group (rt);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) tasks = NULL;
  guint n = is_valgrind () ? 500 : 5000;
  Flight f = { 0, 0, 0, 0 };
  Consumer c = { group, 0, 0 };
  GThread *consumers[2];
  guint n_cancelled = 0, n_ok = 0;

  dvt_task_group_set_max_concurrency (group, 3);
  for (guint k = 0; k < G_N_ELEMENTS (consumers); k++)
    consumers[k] = g_thread_new ("consumer", consumer_main, &c);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(DvtTask) task = dvt_task_group_submit (group, count_flight, &f, NULL, NULL,
                                                       NULL, &error);

      g_assert_no_error (error);
      if (g_random_int_range (0, 4) == 0)
        dvt_task_cancel (task);
    }

  dvt_task_group_set_return_errors (group, TRUE);
  g_assert_true (dvt_task_group_wait_blocking (group, -1, NULL, &error));
  g_assert_no_error (error);
  dvt_task_group_close (group);
  g_atomic_int_set (&c.done, 1);
  for (guint k = 0; k < G_N_ELEMENTS (consumers); k++)
    g_thread_join (consumers[k]);

  g_assert_cmpint (c.n_handed, ==, (int) n);
  /* A member cancelled while its function runs keeps its place until the
   * function returns: the bound holds for the functions that run. */
  g_assert_cmpint (f.peak, <=, 3);
  tasks = dvt_task_group_get_tasks (group);
  for (guint i = 0; i < n; i++)
    {
      DvtTask *task = g_ptr_array_index (tasks, i);

      if (dvt_task_had_error (task))
        n_cancelled++;
      else
        n_ok++;
    }
  /* A function may run and still have its task cancelled meanwhile. */
  g_assert_cmpuint (n_ok, <=, (guint) f.ran);
  g_assert_cmpuint (n_ok + n_cancelled, ==, n);
}

/* Threads submitting while the runtime shuts down: each submission
 * either fails with DVT_ERROR_CLOSED or its task ends; no wait hangs. */
typedef struct
{
  DvtTaskGroup *group;
  int           n_refused;   /* atomic */
  int           n_taken;     /* atomic */
} Submitter;

static gpointer
submitter_main (gpointer data)
{
  Submitter *s = data;

  for (int i = 0; i < 500; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(DvtTask) task = dvt_task_group_submit (s->group, return_index, NULL, NULL,
                                                       NULL, NULL, &error);

      if (task == NULL)
        {
          g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
          g_atomic_int_inc (&s->n_refused);
        }
      else
        g_atomic_int_inc (&s->n_taken);
    }

  return NULL;
}

static void
test_shutdown_race (void)
{
  for (int round = 0; round < (is_valgrind () ? 3 : 20); round++)
    {
      g_autoptr(DvtRuntime) rt = dvt_runtime_new (2);
      g_autoptr(DvtTaskGroup) group = new_group (rt);
      g_autoptr(GError) error = NULL;
      Submitter s = { group, 0, 0 };
      GThread *threads[3];

      dvt_task_group_set_max_concurrency (group, 2);
      dvt_task_group_set_return_errors (group, TRUE);
      for (guint k = 0; k < G_N_ELEMENTS (threads); k++)
        threads[k] = g_thread_new ("submitter", submitter_main, &s);
      g_usleep (g_random_int_range (0, 2000));
      dvt_runtime_shutdown (rt, FALSE, round % 2 == 0);
      for (guint k = 0; k < G_N_ELEMENTS (threads); k++)
        g_thread_join (threads[k]);

      g_assert_true (dvt_task_group_wait_blocking (group, -1, NULL, &error));
      g_assert_no_error (error);
      g_assert_cmpint (s.n_taken + s.n_refused, ==, 1500);
      g_assert_cmpuint (dvt_task_group_get_n_tasks (group), ==, (guint) s.n_taken);
      dvt_runtime_shutdown (rt, TRUE, FALSE);
    }
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/task-group/wait/all", test_wait_all);
  g_test_add_func ("/task-group/wait/first-failure", test_wait_first_failure);
  g_test_add_func ("/task-group/wait/return-errors", test_wait_return_errors);
  g_test_add_func ("/task-group/wait/cancelled-member", test_wait_cancelled_member);
  g_test_add_func ("/task-group/cancel-on-failure", test_cancel_on_failure);
  g_test_add_func ("/task-group/exit-timeout", test_exit_timeout);
  g_test_add_func ("/task-group/exit-timeout/zero", test_exit_timeout_zero);
  g_test_add_func ("/task-group/max-concurrency", test_max_concurrency);
  g_test_add_func ("/task-group/max-concurrency/held-cancel", test_held_cancel);
  g_test_add_func ("/task-group/max-concurrency/place-kept-while-running",
                   test_place_kept_while_running);
  g_test_add_func ("/task-group/next/order", test_next_order);
  g_test_add_func ("/task-group/next/already-finished", test_next_already_finished);
  g_test_add_func ("/task-group/first", test_first);
  g_test_add_func ("/task-group/cancel-wait", test_cancel_wait);
  g_test_add_func ("/task-group/async", test_async);
  g_test_add_func ("/task-group/caller-context", test_caller_context);
  g_test_add_func ("/task-group/event-scope", test_event_scope);
  g_test_add_func ("/task-group/close", test_close);
  g_test_add_func ("/task-group/shutdown", test_shutdown);
  g_test_add_func ("/task-group/bad-input", test_bad_input);
  g_test_add_func ("/task-group/stress", test_stress);
  g_test_add_func ("/task-group/stress/shutdown-race", test_shutdown_race);

  return g_test_run ();
}
