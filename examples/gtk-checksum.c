/* gtk-checksum.c: a GTK 4 window that checksums the files of a directory
 * through a Dovetail runtime, without ever blocking the UI thread
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What runs where:
 *
 *   - the walk of the directory (blocking GIO enumeration) runs on one of
 *     the runtime's workers, through dvt_runtime_to_thread_async(); its
 *     callback comes back on the main thread;
 *   - the checksums (blocking reads, SHA-256) run on the workers through
 *     dvt_runtime_map_async(), at most four files at once; the map's
 *     "progress" signal drives the GtkProgressBar, and its callback fills
 *     the list, both on the main thread because the runtime's
 *     event-context is the application's main context;
 *   - the spinner is bound to the runtime's "pending" property (tasks not
 *     ended yet), which is notified on that same context;
 *   - Cancel cancels the map's GCancellable: items not started never start,
 *     and the map's callback reports G_IO_ERROR_CANCELLED at once;
 *   - closing the window calls dvt_runtime_shutdown_async() with
 *     cancel_pending, keeps the window until its callback, then destroys
 *     it: the main loop runs all along.
 *
 *   gtk-checksum [--directory DIR] [--auto [--close-early]] [--screenshot FILE.png]
 *
 * --auto starts the walk at once, prints a summary line when the map has
 * ended and closes the window (the test suite runs it so, under xvfb-run);
 * with --close-early it closes the window as soon as the map has started,
 * which shuts the runtime down with the map in flight;
 * --screenshot saves the window, as rendered at the end, to a PNG file.
 * DIR defaults to /usr/share/common-licenses, present on every Debian
 * system.
 */

#include <dovetail.h>
#include <gtk/gtk.h>

#define DEFAULT_DIRECTORY "/usr/share/common-licenses"
#define MAX_FILES 2000
#define READ_SIZE (64 * 1024)

typedef struct
{
  GtkApplication *app;
  DvtRuntime     *runtime;
  GtkWidget      *window;
  GtkWidget      *directory_label;
  GtkWidget      *start_button;
  GtkWidget      *cancel_button;
  GtkWidget      *progress_bar;
  GtkWidget      *status_label;
  GtkWidget      *list;
  GCancellable   *cancellable;   /* of the walk and the map in flight */
  GPtrArray      *paths;         /* the files of the map in flight */
  char           *directory;
  char           *screenshot;
  gboolean        automatic;
  gboolean        closing;       /* the window was asked to close */
  gboolean        shut_down;     /* ... and the runtime has shut down */
  gint64          started_at;
  guint           frames_after_end;
  gboolean        summary_printed;
  gboolean        close_early;
  int             exit_status;
} App;

/* ---- blocking work, on the runtime's workers ----------------------------- */

static void
walk (GFile *dir, GPtrArray *paths, GCancellable *cancellable, GError **error)
{
  g_autoptr(GFileEnumerator) children = NULL;

  children = g_file_enumerate_children (dir, G_FILE_ATTRIBUTE_STANDARD_NAME ","
                                        G_FILE_ATTRIBUTE_STANDARD_TYPE,
                                        G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS,
                                        cancellable, error);
  if (children == NULL)
    return;

  while (paths->len < MAX_FILES)
    {
      GFileInfo *info = NULL;
      GFile *child = NULL;

      if (!g_file_enumerator_iterate (children, &info, &child, cancellable, error))
        return;
      if (info == NULL)
        break;
      if (g_file_info_get_file_type (info) == G_FILE_TYPE_DIRECTORY)
        {
          walk (child, paths, cancellable, NULL);  /* an unreadable subfolder is skipped */
          if (g_cancellable_set_error_if_cancelled (cancellable, error))
            return;
        }
      else if (g_file_info_get_file_type (info) == G_FILE_TYPE_REGULAR)
        g_ptr_array_add (paths, g_file_get_path (child));
    }
}

/* A DvtThreadFunc: lists the regular files under the directory. */
static void
walk_work (DvtTask *task, GCancellable *cancellable, gpointer user_data, GError **error)
{
  g_autoptr(GFile) dir = g_file_new_for_path (user_data);
  g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  GError *walk_error = NULL;

  walk (dir, paths, cancellable, &walk_error);
  if (walk_error != NULL)
    g_propagate_error (error, walk_error);   /* the task fails with it */
  else
    dvt_task_return_pointer (task, g_steal_pointer (&paths), (GDestroyNotify) g_ptr_array_unref);
}

/* A DvtMapFunc: the SHA-256 of item i, as a string. */
static void
checksum_item (DvtTask *task, GCancellable *cancellable, gpointer user_data, GError **error)
{
  GPtrArray *paths = user_data;
  const char *path = g_ptr_array_index (paths, dvt_task_get_index (task));
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GFileInputStream) stream = NULL;
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree guchar *buffer = g_malloc (READ_SIZE);
  g_auto(GValue) value = G_VALUE_INIT;
  gssize n;

  stream = g_file_read (file, cancellable, error);
  if (stream == NULL)
    return;
  while ((n = g_input_stream_read (G_INPUT_STREAM (stream), buffer, READ_SIZE,
                                   cancellable, error)) > 0)
    g_checksum_update (checksum, buffer, n);
  if (n < 0)
    return;

  g_value_init (&value, G_TYPE_STRING);
  g_value_set_string (&value, g_checksum_get_string (checksum));
  dvt_task_return_value (task, &value);
}

/* ---- the window, on the main thread ---------------------------------------- */

static void
set_busy (App *app, gboolean busy)
{
  gtk_widget_set_sensitive (app->start_button, !busy && !app->closing);
  gtk_widget_set_sensitive (app->cancel_button, busy && !app->closing);
}

static void
save_screenshot (App *app)
{
  /* The window, as a paintable, rendered by its own renderer into a
   * texture: what is on screen, without asking the X server. */
  g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new (app->window);
  g_autoptr(GtkSnapshot) snapshot = gtk_snapshot_new ();
  g_autoptr(GskRenderNode) node = NULL;
  g_autoptr(GdkTexture) texture = NULL;
  int width = gtk_widget_get_width (app->window);
  int height = gtk_widget_get_height (app->window);
  GskRenderer *renderer = gtk_native_get_renderer (GTK_NATIVE (app->window));

  gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), width, height);
  node = gtk_snapshot_free_to_node (g_steal_pointer (&snapshot));
  if (node == NULL || renderer == NULL)
    {
      g_printerr ("gtk-checksum: nothing to take a screenshot of\n");
      app->exit_status = 1;
      return;
    }
  texture = gsk_renderer_render_texture (renderer, node,
                                         &GRAPHENE_RECT_INIT (0, 0, width, height));
  if (!gdk_texture_save_to_png (texture, app->screenshot))
    {
      g_printerr ("gtk-checksum: cannot write %s\n", app->screenshot);
      app->exit_status = 1;
    }
}

/* --auto: a few frames after the end, once the window is on screen and
 * has drawn the result (a quick run ends before the first frame). */
static gboolean
finish_automatic (GtkWidget *widget, GdkFrameClock *clock, gpointer user_data)
{
  App *app = user_data;

  if (!gtk_widget_get_mapped (widget) || ++app->frames_after_end < 3)
    return G_SOURCE_CONTINUE;
  if (app->screenshot != NULL)
    save_screenshot (app);
  gtk_window_close (GTK_WINDOW (app->window));
  return G_SOURCE_REMOVE;
}

static void
end_run (App *app, const char *status)
{
  gtk_label_set_text (GTK_LABEL (app->status_label), status);
  g_clear_object (&app->cancellable);
  g_clear_pointer (&app->paths, g_ptr_array_unref);
  set_busy (app, FALSE);

  if (app->automatic)
    {
      g_print ("gtk-checksum: %s\n", status);
      app->summary_printed = TRUE;
    }
  if (app->closing)
    {
      if (app->shut_down)
        gtk_window_destroy (GTK_WINDOW (app->window));
      return;
    }
  if (app->automatic)
    {
      app->frames_after_end = 0;
      gtk_widget_add_tick_callback (app->window, finish_automatic, app, NULL);
    }
}

/* The runtime's "progress" signal: on the main thread (the runtime's
 * event-context), once for however many items ended since the last call. */
static void
on_progress (DvtRuntime *runtime, DvtTask *task, guint done, guint total, gpointer user_data)
{
  App *app = user_data;
  g_autofree char *text = g_strdup_printf ("%u / %u files", done, total);

  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (app->progress_bar),
                                 total > 0 ? (double) done / total : 1.0);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (app->progress_bar), text);
}

static void
on_map_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  App *app = user_data;
  g_autoptr(GArray) sums = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *status = NULL;
  double seconds = (g_get_monotonic_time () - app->started_at) / (double) G_USEC_PER_SEC;
  guint n_failed = 0;

  sums = dvt_runtime_map_finish (DVT_RUNTIME (source), result, &error);
  if (sums == NULL)
    {
      status = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
        ? g_strdup ("cancelled")
        : g_strdup_printf ("failed: %s", error->message);
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        app->exit_status = 1;
      end_run (app, status);
      return;
    }

  for (guint i = 0; i < sums->len; i++)
    {
      const GValue *slot = &g_array_index (sums, GValue, i);
      const char *path = g_ptr_array_index (app->paths, i);
      g_autofree char *line = NULL;
      GtkWidget *label;

      if (G_VALUE_HOLDS (slot, G_TYPE_ERROR))
        {
          n_failed++;
          line = g_strdup_printf ("%-64s  %s", ((GError *) g_value_get_boxed (slot))->message, path);
        }
      else
        line = g_strdup_printf ("%s  %s", g_value_get_string (slot), path);
      label = gtk_label_new (line);
      gtk_label_set_xalign (GTK_LABEL (label), 0);
      gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_END);
      gtk_list_box_append (GTK_LIST_BOX (app->list), label);
    }

  status = g_strdup_printf ("%u files checksummed, %u unreadable, in %.2f s",
                            sums->len - n_failed, n_failed, seconds);
  end_run (app, status);
}

static void
on_walked (GObject *source, GAsyncResult *result, gpointer user_data)
{
  App *app = user_data;
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtOptions) options = NULL;
  g_autofree char *status = NULL;

  if (!dvt_runtime_to_thread_finish (DVT_RUNTIME (source), result, &value, &error))
    {
      status = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
        ? g_strdup ("cancelled")
        : g_strdup_printf ("cannot read %s: %s", app->directory, error->message);
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        app->exit_status = 1;
      end_run (app, status);
      return;
    }
  app->paths = g_value_get_pointer (&value);   /* the task's result: now ours */
  if (app->closing)
    {
      end_run (app, "cancelled");
      return;
    }

  status = g_strdup_printf ("Checksumming %u files…", app->paths->len);
  gtk_label_set_text (GTK_LABEL (app->status_label), status);

  options = dvt_options_new ();
  dvt_options_set_name (options, "checksum");
  dvt_options_set_max_concurrency (options, 4);
  dvt_options_set_return_errors (options, TRUE);   /* an unreadable file is one failed slot */
  dvt_runtime_map_async (app->runtime, app->paths->len, checksum_item,
                         g_ptr_array_ref (app->paths), (GDestroyNotify) g_ptr_array_unref,
                         options, app->cancellable, on_map_done, app);

  /* --close-early: as if the user closed the window while the map runs. */
  if (app->close_early)
    gtk_window_close (GTK_WINDOW (app->window));
}

static void
on_start (GtkButton *button, gpointer user_data)
{
  App *app = user_data;
  GtkWidget *row;

  while ((row = gtk_widget_get_first_child (app->list)) != NULL)
    gtk_list_box_remove (GTK_LIST_BOX (app->list), row);
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (app->progress_bar), 0);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (app->progress_bar), "");
  gtk_label_set_text (GTK_LABEL (app->status_label), "Walking the directory…");

  app->cancellable = g_cancellable_new ();
  app->started_at = g_get_monotonic_time ();
  set_busy (app, TRUE);
  dvt_runtime_to_thread_async (app->runtime, walk_work, g_strdup (app->directory), g_free,
                               NULL, app->cancellable, on_walked, app);
}

static void
on_cancel (GtkButton *button, gpointer user_data)
{
  App *app = user_data;

  if (app->cancellable != NULL)
    g_cancellable_cancel (app->cancellable);
}

static void
on_folder_chosen (GtkNativeDialog *dialog, int response, gpointer user_data)
{
  App *app = user_data;

  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) folder = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      char *path = folder != NULL ? g_file_get_path (folder) : NULL;

      if (path != NULL)
        {
          g_free (app->directory);
          app->directory = path;
          gtk_label_set_text (GTK_LABEL (app->directory_label), app->directory);
        }
    }
  g_object_unref (dialog);
}

static void
on_choose (GtkButton *button, gpointer user_data)
{
  App *app = user_data;
  GtkFileChooserNative *dialog;

  dialog = gtk_file_chooser_native_new ("Choose a folder", GTK_WINDOW (app->window),
                                        GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER,
                                        "_Choose", "_Cancel");
  g_signal_connect (dialog, "response", G_CALLBACK (on_folder_chosen), app);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}

/* ---- closing: shut the runtime down without blocking the main loop -------- */

static void
on_shut_down (GObject *source, GAsyncResult *result, gpointer user_data)
{
  App *app = user_data;
  g_autoptr(GError) error = NULL;

  if (!dvt_runtime_shutdown_finish (DVT_RUNTIME (source), result, &error))
    g_printerr ("gtk-checksum: shutdown: %s\n", error->message);
  app->shut_down = TRUE;
  /* The application quits with its window. A walk or map whose callback
   * has not come yet destroys it from there (end_run). */
  if (app->cancellable == NULL)
    gtk_window_destroy (GTK_WINDOW (app->window));
}

static gboolean
on_close_request (GtkWindow *window, gpointer user_data)
{
  App *app = user_data;

  if (!app->closing)
    {
      app->closing = TRUE;
      set_busy (app, app->cancellable != NULL);
      gtk_label_set_text (GTK_LABEL (app->status_label), "Closing…");
      /* cancel_pending: the work in flight ends cancelled; the callback
       * of the walk or the map still comes. */
      dvt_runtime_shutdown_async (app->runtime, TRUE, NULL, on_shut_down, app);
    }
  return TRUE;                       /* the window stays until on_shut_down */
}

static GtkWidget *
build_window (App *app)
{
  GtkWidget *window = gtk_application_window_new (app->app);
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 8);
  GtkWidget *row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 8);
  GtkWidget *choose = gtk_button_new_with_mnemonic ("_Folder…");
  GtkWidget *spinner = gtk_spinner_new ();
  GtkWidget *scrolled = gtk_scrolled_window_new ();

  gtk_window_set_title (GTK_WINDOW (window), "Dovetail checksums");
  gtk_window_set_default_size (GTK_WINDOW (window), 640, 400);
  gtk_widget_set_margin_start (box, 12);
  gtk_widget_set_margin_end (box, 12);
  gtk_widget_set_margin_top (box, 12);
  gtk_widget_set_margin_bottom (box, 12);

  app->directory_label = gtk_label_new (app->directory);
  gtk_label_set_xalign (GTK_LABEL (app->directory_label), 0);
  gtk_label_set_ellipsize (GTK_LABEL (app->directory_label), PANGO_ELLIPSIZE_START);
  gtk_widget_set_hexpand (app->directory_label, TRUE);
  app->start_button = gtk_button_new_with_mnemonic ("_Start");
  app->cancel_button = gtk_button_new_with_mnemonic ("_Cancel");
  gtk_box_append (GTK_BOX (row), app->directory_label);
  gtk_box_append (GTK_BOX (row), spinner);
  gtk_box_append (GTK_BOX (row), choose);
  gtk_box_append (GTK_BOX (row), app->start_button);
  gtk_box_append (GTK_BOX (row), app->cancel_button);
  gtk_box_append (GTK_BOX (box), row);

  app->progress_bar = gtk_progress_bar_new ();
  gtk_progress_bar_set_show_text (GTK_PROGRESS_BAR (app->progress_bar), TRUE);
  gtk_box_append (GTK_BOX (box), app->progress_bar);

  app->list = gtk_list_box_new ();
  gtk_list_box_set_selection_mode (GTK_LIST_BOX (app->list), GTK_SELECTION_NONE);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scrolled), app->list);
  gtk_widget_set_vexpand (scrolled, TRUE);
  gtk_box_append (GTK_BOX (box), scrolled);

  app->status_label = gtk_label_new ("Ready");
  gtk_label_set_xalign (GTK_LABEL (app->status_label), 0);
  gtk_box_append (GTK_BOX (box), app->status_label);
  gtk_window_set_child (GTK_WINDOW (window), box);

  /* The spinner spins while the runtime has tasks not ended: "pending" is
   * a guint64, which GValue turns into a gboolean (non-zero: TRUE). */
  g_object_bind_property (app->runtime, "pending", spinner, "spinning",
                          G_BINDING_SYNC_CREATE);

  g_signal_connect (choose, "clicked", G_CALLBACK (on_choose), app);
  g_signal_connect (app->start_button, "clicked", G_CALLBACK (on_start), app);
  g_signal_connect (app->cancel_button, "clicked", G_CALLBACK (on_cancel), app);
  g_signal_connect (window, "close-request", G_CALLBACK (on_close_request), app);
  return window;
}

static void
on_activate (GtkApplication *gtk_app, gpointer user_data)
{
  App *app = user_data;

  if (app->window != NULL)
    {
      gtk_window_present (GTK_WINDOW (app->window));
      return;
    }

  /* Events, "progress" and the notifications of "pending" come on the
   * main thread: the runtime's event-context is the main context. The
   * handlers are connected before any work is submitted, so that every
   * task is followed. */
  app->runtime = g_object_new (DVT_TYPE_RUNTIME,
                               "max-workers", 4,
                               "name", "gtk-checksum",
                               "event-context", g_main_context_default (),
                               NULL);
  g_signal_connect (app->runtime, "progress", G_CALLBACK (on_progress), app);

  app->window = build_window (app);
  set_busy (app, FALSE);
  gtk_window_present (GTK_WINDOW (app->window));

  if (app->automatic)
    on_start (NULL, app);
}

int
main (int argc, char **argv)
{
  App app = { 0 };
  g_autofree char *directory = NULL;
  g_autofree char *screenshot = NULL;
  const GOptionEntry entries[] = {
    { "directory", 'd', 0, G_OPTION_ARG_FILENAME, &directory,
      "The folder to checksum (default " DEFAULT_DIRECTORY ")", "DIR" },
    { "auto", 0, 0, G_OPTION_ARG_NONE, &app.automatic,
      "Start at once, print a summary and close when done", NULL },
    { "close-early", 0, 0, G_OPTION_ARG_NONE, &app.close_early,
      "With --auto, close the window while the checksums run", NULL },
    { "screenshot", 0, 0, G_OPTION_ARG_FILENAME, &screenshot,
      "With --auto, save the window to this PNG file at the end", "FILE" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- checksum a folder with Dovetail");
  g_autoptr(GError) error = NULL;
  int status;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("gtk-checksum: %s\n", error->message);
      return 2;
    }
  app.directory = g_strdup (directory != NULL ? directory : DEFAULT_DIRECTORY);
  app.screenshot = g_steal_pointer (&screenshot);

  app.app = gtk_application_new ("org.dovetail.GtkChecksum", G_APPLICATION_NON_UNIQUE);
  g_signal_connect (app.app, "activate", G_CALLBACK (on_activate), &app);
  status = g_application_run (G_APPLICATION (app.app), 1, argv);

  g_clear_object (&app.app);
  g_clear_object (&app.runtime);
  g_free (app.directory);
  g_free (app.screenshot);
  if (status == 0 && app.automatic && !app.summary_printed)
    {
      g_printerr ("gtk-checksum: --auto: the window closed before the run ended\n");
      status = 1;
    }
  return status != 0 ? status : app.exit_status;
}
