/* dvt-event-scope.c: a runtime's events for some of its tasks
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gi18n-lib.h>

#include "dvt-error-private.h"
#include "dvt-event-scope.h"
#include "dvt-events-private.h"
#include "dvt-i18n-private.h"
#include "dvt-runtime-private.h"
#include "dvt-task-private.h"

/**
 * DvtEventScope:
 *
 * The events of a runtime for some of its tasks only, with a bound on
 * chains of handlers that cause their own events again.
 *
 * A scope has the same signals as [class@Runtime] (`queued`, `started`,
 * `retry`, `throttled`, `progress`, `failed`, `cancelled`, `finished`, with
 * the same arguments and the task's name as detail), emitted on the same
 * thread, and only for the tasks it matches:
 *
 * - a **function**: the tasks that run it, by identity. In C that is the
 *   work function's address; language bindings give each call the identity
 *   of their own function with [method@Options.set_function], so that two
 *   different anonymous functions never match each other (the Python
 *   override does this itself: `runtime.scope_events(function=fn)`).
 * - a **name**: the tasks of that target name ([property@Options:name]);
 *   with a function too, the tasks that have both.
 * - a **task id**: one execution ([method@Task.get_id]). A future's own
 *   signals ([signal@Task::finished]…) are the other way to follow one
 *   execution.
 * - nothing: every task of the runtime.
 *
 * A task id names one execution, which already has its function and name:
 * combining it with either fails with %DVT_ERROR_INVALID_ARGUMENT, as do an
 * empty name and an id the runtime never gave.
 *
 * **Re-entry.** A handler may submit follow-up work: `finished` of task A
 * may start task B, and other scopes and the runtime's own signals see B's
 * events as usual. When B is one of this scope's tasks, B's events would
 * call the handler again, and B's work could cause another task, without
 * end. Each task accepted while a scope's handlers run (on the event thread)
 * remembers that scope and how deep the chain is; the scope emits an event
 * only while that chain is shorter than [property@EventScope:max-depth]. The
 * default, 1, means no re-entry: the handlers run for A and not for B. With
 * a max-depth of 3 they run for A, for the B it caused and for the C that B's
 * handler call caused, exactly 3 times. Only the chain of the task at hand
 * counts: nothing is shared between threads or tasks, so unrelated events
 * are never held back. The runtime's own signals are not bounded this way.
 *
 * A scope keeps nothing alive but itself: keep a reference for as long as
 * its handlers should run, and drop it to stop them. Scopes are recorded
 * for tasks accepted while the scope exists.
 *
 * ```c
 * g_autoptr(DvtEventScope) scope =
 *   dvt_event_scope_new (runtime, NULL, fetch_url, 0, &error);
 * g_signal_connect (scope, "failed", G_CALLBACK (on_fetch_failed), NULL);
 * ```
 */

struct _DvtEventScope
{
  GObject        parent_instance;

  DvtRuntime    *runtime;   /* until constructed */
  DvtCore       *core;      /* held, while its filter is in the queue */
  /* What it matches, read by the events' delivery. Its weak reference to
   * the scope gives it to deliveries only while it is alive. */
  DvtEventFilter filter;
};

enum {
  PROP_0,
  PROP_RUNTIME,
  PROP_NAME,
  PROP_FUNCTION,
  PROP_TASK_ID,
  PROP_MAX_DEPTH,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void dvt_event_scope_initable_iface_init (GInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (DvtEventScope, dvt_event_scope, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE,
                                                      dvt_event_scope_initable_iface_init))

static guint64 last_serial;

static gboolean
dvt_event_scope_initable_init (GInitable     *initable,
                               GCancellable  *cancellable,
                               GError       **error)
{
  DvtEventScope *self = DVT_EVENT_SCOPE (initable);
  g_autoptr(DvtRuntime) runtime = g_steal_pointer (&self->runtime);
  DvtCore *core;

  if (self->core != NULL)
    return TRUE;

  if (runtime == NULL)
    {
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                           _("An event scope needs a runtime"));
      return FALSE;
    }
  if (self->filter.name != NULL && self->filter.name[0] == '\0')
    {
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                           _("An event scope’s name must not be empty; "
                             "give no name for tasks of any name"));
      return FALSE;
    }
  if (self->filter.task_id != 0 && (self->filter.name != NULL || self->filter.function != NULL))
    {
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                           _("An event scope for a task id cannot also have a "
                             "name or a function: the task has its own"));
      return FALSE;
    }

  core = dvt_runtime_get_core (runtime);
  if (self->filter.task_id > __atomic_load_n (&core->next_id, __ATOMIC_RELAXED))
    {
      /* Formatted apart: xgettext cannot see past G_GUINT64_FORMAT. */
      g_autofree char *id = g_strdup_printf ("%" G_GUINT64_FORMAT, self->filter.task_id);

      g_set_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                   /* Translators: %s is a task id, a number. */
                   _("The runtime has no task with id %s"), id);
      return FALSE;
    }

  self->filter.serial = __atomic_add_fetch (&last_serial, 1, __ATOMIC_RELAXED);
  g_weak_ref_init (&self->filter.object, self);
  dvt_core_ref (core);
  self->core = core;
  dvt_events_add_filter (&core->events, &self->filter);

  /* Its next events are recorded, even if nobody watched it so far. */
  if (self->filter.task_id != 0)
    {
      g_autoptr(DvtTask) task = dvt_task_find_live (core, self->filter.task_id);

      if (task != NULL)
        dvt_task_set_flag (task, DVT_TASK_FLAG_SCOPED);
    }

  return TRUE;
}

static void
dvt_event_scope_initable_iface_init (GInitableIface *iface)
{
  iface->init = dvt_event_scope_initable_init;
}

static void
dvt_event_scope_dispose (GObject *object)
{
  DvtEventScope *self = DVT_EVENT_SCOPE (object);

  if (self->core != NULL)
    {
      dvt_events_remove_filter (&self->core->events, &self->filter);
      g_clear_pointer (&self->core, dvt_core_unref);
    }
  g_clear_object (&self->runtime);

  G_OBJECT_CLASS (dvt_event_scope_parent_class)->dispose (object);
}

static void
dvt_event_scope_finalize (GObject *object)
{
  DvtEventScope *self = DVT_EVENT_SCOPE (object);

  if (self->filter.serial != 0)
    g_weak_ref_clear (&self->filter.object);

  G_OBJECT_CLASS (dvt_event_scope_parent_class)->finalize (object);
}

static void
dvt_event_scope_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  DvtEventScope *self = DVT_EVENT_SCOPE (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, self->filter.name);
      break;
    case PROP_FUNCTION:
      g_value_set_pointer (value, (gpointer) self->filter.function);
      break;
    case PROP_TASK_ID:
      g_value_set_uint64 (value, self->filter.task_id);
      break;
    case PROP_MAX_DEPTH:
      g_value_set_uint (value, dvt_event_scope_get_max_depth (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_event_scope_set_property (GObject      *object,
                              guint         prop_id,
                              const GValue *value,
                              GParamSpec   *pspec)
{
  DvtEventScope *self = DVT_EVENT_SCOPE (object);

  switch (prop_id)
    {
    case PROP_RUNTIME:
      self->runtime = g_value_dup_object (value);
      break;
    case PROP_NAME:
      self->filter.name = g_intern_string (g_value_get_string (value));
      break;
    case PROP_FUNCTION:
      self->filter.function = g_value_get_pointer (value);
      break;
    case PROP_TASK_ID:
      self->filter.task_id = g_value_get_uint64 (value);
      break;
    case PROP_MAX_DEPTH:
      dvt_event_scope_set_max_depth (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

/**
 * DvtEventScope::queued:
 * @self: the scope
 * @task: the task
 *
 * A task of the scope was accepted (see [signal@Runtime::queued]).
 */

/**
 * DvtEventScope::started:
 * @self: the scope
 * @task: the task
 * @attempt: the attempt that starts, from 1
 *
 * An attempt started (see [signal@Runtime::started]).
 */

/**
 * DvtEventScope::retry:
 * @self: the scope
 * @task: the task
 * @error: the error of the attempt that failed
 * @attempt: the attempt that failed
 * @delay: the back-off before the next attempt, in seconds
 *
 * A failed attempt will be tried again (see [signal@Runtime::retry]).
 */

/**
 * DvtEventScope::throttled:
 * @self: the scope
 * @task: the task
 * @wait: how long the rate limit holds the start back, in seconds; 0
 *   for a gate
 *
 * The rate limit, or a gate, held an attempt back (see
 * [signal@Runtime::throttled]).
 */

/**
 * DvtEventScope::progress:
 * @self: the scope
 * @task: the task
 * @done: how many items of the map have ended
 * @total: how many items it has
 *
 * Items of a map ended (see [signal@Runtime::progress]).
 */

/**
 * DvtEventScope::failed:
 * @self: the scope
 * @task: the task
 * @error: the error the task ended with
 * @elapsed: seconds from acceptance to the end
 *
 * A task ended in failure, timeouts included (see [signal@Runtime::failed]).
 */

/**
 * DvtEventScope::cancelled:
 * @self: the scope
 * @task: the task
 * @error: the cancellation error
 * @elapsed: seconds from acceptance to the end
 *
 * A task ended cancelled (see [signal@Runtime::cancelled]).
 */

/**
 * DvtEventScope::finished:
 * @self: the scope
 * @task: the task
 * @elapsed: seconds from acceptance to the end
 *
 * A task ended in success (see [signal@Runtime::finished]).
 */

static void
dvt_event_scope_class_init (DvtEventScopeClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  dvt_i18n_init ();

  object_class->dispose = dvt_event_scope_dispose;
  object_class->finalize = dvt_event_scope_finalize;
  object_class->get_property = dvt_event_scope_get_property;
  object_class->set_property = dvt_event_scope_set_property;

  /**
   * DvtEventScope:runtime:
   *
   * The runtime whose events the scope gets.
   */
  properties[PROP_RUNTIME] =
    g_param_spec_object ("runtime", NULL, NULL, DVT_TYPE_RUNTIME,
                         G_PARAM_WRITABLE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtEventScope:name:
   *
   * Only tasks of this target name, or %NULL for any name.
   */
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtEventScope:function:
   *
   * Only tasks that run this function (its identity, see
   * [method@Options.set_function]), or %NULL for any function.
   */
  properties[PROP_FUNCTION] =
    g_param_spec_pointer ("function", NULL, NULL,
                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtEventScope:task-id:
   *
   * Only the task of this id, or 0 for any task.
   */
  properties[PROP_TASK_ID] =
    g_param_spec_uint64 ("task-id", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtEventScope:max-depth:
   *
   * The longest chain of calls of the scope's handlers through tasks that
   * their own calls accepted. 1, the default, means no re-entry: the
   * handlers never run for a task that one of their calls accepted.
   */
  properties[PROP_MAX_DEPTH] =
    g_param_spec_uint ("max-depth", NULL, NULL, 1, G_MAXUINT, 1,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  dvt_events_add_signals (DVT_TYPE_EVENT_SCOPE, DVT_EVENT_SIGNALS_SCOPE, DVT_TYPE_TASK);
}

static void
dvt_event_scope_init (DvtEventScope *self)
{
  self->filter.max_depth = 1;
}

/**
 * dvt_event_scope_new:
 * @runtime: a runtime
 * @name: (nullable): only tasks of this target name, or %NULL
 * @function: (nullable): only tasks that run this function, or %NULL
 * @task_id: only the task of this id, or 0
 * @error: return location for a #GError
 *
 * Creates a scope that emits @runtime's events for the tasks it matches;
 * with none of @name, @function and @task_id, for every task. See
 * [class@EventScope] for what matches and what may be combined.
 *
 * Returns: (transfer full): the scope, or %NULL with @error set
 */
DvtEventScope *
dvt_event_scope_new (DvtRuntime     *runtime,
                     const char     *name,
                     gconstpointer   function,
                     guint64         task_id,
                     GError        **error)
{
  dvt_return_val_if_fail_error (DVT_IS_RUNTIME (runtime), NULL, error);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_initable_new (DVT_TYPE_EVENT_SCOPE, NULL, error,
                         "runtime", runtime,
                         "name", name,
                         "function", function,
                         "task-id", task_id,
                         NULL);
}

/**
 * dvt_event_scope_get_name:
 * @self: a scope
 *
 * Gets [property@EventScope:name].
 *
 * Returns: (nullable): the target name the scope matches, or %NULL
 */
const char *
dvt_event_scope_get_name (DvtEventScope *self)
{
  g_return_val_if_fail (DVT_IS_EVENT_SCOPE (self), NULL);

  return self->filter.name;
}

/**
 * dvt_event_scope_get_function:
 * @self: a scope
 *
 * Gets [property@EventScope:function].
 *
 * Returns: (nullable): the function identity the scope matches, or %NULL
 */
gconstpointer
dvt_event_scope_get_function (DvtEventScope *self)
{
  g_return_val_if_fail (DVT_IS_EVENT_SCOPE (self), NULL);

  return self->filter.function;
}

/**
 * dvt_event_scope_get_task_id:
 * @self: a scope
 *
 * Gets [property@EventScope:task-id].
 *
 * Returns: the task id the scope matches, or 0
 */
guint64
dvt_event_scope_get_task_id (DvtEventScope *self)
{
  g_return_val_if_fail (DVT_IS_EVENT_SCOPE (self), 0);

  return self->filter.task_id;
}

/**
 * dvt_event_scope_get_max_depth:
 * @self: a scope
 *
 * Gets [property@EventScope:max-depth].
 *
 * Returns: the value of [property@EventScope:max-depth]
 */
guint
dvt_event_scope_get_max_depth (DvtEventScope *self)
{
  g_return_val_if_fail (DVT_IS_EVENT_SCOPE (self), 1);

  return (guint) g_atomic_int_get (&self->filter.max_depth);
}

/**
 * dvt_event_scope_set_max_depth:
 * @self: a scope
 * @max_depth: the longest chain, at least 1
 *
 * Sets [property@EventScope:max-depth]: how many calls of the scope's
 * handlers a chain of tasks caused by those handlers may make. From any
 * thread; it applies to the events delivered after it.
 */
void
dvt_event_scope_set_max_depth (DvtEventScope *self,
                               guint          max_depth)
{
  g_return_if_fail (DVT_IS_EVENT_SCOPE (self));
  g_return_if_fail (max_depth >= 1);

  if ((guint) g_atomic_int_exchange (&self->filter.max_depth, (int) max_depth) != max_depth)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MAX_DEPTH]);
}
