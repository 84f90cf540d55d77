/* test-runtime.c: run_blocking, to_thread_blocking, to_thread_async and
 * the loop thread's deadlock guard
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------- */

/* Bounds for waits that only guard against hangs; never speed checks. */

/* A gate that work functions block on until the test opens it. */

/* ---- run_blocking ------------------------------------------------------ */

typedef struct
{
  DvtRuntime *rt;
  GThread    *ran_on;
  gboolean    context_ok;
} RunInfo;

static void
async_return_double (DvtTask      *task,
                     GCancellable *cancellable,
                     gpointer      user_data,
                     GError      **error)
{
  RunInfo *info = user_data;

  info->ran_on = g_thread_self ();
  info->context_ok = g_main_context_get_thread_default () ==
                     dvt_runtime_get_context (info->rt);
  dvt_task_return_int (task, 21 * 2);
}

static void
test_run_blocking_value (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;
  RunInfo info = { rt, NULL, FALSE };

  g_assert_true (dvt_runtime_run_blocking (rt, async_return_double, &info, NULL,
                                           NULL, NULL, &value, &error));
  g_assert_no_error (error);
  g_assert_true (G_VALUE_HOLDS_INT64 (&value));
  g_assert_cmpint (g_value_get_int64 (&value), ==, 42);
  /* It ran on the loop thread, with the runtime's context as default. */
  g_assert_nonnull (info.ran_on);
  g_assert_true (info.ran_on != g_thread_self ());
  g_assert_true (info.context_ok);

  /* A NULL value location is allowed. */
  g_assert_true (dvt_runtime_run_blocking (rt, async_return_double, &info, NULL,
                                           NULL, NULL, NULL, &error));
  g_assert_no_error (error);
}

static void
load_contents_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  DvtTask *task = user_data;
  char *contents = NULL;
  gsize length = 0;
  GError *error = NULL;

  if (g_file_load_contents_finish (G_FILE (source), result, &contents,
                                   &length, NULL, &error))
    dvt_task_return_pointer (task, contents, g_free);
  else
    dvt_task_return_error (task, error);

  g_object_unref (task);
}

static void
async_load_file (DvtTask      *task,
                 GCancellable *cancellable,
                 gpointer      user_data,
                 GError      **error)
{
  GFile *file = user_data;

  g_file_load_contents_async (file, cancellable, load_contents_cb,
                              g_object_ref (task));
}

static void
test_run_blocking_gio_file (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  g_autoptr(GFile) file = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  const char *text = "Dovetail joins sync and async code.\nSecond line ✓\n";
  char *contents;
  int fd;

  fd = g_file_open_tmp ("dvt-test-XXXXXX.txt", &path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (fd, >=, 0);
  close (fd);
  g_assert_true (g_file_set_contents (path, text, -1, &error));
  g_assert_no_error (error);

  file = g_file_new_for_path (path);
  g_assert_true (dvt_runtime_run_blocking (rt, async_load_file, file, NULL, NULL,
                                           NULL, &value, &error));
  g_assert_no_error (error);
  g_assert_true (G_VALUE_HOLDS_POINTER (&value));
  contents = g_value_get_pointer (&value);
  g_assert_cmpstr (contents, ==, text);
  g_free (contents);

  g_unlink (path);
}

static void
test_run_blocking_gio_error (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) expected = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  g_autoptr(GFile) file = NULL;

  dir = g_dir_make_tmp ("dvt-test-XXXXXX", &error);
  g_assert_no_error (error);
  path = g_build_filename (dir, "does-not-exist.txt", NULL);
  file = g_file_new_for_path (path);

  /* What GIO itself reports, synchronously. */
  {
    char *contents = NULL;

    g_assert_false (g_file_load_contents (file, NULL, &contents, NULL, NULL, &expected));
    g_assert_null (contents);
  }
  g_assert_nonnull (expected);

  g_assert_false (dvt_runtime_run_blocking (rt, async_load_file, file, NULL, NULL,
                                            NULL, NULL, &error));
  g_assert_error (error, expected->domain, expected->code);
  g_assert_cmpstr (error->message, ==, expected->message);

  g_rmdir (dir);
}

typedef enum
{
  FAIL_OUT_PARAM,
  FAIL_RETURN_ERROR,
  FAIL_LATER,
} FailHow;

static gboolean
fail_later_cb (gpointer user_data)
{
  DvtTask *task = user_data;

  dvt_task_return_new_error (task, TEST_ERROR, 7, "custom failure %d ✓", 7);
  return G_SOURCE_REMOVE;
}

static void
async_fail (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  FailHow how = GPOINTER_TO_INT (user_data);
  GSource *source;

  switch (how)
    {
    case FAIL_OUT_PARAM:
      g_set_error (error, TEST_ERROR, 7, "custom failure %d ✓", 7);
      break;

    case FAIL_RETURN_ERROR:
      dvt_task_return_error (task, g_error_new (TEST_ERROR, 7, "custom failure %d ✓", 7));
      break;

    case FAIL_LATER:
      source = g_timeout_source_new (10);
      g_source_set_callback (source, fail_later_cb, g_object_ref (task),
                             g_object_unref);
      g_source_attach (source, g_main_context_get_thread_default ());
      g_source_unref (source);
      break;
    }
}

static void
test_run_blocking_error_unchanged (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);

  for (int how = FAIL_OUT_PARAM; how <= FAIL_LATER; how++)
    {
      g_autoptr(GError) error = NULL;
      g_auto(GValue) value = G_VALUE_INIT;

      g_assert_false (dvt_runtime_run_blocking (rt, async_fail, GINT_TO_POINTER (how), NULL,
                                                NULL, NULL, &value, &error));
      g_assert_error (error, TEST_ERROR, 7);
      g_assert_cmpstr (error->message, ==, "custom failure 7 ✓");
      assert_null_value (&value);
    }
}

#define N_CALLER_THREADS 8

typedef struct
{
  DvtRuntime *rt;
  guint       index;
  guint       n_calls;
  int         n_ok;
  int         n_failed;
} CallerThread;

static void
async_echo (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  guint v = GPOINTER_TO_UINT (user_data);

  if (v % 5 == 0)
    dvt_task_return_new_error (task, TEST_ERROR, (int) v, "failure %u", v);
  else
    dvt_task_return_int (task, v);
}

static gpointer
run_blocking_caller (gpointer data)
{
  CallerThread *ct = data;

  for (guint i = 0; i < ct->n_calls; i++)
    {
      guint v = ct->index * 100000 + i + 1;
      g_auto(GValue) value = G_VALUE_INIT;
      g_autoptr(GError) error = NULL;

      if (dvt_runtime_run_blocking (ct->rt, async_echo, GUINT_TO_POINTER (v), NULL,
                                    NULL, NULL, &value, &error))
        {
          g_assert_true (v % 5 != 0);
          g_assert_cmpint (g_value_get_int64 (&value), ==, v);
          ct->n_ok++;
        }
      else
        {
          g_autofree char *message = g_strdup_printf ("failure %u", v);

          g_assert_true (v % 5 == 0);
          g_assert_error (error, TEST_ERROR, (int) v);
          g_assert_cmpstr (error->message, ==, message);
          ct->n_failed++;
        }
    }

  return NULL;
}

static void
test_run_blocking_many_threads (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  CallerThread ct[N_CALLER_THREADS];
  GThread *threads[N_CALLER_THREADS];
  guint n_calls = is_valgrind () ? 25 : 250;

  for (guint i = 0; i < N_CALLER_THREADS; i++)
    {
      ct[i] = (CallerThread) { rt, i, n_calls, 0, 0 };
      threads[i] = g_thread_new ("caller", run_blocking_caller, &ct[i]);
    }
  for (guint i = 0; i < N_CALLER_THREADS; i++)
    {
      g_thread_join (threads[i]);
      g_assert_cmpint (ct[i].n_ok + ct[i].n_failed, ==, n_calls);
      g_assert_cmpint (ct[i].n_failed, ==, n_calls / 5);
    }
}

static void
async_do_nothing (DvtTask      *task,
                  GCancellable *cancellable,
                  gpointer      user_data,
                  GError      **error)
{
  int *calls = user_data;

  g_atomic_int_inc (calls);
}

static void
test_run_blocking_not_completed (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  int calls = 0;

  g_assert_false (dvt_runtime_run_blocking (rt, async_do_nothing, &calls, NULL, NULL,
                                            NULL, NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_NOT_COMPLETED);
  g_assert_cmpint (calls, ==, 1);

  /* The runtime is still usable afterwards. */
  g_clear_error (&error);
  g_assert_false (dvt_runtime_run_blocking (rt, async_do_nothing, &calls, NULL, NULL,
                                            NULL, NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_NOT_COMPLETED);
  g_assert_cmpint (calls, ==, 2);
}

typedef struct
{
  DvtRuntime   *rt;
  GMainContext *expected_context;
  GThread      *expected_thread;
  gboolean      started_ok;
  gboolean      completed_ok;
} LaterInfo;

typedef struct
{
  DvtTask   *task;
  LaterInfo *info;
} LaterData;

static gboolean
complete_later_cb (gpointer user_data)
{
  LaterData *data = user_data;

  data->info->completed_ok =
    g_main_context_is_owner (data->info->expected_context) &&
    (data->info->expected_thread == NULL ||
     g_thread_self () == data->info->expected_thread);
  dvt_task_return_int (data->task, 99);
  g_object_unref (data->task);
  g_free (data);

  return G_SOURCE_REMOVE;
}

/* Keeps a reference and completes from a timeout on its own context. */
static void
async_complete_later (DvtTask      *task,
                      GCancellable *cancellable,
                      gpointer      user_data,
                      GError      **error)
{
  LaterInfo *info = user_data;
  LaterData *data = g_new0 (LaterData, 1);
  GMainContext *context = g_main_context_ref_thread_default ();
  GSource *source;

  info->started_ok = context == info->expected_context &&
                     (info->expected_thread == NULL ||
                      g_thread_self () == info->expected_thread);

  data->task = g_object_ref (task);
  data->info = info;
  source = g_timeout_source_new (20);
  g_source_set_callback (source, complete_later_cb, data, NULL);
  g_source_attach (source, context);
  g_source_unref (source);
  g_main_context_unref (context);
}

static void
test_run_blocking_complete_later (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  LaterInfo info = { rt, dvt_runtime_get_context (rt), NULL, FALSE, FALSE };

  g_assert_true (dvt_runtime_run_blocking (rt, async_complete_later, &info, NULL, NULL,
                                           NULL, &value, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_value_get_int64 (&value), ==, 99);
  g_assert_true (info.started_ok);
  g_assert_true (info.completed_ok);
}

static gpointer
caller_context_thread (gpointer data)
{
  DvtRuntime *rt = data;
  GMainContext *context = g_main_context_new ();
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  LaterInfo info = { rt, context, g_thread_self (), FALSE, FALSE };

  g_main_context_push_thread_default (context);
  dvt_options_set_use_caller_context (options, TRUE);

  g_assert_true (dvt_runtime_run_blocking (rt, async_complete_later, &info, NULL, options,
                                           NULL, &value, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_value_get_int64 (&value), ==, 99);
  /* Started and completed on this very thread, on its context. */
  g_assert_true (info.started_ok);
  g_assert_true (info.completed_ok);

  /* Errors come back unchanged on this path too. */
  g_clear_error (&error);
  g_assert_false (dvt_runtime_run_blocking (rt, async_fail, GINT_TO_POINTER (FAIL_LATER), NULL,
                                            options, NULL, NULL, &error));
  g_assert_error (error, TEST_ERROR, 7);
  g_assert_cmpstr (error->message, ==, "custom failure 7 ✓");

  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);

  return NULL;
}

static void
test_run_blocking_caller_context (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);

  g_thread_join (g_thread_new ("caller-context", caller_context_thread, rt));

  /* From the main thread, whose thread-default is the global default. */
  {
    g_autoptr(DvtOptions) options = dvt_options_new ();
    g_autoptr(GError) error = NULL;
    g_auto(GValue) value = G_VALUE_INIT;
    LaterInfo info = { rt, g_main_context_default (), g_thread_self (), FALSE, FALSE };

    dvt_options_set_use_caller_context (options, TRUE);
    g_assert_true (dvt_runtime_run_blocking (rt, async_complete_later, &info, NULL, options,
                                             NULL, &value, &error));
    g_assert_no_error (error);
    g_assert_cmpint (g_value_get_int64 (&value), ==, 99);
    g_assert_true (info.started_ok);
    g_assert_true (info.completed_ok);
  }
}

/* ---- the deadlock guard ----------------------------------------------- */

typedef struct
{
  DvtRuntime *rt;
  DvtTask    *pending;       /* a task that has not ended */
  int         inner_calls;
  GError     *errors[6];
  gboolean    results[6];
  Gate        done;
} DeadlockProbe;

static void
inner_thread_work (DvtTask      *task,
                   GCancellable *cancellable,
                   gpointer      user_data,
                   GError      **error)
{
  DeadlockProbe *probe = user_data;

  g_atomic_int_inc (&probe->inner_calls);
  dvt_task_return_int (task, 1);
}

static void
inner_async_work (DvtTask      *task,
                  GCancellable *cancellable,
                  gpointer      user_data,
                  GError      **error)
{
  DeadlockProbe *probe = user_data;

  g_atomic_int_inc (&probe->inner_calls);
  dvt_task_return_int (task, 1);
}

/* Makes every blocking call from the current thread (the loop thread). */
static void
probe_blocking_calls (DeadlockProbe *probe)
{
  GArray *results;
  g_auto(GValue) v1 = G_VALUE_INIT;
  g_auto(GValue) v2 = G_VALUE_INIT;

  probe->results[0] = dvt_runtime_run_blocking (probe->rt, inner_async_work, probe, NULL,
                                                NULL, NULL, &v1, &probe->errors[0]);
  probe->results[1] = dvt_runtime_to_thread_blocking (probe->rt, inner_thread_work, probe, NULL,
                                                      NULL, NULL, &v2, &probe->errors[1]);
  results = dvt_runtime_map_blocking (probe->rt, 4, inner_thread_work, probe, NULL,
                                      NULL, NULL, &probe->errors[2]);
  probe->results[2] = results != NULL;
  g_clear_pointer (&results, g_array_unref);
  probe->results[3] = dvt_task_wait (probe->pending, 0, &probe->errors[3]);
  probe->results[4] = dvt_task_wait (probe->pending, 5.0, &probe->errors[4]);
  results = dvt_runtime_gather_blocking (probe->rt, &probe->pending, 1, NULL, NULL,
                                         &probe->errors[5]);
  probe->results[5] = results != NULL;
  g_clear_pointer (&results, g_array_unref);
}

static void
async_probe (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  probe_blocking_calls (user_data);
  dvt_task_return_boolean (task, TRUE);
}

static gboolean
idle_probe (gpointer user_data)
{
  DeadlockProbe *probe = user_data;

  probe_blocking_calls (probe);
  gate_open (&probe->done);

  return G_SOURCE_REMOVE;
}

static void
thread_wait_gate (DvtTask      *task,
                  GCancellable *cancellable,
                  gpointer      user_data,
                  GError      **error)
{
  gate_wait (user_data);
  dvt_task_return_int (task, 5);
}

static void
check_probe (DeadlockProbe *probe)
{
  for (guint i = 0; i < G_N_ELEMENTS (probe->errors); i++)
    {
      g_assert_false (probe->results[i]);
      g_assert_error (probe->errors[i], DVT_ERROR, DVT_ERROR_WOULD_DEADLOCK);
      g_assert_cmpstr (probe->errors[i]->message, !=, "");
      g_clear_error (&probe->errors[i]);
    }
  /* Refused at once: no inner work ever ran. */
  g_assert_cmpint (probe->inner_calls, ==, 0);
}

static void
test_would_deadlock (gboolean from_source)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  DeadlockProbe probe = { 0 };
  Gate gate;

  gate_init (&gate);
  gate_init (&probe.done);
  probe.rt = rt;
  probe.pending = dvt_runtime_submit (rt, thread_wait_gate, &gate, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  if (from_source)
    {
      GSource *source = g_idle_source_new ();

      g_source_set_callback (source, idle_probe, &probe, NULL);
      g_source_attach (source, dvt_runtime_get_context (rt));
      g_source_unref (source);
      gate_wait (&probe.done);
    }
  else
    {
      g_assert_true (dvt_runtime_run_blocking (rt, async_probe, &probe, NULL, NULL, NULL,
                                               NULL, &error));
      g_assert_no_error (error);
    }

  check_probe (&probe);

  gate_open (&gate);
  g_assert_true (dvt_task_wait (probe.pending, 0, &error));
  g_assert_no_error (error);
  g_assert_cmpint (dvt_task_propagate_int (probe.pending, &error), ==, 5);
  g_assert_no_error (error);
  g_object_unref (probe.pending);
  gate_clear (&gate);
  gate_clear (&probe.done);
}

static void
test_would_deadlock_async_func (void)
{
  test_would_deadlock (FALSE);
}

static void
test_would_deadlock_loop_source (void)
{
  test_would_deadlock (TRUE);
}

/* ---- to_thread_blocking ------------------------------------------------ */

static void
work_answer (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  GThread **ran_on = user_data;

  if (ran_on != NULL)
    *ran_on = g_thread_self ();
  dvt_task_return_int (task, 42);
}

static void
test_to_thread_blocking_basic (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;
  GThread *ran_on = NULL;

  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_answer, &ran_on, NULL, NULL, NULL,
                                                 &value, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_value_get_int64 (&value), ==, 42);
  g_assert_nonnull (ran_on);
  g_assert_true (ran_on != g_thread_self ());
}

static void
work_return_kinds (DvtTask      *task,
                   GCancellable *cancellable,
                   gpointer      user_data,
                   GError      **error)
{
  switch (GPOINTER_TO_INT (user_data))
    {
    case 0:
      dvt_task_return_pointer (task, g_strdup ("a pointer"), g_free);
      break;
    case 1:
      dvt_task_return_value (task, NULL);
      break;
    case 2:
      {
        g_auto(GValue) v = G_VALUE_INIT;

        g_value_init (&v, G_TYPE_STRING);
        g_value_set_string (&v, "a string");
        dvt_task_return_value (task, &v);
      }
      break;
    case 3:
      dvt_task_return_boolean (task, TRUE);
      break;
    default:
      g_assert_not_reached ();
    }
}

static void
test_to_thread_blocking_kinds (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;

  {
    g_auto(GValue) value = G_VALUE_INIT;

    g_assert_true (dvt_runtime_to_thread_blocking (rt, work_return_kinds, GINT_TO_POINTER (0), NULL,
                                                   NULL, NULL, &value, &error));
    g_assert_no_error (error);
    g_assert_true (G_VALUE_HOLDS_POINTER (&value));
    g_assert_cmpstr (g_value_get_pointer (&value), ==, "a pointer");
    g_free (g_value_get_pointer (&value));
  }
  {
    g_auto(GValue) value = G_VALUE_INIT;

    g_assert_true (dvt_runtime_to_thread_blocking (rt, work_return_kinds, GINT_TO_POINTER (1), NULL,
                                                   NULL, NULL, &value, &error));
    g_assert_no_error (error);
    assert_null_value (&value);
  }
  {
    g_auto(GValue) value = G_VALUE_INIT;

    g_assert_true (dvt_runtime_to_thread_blocking (rt, work_return_kinds, GINT_TO_POINTER (2), NULL,
                                                   NULL, NULL, &value, &error));
    g_assert_no_error (error);
    g_assert_cmpstr (g_value_get_string (&value), ==, "a string");
  }
  {
    g_auto(GValue) value = G_VALUE_INIT;

    g_assert_true (dvt_runtime_to_thread_blocking (rt, work_return_kinds, GINT_TO_POINTER (3), NULL,
                                                   NULL, NULL, &value, &error));
    g_assert_no_error (error);
    g_assert_true (g_value_get_boolean (&value));
  }
  /* A pointer result nobody reads is freed by its destroy notify. */
  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_return_kinds, GINT_TO_POINTER (0), NULL,
                                                 NULL, NULL, NULL, &error));
  g_assert_no_error (error);
}

static void
work_fail (DvtTask      *task,
           GCancellable *cancellable,
           gpointer      user_data,
           GError      **error)
{
  if (GPOINTER_TO_INT (user_data) == FAIL_OUT_PARAM)
    g_set_error (error, TEST_ERROR, 7, "custom failure %d ✓", 7);
  else
    dvt_task_return_error (task, g_error_new (TEST_ERROR, 7, "custom failure %d ✓", 7));
}

static void
test_to_thread_blocking_error (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);

  for (int how = FAIL_OUT_PARAM; how <= FAIL_RETURN_ERROR; how++)
    {
      g_autoptr(GError) error = NULL;
      g_auto(GValue) value = G_VALUE_INIT;

      g_assert_false (dvt_runtime_to_thread_blocking (rt, work_fail, GINT_TO_POINTER (how), NULL,
                                                      NULL, NULL, &value, &error));
      g_assert_error (error, TEST_ERROR, 7);
      g_assert_cmpstr (error->message, ==, "custom failure 7 ✓");
      assert_null_value (&value);
    }
}

static void
work_do_nothing (DvtTask      *task,
                 GCancellable *cancellable,
                 gpointer      user_data,
                 GError      **error)
{
  int *calls = user_data;

  g_atomic_int_inc (calls);
}

static void
test_to_thread_blocking_not_completed (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  int calls = 0;

  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_do_nothing, &calls, NULL, NULL, NULL,
                                                  NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_NOT_COMPLETED);
  g_assert_cmpint (calls, ==, 1);
}

static void
work_complete_twice (DvtTask      *task,
                     GCancellable *cancellable,
                     gpointer      user_data,
                     GError      **error)
{
  int *done = user_data;

  dvt_task_return_int (task, 1);
  dvt_task_return_int (task, 2);
  g_atomic_int_set (done, 1);
}

static void
test_to_thread_blocking_complete_twice (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
      g_autoptr(GError) error = NULL;
      g_auto(GValue) value = G_VALUE_INIT;
      int done = 0;

      /* Structured logging in GLib 2.74 ignores g_test_expect_message():
       * let the critical through, and check it on stderr. */
      g_log_set_always_fatal (G_LOG_FATAL_MASK);
      g_assert_true (dvt_runtime_to_thread_blocking (rt, work_complete_twice, &done, NULL, NULL,
                                                     NULL, &value, &error));
      g_assert_no_error (error);
      g_assert_cmpint (g_value_get_int64 (&value), ==, 1);
      /* The caller may be released before the second return happens. */
      g_assert_true (POLL_UNTIL (g_atomic_int_get (&done) == 1, 20));
      dvt_runtime_shutdown (rt, TRUE, FALSE);
      g_printerr ("first result kept\n");
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*CRITICAL*completed twice*");
  g_test_trap_assert_stderr ("*first result kept*");
}

typedef struct
{
  Gate     gate;
  int      started;
  int      finished;
  int      saw_cancelled;
  int      destroyed;
  GThread *destroyed_on;
} Blocker;

static void
blocker_init (Blocker *b)
{
  memset (b, 0, sizeof *b);
  gate_init (&b->gate);
}

static void
blocker_destroy_notify (gpointer data)
{
  Blocker *b = data;

  b->destroyed_on = g_thread_self ();
  g_atomic_int_inc (&b->destroyed);
}

/* Ignores cancellation: waits for its gate, then returns a pointer that
 * must be freed even though nobody reads it. */
static void
work_ignore_cancel (DvtTask      *task,
                    GCancellable *cancellable,
                    gpointer      user_data,
                    GError      **error)
{
  Blocker *b = user_data;

  g_atomic_int_inc (&b->started);
  gate_wait (&b->gate);
  if (cancellable != NULL && g_cancellable_is_cancelled (cancellable))
    g_atomic_int_inc (&b->saw_cancelled);
  dvt_task_return_pointer (task, g_strdup ("late result"), g_free);
  g_atomic_int_inc (&b->finished);
}

typedef struct
{
  GCancellable *cancellable;
  int          *started;
} CancelWhenStarted;

static gpointer
cancel_when_started (gpointer data)
{
  CancelWhenStarted *cws = data;

  while (g_atomic_int_get (cws->started) == 0)
    g_usleep (500);
  g_usleep (2000);
  g_cancellable_cancel (cws->cancellable);

  return NULL;
}

static void
test_to_thread_blocking_cancel (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  CancelWhenStarted cws;
  GThread *canceller;
  Blocker b;

  blocker_init (&b);
  cws.cancellable = cancellable;
  cws.started = &b.started;
  canceller = g_thread_new ("canceller", cancel_when_started, &cws);

  /* Returns while the work is still blocked on its gate. */
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_ignore_cancel, &b, NULL, NULL,
                                                  cancellable, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (g_atomic_int_get (&b.finished), ==, 0);
  g_thread_join (canceller);

  /* The work goes on; it saw its cancellable cancelled; its late result is
   * dropped (and freed: valgrind checks). */
  gate_open (&b.gate);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&b.finished) == 1, 20));
  g_assert_cmpint (g_atomic_int_get (&b.saw_cancelled), ==, 1);

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  gate_clear (&b.gate);
}

static void
test_to_thread_blocking_pre_cancelled (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  int calls = 0;

  g_cancellable_cancel (cancellable);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_do_nothing, &calls, NULL, NULL,
                                                  cancellable, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  g_assert_false (dvt_runtime_run_blocking (rt, async_do_nothing, &calls, NULL, NULL,
                                            cancellable, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (calls, ==, 0);
}

/* Returns 7; counts its calls and those that had a cancellable. */
static void
work_count_cancellable (DvtTask      *task,
                        GCancellable *cancellable,
                        gpointer      user_data,
                        GError      **error)
{
  int *counts = user_data;

  g_atomic_int_inc (&counts[0]);
  if (cancellable != NULL)
    g_atomic_int_inc (&counts[1]);
  dvt_task_return_int (task, 7);
}

static gboolean
call_count_cancellable (gpointer  data,
                        GError  **error)
{
  int *counts = data;

  g_atomic_int_inc (&counts[0]);
  return TRUE;
}

/* Runs one blocking call with @cancellable: whether it returned 7. */
static gboolean
blocking_call_with (DvtRuntime   *rt,
                    GCancellable *cancellable,
                    int          *counts,
                    GError      **error)
{
  g_auto(GValue) value = G_VALUE_INIT;

  return dvt_runtime_to_thread_blocking (rt, work_count_cancellable, counts, NULL, NULL,
                                         cancellable, &value, error) &&
         g_value_get_int64 (&value) == 7;
}

static gpointer
blocking_calls_then_exit (gpointer data)
{
  gpointer *args = data;
  int counts[2] = { 0, 0 };

  for (guint i = 0; i < 3; i++)
    g_assert_true (blocking_call_with (args[0], args[1], counts, NULL));

  return NULL;
}

/* The same cancellable for many blocking calls of a thread, another one
 * in between, one dropped, one used by a thread that has ended: each
 * call is cancelled by its own cancellable only, and the runtime keeps
 * none of them alive. */
static void
test_to_thread_blocking_cancellable_reused (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  GCancellable *cancellable = g_cancellable_new ();
  g_autoptr(GCancellable) other = g_cancellable_new ();
  g_autoptr(GCancellable) ended = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  gpointer args[2] = { rt, ended };
  int counts[2] = { 0, 0 };
  CancelWhenStarted cws;
  GThread *thread;
  Blocker b;

  g_object_add_weak_pointer (G_OBJECT (cancellable), (gpointer *) &cancellable);

  /* The work gets a cancellable of the task's own, every time. */
  for (guint i = 0; i < 20; i++)
    g_assert_true (blocking_call_with (rt, i % 5 == 4 ? other : cancellable, counts, &error));
  g_assert_no_error (error);
  g_assert_cmpint (counts[0], ==, 20);
  g_assert_cmpint (counts[1], ==, 20);

  /* Cancelling the other one ends nothing of a call with this one. */
  g_cancellable_cancel (other);
  g_assert_true (blocking_call_with (rt, cancellable, counts, &error));
  g_assert_no_error (error);
  g_assert_false (blocking_call_with (rt, other, counts, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_cmpint (counts[0], ==, 21);

  /* Cancelled while the call blocks: released at once, the work told. */
  blocker_init (&b);
  cws.cancellable = cancellable;
  cws.started = &b.started;
  thread = g_thread_new ("canceller", cancel_when_started, &cws);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_ignore_cancel, &b, NULL, NULL,
                                                  cancellable, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_thread_join (thread);
  gate_open (&b.gate);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&b.finished) == 1, 20));
  g_assert_cmpint (g_atomic_int_get (&b.saw_cancelled), ==, 1);
  gate_clear (&b.gate);

  /* Still cancelled: the next call never starts; once reset, it runs. */
  g_assert_false (blocking_call_with (rt, cancellable, counts, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (dvt_runtime_invoke_blocking (rt, call_count_cancellable, counts, NULL,
                                               NULL, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_cmpint (counts[0], ==, 21);
  g_cancellable_reset (cancellable);
  g_assert_true (blocking_call_with (rt, cancellable, counts, &error));
  g_assert_true (dvt_runtime_invoke_blocking (rt, call_count_cancellable, counts, NULL,
                                              NULL, cancellable, &error));
  g_assert_no_error (error);
  g_assert_cmpint (counts[0], ==, 23);

  /* A thread that used one and ended: it can still be cancelled and
   * dropped. */
  thread = g_thread_new ("caller", blocking_calls_then_exit, args);
  g_thread_join (thread);
  g_cancellable_cancel (ended);

  /* The runtime kept no reference to the one this thread used last. */
  g_object_unref (cancellable);
  g_assert_null (cancellable);

  dvt_runtime_shutdown (rt, TRUE, FALSE);
}

/* ---- to_thread_async --------------------------------------------------- */

typedef struct
{
  DvtRuntime   *rt;
  GMainContext *context;
  GThread      *thread;
  guint         n;
  int           n_callbacks;
  int           n_destroyed;
  int           n_destroyed_elsewhere;
  int           n_wrong_thread;
  int           n_bad_result;
} AsyncBatch;

typedef struct
{
  AsyncBatch *batch;
  guint       index;
} AsyncItem;

static void
work_index (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  AsyncItem *item = user_data;

  if (item->index % 3 == 0)
    g_usleep (200);
  if (item->index % 7 == 6)
    dvt_task_return_new_error (task, TEST_ERROR, (int) item->index, "item %u failed", item->index);
  else
    dvt_task_return_int (task, item->index * 10);
}

static void
async_item_free (gpointer data)
{
  AsyncItem *item = data;

  /* func_data is freed on the context of the callback. */
  if (g_thread_self () != item->batch->thread)
    g_atomic_int_inc (&item->batch->n_destroyed_elsewhere);
  g_atomic_int_inc (&item->batch->n_destroyed);
  g_free (item);
}

static void
async_batch_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  AsyncBatch *batch = user_data;
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) source_object = g_async_result_get_source_object (result);
  DvtTask *task = DVT_TASK (result);
  guint64 index;

  if (g_thread_self () != batch->thread ||
      g_main_context_get_thread_default () != batch->context ||
      !g_main_context_is_owner (batch->context))
    batch->n_wrong_thread++;

  g_assert_true (source == G_OBJECT (batch->rt));
  g_assert_true (source_object == G_OBJECT (batch->rt));
  g_assert_true (g_async_result_get_user_data (result) == batch);
  g_assert_true (g_async_result_is_tagged (result, dvt_runtime_to_thread_async));
  g_assert_true (dvt_task_get_completed (task));

  if (dvt_runtime_to_thread_finish (batch->rt, result, &value, &error))
    {
      index = (guint64) g_value_get_int64 (&value) / 10;
      if (index % 7 == 6 || dvt_task_had_error (task))
        batch->n_bad_result++;
    }
  else
    {
      if (error->domain != TEST_ERROR || error->code % 7 != 6 || !dvt_task_had_error (task))
        batch->n_bad_result++;
    }

  batch->n_callbacks++;
}

static gpointer
async_batch_thread (gpointer data)
{
  AsyncBatch *batch = data;

  batch->thread = g_thread_self ();
  batch->context = g_main_context_new ();
  g_main_context_push_thread_default (batch->context);

  for (guint i = 0; i < batch->n; i++)
    {
      AsyncItem *item = g_new0 (AsyncItem, 1);

      item->batch = batch;
      item->index = i;
      dvt_runtime_to_thread_async (batch->rt, work_index, item, async_item_free,
                                   NULL, NULL, async_batch_cb, batch);
    }

  /* The callbacks never run inside the call. */
  g_assert_cmpint (batch->n_callbacks, ==, 0);

  while ((guint) batch->n_callbacks < batch->n)
    g_main_context_iteration (batch->context, TRUE);

  /* Each func_data is freed exactly once, possibly after its callback. */
  g_assert_true (ITERATE_UNTIL (batch->context,
                                g_atomic_int_get (&batch->n_destroyed) == (int) batch->n, 20));

  g_main_context_pop_thread_default (batch->context);

  return NULL;
}

static void
test_to_thread_async_caller_context (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  AsyncBatch batch = { 0 };

  batch.rt = rt;
  batch.n = is_valgrind () ? 64 : 256;
  g_thread_join (g_thread_new ("async-caller", async_batch_thread, &batch));

  g_assert_cmpint (batch.n_callbacks, ==, batch.n);
  g_assert_cmpint (batch.n_wrong_thread, ==, 0);
  g_assert_cmpint (batch.n_bad_result, ==, 0);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (g_atomic_int_get (&batch.n_destroyed), ==, batch.n);
  g_assert_cmpint (g_atomic_int_get (&batch.n_destroyed_elsewhere), ==, 0);

  g_main_context_unref (batch.context);
}

static void
test_to_thread_async_default_context (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  AsyncBatch batch = { 0 };

  batch.rt = rt;
  batch.n = 16;
  batch.thread = g_thread_self ();
  batch.context = NULL;   /* the global default: get_thread_default() is NULL */

  for (guint i = 0; i < batch.n; i++)
    {
      AsyncItem *item = g_new0 (AsyncItem, 1);

      item->batch = &batch;
      item->index = i;
      dvt_runtime_to_thread_async (rt, work_index, item, async_item_free,
                                   NULL, NULL, async_batch_cb, &batch);
    }

  while ((guint) batch.n_callbacks < batch.n)
    g_main_context_iteration (NULL, TRUE);

  g_assert_cmpint (batch.n_bad_result, ==, 0);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_true (ITERATE_UNTIL (NULL, g_atomic_int_get (&batch.n_destroyed) == (int) batch.n, 20));
  g_assert_cmpint (g_atomic_int_get (&batch.n_destroyed_elsewhere), ==, 0);
}

typedef struct
{
  Blocker *blocker;
  GError  *error;
  int      finished_at_callback;
  gboolean called;
} CancelAsync;

static void
cancel_async_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  CancelAsync *ca = user_data;

  ca->finished_at_callback = g_atomic_int_get (&ca->blocker->finished);
  g_assert_false (dvt_runtime_to_thread_finish (DVT_RUNTIME (source), result, NULL,
                                                &ca->error));
  ca->called = TRUE;
}

static void
test_to_thread_async_cancel (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  GMainContext *context = g_main_context_new ();
  CancelAsync ca = { 0 };
  Blocker b;

  blocker_init (&b);
  ca.blocker = &b;

  g_main_context_push_thread_default (context);
  dvt_runtime_to_thread_async (rt, work_ignore_cancel, &b, blocker_destroy_notify,
                               NULL, cancellable, cancel_async_cb, &ca);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&b.started) == 1, 20));

  g_cancellable_cancel (cancellable);
  while (!ca.called)
    g_main_context_iteration (context, TRUE);

  /* Cancelled while the work still runs, which ignores cancellation. */
  g_assert_error (ca.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (ca.finished_at_callback, ==, 0);
  g_assert_cmpint (g_atomic_int_get (&b.destroyed), ==, 0);

  gate_open (&b.gate);
  /* Freed once the work is done with it, on this context. */
  g_assert_true (ITERATE_UNTIL (context, g_atomic_int_get (&b.destroyed) == 1, 20));
  g_assert_true (b.destroyed_on == g_thread_self ());
  g_assert_cmpint (g_atomic_int_get (&b.finished), ==, 1);
  g_assert_cmpint (g_atomic_int_get (&b.saw_cancelled), ==, 1);

  g_main_context_pop_thread_default (context);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpint (g_atomic_int_get (&b.destroyed), ==, 1);

  g_clear_error (&ca.error);
  g_main_context_unref (context);
  gate_clear (&b.gate);
}

/* Main-loop code running on the runtime's own loop thread (an async
 * function) uses the _async calls; their callbacks come back there. */
typedef struct
{
  DvtRuntime *rt;
  DvtTask    *outer;
  int         on_loop;
  int         destroyed;
} FromLoop;

static void
from_loop_destroy (gpointer data)
{
  FromLoop *fl = data;

  if (g_main_context_is_owner (dvt_runtime_get_context (fl->rt)))
    g_atomic_int_inc (&fl->on_loop);
  g_atomic_int_inc (&fl->destroyed);
}

static void
from_loop_to_thread_cb (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  FromLoop *fl = user_data;
  g_auto(GValue) value = G_VALUE_INIT;
  GError *error = NULL;

  if (g_main_context_is_owner (dvt_runtime_get_context (fl->rt)))
    g_atomic_int_inc (&fl->on_loop);
  /* Nothing of @fl after the outer task's end: its waiter may return. */
  g_autoptr(DvtTask) outer = g_steal_pointer (&fl->outer);

  if (dvt_runtime_to_thread_finish (fl->rt, result, &value, &error))
    dvt_task_return_int (outer, g_value_get_int64 (&value) + 1);
  else
    dvt_task_return_error (outer, error);
}

static void
from_loop_map_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  FromLoop *fl = user_data;
  GError *error = NULL;
  GArray *results;

  if (g_main_context_is_owner (dvt_runtime_get_context (fl->rt)))
    g_atomic_int_inc (&fl->on_loop);
  results = dvt_runtime_map_finish (fl->rt, result, &error);
  /* Nothing of @fl after the outer task's end: its waiter may return. */
  g_autoptr(DvtTask) outer = g_steal_pointer (&fl->outer);

  if (results != NULL)
    {
      gint64 sum = 0;

      for (guint i = 0; i < results->len; i++)
        sum += g_value_get_int64 (&g_array_index (results, GValue, i));
      g_array_unref (results);
      dvt_task_return_int (outer, sum);
    }
  else
    dvt_task_return_error (outer, error);
}

static void
item_index (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  dvt_task_return_int (task, dvt_task_get_index (task));
}

static void
async_start_to_thread (DvtTask      *task,
                       GCancellable *cancellable,
                       gpointer      user_data,
                       GError      **error)
{
  FromLoop *fl = user_data;

  fl->outer = g_object_ref (task);
  dvt_runtime_to_thread_async (fl->rt, work_answer, NULL, NULL, NULL, NULL,
                               from_loop_to_thread_cb, fl);
}

static void
async_start_map (DvtTask      *task,
                 GCancellable *cancellable,
                 gpointer      user_data,
                 GError      **error)
{
  FromLoop *fl = user_data;

  fl->outer = g_object_ref (task);
  dvt_runtime_map_async (fl->rt, 100, item_index, fl, from_loop_destroy, NULL, NULL,
                         from_loop_map_cb, fl);
}

static void
test_async_from_loop (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  FromLoop fl = { rt, NULL, 0, 0 };

  {
    g_autoptr(DvtTask) task = dvt_runtime_schedule (rt, async_start_to_thread, &fl, NULL,
                                                    NULL, NULL, &error);

    g_assert_no_error (error);
    g_assert_true (dvt_task_wait (task, 0, &error));
    g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, 43);
    g_assert_no_error (error);
    g_assert_cmpint (g_atomic_int_get (&fl.on_loop), ==, 1);
  }
  {
    g_autoptr(DvtTask) task = dvt_runtime_schedule (rt, async_start_map, &fl, NULL,
                                                    NULL, NULL, &error);

    g_assert_no_error (error);
    g_assert_true (dvt_task_wait (task, 0, &error));
    g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, 99 * 100 / 2);
    g_assert_no_error (error);
  }

  /* The map's data is freed on the loop thread too. */
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&fl.destroyed) == 1, 20));
  g_assert_cmpint (g_atomic_int_get (&fl.on_loop), ==, 3);
}

/* ---- func_data_destroy of the blocking calls ---------------------------- */

typedef struct
{
  Gate     gate;
  gboolean gated;
  int      started;
  int      finished;
  int      destroyed;
  GThread *destroyed_on;
} Owned;

static void
owned_destroy (gpointer data)
{
  Owned *o = data;

  o->destroyed_on = g_thread_self ();
  g_atomic_int_inc (&o->destroyed);
}

static void
work_owned (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  Owned *o = user_data;

  g_atomic_int_inc (&o->started);
  if (o->gated)
    gate_wait (&o->gate);
  if (dvt_task_get_index (task) == 7)
    g_set_error_literal (error, TEST_ERROR, 8, "owned work failed");
  else
    dvt_task_return_int (task, 1);
  g_atomic_int_inc (&o->finished);
}

static void
owned_init (Owned    *o,
            gboolean  gated)
{
  memset (o, 0, sizeof *o);
  gate_init (&o->gate);
  o->gated = gated;
}

static void
check_destroyed_here (Owned *o)
{
  /* Freed once, before the call returned, on the calling thread. */
  g_assert_cmpint (g_atomic_int_get (&o->destroyed), ==, 1);
  g_assert_true (o->destroyed_on == g_thread_self ());
  gate_clear (&o->gate);
}

static void
test_blocking_func_data_destroy (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtTestRuntime) closed = dvt_runtime_new (1);
  Owned o;

  /* Normal ends, successes and failures. */
  {
    g_autoptr(GError) error = NULL;

    owned_init (&o, FALSE);
    g_assert_true (dvt_runtime_to_thread_blocking (rt, work_owned, &o, owned_destroy, NULL,
                                                   NULL, NULL, &error));
    g_assert_no_error (error);
    check_destroyed_here (&o);
  }
  {
    g_autoptr(GError) error = NULL;

    owned_init (&o, FALSE);
    g_assert_true (dvt_runtime_run_blocking (rt, work_owned, &o, owned_destroy, NULL,
                                             NULL, NULL, &error));
    g_assert_no_error (error);
    check_destroyed_here (&o);
  }
  {
    g_autoptr(GError) error = NULL;
    GArray *results;

    owned_init (&o, FALSE);
    results = dvt_runtime_map_blocking (rt, 20, work_owned, &o, owned_destroy, NULL, NULL,
                                        &error);
    g_assert_null (results);
    g_assert_error (error, TEST_ERROR, 8);
    check_destroyed_here (&o);
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(DvtOptions) options = dvt_options_new ();
    GArray *results;

    owned_init (&o, FALSE);
    dvt_options_set_return_errors (options, TRUE);
    results = dvt_runtime_map_blocking (rt, 20, work_owned, &o, owned_destroy, options, NULL,
                                        &error);
    g_assert_no_error (error);
    g_assert_cmpuint (results->len, ==, 20);
    g_array_unref (results);
    check_destroyed_here (&o);
  }

  /* Refused calls free it too. */
  dvt_runtime_shutdown (closed, TRUE, FALSE);
  {
    g_autoptr(GError) error = NULL;

    owned_init (&o, FALSE);
    g_assert_false (dvt_runtime_to_thread_blocking (closed, work_owned, &o, owned_destroy, NULL,
                                                    NULL, NULL, &error));
    g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
    check_destroyed_here (&o);
  }
  {
    g_autoptr(GError) error = NULL;

    owned_init (&o, FALSE);
    g_assert_false (dvt_runtime_run_blocking (closed, work_owned, &o, owned_destroy, NULL,
                                              NULL, NULL, &error));
    g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
    check_destroyed_here (&o);
  }
  {
    g_autoptr(GError) error = NULL;

    owned_init (&o, FALSE);
    g_assert_null (dvt_runtime_map_blocking (closed, 5, work_owned, &o, owned_destroy, NULL,
                                             NULL, &error));
    g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
    check_destroyed_here (&o);
  }
}

static void
test_blocking_func_data_destroy_cancelled (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);

  /* Released early while the function runs: the data outlives the call
   * and is freed once, where the function returns. */
  for (int which = 0; which < 2; which++)
    {
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      g_autoptr(GError) error = NULL;
      CancelWhenStarted cws;
      GThread *canceller;
      gboolean ok;
      Owned o;

      owned_init (&o, TRUE);
      cws.cancellable = cancellable;
      cws.started = &o.started;
      canceller = g_thread_new ("canceller", cancel_when_started, &cws);

      if (which == 0)
        ok = dvt_runtime_to_thread_blocking (rt, work_owned, &o, owned_destroy, NULL,
                                             cancellable, NULL, &error);
      else
        {
          g_autoptr(DvtOptions) options = dvt_options_new ();
          GArray *results;

          dvt_options_set_max_concurrency (options, 1);
          results = dvt_runtime_map_blocking (rt, 3, work_owned, &o, owned_destroy, options,
                                              cancellable, &error);
          ok = results != NULL;
          g_clear_pointer (&results, g_array_unref);
        }
      g_assert_false (ok);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_thread_join (canceller);
      g_assert_cmpint (g_atomic_int_get (&o.finished), ==, 0);
      g_assert_cmpint (g_atomic_int_get (&o.destroyed), ==, 0);

      gate_open (&o.gate);
      g_assert_true (POLL_UNTIL (g_atomic_int_get (&o.destroyed) == 1, 20));
      g_assert_true (o.destroyed_on != g_thread_self ());
      dvt_runtime_shutdown (rt, FALSE, FALSE);
      g_usleep (10000);
      g_assert_cmpint (g_atomic_int_get (&o.destroyed), ==, 1);
      /* A cancelled map starts no item after the one that ran. */
      g_assert_cmpint (g_atomic_int_get (&o.started), ==, 1);
      gate_clear (&o.gate);
      g_clear_object (&rt);
      rt = dvt_runtime_new (2);
    }
}

/* ---- invoke_blocking and has_task_policy ------------------------------ */

static void
count_event (int *count)
{
  g_atomic_int_inc (count);
}

typedef struct
{
  GThread *ran_on;
  int      calls;
  int      fail_first;  /* how many calls fail */
} InvokeInfo;

static gboolean
invoke_count (gpointer  user_data,
              GError  **error)
{
  InvokeInfo *info = user_data;

  info->ran_on = g_thread_self ();
  if (info->calls++ < info->fail_first)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_BUSY, "busy");
      return FALSE;
    }
  return TRUE;
}

/* FALSE without an error, as a binding that refused the call returns. */
static gboolean
invoke_refused (gpointer  user_data,
                GError  **error)
{
  return FALSE;
}

static void
test_invoke_blocking (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) retry = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  InvokeInfo info = { NULL, 0, 0 };

  /* Runs on a worker; success carries no value. */
  g_assert_true (dvt_runtime_invoke_blocking (rt, invoke_count, &info, NULL,
                                              NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (info.calls, ==, 1);
  g_assert_true (info.ran_on != NULL && info.ran_on != g_thread_self ());

  /* The function's error reaches the caller unchanged. */
  info = (InvokeInfo) { NULL, 0, 1 };
  g_assert_false (dvt_runtime_invoke_blocking (rt, invoke_count, &info, NULL,
                                               NULL, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BUSY);
  g_clear_error (&error);

  /* Retries apply: two failures, then success. */
  info = (InvokeInfo) { NULL, 0, 2 };
  dvt_options_set_retries (retry, 2);
  dvt_options_set_retry_backoff (retry, 0.001);
  g_assert_true (dvt_runtime_invoke_blocking (rt, invoke_count, &info, NULL,
                                              retry, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (info.calls, ==, 3);

  /* FALSE without an error: not a success. */
  g_assert_false (dvt_runtime_invoke_blocking (rt, invoke_refused, NULL, NULL,
                                               NULL, NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_NOT_COMPLETED);
  g_clear_error (&error);

  /* An event scope for the function matches its calls. */
  {
    g_autoptr(DvtEventScope) scope = dvt_event_scope_new (rt, NULL, invoke_count, 0, &error);
    int finished = 0;

    g_assert_no_error (error);
    g_signal_connect_swapped (scope, "finished", G_CALLBACK (count_event), &finished);
    info = (InvokeInfo) { NULL, 0, 0 };
    g_assert_true (dvt_runtime_invoke_blocking (rt, invoke_count, &info, NULL,
                                                NULL, NULL, &error));
    g_assert_true (dvt_runtime_invoke_blocking (rt, invoke_refused, NULL, NULL,
                                                NULL, NULL, NULL) == FALSE);
    dvt_runtime_shutdown (rt, TRUE, FALSE);
    g_assert_cmpint (finished, ==, 1);
  }
}

static void
test_has_task_policy (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();

  g_assert_false (dvt_runtime_has_task_policy (rt, NULL));
  g_assert_false (dvt_runtime_has_task_policy (rt, options));
  dvt_options_set_max_concurrency (options, 1);
  dvt_options_set_deadline (options, 10);
  g_assert_false (dvt_runtime_has_task_policy (rt, options));
  dvt_options_set_timeout (options, 10);
  g_assert_true (dvt_runtime_has_task_policy (rt, options));
  dvt_options_set_timeout (options, 0);
  dvt_options_set_retries (options, 1);
  g_assert_true (dvt_runtime_has_task_policy (rt, options));

  g_object_set (rt, "retries", 1, NULL);
  g_assert_true (dvt_runtime_has_task_policy (rt, NULL));
  g_object_set (rt, "retries", 0, NULL);
  g_assert_true (dvt_runtime_set_rate_limit (rt, 1000, 0, NULL));
  g_assert_true (dvt_runtime_has_task_policy (rt, NULL));
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/runtime/run-blocking/value", test_run_blocking_value);
  g_test_add_func ("/runtime/invoke-blocking", test_invoke_blocking);
  g_test_add_func ("/runtime/has-task-policy", test_has_task_policy);
  g_test_add_func ("/runtime/run-blocking/gio-file", test_run_blocking_gio_file);
  g_test_add_func ("/runtime/run-blocking/gio-error", test_run_blocking_gio_error);
  g_test_add_func ("/runtime/run-blocking/error-unchanged", test_run_blocking_error_unchanged);
  g_test_add_func ("/runtime/run-blocking/many-threads", test_run_blocking_many_threads);
  g_test_add_func ("/runtime/run-blocking/not-completed", test_run_blocking_not_completed);
  g_test_add_func ("/runtime/run-blocking/complete-later", test_run_blocking_complete_later);
  g_test_add_func ("/runtime/run-blocking/caller-context", test_run_blocking_caller_context);
  g_test_add_func ("/runtime/would-deadlock/async-func", test_would_deadlock_async_func);
  g_test_add_func ("/runtime/would-deadlock/loop-source", test_would_deadlock_loop_source);
  g_test_add_func ("/runtime/to-thread-blocking/basic", test_to_thread_blocking_basic);
  g_test_add_func ("/runtime/to-thread-blocking/result-kinds", test_to_thread_blocking_kinds);
  g_test_add_func ("/runtime/to-thread-blocking/error-unchanged", test_to_thread_blocking_error);
  g_test_add_func ("/runtime/to-thread-blocking/not-completed", test_to_thread_blocking_not_completed);
  g_test_add_func ("/runtime/to-thread-blocking/complete-twice", test_to_thread_blocking_complete_twice);
  g_test_add_func ("/runtime/to-thread-blocking/cancel", test_to_thread_blocking_cancel);
  g_test_add_func ("/runtime/to-thread-blocking/pre-cancelled", test_to_thread_blocking_pre_cancelled);
  g_test_add_func ("/runtime/to-thread-blocking/cancellable-reused",
                   test_to_thread_blocking_cancellable_reused);
  g_test_add_func ("/runtime/to-thread-async/caller-context", test_to_thread_async_caller_context);
  g_test_add_func ("/runtime/to-thread-async/default-context", test_to_thread_async_default_context);
  g_test_add_func ("/runtime/to-thread-async/cancel", test_to_thread_async_cancel);
  g_test_add_func ("/runtime/async-from-loop", test_async_from_loop);
  g_test_add_func ("/runtime/blocking/func-data-destroy", test_blocking_func_data_destroy);
  g_test_add_func ("/runtime/blocking/func-data-destroy-cancelled",
                   test_blocking_func_data_destroy_cancelled);

  return g_test_run ();
}
