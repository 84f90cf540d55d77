/* bench-task-group.c: DvtTaskGroup against GTask, side by side in one process
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * 10 000 trivial blocking tasks submitted through a DvtTaskGroup and
 * waited for with dvt_task_group_wait_blocking(), against 10 000
 * g_task_run_in_thread() calls whose completion callbacks, on the
 * caller's main context, count until all have come. Both alternate REPS
 * times; the medians and their ratio are printed in the format of
 * dvt-bench.c. Output: a table, or with --json one JSON object per case.
 */

#include <dovetail.h>

#include "bench-util.h"

#define REPS 5

static gboolean opt_json;
static double opt_scale = 1.0;

static void
report (const char *name,
        double      dovetail,
        const char *baseline_name,
        double      baseline,
        double      target)
{
  double speedup = baseline > 0 ? dovetail / baseline : 0;

  if (opt_json)
    g_print ("{\"case\": \"%s\", \"unit\": \"tasks/s\", \"dovetail\": %.6g, "
             "\"baseline_name\": \"%s\", \"baseline\": %.6g, "
             "\"speedup\": %.4g, \"target\": %.4g}\n",
             name, dovetail, baseline_name, baseline, speedup, target);
  else
    g_print ("%-34s %12.4g %-10s %-34s %12.4g  %6.2fx (target %gx)\n",
             name, dovetail, "tasks/s", baseline_name, baseline, speedup, target);
}

/* ---- Dovetail: a group and one wait ------------------------------------------ */

static void
trivial (DvtTask      *task,
         GCancellable *cancellable,
         gpointer      data,
         GError      **error)
{
  dvt_task_return_int (task, GPOINTER_TO_INT (data));
}

static double
group_dvt (DvtRuntime *runtime,
           guint       n)
{
  g_autoptr(DvtTaskGroup) group = dvt_task_group_new (runtime);
  g_autoptr(GError) error = NULL;
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    {
      DvtTask *task = dvt_task_group_submit (group, trivial, GUINT_TO_POINTER (i), NULL,
                                             NULL, NULL, &error);

      if (task == NULL)
        g_error ("%s", error->message);
      g_object_unref (task);
    }
  if (!dvt_task_group_wait_blocking (group, -1, NULL, &error))
    g_error ("%s", error->message);
  if (dvt_task_group_get_n_tasks (group) != n)
    g_error ("lost tasks");

  return n / ((g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC);
}

/* ---- GLib: GTask in threads, completions counted on the caller's context ---- */

static void
gtask_thread (GTask        *task,
              gpointer      source,
              gpointer      data,
              GCancellable *cancellable)
{
  g_task_return_int (task, GPOINTER_TO_INT (data));
}

static void
gtask_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  guint *n_done = user_data;

  g_task_propagate_int (G_TASK (result), NULL);
  (*n_done)++;
}

static double
group_gtask (GMainContext *context,
             guint         n)
{
  gint64 start = g_get_monotonic_time ();
  guint n_done = 0;

  for (guint i = 0; i < n; i++)
    {
      GTask *task = g_task_new (NULL, NULL, gtask_done, &n_done);

      g_task_set_task_data (task, GUINT_TO_POINTER (i), NULL);
      g_task_run_in_thread (task, gtask_thread);
      g_object_unref (task);
    }
  while (n_done < n)
    g_main_context_iteration (context, TRUE);

  return n / ((g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC);
}

int
main (int   argc,
      char *argv[])
{
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON, one object per line", NULL },
    { "scale", 0, 0, G_OPTION_ARG_DOUBLE, &opt_scale, "Scale the number of tasks (default 1)", "F" },
    { NULL }
  };
  g_autoptr(GOptionContext) option_context = g_option_context_new ("- DvtTaskGroup benchmark");
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GError) error = NULL;
  DvtRuntime *runtime;
  double d[REPS], b[REPS];
  guint n;

  g_option_context_add_main_entries (option_context, entries, NULL);
  if (!g_option_context_parse (option_context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  n = MAX (1, (guint) (10000 * opt_scale));

  g_main_context_push_thread_default (context);
  runtime = dvt_runtime_new (0);

  if (!opt_json)
    g_print ("%-34s %12s %-10s %-34s %12s  %s\n", "case", "dovetail", "unit",
             "baseline", "baseline", "speed-up");

  /* One warm-up of each, then alternating repetitions. */
  group_dvt (runtime, MAX (1, n / 10));
  group_gtask (context, MAX (1, n / 10));
  for (guint rep = 0; rep < REPS; rep++)
    {
      d[rep] = group_dvt (runtime, n);
      b[rep] = group_gtask (context, n);
    }
  report ("task group: 10k submit + wait", median (d, REPS),
          "10k GTask run_in_thread, counted", median (b, REPS), 1);

  dvt_runtime_shutdown (runtime, TRUE, FALSE);
  g_object_unref (runtime);
  g_main_context_pop_thread_default (context);

  return 0;
}
