/* test-callable.c: DvtCallable, a function bound to a runtime and options
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"

/* Doubles its int32 argument; fails on a negative one. */
static void
double_it (DvtTask       *task,
           GVariant      *args,
           GCancellable  *cancellable,
           gpointer       user_data,
           GError       **error)
{
  gint32 n;

  g_assert_true (g_variant_is_of_type (args, G_VARIANT_TYPE_INT32));
  n = g_variant_get_int32 (args);
  if (n < 0)
    g_set_error (error, TEST_ERROR, 1, "negative: %d", n);
  else
    dvt_task_return_int (task, 2 * n);
}

static void
test_blocking (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtCallable) callable = dvt_callable_new (rt, double_it, NULL, NULL, NULL);
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  g_assert_true (dvt_callable_get_runtime (callable) == rt);
  g_assert_false (dvt_callable_get_is_async (callable));

  for (int i = 0; i < 100; i++)
    {
      g_assert_true (dvt_callable_call_blocking (callable, g_variant_new_int32 (i), NULL,
                                                 &value, &error));
      g_assert_no_error (error);
      g_assert_cmpint (g_value_get_int64 (&value), ==, 2 * i);
      g_value_unset (&value);
    }

  g_assert_false (dvt_callable_call_blocking (callable, g_variant_new_int32 (-3), NULL,
                                              &value, &error));
  g_assert_error (error, TEST_ERROR, 1);
  g_assert_cmpstr (error->message, ==, "negative: -3");
  assert_null_value (&value);
}

/* A non-floating argument stays the caller's. */
static void
test_args_reference (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(DvtCallable) callable = dvt_callable_new (rt, double_it, NULL, NULL, NULL);
  g_autoptr(GVariant) args = g_variant_ref_sink (g_variant_new_int32 (21));
  g_autoptr(DvtTask) task = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  g_assert_true (dvt_callable_call_blocking (callable, args, NULL, &value, &error));
  g_assert_cmpint (g_value_get_int64 (&value), ==, 42);
  g_value_unset (&value);

  task = dvt_callable_submit (callable, args, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (dvt_task_wait (task, 30 * slow, &error));
  g_assert_true (dvt_task_propagate_value (task, &value, &error));
  g_assert_cmpint (g_value_get_int64 (&value), ==, 42);
  /* Still ours, still valid. */
  g_assert_cmpint (g_variant_get_int32 (args), ==, 21);
}

typedef struct
{
  GMutex lock;
  int    calls;
  double timeout_seen;
} Flaky;

/* Fails its first two calls, then returns the attempt number. */
static void
flaky (DvtTask       *task,
       GVariant      *args,
       GCancellable  *cancellable,
       gpointer       user_data,
       GError       **error)
{
  Flaky *f = user_data;
  int calls;

  g_mutex_lock (&f->lock);
  calls = ++f->calls;
  g_mutex_unlock (&f->lock);

  if (calls < 3)
    g_set_error (error, TEST_ERROR, 2, "not yet");
  else
    dvt_task_return_int (task, dvt_task_get_attempt (task));
}

static void
test_options_apply (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(DvtCallable) callable = NULL;
  g_autoptr(DvtOptions) copy = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;
  Flaky f = { .calls = 0 };

  g_mutex_init (&f.lock);
  dvt_options_set_retries (options, 2);
  dvt_options_set_retry_backoff (options, 0.001);
  dvt_options_set_name (options, "flaky");
  callable = dvt_callable_new (rt, flaky, &f, NULL, options);
  /* Copied: a later change to ours changes no call. */
  dvt_options_set_retries (options, 0);

  copy = dvt_callable_dup_options (callable);
  g_assert_cmpint (dvt_options_get_retries (copy), ==, 2);
  g_assert_cmpstr (dvt_options_get_name (copy), ==, "flaky");
  g_assert_true (dvt_options_get_function (copy) == (gconstpointer) flaky);

  g_assert_true (dvt_callable_call_blocking (callable, NULL, NULL, &value, &error));
  g_assert_no_error (error);
  g_assert_cmpint (f.calls, ==, 3);
  g_assert_cmpint (g_value_get_int64 (&value), ==, 3);
  g_mutex_clear (&f.lock);
}

/* Events name the callable's function: a scope on it sees each call. */
static void
on_finished (DvtEventScope *scope,
             DvtTask       *task,
             double         elapsed,
             int           *count)
{
  g_atomic_int_inc (count);
}

static void
test_scope_sees_function (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtCallable) callable = dvt_callable_new (rt, double_it, NULL, NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtEventScope) scope = dvt_event_scope_new (rt, NULL, double_it, 0, &error);
  int count = 0;

  g_assert_no_error (error);
  g_signal_connect (scope, "finished", G_CALLBACK (on_finished), &count);
  for (int i = 0; i < 5; i++)
    g_assert_true (dvt_callable_call_blocking (callable, g_variant_new_int32 (i), NULL,
                                               NULL, &error));
  g_assert_true (dvt_runtime_wait_idle (rt, 30 * slow, NULL, &error));
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&count) == 5, 30));
}

/* Async work: started on the loop thread, completed later from there. */
static gboolean
complete_later (gpointer data)
{
  DvtTask *task = data;

  dvt_task_return_int (task, 7);
  return G_SOURCE_REMOVE;
}

static void
later (DvtTask       *task,
       GVariant      *args,
       GCancellable  *cancellable,
       gpointer       user_data,
       GError       **error)
{
  GSource *source = g_timeout_source_new (5);

  g_source_set_callback (source, complete_later, g_object_ref (task), g_object_unref);
  g_source_attach (source, g_main_context_get_thread_default ());
  g_source_unref (source);
}

static void
test_async (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtCallable) on_loop = dvt_callable_new_async (rt, later, NULL, NULL, NULL);
  g_autoptr(DvtCallable) on_worker = dvt_callable_new (rt, double_it, NULL, NULL, NULL);
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;
  Ready r;

  g_assert_true (dvt_callable_get_is_async (on_loop));
  g_assert_true (dvt_callable_call_blocking (on_loop, NULL, NULL, &value, &error));
  g_assert_cmpint (g_value_get_int64 (&value), ==, 7);
  g_value_unset (&value);

  ready_init (&r);
  dvt_callable_call_async (on_loop, NULL, NULL, on_ready, &r);
  ready_wait (&r);
  g_assert_true (dvt_callable_call_finish (on_loop, r.result, &value, &error));
  g_assert_cmpint (g_value_get_int64 (&value), ==, 7);
  g_value_unset (&value);
  g_clear_object (&r.result);

  ready_init (&r);
  dvt_callable_call_async (on_worker, g_variant_new_int32 (-1), NULL, on_ready, &r);
  ready_wait (&r);
  g_assert_false (dvt_callable_call_finish (on_worker, r.result, &value, &error));
  g_assert_error (error, TEST_ERROR, 1);
  assert_null_value (&value);
  g_clear_object (&r.result);
}

/* Cancelling one call cancels that call only. */
static void
until_cancelled (DvtTask       *task,
                 GVariant      *args,
                 GCancellable  *cancellable,
                 gpointer       user_data,
                 GError       **error)
{
  g_assert_true (POLL_UNTIL (g_cancellable_is_cancelled (cancellable), 30));
  g_cancellable_set_error_if_cancelled (cancellable, error);
}

static void
test_cancel (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtCallable) callable = dvt_callable_new (rt, until_cancelled, NULL, NULL, NULL);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(DvtTask) task = NULL;
  g_autoptr(GError) error = NULL;
  Ready r;

  task = dvt_callable_submit (callable, NULL, NULL, &error);
  ready_init (&r);
  dvt_callable_call_async (callable, NULL, cancellable, on_ready, &r);
  g_cancellable_cancel (cancellable);
  ready_wait (&r);
  g_assert_false (dvt_callable_call_finish (callable, r.result, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_clear_object (&r.result);

  g_assert_false (dvt_task_get_completed (task));
  dvt_task_cancel (task);
  g_assert_true (dvt_task_wait (task, 30 * slow, &error));
  g_assert_true (dvt_task_had_error (task));
}

/* The data is freed with the callable; refused calls free their args.
 * The callable's last reference may be the call's, dropped on a worker:
 * the count is atomic. */
static void
count_free (gpointer data)
{
  g_atomic_int_inc ((int *) data);
}

static void
test_lifecycle (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(GError) error = NULL;
  DvtCallable *callable;
  DvtTask *task;
  int freed = 0;

  callable = dvt_callable_new (rt, double_it, &freed, count_free, NULL);
  task = dvt_callable_submit (callable, g_variant_new_int32 (1), NULL, &error);
  g_object_unref (callable);
  /* The call holds the callable until it ends. */
  g_assert_true (dvt_task_wait (task, 30 * slow, &error));
  g_object_unref (task);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&freed) == 1, 30));

  /* A shut-down runtime refuses calls, which drop their floating args. */
  callable = dvt_callable_new (rt, double_it, NULL, NULL, NULL);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_false (dvt_callable_call_blocking (callable, g_variant_new_int32 (1), NULL,
                                              NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);
  task = dvt_callable_submit (callable, g_variant_new_int32 (1), NULL, &error);
  g_assert_null (task);
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_object_unref (callable);
}

/* An object made without a function refuses calls with an error. */
static void
test_bad_input (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(DvtCallable) bare = g_object_new (DVT_TYPE_CALLABLE, "runtime", rt, NULL);
  g_autoptr(GError) error = NULL;

  if (g_test_subprocess ())
    {
      g_assert_false (dvt_callable_call_blocking (bare, g_variant_new_int32 (1), NULL,
                                                  NULL, &error));
      g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*CRITICAL*self->func != NULL*");
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/callable/blocking", test_blocking);
  g_test_add_func ("/callable/args-reference", test_args_reference);
  g_test_add_func ("/callable/options", test_options_apply);
  g_test_add_func ("/callable/scope", test_scope_sees_function);
  g_test_add_func ("/callable/async", test_async);
  g_test_add_func ("/callable/cancel", test_cancel);
  g_test_add_func ("/callable/lifecycle", test_lifecycle);
  g_test_add_func ("/callable/bad-input", test_bad_input);

  return g_test_run ();
}
