/* dvt-runtime.c: the runtime, its loop thread and its workers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gi18n-lib.h>

#include "dvt-error-private.h"
#include "dvt-fault-private.h"
#include "dvt-i18n-private.h"
#include "dvt-options.h"
#include "dvt-runtime-private.h"
#include "dvt-task-private.h"
#include "dvt-thread-private.h"

/**
 * DvtRuntime:
 *
 * A runtime owns a [struct@GLib.MainContext] iterated by its own
 * background thread (the loop thread) and a pool of worker threads.
 *
 * Synchronous code uses it to run GIO asynchronous operations and block
 * for their results ([method@Runtime.run_blocking],
 * [method@Runtime.map_blocking], [method@Runtime.gather_blocking]).
 * Main-loop code uses it to run blocking functions on workers and get a
 * callback on its own thread-default context
 * ([method@Runtime.to_thread_async]).
 *
 * From synchronous code, a blocking function on a worker and its result:
 *
 * ```c
 * static void
 * count_lines (DvtTask *task, GCancellable *cancellable, gpointer path, GError **error)
 * {
 *   g_autofree char *contents = NULL;
 *   g_auto(GStrv) lines = NULL;
 *
 *   if (!g_file_get_contents (path, &contents, NULL, error))  // blocking: fine on a worker
 *     return;                                                 // the task fails with *error
 *   lines = g_strsplit (contents, "\n", -1);
 *   dvt_task_return_int (task, g_strv_length (lines));
 * }
 *
 * g_autoptr(DvtRuntime) runtime = dvt_runtime_new (0);      // 0: one worker per CPU
 * g_auto(GValue) lines = G_VALUE_INIT;
 * g_autoptr(GError) error = NULL;
 *
 * if (dvt_runtime_to_thread_blocking (runtime, count_lines, "/etc/passwd", NULL,
 *                                     NULL, NULL, &lines, &error))
 *   g_print ("%" G_GINT64_FORMAT " lines\n", g_value_get_int64 (&lines));
 * dvt_runtime_shutdown (runtime, TRUE, FALSE);
 * ```
 *
 * From a main loop (a GTK application, a service), the same work without
 * blocking: the callback runs on the caller's thread-default context.
 *
 * ```c
 * static void
 * on_counted (GObject *source, GAsyncResult *result, gpointer user_data)
 * {
 *   g_auto(GValue) lines = G_VALUE_INIT;
 *   g_autoptr(GError) error = NULL;
 *
 *   if (dvt_runtime_to_thread_finish (DVT_RUNTIME (source), result, &lines, &error))
 *     g_print ("%" G_GINT64_FORMAT " lines\n", g_value_get_int64 (&lines));
 * }
 *
 * dvt_runtime_to_thread_async (runtime, count_lines, "/etc/passwd", NULL,
 *                              NULL, NULL, on_counted, NULL);
 * ```
 *
 * ## Threads
 *
 * - A [callback@AsyncFunc] starts on the loop thread, where the runtime's
 *   context is the thread-default, so the GIO operations it starts
 *   complete there too. With [property@Options:use-caller-context] it
 *   starts on the caller's thread-default context instead.
 * - A [callback@ThreadFunc] runs on a worker. At most
 *   [property@Runtime:max-workers] of them run at once; a worker that
 *   blocks waiting for another task of the runtime lets the runtime start
 *   a replacement, so nested waits never starve the pool.
 * - Completion callbacks run on the thread-default context of the thread
 *   that submitted the work, as with [class@Gio.Task].
 * - A blocking call made on the loop thread fails at once with
 *   %DVT_ERROR_WOULD_DEADLOCK.
 *
 * ## Lifecycle
 *
 * [method@Runtime.shutdown] stops accepting work; later calls fail with
 * %DVT_ERROR_CLOSED. Dropping the last reference to a runtime stops its
 * threads. Every task holds a reference to its runtime.
 *
 * Runtimes register themselves (see [func@Runtime.list_active] and
 * [func@Runtime.shutdown_all]); a runtime finalized without having been
 * shut down logs a warning. [property@Runtime:shutdown-on-exit] shuts a
 * runtime down at exit and on SIGINT or SIGTERM. The
 * [overview](overview.html) says what
 * happens in the child of a fork().
 */

enum {
  PROP_0,
  PROP_AUTO_REGISTER,
  PROP_SHUTDOWN_ON_EXIT,
  PROP_MAX_WORKERS,
  PROP_NAME,
  PROP_TIMEOUT,
  PROP_RETRIES,
  PROP_RETRY_BACKOFF,
  PROP_RETRY_MAX_DELAY,
  PROP_RETRY_JITTER,
  PROP_RATE_LIMIT,
  PROP_RATE_LIMIT_BURST,
  PROP_EVENT_CONTEXT,
  PROP_TRACE,
  PROP_RUNNING,
  PROP_PENDING,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static const DvtRegistryClass registry_class;

static guint64 runtime_count_running (DvtRuntime *self);
static guint64 runtime_count_pending (DvtRuntime *self);

G_DEFINE_FINAL_TYPE (DvtRuntime, dvt_runtime, G_TYPE_OBJECT)

/* ---- the object -------------------------------------------------------- */

static gboolean
trace_from_environment (void)
{
  return g_strcmp0 (g_getenv ("DVT_TRACE"), "1") == 0;
}

static void
dvt_runtime_constructed (GObject *object)
{
  DvtRuntime *self = DVT_RUNTIME (object);

  G_OBJECT_CLASS (dvt_runtime_parent_class)->constructed (object);

  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  if (self->max_workers == 0)
    self->max_workers = g_get_num_processors ();

  self->core = dvt_core_new (G_OBJECT (self), self->name, self->max_workers);
  dvt_rate_bucket_set (&self->core->rate, self->rate_limit, self->rate_limit_burst);
  if (self->event_context != NULL)
    dvt_events_set_context (&self->core->events,
                            dvt_core_acquire_mailbox (self->core, self->event_context));
  g_atomic_int_set (&self->core->events.trace, self->trace || trace_from_environment ());
  dvt_registry_add (self->entry, object);
  dvt_fork_gate_leave (gate);
}

/* ---- shutdown watches -------------------------------------------------------- */

struct _DvtShutdownWatch
{
  GWeakRef   object;
  void     (*func) (GObject *object);
};

static void
shutdown_watch_free (gpointer data)
{
  DvtShutdownWatch *watch = data;

  g_weak_ref_clear (&watch->object);
  g_free (watch);
}

/* Returns the watch, to give back to dvt_runtime_unwatch_shutdown(), or
 * NULL if the runtime has been shut down already. */
DvtShutdownWatch *
dvt_runtime_watch_shutdown (DvtRuntime *self,
                            GObject    *object,
                            void      (*func) (GObject *object))
{
  DvtShutdownWatch *watch = g_new0 (DvtShutdownWatch, 1);

  g_weak_ref_init (&watch->object, object);
  watch->func = func;

  g_mutex_lock (&self->watch_lock);
  if (!self->watches_fired && !dvt_runtime_is_shutdown (self))
    {
      self->shutdown_watches = g_slist_prepend (self->shutdown_watches, watch);
      g_mutex_unlock (&self->watch_lock);
      return watch;
    }
  g_mutex_unlock (&self->watch_lock);

  shutdown_watch_free (watch);
  return NULL;
}

/* Forgets @watch (NULL: none). A watch being called right now is not
 * waited for: it holds its own reference to the object. */
void
dvt_runtime_unwatch_shutdown (DvtRuntime       *self,
                              DvtShutdownWatch *watch)
{
  GSList *link;

  if (watch == NULL)
    return;

  /* Once fired, the list is gone and the firing thread frees the watch:
   * a watch is only ever compared here, never read. */
  g_mutex_lock (&self->watch_lock);
  link = g_slist_find (self->shutdown_watches, watch);
  if (link != NULL)
    self->shutdown_watches = g_slist_delete_link (self->shutdown_watches, link);
  g_mutex_unlock (&self->watch_lock);

  if (link != NULL)
    shutdown_watch_free (watch);
}

static void
fire_shutdown_watches (DvtRuntime *self)
{
  GSList *watches;

  g_mutex_lock (&self->watch_lock);
  watches = g_steal_pointer (&self->shutdown_watches);
  self->watches_fired = TRUE;
  g_mutex_unlock (&self->watch_lock);

  for (GSList *l = watches; l != NULL; l = l->next)
    {
      DvtShutdownWatch *watch = l->data;
      GObject *object = g_weak_ref_get (&watch->object);

      if (object != NULL)
        {
          watch->func (object);
          g_object_unref (object);
        }
    }
  g_slist_free_full (watches, shutdown_watch_free);
}

static void
dvt_runtime_finalize (GObject *object)
{
  DvtRuntime *self = DVT_RUNTIME (object);

  DvtForkGate outer = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  /* Every task holds its runtime, so nothing is live any more. A runtime
   * inherited through fork() is leaked: its threads are not ours. */
  /* Nothing reads the owner any more (every task held it); a core that
   * outlives its runtime must not name a freed one. */
  self->core->owner = NULL;
  if (dvt_registry_remove (&self->entry, self, self->name, self->core))
    {
      DvtForkGate gate;

      g_atomic_int_set (&self->core->closed, 1);
      /* Outside the fork gate: its threads may be waiting at the gate. */
      gate = dvt_fork_gate_suspend ();
      dvt_core_stop (self->core, TRUE);
      dvt_fork_gate_set (DVT_FORK_GATE_PURE);
      dvt_core_unref (self->core);
      dvt_fork_gate_leave (gate);
    }
  g_free (self->name);
  g_clear_pointer (&self->event_context, g_main_context_unref);
  g_slist_free_full (g_steal_pointer (&self->shutdown_watches), shutdown_watch_free);
  g_mutex_clear (&self->watch_lock);
  dvt_fork_gate_leave (outer);

  G_OBJECT_CLASS (dvt_runtime_parent_class)->finalize (object);
}

static void
dvt_runtime_get_property (GObject    *object,
                          guint       prop_id,
                          GValue     *value,
                          GParamSpec *pspec)
{
  DvtRuntime *self = DVT_RUNTIME (object);

  switch (prop_id)
    {
    case PROP_AUTO_REGISTER:
      g_value_set_boolean (value, dvt_registry_get_auto_register (self->entry));
      break;

    case PROP_SHUTDOWN_ON_EXIT:
      g_value_set_boolean (value, dvt_registry_get_shutdown_on_exit (self->entry));
      break;

    case PROP_MAX_WORKERS:
      g_value_set_uint (value, self->max_workers);
      break;

    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;

    case PROP_TIMEOUT:
      g_value_set_double (value, self->defaults.timeout);
      break;

    case PROP_RETRIES:
      g_value_set_uint (value, self->defaults.retries);
      break;

    case PROP_RETRY_BACKOFF:
      g_value_set_double (value, self->defaults.retry_backoff);
      break;

    case PROP_RETRY_MAX_DELAY:
      g_value_set_double (value, self->defaults.retry_max_delay);
      break;

    case PROP_RETRY_JITTER:
      g_value_set_double (value, self->defaults.retry_jitter);
      break;

    case PROP_RATE_LIMIT:
      g_value_set_double (value, self->rate_limit);
      break;

    case PROP_RATE_LIMIT_BURST:
      g_value_set_uint (value, self->rate_limit_burst);
      break;

    case PROP_EVENT_CONTEXT:
      g_value_set_boxed (value, self->event_context);
      break;

    case PROP_TRACE:
      g_value_set_boolean (value, self->core != NULL && g_atomic_int_get (&self->core->events.trace));
      break;

    case PROP_RUNNING:
      g_value_set_uint64 (value, runtime_count_running (self));
      break;

    case PROP_PENDING:
      g_value_set_uint64 (value, runtime_count_pending (self));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_runtime_set_property (GObject      *object,
                          guint         prop_id,
                          const GValue *value,
                          GParamSpec   *pspec)
{
  DvtRuntime *self = DVT_RUNTIME (object);

  switch (prop_id)
    {
    case PROP_AUTO_REGISTER:
      dvt_registry_set_auto_register (self->entry, g_value_get_boolean (value));
      break;

    case PROP_SHUTDOWN_ON_EXIT:
      if (dvt_registry_set_shutdown_on_exit (self->entry, g_value_get_boolean (value)))
        g_object_notify_by_pspec (object, pspec);
      break;

    case PROP_MAX_WORKERS:
      self->max_workers = g_value_get_uint (value);
      break;

    case PROP_NAME:
      g_free (self->name);
      self->name = g_value_dup_string (value);
      break;

    case PROP_TIMEOUT:
      self->defaults.timeout = g_value_get_double (value);
      break;

    case PROP_RETRIES:
      self->defaults.retries = g_value_get_uint (value);
      break;

    case PROP_RETRY_BACKOFF:
      self->defaults.retry_backoff = g_value_get_double (value);
      break;

    case PROP_RETRY_MAX_DELAY:
      self->defaults.retry_max_delay = g_value_get_double (value);
      break;

    case PROP_RETRY_JITTER:
      self->defaults.retry_jitter = g_value_get_double (value);
      break;

    case PROP_RATE_LIMIT:
      self->rate_limit = g_value_get_double (value);
      if (self->core != NULL)
        dvt_rate_bucket_set (&self->core->rate, self->rate_limit, self->rate_limit_burst);
      break;

    case PROP_RATE_LIMIT_BURST:
      self->rate_limit_burst = g_value_get_uint (value);
      if (self->core != NULL)
        dvt_rate_bucket_set (&self->core->rate, self->rate_limit, self->rate_limit_burst);
      break;

    case PROP_EVENT_CONTEXT:
      g_clear_pointer (&self->event_context, g_main_context_unref);
      self->event_context = g_value_dup_boxed (value);
      break;

    case PROP_TRACE:
      self->trace = g_value_get_boolean (value);
      if (self->core != NULL)
        g_atomic_int_set (&self->core->events.trace, self->trace || trace_from_environment ());
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static guint64
runtime_count_running (DvtRuntime *self)
{
  gint64 running = DVT_COUNTER_GET (&self->core->n_running);

  return (guint64) MAX (running, 0);
}

static guint64
runtime_count_pending (DvtRuntime *self)
{
  DvtCore *core = self->core;
  guint64 queued = DVT_COUNTER_GET (&core->n_queued);
  guint64 ended = DVT_COUNTER_GET (&core->n_done) + DVT_COUNTER_GET (&core->n_error) +
                  DVT_COUNTER_GET (&core->n_cancelled);

  return queued > ended ? queued - ended : 0;
}

/* The counts' notifications come at most this often: enough for a
 * progress display, few enough for a million tasks. */
#define COUNTS_NOTIFY_INTERVAL_USEC (50 * 1000)

static void
runtime_notify_counts (DvtRuntime *self)
{
  GObject *object = G_OBJECT (self);
  guint64 running = runtime_count_running (self);
  guint64 pending = runtime_count_pending (self);

  self->counts_notified_at = g_get_monotonic_time ();
  g_object_freeze_notify (object);
  if (running != self->notified_running)
    {
      self->notified_running = running;
      g_object_notify_by_pspec (object, properties[PROP_RUNNING]);
    }
  if (pending != self->notified_pending)
    {
      self->notified_pending = pending;
      g_object_notify_by_pspec (object, properties[PROP_PENDING]);
    }
  g_object_thaw_notify (object);
}

static gboolean
on_counts_due (gpointer data)
{
  g_autoptr(DvtRuntime) self = g_weak_ref_get (data);

  if (self != NULL)
    {
      self->counts_pending = FALSE;
      runtime_notify_counts (self);
    }

  return G_SOURCE_REMOVE;
}

static void
weak_ref_free (gpointer data)
{
  g_weak_ref_clear (data);
  g_free (data);
}

/* On the event thread, after a batch of events of watched tasks: the
 * counts, notified if they changed, at most once per interval; the values
 * of a batch within the interval are notified once it has passed (through
 * a weak reference: the runtime may go meanwhile). */
static void
runtime_batch_delivered (GObject      *object,
                         GMainContext *context)
{
  DvtRuntime *self = DVT_RUNTIME (object);
  gint64 since = g_get_monotonic_time () - self->counts_notified_at;
  GWeakRef *weak;
  GSource *source;

  if (self->counts_pending)
    return;

  if (since >= COUNTS_NOTIFY_INTERVAL_USEC)
    {
      runtime_notify_counts (self);
      return;
    }

  self->counts_pending = TRUE;
  weak = g_new0 (GWeakRef, 1);
  g_weak_ref_init (weak, self);
  source = g_timeout_source_new ((guint) ((COUNTS_NOTIFY_INTERVAL_USEC - since + 999) / 1000));
  g_source_set_callback (source, on_counts_due, weak, weak_ref_free);
  g_source_set_static_name (source, "[dovetail] counts notification");
  g_source_attach (source, context);
  g_source_unref (source);
}

/* PyGObject loads gi.overrides.Dvt (Dvt.py) from the first gi/overrides
 * directory on sys.path that has it, and silently gives the raw API when
 * none has: an install whose overrides went where this Python does not
 * look would then lose call_blocking, keyword arguments and exceptions
 * without a word. Dvt.py registers the quark "dvt-python-overrides" before
 * it touches any Dovetail type; PyGObject registers "PyGObject::wrapper"
 * when it starts. Both are plain quark lookups, so a process without
 * Python pays nothing and the library needs no libpython. */
static void
check_python_overrides (void)
{
  if (g_quark_try_string ("PyGObject::wrapper") == 0 ||
      g_quark_try_string ("dvt-python-overrides") != 0)
    return;

  dvt_i18n_init ();
  /* Translators: %s is a directory; keep “gi.overrides.Dvt”, “Dvt.py”,
   * “sys.path”, “call_blocking” and “PYTHONPATH” as they are. */
  g_warning (_("Dovetail’s Python overrides (gi.overrides.Dvt) are not "
               "loaded: no gi/overrides directory on sys.path has Dvt.py, so "
               "Dvt offers only the raw introspected API (no call_blocking, "
               "no keyword arguments). Add the directory they were installed "
               "under, %s, to PYTHONPATH."), DVT_PYTHON_SITE_DIR);
}

static void
dvt_runtime_class_init (DvtRuntimeClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  check_python_overrides ();

  object_class->constructed = dvt_runtime_constructed;
  object_class->finalize = dvt_runtime_finalize;
  object_class->get_property = dvt_runtime_get_property;
  object_class->set_property = dvt_runtime_set_property;

  /**
   * DvtRuntime:auto-register:
   *
   * Whether the runtime registers itself when it is constructed, so that
   * [func@Runtime.list_active] lists it and [func@Runtime.shutdown_all]
   * shuts it down. The registry holds a weak reference.
   */
  properties[PROP_AUTO_REGISTER] =
    g_param_spec_boolean ("auto-register", NULL, NULL,
                          TRUE,
                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                          G_PARAM_STATIC_STRINGS);

  /**
   * DvtRuntime:shutdown-on-exit:
   *
   * Whether the runtime is shut down, cancelling its work, when the
   * process exits or receives SIGINT or SIGTERM. The signal then still
   * reaches the disposition it had before, so the first one still ends
   * the process by default.
   *
   * While at least one live runtime that has not been shut down has it
   * set, Dovetail handles the exit and the two signals:
   *
   * - It installs, once, an atexit() handler, and installs handlers for
   *   SIGINT and SIGTERM with sigaction(), remembering the dispositions
   *   they replace. A signal the process ignores (`SIG_IGN`) stays
   *   ignored.
   * - The signal handler only writes the signal number into a pipe. A
   *   watcher thread, `dvt-signals`, which exists while the handlers are
   *   installed, reads it. It first puts the previous dispositions back
   *   (so a second signal during the shutdown goes straight to them: a
   *   second Ctrl-C is not delayed), then runs the shutdown hook if one is
   *   set ([func@Runtime.set_shutdown_hook]), or else shuts down the
   *   runtimes that have this property set, cancelling their work and
   *   waiting up to two seconds for them to stop. Last, it sends the
   *   signal again to the process (`kill (getpid (), sig)`), so that it
   *   reaches the previous disposition: with the default one the process
   *   ends, killed by that signal; a handler the application had installed
   *   runs.
   * - At exit, the atexit() handler puts the previous dispositions back
   *   and does the same: the hook, or the shutdown of those runtimes,
   *   cancelling their work and waiting at most two seconds (work that
   *   ignores its cancellable cannot keep the process from exiting).
   * - Shutting down the last such runtime (or clearing the property, or
   *   finalizing the runtime) puts the previous dispositions back and
   *   stops the watcher thread. A handler that the application installed
   *   after Dovetail's is never replaced.
   */
  properties[PROP_SHUTDOWN_ON_EXIT] =
    g_param_spec_boolean ("shutdown-on-exit", NULL, NULL,
                          FALSE,
                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                          G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtRuntime:max-workers:
   *
   * The largest number of blocking functions that run at once. 0, the
   * default, means the number of processors. Workers that are blocked
   * waiting for other tasks of the runtime do not count.
   */
  properties[PROP_MAX_WORKERS] =
    g_param_spec_uint ("max-workers", NULL, NULL,
                       0, 4096, 0,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                       G_PARAM_STATIC_STRINGS);

  /**
   * DvtRuntime:name:
   *
   * A name for the runtime, used to name its threads and in messages.
   */
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL,
                         NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DvtRuntime:timeout:
   *
   * The default longest time, in seconds, that a task may take from when
   * it is accepted to its end, queueing, retries and back-off included.
   * 0, the default, means none. A call overrides it with
   * [property@Options:timeout]. For maps it applies to each item, never
   * to the whole map (see [property@Options:deadline]).
   *
   * A task that runs out fails with %G_IO_ERROR_TIMED_OUT: waiters are
   * released at once, the completion callback runs, and the task's
   * cancellable is cancelled. A blocking function that ignores its
   * cancellable keeps running in its worker; what it returns later is
   * dropped and freed.
   */
  properties[PROP_TIMEOUT] =
    g_param_spec_double ("timeout", NULL, NULL, 0, G_MAXINT32, 0,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DvtRuntime:retries:
   *
   * How many times, by default, a failed task is tried again: at most
   * retries + 1 attempts, the last error being the one returned. 0, the
   * default, means none. A call overrides it with
   * [property@Options:retries]; which errors are retried is chosen with
   * [method@Options.set_retry_filter] (by default all but cancellation,
   * timeouts and %DVT_ERROR_CLOSED).
   *
   * Blocking and async functions are both simply called again, with the
   * same task, whose [method@Task.get_attempt] has grown by one.
   */
  properties[PROP_RETRIES] =
    g_param_spec_uint ("retries", NULL, NULL, 0, G_MAXUINT16 - 1, 0,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                       G_PARAM_STATIC_STRINGS);

  /**
   * DvtRuntime:retry-backoff:
   *
   * The delay before the first retry, in seconds: before retry n the
   * runtime waits this times 2^(n-1), at most
   * [property@Runtime:retry-max-delay]. The wait is a timer on the loop
   * thread; no thread sleeps.
   */
  properties[PROP_RETRY_BACKOFF] =
    g_param_spec_double ("retry-backoff", NULL, NULL, 0, G_MAXINT32, 0.1,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DvtRuntime:retry-max-delay:
   *
   * The longest delay before a retry, in seconds.
   */
  properties[PROP_RETRY_MAX_DELAY] =
    g_param_spec_double ("retry-max-delay", NULL, NULL, 0, G_MAXINT32, 30,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DvtRuntime:retry-jitter:
   *
   * Spreads retry delays at random, so that many tasks failing together
   * do not retry together: with jitter j, each delay is multiplied by a
   * random factor between 1 - j and 1 + j, then capped. From 0 (the
   * default: exact delays) to 1.
   */
  properties[PROP_RETRY_JITTER] =
    g_param_spec_double ("retry-jitter", NULL, NULL, 0, 1, 0,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DvtRuntime:rate-limit:
   *
   * The most task starts per second, or 0 (the default) for no limit. A
   * token bucket: up to [property@Runtime:rate-limit-burst] tasks start at
   * once, then one per 1/rate seconds. Every attempt counts, retries
   * included; the items of a map count one by one. A task held back waits
   * on a timer and is counted in [struct@Stats].throttled.
   *
   * Setting it through [method@Runtime.set_rate_limit] refuses a rate of
   * 0 or less with an error; the property takes 0 to mean no limit.
   */
  properties[PROP_RATE_LIMIT] =
    g_param_spec_double ("rate-limit", NULL, NULL, 0, 1e9, 0,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DvtRuntime:rate-limit-burst:
   *
   * How many tasks may start at once under [property@Runtime:rate-limit]
   * before the rate applies. 0, the default, means max (1, rate).
   */
  properties[PROP_RATE_LIMIT_BURST] =
    g_param_spec_uint ("rate-limit-burst", NULL, NULL, 0, G_MAXINT32, 0,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT |
                       G_PARAM_STATIC_STRINGS);

  /**
   * DvtRuntime:event-context:
   *
   * The main context on which the runtime's events (its signals, those
   * of its tasks and of its [class@EventScope]s) are emitted, or %NULL (the
   * default) for a thread of the runtime's own, the events thread
   * (`<name>-events`), started with the first event to deliver. A GTK
   * application passes its main context here to receive events on its
   * main thread; GJS must, as it runs JavaScript only there.
   *
   * Handlers always run on that one thread, one at a time, in the order
   * the events happened; events are batched onto it, not one source each.
   * On the events thread a slow handler delays only later events, never
   * the runtime's work or its timers, and a handler may make blocking
   * calls. A waiting [method@Runtime.shutdown] returns once the events
   * thread has delivered every event.
   *
   * Events wait for their context to be iterated, holding their tasks and
   * so the runtime: a context given here must be iterated (or the runtime
   * shut down) for them to be freed.
   */
  properties[PROP_EVENT_CONTEXT] =
    g_param_spec_boxed ("event-context", NULL, NULL, G_TYPE_MAIN_CONTEXT,
                        G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                        G_PARAM_STATIC_STRINGS);

  /**
   * DvtRuntime:trace:
   *
   * Logs one line per event with g_debug() under the `Dovetail` log domain
   * (shown with `G_MESSAGES_DEBUG=Dovetail`). Also on when the environment
   * has `DVT_TRACE=1`. It applies to tasks accepted after it is set.
   */
  properties[PROP_TRACE] =
    g_param_spec_boolean ("trace", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * DvtRuntime:running:
   *
   * How many attempts of tasks are running now. Its notifications are
   * coalesced, at most one every 50 ms (the last value always comes), and
   * come on
   * the runtime's [property@Runtime:event-context] (by default its events
   * thread), for tasks accepted while a handler is connected to the
   * runtime: a GTK application that binds a spinner to it sets the
   * event-context to its main context, and connects before it submits.
   *
   * Since: 0.2
   */
  properties[PROP_RUNNING] =
    g_param_spec_uint64 ("running", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DvtRuntime:pending:
   *
   * How many accepted tasks have not ended yet, queued or running (a map
   * counts once). Notified as [property@Runtime:running] is.
   *
   * Since: 0.2
   */
  properties[PROP_PENDING] =
    g_param_spec_uint64 ("pending", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY |
                         G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  dvt_events_add_signals (DVT_TYPE_RUNTIME, DVT_EVENT_SIGNALS_RUNTIME, DVT_TYPE_TASK);
  dvt_events_set_delivery_hooks (NULL, runtime_batch_delivered);
  dvt_registry_set_class (&registry_class);
  dvt_fault_init ();

  dvt_i18n_init ();
}

static void
dvt_runtime_init (DvtRuntime *self)
{
  self->entry = dvt_registry_entry_new ();
  g_mutex_init (&self->watch_lock);
  /* The defaults stand even when g_object_new() refuses an out-of-range
   * value for a construct property (it then sets nothing). */
  self->defaults.retry_backoff = 0.1;
  self->defaults.retry_max_delay = 30;
}

/**
 * dvt_runtime_new:
 * @max_workers: the largest number of blocking functions that run at
 *   once, or 0 for the number of processors
 *
 * Creates a runtime, with its loop thread running.
 *
 * Returns: (transfer full): a new runtime
 */
DvtRuntime *
dvt_runtime_new (guint max_workers)
{
  return g_object_new (DVT_TYPE_RUNTIME, "max-workers", max_workers, NULL);
}

/**
 * dvt_runtime_get_context:
 * @self: a runtime
 *
 * Gets the main context that the runtime's loop thread iterates. Sources
 * attached to it run on the loop thread.
 *
 * Returns: (transfer none): the context
 */
GMainContext *
dvt_runtime_get_context (DvtRuntime *self)
{
  g_return_val_if_fail (DVT_IS_RUNTIME (self), NULL);

  return self->core->context;
}

/**
 * dvt_runtime_get_max_workers:
 * @self: a runtime
 *
 * Gets [property@Runtime:max-workers], resolved: never 0.
 *
 * Returns: the number of workers
 */
guint
dvt_runtime_get_max_workers (DvtRuntime *self)
{
  g_return_val_if_fail (DVT_IS_RUNTIME (self), 0);

  return self->max_workers;
}

/**
 * dvt_runtime_get_name:
 * @self: a runtime
 *
 * Gets [property@Runtime:name].
 *
 * Returns: (nullable): the name
 */
const char *
dvt_runtime_get_name (DvtRuntime *self)
{
  g_return_val_if_fail (DVT_IS_RUNTIME (self), NULL);

  return self->name;
}

/* ---- argument checks --------------------------------------------------- */

#define CHECK_ARG(expr)                                                      \
  G_STMT_START {                                                             \
    if (G_UNLIKELY (!(expr)))                                                \
      {                                                                      \
        g_return_if_fail_warning (G_LOG_DOMAIN, function, #expr);            \
        dvt_error_set_bad_argument (error, function, #expr);                 \
        return FALSE;                                                        \
      }                                                                      \
  } G_STMT_END

/* What every call that takes work checks, in one place: a runtime, a work
 * function, options, a cancellable, an unset out value (if @value_arg)
 * and an error not set yet. A bad one is the programmer's mistake:
 * reported as g_return_val_if_fail() does for @function, and in @error
 * (for a call that has one) so that language bindings raise. */
gboolean
dvt_runtime_check_call (const char    *function,
                        DvtRuntime    *self,
                        gconstpointer  func,
                        DvtOptions    *options,
                        GCancellable  *cancellable,
                        GValue        *value,
                        GError       **error)
{
  CHECK_ARG (DVT_IS_RUNTIME (self));
  CHECK_ARG (func != NULL);
  CHECK_ARG (options == NULL || DVT_IS_OPTIONS (options));
  CHECK_ARG (cancellable == NULL || G_IS_CANCELLABLE (cancellable));
  CHECK_ARG (value == NULL || !G_IS_VALUE (value));
  if (G_UNLIKELY (error != NULL && *error != NULL))
    {
      g_return_if_fail_warning (G_LOG_DOMAIN, function, "error == NULL || *error == NULL");
      return FALSE;
    }

  return TRUE;
}

/* What every _finish() checks: its runtime, a result of its own _async()
 * (@source_tag), an unset out value and an error not set yet. */
gboolean
dvt_runtime_check_finish (const char    *function,
                          DvtRuntime    *self,
                          GAsyncResult  *result,
                          gpointer       source_tag,
                          GValue        *value,
                          GError       **error)
{
  CHECK_ARG (DVT_IS_RUNTIME (self));
  CHECK_ARG (DVT_IS_TASK (result));
  CHECK_ARG (dvt_task_is_tagged ((DvtTask *) result, self, source_tag));
  CHECK_ARG (value == NULL || !G_IS_VALUE (value));
  if (G_UNLIKELY (error != NULL && *error != NULL))
    {
      g_return_if_fail_warning (G_LOG_DOMAIN, function, "error == NULL || *error == NULL");
      return FALSE;
    }

  return TRUE;
}

#undef CHECK_ARG

/* ---- submission -------------------------------------------------------- */

static DvtTask *
new_work_task (DvtRuntime     *self,
               DvtTaskKind     kind,
               gpointer        func,
               gpointer        func_data,
               GDestroyNotify  func_data_destroy,
               DvtOptions     *options,
               GCancellable   *cancellable)
{
  DvtTask *task = dvt_task_new (self->core, kind, options, cancellable);

  DvtPolicy *policy = dvt_policy_resolve (&self->defaults, options);

  task->func = func;
  task->func_data = func_data;
  task->func_data_destroy = func_data_destroy;
  if (policy != NULL)
    {
      dvt_task_set_policy (task, policy);
      dvt_policy_unref (policy);
    }

  if (kind == DVT_TASK_KIND_ASYNC &&
      options != NULL && dvt_options_get_use_caller_context (options))
    {
      GMainContext *context = g_main_context_ref_thread_default ();

      dvt_task_set_run_context (task, context);
      g_main_context_unref (context);
    }

  return task;
}

/* Accepts @task; on refusal, ends it with the error so that its callback,
 * if any, still runs. */
static gboolean
accept_task (DvtTask  *task,
             GError  **error)
{
  GError *local_error = NULL;

  if (!dvt_task_accept (task, &local_error))
    {
      dvt_task_set_flag (task, DVT_TASK_FLAG_FUNC_DONE);
      if (error != NULL)
        *error = g_error_copy (local_error);
      dvt_task_fail (task, local_error, TRUE);
      return FALSE;
    }

  return TRUE;
}

/* Accepts and dispatches @task (see accept_task()). */
static gboolean
start_task (DvtRuntime  *self,
            DvtTask     *task,
            GError     **error)
{
  if (!accept_task (task, error))
    return FALSE;

  dvt_task_dispatch (task);

  return TRUE;
}

/* The cancellable to give a blocking call's task: none if the calling
 * thread's watch takes @cancellable (see dvt_task_watch_caller()). */
static GCancellable *
blocking_cancellable (GCancellable *cancellable)
{
  return cancellable != NULL && !dvt_task_can_watch_caller () ? cancellable : NULL;
}

/* Runs @task to its end from a blocking call and reads its result.
 * @cancellable is the call's, if the task was made without it (see
 * blocking_cancellable()). */
static gboolean
run_to_end (DvtRuntime   *self,
            DvtTask      *task,
            GCancellable *cancellable,
            GValue       *value,
            GError      **error)
{
  gpointer watch = NULL;
  gboolean ok;

  /* Called in a section of the fork gate (see dvt-thread-private.h); the
   * wait is outside, the end may call the application. */
  if (cancellable != NULL)
    dvt_task_set_flag (task, DVT_TASK_FLAG_WANTS_CANCELLABLE);
  ok = accept_task (task, error);
  if (ok)
    {
      if (cancellable != NULL)
        watch = dvt_task_watch_caller (task, cancellable);
      dvt_task_dispatch (task);
      dvt_fork_gate_set (DVT_FORK_GATE_OUT);
      ok = dvt_task_wait_internal (task, -1, error);
      dvt_fork_gate_set (DVT_FORK_GATE_PURE);
      if (watch != NULL)
        dvt_task_unwatch_caller (watch);
    }
  dvt_fork_gate_set (DVT_FORK_GATE_CALLOUT);
  ok = ok && dvt_task_propagate_value (task, value, error);
  /* Refused or its wait failed: bindings convert the out value even on
   * failure, so give them one, as dvt_task_propagate_value() does. */
  if (!ok && value != NULL && !G_IS_VALUE (value))
    g_value_init (value, G_TYPE_POINTER);
  /* Free the function's data here, on the caller's thread, unless the call
   * was released while the function still runs: then where it returns. */
  dvt_task_release_func_data (task);
  if (!dvt_task_recycle (task))
    g_object_unref (task);

  return ok;
}

/**
 * dvt_runtime_run_blocking:
 * @self: a runtime
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy):
 *   starts the work
 * @func_data: data for @func
 * @func_data_destroy: (nullable): frees @func_data once @func is no longer
 *   needed: before this call returns, unless the call was released early
 *   (cancelled) while @func still runs, in which case it is freed where
 *   @func returns
 * @options: (nullable): options for this call
 * @cancellable: (nullable): a #GCancellable
 * @value: (out caller-allocates) (optional): an unset #GValue to receive
 *   the result
 * @error: return location for a #GError
 *
 * Runs an async function on the runtime's loop thread (or, with
 * [property@Options:use-caller-context], on this thread's thread-default
 * context, which is iterated meanwhile) and blocks until it completes its
 * task.
 *
 * This is how synchronous code uses GIO asynchronous APIs: @func starts
 * the operation, and its callback completes the task.
 *
 * Any thread may call this, many at once, except the loop thread itself
 * (%DVT_ERROR_WOULD_DEADLOCK). The error the work fails with reaches the
 * caller unchanged.
 *
 * Returns: (skip): %TRUE on success
 */
gboolean
dvt_runtime_run_blocking (DvtRuntime    *self,
                          DvtAsyncFunc   func,
                          gpointer       func_data,
                          GDestroyNotify func_data_destroy,
                          DvtOptions    *options,
                          GCancellable  *cancellable,
                          GValue        *value,
                          GError       **error)
{
  GCancellable *chained;
  DvtTask *task;
  DvtForkGate gate;
  gboolean ok;

  if (!dvt_runtime_check_call (G_STRFUNC, self, func, options, cancellable, value, error))
    return FALSE;

  if (!dvt_core_check_blocking (self->core, error))
    {
      if (func_data_destroy != NULL)
        func_data_destroy (func_data);
      if (value != NULL)
        g_value_init (value, G_TYPE_POINTER);
      return FALSE;
    }

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  chained = blocking_cancellable (cancellable);
  task = new_work_task (self, DVT_TASK_KIND_ASYNC, func, func_data,
                        func_data_destroy, options, chained);
  /* This call's reference, the live one and the start's. */
  task->internal_refs = 3;

  ok = run_to_end (self, task, chained == NULL ? cancellable : NULL, value, error);
  dvt_fork_gate_leave (gate);

  return ok;
}

/**
 * dvt_runtime_to_thread_blocking:
 * @self: a runtime
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy):
 *   the blocking function
 * @func_data: data for @func
 * @func_data_destroy: (nullable): frees @func_data once @func is no longer
 *   needed: before this call returns, unless the call was released early
 *   (cancelled) while @func still runs, in which case it is freed where
 *   @func returns
 * @options: (nullable): options for this call
 * @cancellable: (nullable): a #GCancellable
 * @value: (out caller-allocates) (optional): an unset #GValue to receive
 *   the result
 * @error: return location for a #GError
 *
 * Runs a blocking function on one of the runtime's workers and waits for
 * its result.
 *
 * Cancelling @cancellable releases the caller at once with
 * %G_IO_ERROR_CANCELLED; the function sees its cancellable cancelled and,
 * if it ignores it, keeps running in its thread, and its late result is
 * dropped.
 *
 * A thread keeps the "cancelled" handler that its blocking calls (this
 * one, [method@Runtime.run_blocking], [method@Runtime.invoke_blocking])
 * connect to the cancellable they are given, so that the next call with
 * the same cancellable need not connect again: it stays connected,
 * without a reference to the cancellable, until the thread passes
 * another one or ends.
 *
 * Returns: (skip): %TRUE on success
 */
gboolean
dvt_runtime_to_thread_blocking (DvtRuntime    *self,
                                DvtThreadFunc  func,
                                gpointer       func_data,
                                GDestroyNotify func_data_destroy,
                                DvtOptions    *options,
                                GCancellable  *cancellable,
                                GValue        *value,
                                GError       **error)
{
  GCancellable *chained;
  DvtTask *task;
  DvtForkGate gate;
  gboolean ok;

  if (!dvt_runtime_check_call (G_STRFUNC, self, func, options, cancellable, value, error))
    return FALSE;

  if (!dvt_core_check_blocking (self->core, error))
    {
      if (func_data_destroy != NULL)
        func_data_destroy (func_data);
      if (value != NULL)
        g_value_init (value, G_TYPE_POINTER);
      return FALSE;
    }

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  chained = blocking_cancellable (cancellable);
  task = new_work_task (self, DVT_TASK_KIND_THREAD, func, func_data,
                        func_data_destroy, options, chained);

  ok = run_to_end (self, task, chained == NULL ? cancellable : NULL, value, error);
  dvt_fork_gate_leave (gate);

  return ok;
}

typedef struct
{
  gconstpointer   identity;   /* first: see DVT_TASK_FLAG_FUNC_IN_DATA */
  DvtCallFunc     func;
  gpointer        func_data;
  GDestroyNotify  func_data_destroy;
} DvtInvoke;

static void
invoke_free (gpointer data)
{
  DvtInvoke *invoke = data;

  if (invoke->func_data_destroy != NULL)
    invoke->func_data_destroy (invoke->func_data);
  g_free (invoke);
}

/* The task is completed here, once the function has returned: a binding
 * has let go of its interpreter by then, so the released caller does not
 * wait for it. */
static void
invoke_thread (DvtTask      *task,
               GCancellable *cancellable,
               gpointer      data,
               GError      **error)
{
  DvtInvoke *invoke = data;
  GError *local_error = NULL;

  gboolean ok = invoke->func (invoke->func_data, &local_error);

  if (local_error != NULL)
    g_propagate_error (error, local_error);
  else if (ok)
    dvt_task_return_pointer (task, NULL, NULL);
  /* else FALSE without an error: left uncompleted, the task fails with
   * DVT_ERROR_NOT_COMPLETED. */
}

/**
 * dvt_runtime_invoke_blocking:
 * @self: a runtime
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy):
 *   the blocking function
 * @func_data: data for @func
 * @func_data_destroy: (nullable): frees @func_data, as for
 *   [method@Runtime.to_thread_blocking]
 * @options: (nullable): options for this call
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Runs @func on one of the runtime's workers and waits until it has
 * returned, like [method@Runtime.to_thread_blocking] (timeout, retries,
 * rate limit, events and cancellation apply), for a function that keeps
 * its result itself.
 *
 * This is the cheapest way for a binding to run a function of its own
 * language on a worker: nothing but @func_data crosses to the function,
 * and the task completes after @func has returned.
 *
 * An event scope for @func ([class@EventScope]) matches these calls.
 *
 * Returns: %TRUE if @func returned %TRUE
 */
gboolean
dvt_runtime_invoke_blocking (DvtRuntime     *self,
                             DvtCallFunc     func,
                             gpointer        func_data,
                             GDestroyNotify  func_data_destroy,
                             DvtOptions     *options,
                             GCancellable   *cancellable,
                             GError        **error)
{
  GCancellable *chained;
  DvtInvoke *invoke;
  DvtTask *task;
  DvtForkGate gate;
  gboolean ok;

  if (!dvt_runtime_check_call (G_STRFUNC, self, func, options, cancellable, NULL, error))
    return FALSE;

  if (!dvt_core_check_blocking (self->core, error))
    {
      if (func_data_destroy != NULL)
        func_data_destroy (func_data);
      return FALSE;
    }

  invoke = g_new (DvtInvoke, 1);
  invoke->identity = func;
  invoke->func = func;
  invoke->func_data = func_data;
  invoke->func_data_destroy = func_data_destroy;
  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  chained = blocking_cancellable (cancellable);
  task = new_work_task (self, DVT_TASK_KIND_THREAD, invoke_thread, invoke,
                        invoke_free, options, chained);
  /* Its identity for event scopes is @func, not the trampoline: the
   * first field of its data. */
  dvt_task_set_flag (task, DVT_TASK_FLAG_FUNC_IN_DATA);

  ok = run_to_end (self, task, chained == NULL ? cancellable : NULL, NULL, error);
  dvt_fork_gate_leave (gate);

  return ok;
}

/**
 * dvt_runtime_has_task_policy:
 * @self: a runtime
 * @options: (nullable): the options of a call
 *
 * Tells whether each task started with @options (each item, for a map)
 * gets a policy of its own: a timeout, retries, gates
 * ([method@Options.add_gate]) or the runtime's rate limit. A binding that
 * groups many small items into one task must not do so then, or the items
 * would share one timeout, one retry count and one entry of each gate.
 *
 * Returns: %TRUE if a timeout, retries, gates or a rate limit apply
 */
gboolean
dvt_runtime_has_task_policy (DvtRuntime *self,
                             DvtOptions *options)
{
  g_return_val_if_fail (DVT_IS_RUNTIME (self), FALSE);
  g_return_val_if_fail (options == NULL || DVT_IS_OPTIONS (options), FALSE);

  return dvt_runtime_resolve_task_policy (self, options, NULL);
}

/* Whether each task started with @options (each item, for a map) is a
 * task the runtime dispatches, times, retries and throttles on its own:
 * it gets a policy (a timeout, retries, gates) or the runtime has a rate
 * limit. The one place that decides it, for dvt_runtime_has_task_policy(),
 * dvt_runtime_get_map_runners() and a map's own items. If @policy is not
 * NULL, it is set to the policy resolved (NULL for none), which the caller
 * then owns. */
gboolean
dvt_runtime_resolve_task_policy (DvtRuntime  *self,
                                 DvtOptions  *options,
                                 DvtPolicy  **policy)
{
  gboolean rate_limited = dvt_rate_bucket_is_set (&self->core->rate);
  DvtPolicy *resolved;
  gboolean own;

  if (rate_limited && policy == NULL)
    return TRUE;

  resolved = dvt_policy_resolve (&self->defaults, options);
  own = rate_limited || resolved != NULL;
  if (policy != NULL)
    *policy = resolved;
  else
    g_clear_pointer (&resolved, dvt_policy_unref);

  return own;
}

/* Starts a task whose end @callback reports on the caller's context. */
static void
start_with_callback (DvtRuntime          *self,
                     DvtTaskKind          kind,
                     gpointer             func,
                     gpointer             func_data,
                     GDestroyNotify       func_data_destroy,
                     DvtOptions          *options,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data,
                     gpointer             source_tag)
{
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  DvtTask *task = new_work_task (self, kind, func, func_data, func_data_destroy,
                                 options, cancellable);

  dvt_task_set_callback (task, callback, user_data, source_tag);
  dvt_task_destroy_data_on_caller_context (task);
  start_task (self, task, NULL);
  g_object_unref (task);
  dvt_fork_gate_leave (gate);
}

/**
 * dvt_runtime_to_thread_async:
 * @self: a runtime
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy):
 *   the blocking function
 * @func_data: data for @func
 * @func_data_destroy: (nullable): frees @func_data when the task is done
 *   with it, on the same context as @callback
 * @options: (nullable): options for this call
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called on the
 *   thread-default main context of the calling thread once the task has
 *   ended
 * @user_data: data for @callback
 *
 * Runs a blocking function on one of the runtime's workers without
 * blocking the caller. @callback runs on the caller's thread-default
 * context; call [method@Runtime.to_thread_finish] there to read the result.
 *
 * Cancelling @cancellable ends the task at once with
 * %G_IO_ERROR_CANCELLED, as with [method@Runtime.to_thread_blocking].
 */
void
dvt_runtime_to_thread_async (DvtRuntime          *self,
                             DvtThreadFunc        func,
                             gpointer             func_data,
                             GDestroyNotify       func_data_destroy,
                             DvtOptions          *options,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  if (!dvt_runtime_check_call (G_STRFUNC, self, func, options, cancellable, NULL, NULL))
    return;

  start_with_callback (self, DVT_TASK_KIND_THREAD, func, func_data, func_data_destroy,
                       options, cancellable, callback, user_data,
                       dvt_runtime_to_thread_async);
}

/**
 * dvt_runtime_run_async:
 * @self: a runtime
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy):
 *   starts the work
 * @func_data: data for @func
 * @func_data_destroy: (nullable): frees @func_data when the task is done
 *   with it, on the same context as @callback
 * @options: (nullable): options for this call
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called on the
 *   thread-default main context of the calling thread once the task has
 *   ended
 * @user_data: data for @callback
 *
 * The main-loop twin of [method@Runtime.run_blocking]: starts an async
 * function on the runtime's loop thread (or, with
 * [property@Options:use-caller-context], on this thread's thread-default
 * context) and returns at once. @callback runs on the caller's
 * thread-default context; call [method@Runtime.run_finish] there.
 *
 * Timeouts, retries, the rate limit, events and cancellation apply as for
 * the blocking call.
 *
 * Since: 0.2
 */
void
dvt_runtime_run_async (DvtRuntime          *self,
                       DvtAsyncFunc         func,
                       gpointer             func_data,
                       GDestroyNotify       func_data_destroy,
                       DvtOptions          *options,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  if (!dvt_runtime_check_call (G_STRFUNC, self, func, options, cancellable, NULL, NULL))
    return;

  start_with_callback (self, DVT_TASK_KIND_ASYNC, func, func_data, func_data_destroy,
                       options, cancellable, callback, user_data, dvt_runtime_run_async);
}

/**
 * dvt_runtime_run_finish:
 * @self: a runtime
 * @result: the result given to the callback
 * @value: (out caller-allocates) (optional): an unset #GValue to receive
 *   the result
 * @error: return location for a #GError
 *
 * Finishes [method@Runtime.run_async].
 *
 * Returns: (skip): %TRUE on success
 *
 * Since: 0.2
 */
gboolean
dvt_runtime_run_finish (DvtRuntime    *self,
                        GAsyncResult  *result,
                        GValue        *value,
                        GError       **error)
{
  if (!dvt_runtime_check_finish (G_STRFUNC, self, result, dvt_runtime_run_async, value, error))
    return FALSE;

  return dvt_task_propagate_value ((DvtTask *) result, value, error);
}

/**
 * dvt_runtime_to_thread_finish:
 * @self: a runtime
 * @result: the result given to the callback
 * @value: (out caller-allocates) (optional): an unset #GValue to receive
 *   the result
 * @error: return location for a #GError
 *
 * Finishes [method@Runtime.to_thread_async].
 *
 * Returns: (skip): %TRUE on success
 */
gboolean
dvt_runtime_to_thread_finish (DvtRuntime    *self,
                              GAsyncResult  *result,
                              GValue        *value,
                              GError       **error)
{
  if (!dvt_runtime_check_finish (G_STRFUNC, self, result, dvt_runtime_to_thread_async,
                                 value, error))
    return FALSE;

  return dvt_task_propagate_value ((DvtTask *) result, value, error);
}

/* Makes and accepts the task of a future (submit(), schedule()) without
 * dispatching it: its caller dispatches it with dvt_task_dispatch(), at
 * once or later (a DvtTaskGroup holds members back under its
 * max-concurrency). @identity, if not %NULL, is the function that event
 * scopes see when the options name none (@func may wrap it). Until then it is live and queued: counted, cancelled
 * by dvt_task_cancel(), by @cancellable (connected here) and by a
 * shutdown that cancels pending work. Called in a PURE section of the
 * fork gate. */
DvtTask *
dvt_runtime_accept_future (DvtRuntime      *self,
                           DvtTaskKind      kind,
                           gpointer         func,
                           gpointer         func_data,
                           GDestroyNotify   func_data_destroy,
                           gconstpointer    identity,
                           DvtOptions      *options,
                           GCancellable    *cancellable,
                           GError         **error)
{
  DvtTask *task;

  task = new_work_task (self, kind, func, func_data, func_data_destroy,
                        options, cancellable);
  /* @func wraps the caller's function: event scopes match that one. */
  if (identity != NULL && DVT_TASK_EXTRA (task, function, NULL) == NULL)
    dvt_task_extra (task)->function = identity;
  /* A future can be cancelled while it runs: its work gets a cancellable,
   * made when it starts so that a queued task costs none. Its own signals
   * may get handlers. */
  dvt_task_set_flag (task, DVT_TASK_FLAG_WANTS_CANCELLABLE | DVT_TASK_FLAG_FUTURE);

  if (!accept_task (task, error))
    {
      dvt_fork_gate_set (DVT_FORK_GATE_CALLOUT);
      g_clear_object (&task);
      dvt_fork_gate_set (DVT_FORK_GATE_PURE);
      return NULL;
    }
  dvt_task_connect_caller_cancellable (task);

  return task;
}

static DvtTask *
start_future (DvtRuntime      *self,
              DvtTaskKind      kind,
              gpointer         func,
              gpointer         func_data,
              GDestroyNotify   func_data_destroy,
              DvtOptions      *options,
              GCancellable    *cancellable,
              GError         **error)
{
  DvtTask *task;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  task = dvt_runtime_accept_future (self, kind, func, func_data, func_data_destroy,
                                    NULL, options, cancellable, error);
  if (task != NULL)
    dvt_task_dispatch (task);
  dvt_fork_gate_leave (gate);

  return task;
}

/* A future that no work function completes: accepted like the tasks of
 * submit() and schedule() (live, counted as queued, cancelled by
 * dvt_task_cancel(), by @cancellable and by a shutdown that cancels
 * pending work), but never dispatched, so that it takes no worker, no
 * start and no token of the rate limit. Whoever made it completes it with
 * a dvt_task_return function. A blocking wait for it iterates
 * @wait_context meanwhile when it can acquire it (the context where the
 * work it stands for starts). Objects built on the runtime hand these to
 * their callers (DvtCache: one per caller of a shared run). */
DvtTask *
dvt_runtime_new_future (DvtRuntime    *self,
                        GMainContext  *wait_context,
                        GCancellable  *cancellable,
                        GError       **error)
{
  DvtTask *task;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  task = dvt_task_new (self->core, DVT_TASK_KIND_ASYNC, NULL, cancellable);
  dvt_task_set_flag (task, DVT_TASK_FLAG_FUTURE | DVT_TASK_FLAG_FUNC_DONE);
  if (wait_context != NULL)
    dvt_task_set_run_context (task, wait_context);

  if (accept_task (task, error))
    {
      /* It waits as a queued task does, until completed or cancelled. */
      dvt_task_connect_caller_cancellable (task);
      g_atomic_int_compare_and_exchange (&task->state, DVT_TASK_NEW, DVT_TASK_QUEUED);
    }
  else
    {
      dvt_fork_gate_set (DVT_FORK_GATE_CALLOUT);
      g_clear_object (&task);
    }
  dvt_fork_gate_leave (gate);

  return task;
}

/**
 * dvt_runtime_schedule:
 * @self: a runtime
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy):
 *   starts the work
 * @func_data: data for @func
 * @func_data_destroy: (nullable): frees @func_data when the task is done
 *   with it
 * @options: (nullable): options for this call
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Starts an async function on the runtime's loop thread (or on the
 * caller's thread-default context with
 * [property@Options:use-caller-context]) and returns its task at once.
 *
 * The task is a future: wait on it with [method@Task.wait], read it with
 * `dvt_task_propagate_*()`, cancel it with [method@Task.cancel].
 *
 * Returns: (transfer full): the task, or %NULL if the runtime was shut down
 */
DvtTask *
dvt_runtime_schedule (DvtRuntime      *self,
                      DvtAsyncFunc     func,
                      gpointer         func_data,
                      GDestroyNotify   func_data_destroy,
                      DvtOptions      *options,
                      GCancellable    *cancellable,
                      GError         **error)
{
  if (!dvt_runtime_check_call (G_STRFUNC, self, func, options, cancellable, NULL, error))
    return NULL;

  return start_future (self, DVT_TASK_KIND_ASYNC, func, func_data,
                       func_data_destroy, options, cancellable, error);
}

/**
 * dvt_runtime_submit:
 * @self: a runtime
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy):
 *   the blocking function
 * @func_data: data for @func
 * @func_data_destroy: (nullable): frees @func_data when the task is done
 *   with it
 * @options: (nullable): options for this call
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Queues a blocking function for a worker and returns its task at once:
 * a future, as with [method@Runtime.schedule]. Cancelling it before it
 * starts means it never starts.
 *
 * Returns: (transfer full): the task, or %NULL if the runtime was shut down
 */
DvtTask *
dvt_runtime_submit (DvtRuntime      *self,
                    DvtThreadFunc    func,
                    gpointer         func_data,
                    GDestroyNotify   func_data_destroy,
                    DvtOptions      *options,
                    GCancellable    *cancellable,
                    GError         **error)
{
  if (!dvt_runtime_check_call (G_STRFUNC, self, func, options, cancellable, NULL, error))
    return NULL;

  return start_future (self, DVT_TASK_KIND_THREAD, func, func_data,
                       func_data_destroy, options, cancellable, error);
}

/* ---- lifecycle --------------------------------------------------------- */

/**
 * dvt_runtime_shutdown:
 * @self: a runtime
 * @wait: whether to wait until the work in flight has ended and the
 *   runtime's threads have stopped
 * @cancel_pending: whether to cancel the work in flight instead of letting
 *   it finish
 *
 * Stops accepting work: later calls fail with %DVT_ERROR_CLOSED.
 *
 * With @cancel_pending, every task that has not ended is cancelled: queued
 * work never starts, and threads blocked waiting for such a task return at
 * once with %G_IO_ERROR_CANCELLED. Otherwise queued and running work goes
 * on to its end. A task waiting for a timed start
 * ([property@Options:delay], [property@Options:not-before]) is queued
 * work: cancelled with @cancel_pending, else started at its time (and
 * waited for by a waiting shutdown).
 *
 * With @wait, the call returns once the work has ended and the loop thread
 * and the workers have stopped; called from one of the runtime's own
 * threads, it does not wait. Without it, it returns at once.
 *
 * Shutting down is idempotent and thread-safe: every call after the first
 * may still cancel or wait.
 */
void
dvt_runtime_shutdown (DvtRuntime *self,
                      gboolean    wait,
                      gboolean    cancel_pending)
{
  DvtCore *core;
  GPtrArray *cancel = NULL;

  g_return_if_fail (DVT_IS_RUNTIME (self));

  core = self->core;

  /* In a forked child, a runtime of the parent has no threads to stop. */
  if (dvt_registry_is_inherited (self->entry))
    {
      g_atomic_int_set (&core->closed, 1);
      return;
    }
  dvt_registry_note_shutdown (self->entry);

  /* Closed before the live tasks are listed: a task accepted meanwhile
   * is in the list, and none is accepted after it. */
  g_atomic_int_set (&core->closed, 1);
  fire_shutdown_watches (self);
  if (cancel_pending)
    cancel = dvt_task_list_live (core);

  if (cancel != NULL)
    {
      /* Cancellations run the cancellables' handlers: the application's. */
      DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_CALLOUT);

      for (guint i = 0; i < cancel->len; i++)
        {
          DvtTask *task = g_ptr_array_index (cancel, i);

          dvt_task_end_by_runtime (task,
                                   g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                        _("The runtime was shut down "
                                                          "before the task ended")));
        }
      g_ptr_array_unref (cancel);
      dvt_fork_gate_leave (gate);
    }

  if (wait && !dvt_core_is_loop_thread (core) && dvt_pool_get_current () != &core->pool)
    {
      /* Outside the fork gate: its threads may be waiting at the gate. */
      DvtForkGate gate = dvt_fork_gate_suspend ();

      dvt_core_wait_idle (core);
      dvt_core_stop (core, TRUE);
      dvt_fork_gate_leave (gate);
    }
}

/**
 * dvt_runtime_is_shutdown:
 * @self: a runtime
 *
 * Tells whether [method@Runtime.shutdown] has been called.
 *
 * Returns: %TRUE once the runtime accepts no more work
 */
gboolean
dvt_runtime_is_shutdown (DvtRuntime *self)
{
  g_return_val_if_fail (DVT_IS_RUNTIME (self), TRUE);

  return g_atomic_int_get (&self->core->closed) != 0;
}

static void
shutdown_thread (GTask        *gtask,
                 gpointer      source,
                 gpointer      task_data,
                 GCancellable *cancellable)
{
  dvt_runtime_shutdown (source, TRUE, FALSE);
  g_task_return_boolean (gtask, TRUE);
}

/**
 * dvt_runtime_shutdown_async:
 * @self: a runtime
 * @cancel_pending: whether to cancel the work in flight instead of letting
 *   it finish
 * @cancellable: (nullable): cancels the wait, not the shutdown
 * @callback: (scope async) (closure user_data): called on the
 *   thread-default main context of the calling thread once the work has
 *   ended and the runtime's threads have stopped
 * @user_data: data for @callback
 *
 * The main-loop twin of a waiting [method@Runtime.shutdown]: stops
 * accepting work at once (later calls fail with %DVT_ERROR_CLOSED), cancels
 * the work in flight if asked, and reports to @callback once everything
 * has ended, without blocking the caller: a GTK application can drain its
 * work when its window closes while its main loop goes on. Call
 * [method@Runtime.shutdown_finish] in @callback.
 *
 * It may be called more than once, from any thread: every call's callback
 * runs. Cancelling @cancellable ends that wait at once with
 * %G_IO_ERROR_CANCELLED; the shutdown itself goes on.
 *
 * Since: 0.2
 */
void
dvt_runtime_shutdown_async (DvtRuntime          *self,
                            gboolean             cancel_pending,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) gtask = NULL;

  g_return_if_fail (DVT_IS_RUNTIME (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  gtask = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (gtask, dvt_runtime_shutdown_async);
  g_task_set_name (gtask, "[dovetail] dvt_runtime_shutdown_async");

  /* Closes and cancels now: neither waits. */
  dvt_runtime_shutdown (self, FALSE, cancel_pending);

  /* The wait for the work and the threads' stop, on a thread of GLib's
   * (never one of the runtime's own, which could not wait for itself). */
  g_task_set_return_on_cancel (gtask, TRUE);
  g_task_run_in_thread (gtask, shutdown_thread);
}

/**
 * dvt_runtime_shutdown_finish:
 * @self: a runtime
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Runtime.shutdown_async].
 *
 * Returns: %TRUE once the runtime has stopped; %FALSE with
 *   %G_IO_ERROR_CANCELLED if the wait was cancelled first
 *
 * Since: 0.2
 */
gboolean
dvt_runtime_shutdown_finish (DvtRuntime    *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  dvt_return_val_if_fail_error (DVT_IS_RUNTIME (self), FALSE, error);
  dvt_return_val_if_fail_error (g_task_is_valid (result, self), FALSE, error);
  dvt_return_val_if_fail_error (g_task_get_source_tag (G_TASK (result)) ==
                                dvt_runtime_shutdown_async, FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* A wait for the runtime's work to end, as a blocking call can make it:
 * not on the loop thread, not from a work function of the runtime (whose
 * own task is part of that work). */
static gboolean
check_wait_idle (DvtRuntime  *self,
                 GError     **error)
{
  if (!dvt_core_check_blocking (self->core, error))
    return FALSE;

  if (dvt_task_running_in (self->core))
    {
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_WOULD_DEADLOCK,
                           _("A work function waited for its runtime to be "
                             "idle, which it cannot be while the function "
                             "runs"));
      return FALSE;
    }

  return TRUE;
}

/**
 * dvt_runtime_wait_idle:
 * @self: a runtime
 * @timeout: the longest time to wait, in seconds; 0 or less waits as long
 *   as it takes
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocks until the runtime is idle: no task is queued or running, and
 * every task that ended has delivered its callback to its context's queue.
 * The runtime stays open, unlike with [method@Runtime.shutdown]; work
 * submitted meanwhile is waited for too.
 *
 * Fails at once with %DVT_ERROR_WOULD_DEADLOCK on the runtime's loop
 * thread or in one of its work functions.
 *
 * Returns: %TRUE once idle; %FALSE with %G_IO_ERROR_TIMED_OUT or
 *   %G_IO_ERROR_CANCELLED
 *
 * Since: 0.2
 */
gboolean
dvt_runtime_wait_idle (DvtRuntime    *self,
                       double         timeout,
                       GCancellable  *cancellable,
                       GError       **error)
{
  gint64 deadline = -1;
  DvtForkGate gate;
  gboolean idle;

  dvt_return_val_if_fail_error (DVT_IS_RUNTIME (self), FALSE, error);
  dvt_return_val_if_fail_error (cancellable == NULL || G_IS_CANCELLABLE (cancellable),
                                FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_wait_idle (self, error) ||
      g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  if (timeout > 0 && timeout < (double) (G_MAXINT64 / 4) / G_USEC_PER_SEC)
    deadline = g_get_monotonic_time () + (gint64) (timeout * G_USEC_PER_SEC);

  gate = dvt_fork_gate_suspend ();
  idle = dvt_core_wait_idle_until (self->core, deadline, cancellable);
  dvt_fork_gate_leave (gate);

  if (idle)
    return TRUE;
  if (!g_cancellable_set_error_if_cancelled (cancellable, error))
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                 g_dngettext (GETTEXT_PACKAGE,
                              "The runtime was still busy after %g second",
                              "The runtime was still busy after %g seconds",
                              dvt_i18n_plural_count (timeout)),
                 timeout);

  return FALSE;
}

typedef struct
{
  int           claimed;      /* atomic */
  GCancellable *cancellable;
  gulong        handler;
} IdleOp;

static void
idle_op_free (gpointer data)
{
  IdleOp *op = data;

  g_clear_object (&op->cancellable);
  g_free (op);
}

static gboolean
idle_op_claim (GTask *gtask)
{
  IdleOp *op = g_task_get_task_data (gtask);

  return g_atomic_int_compare_and_exchange (&op->claimed, 0, 1);
}

/* Never from inside the cancellable's handler (see dvt_task_wait_async()). */
static void
idle_op_disconnect (GTask *gtask)
{
  IdleOp *op = g_task_get_task_data (gtask);
  gulong handler = op->handler;

  op->handler = 0;
  if (handler != 0)
    g_cancellable_disconnect (op->cancellable, handler);
}

static void
idle_op_reached (gpointer data)
{
  GTask *gtask = data;

  if (idle_op_claim (gtask))
    {
      idle_op_disconnect (gtask);
      g_task_return_boolean (gtask, TRUE);
    }
  g_object_unref (gtask);
}

static void
idle_op_cancelled (GCancellable *cancellable,
                   GTask        *gtask)
{
  if (idle_op_claim (gtask))
    g_task_return_new_error (gtask, G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s",
                             _("The wait for the runtime to be idle was cancelled"));
}

/**
 * dvt_runtime_wait_idle_async:
 * @self: a runtime
 * @cancellable: (nullable): cancels the wait
 * @callback: (scope async) (closure user_data): called on the
 *   thread-default main context of the calling thread once the runtime is
 *   idle
 * @user_data: data for @callback
 *
 * The main-loop twin of [method@Runtime.wait_idle]. @callback runs on the
 * caller's thread-default context, after this call has returned; call
 * [method@Runtime.wait_idle_finish] there.
 *
 * Since: 0.2
 */
void
dvt_runtime_wait_idle_async (DvtRuntime          *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  GTask *gtask;
  IdleOp *op;

  g_return_if_fail (DVT_IS_RUNTIME (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  gtask = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (gtask, dvt_runtime_wait_idle_async);
  g_task_set_name (gtask, "[dovetail] dvt_runtime_wait_idle_async");
  g_task_set_check_cancellable (gtask, FALSE);
  op = g_new0 (IdleOp, 1);
  g_task_set_task_data (gtask, op, idle_op_free);

  if (cancellable != NULL)
    {
      op->cancellable = g_object_ref (cancellable);
      op->handler = g_cancellable_connect (cancellable, G_CALLBACK (idle_op_cancelled),
                                           g_object_ref (gtask), g_object_unref);
    }

  /* At once if idle now: GTask delivers it in a later iteration. */
  dvt_core_when_idle (self->core, idle_op_reached, gtask);
}

/**
 * dvt_runtime_wait_idle_finish:
 * @self: a runtime
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Runtime.wait_idle_async].
 *
 * Returns: %TRUE once the runtime was idle; %FALSE with
 *   %G_IO_ERROR_CANCELLED if the wait was cancelled first
 *
 * Since: 0.2
 */
gboolean
dvt_runtime_wait_idle_finish (DvtRuntime    *self,
                              GAsyncResult  *result,
                              GError       **error)
{
  dvt_return_val_if_fail_error (DVT_IS_RUNTIME (self), FALSE, error);
  dvt_return_val_if_fail_error (g_task_is_valid (result, self), FALSE, error);
  dvt_return_val_if_fail_error (g_task_get_source_tag (G_TASK (result)) ==
                                dvt_runtime_wait_idle_async, FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  idle_op_disconnect (G_TASK (result));

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * dvt_runtime_cancel_all:
 * @self: a runtime
 *
 * Cancels every task of the runtime that has not ended, as
 * [method@Task.cancel] does for one, and keeps the runtime open: unlike a
 * shutdown, work submitted afterwards runs as usual. Work submitted by
 * another thread while this runs may be cancelled or not.
 *
 * Returns: how many tasks this call cancelled
 *
 * Since: 0.2
 */
guint
dvt_runtime_cancel_all (DvtRuntime *self)
{
  g_autoptr(GPtrArray) live = NULL;
  DvtForkGate gate;
  guint n = 0;

  g_return_val_if_fail (DVT_IS_RUNTIME (self), 0);

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  live = dvt_task_list_live (self->core);
  /* Cancellations run the cancellables' handlers: the application's. */
  dvt_fork_gate_set (DVT_FORK_GATE_CALLOUT);
  for (guint i = 0; i < live->len; i++)
    if (dvt_task_end_by_runtime (g_ptr_array_index (live, i),
                                 g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                      _("The task was cancelled with "
                                                        "all the runtime’s work"))))
      n++;
  g_clear_pointer (&live, g_ptr_array_unref);
  dvt_fork_gate_leave (gate);

  return n;
}

/**
 * dvt_runtime_get_stats:
 * @self: a runtime
 *
 * Takes a snapshot of the runtime's counters.
 *
 * Returns: (transfer full): a copy of the counters
 */
DvtStats *
dvt_runtime_get_stats (DvtRuntime *self)
{
  DvtCore *core;
  DvtStats *stats;

  g_return_val_if_fail (DVT_IS_RUNTIME (self), NULL);

  core = self->core;
  stats = g_new0 (DvtStats, 1);
  stats->queued = DVT_COUNTER_GET (&core->n_queued);
  stats->started = DVT_COUNTER_GET (&core->n_started);
  stats->done = DVT_COUNTER_GET (&core->n_done);
  stats->error = DVT_COUNTER_GET (&core->n_error);
  stats->cancelled = DVT_COUNTER_GET (&core->n_cancelled);
  stats->retries = DVT_COUNTER_GET (&core->n_retries);
  stats->throttled = DVT_COUNTER_GET (&core->n_throttled);
  stats->timed_out = DVT_COUNTER_GET (&core->n_timed_out);
  stats->running = runtime_count_running (self);
  {
    guint64 ended = stats->done + stats->error + stats->cancelled;

    stats->pending = stats->queued > ended ? stats->queued - ended : 0;
  }
  {
    double times[4];

    dvt_histogram_read (&core->queue_wait, times);
    stats->queue_wait_p50 = times[0];
    stats->queue_wait_p90 = times[1];
    stats->queue_wait_p99 = times[2];
    stats->queue_wait_max = times[3];
    dvt_histogram_read (&core->run_time, times);
    stats->run_time_p50 = times[0];
    stats->run_time_p90 = times[1];
    stats->run_time_p99 = times[2];
    stats->run_time_max = times[3];
  }

  g_mutex_lock (&core->counters_lock);
  if (core->counters != NULL)
    {
      GHashTableIter iter;
      gpointer name, value;

      stats->counters = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      g_hash_table_iter_init (&iter, core->counters);
      while (g_hash_table_iter_next (&iter, &name, &value))
        g_hash_table_insert (stats->counters, g_strdup (name),
                             g_memdup2 (value, sizeof (gint64)));
    }
  g_mutex_unlock (&core->counters_lock);

  return stats;
}

/**
 * dvt_runtime_set_rate_limit:
 * @self: a runtime
 * @rate: the most task starts per second; more than 0
 * @burst: how many may start at once before the rate applies, or 0 for
 *   max (1, @rate)
 * @error: return location for a #GError
 *
 * Limits how fast tasks start (see [property@Runtime:rate-limit]). A rate
 * of 0 or less, or not a number, is refused with
 * %DVT_ERROR_INVALID_ARGUMENT; remove the limit with
 * [method@Runtime.clear_rate_limit].
 *
 * Returns: %TRUE if the limit was set
 */
gboolean
dvt_runtime_set_rate_limit (DvtRuntime  *self,
                            double       rate,
                            guint        burst,
                            GError     **error)
{
  dvt_return_val_if_fail_error (DVT_IS_RUNTIME (self), FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!(rate > 0) || rate > 1e9 || burst > G_MAXINT32)
    {
      g_set_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                   /* Translators: %g: the rate asked for; %u: the burst. */
                   _("A rate limit must be more than 0 and at most 1e9 task "
                     "starts per second (got %g, burst %u); to remove the "
                     "limit, clear it"),
                   rate, burst);
      return FALSE;
    }

  DVT_CALLOUT (g_object_freeze_notify (G_OBJECT (self));
               g_object_set (self, "rate-limit-burst", burst, "rate-limit", rate, NULL);
               g_object_thaw_notify (G_OBJECT (self)));

  return TRUE;
}

/**
 * dvt_runtime_clear_rate_limit:
 * @self: a runtime
 *
 * Removes the limit set with [method@Runtime.set_rate_limit]: tasks start
 * as soon as a worker is free.
 */
void
dvt_runtime_clear_rate_limit (DvtRuntime *self)
{
  g_return_if_fail (DVT_IS_RUNTIME (self));

  g_object_set (self, "rate-limit", 0.0, NULL);
}

/**
 * dvt_runtime_inc_stat:
 * @self: a runtime
 * @name: the counter's name
 * @delta: what to add (may be negative)
 *
 * Adds @delta to a counter of the application's own, created at 0 on
 * first use; it stops at %G_MAXINT64 or %G_MININT64 rather than wrap. Snapshots from [method@Runtime.get_stats] carry the
 * counters: read them with [method@Stats.get_counter]. Any thread may
 * call this.
 */
void
dvt_runtime_inc_stat (DvtRuntime *self,
                      const char *name,
                      gint64      delta)
{
  DvtCore *core;
  gint64 *value;

  g_return_if_fail (DVT_IS_RUNTIME (self));
  g_return_if_fail (name != NULL);

  core = self->core;
  g_mutex_lock (&core->counters_lock);
  if (core->counters == NULL)
    core->counters = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  value = g_hash_table_lookup (core->counters, name);
  if (value == NULL)
    {
      value = g_new0 (gint64, 1);
      g_hash_table_insert (core->counters, g_strdup (name), value);
    }
  /* Saturates rather than wraps. */
  if (__builtin_add_overflow (*value, delta, value))
    *value = delta > 0 ? G_MAXINT64 : G_MININT64;
  g_mutex_unlock (&core->counters_lock);
}

/* ---- the registry ------------------------------------------------------- */

static void
registry_shutdown (gpointer runtime,
                   gboolean wait,
                   gboolean cancel_pending)
{
  dvt_runtime_shutdown (runtime, wait, cancel_pending);
}

static gboolean
registry_is_shutdown (gpointer runtime)
{
  return dvt_runtime_is_shutdown (runtime);
}

static GObject *
registry_create_default (void)
{
  return g_object_new (DVT_TYPE_RUNTIME, "name", "dvt-default", NULL);
}

static const DvtRegistryClass registry_class = {
  .shutdown = registry_shutdown,
  .is_shutdown = registry_is_shutdown,
  .create_default = registry_create_default,
};

/**
 * dvt_runtime_list_active:
 *
 * Lists the registered runtimes that are alive and not shut down, in the
 * order they were created.
 *
 * Every runtime registers itself when it is constructed, unless
 * [property@Runtime:auto-register] is %FALSE. The registry holds weak
 * references: it never keeps a runtime alive, and a runtime leaves it when
 * it is finalized.
 *
 * Returns: (transfer full) (element-type DvtRuntime): the runtimes, each
 *   with a reference the caller must drop (`g_list_free_full (list,
 *   g_object_unref)`)
 */
GList *
dvt_runtime_list_active (void)
{
  g_autoptr(GPtrArray) runtimes = dvt_registry_snapshot (FALSE);
  GList *list = NULL;

  for (guint i = runtimes->len; i > 0; i--)
    {
      DvtRuntime *runtime = g_ptr_array_index (runtimes, i - 1);

      if (!dvt_runtime_is_shutdown (runtime))
        list = g_list_prepend (list, g_object_ref (runtime));
    }

  return list;
}

/**
 * dvt_runtime_shutdown_all:
 * @wait: whether to wait, as [method@Runtime.shutdown] does
 * @cancel_pending: whether to cancel the work in flight, as
 *   [method@Runtime.shutdown] does
 *
 * Shuts down every registered runtime that is still alive.
 *
 * All of them are first shut down without waiting (so that, with
 * @cancel_pending, all their work is cancelled at once), then, with @wait,
 * each in turn is waited for. The call goes on past a runtime that cannot
 * be shut down or waited for: one finalized meanwhile is skipped, and one
 * whose thread this is (the calling thread is its loop thread or one of its
 * workers) is shut down without waiting, as [method@Runtime.shutdown]
 * does there. Runtimes already shut down are waited for too, with @wait,
 * but are not counted.
 *
 * Runtimes constructed with [property@Runtime:auto-register] set to
 * %FALSE are left alone. The shutdown hook
 * ([func@Runtime.set_shutdown_hook]) plays no part here.
 *
 * Returns: how many runtimes this call shut down: those that were still
 *   accepting work when it reached them
 */
guint
dvt_runtime_shutdown_all (gboolean wait,
                          gboolean cancel_pending)
{
  g_autoptr(GPtrArray) runtimes = dvt_registry_snapshot (FALSE);
  guint n_shut_down = 0;

  for (guint i = 0; i < runtimes->len; i++)
    {
      DvtRuntime *runtime = g_ptr_array_index (runtimes, i);

      if (!dvt_runtime_is_shutdown (runtime))
        n_shut_down++;
      dvt_runtime_shutdown (runtime, FALSE, cancel_pending);
    }

  if (wait)
    for (guint i = 0; i < runtimes->len; i++)
      dvt_runtime_shutdown (g_ptr_array_index (runtimes, i), TRUE, cancel_pending);

  return n_shut_down;
}

/**
 * dvt_runtime_set_shutdown_hook:
 * @hook: (nullable) (scope notified) (closure user_data) (destroy destroy):
 *   the function to run at exit or on SIGINT/SIGTERM, or %NULL to remove
 *   the one set
 * @user_data: data for @hook
 * @destroy: (nullable): frees @user_data once @hook has run or has been
 *   replaced
 *
 * Sets the function that Dovetail runs, instead of its own shutdown, when
 * the process exits or receives SIGINT or SIGTERM while at least one live
 * runtime has [property@Runtime:shutdown-on-exit] set.
 *
 * The hook runs exactly once: the first of those events takes it (and
 * calls @destroy afterwards), and from then on Dovetail's own shutdown of
 * the runtimes with [property@Runtime:shutdown-on-exit] never runs in this
 * process, neither for that event nor for a later one (a process that
 * survives a signal and then exits, for example): the application has
 * taken charge of it. The hook is then on its own to shut the runtimes
 * down, with [func@Runtime.shutdown_all] or [method@Runtime.shutdown].
 * Setting another hook afterwards makes that one run once in turn.
 *
 * On a signal, the hook runs on Dovetail's signal-watcher thread, and the
 * signal goes on to its previous disposition once the hook returns; at
 * exit it runs in the exiting thread, from an atexit() handler.
 *
 * Replacing or removing a hook calls the @destroy of the previous one.
 */
void
dvt_runtime_set_shutdown_hook (DvtShutdownHook hook,
                               gpointer        user_data,
                               GDestroyNotify  destroy)
{
  dvt_registry_set_hook (hook, user_data, destroy);
}

/**
 * dvt_runtime_get_default:
 *
 * Gets the process-wide runtime, creating it on first use. Once it has
 * been shut down, the next call creates a new one. Like any runtime, it
 * registers itself (see [func@Runtime.list_active]).
 *
 * A runtime returned here stays valid for the life of the process, even
 * after it has been shut down and replaced.
 *
 * In the child of a fork(), the parent's default runtime is forgotten
 * (its threads did not follow), and this creates a new one.
 *
 * Returns: (transfer none): the default runtime
 */
DvtRuntime *
dvt_runtime_get_default (void)
{
  /* The class gives the registry its functions. */
  g_type_class_unref (g_type_class_ref (DVT_TYPE_RUNTIME));

  return DVT_RUNTIME (dvt_registry_get_default ());
}

/**
 * dvt_runtime_default_is_alive:
 *
 * Tells whether the default runtime exists and has not been shut down,
 * without creating it.
 *
 * Returns: %TRUE if [func@Runtime.get_default] would return an existing
 *   runtime that accepts work
 */
gboolean
dvt_runtime_default_is_alive (void)
{
  g_type_class_unref (g_type_class_ref (DVT_TYPE_RUNTIME));

  return dvt_registry_default_is_alive ();
}

/**
 * dvt_runtime_run_exit_handler:
 *
 * Does now what Dovetail does when the process exits: puts back the
 * dispositions of SIGINT and SIGTERM that it replaced, stops its signal
 * watcher and, if at least one live runtime has
 * [property@Runtime:shutdown-on-exit] set, runs the shutdown hook or else
 * shuts those runtimes down (cancelling their work, waiting at most two
 * seconds). From then on Dovetail no longer handles the signals, and the
 * exit itself does nothing more.
 *
 * Language bindings whose interpreter is torn down before the C atexit()
 * handlers run call this from their own exit hook, so that a hook or work
 * written in that language still runs while it can: the Python overrides
 * register it with Python's `atexit` module. Applications need not call
 * it.
 */
void
dvt_runtime_run_exit_handler (void)
{
  dvt_registry_run_exit_handler ();
}
