/* simple.c: Dovetail from C in a few lines
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A plain synchronous program: it runs a blocking function on a worker,
 * and a GIO asynchronous operation on the runtime's loop thread, and
 * blocks for each result. It has no main loop of its own.
 */

#include <dovetail.h>
#include <stdlib.h>

/* A DvtThreadFunc: runs on one of the runtime's worker threads. */
static void
add_numbers (DvtTask       *task,
             GCancellable  *cancellable,
             gpointer       user_data,
             GError       **error)
{
  gint64 sum = 0;

  for (int i = 1; i <= 1000; i++)
    sum += i;

  dvt_task_return_int (task, sum);
}

static void
on_loaded (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  DvtTask *task = user_data;  /* the reference taken in load_file() */
  g_autofree char *contents = NULL;
  gsize length = 0;
  GError *error = NULL;

  if (g_file_load_contents_finish (G_FILE (source), result, &contents, &length,
                                   NULL, &error))
    dvt_task_return_int (task, (gint64) length);
  else
    dvt_task_return_error (task, error);  /* reaches the caller unchanged */

  g_object_unref (task);
}

/* A DvtAsyncFunc: runs on the runtime's loop thread, starts GIO work and
 * returns; the GIO callback completes the task later. */
static void
load_file (DvtTask       *task,
           GCancellable  *cancellable,
           gpointer       user_data,
           GError       **error)
{
  g_autoptr(GFile) file = g_file_new_for_path (user_data);

  g_file_load_contents_async (file, cancellable, on_loaded, g_object_ref (task));
}

int
main (int   argc,
      char *argv[])
{
  const char *path = argc > 1 ? argv[1] : "/etc/os-release";
  g_autoptr(DvtRuntime) runtime = dvt_runtime_new (0);
  g_auto(GValue) sum = G_VALUE_INIT;
  g_auto(GValue) length = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  if (!dvt_runtime_to_thread_blocking (runtime, add_numbers, NULL, NULL, NULL, NULL,
                                       &sum, &error))
    g_error ("%s", error->message);
  g_print ("1 + 2 + ... + 1000 = %" G_GINT64_FORMAT "\n", g_value_get_int64 (&sum));

  if (!dvt_runtime_run_blocking (runtime, load_file, (gpointer) path, NULL, NULL,
                                 NULL, &length, &error))
    {
      g_printerr ("cannot read %s: %s\n", path, error->message);
      return EXIT_FAILURE;
    }
  g_print ("%s: %" G_GINT64_FORMAT " bytes\n", path, g_value_get_int64 (&length));

  dvt_runtime_shutdown (runtime, TRUE, FALSE);

  return EXIT_SUCCESS;
}
