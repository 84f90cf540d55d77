/* test-logging.c: Dovetail's log lines carry structured fields
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A program of its own: a process sets its log writer once.
 */

#include "dvt-test-util.h"

/* The fields of one line, copied. */
typedef struct
{
  GLogLevelFlags level;
  GHashTable    *fields;   /* key → value */
} Line;

static GMutex lines_lock;
static GPtrArray *lines;

static void
line_free (gpointer data)
{
  Line *line = data;

  g_hash_table_unref (line->fields);
  g_free (line);
}

static GLogWriterOutput
capture_writer (GLogLevelFlags   level,
                const GLogField *fields,
                gsize            n_fields,
                gpointer         user_data)
{
  Line *line = g_new0 (Line, 1);

  line->level = level;
  line->fields = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (gsize i = 0; i < n_fields; i++)
    g_hash_table_insert (line->fields, g_strdup (fields[i].key),
                         fields[i].length < 0
                           ? g_strdup (fields[i].value)
                           : g_strndup (fields[i].value, (gsize) fields[i].length));

  g_mutex_lock (&lines_lock);
  g_ptr_array_add (lines, line);
  g_mutex_unlock (&lines_lock);

  return G_LOG_WRITER_HANDLED;
}

/* The lines of task @id of @event, in order. */
static guint
count_lines (const char *task_id,
             const char *event,
             const char *name,
             const char *runtime)
{
  guint n = 0;

  g_mutex_lock (&lines_lock);
  for (guint i = 0; i < lines->len; i++)
    {
      Line *line = g_ptr_array_index (lines, i);
      GHashTable *f = line->fields;

      if (g_strcmp0 (g_hash_table_lookup (f, "GLIB_DOMAIN"), "Dovetail") == 0 &&
          g_strcmp0 (g_hash_table_lookup (f, "DVT_TASK_ID"), task_id) == 0 &&
          g_strcmp0 (g_hash_table_lookup (f, "DVT_EVENT"), event) == 0 &&
          g_strcmp0 (g_hash_table_lookup (f, "DVT_TASK_NAME"), name) == 0 &&
          g_strcmp0 (g_hash_table_lookup (f, "DVT_RUNTIME"), runtime) == 0 &&
          g_hash_table_lookup (f, "MESSAGE") != NULL)
        n++;
    }
  g_mutex_unlock (&lines_lock);

  return n;
}

static void
work_ok (DvtTask      *task,
         GCancellable *cancellable,
         gpointer      user_data,
         GError      **error)
{
  dvt_task_return_int (task, 1);
}

/* Tracing: one line per event, each naming its runtime, task and event. */
static void
test_trace_fields (void)
{
  DvtRuntime *rt = g_object_new (DVT_TYPE_RUNTIME, "name", "logged", "trace", TRUE, NULL);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;
  g_autofree char *id = NULL;

  dvt_options_set_name (options, "fetch");
  task = dvt_runtime_submit (rt, work_ok, NULL, NULL, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (dvt_task_wait (task, 0, NULL));
  /* Delivered (and logged) by the events thread: a waiting shutdown
   * returns once it has delivered everything. */
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  id = g_strdup_printf ("%" G_GUINT64_FORMAT, dvt_task_get_id (task));
  g_assert_cmpuint (count_lines (id, "queued", "fetch", "logged"), ==, 1);
  g_assert_cmpuint (count_lines (id, "started", "fetch", "logged"), ==, 1);
  g_assert_cmpuint (count_lines (id, "finished", "fetch", "logged"), ==, 1);
  g_clear_object (&task);
  g_object_unref (rt);
}

static void
work_completes_twice (DvtTask      *task,
                      GCancellable *cancellable,
                      gpointer      user_data,
                      GError      **error)
{
  dvt_task_return_int (task, 1);
  dvt_task_return_int (task, 2);   /* a programmer's mistake: a critical */
}

/* A critical about a task names it too. */
static void
test_critical_fields (void)
{
  DvtRuntime *rt = g_object_new (DVT_TYPE_RUNTIME, "name", "crit", NULL);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(DvtTask) task = NULL;
  g_autofree char *id = NULL;

  dvt_options_set_name (options, "twice");
  task = dvt_runtime_submit (rt, work_completes_twice, NULL, NULL, options, NULL, NULL);
  g_assert_true (dvt_task_wait (task, 0, NULL));
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  id = g_strdup_printf ("%" G_GUINT64_FORMAT, dvt_task_get_id (task));
  g_assert_cmpuint (count_lines (id, "", "twice", "crit"), ==, 1);
  g_clear_object (&task);
  g_object_unref (rt);
}

static void
work_fails (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_BUSY, "busy");
}

/* A retried, then failed task: each attempt, the retry and the failure
 * are lines of their own, all naming the task, so that one task's story
 * can be filtered out of a busy log (journalctl DVT_TASK_ID=N). */
static void
test_trace_retry_fields (void)
{
  DvtRuntime *rt = g_object_new (DVT_TYPE_RUNTIME, "name", "retried", "trace", TRUE, NULL);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;
  g_autofree char *id = NULL;

  dvt_options_set_name (options, "flaky");
  dvt_options_set_retries (options, 1);
  dvt_options_set_retry_backoff (options, 0.001);
  task = dvt_runtime_submit (rt, work_fails, NULL, NULL, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (dvt_task_wait (task, 0, NULL));
  dvt_task_propagate_int (task, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BUSY);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  id = g_strdup_printf ("%" G_GUINT64_FORMAT, dvt_task_get_id (task));
  g_assert_cmpuint (count_lines (id, "queued", "flaky", "retried"), ==, 1);
  g_assert_cmpuint (count_lines (id, "started", "flaky", "retried"), ==, 2);
  g_assert_cmpuint (count_lines (id, "retry", "flaky", "retried"), ==, 1);
  g_assert_cmpuint (count_lines (id, "failed", "flaky", "retried"), ==, 1);
  g_assert_cmpuint (count_lines (id, "finished", "flaky", "retried"), ==, 0);
  g_clear_object (&task);
  g_object_unref (rt);
}

/* The warning about a runtime dropped without a shutdown names the
 * runtime in DVT_RUNTIME, at level WARNING, with GLib's code fields. */
static void
test_warning_fields (void)
{
  DvtRuntime *rt = g_object_new (DVT_TYPE_RUNTIME, "name", "dropped", NULL);
  guint n = 0;

  g_object_unref (rt);   /* no shutdown: the warning under test */

  g_mutex_lock (&lines_lock);
  for (guint i = 0; i < lines->len; i++)
    {
      Line *line = g_ptr_array_index (lines, i);
      GHashTable *f = line->fields;

      if (g_strcmp0 (g_hash_table_lookup (f, "DVT_RUNTIME"), "dropped") != 0)
        continue;
      n++;
      g_assert_cmpint (line->level & G_LOG_LEVEL_MASK, ==, G_LOG_LEVEL_WARNING);
      g_assert_cmpstr (g_hash_table_lookup (f, "GLIB_DOMAIN"), ==, "Dovetail");
      g_assert_nonnull (g_hash_table_lookup (f, "CODE_FILE"));
      g_assert_nonnull (g_hash_table_lookup (f, "CODE_FUNC"));
      g_assert_nonnull (strstr (g_hash_table_lookup (f, "MESSAGE"), "dropped"));
    }
  g_mutex_unlock (&lines_lock);
  g_assert_cmpuint (n, ==, 1);
}

int
main (int argc, char *argv[])
{
  /* The criticals under test must not abort. */
  g_setenv ("G_DEBUG", "gc-friendly", TRUE);
  g_test_init (&argc, &argv, NULL);
  /* g_test_init() made criticals fatal: the one under test must not be. */
  g_log_set_always_fatal (G_LOG_FATAL_MASK);
  (void) slow;
  lines = g_ptr_array_new_with_free_func (line_free);
  g_log_set_writer_func (capture_writer, NULL, NULL);

  g_test_add_func ("/logging/trace-fields", test_trace_fields);
  g_test_add_func ("/logging/critical-fields", test_critical_fields);
  g_test_add_func ("/logging/trace-retry-fields", test_trace_retry_fields);
  g_test_add_func ("/logging/warning-fields", test_warning_fields);

  return g_test_run ();
}
