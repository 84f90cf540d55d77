/* dovetail-demo.c: checksum every file under a directory with GIO async
 * operations, from a plain synchronous program
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * This program has no main loop of its own. It walks a directory (on one
 * of the runtime's workers, with dvt_runtime_to_thread_blocking()), then
 * hands the list of files to dvt_runtime_map_blocking() with async items:
 * for each file the runtime's loop thread starts g_file_read_async(), reads
 * it with g_input_stream_read_bytes_async() into a SHA-256 GChecksum and
 * closes it with g_input_stream_close_async(), with at most --concurrency
 * files open at once. The results come back in walk order; a file that
 * cannot be read is an error in its own slot (return-errors mode) and the
 * others go on.
 *
 *   dovetail-demo [--max-files N] [--concurrency N] [--quiet] [DIRECTORY]
 *
 * On a terminal, a progress bar follows the map: the runtime's "progress"
 * signal, emitted on its loop thread, once for however many files ended
 * since the last call.
 *
 * DIRECTORY defaults to /usr/share/doc. The exit status is 0 when the walk
 * and the map ran, even if some files could not be read, and 1 otherwise.
 */

#include <dovetail.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define READ_SIZE (64 * 1024)

/* ---- the progress bar -------------------------------------------------- */

/* Runs on the runtime's loop thread, one call at a time. */
static void
on_progress (DvtRuntime *runtime,
             DvtTask    *task,
             guint       done,
             guint       total,
             gpointer    user_data)
{
  const int width = 40;
  int filled = total > 0 ? (int) ((guint64) done * width / total) : width;

  fprintf (stderr, "\r[%.*s%*s] %u/%u files", filled,
           "########################################", width - filled, "",
           done, total);
  if (done == total)
    fputc ('\n', stderr);
  fflush (stderr);
}

/* ---- the walk: plain blocking code, run on a worker -------------------- */

typedef struct
{
  GFile     *root;
  guint      max_files;
  GPtrArray *paths;       /* (element-type utf8) files to checksum */
  guint      n_skipped;   /* entries that are neither files nor dirs */
  guint      n_walk_errors;
  gboolean   truncated;
} Walk;

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  GFileInfo *ia = *(GFileInfo **) a;
  GFileInfo *ib = *(GFileInfo **) b;

  return g_strcmp0 (g_file_info_get_name (ia), g_file_info_get_name (ib));
}

/* Depth first, in name order, not following symbolic links. */
static void
walk_dir (Walk         *walk,
          GFile        *dir,
          GCancellable *cancellable)
{
  g_autoptr(GFileEnumerator) enumerator = NULL;
  g_autoptr(GPtrArray) infos = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GError) error = NULL;
  GFileInfo *info;

  enumerator = g_file_enumerate_children (dir,
                                          G_FILE_ATTRIBUTE_STANDARD_NAME ","
                                          G_FILE_ATTRIBUTE_STANDARD_TYPE,
                                          G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS,
                                          cancellable, &error);
  if (enumerator == NULL)
    {
      g_autofree char *path = g_file_get_path (dir);

      g_printerr ("dovetail-demo: cannot list %s: %s\n", path, error->message);
      walk->n_walk_errors++;
      return;
    }

  while ((info = g_file_enumerator_next_file (enumerator, cancellable, &error)) != NULL)
    g_ptr_array_add (infos, info);
  if (error != NULL)
    {
      g_autofree char *path = g_file_get_path (dir);

      g_printerr ("dovetail-demo: error listing %s: %s\n", path, error->message);
      walk->n_walk_errors++;
    }

  g_ptr_array_sort (infos, compare_names);

  for (guint i = 0; i < infos->len && !walk->truncated; i++)
    {
      GFileInfo *child_info = g_ptr_array_index (infos, i);
      g_autoptr(GFile) child = g_file_get_child (dir, g_file_info_get_name (child_info));

      switch (g_file_info_get_file_type (child_info))
        {
        case G_FILE_TYPE_REGULAR:
          if (walk->paths->len >= walk->max_files)
            walk->truncated = TRUE;
          else
            g_ptr_array_add (walk->paths, g_file_get_path (child));
          break;

        case G_FILE_TYPE_DIRECTORY:
          walk_dir (walk, child, cancellable);
          break;

        default:
          walk->n_skipped++;
          break;
        }
    }
}

/* A DvtThreadFunc: blocking is fine here, this runs on a worker. */
static void
walk_func (DvtTask       *task,
           GCancellable  *cancellable,
           gpointer       user_data,
           GError       **error)
{
  Walk *walk = user_data;
  g_autoptr(GFileInfo) info = NULL;

  info = g_file_query_info (walk->root, G_FILE_ATTRIBUTE_STANDARD_TYPE,
                            G_FILE_QUERY_INFO_NONE, cancellable, error);
  if (info == NULL)
    return;  /* the error set above fails the task, unchanged */

  if (g_file_info_get_file_type (info) == G_FILE_TYPE_REGULAR)
    g_ptr_array_add (walk->paths, g_file_get_path (walk->root));
  else
    walk_dir (walk, walk->root, cancellable);

  dvt_task_return_boolean (task, TRUE);
}

/* ---- one file: GIO async operations, on the runtime's loop thread ------ */

typedef struct
{
  char    *checksum;  /* SHA-256, hex */
  guint64  size;
} FileSum;

static void
file_sum_free (FileSum *sum)
{
  g_free (sum->checksum);
  g_free (sum);
}

/* The state of one item while its GIO operations are in flight. It holds
 * a reference to the item's task, as a GIO callback holds its GTask. */
typedef struct
{
  DvtTask      *task;
  GCancellable *cancellable;
  GInputStream *stream;
  GChecksum    *checksum;
  guint64       size;
  GError       *error;      /* a read error, returned once closed */
} Item;

static void
item_free (Item *item)
{
  g_clear_object (&item->cancellable);
  g_clear_object (&item->stream);
  g_clear_pointer (&item->checksum, g_checksum_free);
  g_clear_error (&item->error);
  g_object_unref (item->task);
  g_free (item);
}

static void read_next (Item *item);

static void
on_closed (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Item *item = user_data;
  GError *error = NULL;

  if (!g_input_stream_close_finish (G_INPUT_STREAM (source), result, &error) &&
      item->error == NULL)
    item->error = g_steal_pointer (&error);
  g_clear_error (&error);

  if (item->error != NULL)
    dvt_task_return_error (item->task, g_steal_pointer (&item->error));
  else
    {
      FileSum *sum = g_new0 (FileSum, 1);

      sum->checksum = g_strdup (g_checksum_get_string (item->checksum));
      sum->size = item->size;
      dvt_task_return_pointer (item->task, sum, (GDestroyNotify) file_sum_free);
    }

  item_free (item);
}

static void
close_stream (Item *item)
{
  /* Close even after a read error; the error is returned once closed. */
  g_input_stream_close_async (item->stream, G_PRIORITY_DEFAULT, NULL,
                              on_closed, item);
}

static void
on_read (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Item *item = user_data;
  g_autoptr(GBytes) bytes = NULL;

  bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result,
                                            &item->error);
  if (bytes == NULL || g_bytes_get_size (bytes) == 0)
    {
      close_stream (item);  /* end of file, or error */
      return;
    }

  g_checksum_update (item->checksum, g_bytes_get_data (bytes, NULL),
                     (gssize) g_bytes_get_size (bytes));
  item->size += g_bytes_get_size (bytes);
  read_next (item);
}

static void
read_next (Item *item)
{
  g_input_stream_read_bytes_async (item->stream, READ_SIZE, G_PRIORITY_DEFAULT,
                                   item->cancellable, on_read, item);
}

static void
on_opened (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Item *item = user_data;
  GError *error = NULL;
  GFileInputStream *stream;

  stream = g_file_read_finish (G_FILE (source), result, &error);
  if (stream == NULL)
    {
      /* The GIO error reaches the caller unchanged, in the item's slot. */
      dvt_task_return_error (item->task, error);
      item_free (item);
      return;
    }

  item->stream = G_INPUT_STREAM (stream);
  read_next (item);
}

/* A DvtMapFunc with async items: it runs on the runtime's loop thread,
 * starts the work and returns; the GIO callbacks complete the task. */
static void
checksum_item (DvtTask       *task,
               GCancellable  *cancellable,
               gpointer       user_data,
               GError       **error)
{
  GPtrArray *paths = user_data;
  const char *path = g_ptr_array_index (paths, dvt_task_get_index (task));
  g_autoptr(GFile) file = g_file_new_for_path (path);
  Item *item = g_new0 (Item, 1);

  item->task = g_object_ref (task);
  item->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  item->checksum = g_checksum_new (G_CHECKSUM_SHA256);

  g_file_read_async (file, G_PRIORITY_DEFAULT, cancellable, on_opened, item);
}

/* ---- main -------------------------------------------------------------- */

/* g_format_size() uses a non-breaking space, which a C locale cannot show. */
static char *
format_size (guint64 size)
{
  if (size >= 1024 * 1024)
    return g_strdup_printf ("%.1f MiB (%" G_GUINT64_FORMAT " bytes)",
                            size / (1024.0 * 1024.0), size);
  if (size >= 1024)
    return g_strdup_printf ("%.1f KiB (%" G_GUINT64_FORMAT " bytes)",
                            size / 1024.0, size);
  return g_strdup_printf ("%" G_GUINT64_FORMAT " bytes", size);
}

int
main (int   argc,
      char *argv[])
{
  int max_files = 2000;
  int concurrency = 8;
  gboolean quiet = FALSE;
  g_auto(GStrv) rest = NULL;
  const GOptionEntry entries[] = {
    { "max-files", 'n', 0, G_OPTION_ARG_INT, &max_files,
      "Checksum at most N files (default: 2000)", "N" },
    { "concurrency", 'c', 0, G_OPTION_ARG_INT, &concurrency,
      "Keep at most N files in flight at once (default: 8)", "N" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet,
      "Print only the summary", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &rest,
      NULL, "[DIRECTORY]" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtRuntime) runtime = NULL;
  g_autoptr(DvtOptions) options = NULL;
  g_autoptr(GArray) results = NULL;
  g_autoptr(DvtStats) stats = NULL;
  g_autofree char *total_size = NULL;
  Walk walk = { 0 };
  const char *root;
  guint64 total_bytes = 0;
  guint n_ok = 0, n_failed = 0;
  gint64 start, elapsed;
  double seconds;

  setlocale (LC_ALL, "");

  context = g_option_context_new ("- checksum files with GIO async I/O from synchronous code");
  g_option_context_set_summary (context,
    "Walks DIRECTORY (default: /usr/share/doc) and prints the SHA-256 checksum,\n"
    "size and path of every regular file, read with GIO asynchronous operations\n"
    "run through a Dovetail runtime, then totals and the runtime's counters.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("dovetail-demo: %s\n", error->message);
      return EXIT_FAILURE;
    }
  if (rest != NULL && g_strv_length (rest) > 1)
    {
      g_printerr ("dovetail-demo: give at most one directory\n");
      return EXIT_FAILURE;
    }
  if (max_files < 0 || concurrency < 1)
    {
      g_printerr ("dovetail-demo: --max-files must be 0 or more and --concurrency 1 or more\n");
      return EXIT_FAILURE;
    }

  root = rest != NULL && rest[0] != NULL ? rest[0] : "/usr/share/doc";
  start = g_get_monotonic_time ();

  runtime = dvt_runtime_new (0);
  if (isatty (STDERR_FILENO) && isatty (STDOUT_FILENO))
    g_signal_connect (runtime, "progress::checksum", G_CALLBACK (on_progress), NULL);

  /* 1. The walk: blocking work on a worker thread, waited for here. */
  walk.root = g_file_new_for_commandline_arg (root);
  walk.max_files = (guint) max_files;
  walk.paths = g_ptr_array_new_with_free_func (g_free);
  if (!dvt_runtime_to_thread_blocking (runtime, walk_func, &walk, NULL, NULL, NULL,
                                       NULL, &error))
    {
      g_printerr ("dovetail-demo: cannot walk %s: %s\n", root, error->message);
      g_clear_error (&error);
      g_ptr_array_unref (walk.paths);
      g_object_unref (walk.root);
      dvt_runtime_shutdown (runtime, TRUE, FALSE);
      return EXIT_FAILURE;
    }

  /* 2. The checksums: GIO async operations started on the runtime's loop
   * thread, at most @concurrency in flight, results in walk order. */
  options = dvt_options_new ();
  dvt_options_set_name (options, "checksum");
  dvt_options_set_async_items (options, TRUE);
  dvt_options_set_max_concurrency (options, concurrency);
  dvt_options_set_return_errors (options, TRUE);

  results = dvt_runtime_map_blocking (runtime, walk.paths->len, checksum_item,
                                      walk.paths, NULL, options, NULL, &error);
  if (results == NULL)
    {
      g_printerr ("dovetail-demo: %s\n", error->message);
      g_ptr_array_unref (walk.paths);
      g_object_unref (walk.root);
      dvt_runtime_shutdown (runtime, TRUE, FALSE);
      return EXIT_FAILURE;
    }

  elapsed = g_get_monotonic_time () - start;
  /* The last progress call may still be running on the loop thread. */
  g_signal_handlers_disconnect_by_func (runtime, on_progress, NULL);

  /* 3. The results, in the order of the walk. Each slot holds either the
   * item's pointer result (ours to free now) or its GError. */
  for (guint i = 0; i < results->len; i++)
    {
      GValue *slot = &g_array_index (results, GValue, i);
      const char *path = g_ptr_array_index (walk.paths, i);

      if (G_VALUE_HOLDS (slot, G_TYPE_ERROR))
        {
          const GError *item_error = g_value_get_boxed (slot);

          /* The GIO error, unchanged: its domain, code and message. */
          n_failed++;
          if (!quiet)
            g_print ("FAILED (%s %d: %s)  %s\n", g_quark_to_string (item_error->domain),
                     item_error->code, item_error->message, path);
        }
      else if (G_VALUE_HOLDS_POINTER (slot))
        {
          FileSum *sum = g_value_get_pointer (slot);

          n_ok++;
          total_bytes += sum->size;
          if (!quiet)
            g_print ("%s  %10" G_GUINT64_FORMAT "  %s\n", sum->checksum, sum->size, path);
          file_sum_free (sum);
        }
    }

  seconds = MAX (elapsed, 1) / (double) G_USEC_PER_SEC;
  total_size = format_size (total_bytes);

  if (!quiet)
    g_print ("\n");
  g_print ("%s: %u files checksummed, %u failed, %s in %.2f s "
           "(%.0f files/s), at most %d in flight\n",
           root, n_ok, n_failed, total_size, seconds,
           results->len / seconds, concurrency);
  if (walk.truncated)
    g_print ("stopped the walk at --max-files=%d\n", max_files);
  if (walk.n_skipped > 0 || walk.n_walk_errors > 0)
    g_print ("skipped %u entries that are not regular files or directories "
             "(symbolic links included); %u directories could not be listed\n",
             walk.n_skipped, walk.n_walk_errors);

  /* A map and a blocking call each count as one task in the counters. */
  stats = dvt_runtime_get_stats (runtime);
  g_print ("runtime counters (the walk and the map are one call each): queued=%" G_GUINT64_FORMAT
           " started=%" G_GUINT64_FORMAT " done=%" G_GUINT64_FORMAT
           " error=%" G_GUINT64_FORMAT " cancelled=%" G_GUINT64_FORMAT
           " running=%" G_GUINT64_FORMAT " pending=%" G_GUINT64_FORMAT
           " (workers: %u)\n",
           stats->queued, stats->started, stats->done, stats->error,
           stats->cancelled, stats->running, stats->pending,
           dvt_runtime_get_max_workers (runtime));

  dvt_runtime_shutdown (runtime, TRUE, FALSE);
  g_ptr_array_unref (walk.paths);
  g_object_unref (walk.root);

  return EXIT_SUCCESS;
}
