/* test-batcher.c: DvtBatcher, items from any thread run in batches
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"

#include <math.h>
#include <string.h>

/* What the batches saw. */
typedef struct
{
  GMutex     lock;
  GPtrArray *batches;     /* GArray of int, one per batch */
  gint64     sum;
  int        n;
  int        fail_on;     /* a batch holding this item fails; -1: none */
  int        fail_attempts; /* ...its first this many attempts */
  double     sleep;       /* seconds each batch takes, watching its cancellable */
  int        n_objects;   /* atomic: objects alive */
} Sink;

static void
sink_init (Sink *s)
{
  memset (s, 0, sizeof *s);
  g_mutex_init (&s->lock);
  s->batches = g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);
  s->fail_on = -1;
}

static void
sink_clear (Sink *s)
{
  g_ptr_array_unref (s->batches);
  g_mutex_clear (&s->lock);
}

static void
handle_batch (DvtTask       *task,
              GPtrArray     *items,
              GCancellable  *cancellable,
              gpointer       data,
              GError       **error)
{
  Sink *s = data;
  GArray *batch = g_array_new (FALSE, FALSE, sizeof (int));
  gboolean fail = FALSE;

  g_assert_cmpuint (items->len, >, 0);
  for (guint i = 0; i < items->len; i++)
    {
      const GValue *value = g_ptr_array_index (items, i);
      int v = G_VALUE_HOLDS_INT (value) ? g_value_get_int (value) : 0;

      g_array_append_val (batch, v);
      if (v == s->fail_on && (int) dvt_task_get_attempt (task) <= s->fail_attempts)
        fail = TRUE;
    }

  if (s->sleep > 0)
    {
      gint64 end = g_get_monotonic_time () + (gint64) (s->sleep * G_USEC_PER_SEC);

      while (g_get_monotonic_time () < end && !g_cancellable_is_cancelled (cancellable))
        g_usleep (1000);
    }

  if (fail)
    {
      g_array_unref (batch);
      g_set_error (error, TEST_ERROR, 3, "batch with %d failed", s->fail_on);
      return;
    }

  g_mutex_lock (&s->lock);
  for (guint i = 0; i < batch->len; i++)
    s->sum += g_array_index (batch, int, i);
  s->n += batch->len;
  g_ptr_array_add (s->batches, batch);
  g_mutex_unlock (&s->lock);
}

static DvtBatcher *
new_batcher (DvtRuntime *rt,
             Sink       *s,
             int         max_items,
             double      max_wait,
             DvtOptions *options)
{
  g_autoptr(GError) error = NULL;
  DvtBatcher *b = dvt_batcher_new (rt, handle_batch, s, NULL, max_items, max_wait,
                                   options, &error);

  g_assert_no_error (error);
  g_assert_nonnull (b);
  return b;
}

static void
add_int (DvtBatcher *b,
         int         v)
{
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  g_value_init (&value, G_TYPE_INT);
  g_value_set_int (&value, v);
  g_assert_true (dvt_batcher_add (b, &value, &error));
  g_assert_no_error (error);
}

static int
sink_n (Sink *s)
{
  int n;

  g_mutex_lock (&s->lock);
  n = s->n;
  g_mutex_unlock (&s->lock);
  return n;
}

/* ---- tests -------------------------------------------------------------------- */

static void
test_by_count (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtBatcher) b = NULL;
  g_autoptr(GError) error = NULL;
  Sink s;

  sink_init (&s);
  b = new_batcher (rt, &s, 10, 0, NULL);
  g_assert_cmpuint (dvt_batcher_get_max_items (b), ==, 10);
  g_assert_cmpfloat (dvt_batcher_get_max_wait (b), ==, 0);

  for (int i = 0; i < 35; i++)
    add_int (b, i);

  /* Three full batches go at once; five items wait (no time limit). */
  g_assert_true (POLL_UNTIL (sink_n (&s) == 30, 30));
  g_assert_cmpuint (dvt_batcher_get_n_pending (b), ==, 5);

  g_assert_true (dvt_batcher_close_blocking (b, 30 * slow, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (dvt_batcher_is_closed (b));
  g_assert_cmpuint (dvt_batcher_get_n_running (b), ==, 0);

  g_assert_cmpuint (s.batches->len, ==, 4);
  g_assert_cmpint (s.n, ==, 35);
  g_assert_cmpint (s.sum, ==, 34 * 35 / 2);
  for (guint i = 0; i < s.batches->len; i++)
    {
      GArray *batch = g_ptr_array_index (s.batches, i);

      /* Each batch holds its items in the order they were added. */
      g_assert_true (batch->len == 10 || batch->len == 5);
      for (guint k = 1; k < batch->len; k++)
        g_assert_cmpint (g_array_index (batch, int, k), ==, g_array_index (batch, int, k - 1) + 1);
    }

  /* Closed: adds fail. */
  {
    g_auto(GValue) value = G_VALUE_INIT;

    g_value_init (&value, G_TYPE_INT);
    g_assert_false (dvt_batcher_add (b, &value, &error));
    g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
    g_clear_error (&error);
  }
  /* Closing again waits again. */
  g_assert_true (dvt_batcher_close_blocking (b, 0, NULL, &error));
  sink_clear (&s);
}

static void
test_by_time (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtBatcher) b = NULL;
  g_autoptr(GError) error = NULL;
  Sink s;

  sink_init (&s);
  b = new_batcher (rt, &s, 1000, 0.05, NULL);
  for (int i = 0; i < 3; i++)
    add_int (b, i);

  /* Not full: the batch goes once its first item has waited max-wait. */
  g_assert_true (POLL_UNTIL (sink_n (&s) == 3, 30));
  g_assert_cmpuint (dvt_batcher_get_n_pending (b), ==, 0);
  g_assert_cmpuint (s.batches->len, ==, 1);

  /* A second batch gets a timer of its own. */
  add_int (b, 3);
  g_assert_true (POLL_UNTIL (sink_n (&s) == 4, 30));

  g_assert_true (dvt_batcher_close_blocking (b, 30 * slow, NULL, &error));
  g_assert_cmpuint (s.batches->len, ==, 2);
  sink_clear (&s);
}

static void
test_flush (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtBatcher) b = NULL;
  g_autoptr(DvtTask) task = NULL;
  g_autoptr(GError) error = NULL;
  Sink s;

  sink_init (&s);
  b = new_batcher (rt, &s, 100, 0, NULL);
  g_assert_null (dvt_batcher_flush (b));

  add_int (b, 1);
  add_int (b, 2);
  task = dvt_batcher_flush (b);
  g_assert_nonnull (task);
  g_assert_true (dvt_task_wait (task, 30 * slow, &error));
  g_assert_true (dvt_task_propagate_boolean (task, &error));
  g_assert_no_error (error);
  g_assert_cmpint (sink_n (&s), ==, 2);
  g_assert_cmpuint (dvt_batcher_get_n_pending (b), ==, 0);

  g_assert_true (dvt_batcher_close_blocking (b, 30 * slow, NULL, &error));
  g_assert_cmpuint (s.batches->len, ==, 1);
  sink_clear (&s);
}

static void
test_failure (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtBatcher) b = NULL;
  g_autoptr(GError) error = NULL;
  Sink s;

  sink_init (&s);
  s.fail_on = 12;
  s.fail_attempts = 100;
  b = new_batcher (rt, &s, 5, 0, NULL);
  for (int i = 0; i < 23; i++)
    add_int (b, i);

  /* Close reports the failed batch; the others ran. */
  g_assert_false (dvt_batcher_close_blocking (b, 30 * slow, NULL, &error));
  g_assert_error (error, TEST_ERROR, 3);
  g_assert_cmpint (s.n, ==, 18);
  sink_clear (&s);
}

static void
test_retries (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(DvtBatcher) b = NULL;
  g_autoptr(GError) error = NULL;
  Sink s;

  /* The batch's options apply: a retry calls the function again with
   * the same items. */
  sink_init (&s);
  s.fail_on = 2;
  s.fail_attempts = 1;
  dvt_options_set_retries (options, 2);
  dvt_options_set_retry_backoff (options, 0.001);
  b = new_batcher (rt, &s, 4, 0, options);
  for (int i = 0; i < 8; i++)
    add_int (b, i);
  g_assert_true (dvt_batcher_close_blocking (b, 30 * slow, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (s.n, ==, 8);
  g_assert_cmpint (s.sum, ==, 28);
  sink_clear (&s);
}

static void
on_batch_finished (DvtRuntime *runtime,
                   DvtTask    *task,
                   double      elapsed,
                   gpointer    user_data)
{
  g_atomic_int_inc ((int *) user_data);
}

static void
test_signals (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(DvtBatcher) b = NULL;
  g_autoptr(GError) error = NULL;
  int n_finished = 0;
  Sink s;

  /* Each batch is a task of the runtime, named by the options: the
   * runtime's signals see it. */
  sink_init (&s);
  g_signal_connect (rt, "finished::store-batch", G_CALLBACK (on_batch_finished), &n_finished);
  dvt_options_set_name (options, "store-batch");
  b = new_batcher (rt, &s, 5, 0, options);
  for (int i = 0; i < 12; i++)
    add_int (b, i);
  g_assert_true (dvt_batcher_close_blocking (b, 30 * slow, NULL, &error));
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&n_finished) == 3, 30));
  g_signal_handlers_disconnect_by_data (rt, &n_finished);
  sink_clear (&s);
}

static void
test_timeout_option (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(DvtBatcher) b = NULL;
  g_autoptr(GError) error = NULL;
  Sink s;

  sink_init (&s);
  s.sleep = 30;
  dvt_options_set_timeout (options, 0.1);
  b = new_batcher (rt, &s, 2, 0, options);
  add_int (b, 1);
  add_int (b, 2);
  g_assert_false (dvt_batcher_close_blocking (b, 30 * slow, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  sink_clear (&s);
}

static void
on_closed (GObject      *source,
           GAsyncResult *result,
           gpointer      data)
{
  GError **error = data;

  if (!dvt_batcher_close_finish (DVT_BATCHER (source), result, error))
    g_assert_nonnull (*error);
  else
    *error = g_error_new_literal (TEST_ERROR, 0, "ok");
}

static void
test_close_async (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(DvtBatcher) b = NULL;
  GError *result = NULL;
  GError *cancelled = NULL;
  Sink s;

  g_main_context_push_thread_default (context);
  sink_init (&s);
  s.sleep = 0.05;
  b = new_batcher (rt, &s, 3, 0, NULL);
  for (int i = 0; i < 7; i++)
    add_int (b, i);

  /* A cancelled wait ends alone; the other sees every batch end. */
  dvt_batcher_close_async (b, cancellable, on_closed, &cancelled);
  dvt_batcher_close_async (b, NULL, on_closed, &result);
  g_cancellable_cancel (cancellable);
  g_assert_true (ITERATE_UNTIL (context, result != NULL && cancelled != NULL, 30));
  g_assert_error (result, TEST_ERROR, 0);
  g_assert_true (g_error_matches (cancelled, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
                 g_error_matches (cancelled, TEST_ERROR, 0));
  g_assert_cmpint (s.n, ==, 7);
  g_clear_error (&result);
  g_clear_error (&cancelled);

  /* Closed and idle: the callback still comes from the loop. */
  dvt_batcher_close_async (b, NULL, on_closed, &result);
  g_assert_null (result);
  g_assert_true (ITERATE_UNTIL (context, result != NULL, 30));
  g_assert_error (result, TEST_ERROR, 0);
  g_clear_error (&result);

  g_main_context_pop_thread_default (context);
  sink_clear (&s);
}

static void
object_gone (gpointer data,
             GObject *where)
{
  g_atomic_int_add ((int *) data, -1);
}

static void
test_shutdown (void)
{
  DvtRuntime *rt = dvt_runtime_new (2);
  g_autoptr(DvtBatcher) b = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  int n_objects = 0;
  Sink s;

  sink_init (&s);
  b = new_batcher (rt, &s, 100, 0, NULL);
  for (int i = 0; i < 5; i++)
    {
      GObject *object = g_object_new (G_TYPE_OBJECT, NULL);

      g_atomic_int_inc (&n_objects);
      g_object_weak_ref (object, object_gone, &n_objects);
      g_value_init (&value, G_TYPE_OBJECT);
      g_value_take_object (&value, object);
      g_assert_true (dvt_batcher_add (b, &value, &error));
      g_value_unset (&value);
    }

  /* The pending items are freed; adds fail; close reports the loss. */
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (g_atomic_int_get (&n_objects), ==, 0);
  g_assert_cmpuint (dvt_batcher_get_n_pending (b), ==, 0);
  g_assert_true (dvt_batcher_is_closed (b));
  g_value_init (&value, G_TYPE_INT);
  g_assert_false (dvt_batcher_add (b, &value, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_false (dvt_batcher_close_blocking (b, 0, NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_cmpint (s.n, ==, 0);

  /* A batcher of a runtime shut down cannot be made. */
  g_assert_null (dvt_batcher_new (rt, handle_batch, &s, NULL, 1, 0, NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);

  g_object_unref (rt);
  sink_clear (&s);
}

static void
test_shutdown_running (void)
{
  DvtRuntime *rt = dvt_runtime_new (2);
  g_autoptr(DvtBatcher) b = NULL;
  g_autoptr(GError) error = NULL;
  Sink s;

  /* A batch that waits on its cancellable, and a closer waiting for it:
   * a shutdown that cancels ends both. */
  sink_init (&s);
  s.sleep = 60;
  b = new_batcher (rt, &s, 1, 0, NULL);
  add_int (b, 1);
  g_assert_true (POLL_UNTIL (dvt_batcher_get_n_running (b) == 1, 30));
  dvt_runtime_shutdown (rt, FALSE, TRUE);
  g_assert_false (dvt_batcher_close_blocking (b, 30 * slow, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  dvt_runtime_shutdown (rt, TRUE, TRUE);
  g_object_unref (rt);
  sink_clear (&s);
}

typedef struct
{
  DvtBatcher *batcher;
  int         first;
  int         n;
  int         added;     /* adds that succeeded */
  gint64      sum;
} Adder;

static gpointer
adder_main (gpointer data)
{
  Adder *a = data;
  g_auto(GValue) value = G_VALUE_INIT;

  g_value_init (&value, G_TYPE_INT);
  for (int i = 0; i < a->n; i++)
    {
      g_autoptr(GError) error = NULL;

      g_value_set_int (&value, a->first + i);
      if (!dvt_batcher_add (a->batcher, &value, &error))
        {
          g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
          break;
        }
      a->added++;
      a->sum += a->first + i;
    }
  return NULL;
}

static void
test_stress (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtBatcher) b = NULL;
  g_autoptr(GError) error = NULL;
  int per_thread = is_valgrind () ? 2000 : 50000;
  Adder adders[4];
  GThread *threads[4];
  Sink s;

  sink_init (&s);
  b = new_batcher (rt, &s, 64, 0.001, NULL);
  for (int i = 0; i < 4; i++)
    {
      adders[i] = (Adder) { b, i * per_thread, per_thread, 0, 0 };
      threads[i] = g_thread_new ("adder", adder_main, &adders[i]);
    }
  for (int i = 0; i < 4; i++)
    g_thread_join (threads[i]);

  g_assert_true (dvt_batcher_close_blocking (b, 60 * slow, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (s.n, ==, 4 * per_thread);
  g_assert_cmpint (s.sum, ==, (gint64) 4 * per_thread * (4 * per_thread - 1) / 2);
  for (guint i = 0; i < s.batches->len; i++)
    g_assert_cmpuint (((GArray *) g_ptr_array_index (s.batches, i))->len, <=, 64);
  sink_clear (&s);
}

static void
test_close_race (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  int rounds = is_valgrind () ? 10 : 100;
  /* Valgrind runs one thread at a time and may not switch to the closer
   * for a long while: adders without a bound then fill the memory. */
  int per_adder = is_valgrind () ? 20000 : 1000000;

  /* Adds racing a close: each add either fails with DVT_ERROR_CLOSED or
   * reaches a batch. */
  for (int round = 0; round < rounds; round++)
    {
      g_autoptr(DvtBatcher) b = NULL;
      g_autoptr(GError) error = NULL;
      Adder adders[2];
      GThread *threads[2];
      gint64 sum = 0;
      int added = 0;
      Sink s;

      sink_init (&s);
      b = new_batcher (rt, &s, 1 + round % 7, 0.0005, NULL);
      for (int i = 0; i < 2; i++)
        {
          adders[i] = (Adder) { b, i * per_adder, per_adder, 0, 0 };
          threads[i] = g_thread_new ("adder", adder_main, &adders[i]);
        }
      g_usleep (g_random_int_range (0, 2000));
      g_assert_true (dvt_batcher_close_blocking (b, 60 * slow, NULL, &error));
      for (int i = 0; i < 2; i++)
        {
          g_thread_join (threads[i]);
          added += adders[i].added;
          sum += adders[i].sum;
        }
      g_assert_cmpint (s.n, ==, added);
      g_assert_cmpint (s.sum, ==, sum);
      sink_clear (&s);
    }
}

/* A closer that is itself a worker of a one-worker runtime: its wait
 * lets the runtime start another worker for the batches. */
static void
close_on_worker (DvtTask       *task,
                 GCancellable  *cancellable,
                 gpointer       data,
                 GError       **error)
{
  DvtRuntime *rt = dvt_task_get_runtime (task);
  g_autoptr(DvtBatcher) b = new_batcher (rt, data, 3, 0, NULL);

  for (int i = 0; i < 10; i++)
    add_int (b, i);
  if (dvt_batcher_close_blocking (b, 30 * slow, NULL, error))
    dvt_task_return_boolean (task, TRUE);
}

static void
test_close_on_worker (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(GError) error = NULL;
  Sink s;

  sink_init (&s);
  g_assert_true (dvt_runtime_to_thread_blocking (rt, close_on_worker, &s, NULL, NULL, NULL,
                                                 NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (s.n, ==, 10);
  sink_clear (&s);
}

static void
loop_close (DvtTask       *task,
            GCancellable  *cancellable,
            gpointer       data,
            GError       **error)
{
  dvt_batcher_close_blocking (data, 0, NULL, error);
}

static void
test_bad_input (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(DvtBatcher) b = NULL;
  g_autoptr(GError) error = NULL;
  const struct { int max_items; double max_wait; } bad[] = {
    { 0, 0 }, { -1, 0 }, { 1, -0.5 }, { 1, NAN }, { 5, -INFINITY },
  };
  Sink s;

  sink_init (&s);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_assert_null (dvt_batcher_new (rt, handle_batch, &s, NULL, bad[i].max_items,
                                      bad[i].max_wait, NULL, &error));
      g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);
    }

  /* Infinity is no limit. */
  b = new_batcher (rt, &s, 1, INFINITY, NULL);
  g_assert_cmpfloat (dvt_batcher_get_max_wait (b), ==, 0);

  /* A blocking close on the runtime's loop thread fails at once. */
  g_assert_false (dvt_runtime_run_blocking (rt, loop_close, b, NULL, NULL, NULL, NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_WOULD_DEADLOCK);
  g_clear_error (&error);
  g_assert_true (dvt_batcher_close_blocking (b, 30 * slow, NULL, &error));
  sink_clear (&s);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/batcher/by-count", test_by_count);
  g_test_add_func ("/batcher/by-time", test_by_time);
  g_test_add_func ("/batcher/flush", test_flush);
  g_test_add_func ("/batcher/failure", test_failure);
  g_test_add_func ("/batcher/retries", test_retries);
  g_test_add_func ("/batcher/signals", test_signals);
  g_test_add_func ("/batcher/timeout-option", test_timeout_option);
  g_test_add_func ("/batcher/close-async", test_close_async);
  g_test_add_func ("/batcher/shutdown", test_shutdown);
  g_test_add_func ("/batcher/shutdown-running", test_shutdown_running);
  g_test_add_func ("/batcher/stress", test_stress);
  g_test_add_func ("/batcher/close-race", test_close_race);
  g_test_add_func ("/batcher/close-on-worker", test_close_on_worker);
  g_test_add_func ("/batcher/bad-input", test_bad_input);

  return g_test_run ();
}
