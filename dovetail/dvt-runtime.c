/* dvt-runtime.c: the runtime, its loop thread and its workers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gi18n-lib.h>

#include "dvt-error.h"
#include "dvt-options.h"
#include "dvt-runtime-private.h"
#include "dvt-task-private.h"

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
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (DvtRuntime, dvt_runtime, G_TYPE_OBJECT)

static _Thread_local DvtCore *current_loop_core;

/* ---- the core ---------------------------------------------------------- */

void
dvt_core_ref (DvtCore *core)
{
  g_atomic_int_inc (&core->ref_count);
}

static void
core_hold (gpointer core)
{
  dvt_core_ref (core);
}

static void
core_free (DvtCore *core)
{
  GHashTableIter iter;
  gpointer mailbox;

  g_assert (core->n_live == 0);

  /* An event-context's mailbox; the events' own thread has stopped. */
  if (core->events.thread_context == NULL && core->events.mailbox != NULL)
    dvt_core_release_mailbox (core, core->events.mailbox);

  dvt_pool_clear (&core->pool);

  g_hash_table_iter_init (&iter, core->mailboxes);
  while (g_hash_table_iter_next (&iter, NULL, &mailbox))
    dvt_mailbox_destroy (mailbox);
  g_hash_table_unref (core->mailboxes);

  dvt_events_clear (&core->events);
  dvt_mailbox_destroy (core->loop_mailbox);
  g_main_context_unref (core->context);
  g_mutex_clear (&core->lock);
  g_mutex_clear (&core->mailboxes_lock);
  g_mutex_clear (&core->rate_lock);
  g_mutex_clear (&core->counters_lock);
  g_clear_pointer (&core->counters, g_hash_table_unref);
  g_cond_clear (&core->idle_cond);
  g_free (core);
}

void
dvt_core_unref (DvtCore *core)
{
  if (g_atomic_int_dec_and_test (&core->ref_count))
    core_free (core);
}

static void
core_release (gpointer core)
{
  dvt_core_unref (core);
}

static gpointer
loop_thread_func (gpointer data)
{
  DvtCore *core = data;

  current_loop_core = core;
  g_main_context_push_thread_default (core->context);

  while (!g_atomic_int_get (&core->loop_quit))
    g_main_context_iteration (core->context, TRUE);

  g_main_context_pop_thread_default (core->context);
  current_loop_core = NULL;

  dvt_core_unref (core);

  return NULL;
}

/* The loop thread's poll: before it sleeps, it spins for a few
 * microseconds watching its mailbox itself, so that work posted right
 * after an iteration (a caller in a run_blocking loop) is picked up
 * without a wake-up through the context's file descriptor. Other sources'
 * descriptors are polled now and then meanwhile. A spin that should not
 * happen (see dvt-wait.c) ends at its first step, before any poll. */
static gint
spin_poll (GPollFD *fds,
           guint    nfds,
           gint     timeout)
{
  DvtMailbox *mailbox = current_loop_core != NULL ? current_loop_core->loop_mailbox : NULL;
  DvtSpin spin = DVT_SPIN_INIT;
  gboolean mail;
  gint ready = 0;

  if (timeout == 0 || mailbox == NULL)
    return g_poll (fds, nfds, timeout);

  mail = dvt_mailbox_watch (mailbox, TRUE);
  for (guint i = 0; !mail; i++)
    {
      if (!dvt_spin_step (&spin) ||
          (timeout > 0 && spin.now - spin.start >= (gint64) timeout * 1000))
        break;
      if ((i & 63) == 0 && (ready = g_poll (fds, nfds, 0)) != 0)
        break;
      mail = dvt_mailbox_has_mail (mailbox);
    }
  /* Mail posted until the flag is cleared woke nothing: look once more. */
  mail = dvt_mailbox_watch (mailbox, FALSE) || mail;
  dvt_spin_done (&spin, !mail && ready == 0);

  if (ready != 0 || mail)
    return ready;

  if (timeout > 0)
    {
      timeout -= (gint) ((spin.now - spin.start) / 1000);
      if (timeout <= 0)
        return 0;
    }

  ready = g_poll (fds, nfds, timeout);
  /* Mail came soon after the spin gave up: the next spin may last. */
  if (dvt_mailbox_has_mail (mailbox))
    dvt_spin_woken (&spin);

  return ready;
}

/* "<name>-<suffix>" as a thread's name. Linux keeps 15 bytes of one, and
 * GLib 2.74 sets none at all if it is longer: cut it ourselves, on a
 * character boundary. */
char *
dvt_thread_name (const char *name,
                 const char *suffix)
{
  char *thread_name = g_strdup_printf ("%s-%s", name != NULL ? name : "dvt", suffix);

  if (strlen (thread_name) > 15)
    {
      const char *end = g_utf8_find_prev_char (thread_name, thread_name + 16);

      thread_name[end != NULL ? end - thread_name : 15] = '\0';
    }

  return thread_name;
}

static DvtCore *
core_new (const char *name,
          guint       max_workers)
{
  DvtCore *core = g_new0 (DvtCore, 1);
  g_autofree char *thread_name = dvt_thread_name (name, "loop");
  g_autofree char *events_name = dvt_thread_name (name, "events");

  core->ref_count = 1;
  g_mutex_init (&core->lock);
  g_mutex_init (&core->mailboxes_lock);
  g_mutex_init (&core->rate_lock);
  g_mutex_init (&core->counters_lock);
  g_cond_init (&core->idle_cond);
  core->context = g_main_context_new ();
  g_main_context_set_poll_func (core->context, spin_poll);
  core->loop_mailbox = dvt_mailbox_new (core->context, "[dovetail] loop");
  dvt_events_init (&core->events, events_name);
  core->mailboxes = g_hash_table_new (NULL, NULL);
  dvt_pool_init (&core->pool, max_workers, core, core_hold, core_release);

  dvt_core_ref (core);
  core->loop_thread = g_thread_new (thread_name, loop_thread_func, core);

  return core;
}

/* Stops a thread that iterates @context until @quit is set (the loop
 * thread, the events thread): with @join, waits until it has returned. */
void
dvt_context_thread_stop (GThread      *thread,
                         int          *quit,
                         GMainContext *context,
                         gboolean      join)
{
  g_atomic_int_set (quit, 1);
  g_main_context_wakeup (context);
  if (join)
    g_thread_join (thread);
  else
    g_thread_unref (thread);
}

/* Stops the loop thread and the workers. With @wait, returns once they
 * have stopped, except for the calling thread if it is one of them. */
static void
core_stop (DvtCore  *core,
           gboolean  wait)
{
  GThread *thread;

  g_mutex_lock (&core->lock);
  thread = g_steal_pointer (&core->loop_thread);
  g_mutex_unlock (&core->lock);

  if (thread != NULL)
    dvt_context_thread_stop (thread, &core->loop_quit, core->context,
                             wait && current_loop_core != core);

  dvt_pool_close (&core->pool, wait);

  /* Last, to deliver the terminal events of tasks the stop ended. */
  dvt_events_stop (&core->events, wait);
}

gboolean
dvt_core_is_loop_thread (DvtCore *core)
{
  return current_loop_core == core;
}

gboolean
dvt_core_check_blocking (DvtCore  *core,
                         GError  **error)
{
  if (G_LIKELY (current_loop_core != core))
    return TRUE;

  g_set_error_literal (error, DVT_ERROR, DVT_ERROR_WOULD_DEADLOCK,
                       _("A blocking call was made on the runtime’s own loop "
                         "thread, which the work needs in order to run; use "
                         "an asynchronous call there instead"));
  return FALSE;
}

DvtMailbox *
dvt_core_acquire_mailbox (DvtCore      *core,
                          GMainContext *context)
{
  DvtMailbox *mailbox;

  if (context == core->context)
    return core->loop_mailbox;

  g_mutex_lock (&core->mailboxes_lock);
  mailbox = g_hash_table_lookup (core->mailboxes, context);
  if (mailbox == NULL)
    {
      mailbox = dvt_mailbox_new (context, "[dovetail] callbacks");
      g_hash_table_insert (core->mailboxes, context, mailbox);
    }
  mailbox->users++;
  g_mutex_unlock (&core->mailboxes_lock);

  return mailbox;
}

void
dvt_core_release_mailbox (DvtCore    *core,
                          DvtMailbox *mailbox)
{
  gboolean destroy = FALSE;

  if (mailbox == core->loop_mailbox)
    return;

  g_mutex_lock (&core->mailboxes_lock);
  if (--mailbox->users == 0)
    {
      g_hash_table_remove (core->mailboxes, mailbox->context);
      destroy = TRUE;
    }
  g_mutex_unlock (&core->mailboxes_lock);

  if (destroy)
    dvt_mailbox_destroy (mailbox);
}

typedef struct
{
  DvtMail         mail;
  DvtCore        *core;
  DvtMailbox     *mailbox;
  GDestroyNotify  destroy;
  gpointer        data;
} DestroyMail;

static void
deliver_destroy (DvtMail *mail)
{
  DestroyMail *dm = (DestroyMail *) mail;

  dm->destroy (dm->data);
  dvt_core_release_mailbox (dm->core, dm->mailbox);
  dvt_core_unref (dm->core);
  g_free (dm);
}

/* Calls @destroy (@data) on the thread that iterates the context of
 * @mailbox: at once if that is this thread, else through the mailbox.
 * Language bindings free their closures this way on their own thread.
 * Consumes one user of @mailbox. */
void
dvt_core_destroy_on (DvtCore        *core,
                     DvtMailbox     *mailbox,
                     GDestroyNotify  destroy,
                     gpointer        data)
{
  DestroyMail *dm;

  if (g_main_context_is_owner (mailbox->context))
    {
      destroy (data);
      dvt_core_release_mailbox (core, mailbox);
      return;
    }

  dm = g_new0 (DestroyMail, 1);
  dm->mail.deliver = deliver_destroy;
  dvt_core_ref (core);
  dm->core = core;
  dm->mailbox = mailbox;
  dm->destroy = destroy;
  dm->data = data;
  dvt_mailbox_post (mailbox, &dm->mail);
}

/* Registers @task as live, unless the runtime is closed. A live task is
 * held by the runtime until it ends. */
gboolean
dvt_core_accept (DvtCore  *core,
                 DvtTask  *task,
                 GError  **error)
{
  /* Watched before it is live: a shutdown may end it at once, and its
   * end must then be recorded too. */
  task->accepted_at = g_get_monotonic_time ();
  dvt_events_watch (task);

  g_mutex_lock (&core->lock);
  if (g_atomic_int_get (&core->closed))
    {
      g_mutex_unlock (&core->lock);
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_CLOSED,
                           _("The runtime has been shut down and accepts no "
                             "more work"));
      return FALSE;
    }

  /* Recorded before the task is live, so before any other event of it
   * (nobody can have connected to the task itself yet). */
  if (dvt_task_has_flag (task, DVT_TASK_FLAG_WATCHED))
    dvt_events_emit (task, DVT_EVENT_QUEUED, NULL, 0);

  dvt_task_set_flag (task, DVT_TASK_FLAG_LIVE | DVT_TASK_FLAG_ACCEPTED);
  task->live_prev = NULL;
  task->live_next = core->live;
  if (core->live != NULL)
    core->live->live_prev = task;
  core->live = g_object_ref (task);
  core->n_live++;
  g_mutex_unlock (&core->lock);

  DVT_COUNTER_ADD (&core->n_queued, 1);

  return TRUE;
}

/* The live task of id @id, held, or NULL. */
DvtTask *
dvt_core_find_live (DvtCore *core,
                    guint64  id)
{
  DvtTask *found = NULL;

  g_mutex_lock (&core->lock);
  for (DvtTask *t = core->live; t != NULL && found == NULL; t = t->live_next)
    if (t->id == id)
      found = g_object_ref (t);
  g_mutex_unlock (&core->lock);

  return found;
}

void
dvt_core_retire (DvtCore *core,
                 DvtTask *task)
{
  g_mutex_lock (&core->lock);
  g_assert (dvt_task_has_flag (task, DVT_TASK_FLAG_LIVE));
  if (task->live_prev != NULL)
    task->live_prev->live_next = task->live_next;
  else
    core->live = task->live_next;
  if (task->live_next != NULL)
    task->live_next->live_prev = task->live_prev;
  task->live_prev = task->live_next = NULL;
  dvt_task_unset_flag (task, DVT_TASK_FLAG_LIVE);
  /* GLib's broadcast is a system call even with nobody waiting: this
   * runs once per task when tasks run one at a time. */
  if (--core->n_live == 0 && core->n_idle_waiters > 0)
    g_cond_broadcast (&core->idle_cond);
  g_mutex_unlock (&core->lock);

  g_object_unref (task);
}

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

  if (self->max_workers == 0)
    self->max_workers = g_get_num_processors ();

  self->core = core_new (self->name, self->max_workers);
  dvt_core_set_rate (self->core, self->rate_limit, self->rate_limit_burst);
  if (self->event_context != NULL)
    dvt_events_set_context (&self->core->events,
                            dvt_core_acquire_mailbox (self->core, self->event_context));
  g_atomic_int_set (&self->core->events.trace, self->trace || trace_from_environment ());
  dvt_registry_add (self);
}

static void
dvt_runtime_finalize (GObject *object)
{
  DvtRuntime *self = DVT_RUNTIME (object);

  /* Every task holds its runtime, so nothing is live any more. A runtime
   * inherited through fork() is leaked: its threads are not ours. */
  if (dvt_registry_remove (self))
    {
      g_atomic_int_set (&self->core->closed, 1);
      core_stop (self->core, TRUE);
      dvt_core_unref (self->core);
    }
  g_free (self->name);
  g_clear_pointer (&self->event_context, g_main_context_unref);

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
      g_value_set_boolean (value, dvt_registry_get_auto_register (self));
      break;

    case PROP_SHUTDOWN_ON_EXIT:
      g_value_set_boolean (value, dvt_registry_get_shutdown_on_exit (self));
      break;

    case PROP_MAX_WORKERS:
      g_value_set_uint (value, self->max_workers);
      break;

    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;

    case PROP_TIMEOUT:
      g_value_set_double (value, self->timeout);
      break;

    case PROP_RETRIES:
      g_value_set_uint (value, self->retries);
      break;

    case PROP_RETRY_BACKOFF:
      g_value_set_double (value, self->retry_backoff);
      break;

    case PROP_RETRY_MAX_DELAY:
      g_value_set_double (value, self->retry_max_delay);
      break;

    case PROP_RETRY_JITTER:
      g_value_set_double (value, self->retry_jitter);
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
      dvt_registry_set_auto_register (self, g_value_get_boolean (value));
      break;

    case PROP_SHUTDOWN_ON_EXIT:
      if (dvt_registry_set_shutdown_on_exit (self, g_value_get_boolean (value)))
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
      self->timeout = g_value_get_double (value);
      break;

    case PROP_RETRIES:
      self->retries = g_value_get_uint (value);
      break;

    case PROP_RETRY_BACKOFF:
      self->retry_backoff = g_value_get_double (value);
      break;

    case PROP_RETRY_MAX_DELAY:
      self->retry_max_delay = g_value_get_double (value);
      break;

    case PROP_RETRY_JITTER:
      self->retry_jitter = g_value_get_double (value);
      break;

    case PROP_RATE_LIMIT:
      self->rate_limit = g_value_get_double (value);
      if (self->core != NULL)
        dvt_core_set_rate (self->core, self->rate_limit, self->rate_limit_burst);
      break;

    case PROP_RATE_LIMIT_BURST:
      self->rate_limit_burst = g_value_get_uint (value);
      if (self->core != NULL)
        dvt_core_set_rate (self->core, self->rate_limit, self->rate_limit_burst);
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

static void
dvt_runtime_class_init (DvtRuntimeClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

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

  g_object_class_install_properties (object_class, N_PROPS, properties);

  dvt_events_add_signals (DVT_TYPE_RUNTIME);

  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
}

static void
dvt_runtime_init (DvtRuntime *self)
{
  self->entry = dvt_registry_entry_new ();
  /* The defaults stand even when g_object_new() refuses an out-of-range
   * value for a construct property (it then sets nothing). */
  self->retry_backoff = 0.1;
  self->retry_max_delay = 30;
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
  DvtTask *task = dvt_task_new (self, kind, options, cancellable);

  DvtPolicy *policy = dvt_policy_resolve (self, options);

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

/* Accepts and dispatches @task; on refusal, ends it with the error so that
 * its callback, if any, still runs. */
static gboolean
start_task (DvtRuntime  *self,
            DvtTask     *task,
            GError     **error)
{
  GError *local_error = NULL;

  if (!dvt_core_accept (self->core, task, &local_error))
    {
      dvt_task_set_flag (task, DVT_TASK_FLAG_FUNC_DONE);
      if (error != NULL)
        *error = g_error_copy (local_error);
      dvt_task_fail (task, local_error, TRUE);
      return FALSE;
    }

  dvt_task_dispatch (task);

  return TRUE;
}

/* Runs @task to its end from a blocking call and reads its result. */
static gboolean
run_to_end (DvtRuntime  *self,
            DvtTask     *task,
            GValue      *value,
            GError     **error)
{
  gboolean ok;

  ok = start_task (self, task, error) &&
       dvt_task_wait_internal (task, -1, error) &&
       dvt_task_propagate_value (task, value, error);
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
  DvtTask *task;

  g_return_val_if_fail (DVT_IS_RUNTIME (self), FALSE);
  g_return_val_if_fail (func != NULL, FALSE);
  g_return_val_if_fail (options == NULL || DVT_IS_OPTIONS (options), FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (value == NULL || !G_IS_VALUE (value), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!dvt_core_check_blocking (self->core, error))
    {
      if (func_data_destroy != NULL)
        func_data_destroy (func_data);
      return FALSE;
    }

  task = new_work_task (self, DVT_TASK_KIND_ASYNC, func, func_data,
                        func_data_destroy, options, cancellable);
  /* This call's reference, the live one and the start's. */
  task->internal_refs = 3;

  return run_to_end (self, task, value, error);
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
  DvtTask *task;

  g_return_val_if_fail (DVT_IS_RUNTIME (self), FALSE);
  g_return_val_if_fail (func != NULL, FALSE);
  g_return_val_if_fail (options == NULL || DVT_IS_OPTIONS (options), FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (value == NULL || !G_IS_VALUE (value), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!dvt_core_check_blocking (self->core, error))
    {
      if (func_data_destroy != NULL)
        func_data_destroy (func_data);
      return FALSE;
    }

  task = new_work_task (self, DVT_TASK_KIND_THREAD, func, func_data,
                        func_data_destroy, options, cancellable);

  return run_to_end (self, task, value, error);
}

typedef struct
{
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
  DvtInvoke *invoke;
  DvtTask *task;

  g_return_val_if_fail (DVT_IS_RUNTIME (self), FALSE);
  g_return_val_if_fail (func != NULL, FALSE);
  g_return_val_if_fail (options == NULL || DVT_IS_OPTIONS (options), FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!dvt_core_check_blocking (self->core, error))
    {
      if (func_data_destroy != NULL)
        func_data_destroy (func_data);
      return FALSE;
    }

  invoke = g_new (DvtInvoke, 1);
  invoke->func = func;
  invoke->func_data = func_data;
  invoke->func_data_destroy = func_data_destroy;
  task = new_work_task (self, DVT_TASK_KIND_THREAD, invoke_thread, invoke,
                        invoke_free, options, cancellable);
  /* Its identity for event scopes is @func, not the trampoline. */
  if (DVT_TASK_EXTRA (task, function, NULL) == NULL)
    dvt_task_extra (task)->function = func;

  return run_to_end (self, task, NULL, error);
}

/**
 * dvt_runtime_has_task_policy:
 * @self: a runtime
 * @options: (nullable): the options of a call
 *
 * Tells whether each task started with @options (each item, for a map)
 * gets a policy of its own: a timeout, retries or the runtime's rate
 * limit. A binding that groups many small items into one task must not
 * do so then, or the items would share one timeout and one retry count.
 *
 * Returns: %TRUE if a timeout, retries or a rate limit apply
 */
gboolean
dvt_runtime_has_task_policy (DvtRuntime *self,
                             DvtOptions *options)
{
  DvtPolicy *policy;

  g_return_val_if_fail (DVT_IS_RUNTIME (self), FALSE);
  g_return_val_if_fail (options == NULL || DVT_IS_OPTIONS (options), FALSE);

  if (__atomic_load_n (&self->core->rate_interval, __ATOMIC_RELAXED) != 0)
    return TRUE;

  policy = dvt_policy_resolve (self, options);
  if (policy == NULL)
    return FALSE;
  dvt_policy_unref (policy);

  return TRUE;
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
  DvtTask *task;

  g_return_if_fail (DVT_IS_RUNTIME (self));
  g_return_if_fail (func != NULL);
  g_return_if_fail (options == NULL || DVT_IS_OPTIONS (options));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = new_work_task (self, DVT_TASK_KIND_THREAD, func, func_data,
                        func_data_destroy, options, cancellable);
  dvt_task_set_callback (task, callback, user_data, dvt_runtime_to_thread_async);
  dvt_task_destroy_data_on_caller_context (task);
  start_task (self, task, NULL);
  g_object_unref (task);
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
  g_return_val_if_fail (DVT_IS_RUNTIME (self), FALSE);
  g_return_val_if_fail (DVT_IS_TASK (result), FALSE);
  g_return_val_if_fail (dvt_task_is_tagged (DVT_TASK (result), self,
                                            dvt_runtime_to_thread_async), FALSE);

  return dvt_task_propagate_value (DVT_TASK (result), value, error);
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

  task = new_work_task (self, kind, func, func_data, func_data_destroy,
                        options, cancellable);
  /* A future can be cancelled while it runs: its work gets a cancellable,
   * made when it starts so that a queued task costs none. Its own signals
   * may get handlers. */
  dvt_task_set_flag (task, DVT_TASK_FLAG_WANTS_CANCELLABLE | DVT_TASK_FLAG_FUTURE);

  if (!start_task (self, task, error))
    g_clear_object (&task);

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
  g_return_val_if_fail (DVT_IS_RUNTIME (self), NULL);
  g_return_val_if_fail (func != NULL, NULL);
  g_return_val_if_fail (options == NULL || DVT_IS_OPTIONS (options), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

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
  g_return_val_if_fail (DVT_IS_RUNTIME (self), NULL);
  g_return_val_if_fail (func != NULL, NULL);
  g_return_val_if_fail (options == NULL || DVT_IS_OPTIONS (options), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

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
 * on to its end.
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
  if (dvt_registry_is_inherited (self))
    {
      g_atomic_int_set (&core->closed, 1);
      return;
    }
  dvt_registry_note_shutdown (self);

  g_mutex_lock (&core->lock);
  g_atomic_int_set (&core->closed, 1);
  if (cancel_pending && core->n_live > 0)
    {
      cancel = g_ptr_array_new_with_free_func (g_object_unref);
      for (DvtTask *t = core->live; t != NULL; t = t->live_next)
        g_ptr_array_add (cancel, g_object_ref (t));
    }
  g_mutex_unlock (&core->lock);

  if (cancel != NULL)
    {
      for (guint i = 0; i < cancel->len; i++)
        {
          DvtTask *task = g_ptr_array_index (cancel, i);

          dvt_task_end_by_runtime (task,
                                   g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                        _("The runtime was shut down "
                                                          "before the task ended")));
        }
      g_ptr_array_unref (cancel);
    }

  if (wait && current_loop_core != core && dvt_pool_get_current () != &core->pool)
    {
      g_mutex_lock (&core->lock);
      core->n_idle_waiters++;
      while (core->n_live > 0)
        g_cond_wait (&core->idle_cond, &core->lock);
      core->n_idle_waiters--;
      g_mutex_unlock (&core->lock);

      core_stop (core, TRUE);
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
  gint64 running;

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
  running = DVT_COUNTER_GET (&core->n_running);
  stats->running = (guint64) MAX (running, 0);
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
  g_return_val_if_fail (DVT_IS_RUNTIME (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!(rate > 0) || rate > 1e9 || burst > G_MAXINT32)
    {
      g_set_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                   _("A rate limit must be more than 0 and at most 1e9 task "
                     "starts per second (got %g, burst %u); to remove the "
                     "limit, clear it"),
                   rate, burst);
      return FALSE;
    }

  g_object_freeze_notify (G_OBJECT (self));
  g_object_set (self, "rate-limit-burst", burst, "rate-limit", rate, NULL);
  g_object_thaw_notify (G_OBJECT (self));

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
