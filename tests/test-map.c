/* test-map.c: ordered parallel maps and gathers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"
#include <string.h>

/* ---- helpers ----------------------------------------------------------- */

static void
assert_int_results (GArray *results,
                    guint   n,
                    gint64 (*expected) (guint))
{
  g_assert_nonnull (results);
  g_assert_cmpuint (results->len, ==, n);
  for (guint i = 0; i < n; i++)
    {
      GValue *v = &g_array_index (results, GValue, i);

      g_assert_true (G_VALUE_HOLDS_INT64 (v));
      if (g_value_get_int64 (v) != expected (i))
        g_error ("slot %u holds %" G_GINT64_FORMAT ", expected %" G_GINT64_FORMAT,
                 i, g_value_get_int64 (v), expected (i));
    }
}

static gint64
square_plus_one (guint i)
{
  return (gint64) i * i + 1;
}

static void
item_square (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  guint i = dvt_task_get_index (task);

  dvt_task_return_int (task, square_plus_one (i));
}

/* ---- maps -------------------------------------------------------------- */

typedef struct
{
  guint n;
  int   last_done;
  int   first_saw_last;
} OrderData;

static void
item_out_of_order (DvtTask      *task,
                   GCancellable *cancellable,
                   gpointer      user_data,
                   GError      **error)
{
  OrderData *od = user_data;
  guint i = dvt_task_get_index (task);

  /* Item 0 finishes only after the last item has finished. */
  if (i == 0)
    {
      if (POLL_UNTIL (g_atomic_int_get (&od->last_done), 20))
        g_atomic_int_set (&od->first_saw_last, 1);
    }
  else if (i % 5 == 0)
    g_usleep (300);

  dvt_task_return_int (task, square_plus_one (i));

  if (i == od->n - 1)
    g_atomic_int_set (&od->last_done, 1);
}

static void
test_map_order (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  OrderData od = { 64, 0, 0 };

  dvt_options_set_max_concurrency (options, 4);
  results = dvt_runtime_map_blocking (rt, od.n, item_out_of_order, &od, NULL, options, NULL, &error);
  g_assert_no_error (error);
  assert_int_results (results, od.n, square_plus_one);
  /* The items really did finish out of order. */
  g_assert_true (od.first_saw_last);
}

static void
map_empty_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GArray **out = user_data;
  g_autoptr(GError) error = NULL;

  *out = dvt_runtime_map_finish (DVT_RUNTIME (source), result, &error);
  g_assert_no_error (error);
}

static void
item_never (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  g_assert_not_reached ();
}

static void
test_map_empty (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  GArray *results;
  GArray *async_results = NULL;

  results = dvt_runtime_map_blocking (rt, 0, item_never, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (results);
  g_assert_cmpuint (results->len, ==, 0);
  g_array_unref (results);

  dvt_options_set_async_items (options, TRUE);
  results = dvt_runtime_map_blocking (rt, 0, item_never, NULL, NULL, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (results);
  g_assert_cmpuint (results->len, ==, 0);
  g_array_unref (results);

  dvt_runtime_map_async (rt, 0, item_never, NULL, NULL, NULL, NULL, map_empty_cb, &async_results);
  while (async_results == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (async_results->len, ==, 0);
  g_array_unref (async_results);
}

static void
test_map_many (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  guint sizes[] = { 1, 2, 3, 17, 500, 501, 10000 };

  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GArray) results = NULL;

      results = dvt_runtime_map_blocking (rt, sizes[s], item_square, NULL, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      assert_int_results (results, sizes[s], square_plus_one);
    }
}

/* Tracks items in flight. Each item waits (a bounded time) until the
 * expected number is in flight, so that a runtime that runs fewer items at
 * once than it should is caught, and one that runs more shows a peak
 * above the limit. */
typedef struct
{
  int in_flight;
  int peak;
  int target;
  int reached;
  int calls;
} Flight;

static void
flight_enter (Flight *f)
{
  int now = g_atomic_int_add (&f->in_flight, 1) + 1;
  int peak;

  g_atomic_int_inc (&f->calls);
  do
    peak = g_atomic_int_get (&f->peak);
  while (now > peak && !g_atomic_int_compare_and_exchange (&f->peak, peak, now));
}

static void
flight_leave (Flight *f)
{
  g_atomic_int_add (&f->in_flight, -1);
}

static void
item_flight (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  Flight *f = user_data;

  flight_enter (f);
  if (!g_atomic_int_get (&f->reached))
    {
      if (POLL_UNTIL (g_atomic_int_get (&f->in_flight) >= f->target, 1))
        g_atomic_int_set (&f->reached, 1);
    }
  g_usleep (300);
  flight_leave (f);
  dvt_task_return_int (task, square_plus_one (dvt_task_get_index (task)));
}

static void
check_concurrency (DvtRuntime *rt,
                   int         max_concurrency,
                   int         expected_peak)
{
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  Flight f = { 0, 0, expected_peak, 0, 0 };
  guint n = 40;

  dvt_options_set_max_concurrency (options, max_concurrency);
  results = dvt_runtime_map_blocking (rt, n, item_flight, &f, NULL, options, NULL, &error);
  g_assert_no_error (error);
  assert_int_results (results, n, square_plus_one);
  g_assert_cmpint (f.calls, ==, n);
  g_test_message ("max-concurrency %d: peak %d", max_concurrency, f.peak);
  g_assert_cmpint (f.peak, <=, expected_peak);
  g_assert_true (f.reached);
  g_assert_cmpint (f.peak, ==, expected_peak);
}

static void
test_map_max_concurrency (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);

  check_concurrency (rt, 1, 1);
  check_concurrency (rt, 2, 2);
  check_concurrency (rt, 3, 3);
  check_concurrency (rt, 0, 1);        /* 0 means 1 */
  check_concurrency (rt, -1, 4);       /* unset: all, within max-workers */
  check_concurrency (rt, 100, 4);      /* above max-workers */
}

static void
item_some_fail (DvtTask      *task,
                GCancellable *cancellable,
                gpointer      user_data,
                GError      **error)
{
  guint i = dvt_task_get_index (task);

  if (i % 3 == 0)
    g_set_error (error, TEST_ERROR, (int) i, "item %u failed ✗", i);
  else if (i % 3 == 1)
    dvt_task_return_new_error (task, TEST_ERROR, (int) i, "item %u failed ✗", i);
  else
    dvt_task_return_int (task, square_plus_one (i));
}

static void
check_return_errors (GArray *results,
                     guint   n)
{
  g_assert_nonnull (results);
  g_assert_cmpuint (results->len, ==, n);
  for (guint i = 0; i < n; i++)
    {
      GValue *v = &g_array_index (results, GValue, i);

      if (i % 3 == 2)
        {
          g_assert_true (G_VALUE_HOLDS_INT64 (v));
          g_assert_cmpint (g_value_get_int64 (v), ==, square_plus_one (i));
        }
      else
        {
          g_autofree char *message = g_strdup_printf ("item %u failed ✗", i);
          const GError *e;

          g_assert_true (G_VALUE_HOLDS (v, G_TYPE_ERROR));
          e = g_value_get_boxed (v);
          g_assert_error (e, TEST_ERROR, (int) i);
          g_assert_cmpstr (e->message, ==, message);
        }
    }
}

static void
test_map_return_errors (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;

  dvt_options_set_return_errors (options, TRUE);
  results = dvt_runtime_map_blocking (rt, 90, item_some_fail, NULL, NULL, options, NULL, &error);
  g_assert_no_error (error);
  check_return_errors (results, 90);
}

typedef struct
{
  guint fail_at;
  int   calls;
} FailAt;

static void
item_fail_at (DvtTask      *task,
              GCancellable *cancellable,
              gpointer      user_data,
              GError      **error)
{
  FailAt *fa = user_data;
  guint i = dvt_task_get_index (task);

  g_atomic_int_inc (&fa->calls);
  if (i == fa->fail_at)
    g_set_error (error, TEST_ERROR, 42, "item %u broke", i);
  else
    dvt_task_return_pointer (task, g_strdup_printf ("item %u", i), g_free);
}

static void
test_map_first_failure_sequential (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  GArray *results;
  FailAt fa = { 10, 0 };

  /* One at a time, in order: items after the failure never start. The
   * pointer results made before it are freed (valgrind checks). */
  dvt_options_set_max_concurrency (options, 1);
  results = dvt_runtime_map_blocking (rt, 100, item_fail_at, &fa, NULL, options, NULL, &error);
  g_assert_null (results);
  g_assert_error (error, TEST_ERROR, 42);
  g_assert_cmpstr (error->message, ==, "item 10 broke");
  g_assert_cmpint (g_atomic_int_get (&fa.calls), ==, 11);

  g_usleep (20000);
  g_assert_cmpint (g_atomic_int_get (&fa.calls), ==, 11);
}

typedef struct
{
  guint n_runners;
  int   started;
  int   finished;
  int   failed;
  int   calls_after_failure;
} RunningFinish;

static void
item_running_finish (DvtTask      *task,
                     GCancellable *cancellable,
                     gpointer      user_data,
                     GError      **error)
{
  RunningFinish *rf = user_data;
  guint i = dvt_task_get_index (task);

  if (g_atomic_int_get (&rf->failed))
    g_atomic_int_inc (&rf->calls_after_failure);
  g_atomic_int_inc (&rf->started);

  if (i == 0)
    {
      /* Fail once the other runners are each inside an item. */
      g_assert_true (POLL_UNTIL (g_atomic_int_get (&rf->started) >= (int) rf->n_runners, 20));
      dvt_task_return_new_error (task, TEST_ERROR, 1, "the first item failed");
      g_atomic_int_set (&rf->failed, 1);
      return;
    }

  /* Running items go on after the failure, and finish. */
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&rf->failed), 20));
  g_usleep (5000);
  dvt_task_return_pointer (task, g_strdup ("finished"), g_free);
  g_atomic_int_inc (&rf->finished);
}

static void
test_map_first_failure_running_finish (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  GArray *results;
  RunningFinish rf = { 4, 0, 0, 0, 0 };

  dvt_options_set_max_concurrency (options, 4);
  results = dvt_runtime_map_blocking (rt, 400, item_running_finish, &rf, NULL, options, NULL, &error);
  g_assert_null (results);
  g_assert_error (error, TEST_ERROR, 1);
  g_assert_cmpstr (error->message, ==, "the first item failed");

  /* The map returned once the running items had finished; none started
   * after the failure. */
  g_assert_cmpint (g_atomic_int_get (&rf.started), ==, 4);
  g_assert_cmpint (g_atomic_int_get (&rf.finished), ==, 3);
  g_assert_cmpint (g_atomic_int_get (&rf.calls_after_failure), ==, 0);
  g_usleep (20000);
  g_assert_cmpint (g_atomic_int_get (&rf.started), ==, 4);
}

/* Async items: each completes from a timeout on the context it runs on. */
typedef struct
{
  Flight        flight;
  GMainContext *expected_context;
  GThread      *expected_thread;
  int           wrong_place;
} AsyncItems;

typedef struct
{
  DvtTask    *task;
  AsyncItems *ai;
} AsyncItemData;

static gboolean
async_item_done (gpointer user_data)
{
  AsyncItemData *d = user_data;
  guint i = dvt_task_get_index (d->task);

  if (!g_main_context_is_owner (d->ai->expected_context))
    g_atomic_int_inc (&d->ai->wrong_place);
  flight_leave (&d->ai->flight);
  if (i % 11 == 10)
    dvt_task_return_new_error (d->task, TEST_ERROR, (int) i, "async item %u failed", i);
  else
    dvt_task_return_int (d->task, square_plus_one (i));
  g_object_unref (d->task);
  g_free (d);

  return G_SOURCE_REMOVE;
}

static void
item_async (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  AsyncItems *ai = user_data;
  AsyncItemData *d = g_new0 (AsyncItemData, 1);
  GSource *source;

  if (g_main_context_get_thread_default () != ai->expected_context ||
      (ai->expected_thread != NULL && g_thread_self () != ai->expected_thread))
    g_atomic_int_inc (&ai->wrong_place);

  flight_enter (&ai->flight);
  d->task = g_object_ref (task);
  d->ai = ai;
  source = g_timeout_source_new (1 + dvt_task_get_index (task) % 4);
  g_source_set_callback (source, async_item_done, d, NULL);
  g_source_attach (source, g_main_context_get_thread_default ());
  g_source_unref (source);
}

static void
check_async_map (DvtRuntime *rt,
                 AsyncItems *ai,
                 int         max_concurrency,
                 gboolean    caller_context,
                 guint       n,
                 int         expected_peak)
{
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;

  dvt_options_set_async_items (options, TRUE);
  dvt_options_set_return_errors (options, TRUE);
  dvt_options_set_max_concurrency (options, max_concurrency);
  dvt_options_set_use_caller_context (options, caller_context);

  results = dvt_runtime_map_blocking (rt, n, item_async, ai, NULL, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (results);
  g_assert_cmpuint (results->len, ==, n);
  for (guint i = 0; i < n; i++)
    {
      GValue *v = &g_array_index (results, GValue, i);

      if (i % 11 == 10)
        {
          g_assert_true (G_VALUE_HOLDS (v, G_TYPE_ERROR));
          g_assert_error ((GError *) g_value_get_boxed (v), TEST_ERROR, (int) i);
        }
      else
        g_assert_cmpint (g_value_get_int64 (v), ==, square_plus_one (i));
    }
  g_assert_cmpint (ai->flight.calls, ==, n);
  g_assert_cmpint (ai->wrong_place, ==, 0);
  g_assert_cmpint (ai->flight.in_flight, ==, 0);
  g_test_message ("async max-concurrency %d: peak %d", max_concurrency, ai->flight.peak);
  g_assert_cmpint (ai->flight.peak, <=, expected_peak);
}

static void
test_map_async_items (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  AsyncItems ai = { { 0 }, dvt_runtime_get_context (rt), NULL, 0 };

  /* Bounded concurrency, on the loop thread. */
  check_async_map (rt, &ai, 3, FALSE, 60, 3);
  g_assert_cmpint (ai.flight.peak, >=, 1);

  /* Unbounded: every item is started before any completes. */
  memset (&ai.flight, 0, sizeof ai.flight);
  check_async_map (rt, &ai, -1, FALSE, 50, 50);
  g_assert_cmpint (ai.flight.peak, ==, 50);

  /* 0 means 1. */
  memset (&ai.flight, 0, sizeof ai.flight);
  check_async_map (rt, &ai, 0, FALSE, 12, 1);
  g_assert_cmpint (ai.flight.peak, ==, 1);
}

static gpointer
async_items_caller_thread (gpointer data)
{
  DvtRuntime *rt = data;
  GMainContext *context = g_main_context_new ();
  AsyncItems ai = { { 0 }, context, g_thread_self (), 0 };

  g_main_context_push_thread_default (context);
  check_async_map (rt, &ai, 4, TRUE, 40, 4);
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);

  return NULL;
}

static void
test_map_async_items_caller_context (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);

  g_thread_join (g_thread_new ("map-caller", async_items_caller_thread, rt));
}

static void
item_async_forget (DvtTask      *task,
                   GCancellable *cancellable,
                   gpointer      user_data,
                   GError      **error)
{
  guint i = dvt_task_get_index (task);

  /* Odd items neither complete nor keep their task. */
  if (i % 2 == 0)
    dvt_task_return_int (task, i);
}

static void
test_map_async_items_not_completed (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;

  dvt_options_set_async_items (options, TRUE);
  dvt_options_set_return_errors (options, TRUE);
  results = dvt_runtime_map_blocking (rt, 10, item_async_forget, NULL, NULL, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (results);
  for (guint i = 0; i < 10; i++)
    {
      GValue *v = &g_array_index (results, GValue, i);

      if (i % 2 == 0)
        g_assert_cmpint (g_value_get_int64 (v), ==, i);
      else
        g_assert_error ((GError *) g_value_get_boxed (v), DVT_ERROR, DVT_ERROR_NOT_COMPLETED);
    }

  /* Without return-errors, the map fails with it. */
  g_clear_pointer (&results, g_array_unref);
  dvt_options_set_return_errors (options, FALSE);
  results = dvt_runtime_map_blocking (rt, 10, item_async_forget, NULL, NULL, options, NULL, &error);
  g_assert_null (results);
  g_assert_error (error, DVT_ERROR, DVT_ERROR_NOT_COMPLETED);
}

typedef struct
{
  DvtRuntime   *rt;
  GMainContext *context;
  GThread      *thread;
  GArray       *results;
  GError       *error;
  gboolean      done;
  gboolean      right_place;
  int           destroyed;
  GThread      *destroyed_on;
} MapAsync;

static void
map_async_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  MapAsync *ma = user_data;

  ma->right_place = g_thread_self () == ma->thread &&
                    g_main_context_get_thread_default () == ma->context &&
                    source == G_OBJECT (ma->rt) &&
                    g_async_result_is_tagged (result, dvt_runtime_map_async);
  ma->results = dvt_runtime_map_finish (ma->rt, result, &ma->error);
  ma->done = TRUE;
}

static void
map_async_destroy (gpointer data)
{
  MapAsync *ma = data;

  ma->destroyed_on = g_thread_self ();
  g_atomic_int_inc (&ma->destroyed);
}

static gpointer
map_async_thread (gpointer data)
{
  MapAsync *ma = data;

  ma->thread = g_thread_self ();
  ma->context = g_main_context_new ();
  g_main_context_push_thread_default (ma->context);

  dvt_runtime_map_async (ma->rt, 300, item_square, ma, map_async_destroy, NULL, NULL,
                         map_async_cb, ma);
  while (!ma->done)
    g_main_context_iteration (ma->context, TRUE);
  /* func_data is freed on this context, possibly after the callback. */
  g_assert_true (ITERATE_UNTIL (ma->context, g_atomic_int_get (&ma->destroyed) == 1, 20));

  g_main_context_pop_thread_default (ma->context);
  g_main_context_unref (ma->context);

  return NULL;
}

static void
test_map_async (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (3);
  MapAsync ma = { 0 };

  ma.rt = rt;
  g_thread_join (g_thread_new ("map-async", map_async_thread, &ma));
  g_assert_no_error (ma.error);
  g_assert_true (ma.right_place);
  assert_int_results (ma.results, 300, square_plus_one);
  g_array_unref (ma.results);

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (g_atomic_int_get (&ma.destroyed), ==, 1);
  g_assert_true (ma.destroyed_on == ma.thread);
}

/* The GJS shape: map_async with async items on the caller's context. */
typedef struct
{
  DvtRuntime   *rt;
  AsyncItems    ai;
  GArray       *results;
  GError       *error;
  gboolean      done;
  gboolean      right_place;
} MapAsyncItems;

static void
map_async_items_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  MapAsyncItems *m = user_data;

  m->right_place = g_thread_self () == m->ai.expected_thread;
  m->results = dvt_runtime_map_finish (m->rt, result, &m->error);
  m->done = TRUE;
}

static gpointer
map_async_items_thread (gpointer data)
{
  MapAsyncItems *m = data;
  g_autoptr(DvtOptions) options = dvt_options_new ();

  m->ai.expected_thread = g_thread_self ();
  m->ai.expected_context = g_main_context_new ();
  g_main_context_push_thread_default (m->ai.expected_context);

  dvt_options_set_async_items (options, TRUE);
  dvt_options_set_use_caller_context (options, TRUE);
  dvt_options_set_return_errors (options, TRUE);
  dvt_options_set_max_concurrency (options, 5);
  dvt_runtime_map_async (m->rt, 30, item_async, &m->ai, NULL, options, NULL,
                         map_async_items_cb, m);
  while (!m->done)
    g_main_context_iteration (m->ai.expected_context, TRUE);

  g_main_context_pop_thread_default (m->ai.expected_context);
  g_main_context_unref (m->ai.expected_context);

  return NULL;
}

static void
test_map_async_items_async (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  MapAsyncItems m = { 0 };

  m.rt = rt;
  g_thread_join (g_thread_new ("map-async-items", map_async_items_thread, &m));
  g_assert_no_error (m.error);
  g_assert_true (m.right_place);
  g_assert_cmpint (m.ai.wrong_place, ==, 0);
  g_assert_cmpint (m.ai.flight.calls, ==, 30);
  g_assert_cmpint (m.ai.flight.peak, <=, 5);
  g_assert_nonnull (m.results);
  g_assert_cmpuint (m.results->len, ==, 30);
  for (guint i = 0; i < 30; i++)
    {
      GValue *v = &g_array_index (m.results, GValue, i);

      if (i % 11 == 10)
        g_assert_error ((GError *) g_value_get_boxed (v), TEST_ERROR, (int) i);
      else
        g_assert_cmpint (g_value_get_int64 (v), ==, square_plus_one (i));
    }
  g_array_unref (m.results);
}

static void
map_invalid_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  GError **error = user_data;

  g_assert_null (dvt_runtime_map_finish (DVT_RUNTIME (source), result, error));
  g_assert_nonnull (*error);
}

static void
test_map_too_many (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  GError *async_error = NULL;

  g_assert_null (dvt_runtime_map_blocking (rt, G_MAXUINT, item_never, NULL, NULL, NULL, NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);

  dvt_runtime_map_async (rt, G_MAXUINT, item_never, NULL, NULL, NULL, NULL, map_invalid_cb,
                         &async_error);
  while (async_error == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (async_error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&async_error);
}

/* The largest map the size check accepts (G_MAXINT / 2 items) would need
 * 24 GiB of result slots: refused with an error, never an abort, and a map
 * whose cancellable is already cancelled allocates nothing. A refused
 * size once aborted the process, cancelled or not. */
static void
test_map_huge (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GCancellable) cancelled = g_cancellable_new ();
  GError *async_error = NULL;

  g_cancellable_cancel (cancelled);
  for (int with_cancelled = 0; with_cancelled < 2; with_cancelled++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_null (dvt_runtime_map_blocking (rt, G_MAXINT / 2, item_never, NULL, NULL, NULL,
                                               with_cancelled ? cancelled : NULL, &error));
      g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
      g_test_message ("%s", error->message);
    }

  dvt_runtime_map_async (rt, G_MAXINT / 2, item_never, NULL, NULL, NULL, NULL, map_invalid_cb,
                         &async_error);
  while (async_error == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (async_error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&async_error);

  /* 10 million items (240 MB of slots), cancelled before the start: ends at
   * once without allocating them. */
  {
    g_autoptr(GError) error = NULL;

    g_assert_null (dvt_runtime_map_blocking (rt, 10000000, item_never, NULL, NULL, NULL,
                                             cancelled, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  }
}

static gint64
inner_sum (guint i)
{
  gint64 sum = 0;

  for (guint j = 0; j < 10; j++)
    sum += square_plus_one (j) + i;
  return sum;
}

static void
item_inner (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  guint outer = GPOINTER_TO_UINT (user_data);

  dvt_task_return_int (task, square_plus_one (dvt_task_get_index (task)) + outer);
}

static void
item_nested (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  DvtRuntime *rt = user_data;
  guint i = dvt_task_get_index (task);
  g_autoptr(GArray) inner = NULL;
  gint64 sum = 0;

  inner = dvt_runtime_map_blocking (rt, 10, item_inner, GUINT_TO_POINTER (i), NULL, NULL, NULL, error);
  if (inner == NULL)
    return;
  for (guint j = 0; j < inner->len; j++)
    sum += g_value_get_int64 (&g_array_index (inner, GValue, j));
  dvt_task_return_int (task, sum);
}

static void
test_map_nested (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;

  /* More outer items than workers, each blocking on an inner map. */
  results = dvt_runtime_map_blocking (rt, 8, item_nested, rt, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  assert_int_results (results, 8, inner_sum);
}

typedef struct
{
  GCancellable *cancellable;
  int           calls;
  int           saw_cancelled;
} MapCancel;

static void
item_until_cancelled (DvtTask      *task,
                      GCancellable *cancellable,
                      gpointer      user_data,
                      GError      **error)
{
  MapCancel *mc = user_data;

  if (g_atomic_int_add (&mc->calls, 1) == 5)
    g_cancellable_cancel (mc->cancellable);
  if (cancellable != NULL && g_cancellable_is_cancelled (cancellable))
    g_atomic_int_inc (&mc->saw_cancelled);
  dvt_task_return_int (task, 1);
}

static void
test_map_cancel (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  GArray *results;
  MapCancel mc = { cancellable, 0, 0 };

  dvt_options_set_max_concurrency (options, 1);
  results = dvt_runtime_map_blocking (rt, 1000, item_until_cancelled, &mc, NULL, options,
                                      cancellable, &error);
  g_assert_null (results);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* The caller was released at once; the item that cancelled may still be
   * running: wait for the workers before looking at what it saw. */
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (g_atomic_int_get (&mc.saw_cancelled), >=, 1);
  g_assert_cmpint (g_atomic_int_get (&mc.calls), <, 1000);
}

/* Once a map call has returned, no item of it starts any more, however it
 * ended: cancelled from another thread, its deadline, or a shutdown that
 * cancels. Each runner may have taken its next item at the very instant
 * the map ended (it has then started, before the return): at most one per
 * worker. Looped, for the bulk path and for items run as tasks (a
 * timeout). */

typedef enum
{
  END_CANCEL,
  END_DEADLINE,
  END_SHUTDOWN,
  N_ENDS
} MapEnd;

typedef struct
{
  int calls;
} MapStarts;

static void
item_counted (DvtTask      *task,
              GCancellable *cancellable,
              gpointer      user_data,
              GError      **error)
{
  MapStarts *ms = user_data;

  g_atomic_int_inc (&ms->calls);
  g_usleep (200);
  dvt_task_return_int (task, 1);
}

typedef struct
{
  DvtRuntime   *rt;
  GCancellable *cancellable;
  MapEnd        end;
} Ender;

static gpointer
end_map_thread (gpointer data)
{
  Ender *e = data;

  g_usleep (20000);
  if (e->end == END_CANCEL)
    g_cancellable_cancel (e->cancellable);
  else
    dvt_runtime_shutdown (e->rt, FALSE, TRUE);

  return NULL;
}

static void
test_map_no_start_after_end (void)
{
  guint rounds = is_valgrind () ? 2 : 10;

  for (guint round = 0; round < rounds; round++)
    for (MapEnd end = 0; end < N_ENDS; end++)
      for (int item_tasks = 0; item_tasks < 2; item_tasks++)
        {
          g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
          g_autoptr(DvtOptions) options = dvt_options_new ();
          g_autoptr(GCancellable) cancellable = g_cancellable_new ();
          g_autoptr(GError) error = NULL;
          MapStarts ms = { 0 };
          Ender e = { rt, cancellable, end };
          GThread *ender = NULL;
          int at_return;

          if (item_tasks)
            dvt_options_set_timeout (options, 60);
          if (end == END_DEADLINE)
            dvt_options_set_deadline (options, 0.02);
          else
            ender = g_thread_new ("ender", end_map_thread, &e);

          g_assert_null (dvt_runtime_map_blocking (rt, 100000, item_counted, &ms, NULL,
                                                   options, cancellable, &error));
          at_return = g_atomic_int_get (&ms.calls);
          g_assert_true (error != NULL);
          g_assert_true (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
                         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
          g_clear_pointer (&ender, g_thread_join);

          /* Whatever still runs has ended by now. */
          dvt_runtime_shutdown (rt, TRUE, FALSE);
          g_assert_cmpint (g_atomic_int_get (&ms.calls), <=,
                           at_return + (int) dvt_runtime_get_max_workers (rt));
          g_assert_cmpint (g_atomic_int_get (&ms.calls), <, 100000);
        }
}

static void
item_pointer (DvtTask      *task,
              GCancellable *cancellable,
              gpointer      user_data,
              GError      **error)
{
  dvt_task_return_pointer (task, g_strdup_printf ("item-%u", dvt_task_get_index (task)),
                           g_free);
}

static void
test_map_pointer_results (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (3);
  g_autoptr(GError) error = NULL;
  GArray *results;

  results = dvt_runtime_map_blocking (rt, 100, item_pointer, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (results->len, ==, 100);
  for (guint i = 0; i < results->len; i++)
    {
      GValue *v = &g_array_index (results, GValue, i);
      g_autofree char *expected = g_strdup_printf ("item-%u", i);
      g_autofree char *p = g_value_get_pointer (v);

      g_assert_cmpstr (p, ==, expected);
    }
  g_array_unref (results);
}

/* ---- gather ------------------------------------------------------------ */

typedef enum
{
  G_INT,
  G_BOOL,
  G_STRING,
  G_POINTER,
  G_FAIL,
  G_GATED,
  G_GATED_FAIL,
  G_COUNT,
} GatherKind;

typedef struct
{
  Gate gate;
  int  calls;
  int  finished;
} GatherShared;

typedef struct
{
  GatherKind    kind;
  gint64        n;
  GatherShared *shared;
} GatherWork;

static void
work_gather (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  GatherWork *w = user_data;
  g_auto(GValue) v = G_VALUE_INIT;

  if (w->shared != NULL)
    g_atomic_int_inc (&w->shared->calls);

  switch (w->kind)
    {
    case G_INT:
      dvt_task_return_int (task, w->n);
      break;
    case G_BOOL:
      dvt_task_return_boolean (task, w->n != 0);
      break;
    case G_STRING:
      g_value_init (&v, G_TYPE_STRING);
      g_value_take_string (&v, g_strdup_printf ("string %" G_GINT64_FORMAT, w->n));
      dvt_task_return_value (task, &v);
      break;
    case G_POINTER:
      dvt_task_return_pointer (task, g_strdup_printf ("pointer %" G_GINT64_FORMAT, w->n), g_free);
      break;
    case G_FAIL:
      g_set_error (error, TEST_ERROR, (int) w->n, "gathered task %d failed", (int) w->n);
      break;
    case G_GATED:
      gate_wait (&w->shared->gate);
      dvt_task_return_int (task, w->n);
      g_atomic_int_inc (&w->shared->finished);
      break;
    case G_GATED_FAIL:
      /* Fails, then keeps its worker busy until the gate opens. */
      dvt_task_return_new_error (task, TEST_ERROR, (int) w->n, "gathered task %d failed",
                                 (int) w->n);
      gate_wait (&w->shared->gate);
      break;
    case G_COUNT:
      dvt_task_return_int (task, w->n);
      break;
    }
}

static DvtTask *
submit_gather_work (DvtRuntime   *rt,
                    GatherKind    kind,
                    gint64        n,
                    GatherShared *shared)
{
  g_autoptr(GError) error = NULL;
  GatherWork *w = g_new0 (GatherWork, 1);
  DvtTask *task;

  w->kind = kind;
  w->n = n;
  w->shared = shared;
  task = dvt_runtime_submit (rt, work_gather, w, g_free, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (task);

  return task;
}

static void
free_tasks (DvtTask **tasks,
            guint     n)
{
  for (guint i = 0; i < n; i++)
    g_object_unref (tasks[i]);
}

static void
test_gather_mixed (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (3);
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  DvtTask *tasks[8];
  GValue *v;

  for (guint i = 0; i < G_N_ELEMENTS (tasks); i += 4)
    {
      tasks[i] = submit_gather_work (rt, G_INT, G_GINT64_CONSTANT (1) << 40 | i, NULL);
      tasks[i + 1] = submit_gather_work (rt, G_BOOL, i % 8 == 0, NULL);
      tasks[i + 2] = submit_gather_work (rt, G_STRING, i, NULL);
      tasks[i + 3] = submit_gather_work (rt, G_POINTER, i, NULL);
    }
  /* Some have ended before the gather, some not. */
  g_assert_true (dvt_task_wait (tasks[0], 0, &error));

  results = dvt_runtime_gather_blocking (rt, tasks, G_N_ELEMENTS (tasks), NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (results);
  g_assert_cmpuint (results->len, ==, G_N_ELEMENTS (tasks));
  for (guint i = 0; i < G_N_ELEMENTS (tasks); i += 4)
    {
      g_autofree char *s = g_strdup_printf ("string %u", i);
      g_autofree char *p = g_strdup_printf ("pointer %u", i);

      v = &g_array_index (results, GValue, i);
      g_assert_true (G_VALUE_HOLDS_INT64 (v));
      g_assert_cmpint (g_value_get_int64 (v), ==, G_GINT64_CONSTANT (1) << 40 | i);
      v = &g_array_index (results, GValue, i + 1);
      g_assert_true (G_VALUE_HOLDS_BOOLEAN (v));
      g_assert_cmpint (g_value_get_boolean (v), ==, i % 8 == 0);
      v = &g_array_index (results, GValue, i + 2);
      g_assert_true (G_VALUE_HOLDS_STRING (v));
      g_assert_cmpstr (g_value_get_string (v), ==, s);
      v = &g_array_index (results, GValue, i + 3);
      g_assert_true (G_VALUE_HOLDS_POINTER (v));
      g_assert_cmpstr (g_value_get_pointer (v), ==, p);
      /* The pointer moved to the array: the caller frees it. */
      g_free (g_value_get_pointer (v));
    }

  free_tasks (tasks, G_N_ELEMENTS (tasks));
}

static void
test_gather_empty (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;

  results = dvt_runtime_gather_blocking (rt, NULL, 0, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (results);
  g_assert_cmpuint (results->len, ==, 0);
}

static void
work_gather_children (DvtTask      *task,
                      GCancellable *cancellable,
                      gpointer      user_data,
                      GError      **error)
{
  DvtRuntime *rt = user_data;
  DvtTask *children[3];
  g_autoptr(GArray) results = NULL;
  gint64 sum = 0;

  for (guint i = 0; i < G_N_ELEMENTS (children); i++)
    children[i] = submit_gather_work (rt, G_INT, 10 + i, NULL);

  results = dvt_runtime_gather_blocking (rt, children, G_N_ELEMENTS (children), NULL, NULL, error);
  free_tasks (children, G_N_ELEMENTS (children));
  if (results == NULL)
    return;

  for (guint i = 0; i < results->len; i++)
    sum += g_value_get_int64 (&g_array_index (results, GValue, i));
  dvt_task_return_int (task, sum);
}

static void
test_gather_nested (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  DvtTask *tasks[6];

  /* More gathering tasks than workers: each blocks on its children. */
  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    {
      tasks[i] = dvt_runtime_submit (rt, work_gather_children, rt, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
    }

  results = dvt_runtime_gather_blocking (rt, tasks, G_N_ELEMENTS (tasks), NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (results->len, ==, G_N_ELEMENTS (tasks));
  for (guint i = 0; i < results->len; i++)
    g_assert_cmpint (g_value_get_int64 (&g_array_index (results, GValue, i)), ==, 10 + 11 + 12);

  free_tasks (tasks, G_N_ELEMENTS (tasks));
}

static void
test_gather_return_errors (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  DvtTask *tasks[6];

  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    tasks[i] = submit_gather_work (rt, i % 2 ? G_FAIL : G_INT, i, NULL);

  dvt_options_set_return_errors (options, TRUE);
  results = dvt_runtime_gather_blocking (rt, tasks, G_N_ELEMENTS (tasks), options, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (results->len, ==, G_N_ELEMENTS (tasks));
  for (guint i = 0; i < results->len; i++)
    {
      GValue *v = &g_array_index (results, GValue, i);

      if (i % 2)
        {
          g_autofree char *message = g_strdup_printf ("gathered task %u failed", i);
          const GError *e = g_value_get_boxed (v);

          g_assert_true (G_VALUE_HOLDS (v, G_TYPE_ERROR));
          g_assert_error (e, TEST_ERROR, (int) i);
          g_assert_cmpstr (e->message, ==, message);
        }
      else
        g_assert_cmpint (g_value_get_int64 (v), ==, i);
    }

  free_tasks (tasks, G_N_ELEMENTS (tasks));
}

static void
test_gather_first_failure (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  GArray *results;
  GatherShared shared = { 0 };
  DvtTask *tasks[5];

  gate_init (&shared.gate);

  /* Worker 1: a long task; worker 2: a task that fails and then stays
   * busy; the rest are queued behind them. */
  tasks[0] = submit_gather_work (rt, G_GATED, 100, &shared);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&shared.calls) == 1, 20));
  tasks[1] = submit_gather_work (rt, G_GATED_FAIL, 7, &shared);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&shared.calls) == 2, 20));
  tasks[2] = submit_gather_work (rt, G_COUNT, 2, &shared);
  tasks[3] = submit_gather_work (rt, G_COUNT, 3, &shared);
  tasks[4] = submit_gather_work (rt, G_COUNT, 4, &shared);

  /* Reported as soon as it happens, while another task still runs. */
  results = dvt_runtime_gather_blocking (rt, tasks, G_N_ELEMENTS (tasks), NULL, NULL, &error);
  g_assert_null (results);
  g_assert_error (error, TEST_ERROR, 7);
  g_assert_cmpstr (error->message, ==, "gathered task 7 failed");

  /* Not-started tasks were cancelled; the running one goes on. */
  for (guint i = 2; i < G_N_ELEMENTS (tasks); i++)
    {
      g_autoptr(GError) task_error = NULL;

      g_assert_true (dvt_task_get_completed (tasks[i]));
      g_assert_false (dvt_task_propagate_boolean (tasks[i], &task_error));
      g_assert_error (task_error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    }
  g_assert_false (dvt_task_get_completed (tasks[0]));

  gate_open (&shared.gate);
  g_clear_error (&error);
  g_assert_true (dvt_task_wait (tasks[0], 0, &error));
  g_assert_cmpint (dvt_task_propagate_int (tasks[0], &error), ==, 100);
  g_assert_no_error (error);

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  /* The cancelled tasks never ran. */
  g_assert_cmpint (g_atomic_int_get (&shared.calls), ==, 2);

  free_tasks (tasks, G_N_ELEMENTS (tasks));
  gate_clear (&shared.gate);
}

typedef struct
{
  GCancellable *cancellable;
  GatherShared *shared;
  int           target;
} CancelLater;

static gpointer
cancel_when_running (gpointer data)
{
  CancelLater *cl = data;

  while (g_atomic_int_get (&cl->shared->calls) < cl->target)
    g_usleep (500);
  g_usleep (5000);
  g_cancellable_cancel (cl->cancellable);

  return NULL;
}

static void
test_gather_cancellable (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  GArray *results;
  GatherShared shared = { 0 };
  CancelLater cl = { cancellable, &shared, 2 };
  GThread *canceller;
  DvtTask *tasks[4];

  gate_init (&shared.gate);
  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    tasks[i] = submit_gather_work (rt, G_GATED, i, &shared);

  canceller = g_thread_new ("canceller", cancel_when_running, &cl);
  results = dvt_runtime_gather_blocking (rt, tasks, G_N_ELEMENTS (tasks), NULL, cancellable,
                                         &error);
  g_assert_null (results);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_thread_join (canceller);

  /* Every task that had not ended was cancelled. */
  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    {
      g_autoptr(GError) task_error = NULL;

      g_assert_true (dvt_task_get_completed (tasks[i]));
      g_assert_false (dvt_task_propagate_boolean (tasks[i], &task_error));
      g_assert_error (task_error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    }

  gate_open (&shared.gate);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (g_atomic_int_get (&shared.calls), ==, 2);
  g_assert_cmpint (g_atomic_int_get (&shared.finished), ==, 2);

  free_tasks (tasks, G_N_ELEMENTS (tasks));
  gate_clear (&shared.gate);
}

/* Progress events of a bulk map: emitted on the loop thread, counts that
 * never go back, the last one at the total. A runtime without a handler
 * records none, and its maps count nothing. */
typedef struct
{
  int   n_emissions;  /* atomic */
  guint last_done;
  guint total;
  int   went_back;
} Progress;

static void
on_progress (DvtRuntime *rt,
             DvtTask    *task,
             guint       done,
             guint       total,
             gpointer    data)
{
  Progress *p = data;

  if (done < p->last_done)
    p->went_back = TRUE;
  p->total = total;
  g_atomic_int_set (&p->last_done, done);  /* polled by the test */
  g_atomic_int_inc (&p->n_emissions);
}

static void
test_map_progress (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  g_autoptr(GArray) unwatched = NULL;
  Progress p = { 0 };
  guint n = 5000;
  gulong handler;

  handler = g_signal_connect (rt, "progress", G_CALLBACK (on_progress), &p);
  results = dvt_runtime_map_blocking (rt, n, item_square, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  assert_int_results (results, n, square_plus_one);
  /* Events are delivered on the loop thread after the call returns. */
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&p.n_emissions) > 0 &&
                            (guint) g_atomic_int_get (&p.last_done) == n, 20));
  g_assert_cmpuint (p.total, ==, n);
  g_assert_false (p.went_back);
  g_assert_cmpint (g_atomic_int_get (&p.n_emissions), <=, (int) n);

  /* Without a handler the map runs the same. */
  g_signal_handler_disconnect (rt, handler);
  unwatched = dvt_runtime_map_blocking (rt, n, item_square, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  assert_int_results (unwatched, n, square_plus_one);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
}

/* How many runners a binding may share a map's items among: as many as
 * the map's own runners would be, or none when each item must be a task
 * of its own. */
static void
set_timeout (DvtOptions *options)
{
  dvt_options_set_timeout (options, 10);
}

static void
set_retries (DvtOptions *options)
{
  dvt_options_set_retries (options, 1);
}

static void
add_gate (DvtOptions *options)
{
  g_autoptr(DvtSemaphore) semaphore = dvt_semaphore_new (1);

  dvt_options_add_gate (options, DVT_GATE (semaphore));
}

static void
set_async_items (DvtOptions *options)
{
  dvt_options_set_async_items (options, TRUE);
}

static void
set_use_caller_context (DvtOptions *options)
{
  dvt_options_set_use_caller_context (options, TRUE);
}

static void
set_deadline (DvtOptions *options)
{
  dvt_options_set_deadline (options, 10);
}

static void
set_return_errors (DvtOptions *options)
{
  dvt_options_set_return_errors (options, TRUE);
}

static void
set_max_concurrency_0 (DvtOptions *options)
{
  dvt_options_set_max_concurrency (options, 0);
}

static void
set_max_concurrency_2 (DvtOptions *options)
{
  dvt_options_set_max_concurrency (options, 2);
}

static void
set_max_concurrency_5 (DvtOptions *options)
{
  dvt_options_set_max_concurrency (options, 5);
}

static void
ignore_progress (DvtRuntime *rt,
                 DvtTask    *task,
                 guint       done,
                 guint       total,
                 gpointer    data)
{
}

static void
test_map_runners (void)
{
  static const struct
  {
    const char *what;
    void      (*set) (DvtOptions *options);
    guint       runners;  /* for 1000 items on 3 workers */
  } rows[] = {
    { "timeout",               set_timeout,            0 },
    { "retries",               set_retries,            0 },
    { "gate",                  add_gate,               0 },
    { "async-items",           set_async_items,        0 },
    { "use-caller-context",    set_use_caller_context, 0 },
    { "deadline (the map's)",  set_deadline,           3 },
    { "return-errors",         set_return_errors,      3 },
    { "max-concurrency 0",     set_max_concurrency_0,  1 },
    { "max-concurrency 2",     set_max_concurrency_2,  2 },
    { "max-concurrency 5",     set_max_concurrency_5,  3 },
  };
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (3);
  g_autoptr(DvtOptions) plain = dvt_options_new ();
  gulong handler;

  /* At most one per item, at most max-workers. */
  g_assert_cmpuint (dvt_runtime_get_map_runners (rt, 0, NULL), ==, 0);
  g_assert_cmpuint (dvt_runtime_get_map_runners (rt, 1, NULL), ==, 1);
  g_assert_cmpuint (dvt_runtime_get_map_runners (rt, 2, NULL), ==, 2);
  g_assert_cmpuint (dvt_runtime_get_map_runners (rt, 1000, NULL), ==, 3);
  g_assert_cmpuint (dvt_runtime_get_map_runners (rt, 1000, plain), ==, 3);

  for (guint i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      g_autoptr(DvtOptions) options = dvt_options_new ();

      g_test_message ("%s", rows[i].what);
      rows[i].set (options);
      g_assert_cmpuint (dvt_runtime_get_map_runners (rt, 1000, options), ==, rows[i].runners);
      g_assert_cmpuint (dvt_runtime_get_map_runners (rt, 0, options), ==, 0);
    }

  /* The runtime's own retries and rate limit apply to each item. */
  g_object_set (rt, "retries", 1, NULL);
  g_assert_cmpuint (dvt_runtime_get_map_runners (rt, 1000, NULL), ==, 0);
  g_object_set (rt, "retries", 0, NULL);
  g_assert_true (dvt_runtime_set_rate_limit (rt, 1000, 0, NULL));
  g_assert_cmpuint (dvt_runtime_get_map_runners (rt, 1000, NULL), ==, 0);
  dvt_runtime_clear_rate_limit (rt);
  g_assert_cmpuint (dvt_runtime_get_map_runners (rt, 1000, NULL), ==, 3);

  /* A progress handler counts items: it must see each of them end. A
   * blocked one sees nothing. */
  handler = g_signal_connect (rt, "progress", G_CALLBACK (ignore_progress), NULL);
  g_assert_cmpuint (dvt_runtime_get_map_runners (rt, 1000, NULL), ==, 0);
  g_signal_handler_block (rt, handler);
  g_assert_cmpuint (dvt_runtime_get_map_runners (rt, 1000, NULL), ==, 3);
  g_signal_handler_unblock (rt, handler);
  g_assert_cmpuint (dvt_runtime_get_map_runners (rt, 1000, NULL), ==, 0);
  g_signal_handler_disconnect (rt, handler);
  g_assert_cmpuint (dvt_runtime_get_map_runners (rt, 1000, NULL), ==, 3);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/map/order", test_map_order);
  g_test_add_func ("/map/progress", test_map_progress);
  g_test_add_func ("/map/empty", test_map_empty);
  g_test_add_func ("/map/many-items", test_map_many);
  g_test_add_func ("/map/max-concurrency", test_map_max_concurrency);
  g_test_add_func ("/map/return-errors", test_map_return_errors);
  g_test_add_func ("/map/first-failure/sequential", test_map_first_failure_sequential);
  g_test_add_func ("/map/first-failure/running-finish", test_map_first_failure_running_finish);
  g_test_add_func ("/map/async-items/loop", test_map_async_items);
  g_test_add_func ("/map/async-items/caller-context", test_map_async_items_caller_context);
  g_test_add_func ("/map/async-items/not-completed", test_map_async_items_not_completed);
  g_test_add_func ("/map/async", test_map_async);
  g_test_add_func ("/map/async/async-items", test_map_async_items_async);
  g_test_add_func ("/map/too-many-items", test_map_too_many);
  g_test_add_func ("/map/huge", test_map_huge);
  g_test_add_func ("/map/nested", test_map_nested);
  g_test_add_func ("/map/cancel", test_map_cancel);
  g_test_add_func ("/map/no-start-after-end", test_map_no_start_after_end);
  g_test_add_func ("/map/pointer-results", test_map_pointer_results);
  g_test_add_func ("/map/runners", test_map_runners);
  g_test_add_func ("/gather/mixed-types", test_gather_mixed);
  g_test_add_func ("/gather/empty", test_gather_empty);
  g_test_add_func ("/gather/nested", test_gather_nested);
  g_test_add_func ("/gather/return-errors", test_gather_return_errors);
  g_test_add_func ("/gather/first-failure", test_gather_first_failure);
  g_test_add_func ("/gather/cancellable", test_gather_cancellable);

  return g_test_run ();
}
