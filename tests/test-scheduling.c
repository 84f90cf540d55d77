/* test-scheduling.c: priority and timed starts (DvtOptions:priority,
 * :delay, :not-before)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"

#include <math.h>

/* ---- helpers ---------------------------------------------------------------- */

/* Where tasks record the order in which they ran. */
typedef struct
{
  GMutex  lock;
  GArray *order;   /* guint: the index each task was given */
} Recorder;

typedef struct
{
  Recorder *recorder;
  guint     index;
} Entry;

static void
record_index (DvtTask      *task,
              GCancellable *cancellable,
              gpointer      data,
              GError      **error)
{
  Entry *entry = data;

  g_mutex_lock (&entry->recorder->lock);
  g_array_append_val (entry->recorder->order, entry->index);
  g_mutex_unlock (&entry->recorder->lock);
  dvt_task_return_int (task, entry->index);
}

/* The first task of a 1-worker runtime: holds the worker until the gate
 * opens, so that the next tasks queue up behind it. */
typedef struct
{
  Gate gate;
  int  started;  /* atomic */
} Blocker;

static void
block_worker (DvtTask      *task,
              GCancellable *cancellable,
              gpointer      data,
              GError      **error)
{
  Blocker *b = data;

  g_atomic_int_set (&b->started, 1);
  gate_wait (&b->gate);
  dvt_task_return_boolean (task, TRUE);
}

static DvtTask *
submit_blocker (DvtRuntime *rt,
                Blocker    *b)
{
  g_autoptr(GError) error = NULL;
  DvtTask *task;

  gate_init (&b->gate);
  b->started = 0;
  task = dvt_runtime_submit (rt, block_worker, b, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&b->started), 30));

  return task;
}

static DvtOptions *
options_with_priority (int priority)
{
  DvtOptions *options = dvt_options_new ();

  dvt_options_set_priority (options, priority);
  return options;
}

static void
nop (DvtTask      *task,
     GCancellable *cancellable,
     gpointer      data,
     GError      **error)
{
  dvt_task_return_boolean (task, TRUE);
}

/* Records when it started (monotonic µs) in *data. */
static void
record_start (DvtTask      *task,
              GCancellable *cancellable,
              gpointer      data,
              GError      **error)
{
  g_atomic_pointer_set ((gpointer *) data, GSIZE_TO_POINTER ((gsize) g_get_monotonic_time ()));
  dvt_task_return_boolean (task, TRUE);
}

static void
record_start_async (DvtTask      *task,
                    GCancellable *cancellable,
                    gpointer      data,
                    GError      **error)
{
  record_start (task, cancellable, data, error);
}

static int n_runs;       /* atomic */
static int n_destroyed;  /* atomic */

static void
count_run (DvtTask      *task,
           GCancellable *cancellable,
           gpointer      data,
           GError      **error)
{
  g_atomic_int_inc (&n_runs);
  dvt_task_return_boolean (task, TRUE);
}

static void
count_destroy (gpointer data)
{
  g_atomic_int_inc (&n_destroyed);
}

static void
on_cancelled_count (DvtRuntime *rt,
                    DvtTask    *task,
                    GError     *error,
                    double      elapsed,
                    int        *calls)
{
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_atomic_int_inc (calls);
}

/* Waits for @task to end; returns whether it succeeded, or FALSE with its
 * error. */
static gboolean
wait_ok (DvtTask  *task,
         GError  **error)
{
  g_assert_true (dvt_task_wait (task, 0, NULL));
  return dvt_task_propagate_boolean (task, error);
}

static void
on_task_cancelled_count (DvtTask *task,
                         GError  *error,
                         double   elapsed,
                         int     *calls)
{
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_atomic_int_inc (calls);
}

static DvtOptions *
options_with_delay (double delay)
{
  DvtOptions *options = dvt_options_new ();

  dvt_options_set_delay (options, delay);
  return options;
}

/* ---- priority ------------------------------------------------------------- */

/* A 1-worker runtime whose worker a first task holds, so that the tasks
 * submitted next queue up; they record the order in which they run. */
typedef struct
{
  DvtRuntime *rt;
  Recorder    recorder;
  Blocker     blocker;
  DvtTask    *blocker_task;
  Entry      *entries;
  guint       n_entries;
  GPtrArray  *tasks;
} Queued;

static void
queued_init (Queued *q,
             guint   max_tasks)
{
  q->rt = dvt_runtime_new (1);
  q->recorder.order = g_array_new (FALSE, FALSE, sizeof (guint));
  g_mutex_init (&q->recorder.lock);
  q->entries = g_new0 (Entry, max_tasks);
  q->n_entries = 0;
  q->tasks = g_ptr_array_new_with_free_func (g_object_unref);
  q->blocker_task = submit_blocker (q->rt, &q->blocker);
}

/* Submits a recording task with @options; returns its index. */
static guint
queued_submit (Queued     *q,
               DvtOptions *options)
{
  g_autoptr(GError) error = NULL;
  Entry *entry = &q->entries[q->n_entries];

  entry->recorder = &q->recorder;
  entry->index = q->n_entries++;
  g_ptr_array_add (q->tasks, dvt_runtime_submit (q->rt, record_index, entry, NULL,
                                                 options, NULL, &error));
  g_assert_no_error (error);

  return entry->index;
}

/* Lets the worker go and waits for every task. */
static void
queued_release (Queued *q)
{
  gate_open (&q->blocker.gate);
  for (guint i = 0; i < q->tasks->len; i++)
    g_assert_true (dvt_task_wait (g_ptr_array_index (q->tasks, i), 0, NULL));
  g_assert_true (dvt_task_wait (q->blocker_task, 0, NULL));
}

static void
queued_clear (Queued *q)
{
  g_ptr_array_unref (q->tasks);
  g_object_unref (q->blocker_task);
  dvt_test_runtime_free (q->rt);
  g_free (q->entries);
  g_array_unref (q->recorder.order);
  g_mutex_clear (&q->recorder.lock);
  gate_clear (&q->blocker.gate);
}

/* Queued behind a busy worker, tasks start by priority, lower value first,
 * and in submission order among equal priorities (the default included). */
static void
test_priority_order (void)
{
  static const int priorities[] = {
    G_PRIORITY_LOW, G_PRIORITY_DEFAULT, G_PRIORITY_HIGH, G_PRIORITY_DEFAULT_IDLE,
    G_PRIORITY_HIGH_IDLE, -50, G_PRIORITY_DEFAULT, 10,
  };
  guint n = 400;
  g_autofree int *priority_of = g_new0 (int, n);
  GArray *order;
  Queued q;

  queued_init (&q, n);
  for (guint i = 0; i < n; i++)
    {
      int priority = priorities[g_random_int_range (0, G_N_ELEMENTS (priorities))];
      g_autoptr(DvtOptions) options = options_with_priority (priority);

      priority_of[queued_submit (&q, options)] = priority;
    }
  queued_release (&q);

  order = q.recorder.order;
  g_assert_cmpuint (order->len, ==, n);
  for (guint k = 1; k < n; k++)
    {
      guint a = g_array_index (order, guint, k - 1);
      guint b = g_array_index (order, guint, k);

      g_assert_cmpint (priority_of[a], <=, priority_of[b]);
      if (priority_of[a] == priority_of[b])
        g_assert_cmpuint (a, <, b);
    }
  queued_clear (&q);
}

/* 1000 tasks of one priority start in the order they came, for the
 * default priority and for others. */
static void
test_priority_fifo (void)
{
  static const int priorities[] = { G_PRIORITY_DEFAULT, G_PRIORITY_LOW, G_PRIORITY_HIGH };

  for (guint p = 0; p < G_N_ELEMENTS (priorities); p++)
    {
      g_autoptr(DvtOptions) options = options_with_priority (priorities[p]);
      guint n = 1000;
      Queued q;

      queued_init (&q, n);
      for (guint i = 0; i < n; i++)
        queued_submit (&q, options);
      queued_release (&q);

      g_assert_cmpuint (q.recorder.order->len, ==, n);
      for (guint k = 0; k < n; k++)
        g_assert_cmpuint (g_array_index (q.recorder.order, guint, k), ==, k);
      queued_clear (&q);
    }
}

/* A priority is a property like the others: copied, and its default is
 * G_PRIORITY_DEFAULT. Blocking calls and futures accept it; a task that
 * runs alone runs whatever its priority. */
static void
test_priority_property (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(DvtOptions) copy = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;
  int priority = 0;

  g_assert_cmpint (dvt_options_get_priority (options), ==, G_PRIORITY_DEFAULT);
  g_object_set (options, "priority", G_PRIORITY_HIGH, NULL);
  g_object_get (options, "priority", &priority, NULL);
  g_assert_cmpint (priority, ==, G_PRIORITY_HIGH);
  copy = dvt_options_copy (options);
  g_assert_cmpint (dvt_options_get_priority (copy), ==, G_PRIORITY_HIGH);

  g_assert_true (dvt_runtime_to_thread_blocking (rt, nop, NULL, NULL, options, NULL,
                                                 &value, &error));
  g_assert_no_error (error);
  g_assert_true (g_value_get_boolean (&value));
}

/* A map's items take its priority, whether they run in chunks or as tasks
 * of their own (with a timeout). */
static void
record_item (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      data,
             GError      **error)
{
  Recorder *recorder = data;
  guint index = 1000 + dvt_task_get_index (task);

  g_mutex_lock (&recorder->lock);
  g_array_append_val (recorder->order, index);
  g_mutex_unlock (&recorder->lock);
  dvt_task_return_int (task, index);
}

static void
test_priority_map (void)
{
  for (guint with_tasks = 0; with_tasks <= 1; with_tasks++)
    {
      g_autoptr(DvtOptions) options = options_with_priority (G_PRIORITY_HIGH);
      g_autoptr(GError) error = NULL;
      g_autoptr(GArray) results = NULL;
      g_auto(GValue) value = G_VALUE_INIT;
      Ready ready;
      Queued q;

      ready_init (&ready);
      /* A timeout makes each item a task of its own. */
      if (with_tasks)
        dvt_options_set_timeout (options, 300);
      queued_init (&q, 5);
      for (guint i = 0; i < 5; i++)
        queued_submit (&q, NULL);
      /* In chunks, the map queues its runner before it returns; as tasks,
       * its pump queues the first items from the loop thread, which has
       * done so once a later round trip through the loop is back. */
      dvt_runtime_map_async (q.rt, 4, record_item, &q.recorder, NULL, options, NULL,
                             on_ready, &ready);
      g_assert_true (dvt_runtime_run_blocking (q.rt, record_start_async, &(gpointer) { NULL },
                                               NULL, NULL, NULL, &value, &error));
      queued_release (&q);
      ready_wait (&ready);
      results = dvt_runtime_map_finish (q.rt, ready.result, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (results->len, ==, 4);

      g_assert_cmpuint (q.recorder.order->len, ==, 9);
      /* In chunks, one runner job queued ahead of the default-priority
       * tasks runs every item first. As tasks, the map queues no more
       * items than there are workers (one): that one goes first, the
       * next ones are queued as the earlier ones end. */
      for (guint k = 0; k < (with_tasks ? 1 : 4); k++)
        g_assert_cmpuint (g_array_index (q.recorder.order, guint, k), >=, 1000);

      ready_clear (&ready);
      queued_clear (&q);
    }
}

/* ---- timed starts --------------------------------------------------------- */

/* A delayed task never starts before its delay has passed, whatever the
 * kind of call; not-before likewise. */
static void
test_delay_respected (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  gpointer started = NULL;
  gint64 called;

  /* A future on a worker. */
  {
    g_autoptr(DvtOptions) options = options_with_delay (0.2);
    g_autoptr(DvtTask) task = NULL;

    called = g_get_monotonic_time ();
    task = dvt_runtime_submit (rt, record_start, &started, NULL, options, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (dvt_task_wait (task, 0, &error));
    g_assert_cmpint ((gint64) GPOINTER_TO_SIZE (started) - called, >=, 200000);
  }

  /* Async work on the loop. */
  {
    g_autoptr(DvtOptions) options = options_with_delay (0.15);
    g_autoptr(DvtTask) task = NULL;

    started = NULL;
    called = g_get_monotonic_time ();
    task = dvt_runtime_schedule (rt, record_start_async, &started, NULL, options, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (dvt_task_wait (task, 0, &error));
    g_assert_cmpint ((gint64) GPOINTER_TO_SIZE (started) - called, >=, 150000);
  }

  /* A blocking call waits through the delay. */
  {
    g_autoptr(DvtOptions) options = options_with_delay (0.1);

    started = NULL;
    called = g_get_monotonic_time ();
    g_assert_true (dvt_runtime_to_thread_blocking (rt, record_start, &started, NULL, options,
                                                   NULL, &value, &error));
    g_assert_no_error (error);
    g_assert_cmpint ((gint64) GPOINTER_TO_SIZE (started) - called, >=, 100000);
    g_value_unset (&value);
  }

  /* not-before, and both: the later one wins. */
  {
    g_autoptr(DvtOptions) options = dvt_options_new ();
    g_autoptr(DvtTask) task = NULL;
    gint64 not_before = g_get_monotonic_time () + 150000;

    dvt_options_set_not_before (options, not_before);
    dvt_options_set_delay (options, 0.05);
    started = NULL;
    task = dvt_runtime_submit (rt, record_start, &started, NULL, options, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (dvt_task_wait (task, 0, &error));
    g_assert_cmpint ((gint64) GPOINTER_TO_SIZE (started), >=, not_before);
  }

  /* A time already passed starts at once (no assertion on when). */
  {
    g_autoptr(DvtOptions) options = dvt_options_new ();
    g_autoptr(DvtTask) task = NULL;

    dvt_options_set_not_before (options, 1);
    task = dvt_runtime_submit (rt, nop, NULL, NULL, options, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (dvt_task_wait (task, 0, &error));
  }
}

/* A delayed task's timeout counts from the end of its delay. */
static void
test_delay_then_timeout (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = options_with_delay (0.8);
  g_autoptr(DvtTask) task = NULL;
  g_autoptr(GError) error = NULL;

  dvt_options_set_timeout (options, 0.7 * slow);
  task = dvt_runtime_submit (rt, nop, NULL, NULL, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (dvt_task_wait (task, 0, &error));
  g_assert_no_error (error);
  g_assert_true (dvt_task_propagate_boolean (task, &error));
}

/* Cancelled before its start, a delayed task ends at once, cancelled: it
 * never runs, counts as cancelled, emits `cancelled`, frees its data and
 * leaves no task behind. */
static void
test_delay_cancel (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = options_with_delay (60);
  g_autoptr(DvtStats) stats = NULL;
  g_autoptr(GError) error = NULL;
  DvtTask *task;
  gpointer weak = NULL;
  int cancelled_events = 0;
  int cancelled_signals = 0;
  gint64 before;

  g_atomic_int_set (&n_runs, 0);
  g_atomic_int_set (&n_destroyed, 0);
  g_signal_connect (rt, "cancelled", G_CALLBACK (on_cancelled_count), &cancelled_events);

  task = dvt_runtime_submit (rt, count_run, NULL, count_destroy, options, NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (task, "cancelled", G_CALLBACK (on_task_cancelled_count), &cancelled_signals);
  add_weak_pointer_atomic (G_OBJECT (task), &weak);
  weak = task;

  before = g_get_monotonic_time ();
  dvt_task_cancel (task);
  g_assert_true (dvt_task_wait (task, 0, &error));
  /* At once: far from the minute of the delay. */
  g_assert_cmpint (g_get_monotonic_time () - before, <, 20 * slow * G_USEC_PER_SEC);
  g_assert_true (dvt_task_get_completed (task));
  g_assert_false (dvt_task_propagate_boolean (task, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  g_assert_true (POLL_UNTIL (g_atomic_int_get (&cancelled_events) == 1 &&
                             g_atomic_int_get (&cancelled_signals) == 1, 20));
  stats = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (stats->queued, ==, 1);
  g_assert_cmpuint (stats->cancelled, ==, 1);
  g_assert_cmpuint (stats->started, ==, 0);
  g_assert_cmpuint (stats->pending, ==, 0);

  g_object_unref (task);
  /* The timer let go of it too. */
  g_assert_true (POLL_UNTIL (g_atomic_pointer_get (&weak) == NULL, 20));
  /* Its data went with it. */
  g_assert_cmpint (g_atomic_int_get (&n_destroyed), ==, 1);
  g_assert_cmpint (g_atomic_int_get (&n_runs), ==, 0);
}

/* A cancellable cancelled before the start ends a delayed task too. */
static void
test_delay_cancellable (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = options_with_delay (60);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(DvtTask) task = NULL;
  g_autoptr(GError) error = NULL;

  g_atomic_int_set (&n_runs, 0);
  task = dvt_runtime_submit (rt, count_run, NULL, NULL, options, cancellable, &error);
  g_assert_no_error (error);
  g_cancellable_cancel (cancellable);
  g_assert_false (wait_ok (task, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (g_atomic_int_get (&n_runs), ==, 0);
}

/* A shutdown that cancels ends delayed tasks at once, whether it waits or
 * not; they never run. */
static void
test_delay_shutdown_cancel (void)
{
  for (guint wait = 0; wait <= 1; wait++)
    {
      DvtRuntime *rt = dvt_runtime_new (2);
      g_autoptr(DvtOptions) options = options_with_delay (60);
      g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func (g_object_unref);
      g_autoptr(DvtStats) stats = NULL;
      g_autoptr(GError) error = NULL;
      gint64 before;

      g_atomic_int_set (&n_runs, 0);
      g_atomic_int_set (&n_destroyed, 0);
      for (guint i = 0; i < 20; i++)
        {
          g_ptr_array_add (tasks, dvt_runtime_submit (rt, count_run, NULL, count_destroy,
                                                      options, NULL, &error));
          g_assert_no_error (error);
        }

      before = g_get_monotonic_time ();
      dvt_runtime_shutdown (rt, wait, TRUE);
      for (guint i = 0; i < tasks->len; i++)
        {
          g_assert_false (wait_ok (g_ptr_array_index (tasks, i), &error));
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          g_clear_error (&error);
        }
      g_assert_cmpint (g_get_monotonic_time () - before, <, 20 * slow * G_USEC_PER_SEC);
      if (!wait)
        dvt_runtime_shutdown (rt, TRUE, FALSE);

      stats = dvt_runtime_get_stats (rt);
      g_assert_cmpuint (stats->cancelled, ==, 20);
      g_assert_cmpuint (stats->started, ==, 0);
      g_assert_cmpint (g_atomic_int_get (&n_runs), ==, 0);
      g_ptr_array_set_size (tasks, 0);
      g_assert_true (POLL_UNTIL (g_atomic_int_get (&n_destroyed) == 20, 20));
      g_object_unref (rt);
    }
}

/* A draining shutdown lets delayed tasks start at their time and run to
 * their end: a waiting one returns after them. */
static void
test_delay_shutdown_drain (void)
{
  for (guint wait = 0; wait <= 1; wait++)
    {
      DvtRuntime *rt = dvt_runtime_new (2);
      g_autoptr(DvtOptions) options = options_with_delay (0.1);
      g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func (g_object_unref);
      g_autoptr(DvtStats) stats = NULL;
      g_autoptr(GError) error = NULL;

      g_atomic_int_set (&n_runs, 0);
      for (guint i = 0; i < 20; i++)
        {
          g_ptr_array_add (tasks, dvt_runtime_submit (rt, count_run, NULL, NULL,
                                                      options, NULL, &error));
          g_assert_no_error (error);
        }

      dvt_runtime_shutdown (rt, wait, FALSE);
      if (wait)
        {
          /* Returned once every task had ended. */
          g_assert_cmpint (g_atomic_int_get (&n_runs), ==, 20);
          for (guint i = 0; i < tasks->len; i++)
            g_assert_true (dvt_task_get_completed (g_ptr_array_index (tasks, i)));
        }
      for (guint i = 0; i < tasks->len; i++)
        {
          g_assert_true (dvt_task_wait (g_ptr_array_index (tasks, i), 0, &error));
          g_assert_no_error (error);
        }
      if (!wait)
        dvt_runtime_shutdown (rt, TRUE, FALSE);

      stats = dvt_runtime_get_stats (rt);
      g_assert_cmpuint (stats->done, ==, 20);
      g_assert_cmpint (g_atomic_int_get (&n_runs), ==, 20);
      g_ptr_array_set_size (tasks, 0);
      g_object_unref (rt);
    }
}

/* Many delayed tasks cancelled at random times from several threads,
 * before, during or after their start: every task ends once, as done or
 * cancelled, the counters add up, every data is freed and no task is
 * left behind. */
typedef struct
{
  GPtrArray *tasks;
  guint      from;
  guint      step;
} Canceller;

static gpointer
canceller_main (gpointer data)
{
  Canceller *c = data;

  for (guint i = c->from; i < c->tasks->len; i += c->step)
    {
      if (g_random_boolean ())
        dvt_task_cancel (g_ptr_array_index (c->tasks, i));
      if (g_random_int_range (0, 8) == 0)
        g_usleep (g_random_int_range (0, 300));
    }

  return NULL;
}

static void
test_delay_stress_cancel (void)
{
  guint n = is_valgrind () ? 300 : 3000;
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(DvtStats) stats = NULL;
  g_autoptr(GError) error = NULL;
  Canceller cancellers[2];
  GThread *threads[G_N_ELEMENTS (cancellers)];
  guint n_done = 0, n_cancelled = 0;
  guint instances = g_type_get_instance_count (DVT_TYPE_TASK);

  g_atomic_int_set (&n_runs, 0);
  g_atomic_int_set (&n_destroyed, 0);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(DvtOptions) options = dvt_options_new ();

      dvt_options_set_delay (options, g_random_double_range (0, 0.02));
      if (g_random_boolean ())
        dvt_options_set_priority (options, g_random_int_range (-100, 300));
      g_ptr_array_add (tasks, dvt_runtime_submit (rt, count_run, NULL, count_destroy,
                                                  options, NULL, &error));
      g_assert_no_error (error);
    }

  for (guint t = 0; t < G_N_ELEMENTS (cancellers); t++)
    {
      cancellers[t] = (Canceller) { tasks, t, G_N_ELEMENTS (cancellers) };
      threads[t] = g_thread_new ("canceller", canceller_main, &cancellers[t]);
    }
  for (guint t = 0; t < G_N_ELEMENTS (threads); t++)
    g_thread_join (threads[t]);

  for (guint i = 0; i < n; i++)
    {
      DvtTask *task = g_ptr_array_index (tasks, i);

      if (wait_ok (task, &error))
        n_done++;
      else
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          g_clear_error (&error);
          n_cancelled++;
        }
    }
  g_assert_cmpuint (n_done + n_cancelled, ==, n);
  /* A task cancelled while running has run; one done has run. */
  g_assert_cmpint (g_atomic_int_get (&n_runs), >=, n_done);

  g_assert_true (dvt_runtime_wait_idle (rt, 30 * slow, NULL, &error));
  stats = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (stats->queued, ==, n);
  g_assert_cmpuint (stats->done, ==, n_done);
  g_assert_cmpuint (stats->cancelled, ==, n_cancelled);
  g_assert_cmpuint (stats->error, ==, 0);

  g_ptr_array_set_size (tasks, 0);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&n_destroyed) == (int) n, 20));
  g_assert_true (POLL_UNTIL (g_type_get_instance_count (DVT_TYPE_TASK) <= (int) instances, 20));
}

/* ---- bad values ----------------------------------------------------------- */

/* A negative or NaN delay and a negative not-before are programmer
 * errors: a critical, and the options keep their value. */
static void
test_bad_values (void)
{
  g_autoptr(DvtOptions) options = options_with_delay (1.5);

  g_test_expect_message ("Dovetail", G_LOG_LEVEL_CRITICAL, "*delay*");
  dvt_options_set_delay (options, -1);
  g_test_assert_expected_messages ();
  g_test_expect_message ("Dovetail", G_LOG_LEVEL_CRITICAL, "*isnan*");
  dvt_options_set_delay (options, NAN);
  g_test_assert_expected_messages ();
  g_assert_cmpfloat (dvt_options_get_delay (options), ==, 1.5);

  g_test_expect_message ("Dovetail", G_LOG_LEVEL_CRITICAL, "*not_before*");
  dvt_options_set_not_before (options, -5);
  g_test_assert_expected_messages ();
  g_assert_cmpint (dvt_options_get_not_before (options), ==, 0);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/scheduling/priority/order", test_priority_order);
  g_test_add_func ("/scheduling/priority/fifo", test_priority_fifo);
  g_test_add_func ("/scheduling/priority/property", test_priority_property);
  g_test_add_func ("/scheduling/priority/map", test_priority_map);
  g_test_add_func ("/scheduling/delay/respected", test_delay_respected);
  g_test_add_func ("/scheduling/delay/then-timeout", test_delay_then_timeout);
  g_test_add_func ("/scheduling/delay/cancel", test_delay_cancel);
  g_test_add_func ("/scheduling/delay/cancellable", test_delay_cancellable);
  g_test_add_func ("/scheduling/delay/shutdown-cancel", test_delay_shutdown_cancel);
  g_test_add_func ("/scheduling/delay/shutdown-drain", test_delay_shutdown_drain);
  g_test_add_func ("/scheduling/delay/stress-cancel", test_delay_stress_cancel);
  g_test_add_func ("/scheduling/options/bad-values", test_bad_values);

  return g_test_run ();
}
