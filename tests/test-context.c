/* test-context.c: DvtContext, the request context that follows the work
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"

#include <string.h>

#define KEY "request-id"

static const char *
current_id (void)
{
  return dvt_context_get_string (dvt_context_get_current (), KEY);
}

static void
return_string (DvtTask    *task,
               const char *string)
{
  g_auto(GValue) v = G_VALUE_INIT;

  g_value_init (&v, G_TYPE_STRING);
  g_value_set_string (&v, string);
  dvt_task_return_value (task, &v);
}

/* ---- values ---------------------------------------------------------------- */

static void
test_values (void)
{
  g_autoptr(DvtContext) empty = dvt_context_new ();
  g_autoptr(DvtContext) one = dvt_context_with_string (empty, KEY, "r1");
  g_autoptr(DvtContext) two = NULL;
  g_autoptr(DvtContext) replaced = NULL;
  g_auto(GValue) v = G_VALUE_INIT;
  g_auto(GValue) out = G_VALUE_INIT;
  g_auto(GStrv) keys = NULL;

  g_value_init (&v, G_TYPE_INT);
  g_value_set_int (&v, 42);
  two = dvt_context_with (one, "user", &v);
  replaced = dvt_context_with_string (two, KEY, "r2");

  /* Immutable: each with makes a new context. */
  g_assert_null (dvt_context_get_string (empty, KEY));
  g_assert_cmpstr (dvt_context_get_string (one, KEY), ==, "r1");
  g_assert_cmpstr (dvt_context_get_string (two, KEY), ==, "r1");
  g_assert_cmpstr (dvt_context_get_string (replaced, KEY), ==, "r2");

  g_assert_true (dvt_context_lookup (two, "user", &out));
  g_assert_cmpint (g_value_get_int (&out), ==, 42);
  g_value_unset (&out);
  g_assert_false (dvt_context_lookup (one, "user", NULL));
  g_assert_false (dvt_context_lookup (NULL, "user", NULL));
  /* Not a string: no string. */
  g_assert_null (dvt_context_get_string (two, "user"));

  keys = dvt_context_get_keys (replaced);
  g_assert_cmpuint (g_strv_length (keys), ==, 2);
  g_assert_true (g_strv_contains ((const char * const *) keys, KEY));
  g_assert_true (g_strv_contains ((const char * const *) keys, "user"));
  g_strfreev (g_steal_pointer (&keys));
  keys = dvt_context_get_keys (NULL);
  g_assert_cmpuint (g_strv_length (keys), ==, 0);

  /* A boxed type, for bindings and properties. */
  g_assert_true (G_TYPE_IS_BOXED (DVT_TYPE_CONTEXT));
}

static void
test_push_pop (void)
{
  g_autoptr(DvtContext) base = dvt_context_new ();
  g_autoptr(DvtContext) a = dvt_context_with_string (base, KEY, "a");
  g_autoptr(DvtContext) b = dvt_context_with_string (base, KEY, "b");

  g_assert_null (dvt_context_get_current ());
  dvt_context_push (a);
  g_assert_true (dvt_context_get_current () == a);
  dvt_context_push (b);
  g_assert_cmpstr (current_id (), ==, "b");
  dvt_context_pop (b);
  g_assert_cmpstr (current_id (), ==, "a");
  dvt_context_pop (a);
  g_assert_null (dvt_context_get_current ());
}

static void
record_id (gpointer user_data)
{
  *(char **) user_data = g_strdup (current_id ());
}

static gpointer
thread_in_context (gpointer data)
{
  DvtContext *captured = data;
  char *seen = NULL;

  /* A new thread starts with none. */
  g_assert_null (dvt_context_get_current ());
  dvt_context_run (captured, record_id, &seen);
  g_assert_null (dvt_context_get_current ());

  return seen;
}

static void
test_capture_run (void)
{
  g_autoptr(DvtContext) base = dvt_context_new ();
  g_autoptr(DvtContext) a = dvt_context_with_string (base, KEY, "captured");
  g_autoptr(DvtContext) captured = NULL;
  GThread *thread;
  char *seen;

  g_assert_null (dvt_context_capture ());
  dvt_context_push (a);
  captured = dvt_context_capture ();
  dvt_context_pop (a);

  thread = g_thread_new ("capture", thread_in_context, captured);
  seen = g_thread_join (thread);
  g_assert_cmpstr (seen, ==, "captured");
  g_free (seen);
}

/* A thread that exits with contexts pushed frees them (valgrind sees). */
static gpointer
thread_leaves_pushed (gpointer data)
{
  g_autoptr(DvtContext) base = dvt_context_new ();
  g_autoptr(DvtContext) a = dvt_context_with_string (base, KEY, "a");
  g_autoptr(DvtContext) b = dvt_context_with_string (base, KEY, "b");

  dvt_context_push (a);
  dvt_context_push (b);
  return NULL;
}

static void
test_thread_exit_pushed (void)
{
  g_thread_join (g_thread_new ("pushed", thread_leaves_pushed, NULL));
}

/* ---- following the work ------------------------------------------------------ */

static void
work_return_id (DvtTask      *task,
                GCancellable *cancellable,
                gpointer      user_data,
                GError      **error)
{
  return_string (task, current_id ());
}

typedef struct
{
  char         *callback_id;
  GAsyncResult *result;
} Done;

static void
on_done (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Done *done = user_data;

  done->callback_id = g_strdup (current_id ());
  done->result = g_object_ref (result);
}

static void
test_to_thread (void)
{
  g_autoptr(DvtTestRuntime) runtime = dvt_runtime_new (2);
  g_autoptr(DvtContext) base = dvt_context_new ();
  g_autoptr(DvtContext) a = dvt_context_with_string (base, KEY, "async");
  g_autoptr(DvtContext) b = dvt_context_with_string (base, KEY, "blocking");
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;
  Done done = { NULL, NULL };

  dvt_context_push (a);
  dvt_runtime_to_thread_async (runtime, work_return_id, NULL, NULL, NULL, NULL,
                               on_done, &done);
  dvt_context_pop (a);

  /* The callback runs in the submitter's context, wherever it is
   * dispatched: here, with none current. */
  g_assert_true (ITERATE_UNTIL (NULL, done.result != NULL, 30));
  g_assert_cmpstr (done.callback_id, ==, "async");
  g_assert_true (dvt_runtime_to_thread_finish (runtime, done.result, &value, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (g_value_get_string (&value), ==, "async");
  g_value_unset (&value);
  g_assert_null (dvt_context_get_current ());

  dvt_context_push (b);
  g_assert_true (dvt_runtime_to_thread_blocking (runtime, work_return_id, NULL, NULL,
                                                 NULL, NULL, &value, &error));
  dvt_context_pop (b);
  g_assert_no_error (error);
  g_assert_cmpstr (g_value_get_string (&value), ==, "blocking");
  g_value_unset (&value);

  /* No context: the worker that ran "blocking" has none left over. */
  for (int i = 0; i < 8; i++)
    {
      g_assert_true (dvt_runtime_to_thread_blocking (runtime, work_return_id, NULL, NULL,
                                                     NULL, NULL, &value, &error));
      g_assert_null (g_value_get_string (&value));
      g_value_unset (&value);
    }

  g_clear_object (&done.result);
  g_free (done.callback_id);
}

/* Work submitted by work sees the context of the first submission. */
static void
work_nested (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  DvtRuntime *runtime = user_data;
  g_auto(GValue) inner = G_VALUE_INIT;

  if (dvt_runtime_to_thread_blocking (runtime, work_return_id, NULL, NULL, NULL,
                                      cancellable, &inner, error))
    return_string (task, g_value_get_string (&inner));
}

static void
test_nested (void)
{
  g_autoptr(DvtTestRuntime) runtime = dvt_runtime_new (2);
  g_autoptr(DvtContext) base = dvt_context_new ();
  g_autoptr(DvtContext) a = dvt_context_with_string (base, KEY, "outer");
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  dvt_context_push (a);
  g_assert_true (dvt_runtime_to_thread_blocking (runtime, work_nested, runtime, NULL,
                                                 NULL, NULL, &value, &error));
  dvt_context_pop (a);
  g_assert_no_error (error);
  g_assert_cmpstr (g_value_get_string (&value), ==, "outer");
}

static void
async_return_id (DvtTask      *task,
                 GCancellable *cancellable,
                 gpointer      user_data,
                 GError      **error)
{
  return_string (task, current_id ());
}

static void
test_run_blocking (void)
{
  g_autoptr(DvtTestRuntime) runtime = dvt_runtime_new (2);
  g_autoptr(DvtContext) base = dvt_context_new ();
  g_autoptr(DvtContext) a = dvt_context_with_string (base, KEY, "loop");
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  dvt_context_push (a);
  g_assert_true (dvt_runtime_run_blocking (runtime, async_return_id, NULL, NULL,
                                           NULL, NULL, &value, &error));
  dvt_context_pop (a);
  g_assert_no_error (error);
  g_assert_cmpstr (g_value_get_string (&value), ==, "loop");
}

static void
map_item_id (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  const char *id = current_id ();

  dvt_task_return_int (task, id != NULL && strcmp (id, "map") == 0);
}

static void
test_map (void)
{
  g_autoptr(DvtTestRuntime) runtime = dvt_runtime_new (2);
  g_autoptr(DvtContext) base = dvt_context_new ();
  g_autoptr(DvtContext) a = dvt_context_with_string (base, KEY, "map");
  g_autoptr(GArray) results = NULL;
  g_autoptr(GError) error = NULL;

  dvt_context_push (a);
  results = dvt_runtime_map_blocking (runtime, 500, map_item_id, NULL, NULL, NULL,
                                      NULL, &error);
  dvt_context_pop (a);
  g_assert_no_error (error);
  g_assert_cmpuint (results->len, ==, 500);
  for (guint i = 0; i < results->len; i++)
    g_assert_cmpint (g_value_get_int64 (&g_array_index (results, GValue, i)), ==, 1);
}

/* Async items start on the loop thread; items with a timeout each are
 * tasks of their own: both see the map's context. */
static void
test_map_modes (gconstpointer data)
{
  g_autoptr(DvtTestRuntime) runtime = dvt_runtime_new (2);
  g_autoptr(DvtContext) base = dvt_context_new ();
  g_autoptr(DvtContext) a = dvt_context_with_string (base, KEY, "map");
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GArray) results = NULL;
  g_autoptr(GError) error = NULL;

  if (g_str_equal (data, "async"))
    dvt_options_set_async_items (options, TRUE);
  else
    dvt_options_set_timeout (options, 60);
  dvt_context_push (a);
  results = dvt_runtime_map_blocking (runtime, 100, map_item_id, NULL, NULL, options,
                                      NULL, &error);
  dvt_context_pop (a);
  g_assert_no_error (error);
  g_assert_cmpuint (results->len, ==, 100);
  for (guint i = 0; i < results->len; i++)
    g_assert_cmpint (g_value_get_int64 (&g_array_index (results, GValue, i)), ==, 1);
  g_assert_null (dvt_context_get_current ());
}

typedef struct
{
  int   attempts;
  int   seen;   /* attempts that saw the context */
} Retry;

static void
work_fail_twice (DvtTask      *task,
                 GCancellable *cancellable,
                 gpointer      user_data,
                 GError      **error)
{
  Retry *retry = user_data;
  const char *id = current_id ();

  if (id != NULL && strcmp (id, "retry") == 0)
    g_atomic_int_inc (&retry->seen);
  if (g_atomic_int_add (&retry->attempts, 1) < 2)
    g_set_error (error, TEST_ERROR, 1, "not yet");
  else
    dvt_task_return_int (task, 1);
}

static void
test_retries (void)
{
  g_autoptr(DvtTestRuntime) runtime = dvt_runtime_new (2);
  g_autoptr(DvtContext) base = dvt_context_new ();
  g_autoptr(DvtContext) a = dvt_context_with_string (base, KEY, "retry");
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;
  Retry retry = { 0, 0 };

  dvt_options_set_retries (options, 3);
  dvt_options_set_retry_backoff (options, 0.001);
  dvt_context_push (a);
  g_assert_true (dvt_runtime_to_thread_blocking (runtime, work_fail_twice, &retry, NULL,
                                                 options, NULL, &value, &error));
  dvt_context_pop (a);
  g_assert_no_error (error);
  g_assert_cmpint (retry.attempts, ==, 3);
  g_assert_cmpint (retry.seen, ==, 3);
}

/* Many submitters, each with its own context, none sees another's. */
typedef struct
{
  DvtRuntime *runtime;
  int         index;
  int         wrong;
} Submitter;

static void
work_check_id (DvtTask      *task,
               GCancellable *cancellable,
               gpointer      user_data,
               GError      **error)
{
  return_string (task, current_id ());
}

static gpointer
submitter_thread (gpointer data)
{
  Submitter *s = data;
  g_autoptr(DvtContext) base = dvt_context_new ();
  g_autofree char *id = g_strdup_printf ("submitter-%d", s->index);
  g_autoptr(DvtContext) mine = dvt_context_with_string (base, KEY, id);

  dvt_context_push (mine);
  for (int i = 0; i < 500; i++)
    {
      g_auto(GValue) value = G_VALUE_INIT;

      if (!dvt_runtime_to_thread_blocking (s->runtime, work_check_id, NULL, NULL, NULL,
                                           NULL, &value, NULL) ||
          g_strcmp0 (g_value_get_string (&value), id) != 0)
        s->wrong++;
    }
  dvt_context_pop (mine);

  return NULL;
}

static void
test_many_submitters (void)
{
  g_autoptr(DvtTestRuntime) runtime = dvt_runtime_new (2);
  Submitter submitters[4];
  GThread *threads[4];

  for (int i = 0; i < 4; i++)
    {
      submitters[i] = (Submitter) { runtime, i, 0 };
      threads[i] = g_thread_new ("submitter", submitter_thread, &submitters[i]);
    }
  for (int i = 0; i < 4; i++)
    {
      g_thread_join (threads[i]);
      g_assert_cmpint (submitters[i].wrong, ==, 0);
    }
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/context/values", test_values);
  g_test_add_func ("/context/push-pop", test_push_pop);
  g_test_add_func ("/context/capture-run", test_capture_run);
  g_test_add_func ("/context/thread-exit-pushed", test_thread_exit_pushed);
  g_test_add_func ("/context/to-thread", test_to_thread);
  g_test_add_func ("/context/nested", test_nested);
  g_test_add_func ("/context/run-blocking", test_run_blocking);
  g_test_add_func ("/context/map", test_map);
  g_test_add_data_func ("/context/map/async-items", "async", test_map_modes);
  g_test_add_data_func ("/context/map/item-tasks", "timeout", test_map_modes);
  g_test_add_func ("/context/retries", test_retries);
  g_test_add_func ("/context/many-submitters", test_many_submitters);

  return g_test_run ();
}
