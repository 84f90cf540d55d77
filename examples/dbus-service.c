/* dbus-service.c: a D-Bus service whose method handlers run blocking work
 * on a Dovetail runtime and never block the service's main loop
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * It owns org.dovetail.ExampleService on the session bus and exports, at
 * /org/dovetail/ExampleService, the interface org.dovetail.ExampleService1:
 *
 *   Checksum (s path) -> (s sha256)      the SHA-256 of a file
 *   ListDirectory (s path) -> (as names) the names in a folder, sorted
 *   Sleep (d seconds) -> ()              blocking work that takes a while
 *                                        (and watches its cancellable)
 *   Ping () -> ()                        answered on the main loop at once
 *   GetCounters () -> (a{st})            what the service and its runtime
 *                                        counted
 *   Quit () -> ()                        stop taking work, finish what is
 *                                        in flight, then exit
 *
 * Each Checksum, ListDirectory and Sleep call becomes one
 * dvt_runtime_to_thread_async() call: the blocking function runs on one of
 * the runtime's workers (at most --max-workers at once), under a per-call
 * timeout (--timeout), with retries of transient errors (--retries; a
 * missing file is not retried) and the runtime's rate limit on starts
 * (--rate per second). Its completion callback runs on the service's main
 * context, the thread-default context of the thread that made the call,
 * and sends the reply from there: each method call gets exactly one reply,
 * a result or an error.
 *
 * Errors reach the client as D-Bus errors that keep their GError: GIO's
 * own errors (a missing file, G_IO_ERROR_TIMED_OUT for a call past its
 * timeout) travel in GDBus's encoding, which a GDBus client turns back into
 * the same domain and code; Dovetail's own (DVT_ERROR_CLOSED once Quit has
 * been called, ...) get names of their own, org.dovetail.Error.Closed and
 * so on, registered with g_dbus_error_register_error_domain().
 *
 * SIGINT and SIGTERM do what Quit does.
 *
 *   dbus-service [--max-workers N] [--timeout S] [--retries N] [--rate R]
 */

#include <dovetail.h>
#include <glib-unix.h>
#include <stdio.h>

#define BUS_NAME "org.dovetail.ExampleService"
#define OBJECT_PATH "/org/dovetail/ExampleService"
#define READ_SIZE (64 * 1024)

static const char introspection_xml[] =
  "<node>"
  "  <interface name='org.dovetail.ExampleService1'>"
  "    <method name='Checksum'>"
  "      <arg type='s' name='path' direction='in'/>"
  "      <arg type='s' name='sha256' direction='out'/>"
  "    </method>"
  "    <method name='ListDirectory'>"
  "      <arg type='s' name='path' direction='in'/>"
  "      <arg type='as' name='names' direction='out'/>"
  "    </method>"
  "    <method name='Sleep'>"
  "      <arg type='d' name='seconds' direction='in'/>"
  "    </method>"
  "    <method name='Ping'/>"
  "    <method name='GetCounters'>"
  "      <arg type='a{st}' name='counters' direction='out'/>"
  "    </method>"
  "    <method name='Quit'/>"
  "  </interface>"
  "</node>";

/* Dovetail's errors as D-Bus error names. */
static const GDBusErrorEntry dvt_dbus_errors[] = {
  { DVT_ERROR_FAILED, "org.dovetail.Error.Failed" },
  { DVT_ERROR_CLOSED, "org.dovetail.Error.Closed" },
  { DVT_ERROR_WOULD_DEADLOCK, "org.dovetail.Error.WouldDeadlock" },
  { DVT_ERROR_NOT_COMPLETED, "org.dovetail.Error.NotCompleted" },
  { DVT_ERROR_INVALID_ARGUMENT, "org.dovetail.Error.InvalidArgument" },
  { DVT_ERROR_FULL, "org.dovetail.Error.Full" },
  { DVT_ERROR_EMPTY, "org.dovetail.Error.Empty" },
};
static gsize dvt_dbus_error_domain;

typedef struct
{
  DvtRuntime *runtime;
  GMainLoop  *loop;
  double      timeout;
  guint       retries;
  gboolean    quitting;
  /* Counted on the main thread only. */
  guint64     calls;        /* work calls received */
  guint64     replies;      /* replies to them: results and errors */
  guint64     errors;       /* of which errors */
  guint64     pings;
} Service;

/* ---- blocking work, on the runtime's workers ----------------------------- */

static void
checksum_work (DvtTask *task, GCancellable *cancellable, gpointer user_data, GError **error)
{
  g_autoptr(GFile) file = g_file_new_for_path (user_data);
  g_autoptr(GFileInputStream) stream = NULL;
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree guchar *buffer = g_malloc (READ_SIZE);
  gssize n;

  stream = g_file_read (file, cancellable, error);
  if (stream == NULL)
    return;
  while ((n = g_input_stream_read (G_INPUT_STREAM (stream), buffer, READ_SIZE,
                                   cancellable, error)) > 0)
    g_checksum_update (checksum, buffer, n);
  if (n == 0)
    dvt_task_return_pointer (task, g_variant_ref_sink (g_variant_new ("(s)", g_checksum_get_string (checksum))),
                             (GDestroyNotify) g_variant_unref);
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char * const *) a, *(char * const *) b);
}

static void
list_work (DvtTask *task, GCancellable *cancellable, gpointer user_data, GError **error)
{
  g_autoptr(GFile) dir = g_file_new_for_path (user_data);
  g_autoptr(GFileEnumerator) children = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  GFileInfo *info;

  children = g_file_enumerate_children (dir, G_FILE_ATTRIBUTE_STANDARD_NAME,
                                        G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS,
                                        cancellable, error);
  if (children == NULL)
    return;
  while (g_file_enumerator_iterate (children, &info, NULL, cancellable, error))
    {
      if (info == NULL)
        {
          g_ptr_array_sort (names, compare_names);
          g_ptr_array_add (names, NULL);
          dvt_task_return_pointer (task,
                                   g_variant_ref_sink (g_variant_new ("(^as)", (char **) names->pdata)),
                                   (GDestroyNotify) g_variant_unref);
          return;
        }
      g_ptr_array_add (names, g_strdup (g_file_info_get_name (info)));
    }
}

static void
sleep_work (DvtTask *task, GCancellable *cancellable, gpointer user_data, GError **error)
{
  double seconds = *(double *) user_data;
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);

  /* Blocking work that watches its cancellable, so that a timeout or a
   * shutdown that cancels it frees its worker soon. */
  while (g_get_monotonic_time () < end)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return;
      g_usleep (MIN (10000, MAX (0, end - g_get_monotonic_time ())));
    }
  dvt_task_return_pointer (task, g_variant_ref_sink (g_variant_new ("()")),
                           (GDestroyNotify) g_variant_unref);
}

/* Missing files, folders that are files and the like fail the same way
 * every time: only other errors are tried again. */
static gboolean
retry_transient (DvtTask *task, const GError *error, gpointer user_data)
{
  return !(g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ||
           g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_DIRECTORY) ||
           g_error_matches (error, G_IO_ERROR, G_IO_ERROR_IS_DIRECTORY) ||
           g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED) ||
           g_error_matches (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT));
}

/* ---- method calls, on the service's main context --------------------------- */

typedef struct
{
  Service               *service;
  GDBusMethodInvocation *invocation;
} Call;

/* The completion callback: on the main context, once per call. */
static void
on_work_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Call *call = user_data;
  Service *service = call->service;
  g_auto(GValue) value = G_VALUE_INIT;
  GError *error = NULL;

  service->replies++;
  if (dvt_runtime_to_thread_finish (DVT_RUNTIME (source), result, &value, &error))
    {
      GVariant *reply = g_value_get_pointer (&value);   /* the first reader takes it */

      g_dbus_method_invocation_return_value (call->invocation, reply);
      g_variant_unref (reply);
    }
  else
    {
      service->errors++;
      g_dbus_method_invocation_take_error (call->invocation, error);
    }
  g_free (call);
}

static void
start_work (Service *service, GDBusMethodInvocation *invocation,
            DvtThreadFunc func, gpointer data, GDestroyNotify data_destroy)
{
  g_autoptr(DvtOptions) options = dvt_options_new ();
  Call *call = g_new0 (Call, 1);

  service->calls++;
  call->service = service;
  call->invocation = invocation;    /* owned until its reply */

  dvt_options_set_name (options, g_dbus_method_invocation_get_method_name (invocation));
  dvt_options_set_timeout (options, service->timeout);
  dvt_options_set_retries (options, service->retries);
  dvt_options_set_retry_backoff (options, 0.02);
  dvt_options_set_retry_filter (options, retry_transient, NULL, NULL);
  /* After Quit, this fails with DVT_ERROR_CLOSED, through the callback. */
  dvt_runtime_to_thread_async (service->runtime, func, data, data_destroy, options,
                               NULL, on_work_done, call);
}

static GVariant *
counters_variant (Service *service)
{
  g_autoptr(DvtStats) stats = dvt_runtime_get_stats (service->runtime);
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a{st}"));
  g_variant_builder_add (&builder, "{st}", "calls", service->calls);
  g_variant_builder_add (&builder, "{st}", "replies", service->replies);
  g_variant_builder_add (&builder, "{st}", "errors", service->errors);
  g_variant_builder_add (&builder, "{st}", "pings", service->pings);
  g_variant_builder_add (&builder, "{st}", "queued", stats->queued);
  g_variant_builder_add (&builder, "{st}", "started", stats->started);
  g_variant_builder_add (&builder, "{st}", "done", stats->done);
  g_variant_builder_add (&builder, "{st}", "error", stats->error);
  g_variant_builder_add (&builder, "{st}", "cancelled", stats->cancelled);
  g_variant_builder_add (&builder, "{st}", "retries", stats->retries);
  g_variant_builder_add (&builder, "{st}", "throttled", stats->throttled);
  g_variant_builder_add (&builder, "{st}", "timed_out", stats->timed_out);
  return g_variant_new ("(a{st})", &builder);
}

static void
on_shut_down (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Service *service = user_data;

  dvt_runtime_shutdown_finish (DVT_RUNTIME (source), result, NULL);
  g_main_loop_quit (service->loop);
}

/* Quit, SIGINT, SIGTERM: later work calls fail with DVT_ERROR_CLOSED; the
 * work in flight goes on to its end (and its replies are sent); then the
 * main loop ends. The loop keeps answering meanwhile. */
static void
quit (Service *service)
{
  if (service->quitting)
    return;
  service->quitting = TRUE;
  dvt_runtime_shutdown_async (service->runtime, FALSE, NULL, on_shut_down, service);
}

static gboolean
on_signal (gpointer user_data)
{
  quit (user_data);
  return G_SOURCE_CONTINUE;
}

static void
on_method_call (GDBusConnection       *connection,
                const char            *sender,
                const char            *object_path,
                const char            *interface_name,
                const char            *method_name,
                GVariant              *parameters,
                GDBusMethodInvocation *invocation,
                gpointer               user_data)
{
  Service *service = user_data;

  if (g_str_equal (method_name, "Ping"))
    {
      service->pings++;
      g_dbus_method_invocation_return_value (invocation, NULL);
    }
  else if (g_str_equal (method_name, "Checksum") || g_str_equal (method_name, "ListDirectory"))
    {
      const char *path;

      g_variant_get (parameters, "(&s)", &path);
      start_work (service, invocation,
                  g_str_equal (method_name, "Checksum") ? checksum_work : list_work,
                  g_strdup (path), g_free);
    }
  else if (g_str_equal (method_name, "Sleep"))
    {
      double *seconds = g_new (double, 1);

      g_variant_get (parameters, "(d)", seconds);
      if (!(*seconds >= 0 && *seconds <= 3600))
        {
          g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                                                 "Sleep takes 0 to 3600 seconds, not %g", *seconds);
          g_free (seconds);
          return;
        }
      start_work (service, invocation, sleep_work, seconds, g_free);
    }
  else if (g_str_equal (method_name, "GetCounters"))
    g_dbus_method_invocation_return_value (invocation, counters_variant (service));
  else if (g_str_equal (method_name, "Quit"))
    {
      quit (service);
      g_dbus_method_invocation_return_value (invocation, NULL);
    }
  else
    g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD,
                                           "No method %s", method_name);
}

static const GDBusInterfaceVTable vtable = { on_method_call, NULL, NULL, { 0 } };

static void
on_bus_acquired (GDBusConnection *connection, const char *name, gpointer user_data)
{
  g_autoptr(GDBusNodeInfo) info = g_dbus_node_info_new_for_xml (introspection_xml, NULL);
  g_autoptr(GError) error = NULL;

  if (g_dbus_connection_register_object (connection, OBJECT_PATH, info->interfaces[0],
                                         &vtable, user_data, NULL, &error) == 0)
    {
      g_printerr ("dbus-service: %s\n", error->message);
      quit (user_data);
    }
}

static void
on_name_acquired (GDBusConnection *connection, const char *name, gpointer user_data)
{
  g_print ("dbus-service: %s ready\n", name);
}

static void
on_name_lost (GDBusConnection *connection, const char *name, gpointer user_data)
{
  Service *service = user_data;

  g_printerr ("dbus-service: cannot own %s on the session bus\n", name);
  quit (service);
}

int
main (int argc, char **argv)
{
  Service service = { 0 };
  int max_workers = 4;
  double rate = 2000;
  int retries = 2;
  const GOptionEntry entries[] = {
    { "max-workers", 0, 0, G_OPTION_ARG_INT, &max_workers, "Work calls running at once (4)", "N" },
    { "timeout", 0, 0, G_OPTION_ARG_DOUBLE, &service.timeout, "Seconds a work call may take (5)", "S" },
    { "retries", 0, 0, G_OPTION_ARG_INT, &retries, "Retries of a transient failure (2)", "N" },
    { "rate", 0, 0, G_OPTION_ARG_DOUBLE, &rate, "Work starts per second (2000; 0: no limit)", "R" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- an example D-Bus service");
  g_autoptr(GError) error = NULL;
  guint owner_id;
  guint64 calls, replies;

  service.timeout = 5;
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) ||
      max_workers < 1 || retries < 0 || service.timeout < 0 || rate < 0)
    {
      g_printerr ("dbus-service: %s\n", error != NULL ? error->message : "bad option value");
      return 2;
    }
  service.retries = retries;

  /* Before the first error is sent: DVT_ERROR's codes get D-Bus names. */
  g_dbus_error_register_error_domain (g_quark_to_string (DVT_ERROR), &dvt_dbus_error_domain,
                                      dvt_dbus_errors, G_N_ELEMENTS (dvt_dbus_errors));

  service.runtime = g_object_new (DVT_TYPE_RUNTIME,
                                  "max-workers", (guint) max_workers,
                                  "name", "dbus-service",
                                  NULL);
  if (rate > 0 && !dvt_runtime_set_rate_limit (service.runtime, rate, 100, &error))
    {
      g_printerr ("dbus-service: %s\n", error->message);
      return 2;
    }

  service.loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGINT, on_signal, &service);
  g_unix_signal_add (SIGTERM, on_signal, &service);
  owner_id = g_bus_own_name (G_BUS_TYPE_SESSION, BUS_NAME, G_BUS_NAME_OWNER_FLAGS_NONE,
                             on_bus_acquired, on_name_acquired, on_name_lost,
                             &service, NULL);
  g_main_loop_run (service.loop);

  /* Replies whose callbacks are already queued (calls refused after Quit)
   * still go out. */
  g_bus_unown_name (owner_id);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  calls = service.calls;
  replies = service.replies;
  g_print ("dbus-service: %" G_GUINT64_FORMAT " work calls, %" G_GUINT64_FORMAT
           " replies (%" G_GUINT64_FORMAT " errors), %" G_GUINT64_FORMAT " pings\n",
           calls, replies, service.errors, service.pings);
  g_main_loop_unref (service.loop);
  g_object_unref (service.runtime);
  return calls == replies ? 0 : 1;
}
