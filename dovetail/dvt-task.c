/* dvt-task.c: one unit of work and its result
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gi18n-lib.h>
#include <string.h>

#include "dvt-error-private.h"
#include "dvt-fault-private.h"
#include "dvt-i18n-private.h"
#include "dvt-log-private.h"
#include "dvt-gate.h"
#include "dvt-gobject-private.h"
#include "dvt-options.h"
#include "dvt-policy-private.h"
#include "dvt-task-private.h"
#include "dvt-thread-private.h"

/* The gates of dvt_options_add_gate(), entered and left for a task: see
 * the section "gates" at the end of this file. */
static gboolean  dvt_task_enter_gates       (DvtTask *task);
static void      dvt_task_release_gates     (DvtTask *task);
static void      dvt_task_gates_check_over  (DvtTask *task);
static void      dvt_task_gates_ended       (DvtTask *task);

/**
 * DvtTask:
 *
 * One piece of work handed to a [class@Runtime], and its result.
 *
 * A `DvtTask` is what a work function receives and completes, with one of
 * the `dvt_task_return_*()` functions, and what [method@Runtime.submit]
 * and [method@Runtime.schedule] return: a future that any thread can wait
 * on ([method@Task.wait]), cancel ([method@Task.cancel]) and read
 * (`dvt_task_propagate_*()`).
 *
 * It implements [iface@Gio.AsyncResult], so the callback of an `_async`
 * call receives it, and it is completed exactly once: the first result
 * wins. When the runtime ends a task itself (cancellation, shutdown), a
 * result that the work delivers later is dropped quietly and freed.
 * Completing a task twice from the work is a programmer error: the second
 * result is dropped with a critical warning.
 *
 * Like [class@Gio.Task], a task keeps the thread-default main context of
 * the thread that submitted it, and its completion callback runs there.
 *
 * A future: submit now, wait later (from any thread but the runtime's
 * loop thread), with a limit on the wait.
 *
 * ```c
 * static void
 * compute (DvtTask *task, GCancellable *cancellable, gpointer user_data, GError **error)
 * {
 *   if (!g_cancellable_set_error_if_cancelled (cancellable, error))
 *     dvt_task_return_int (task, 6 * 7);
 * }
 *
 * g_autoptr(DvtTask) task = dvt_runtime_submit (runtime, compute, NULL, NULL,
 *                                               NULL, NULL, &error);
 * // ... other work ...
 * if (task != NULL && dvt_task_wait (task, 5.0, &error))   // at most 5 s
 *   g_print ("%" G_GINT64_FORMAT "\n", dvt_task_propagate_int (task, NULL));
 * ```
 *
 * The task a work function receives is valid while the function runs.
 * To use it afterwards, take a reference: the runtime may otherwise reuse
 * a blocking call's task for a later call of the same thread, and free
 * the task of an `_async` call on a worker once its callback has run.
 */

struct _DvtTaskHookNode
{
  DvtTaskHookNode *next;
  DvtTaskHook      hook;
  gpointer         data;
};

/* What this layer keeps per thread, in the thread's DvtThreadState:
 *
 * - cancelling_task: the task whose cancellation handler is running on
 *   this thread, if any: such a task may be finalized inside the handler,
 *   where g_cancellable_disconnect() would deadlock;
 * - running_task: the task whose work function runs on this thread,
 *   innermost first. A thread or async function's own completion is
 *   published when the function returns (see finish_full()), and the
 *   function cannot wait for its own task (see waits_for_itself());
 * - spare_cancellable: the cancellable this worker lends to the thread
 *   functions of futures: making and freeing a GCancellable per task costs
 *   more than the rest of the hand-off, and most are never looked at. See
 *   take_back_cancellable();
 * - spare_task: see dvt_task_recycle();
 * - release_head, release_length: see release_after_callback(). */

static inline DvtTask *
running_task (void)
{
  DvtThreadState *state = dvt_thread_state_peek ();

  return state != NULL ? state->running_task : NULL;
}

static inline DvtTask *
cancelling_task (void)
{
  DvtThreadState *state = dvt_thread_state_peek ();

  return state != NULL ? state->cancelling_task : NULL;
}

static guint cancelled_signal_id;
static guint notify_signal_id;

enum {
  PROP_0,
  PROP_ID,
  PROP_NAME,
  PROP_ATTEMPT,
  PROP_COMPLETED,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void dvt_task_async_result_iface_init (GAsyncResultIface *iface);
static void publish                          (DvtTask           *task);

G_DEFINE_FINAL_TYPE_WITH_CODE (DvtTask, dvt_task, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_RESULT,
                                                      dvt_task_async_result_iface_init))

void
dvt_result_clear (DvtResult *result)
{
  GType type = G_VALUE_TYPE (&result->value);

  switch (type)
    {
    case G_TYPE_INVALID:
      break;

    /* GLib's own scalars hold nothing to free: no type lookup. */
    case G_TYPE_CHAR: case G_TYPE_UCHAR: case G_TYPE_BOOLEAN:
    case G_TYPE_INT: case G_TYPE_UINT: case G_TYPE_LONG: case G_TYPE_ULONG:
    case G_TYPE_INT64: case G_TYPE_UINT64: case G_TYPE_FLOAT: case G_TYPE_DOUBLE:
      memset (&result->value, 0, sizeof result->value);
      break;

    default:
      if (result->destroy != NULL && G_VALUE_HOLDS_POINTER (&result->value))
        {
          gpointer p = g_value_get_pointer (&result->value);

          if (p != NULL)
            result->destroy (p);
        }
      g_value_unset (&result->value);
    }
  result->destroy = NULL;
  g_clear_error (&result->error);
}

static void
disconnect_cancellable (GCancellable *cancellable,
                        gulong        handler,
                        DvtTask      *task)
{
  if (handler == 0)
    return;
  if (cancelling_task () == task)
    g_signal_handler_disconnect (cancellable, handler);
  else
    g_cancellable_disconnect (cancellable, handler);
}

static void
dvt_task_finalize (GObject *object)
{
  DvtTask *task = (DvtTask *) object;

  DvtTaskExtra *extra = g_atomic_pointer_get (&task->extra);

  g_assert (!dvt_task_has_flag (task, DVT_TASK_FLAG_LIVE));

  if (extra != NULL)
    {
      disconnect_cancellable (extra->caller_cancellable,
                              extra->caller_cancellable_handler, task);
      disconnect_cancellable (task->cancellable, extra->cancellable_handler, task);
      g_clear_object (&extra->caller_cancellable);
      g_clear_object (&extra->gate_cancellable);
      g_assert (extra->timeout_source == NULL && extra->wait_source == NULL);
      g_clear_pointer (&extra->policy, dvt_policy_unref);
      g_clear_pointer (&extra->context, dvt_context_unref);
      g_clear_error (&extra->last_error);
    }
  g_clear_object (&task->cancellable);

  if (task->func_data_destroy != NULL)
    {
      if (extra != NULL && extra->destroy_mailbox != NULL)
        dvt_core_destroy_on (dvt_task_core (task), g_steal_pointer (&extra->destroy_mailbox),
                             task->func_data_destroy, task->func_data);
      else
        task->func_data_destroy (task->func_data);
    }

  dvt_result_clear (&task->result);
  dvt_latch_clear (&task->done);

  if (extra != NULL)
    {
      g_assert (extra->hooks == NULL);
      g_assert (extra->callback_mailbox == NULL);
      if (extra->run_mailbox != NULL)
        dvt_core_release_mailbox (dvt_task_core (task), extra->run_mailbox);
      g_clear_pointer (&extra->run_context, g_main_context_unref);
      if (extra->parent != NULL)
        extra->parent_class->finalized (extra->parent, task);
      g_free (extra);
    }
  if (task->core != NULL)
    g_object_unref (task->core->owner);

  /* Unchecked: this runs for every task. */
  ((GObjectClass *) dvt_task_parent_class)->finalize (object);
}

static void
dvt_task_get_property (GObject    *object,
                       guint       prop_id,
                       GValue     *value,
                       GParamSpec *pspec)
{
  DvtTask *task = DVT_TASK (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_set_uint64 (value, task->id);
      break;

    case PROP_NAME:
      g_value_set_string (value, dvt_task_get_name (task));
      break;

    case PROP_ATTEMPT:
      g_value_set_uint (value, dvt_task_attempt (task));
      break;

    case PROP_COMPLETED:
      g_value_set_boolean (value, dvt_task_get_completed (task));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_task_set_property (GObject      *object,
                       guint         prop_id,
                       const GValue *value,
                       GParamSpec   *pspec)
{
  switch (prop_id)
    {
    case PROP_NAME:
      dvt_task_set_name (DVT_TASK (object), g_value_get_string (value));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

/* On the event thread, once a record's signals have been emitted: the
 * properties it changed. Only tasks whose events are recorded (someone
 * connected to the runtime, a scope, or the task itself, "notify"
 * included) get here. */
static void
task_record_delivered (GObject      *object,
                       DvtEventKind  kind,
                       guint         attempt)
{
  if (kind >= DVT_EVENT_FAILED)
    g_object_notify_by_pspec (object, properties[PROP_COMPLETED]);
  else if (kind == DVT_EVENT_STARTED && attempt > 1)
    g_object_notify_by_pspec (object, properties[PROP_ATTEMPT]);
}

static void dvt_task_drop_spare_cancellable (void);

static void
dvt_task_class_init (DvtTaskClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = dvt_task_finalize;
  object_class->get_property = dvt_task_get_property;
  object_class->set_property = dvt_task_set_property;

  dvt_gobject_probe ();

  /* A worker that leaves the pool drops the cancellable it kept. */
  dvt_pool_set_worker_exit_hook (dvt_task_drop_spare_cancellable);

  /**
   * DvtTask:id:
   *
   * The execution id: see [method@Task.get_id].
   *
   * Since: 0.2
   */
  properties[PROP_ID] =
    g_param_spec_uint64 ("id", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * DvtTask:name:
   *
   * The target name: see [method@Task.get_name]. Setting it notifies on
   * the thread that sets it.
   *
   * Since: 0.2
   */
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DvtTask:attempt:
   *
   * The current attempt, from 1: see [method@Task.get_attempt]. Notified
   * when a retry starts, as the task's signals are: on the runtime's
   * [property@Runtime:event-context] (by default its events thread).
   *
   * Since: 0.2
   */
  properties[PROP_ATTEMPT] =
    g_param_spec_uint ("attempt", NULL, NULL, 1, G_MAXUINT16, 1,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY |
                       G_PARAM_STATIC_STRINGS);

  /**
   * DvtTask:completed:
   *
   * Whether the task has ended: see [method@Task.get_completed]. Its
   * notification comes as the task's signals do, on the runtime's
   * [property@Runtime:event-context] (by default its events thread), after
   * the task's terminal signal. A future bound to a widget's property
   * this way (g_object_bind_property()) should use an event-context of
   * the widget's main context.
   *
   * Since: 0.2
   */
  properties[PROP_COMPLETED] =
    g_param_spec_boolean ("completed", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY |
                          G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  dvt_events_add_signals (DVT_TYPE_TASK, DVT_EVENT_SIGNALS_TASK, DVT_TYPE_TASK);
  dvt_mail_set_after_delivery (dvt_task_flush_released);
  dvt_events_set_delivery_hooks (task_record_delivered, NULL);

  /* The class makes its signals: static types keep theirs for good. */
  g_type_class_unref (g_type_class_ref (G_TYPE_CANCELLABLE));
  cancelled_signal_id = g_signal_lookup ("cancelled", G_TYPE_CANCELLABLE);
  g_assert (cancelled_signal_id != 0);
  notify_signal_id = g_signal_lookup ("notify", G_TYPE_OBJECT);
}

static void
dvt_task_init (DvtTask *task)
{
  task->attempt = 1;
  dvt_latch_init (&task->done);
}

DvtTaskExtra *
dvt_task_extra (DvtTask *task)
{
  DvtTaskExtra *extra = g_atomic_pointer_get (&task->extra);

  if (G_UNLIKELY (extra == NULL))
    {
      extra = g_new0 (DvtTaskExtra, 1);
      extra->task = task;
      if (!g_atomic_pointer_compare_and_exchange (&task->extra, NULL, extra))
        {
          g_free (extra);
          extra = g_atomic_pointer_get (&task->extra);
        }
    }

  return extra;
}

static GObject *
dvt_task_get_source_object (GAsyncResult *result)
{
  return g_object_ref (G_OBJECT (dvt_task_runtime (DVT_TASK (result))));
}

static gpointer
dvt_task_get_user_data (GAsyncResult *result)
{
  return DVT_TASK_EXTRA (DVT_TASK (result), callback_data, NULL);
}

static gboolean
dvt_task_async_result_is_tagged (GAsyncResult *result,
                                 gpointer      source_tag)
{
  return DVT_TASK_EXTRA (DVT_TASK (result), source_tag, NULL) == source_tag;
}

static void
dvt_task_async_result_iface_init (GAsyncResultIface *iface)
{
  iface->get_source_object = dvt_task_get_source_object;
  iface->get_user_data = dvt_task_get_user_data;
  iface->is_tagged = dvt_task_async_result_is_tagged;
}

static void
on_own_cancelled (GCancellable *cancellable,
                  DvtTask      *task)
{
  DvtThreadState *state = dvt_thread_state ();
  DvtTask *outer = state->cancelling_task;

  state->cancelling_task = task;
  dvt_task_fail (task,
                 g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                      _("The task was cancelled")),
                 TRUE);
  state->cancelling_task = outer;
}

/* Ends @task as cancelled by a caller's cancellable. Not
 * dvt_task_cancel (): an item of a map ends alone here. */
static void
end_cancelled (DvtTask *task)
{
  DvtThreadState *state = dvt_thread_state ();
  DvtTask *outer = state->cancelling_task;

  state->cancelling_task = task;
  dvt_task_end_by_runtime (task,
                           g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                _("The task was cancelled")));
  state->cancelling_task = outer;
}

static void
on_caller_cancelled (GCancellable *cancellable,
                     DvtTask      *task)
{
  end_cancelled (task);
}

/* With dvt_stripe_lock (task) held. The task's own cancellable is made
 * when someone needs it; it is watched (cancelling it ends the task at
 * once) only once handed out by dvt_task_get_cancellable(): the runtime
 * itself ends the task first and then cancels the cancellable, and a signal
 * connection per task costs more than the rest of a hand-off. Returns TRUE
 * if the cancellable was already cancelled when it became watched. */
static gboolean
ensure_cancellable_locked (DvtTask  *task,
                           gboolean  watch)
{
  DvtTaskExtra *extra;

  if (task->cancellable == NULL)
    {
      DvtThreadState *state = dvt_thread_state ();

      if (task->kind == DVT_TASK_KIND_THREAD && state->spare_cancellable != NULL && !watch)
        task->cancellable = (GCancellable *) g_steal_pointer (&state->spare_cancellable);
      else
        task->cancellable = g_cancellable_new ();
      if (task->kind == DVT_TASK_KIND_THREAD && !watch)
        dvt_task_set_flag (task, DVT_TASK_FLAG_LENT_CANCELLABLE);
    }

  if (!watch)
    return FALSE;

  extra = dvt_task_extra (task);
  if (extra->cancellable_handler != 0)
    return FALSE;

  extra->cancellable_handler =
    g_signal_connect (task->cancellable, "cancelled",
                      G_CALLBACK (on_own_cancelled), task);

  return g_cancellable_is_cancelled (task->cancellable);
}

/* Makes the cancellable that the work function receives. */
void
dvt_task_ensure_cancellable (DvtTask *task)
{
  gboolean cancel;

  g_mutex_lock (dvt_stripe_lock (task));
  ensure_cancellable_locked (task, FALSE);
  cancel = dvt_task_has_flag (task, DVT_TASK_FLAG_CANCEL_REQUESTED);
  g_mutex_unlock (dvt_stripe_lock (task));

  if (cancel)
    DVT_CALLOUT (g_cancellable_cancel (task->cancellable));
}

/* ---- one spare task per calling thread -------------------------------------
 *
 * A blocking call's task is the runtime's own: once the call has read its
 * result, nothing else holds it unless the work function took a reference.
 * Making and finalizing a GObject costs GLib about half a microsecond, a
 * sixth of a whole round trip, so the caller's thread keeps that task as
 * a spare for its next call instead, reset as dvt_task_init() leaves a new
 * one. A task qualifies only if nothing could tell the difference: no
 * other reference, no data, weak reference or binding wrapper on it (its
 * qdata is empty), no handler, no extra block. */

/* Whether the caller's reference is the only thing left that ties @task
 * to anyone: no other reference, no function data still to free, no
 * cancellable of its own, no signal handler. @extra_is_plain is checked
 * before the handler lookup, which takes GLib's signal lock. */
static gboolean
task_is_runtime_only (DvtTask  *task,
                      gboolean  extra_is_plain)
{
  return g_atomic_int_get (&DVT_TASK_OBJECT (task)->ref_count) == 1 &&
         task->func_data_destroy == NULL &&
         task->cancellable == NULL &&
         extra_is_plain &&
         !dvt_object_has_handlers (task);
}

gboolean
dvt_task_recycle (DvtTask *task)
{
  /* Reused, unlike a task freed elsewhere, it must carry nothing at all:
   * no data or weak reference (qdata), no extra block. */
  DvtThreadState *state = dvt_thread_state ();

  if (state->spare_task != NULL ||
      !task_is_runtime_only (task, g_atomic_pointer_get (&task->extra) == NULL &&
                                   g_atomic_pointer_get (&DVT_TASK_OBJECT (task)->qdata) == NULL))
    return FALSE;

  g_assert (!dvt_task_has_flag (task, DVT_TASK_FLAG_LIVE));

  /* What finalize would free, in the same order, on the same thread. */
  dvt_result_clear (&task->result);
  dvt_latch_clear (&task->done);
  g_object_unref (task->core->owner);

  memset (G_STRUCT_MEMBER_P (task, sizeof (GObject)), 0, sizeof (DvtTask) - sizeof (GObject));
  dvt_task_init (task);
  state->spare_task = DVT_TASK_OBJECT (task);

  return TRUE;
}

DvtTask *
dvt_task_new (DvtCore      *core,
              DvtTaskKind   kind,
              DvtOptions   *options,
              GCancellable *cancellable)
{
  DvtThreadState *state = dvt_thread_state ();
  DvtTask *task = (DvtTask *) g_steal_pointer (&state->spare_task);

  if (task == NULL)
    task = (DvtTask *) g_object_new_with_properties (DVT_TYPE_TASK, 0, NULL, NULL);

  /* The runtime, its source object, lives while the task does. */
  g_object_ref (core->owner);
  task->core = core;
  task->kind = kind;
  task->id = __atomic_add_fetch (&core->next_id, 1, __ATOMIC_RELAXED);
  if (options != NULL && dvt_options_get_name (options) != NULL)
    dvt_task_extra (task)->name = g_intern_string (dvt_options_get_name (options));
  if (options != NULL && dvt_options_get_function (options) != NULL)
    dvt_task_extra (task)->function = dvt_options_get_function (options);
  if (options != NULL)
    dvt_task_set_schedule (task, options);

  /* The caller's cancellable is chained to one of the task's own, so that
   * cancelling this task never cancels the caller's other operations. */
  if (cancellable != NULL)
    {
      dvt_task_extra (task)->caller_cancellable = g_object_ref (cancellable);
      ensure_cancellable_locked (task, FALSE);
    }

  return task;
}

/* Called once the task is accepted: a cancellable that is already
 * cancelled ends the task at once. Only the first call connects: a future
 * accepted and dispatched later (a member a DvtTaskGroup holds back) is
 * connected at its acceptance, and again asked at its dispatch. */
void
dvt_task_connect_caller_cancellable (DvtTask *task)
{
  DvtTaskExtra *extra = g_atomic_pointer_get (&task->extra);

  if (extra == NULL || extra->caller_cancellable == NULL)
    return;
  if ((g_atomic_int_or (&task->flags, (guint) DVT_TASK_FLAG_CALLER_CONNECTED) &
       DVT_TASK_FLAG_CALLER_CONNECTED) != 0)
    return;

  extra->caller_cancellable_handler =
    g_cancellable_connect (extra->caller_cancellable,
                           G_CALLBACK (on_caller_cancelled), task, NULL);
}

/* ---- a blocking caller's cancellable -----------------------------------------
 *
 * Chaining a caller's cancellable to a task costs an extra block, a
 * cancellable of the task's own and a g_cancellable_connect() and
 * _disconnect() per call: more than the rest of a blocking round trip.
 * A thread blocks on one call at a time, so instead it keeps one watch:
 * a handler on the cancellable of its last blocking call, which ends the
 * task that the thread is blocked on now, if any. The next call with the
 * same cancellable only tells the watch which task that is.
 *
 * The watch does not hold the cancellable: the application's last
 * reference still finalizes it (which destroys the handler), and the
 * watch only keeps a GWeakRef to disconnect from it when the thread moves
 * to another cancellable or ends. Until then the handler stays connected;
 * a cancellation meanwhile finds no task and does nothing. The handler
 * holds the watch, so the watch outlives both the handler and the thread.
 * A call nested in another blocking call of the same thread (from a
 * callback of the context that a run_blocking() call iterates) chains its
 * cancellable to its task as before. */

typedef struct
{
  int           ref_count;   /* atomic: the thread's and the handler's */
  GMutex        lock;
  DvtTask      *task;        /* under lock: the call blocked on it now */
  gconstpointer cancellable; /* compared, never used: see caller_watch_for () */
  int           connected;   /* atomic: the handler exists */
  gulong        handler;
  GWeakRef      weak;
} CallerWatch;

static void
caller_watch_unref (CallerWatch *watch)
{
  if (!g_atomic_int_dec_and_test (&watch->ref_count))
    return;

  g_weak_ref_clear (&watch->weak);
  g_mutex_clear (&watch->lock);
  g_free (watch);
}

/* The handler is gone: disconnected, or its cancellable disposed. */
static void
caller_watch_handler_gone (gpointer  data,
                           GClosure *closure)
{
  CallerWatch *watch = data;

  g_atomic_int_set (&watch->connected, 0);
  caller_watch_unref (watch);
}

/* The thread's reference, when it moves on or ends. */
static void
caller_watch_drop (gpointer data)
{
  CallerWatch *watch = data;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  GObject *cancellable = g_weak_ref_get (&watch->weak);

  if (cancellable != NULL)
    {
      if (g_atomic_int_get (&watch->connected) &&
          g_signal_handler_is_connected (cancellable, watch->handler))
        g_signal_handler_disconnect (cancellable, watch->handler);
      /* Perhaps the last reference: the application's code may run. */
      DVT_CALLOUT (g_object_unref (cancellable));
    }
  caller_watch_unref (watch);
  dvt_fork_gate_leave (gate);
}

static void
on_watched_cancelled (GCancellable *cancellable,
                      CallerWatch  *watch)
{
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  DvtTask *task;

  g_mutex_lock (&watch->lock);
  task = watch->task != NULL ? g_object_ref (watch->task) : NULL;
  g_mutex_unlock (&watch->lock);

  if (task != NULL)
    {
      end_cancelled (task);
      dvt_task_unref_gated (task);
    }
  dvt_fork_gate_leave (gate);
}

/* Whether a blocking call on this thread may use the thread's watch: no
 * outer blocking call of this thread uses it. */
gboolean
dvt_task_can_watch_caller (void)
{
  CallerWatch *watch = dvt_thread_state ()->caller_watch;

  /* Only this thread sets the task. */
  return watch == NULL || watch->task == NULL;
}

/* The watch of @cancellable: the thread's if it is that one's (its
 * handler still exists, so the cancellable is the same object, not a new
 * one at the same address: disposing the old one destroyed the handler
 * first), else a new one that replaces it. */
static CallerWatch *
caller_watch_for (GCancellable *cancellable)
{
  DvtThreadState *state = dvt_thread_state ();
  CallerWatch *watch = state->caller_watch;

  if (G_LIKELY (watch != NULL && watch->cancellable == (gconstpointer) cancellable &&
                g_atomic_int_get (&watch->connected)))
    return watch;

  if (watch != NULL)
    caller_watch_drop (g_steal_pointer (&state->caller_watch));

  watch = g_new0 (CallerWatch, 1);
  watch->ref_count = 2;
  g_mutex_init (&watch->lock);
  watch->cancellable = cancellable;
  g_weak_ref_init (&watch->weak, cancellable);
  watch->connected = 1;
  watch->handler = g_signal_connect_data (cancellable, "cancelled",
                                          G_CALLBACK (on_watched_cancelled), watch,
                                          caller_watch_handler_gone, G_CONNECT_DEFAULT);
  state->caller_watch = watch;
  state->caller_watch_drop = caller_watch_drop;

  return watch;
}

/* For an accepted blocking call's @task, before it is dispatched (after
 * dvt_task_can_watch_caller() said yes): cancelling @cancellable ends
 * @task until dvt_task_unwatch_caller(); one already cancelled ends it at
 * once. The work gets a cancellable of the task's own when it starts. */
gpointer
dvt_task_watch_caller (DvtTask      *task,
                       GCancellable *cancellable)
{
  CallerWatch *watch = caller_watch_for (cancellable);

  g_mutex_lock (&watch->lock);
  watch->task = task;
  g_mutex_unlock (&watch->lock);

  /* A cancellation before the task was set: its handler found none. */
  if (g_cancellable_is_cancelled (cancellable))
    end_cancelled (task);

  return watch;
}

/* Once the call has its result: the watch ends nothing any more. */
void
dvt_task_unwatch_caller (gpointer data)
{
  CallerWatch *watch = data;

  g_mutex_lock (&watch->lock);
  watch->task = NULL;
  g_mutex_unlock (&watch->lock);
}

void
dvt_task_set_callback (DvtTask             *task,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data,
                       gpointer             source_tag)
{
  DvtTaskExtra *extra = dvt_task_extra (task);
  GMainContext *context;

  extra->callback = callback;
  extra->callback_data = user_data;
  extra->source_tag = source_tag;

  if (callback != NULL)
    {
      /* What g_main_context_ref_thread_default() returns, unreferenced:
       * the mailbox holds its context. */
      context = g_main_context_get_thread_default ();
      if (context == NULL)
        context = g_main_context_default ();
      extra->callback_mailbox = dvt_core_acquire_mailbox (dvt_task_core (task), context);
      dvt_mailbox_expect (extra->callback_mailbox);
    }
}

/* The data of a call with a callback is freed where the callback runs:
 * a language binding (GJS) can free its closures only on its own thread. */
void
dvt_task_destroy_data_on_caller_context (DvtTask *task)
{
  DvtTaskExtra *extra = g_atomic_pointer_get (&task->extra);

  if (task->func_data_destroy == NULL || extra == NULL || extra->callback_mailbox == NULL)
    return;

  extra->destroy_mailbox = dvt_core_acquire_mailbox (dvt_task_core (task),
                                                     extra->callback_mailbox->context);
}

void
dvt_task_set_run_context (DvtTask      *task,
                          GMainContext *context)
{
  DvtTaskExtra *extra = dvt_task_extra (task);

  g_assert (extra->run_mailbox == NULL);

  extra->run_context = g_main_context_ref (context);
  extra->run_mailbox = dvt_core_acquire_mailbox (dvt_task_core (task), context);
}

/* ---- events ------------------------------------------------------------- */

/* Called once the task is accepted: whether its events are recorded for
 * the runtime's signals and scopes. A task accepted by a scope's handler
 * is part of that scope's chain. */
gboolean
dvt_task_watch_events (DvtTask *task)
{
  guint64 scope;
  guint depth;

  if (!dvt_events_listening (&dvt_task_core (task)->events, dvt_task_runtime (task)))
    return FALSE;

  dvt_events_get_cause (&scope, &depth);
  if (G_UNLIKELY (scope != 0))
    {
      DvtTaskExtra *extra = dvt_task_extra (task);

      extra->cause_scope = scope;
      extra->cause_depth = depth + 1;
    }

  dvt_task_set_flag (task, DVT_TASK_FLAG_WATCHED);
  return TRUE;
}

/* Whether anyone can see @task's events: the runtime's signals or a scope
 * (settled when it was accepted), or, for a future, its own signals. */
static gboolean
events_wanted (DvtTask *task)
{
  if (dvt_task_has_flag (task, DVT_TASK_FLAG_WATCHED | DVT_TASK_FLAG_SCOPED))
    return TRUE;

  return dvt_task_has_flag (task, DVT_TASK_FLAG_FUTURE) &&
         dvt_object_has_handlers (task);
}

static void
record_event (DvtTask      *task,
              DvtEventKind  kind,
              const GError *error,
              double        value,
              DvtProgress  *progress)
{
  DvtEventSource source = {
    .task = DVT_TASK_OBJECT (task),
    .runtime = (GObject *) dvt_task_runtime (task),
    .runtime_name = task->core->name,
    .id = task->id,
    .name = dvt_task_get_name (task),
    .function = DVT_TASK_EXTRA (task, function, NULL),
    .cause_scope = DVT_TASK_EXTRA (task, cause_scope, 0),
    .cause_depth = DVT_TASK_EXTRA (task, cause_depth, 0),
    .attempt = dvt_task_attempt (task),
    .watched = dvt_task_has_flag (task, DVT_TASK_FLAG_WATCHED),
    .flags = &task->flags,
    .end_flag = DVT_TASK_FLAG_END_EVENT,
  };

  if (source.function == NULL)
    source.function = dvt_task_has_flag (task, DVT_TASK_FLAG_FUNC_IN_DATA)
                      ? *(gconstpointer *) task->func_data : task->func;
  dvt_events_record (&dvt_task_core (task)->events, &source, kind, error, value, progress);
}

/* Records an event of @task, if anyone can see it. @value is the elapsed
 * time, the back-off delay or the throttle wait, in seconds, depending on
 * @kind. */
void
dvt_task_emit (DvtTask      *task,
               DvtEventKind  kind,
               const GError *error,
               double        value)
{
  if (G_LIKELY (!events_wanted (task)))
    return;

  record_event (task, kind, error, value, NULL);
}

/* Progress of the map whose task is @batch: one record stands for every
 * item done until it is delivered. */
void
dvt_task_emit_progress (DvtTask     *batch,
                        DvtProgress *progress)
{
  record_event (batch, DVT_EVENT_PROGRESS, NULL, 0, progress);
}

static double
seconds_since (gint64 since)
{
  return since > 0 ? (double) (g_get_monotonic_time () - since) / G_USEC_PER_SEC : 0;
}

/* The one terminal event of a task that has just ended. */
void
dvt_task_emit_end (DvtTask *task)
{
  const GError *error = task->result.error;
  DvtEventKind kind;

  /* Before the clock is read: most tasks have nobody listening. */
  if (G_LIKELY (!events_wanted (task)))
    return;

  if (error == NULL)
    kind = DVT_EVENT_FINISHED;
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    kind = DVT_EVENT_CANCELLED;
  else
    kind = DVT_EVENT_FAILED;

  record_event (task, kind, error, seconds_since (task->accepted_at), NULL);
}

/* Counts an attempt that has started: the caller moved the task to
 * DVT_TASK_RUNNING. If the task ends meanwhile, its end already took it
 * off the running count, which is then briefly low, never left high. */
void
dvt_task_mark_started (DvtTask *task)
{
  if (!dvt_task_has_flag (task, DVT_TASK_FLAG_ACCEPTED))
    return;  /* an item of a map: the map counts */
  DvtCore *core = dvt_task_core (task);
  gint64 now = g_get_monotonic_time ();

  DVT_COUNTER_ADD (&core->n_started, 1);
  DVT_COUNTER_ADD (&core->n_running, 1);
  if (__atomic_load_n (&task->started_at, __ATOMIC_RELAXED) == 0)
    {
      __atomic_store_n (&task->started_at, now, __ATOMIC_RELAXED);
      /* A timed start waits in the queue from its time on. */
      dvt_histogram_add (&core->queue_wait,
                         now - MAX (task->accepted_at, DVT_TASK_EXTRA (task, start_at, 0)));
    }
  dvt_task_emit (task, DVT_EVENT_STARTED, NULL,
                   (double) (now - task->accepted_at) / G_USEC_PER_SEC);
}

/* After a work function returned: fail the task with @error (owned) if it
 * set one, or with DVT_ERROR_NOT_COMPLETED if it cannot be completed any
 * more. A thread function must complete its task before it returns; an
 * async function must either complete it or keep a reference to it. */
void
dvt_task_check_returned (DvtTask *task,
                         GError  *error)
{
  gboolean retrying = dvt_task_get_state (task) == DVT_TASK_RETRYING;

  if (error != NULL)
    {
      if (dvt_task_is_claimed (task) || retrying)
        {
          if (retrying || g_atomic_int_get (&task->completing) == DVT_CLAIMED_BY_WORK)
            dvt_log_task (G_LOG_LEVEL_CRITICAL, task->core->name, task->id,
                        dvt_task_get_name (task), NULL,
                        "A work function completed task %" G_GUINT64_FORMAT
                        " and also failed with “%s”; the error is dropped",
                        task->id, error->message);
          g_error_free (error);
        }
      else
        dvt_task_fail (task, error, FALSE);
      return;
    }

  if (dvt_task_is_claimed (task) || retrying)
    return;

  if (task->kind == DVT_TASK_KIND_THREAD ||
      (task->kind == DVT_TASK_KIND_ITEM && task->func == NULL) ||
      (task->internal_refs != 0 && dvt_task_ref_count (task) <= task->internal_refs))
    {
      /* Formatted apart: xgettext cannot see past G_GUINT64_FORMAT. */
      g_autofree char *id = g_strdup_printf ("%" G_GUINT64_FORMAT, task->id);

      dvt_task_fail (task,
                     g_error_new (DVT_ERROR, DVT_ERROR_NOT_COMPLETED,
                                  /* Translators: %s: a task id. */
                                  _("The work function of task %s returned "
                                    "without completing it (it must call a "
                                    "dvt_task_return function, set an error, or "
                                    "keep a reference to complete it later); a "
                                    "language binding may also have refused to "
                                    "call it on this thread"),
                                  id),
                     TRUE);
    }
}

/* After an attempt's function returned: starts the back-off of a retry
 * decided meanwhile, or tells whether the completion waits to be
 * published. */
static gboolean
function_returned (DvtTask *task)
{
  int flags = (int) g_atomic_int_or (&task->flags, (guint) DVT_TASK_FLAG_FUNC_DONE);

  if (flags & DVT_TASK_FLAG_RETRY_PENDING)
    {
      dvt_task_schedule_retry (task);
      return FALSE;
    }

  if (flags & DVT_TASK_FLAG_PUBLISH_PENDING)
    return TRUE;

  dvt_task_release_item (task);
  dvt_task_gates_check_over (task);
  return FALSE;
}

/* An item of a map that runs as a task of its own lets go of the map's
 * function once it has ended and its function will not run again: from
 * then on the map may free the function's data. Runs once per item. */
void
dvt_task_release_item (DvtTask *task)
{
  DvtTaskExtra *extra = g_atomic_pointer_get (&task->extra);

  if (extra == NULL || extra->parent == NULL || task->kind == DVT_TASK_KIND_ITEM ||
      dvt_task_get_state (task) != DVT_TASK_COMPLETED ||
      !dvt_task_has_flag (task, DVT_TASK_FLAG_FUNC_DONE))
    return;

  if (g_atomic_int_or (&task->flags, (guint) DVT_TASK_FLAG_ITEM_RELEASED) &
      DVT_TASK_FLAG_ITEM_RELEASED)
    return;

  extra->parent_class->released (extra->parent);
}

/* Whether anything but the task can hold or observe @cancellable: a
 * reference, a signal handler (blocked ones included), a weak reference
 * or data set on it (all of which live in its qdata). */
static gboolean
cancellable_is_private (GCancellable *cancellable)
{
  GObject *object = G_OBJECT (cancellable);

  return g_atomic_int_get ((int *) &object->ref_count) == 1 &&
         g_atomic_pointer_get (&object->qdata) == NULL &&
         !g_cancellable_is_cancelled (cancellable) &&
         (!dvt_object_may_have_handlers (object) ||
          (g_signal_handler_find (object, G_SIGNAL_MATCH_ID, cancelled_signal_id,
                                  0, NULL, NULL, NULL) == 0 &&
           g_signal_handler_find (object, G_SIGNAL_MATCH_ID, notify_signal_id,
                                  0, NULL, NULL, NULL) == 0));
}

/* After a thread function returned: the cancellable lent to it goes back
 * to this worker, for the next task, if nobody else can have it. Nothing
 * that cancels the task can be using it: a cancel sets
 * DVT_TASK_FLAG_CANCEL_REQUESTED under the same lock before it reads the
 * cancellable, and dvt_task_get_cancellable() watches it (which keeps it
 * with the task). A later dvt_task_get_cancellable() makes a new one. */
static void
take_back_cancellable (DvtTask *task)
{
  DvtThreadState *state = dvt_thread_state ();

  if (state->spare_cancellable != NULL ||
      !dvt_task_has_flag (task, DVT_TASK_FLAG_LENT_CANCELLABLE))
    return;

  g_mutex_lock (dvt_stripe_lock (task));
  if (task->cancellable != NULL &&
      !dvt_task_has_flag (task, DVT_TASK_FLAG_CANCEL_REQUESTED) &&
      DVT_TASK_EXTRA (task, cancellable_handler, 0) == 0 &&
      cancellable_is_private (task->cancellable))
    {
      state->spare_cancellable = G_OBJECT (g_steal_pointer (&task->cancellable));
      dvt_task_unset_flag (task, DVT_TASK_FLAG_LENT_CANCELLABLE);
    }
  g_mutex_unlock (dvt_stripe_lock (task));
}

/* Run by a worker thread before it leaves the pool's loop (the pool's
 * worker exit hook, set in dvt_task_class_init()). */
static void
dvt_task_drop_spare_cancellable (void)
{
  DvtThreadState *state = dvt_thread_state_peek ();

  if (state != NULL)
    {
      g_clear_object (&state->spare_cancellable);
      /* No blocking call of its own runs on a worker between jobs. */
      if (state->caller_watch != NULL)
        caller_watch_drop (g_steal_pointer (&state->caller_watch));
    }
}

/* ---- acceptance ------------------------------------------------------------ */

/* Under the core's lock, as @task becomes live. */
static void
task_accepted (gpointer data)
{
  DvtTask *task = data;

  /* Recorded before the task is live, so before any other event of it
   * (nobody can have connected to the task itself yet). */
  if (dvt_task_has_flag (task, DVT_TASK_FLAG_WATCHED))
    dvt_task_emit (task, DVT_EVENT_QUEUED, NULL, 0);
  dvt_task_set_flag (task, DVT_TASK_FLAG_LIVE | DVT_TASK_FLAG_ACCEPTED);
}

/* Makes @task live, unless the runtime is closed. A live task is held by
 * the runtime until it ends. */
gboolean
dvt_task_accept (DvtTask  *task,
                 GError  **error)
{
  /* Watched before it is live: a shutdown may end it at once, and its
   * end must then be recorded too. */
  DvtContext *context = dvt_context_get_current ();

  task->accepted_at = g_get_monotonic_time ();
  dvt_task_watch_events (task);
  /* Its work and its callback run in the request context of its
   * submitter (see DvtContext). */
  if (G_UNLIKELY (context != NULL))
    dvt_task_extra (task)->context = dvt_context_ref (context);

  g_object_ref (task);
  if (!dvt_core_accept (task->core, &task->live, task_accepted, task, error))
    {
      g_object_unref (task);
      return FALSE;
    }

  return TRUE;
}

typedef struct
{
  guint64  id;
  DvtTask *found;
} FindLive;

static gboolean
find_live_node (DvtLiveNode *node,
                gpointer     data)
{
  FindLive *find = data;
  DvtTask *task = DVT_TASK_OF_LIVE (node);

  if (task->id != find->id)
    return TRUE;
  find->found = g_object_ref (task);
  return FALSE;
}

/* The live task of id @id, held, or NULL. */
DvtTask *
dvt_task_find_live (DvtCore *core,
                    guint64  id)
{
  FindLive find = { id, NULL };

  dvt_core_foreach_live (core, find_live_node, &find);

  return find.found;
}

static gboolean
list_live_node (DvtLiveNode *node,
                gpointer     data)
{
  g_ptr_array_add (data, g_object_ref (DVT_TASK_OF_LIVE (node)));
  return TRUE;
}

/* The live tasks of @core, each held, in an array that drops them. */
GPtrArray *
dvt_task_list_live (DvtCore *core)
{
  GPtrArray *tasks = g_ptr_array_new_with_free_func (g_object_unref);

  dvt_core_foreach_live (core, list_live_node, tasks);

  return tasks;
}

/* Around a call of @task's work function on this thread: returns the
 * task whose function this call nests in, for dvt_task_leave_work(). */
DvtTask *
dvt_task_enter_work (DvtTask *task)
{
  DvtThreadState *state = dvt_thread_state ();
  DvtTask *outer = state->running_task;

  state->running_task = task;
  return outer;
}

void
dvt_task_leave_work (DvtTask *outer)
{
  dvt_thread_state ()->running_task = outer;
}

/* Whether waiting for @task here could never end: a work function waiting
 * for its own task (which publishes its end only once the function has
 * returned), or an item of a map for the map. */
static gboolean
waits_for_itself (DvtTask *task)
{
  DvtTask *running = running_task ();
  DvtTaskExtra *extra;

  if (G_LIKELY (running == NULL))
    return FALSE;
  if (running == task)
    return TRUE;

  extra = g_atomic_pointer_get (&running->extra);
  return extra != NULL && extra->parent != NULL &&
         extra->parent_class->get_task (extra->parent) == task;
}

gboolean
dvt_task_check_wait (DvtTask  *task,
                     GError  **error)
{
  if (G_LIKELY (!waits_for_itself (task)))
    return TRUE;

  g_set_error_literal (error, DVT_ERROR, DVT_ERROR_WOULD_DEADLOCK,
                       _("A work function waited for its own task (or an item "
                         "of a map for the map), which cannot end before the "
                         "function returns"));
  return FALSE;
}

/* The request context @task's work runs in: its own, or its parent's
 * (a map item runs in its map's). */
DvtContext *
dvt_task_get_context (DvtTask *task)
{
  DvtTaskExtra *extra = g_atomic_pointer_get (&task->extra);
  DvtTask *parent_task;

  if (G_LIKELY (extra == NULL))
    return NULL;
  if (extra->context != NULL || extra->parent == NULL)
    return extra->context;

  parent_task = extra->parent_class->get_task (extra->parent);
  return parent_task != NULL ? DVT_TASK_EXTRA (parent_task, context, NULL) : NULL;
}

static void
run_thread_job (DvtJob *job)
{
  DvtTask *task = G_STRUCT_MEMBER_P (job, -G_STRUCT_OFFSET (DvtTask, job));
  GError *error = NULL;
  DvtTask *outer;
  gpointer context;
  gboolean switched;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  /* A cancel claims the task before it marks it completed: a claim seen
   * after the switch to running means the cancel came first. */
  switched = g_atomic_int_compare_and_exchange (&task->state, DVT_TASK_QUEUED,
                                                DVT_TASK_RUNNING);
  if (switched && !dvt_task_is_claimed (task))
    {
      dvt_task_mark_started (task);
      if (dvt_task_has_flag (task, DVT_TASK_FLAG_WANTS_CANCELLABLE))
        dvt_task_ensure_cancellable (task);
      context = dvt_context_enter (dvt_task_get_context (task));
      outer = dvt_task_enter_work (task);
      DVT_APP_CALL (((DvtThreadFunc) task->func) (task, task->cancellable,
                                                  task->func_data, &error));
      take_back_cancellable (task);
      dvt_task_check_returned (task, error);
      dvt_task_leave_work (outer);
      dvt_context_leave (context);
      if (function_returned (task))
        {
          /* This worker looks for work next: a caller that submits again
           * as soon as it wakes needs no other thread woken. */
          dvt_pool_announce_return ();
          publish (task);
        }
    }
  else
    {
      /* Switched to running but found cancelled: its end counts it off the
       * running count, so count it on. */
      if (switched)
        DVT_COUNTER_ADD (&dvt_task_core (task)->n_running, 1);
      dvt_task_set_flag (task, DVT_TASK_FLAG_FUNC_DONE);
      dvt_task_release_item (task);
      dvt_task_gates_check_over (task);
    }

  dvt_task_unref_gated (task);
  dvt_fork_gate_leave (gate);
}

static void
start_async_mail (DvtMail *mail)
{
  DvtTask *task = DVT_TASK_OF_START_MAIL (mail);
  GError *error = NULL;
  DvtTask *outer;
  gpointer context;
  gboolean switched;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  /* A cancel claims the task before it marks it completed: a claim seen
   * after the switch to running means the cancel came first. */
  switched = g_atomic_int_compare_and_exchange (&task->state, DVT_TASK_QUEUED,
                                                DVT_TASK_RUNNING);
  if (switched && !dvt_task_is_claimed (task))
    {
      dvt_task_mark_started (task);
      if (dvt_task_has_flag (task, DVT_TASK_FLAG_WANTS_CANCELLABLE))
        dvt_task_ensure_cancellable (task);
      /* A task completed before its function returns is published after
       * it returns, as for thread functions: a blocking caller that wakes
       * may free the function at once. */
      context = dvt_context_enter (dvt_task_get_context (task));
      outer = dvt_task_enter_work (task);
      DVT_APP_CALL (((DvtAsyncFunc) task->func) (task, task->cancellable,
                                                 task->func_data, &error));
      dvt_task_check_returned (task, error);
      dvt_task_leave_work (outer);
      dvt_context_leave (context);
      if (function_returned (task))
        publish (task);
    }
  else
    {
      /* Switched to running but found cancelled: its end counts it off the
       * running count, so count it on. */
      if (switched)
        DVT_COUNTER_ADD (&dvt_task_core (task)->n_running, 1);
      dvt_task_set_flag (task, DVT_TASK_FLAG_FUNC_DONE);
      dvt_task_release_item (task);
      dvt_task_gates_check_over (task);
    }

  dvt_task_unref_gated (task);
  dvt_fork_gate_leave (gate);
}

/* Frees the work function's data now if the function will not be called
 * again; otherwise it is freed with the task, where its last reference
 * goes, which is where the function returns. */
void
dvt_task_release_func_data (DvtTask *task)
{
  GDestroyNotify destroy = task->func_data_destroy;

  if (destroy == NULL || !dvt_task_has_flag (task, DVT_TASK_FLAG_FUNC_DONE))
    return;

  task->func_data_destroy = NULL;
  DVT_APP_CALL (destroy (task->func_data));
}

/* Hands an accepted task to a worker or to its main context. */
void
dvt_task_dispatch (DvtTask *task)
{
  g_assert (task->kind == DVT_TASK_KIND_THREAD || task->kind == DVT_TASK_KIND_ASYNC);

  dvt_task_connect_caller_cancellable (task);

  if (!g_atomic_int_compare_and_exchange (&task->state, DVT_TASK_NEW, DVT_TASK_QUEUED))
    return;  /* already ended (cancelled) */

  if (G_UNLIKELY (DVT_TASK_EXTRA (task, start_at, 0) != 0))
    {
      dvt_task_dispatch_timed (task);
      return;
    }

  if (DVT_TASK_EXTRA (task, policy, NULL) != NULL)
    dvt_task_arm_timeout (task, task->extra->policy->timeout);

  dvt_task_start_attempt (task);
}

/* Starts a queued attempt once it is inside its gates (see
 * the section "gates" below). */
void
dvt_task_start_attempt (DvtTask *task)
{
  if (G_UNLIKELY (dvt_task_has_gates (task)) && !dvt_task_enter_gates (task))
    return;

  dvt_task_start_admitted (task);
}

/* Starts a queued attempt, or holds it back under the rate limit. */
void
dvt_task_start_admitted (DvtTask *task)
{
  DvtRateBucket *rate = &dvt_task_core (task)->rate;
  gint64 wait = 0;

  if (G_UNLIKELY (dvt_rate_bucket_is_set (rate)))
    wait = dvt_rate_bucket_reserve (rate, g_get_monotonic_time ());

  if (G_UNLIKELY (wait > 0))
    dvt_task_throttle (task, wait);
  else
    dvt_task_push_attempt (task);
}

/* Queues an attempt for a worker or the task's main context. */
void
dvt_task_push_attempt (DvtTask *task)
{
  g_object_ref (task);
  if (task->kind == DVT_TASK_KIND_THREAD)
    {
      task->job.run = run_thread_job;
      dvt_pool_push_priority (&dvt_task_core (task)->pool, &task->job,
                              DVT_TASK_EXTRA (task, priority, G_PRIORITY_DEFAULT));
    }
  else
    {
      DvtMailbox *mailbox = DVT_TASK_EXTRA (task, run_mailbox, NULL);

      if (mailbox == NULL && DVT_TASK_EXTRA (task, parent, NULL) != NULL)
        mailbox = task->extra->parent_class->get_mailbox (task->extra->parent);
      task->start_mail.deliver = start_async_mail;
      dvt_mailbox_post (mailbox != NULL ? mailbox : dvt_task_core (task)->loop_mailbox,
                        &task->start_mail);
    }
}

/* ---- timeouts, retries and throttling ---------------------------------------
 *
 * Every wait here is a timer on the runtime's loop thread: no thread
 * sleeps. A task's timers are stored in its extra under its lock and
 * destroyed when it ends, so that none outlives its task (a timer holds a
 * reference, and a forgotten one would keep the runtime alive). What to
 * wait and whether to retry is dvt-policy.c's decision. */

void
dvt_task_set_policy (DvtTask   *task,
                     DvtPolicy *policy)
{
  DvtTaskExtra *extra = dvt_task_extra (task);

  g_assert (extra->policy == NULL);
  extra->policy = dvt_policy_ref (policy);
  /* A timeout cancels the work's cancellable: the work needs one. */
  if (policy->timeout > 0)
    dvt_task_set_flag (task, DVT_TASK_FLAG_WANTS_CANCELLABLE);
}

/* ---- timers ------------------------------------------------------------ */

/* A timer's hold on its task, dropped by GLib after the timer. */
static void
timer_unref_task (gpointer task)
{
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  dvt_task_unref_gated (task);
  dvt_fork_gate_leave (gate);
}

/* Attaches a timer that calls @func (@task) on the loop thread after
 * @delay µs and stores it in *@slot, unless the task has ended. */
static void
arm_timer (DvtTask      *task,
           GSource     **slot,
           gint64        delay,
           GSourceFunc   func)
{
  GSource *source;
  guint ms = (guint) MIN ((MAX (delay, 0) + 999) / 1000, G_MAXUINT);

  source = g_timeout_source_new (ms);
  g_source_set_callback (source, func, g_object_ref (task), timer_unref_task);
  g_source_set_static_name (source, "[dovetail] task timer");

  /* Before the state is read: see dvt_task_stop_timers(). */
  dvt_task_set_flag (task, DVT_TASK_FLAG_TIMED);
  g_mutex_lock (dvt_stripe_lock (task));
  if (dvt_task_get_state (task) == DVT_TASK_COMPLETED)
    {
      g_mutex_unlock (dvt_stripe_lock (task));
      g_source_unref (source);
      return;
    }
  g_assert (*slot == NULL);
  *slot = source;
  g_source_attach (source, dvt_task_core (task)->context);
  g_mutex_unlock (dvt_stripe_lock (task));
}

/* In a timer's callback: forgets the stored timer. */
static void
disarm_timer (DvtTask  *task,
              GSource **slot)
{
  GSource *source;

  g_mutex_lock (dvt_stripe_lock (task));
  source = g_steal_pointer (slot);
  g_mutex_unlock (dvt_stripe_lock (task));

  if (source != NULL)
    g_source_unref (source);
}

/* Once the task has ended: no timer of it fires any more. */
void
dvt_task_stop_timers (DvtTask *task)
{
  GSource *sources[2];

  /* The task has ended: a timer armed after this reads the flag unset
   * would have seen it ended, and armed nothing. */
  if (!dvt_task_has_flag (task, DVT_TASK_FLAG_TIMED))
    return;

  g_mutex_lock (dvt_stripe_lock (task));
  sources[0] = g_steal_pointer (&task->extra->timeout_source);
  sources[1] = g_steal_pointer (&task->extra->wait_source);
  g_mutex_unlock (dvt_stripe_lock (task));

  for (guint i = 0; i < G_N_ELEMENTS (sources); i++)
    if (sources[i] != NULL)
      {
        g_source_destroy (sources[i]);
        g_source_unref (sources[i]);
      }
}

/* Ends @task as timed out after @timeout µs, unless it has ended. */
void
dvt_task_expire (DvtTask *task,
                 gint64   timeout)
{
  const char *name = dvt_task_get_name (task);
  double seconds = (double) timeout / G_USEC_PER_SEC;
  gulong plural = dvt_i18n_plural_count (seconds);
  GError *error;

  /* The message names the task when it has a name: the error may be read
   * far from where the task was made. */
  if (task->kind == DVT_TASK_KIND_BATCH)
    error = name != NULL
      ? g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                     /* Translators: %s is the call’s name; %g, seconds. */
                     g_dngettext (GETTEXT_PACKAGE,
                                  "The call “%s” did not finish"
                                  " within its deadline of %g second",
                                  "The call “%s” did not finish"
                                  " within its deadline of %g seconds",
                                  plural),
                     name, seconds)
      : g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                     g_dngettext (GETTEXT_PACKAGE,
                                  "The call did not finish"
                                  " within its deadline of %g second",
                                  "The call did not finish"
                                  " within its deadline of %g seconds",
                                  plural),
                     seconds);
  else
    error = name != NULL
      ? g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                     /* Translators: %s is the task’s name; %g, seconds. */
                     g_dngettext (GETTEXT_PACKAGE,
                                  "The task “%s” timed out after %g second",
                                  "The task “%s” timed out after %g seconds",
                                  plural),
                     name, seconds)
      : g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                     g_dngettext (GETTEXT_PACKAGE,
                                  "The task timed out after %g second",
                                  "The task timed out after %g seconds",
                                  plural),
                     seconds);

  dvt_task_set_flag (task, DVT_TASK_FLAG_EXPIRED);
  dvt_task_end_by_runtime (task, error);
}

static gboolean
on_timeout (gpointer data)
{
  DvtTask *task = data;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  disarm_timer (task, &task->extra->timeout_source);
  dvt_task_expire (task, task->extra->policy->timeout);
  dvt_fork_gate_leave (gate);

  return G_SOURCE_REMOVE;
}

/* Starts the clock of a task that has a timeout: from now to its end. */
void
dvt_task_arm_timeout (DvtTask *task,
                      gint64   timeout)
{
  if (timeout <= 0)
    return;

  /* The timer holds the task: a function that has not completed its task
   * when it returns is then not the only other holder. */
  if (task->internal_refs != 0)
    task->internal_refs++;
  arm_timer (task, &task->extra->timeout_source, timeout, on_timeout);
}

static gboolean
on_retry_due (gpointer data)
{
  DvtTask *task = data;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  disarm_timer (task, &task->extra->wait_source);

  /* The function runs again: its data must not be freed meanwhile. */
  dvt_task_unset_flag (task, DVT_TASK_FLAG_FUNC_DONE);
  if (!g_atomic_int_compare_and_exchange (&task->state, DVT_TASK_RETRYING, DVT_TASK_QUEUED))
    {
      dvt_task_set_flag (task, DVT_TASK_FLAG_FUNC_DONE);
      dvt_task_release_item (task);
      dvt_fork_gate_leave (gate);
      return G_SOURCE_REMOVE;  /* it ended during the back-off */
    }

  __atomic_add_fetch (&task->attempt, 1, __ATOMIC_RELAXED);
  dvt_task_start_attempt (task);
  dvt_fork_gate_leave (gate);

  return G_SOURCE_REMOVE;
}

/* Once the failed attempt's function has returned: waits out the
 * back-off on a timer, then starts the next attempt. */
void
dvt_task_schedule_retry (DvtTask *task)
{
  gint64 delay = dvt_policy_retry_delay (task->extra->policy, dvt_task_attempt (task));

  /* The attempt is over: its gates are left during the back-off. */
  dvt_task_release_gates (task);
  dvt_task_unset_flag (task, DVT_TASK_FLAG_RETRY_PENDING);
  dvt_task_emit (task, DVT_EVENT_RETRY, task->extra->last_error,
                   (double) delay / G_USEC_PER_SEC);
  arm_timer (task, &task->extra->wait_source, delay, on_retry_due);
}

static gboolean
on_throttle_done (gpointer data)
{
  DvtTask *task = data;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  disarm_timer (task, &task->extra->wait_source);
  if (dvt_task_get_state (task) == DVT_TASK_QUEUED)
    dvt_task_push_attempt (task);
  else
    dvt_task_release_gates (task);  /* ended during the wait */
  dvt_fork_gate_leave (gate);

  return G_SOURCE_REMOVE;
}

/* Holds a queued attempt back for @wait µs. */
void
dvt_task_throttle (DvtTask *task,
                   gint64   wait)
{
  DVT_COUNTER_ADD (&dvt_task_core (task)->n_throttled, 1);
  dvt_task_extra (task);
  dvt_task_emit (task, DVT_EVENT_THROTTLED, NULL, (double) wait / G_USEC_PER_SEC);
  arm_timer (task, &task->extra->wait_source, wait, on_throttle_done);
}

/* ---- priority and timed starts ---------------------------------------------
 *
 * A call's priority orders its blocking work in the pool's queue (see
 * dvt_pool_push_priority()); a delay or a not-before time holds its first
 * attempt back on a timer of the loop thread, as the rate limit does, so
 * that no worker waits. Until it starts, the task is queued: a cancel or
 * a shutdown that cancels ends it, and its timer goes with it
 * (dvt_task_stop_timers()). Both are read once, when the call is made. */

/* Records @options' priority and start time in @task, if not defaults. */
void
dvt_task_set_schedule (DvtTask    *task,
                       DvtOptions *options)
{
  int priority = G_PRIORITY_DEFAULT;
  gint64 start_at = 0;

  if (G_LIKELY (!dvt_options_get_schedule (options, &priority, &start_at)))
    return;

  dvt_task_extra (task)->priority = priority;
  task->extra->start_at = start_at;
}

/* How long (µs) @task's first attempt waits from now; 0: none. */
gint64
dvt_task_start_delay (DvtTask *task)
{
  gint64 start_at = DVT_TASK_EXTRA (task, start_at, 0);

  if (G_LIKELY (start_at == 0))
    return 0;

  /* Far enough to add a timeout to without overflow. */
  return CLAMP (start_at - g_get_monotonic_time (), 0, G_MAXINT64 / 4);
}

static gboolean
on_start_due (gpointer data)
{
  DvtTask *task = data;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  gint64 delay;

  disarm_timer (task, &task->extra->wait_source);
  if (dvt_task_get_state (task) == DVT_TASK_QUEUED)
    {
      /* Never early, even if the timer's rounding says otherwise. */
      delay = dvt_task_start_delay (task);
      if (delay > 0)
        dvt_task_start_later (task, delay);
      else
        dvt_task_start_attempt (task);
    }
  dvt_fork_gate_leave (gate);

  return G_SOURCE_REMOVE;
}

/* Holds the first attempt of a queued @task back for @delay µs. */
void
dvt_task_start_later (DvtTask *task,
                      gint64   delay)
{
  arm_timer (task, &task->extra->wait_source, delay, on_start_due);
}

/* dvt_task_dispatch() for a queued @task with a start time: its timeout
 * counts from the end of its delay. */
void
dvt_task_dispatch_timed (DvtTask *task)
{
  gint64 delay = dvt_task_start_delay (task);

  if (task->extra->policy != NULL && task->extra->policy->timeout > 0)
    dvt_task_arm_timeout (task, task->extra->policy->timeout + delay);

  if (delay > 0)
    dvt_task_start_later (task, delay);
  else
    dvt_task_start_attempt (task);
}

/* Whether a failed attempt of @task is tried again. */
gboolean
dvt_task_should_retry (DvtTask      *task,
                       const GError *error)
{
  return dvt_policy_should_retry (DVT_TASK_EXTRA (task, policy, NULL), dvt_task_attempt (task),
                                  task, error);
}

/* ---- releasing tasks after their callback ---------------------------------
 *
 * Dropping the last reference to a task costs more than the rest of a
 * to_thread_async() hand-off on the caller's side (GObject's last unref
 * takes several global locks). When a caller's context delivers a run of
 * callbacks, the tasks nobody else holds are handed back to a worker in
 * one job instead, and freed there. Only tasks whose freeing runs none of
 * the caller's code qualify: no handlers, no user object or destroy notify
 * left, a result of a plain type. */

#define RELEASE_BATCH_MIN 8

/* The batch is the thread state's release_head (tasks linked through
 * live.next, unused once a task ended) and release_length. */

static gboolean
result_is_plain (const DvtResult *result)
{
  GType type = G_VALUE_TYPE (&result->value);

  if (type == G_TYPE_INVALID)
    return TRUE;

  /* A fundamental type is its own fundamental: no lookup. */
  switch (G_TYPE_IS_FUNDAMENTAL (type) ? type : G_TYPE_FUNDAMENTAL (type))
    {
    case G_TYPE_BOOLEAN: case G_TYPE_CHAR: case G_TYPE_UCHAR:
    case G_TYPE_INT: case G_TYPE_UINT: case G_TYPE_LONG: case G_TYPE_ULONG:
    case G_TYPE_INT64: case G_TYPE_UINT64: case G_TYPE_FLOAT: case G_TYPE_DOUBLE:
    case G_TYPE_ENUM: case G_TYPE_FLAGS: case G_TYPE_STRING:
      return TRUE;
    case G_TYPE_POINTER:
      return result->destroy == NULL || g_value_get_pointer (&result->value) == NULL;
    default:
      return FALSE;
    }
}

static gboolean
release_is_plain (DvtTask *task)
{
  DvtTaskExtra *extra = g_atomic_pointer_get (&task->extra);

  /* Only the sole holder may read the rest: nobody else writes it then. */
  if (g_atomic_int_get (&DVT_TASK_OBJECT (task)->ref_count) != 1)
    return FALSE;

  return task_is_runtime_only (task,
                               extra->caller_cancellable == NULL &&
                               extra->destroy_mailbox == NULL &&
                               extra->run_context == NULL &&
                               extra->parent == NULL &&
                               result_is_plain (&task->result) &&
                               !g_atomic_int_get (&dvt_task_core (task)->closed));
}

/* Frees @task, whose last reference the caller holds, as g_object_unref()
 * would, without the steps that are certainly no-ops for it: GObject
 * freezes the notify queue (allocating it in the object's data), runs
 * dispose (which destroys signal handlers, closures, weak references and
 * weak locations, all kept in the data list or GLib's handler table),
 * clears each of them again, and only then finalizes, taking the notify
 * and signal locks several times, about half the cost of a
 * to_thread_async() call. A task with an empty data list (so no data,
 * weak or toggle reference, closure or notify queue) that never had a
 * signal handler (see dvt-gobject-private.h) has none of these to
 * clear: it is finalized and freed at once. Returns FALSE, doing
 * nothing, for any other task. */
static gboolean
free_plain (DvtTask *task)
{
  GObject *object = DVT_TASK_OBJECT (task);

  if (g_atomic_int_get (&object->ref_count) != 1 ||
      g_atomic_pointer_get (&object->qdata) != NULL ||
      dvt_object_may_have_handlers (object))
    return FALSE;

  /* As g_object_unref() leaves it for finalize. */
  g_atomic_int_set ((int *) &object->ref_count, 0);
  G_OBJECT_GET_CLASS (object)->finalize (object);
  g_type_free_instance ((GTypeInstance *) object);

  return TRUE;
}

/* The last unref of a task that the caller alone holds, or any other. */
static void
unref_plain (DvtTask *task)
{
  if (!free_plain (task))
    g_object_unref (task);
}

/* Drops a reference to @task inside a section of the fork gate (see
 * dvt-thread-private.h). Freeing a task may call the application (its
 * data's destroy notify, a result's, weak references, a binding's
 * wrapper): unless this is the last reference and none of that can
 * happen, the drop is a CALLOUT stretch. Only the sole holder may look:
 * while others hold the task, they may be changing what it holds (and
 * one of them may drop its own reference first, making this one last). */
void
dvt_task_unref_gated (DvtTask *task)
{
  DvtTaskExtra *extra = g_atomic_pointer_get (&task->extra);

  if (g_atomic_int_get (&DVT_TASK_OBJECT (task)->ref_count) == 1 &&
      task->func_data_destroy == NULL &&
      task->cancellable == NULL &&
      g_atomic_pointer_get (&DVT_TASK_OBJECT (task)->qdata) == NULL &&
      result_is_plain (&task->result) &&
      (extra == NULL ||
       (extra->caller_cancellable == NULL && extra->destroy_mailbox == NULL &&
        extra->parent == NULL &&
        (extra->policy == NULL || extra->policy->filter == NULL))))
    unref_plain (task);
  else
    DVT_CALLOUT (g_object_unref (task));
}

static void
unref_batch (DvtTask *task)
{
  while (task != NULL)
    {
      DvtTask *next = task->live.next != NULL ? DVT_TASK_OF_LIVE (task->live.next) : NULL;

      unref_plain (task);
      task = next;
    }
}

static void
release_job_run (DvtJob *job)
{
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  unref_batch (G_STRUCT_MEMBER_P (job, -G_STRUCT_OFFSET (DvtTask, job)));
  dvt_fork_gate_leave (gate);
}

/* Called once a mailbox has delivered what it had: frees the collected
 * tasks here if there are only a few, else hands them to a worker. */
void
dvt_task_flush_released (void)
{
  DvtThreadState *state = dvt_thread_state_peek ();
  DvtTask *task = state != NULL ? state->release_head : NULL;
  guint length = state != NULL ? state->release_length : 0;
  DvtForkGate gate;

  if (task == NULL)
    return;

  state->release_head = NULL;
  state->release_length = 0;

  /* Their freeing calls nothing of the application's. */
  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  if (length >= RELEASE_BATCH_MIN &&
      !g_atomic_int_get (&dvt_task_core (task)->closed))
    {
      task->job.run = release_job_run;
      dvt_pool_push (&dvt_task_core (task)->pool, &task->job);
    }
  else
    unref_batch (task);
  dvt_fork_gate_leave (gate);
}

static void
release_after_callback (DvtTask *task)
{
  if (!release_is_plain (task))
    {
      dvt_task_unref_gated (task);
      return;
    }

  /* One batch per runtime: a nested loop may deliver another's. */
  DvtThreadState *state = dvt_thread_state ();
  DvtTask *head = state->release_head;

  if (head != NULL && head->core != task->core)
    {
      dvt_task_flush_released ();
      head = NULL;
    }

  task->live.next = head != NULL ? &head->live : NULL;
  state->release_head = task;
  state->release_length++;
}

static void
deliver_callback (DvtMail *mail)
{
  DvtTask *task = DVT_TASK_OF_MAIL (mail);
  DvtCore *core = dvt_task_core (task);
  DvtMailbox *mailbox = g_steal_pointer (&task->extra->callback_mailbox);
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  gpointer context;

  dvt_core_ref (core);
  context = dvt_context_enter (dvt_task_get_context (task));
  DVT_APP_CALL (task->extra->callback ((GObject *) dvt_task_runtime (task), (GAsyncResult *) task,
                                       task->extra->callback_data));
  dvt_context_leave (context);
  release_after_callback (task);
  dvt_mailbox_expect_done (mailbox);
  dvt_core_release_mailbox (core, mailbox);
  dvt_core_unref (core);
  dvt_fork_gate_leave (gate);
}

static void
count_end (DvtTask      *task,
           DvtTaskState  previous)
{
  DvtCore *core = dvt_task_core (task);
  const GError *error = task->result.error;

  if (!dvt_task_has_flag (task, DVT_TASK_FLAG_ACCEPTED))
    return;

  if (previous == DVT_TASK_RUNNING)
    DVT_COUNTER_ADD (&core->n_running, -1);
  {
    gint64 started_at = __atomic_load_n (&task->started_at, __ATOMIC_RELAXED);

    if (started_at != 0)
      dvt_histogram_add (&core->run_time, g_get_monotonic_time () - started_at);
  }

  if (error == NULL)
    DVT_COUNTER_ADD (&core->n_done, 1);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    DVT_COUNTER_ADD (&core->n_cancelled, 1);
  else
    {
      DVT_COUNTER_ADD (&core->n_error, 1);
      if (dvt_task_has_flag (task, DVT_TASK_FLAG_EXPIRED) &&
          g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
        DVT_COUNTER_ADD (&core->n_timed_out, 1);
    }
}

/* Posts what follows a completed task's end: its map slot, its hooks, its
 * callback. */
static void
publish_extra (DvtTask      *task,
               DvtTaskExtra *extra)
{
  DvtTaskHookNode *hooks = NULL;

  /* An item of a map with a timeout, retries or a rate limit, a task of
   * its own: its result goes to its slot, once its function has returned
   * (unless the runtime ended it), so that the map never returns while
   * one of its functions still runs. */
  if (extra->parent != NULL)
    {
      dvt_task_release_item (task);
      extra->parent_class->done (extra->parent, task, &task->result);
      return;
    }

  /* Under the lock: dvt_task_add_done_hook() may be adding one right now,
   * having seen the task not yet completed. */
  g_mutex_lock (dvt_stripe_lock (task));
  hooks = g_steal_pointer (&extra->hooks);
  g_mutex_unlock (dvt_stripe_lock (task));

  if (extra->run_context != NULL)
    g_main_context_wakeup (extra->run_context);

  while (hooks != NULL)
    {
      DvtTaskHookNode *next = hooks->next;

      hooks->hook (task, hooks->data);
      g_free (hooks);
      hooks = next;
    }

  if (extra->callback != NULL)
    {
      extra->mail.deliver = deliver_callback;
      g_object_ref (task);
      dvt_mailbox_post (extra->callback_mailbox, &extra->mail);
    }
}

/* Makes a completed task's end visible: off the live list, waiters woken,
 * then its map slot, hooks and callback posted. A task that posts any of
 * these keeps the runtime from being idle until it has (a waiting
 * shutdown must not stop the loop thread with its mail still to come). */
static void
publish (DvtTask *task)
{
  DvtCore *core = dvt_task_core (task);
  gboolean live = dvt_task_has_flag (task, DVT_TASK_FLAG_LIVE);
  DvtTaskExtra *extra;

  /* Read under the lock: dvt_task_add_done_hook() may be making it right
   * now, having seen the task not yet completed. */
  g_mutex_lock (dvt_stripe_lock (task));
  extra = g_atomic_pointer_get (&task->extra);
  g_mutex_unlock (dvt_stripe_lock (task));

  gboolean hold = extra != NULL && live;

  if (hold)
    dvt_core_hold_idle (core);

  /* Off the live list before waking anyone: a woken caller submits again
   * at once and would otherwise meet us on the runtime's lock. */
  if (live)
    {
      dvt_core_retire (core, &task->live);
      dvt_task_unset_flag (task, DVT_TASK_FLAG_LIVE);
      g_object_unref (task);
    }

  dvt_fault_point ();
  dvt_latch_set (&task->done);
  dvt_task_stop_timers (task);
  if (G_UNLIKELY (dvt_task_has_flag (task, DVT_TASK_FLAG_GATE_WAIT |
                                           DVT_TASK_FLAG_GATES_HELD)))
    dvt_task_gates_ended (task);

  if (extra == NULL)
    return;

  publish_extra (task, extra);
  if (hold)
    dvt_core_release_idle (core);
  if (dvt_task_has_flag (task, DVT_TASK_FLAG_HOLDS_IDLE))
    dvt_core_release_idle (core);
}

/* Makes @task part of @parent, as its item @index, holding it (the
 * caller gives its reference). Before the task is dispatched. */
void
dvt_task_set_parent (DvtTask                  *task,
                     const DvtTaskParentClass *parent_class,
                     gpointer                  parent,
                     guint                     index)
{
  DvtTaskExtra *extra = dvt_task_extra (task);

  g_assert (extra->parent == NULL);
  extra->parent = parent;
  extra->parent_class = parent_class;
  extra->index = index;
}

/* For a task that is not on the live list (an item of a map that runs as
 * a task of its own): the runtime is not idle until its end has been
 * published, its map slot included. Before it is dispatched. */
void
dvt_task_hold_idle (DvtTask *task)
{
  g_assert (!dvt_task_has_flag (task, DVT_TASK_FLAG_ACCEPTED));

  dvt_task_set_flag (task, DVT_TASK_FLAG_HOLDS_IDLE);
  dvt_core_hold_idle (dvt_task_core (task));
}

/* A failed attempt that is tried again: the task goes back to waiting,
 * unless something ended it meanwhile. */
static gboolean
begin_retry (DvtTask   *task,
             DvtResult *result)
{
  int flags;

  if (dvt_task_is_claimed (task) || !dvt_task_should_retry (task, result->error))
    return FALSE;

  if (!g_atomic_int_compare_and_exchange (&task->state, DVT_TASK_RUNNING, DVT_TASK_RETRYING))
    return FALSE;

  if (dvt_task_has_flag (task, DVT_TASK_FLAG_ACCEPTED))
    DVT_COUNTER_ADD (&dvt_task_core (task)->n_running, -1);
  DVT_COUNTER_ADD (&dvt_task_core (task)->n_retries, 1);

  g_mutex_lock (dvt_stripe_lock (task));
  g_clear_error (&task->extra->last_error);
  task->extra->last_error = g_steal_pointer (&result->error);
  g_mutex_unlock (dvt_stripe_lock (task));
  dvt_result_clear (result);

  /* The back-off starts once this attempt's function has returned, so
   * that two attempts never run at once. */
  flags = (int) g_atomic_int_or (&task->flags, (guint) DVT_TASK_FLAG_RETRY_PENDING);
  if (flags & DVT_TASK_FLAG_FUNC_DONE)
    dvt_task_schedule_retry (task);

  return TRUE;
}

/* Completes @task with @result (whose contents are taken). The first
 * result wins. @by_runtime tells a result of the runtime's own
 * (cancellation, shutdown, a missing result) from one of the work. If the
 * result wins and @cancel_first is given, it is cancelled after the result
 * is recorded and before anyone is released: see dvt_task_end_by_runtime(). */
static gboolean
finish_in_gate (DvtTask      *task,
                DvtResult    *result,
                gboolean      by_runtime,
                GCancellable *cancel_first)
{
  DvtTaskState previous;
  gboolean running;

  if (!by_runtime && result->error != NULL &&
      DVT_TASK_EXTRA (task, policy, NULL) != NULL && begin_retry (task, result))
    return FALSE;

  /* Claim first, reference after: a cancellation handler may run while
   * another thread drops the last reference to a task that has ended (its
   * finalize then waits for the handler), so a loser must not touch the
   * reference count. A winner holds a task that the runtime holds too
   * (live, or owned by the caller), so taking a reference is safe. The
   * claim records who won, so that a loser reads it atomically. */
  if (!g_atomic_int_compare_and_exchange (&task->completing, 0,
                                          by_runtime ? DVT_CLAIMED_BY_RUNTIME
                                                     : DVT_CLAIMED_BY_WORK))
    {
      if (!by_runtime &&
          g_atomic_int_get (&task->completing) == DVT_CLAIMED_BY_WORK)
        dvt_log_task (G_LOG_LEVEL_CRITICAL, task->core->name, task->id,
                    dvt_task_get_name (task), NULL,
                    "Task %" G_GUINT64_FORMAT " was completed twice; "
                    "the second result is dropped", task->id);
      dvt_result_clear (result);
      return FALSE;
    }

  /* The work function running here holds its task (its job's reference)
   * until the function has returned and the end is published. */
  running = running_task () == task;
  if (!running)
    g_object_ref (task);

  if (task->kind == DVT_TASK_KIND_ITEM)
    {
      task->extra->parent_class->done (task->extra->parent, task, result);
      if (!running)
        g_object_unref (task);
      return FALSE;
    }

  task->result = *result;
  memset (result, 0, sizeof *result);

  previous = (DvtTaskState) __atomic_exchange_n (&task->state, DVT_TASK_COMPLETED,
                                                 __ATOMIC_SEQ_CST);
  count_end (task, previous);
  /* Ended while its attempt was queued (or held back by the rate limit)
   * inside its gates: that attempt will never run, and leaves them now. */
  if (G_UNLIKELY (previous == DVT_TASK_QUEUED) &&
      dvt_task_has_flag (task, DVT_TASK_FLAG_GATES_HELD))
    dvt_task_release_gates (task);
  if (dvt_task_has_flag (task, DVT_TASK_FLAG_ACCEPTED))
    dvt_task_emit_end (task);

  if (cancel_first != NULL)
    {
      DVT_CALLOUT (g_cancellable_cancel (cancel_first));
      dvt_fault_point ();
    }

  /* A worker completing the task it runs publishes once its function has
   * returned, as GTask does: the waiter then finds that worker free. */
  if (running)
    {
      dvt_task_set_flag (task, DVT_TASK_FLAG_PUBLISH_PENDING);
      return TRUE;
    }

  publish (task);
  dvt_task_unref_gated (task);

  return TRUE;
}

static gboolean
finish_full (DvtTask      *task,
             DvtResult    *result,
             gboolean      by_runtime,
             GCancellable *cancel_first)
{
  /* Work functions and GIO callbacks complete tasks from outside. */
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  gboolean won = finish_in_gate (task, result, by_runtime, cancel_first);

  dvt_fork_gate_leave (gate);

  return won;
}

void
dvt_task_finish (DvtTask   *task,
                 DvtResult *result,
                 gboolean   by_runtime)
{
  finish_full (task, result, by_runtime, NULL);
}

void
dvt_task_fail (DvtTask  *task,
               GError   *error,
               gboolean  by_runtime)
{
  DvtResult result = { G_VALUE_INIT, NULL, error };

  dvt_task_finish (task, &result, by_runtime);
}

void
dvt_task_add_done_hook (DvtTask     *task,
                        DvtTaskHook  hook,
                        gpointer     data)
{
  DvtTaskHookNode *node;

  g_mutex_lock (dvt_stripe_lock (task));
  if (dvt_task_get_state (task) != DVT_TASK_COMPLETED)
    {
      node = g_new (DvtTaskHookNode, 1);
      node->hook = hook;
      node->data = data;
      node->next = dvt_task_extra (task)->hooks;
      task->extra->hooks = node;
      g_mutex_unlock (dvt_stripe_lock (task));
      return;
    }
  g_mutex_unlock (dvt_stripe_lock (task));

  hook (task, data);
}

gboolean
dvt_task_is_tagged (DvtTask    *task,
                    DvtRuntime *runtime,
                    gpointer    source_tag)
{
  return dvt_task_runtime (task) == runtime && DVT_TASK_EXTRA (task, source_tag, NULL) == source_tag;
}

/* Waits for @task until the monotonic time @deadline (-1: none). A task
 * whose async work runs on a context this thread can acquire is driven by
 * iterating that context while waiting. */
gboolean
dvt_task_wait_internal (DvtTask  *task,
                        gint64    deadline,
                        GError  **error)
{
  gboolean completed;

  if (dvt_latch_is_set (&task->done))
    return TRUE;

  if (!dvt_core_check_blocking (dvt_task_core (task), error) ||
      !dvt_task_check_wait (task, error))
    return FALSE;

  GMainContext *run_context = DVT_TASK_EXTRA (task, run_context, NULL);

  if (run_context != NULL && g_main_context_acquire (run_context))
    {
      completed = dvt_latch_wait_iterating (&task->done, run_context, deadline);
      g_main_context_release (run_context);
    }
  else
    completed = dvt_latch_wait (&task->done, deadline);

  if (!completed)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                         _("Timed out waiting for the task to complete"));

  return completed;
}

/**
 * dvt_task_get_runtime:
 * @task: a task
 *
 * Gets the runtime that runs @task.
 *
 * Returns: (transfer none): the runtime
 */
DvtRuntime *
dvt_task_get_runtime (DvtTask *task)
{
  g_return_val_if_fail (DVT_IS_TASK (task), NULL);

  return dvt_task_runtime (task);
}

/**
 * dvt_task_get_id:
 * @task: a task
 *
 * Gets the execution id of @task, unique among the tasks of its runtime.
 * Ids start at 1 and increase in the order tasks are created.
 *
 * Returns: the id
 */
guint64
dvt_task_get_id (DvtTask *task)
{
  g_return_val_if_fail (DVT_IS_TASK (task), 0);

  return task->id;
}

/**
 * dvt_task_get_name:
 * @task: a task
 *
 * Gets the target name of @task, from #DvtOptions:name or
 * dvt_task_set_name().
 *
 * Returns: (nullable): the name, or %NULL if it has none
 */
const char *
dvt_task_get_name (DvtTask *task)
{
  g_return_val_if_fail (DVT_IS_TASK (task), NULL);

  if (g_atomic_pointer_get (&task->extra) == NULL)
    return NULL;

  return g_atomic_pointer_get (&task->extra->name);
}

/**
 * dvt_task_set_name:
 * @task: a task
 * @name: (nullable): the new name
 *
 * Sets the target name of @task, from any thread. Names are interned, as
 * signal details are, and kept for the life of the process: use a small
 * set of names (one per kind of work), not one per task.
 */
void
dvt_task_set_name (DvtTask    *task,
                   const char *name)
{
  g_return_if_fail (DVT_IS_TASK (task));

  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  const char *interned = g_intern_string (name);
  const char *old = g_atomic_pointer_exchange (&dvt_task_extra (task)->name, interned);

  dvt_fork_gate_set (DVT_FORK_GATE_CALLOUT);
  if (old != interned)
    g_object_notify_by_pspec (G_OBJECT (task), properties[PROP_NAME]);
  dvt_fork_gate_leave (gate);
}

/**
 * dvt_task_get_attempt:
 * @task: a task
 *
 * Gets the number of the current attempt of @task, starting at 1 and
 * growing by one with each retry (see [property@Runtime:retries]).
 *
 * Returns: the attempt
 */
guint
dvt_task_get_attempt (DvtTask *task)
{
  g_return_val_if_fail (DVT_IS_TASK (task), 0);

  return dvt_task_attempt (task);
}

/**
 * dvt_task_get_index:
 * @task: a task
 *
 * Gets the position of @task in its map: the item a [callback@MapFunc]
 * is asked to compute. It is 0 for a task that is not a map item.
 *
 * Returns: the index
 */
guint
dvt_task_get_index (DvtTask *task)
{
  g_return_val_if_fail (DVT_IS_TASK (task), 0);

  return DVT_TASK_EXTRA (task, index, 0);
}

/**
 * dvt_task_get_cancellable:
 * @task: a task
 *
 * Gets the cancellable of @task, creating it if needed. It is cancelled
 * when the task is cancelled, by [method@Task.cancel], by the cancellable
 * given when the task was submitted, or by a shutdown that cancels
 * pending work.
 *
 * The items of a map share the cancellable of the map.
 *
 * Returns: (transfer none): the cancellable
 */
GCancellable *
dvt_task_get_cancellable (DvtTask *task)
{
  GCancellable *cancellable;
  gboolean cancel;
  gboolean was_cancelled;
  DvtForkGate gate;

  g_return_val_if_fail (DVT_IS_TASK (task), NULL);

  if (task->kind == DVT_TASK_KIND_ITEM)
    return task->extra->parent_class->get_cancellable (task->extra->parent);

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  g_mutex_lock (dvt_stripe_lock (task));
  was_cancelled = ensure_cancellable_locked (task, TRUE);
  cancellable = task->cancellable;
  cancel = dvt_task_has_flag (task, DVT_TASK_FLAG_CANCEL_REQUESTED);
  g_mutex_unlock (dvt_stripe_lock (task));

  if (cancel)
    DVT_CALLOUT (g_cancellable_cancel (cancellable));
  if (was_cancelled)
    on_own_cancelled (cancellable, task);
  dvt_fork_gate_leave (gate);

  return cancellable;
}

/**
 * dvt_task_cancel:
 * @task: a task
 *
 * Cancels @task. A task that has not started never starts. A running task
 * has its cancellable cancelled, and it ends at once with
 * %G_IO_ERROR_CANCELLED: waiters are released and the completion callback
 * runs without waiting for the work. Work that ignores its cancellable
 * keeps running in its thread; whatever it returns later is dropped and
 * freed.
 *
 * The order is the same whenever the runtime ends a task itself (a
 * cancellation, a timeout, a map's deadline, a shutdown that cancels):
 * first the task's cancellable is cancelled, and its handlers run; only
 * then are waiters released and the callback posted. So once a blocking
 * call has returned cancelled or timed out, the work has been told, and a
 * map's items that had not started never will.
 *
 * Cancelling a task that has already ended does nothing.
 */
void
dvt_task_cancel (DvtTask *task)
{
  g_return_if_fail (DVT_IS_TASK (task));

  if (task->kind == DVT_TASK_KIND_ITEM || DVT_TASK_EXTRA (task, parent, NULL) != NULL)
    {
      task->extra->parent_class->cancel (task->extra->parent);
      return;
    }

  dvt_task_end_by_runtime (task,
                           g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                _("The task was cancelled")));
}

/* Ends @task with @error (owned), unless it has ended. The order is
 * fixed, and documented in dvt_task_cancel(): the result is recorded,
 * then the task's cancellable is cancelled (its handlers run: the work,
 * and whatever watches it, such as the items of a map, learn that the
 * task has ended), and only then are waiters released and the callback
 * posted. A caller released by a cancellation can therefore rely on the
 * work having been told. Returns whether this ended the task (FALSE if
 * it had ended, or another result won). */
gboolean
dvt_task_end_by_runtime (DvtTask *task,
                         GError  *error)
{
  DvtResult result = { G_VALUE_INIT, NULL, error };
  GCancellable *cancellable = NULL;
  DvtThreadState *state = dvt_thread_state ();
  DvtTask *outer = state->cancelling_task;
  gboolean won;

  if (dvt_task_get_state (task) == DVT_TASK_COMPLETED)
    {
      g_error_free (error);
      return FALSE;
    }

  g_mutex_lock (dvt_stripe_lock (task));
  dvt_task_set_flag (task, DVT_TASK_FLAG_CANCEL_REQUESTED);
  if (task->cancellable != NULL)
    cancellable = g_object_ref (task->cancellable);
  g_mutex_unlock (dvt_stripe_lock (task));

  /* The task may be finalized inside: see cancelling_task. */
  state->cancelling_task = task;
  won = finish_full (task, &result, TRUE, cancellable);
  state->cancelling_task = outer;

  /* Lost to another result (the work's): still tell the work to stop. */
  if (cancellable != NULL)
    DVT_CALLOUT (g_cancellable_cancel (cancellable);
                 g_object_unref (cancellable));

  return won;
}

/* Whether this thread runs a work function of @core's runtime. */
gboolean
dvt_task_running_in (DvtCore *core)
{
  DvtTask *running = running_task ();

  return running != NULL && running->core == core;
}

/**
 * dvt_task_get_completed:
 * @task: a task
 *
 * Tells whether @task has ended, in success or failure.
 *
 * Returns: %TRUE once the task has a result
 */
gboolean
dvt_task_get_completed (DvtTask *task)
{
  g_return_val_if_fail (DVT_IS_TASK (task), FALSE);

  /* An item of a map in the bulk path: its result went to its slot. */
  if (task->kind == DVT_TASK_KIND_ITEM)
    return dvt_task_is_claimed (task);

  return dvt_task_get_state (task) == DVT_TASK_COMPLETED;
}

/**
 * dvt_task_had_error:
 * @task: a task
 *
 * Tells whether @task has ended with an error.
 *
 * Returns: %TRUE if the task failed
 */
gboolean
dvt_task_had_error (DvtTask *task)
{
  g_return_val_if_fail (DVT_IS_TASK (task), FALSE);

  return dvt_task_get_completed (task) && task->result.error != NULL;
}

/**
 * dvt_task_wait:
 * @task: a task
 * @timeout: the longest time to wait, in seconds; 0 or less (or NaN, or
 *   more than a century, infinity included) waits as long as it takes
 * @error: return location for a #GError
 *
 * Blocks until @task has ended, or @timeout passes. Any thread may wait,
 * except the runtime's own loop thread (%DVT_ERROR_WOULD_DEADLOCK).
 *
 * The waiter spins briefly, then sleeps. A worker of the runtime that
 * waits here lets the runtime start another worker, so nested waits never
 * starve the pool. Waiting on a task whose async work runs on a context
 * that this thread can acquire iterates that context meanwhile.
 *
 * This reports whether the task ended, not how: read the result with
 * `dvt_task_propagate_*()`.
 *
 * Returns: %TRUE if the task has ended; %FALSE with
 *   %G_IO_ERROR_TIMED_OUT if @timeout passed first
 */
gboolean
dvt_task_wait (DvtTask  *task,
               double    timeout,
               GError  **error)
{
  gint64 deadline = -1;

  dvt_return_val_if_fail_error (DVT_IS_TASK (task), FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* A timeout too long for the clock (infinity included) is no limit. */
  if (timeout > 0 && timeout < (double) (G_MAXINT64 / 4) / G_USEC_PER_SEC)
    deadline = g_get_monotonic_time () + (gint64) (timeout * G_USEC_PER_SEC);

  /* An item of a map in the bulk path has no event of its own (one item
   * task serves many indexes); one its function kept is waited for by
   * polling, which nothing on a hot path does. */
  if (task->kind == DVT_TASK_KIND_ITEM)
    {
      if (!dvt_task_is_claimed (task) && !dvt_task_check_wait (task, error))
        return FALSE;
      while (!dvt_task_is_claimed (task))
        {
          if (deadline >= 0 && g_get_monotonic_time () >= deadline)
            {
              g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                   _("Timed out waiting for the task to complete"));
              return FALSE;
            }
          g_usleep (1000);
        }
      return TRUE;
    }

  return dvt_task_wait_internal (task, deadline, error);
}

/* ---- waiting from a main loop ---------------------------------------------- */

/* One dvt_task_wait_async(): the task's end and the wait's cancellable
 * race to complete it; the first wins, once. */
typedef struct
{
  int           claimed;      /* atomic */
  GCancellable *cancellable;  /* the wait's */
  gulong        handler;
  /* The task's end reaches the caller's context through its mailbox, as
   * callbacks do (a spin there may catch it without a wake-up). */
  DvtMail       mail;
  DvtCore      *core;
  DvtMailbox   *mailbox;
  int           expecting;    /* atomic: the mailbox still expects the mail */
  GTask        *gtask;        /* held while the mail is on its way */
} WaitOp;

/* The caller's mailbox stops expecting the wait's end as soon as the wait
 * has ended, not when its GAsyncResult is released: a result held by the
 * caller must not keep the caller's context spinning. Once. */
static void
wait_op_expect_done (WaitOp *op)
{
  if (g_atomic_int_compare_and_exchange (&op->expecting, 1, 0))
    dvt_mailbox_expect_done (op->mailbox);
}

static void
wait_op_free (gpointer data)
{
  WaitOp *op = data;

  g_clear_object (&op->cancellable);
  if (op->mailbox != NULL)
    {
      wait_op_expect_done (op);
      dvt_core_release_mailbox (op->core, op->mailbox);
    }
  dvt_core_unref (op->core);
  g_free (op);
}

/* The cancellable's handler holds the GTask until it is disconnected: by
 * the task's end, by wait_finish(), or by the cancellable's own
 * finalization (a wait cancelled and never finished). Never from inside
 * the handler, where g_cancellable_disconnect() would deadlock. */
static void
wait_op_disconnect (GTask *gtask)
{
  WaitOp *op = g_task_get_task_data (gtask);
  gulong handler = op->handler;

  op->handler = 0;
  if (handler != 0)
    g_cancellable_disconnect (op->cancellable, handler);
}

static gboolean
wait_op_claim (GTask *gtask)
{
  WaitOp *op = g_task_get_task_data (gtask);

  return g_atomic_int_compare_and_exchange (&op->claimed, 0, 1);
}

/* Reports the end of the task the wait is for: its success, or its error. */
static void
wait_op_return (GTask   *gtask,
                DvtTask *task)
{
  GError *error = NULL;

  if (task->kind == DVT_TASK_KIND_ITEM || task->result.error == NULL)
    g_task_return_boolean (gtask, TRUE);
  else
    {
      error = g_error_copy (task->result.error);
      g_task_return_error (gtask, error);
    }
}

/* On the caller's context: the GTask returns from its own thread, in a
 * later iteration than the one that made it, so its callback runs now. */
static void
wait_op_deliver (DvtMail *mail)
{
  WaitOp *op = G_STRUCT_MEMBER_P (mail, -G_STRUCT_OFFSET (WaitOp, mail));
  GTask *gtask = g_steal_pointer (&op->gtask);

  wait_op_expect_done (op);
  wait_op_return (gtask, g_task_get_source_object (gtask));
  g_object_unref (gtask);
}

/* From the task's end, on whichever thread ends it. */
static void
wait_op_task_done (DvtTask  *task,
                   gpointer  data)
{
  GTask *gtask = data;

  if (wait_op_claim (gtask))
    {
      WaitOp *op = g_task_get_task_data (gtask);

      wait_op_disconnect (gtask);
      op->gtask = g_steal_pointer (&gtask);
      op->mail.deliver = wait_op_deliver;
      dvt_mailbox_post (op->mailbox, &op->mail);
    }
  g_clear_object (&gtask);
}

/* From the wait's cancellable: the wait ends, the task goes on. */
static void
wait_op_cancelled (GCancellable *cancellable,
                   GTask        *gtask)
{
  if (wait_op_claim (gtask))
    {
      wait_op_expect_done (g_task_get_task_data (gtask));
      g_task_return_new_error (gtask, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               "%s", _("The wait for the task was cancelled"));
    }
}

/**
 * dvt_task_wait_async:
 * @task: a task
 * @cancellable: (nullable): cancels the wait, not the task
 * @callback: (scope async) (closure user_data): called on the thread-default
 *   main context of the calling thread once @task has ended
 * @user_data: data for @callback
 *
 * Waits for @task to end without blocking: the main-loop twin of
 * [method@Task.wait], for the futures that [method@Runtime.submit] and
 * [method@Runtime.schedule] return. @callback runs on the caller's
 * thread-default context, always after this call has returned, even if
 * the task had ended before it; call [method@Task.wait_finish] there.
 *
 * Cancelling @cancellable ends the wait with %G_IO_ERROR_CANCELLED and
 * leaves the task alone: cancel the task with [method@Task.cancel].
 *
 * Since: 0.2
 */
void
dvt_task_wait_async (DvtTask             *task,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  GTask *gtask;
  WaitOp *op;
  DvtForkGate gate;

  g_return_if_fail (DVT_IS_TASK (task));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  gtask = g_task_new (task, cancellable, callback, user_data);
  g_task_set_source_tag (gtask, dvt_task_wait_async);
  g_task_set_name (gtask, "[dovetail] dvt_task_wait_async");
  /* The wait's cancellable is handled here: a cancellation must complete
   * the wait with that error, not a result that arrives meanwhile. */
  g_task_set_check_cancellable (gtask, FALSE);
  op = g_new0 (WaitOp, 1);
  op->core = dvt_task_core (task);
  dvt_core_ref (op->core);
  {
    GMainContext *context = g_main_context_ref_thread_default ();

    op->mailbox = dvt_core_acquire_mailbox (op->core, context);
    dvt_mailbox_expect (op->mailbox);
    op->expecting = 1;
    g_main_context_unref (context);
  }
  g_task_set_task_data (gtask, op, wait_op_free);

  if (cancellable != NULL)
    {
      op->cancellable = g_object_ref (cancellable);
      /* Runs at once if it is cancelled already. */
      op->handler = g_cancellable_connect (cancellable, G_CALLBACK (wait_op_cancelled),
                                           g_object_ref (gtask), g_object_unref);
    }

  /* A map item of the bulk path has no end of its own to hook. */
  if (task->kind == DVT_TASK_KIND_ITEM)
    {
      if (wait_op_claim (gtask))
        {
          wait_op_expect_done (op);
          if (dvt_task_is_claimed (task))
            g_task_return_boolean (gtask, TRUE);
          else
            g_task_return_new_error (gtask, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT, "%s",
                                     _("An item of a map cannot be waited for on its "
                                       "own: wait for the map"));
        }
    }
  else
    /* Runs at once if the task has ended already: GTask then delivers the
     * callback in a later iteration of the caller's context. */
    dvt_task_add_done_hook (task, wait_op_task_done, g_object_ref (gtask));

  dvt_fork_gate_leave (gate);
  g_object_unref (gtask);
}

/**
 * dvt_task_wait_finish:
 * @task: the task waited for
 * @result: the result given to the callback of [method@Task.wait_async]
 * @error: return location for a #GError
 *
 * Finishes [method@Task.wait_async]: reports how the task ended, as
 * g_subprocess_wait_check_finish() does for a process. Read the task's
 * value with `dvt_task_propagate_*()`.
 *
 * Returns: %TRUE if the task ended in success; %FALSE with its error
 *   (unchanged: %G_IO_ERROR_CANCELLED if it was cancelled, %DVT_ERROR_CLOSED
 *   if its runtime had shut down...), or with %G_IO_ERROR_CANCELLED if the
 *   wait was cancelled first
 *
 * Since: 0.2
 */
gboolean
dvt_task_wait_finish (DvtTask       *task,
                      GAsyncResult  *result,
                      GError       **error)
{
  GTask *gtask;

  dvt_return_val_if_fail_error (DVT_IS_TASK (task), FALSE, error);
  dvt_return_val_if_fail_error (g_task_is_valid (result, task), FALSE, error);
  dvt_return_val_if_fail_error (g_task_get_source_tag (G_TASK (result)) == dvt_task_wait_async,
                                FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  gtask = G_TASK (result);
  wait_op_disconnect (gtask);

  return g_task_propagate_boolean (gtask, error);
}

static void
return_result (DvtTask   *task,
               DvtResult *result)
{
  dvt_task_finish (task, result, FALSE);
}

/**
 * dvt_task_return_value:
 * @task: a task
 * @value: (nullable): the result, copied; %NULL for no value
 *
 * Completes @task with a copy of @value. This is the form language
 * bindings use; from Python, pass any object.
 */
void
dvt_task_return_value (DvtTask      *task,
                       const GValue *value)
{
  DvtResult result = { G_VALUE_INIT, NULL, NULL };

  g_return_if_fail (DVT_IS_TASK (task));

  if (value != NULL && G_IS_VALUE (value))
    {
      g_value_init (&result.value, G_VALUE_TYPE (value));
      g_value_copy (value, &result.value);
    }

  return_result (task, &result);
}

/**
 * dvt_task_return_pointer:
 * @task: a task
 * @result: (nullable) (transfer full): the result
 * @result_destroy: (nullable): frees @result if nobody takes it
 *
 * Completes @task with a pointer. The first call that reads it, whether
 * [method@Task.propagate_pointer], [method@Task.propagate_value] or the
 * result array of a map or gather, takes ownership of it; if nobody does,
 * @result_destroy frees it with the task, on whichever thread drops the
 * task's last reference (often a worker), so it must be safe to call from
 * any thread.
 */
void
dvt_task_return_pointer (DvtTask        *task,
                         gpointer        result,
                         GDestroyNotify  result_destroy)
{
  DvtResult r = { G_VALUE_INIT, result_destroy, NULL };

  g_return_if_fail (DVT_IS_TASK (task));

  g_value_init (&r.value, G_TYPE_POINTER);
  g_value_set_pointer (&r.value, result);
  return_result (task, &r);
}

/**
 * dvt_task_return_boolean:
 * @task: a task
 * @result: the result
 *
 * Completes @task with a boolean.
 */
void
dvt_task_return_boolean (DvtTask  *task,
                         gboolean  result)
{
  DvtResult r = { G_VALUE_INIT, NULL, NULL };

  g_return_if_fail (DVT_IS_TASK (task));

  g_value_init (&r.value, G_TYPE_BOOLEAN);
  g_value_set_boolean (&r.value, result);
  return_result (task, &r);
}

/**
 * dvt_task_return_int:
 * @task: a task
 * @result: the result
 *
 * Completes @task with an integer, held as a #gint64.
 */
void
dvt_task_return_int (DvtTask *task,
                     gint64   result)
{
  DvtResult r = { G_VALUE_INIT, NULL, NULL };

  g_return_if_fail (DVT_IS_TASK (task));

  g_value_init (&r.value, G_TYPE_INT64);
  g_value_set_int64 (&r.value, result);
  return_result (task, &r);
}

/**
 * dvt_task_return_error:
 * @task: a task
 * @error: (transfer full): the error
 *
 * Fails @task with @error, which reaches the caller unchanged: same
 * domain, code and message.
 */
void
dvt_task_return_error (DvtTask *task,
                       GError  *error)
{
  g_return_if_fail (DVT_IS_TASK (task));
  g_return_if_fail (error != NULL);

  dvt_task_fail (task, error, FALSE);
}

/**
 * dvt_task_return_new_error: (skip)
 * @task: a task
 * @domain: the error domain
 * @code: the error code
 * @format: printf()-style format of the message
 * @...: its arguments
 *
 * Fails @task with a new error.
 */
void
dvt_task_return_new_error (DvtTask    *task,
                           GQuark      domain,
                           int         code,
                           const char *format,
                           ...)
{
  GError *error;
  va_list args;

  g_return_if_fail (DVT_IS_TASK (task));
  g_return_if_fail (format != NULL);

  va_start (args, format);
  error = g_error_new_valist (domain, code, format, args);
  va_end (args);

  dvt_task_fail (task, error, FALSE);
}

/* Ends with TRUE if the task succeeded; with FALSE and @error set if it
 * failed or has not ended. */
static gboolean
check_result (DvtTask  *task,
              GError  **error)
{
  /* An item of a map in the bulk path hands its result to its slot. */
  if (task->kind == DVT_TASK_KIND_ITEM && dvt_task_is_claimed (task))
    {
      g_set_error (error, DVT_ERROR, DVT_ERROR_FAILED,
                   /* Translators: %u is the index of the item. */
                   _("The result of item %u of a map went to the map’s "
                     "results; read it there"),
                   task->extra->index);
      return FALSE;
    }

  if (dvt_task_get_state (task) != DVT_TASK_COMPLETED)
    {
      dvt_log_task (G_LOG_LEVEL_CRITICAL, task->core->name, task->id,
                  dvt_task_get_name (task), NULL,
                  "The result of task %" G_GUINT64_FORMAT " was read before "
                  "it completed; wait for it first", task->id);
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_FAILED,
                           _("The task has not completed yet"));
      return FALSE;
    }

  if (task->result.error != NULL)
    {
      g_propagate_error (error, g_error_copy (task->result.error));
      return FALSE;
    }

  return TRUE;
}

/* Moves or copies the result into @value, which must be zeroed. A pointer
 * result moves, once. */
static void
take_value (DvtTask *task,
            GValue  *value)
{
  const GValue *src = &task->result.value;

  switch (G_VALUE_TYPE (src))
    {
    case G_TYPE_INVALID:
      return;

    /* GLib's own scalars: a copy of the bits, no type lookup. */
    case G_TYPE_CHAR: case G_TYPE_UCHAR: case G_TYPE_BOOLEAN:
    case G_TYPE_INT: case G_TYPE_UINT: case G_TYPE_LONG: case G_TYPE_ULONG:
    case G_TYPE_INT64: case G_TYPE_UINT64: case G_TYPE_FLOAT: case G_TYPE_DOUBLE:
      *value = *src;
      return;

    default:
      break;
    }

  g_value_init (value, G_VALUE_TYPE (src));
  if (!G_VALUE_HOLDS_POINTER (src))
    {
      /* Boxed copies and object references may call the application. */
      DVT_CALLOUT (g_value_copy (src, value));
      return;
    }
  if (G_VALUE_HOLDS_POINTER (src))
    {
      g_mutex_lock (dvt_stripe_lock (task));
      if (!dvt_task_has_flag (task, DVT_TASK_FLAG_POINTER_TAKEN))
        {
          dvt_task_set_flag (task, DVT_TASK_FLAG_POINTER_TAKEN);
          g_value_set_pointer (value, g_value_get_pointer (src));
          task->result.destroy = NULL;
        }
      else
        dvt_log_task (G_LOG_LEVEL_CRITICAL, task->core->name, task->id,
                    dvt_task_get_name (task), NULL,
                    "The pointer result of task %" G_GUINT64_FORMAT
                    " was already taken", task->id);
      g_mutex_unlock (dvt_stripe_lock (task));
    }
}

/**
 * dvt_task_propagate_value:
 * @task: a completed task
 * @value: (out caller-allocates) (optional): an unset #GValue to receive
 *   the result; a task that completed with no value, or failed, gives a
 *   %NULL %G_TYPE_POINTER value
 * @error: return location for a #GError
 *
 * Reads the result of a completed task. The result is copied, so several
 * readers each get one; a pointer result moves to the first reader.
 *
 * Returns: (skip): %TRUE if the task succeeded; %FALSE with its error if
 *   it failed
 */
gboolean
dvt_task_propagate_value (DvtTask  *task,
                          GValue   *value,
                          GError  **error)
{
  dvt_return_val_if_fail_error (DVT_IS_TASK (task), FALSE, error);
  dvt_return_val_if_fail_error (value == NULL || !G_IS_VALUE (value), FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_result (task, error))
    {
      /* Bindings convert the out value even on failure: give them one. */
      if (value != NULL)
        g_value_init (value, G_TYPE_POINTER);
      return FALSE;
    }

  if (value != NULL)
    {
      take_value (task, value);
      if (!G_IS_VALUE (value))
        g_value_init (value, G_TYPE_POINTER);
    }

  return TRUE;
}

/**
 * dvt_task_propagate_pointer: (skip)
 * @task: a completed task
 * @error: return location for a #GError
 *
 * Takes the pointer result of a completed task, as
 * g_task_propagate_pointer() does: the caller owns it afterwards.
 *
 * Returns: (transfer full) (nullable): the pointer, or %NULL with @error
 *   set if the task failed
 */
gpointer
dvt_task_propagate_pointer (DvtTask  *task,
                            GError  **error)
{
  g_auto(GValue) value = G_VALUE_INIT;

  dvt_return_val_if_fail_error (DVT_IS_TASK (task), NULL, error);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!check_result (task, error))
    return NULL;

  take_value (task, &value);
  if (!G_VALUE_HOLDS_POINTER (&value))
    return NULL;

  return g_value_get_pointer (&value);
}

/**
 * dvt_task_propagate_boolean:
 * @task: a completed task
 * @error: return location for a #GError
 *
 * Reads the boolean result of a completed task.
 *
 * Returns: the result, or %FALSE with @error set if the task failed
 */
gboolean
dvt_task_propagate_boolean (DvtTask  *task,
                            GError  **error)
{
  dvt_return_val_if_fail_error (DVT_IS_TASK (task), FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_result (task, error))
    return FALSE;

  return G_VALUE_HOLDS_BOOLEAN (&task->result.value) &&
         g_value_get_boolean (&task->result.value);
}

/**
 * dvt_task_propagate_int:
 * @task: a completed task
 * @error: return location for a #GError
 *
 * Reads the integer result of a completed task.
 *
 * Returns: the result, or -1 with @error set if the task failed
 */
gint64
dvt_task_propagate_int (DvtTask  *task,
                        GError  **error)
{
  const GValue *v;

  dvt_return_val_if_fail_error (DVT_IS_TASK (task), -1, error);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  if (!check_result (task, error))
    return -1;

  v = &task->result.value;
  if (G_VALUE_HOLDS_INT64 (v))
    return g_value_get_int64 (v);
  if (G_VALUE_HOLDS_INT (v))
    return g_value_get_int (v);
  if (G_VALUE_HOLDS_UINT (v))
    return g_value_get_uint (v);
  if (G_VALUE_HOLDS_LONG (v))
    return g_value_get_long (v);

  return 0;
}

/* ---- gates ------------------------------------------------------------------- */

/* An attempt of a task with gates (dvt_options_add_gate(), kept in its
 * policy) enters them in order before it is queued for a worker or its
 * main context, and leaves them in reverse order once the attempt is
 * over: its function has returned and the task has ended, or the
 * attempt failed and will be retried.
 *
 * Who holds the entered gates:
 *  - while they are being entered, the entering sequence: first on the
 *    thread that starts the attempt (dvt_gate_try_enter(), no wait), then,
 *    if a gate makes it wait, on the runtime's loop thread through
 *    dvt_gate_enter_async() with a cancellable of its own, which the
 *    task's end cancels (dvt_task_gates_ended()). No worker waits. A
 *    sequence that finds the task ended leaves what it entered;
 *  - once all are entered, the attempt: DVT_TASK_FLAG_GATES_HELD is set
 *    before the attempt is queued, and whoever clears it leaves them
 *    (dvt_task_release_gates()): a retry, or the end of the task once
 *    its function is done (dvt_task_gates_check_over()).
 *
 * A wait holds the runtime from being idle (a waiting shutdown then
 * drains it like queued work) and counts as throttled. */

static void
leave_entered (DvtTask *task)
{
  GPtrArray *gates = task->extra->policy->gates;
  guint n = task->extra->gates_entered;

  task->extra->gates_entered = 0;
  while (n-- > 0)
    DVT_APP_CALL (dvt_gate_leave (g_ptr_array_index (gates, n)));
}

/* Leaves the gates of the attempt, if it holds them. */
static void
dvt_task_release_gates (DvtTask *task)
{
  if (!(g_atomic_int_and (&task->flags, ~(guint) DVT_TASK_FLAG_GATES_HELD) &
        DVT_TASK_FLAG_GATES_HELD))
    return;

  leave_entered (task);
}

/* Called where a task may have ended with its function done: leaves the
 * gates then. */
static void
dvt_task_gates_check_over (DvtTask *task)
{
  if (G_LIKELY (!dvt_task_has_flag (task, DVT_TASK_FLAG_GATES_HELD)))
    return;

  if (dvt_task_get_state (task) == DVT_TASK_COMPLETED &&
      dvt_task_has_flag (task, DVT_TASK_FLAG_FUNC_DONE))
    dvt_task_release_gates (task);
}

/* The task has ended: a gate wait stops, and gates held by an attempt
 * whose function is done are left. */
static void
dvt_task_gates_ended (DvtTask *task)
{
  GCancellable *cancellable = NULL;

  if (dvt_task_has_flag (task, DVT_TASK_FLAG_GATE_WAIT))
    {
      g_mutex_lock (dvt_stripe_lock (task));
      cancellable = g_steal_pointer (&task->extra->gate_cancellable);
      g_mutex_unlock (dvt_stripe_lock (task));
      if (cancellable != NULL)
        DVT_CALLOUT (g_cancellable_cancel (cancellable);
                     g_object_unref (cancellable));
    }

  dvt_task_gates_check_over (task);
}

/* ---- the wait, on the loop thread ----------------------------------------------- */

static void wait_continue (DvtTask *task);

/* The sequence is over: the runtime may be idle, the task go. */
static void
wait_done (DvtTask *task)
{
  DvtCore *core = dvt_task_core (task);

  g_mutex_lock (dvt_stripe_lock (task));
  g_clear_object (&task->extra->gate_cancellable);
  g_mutex_unlock (dvt_stripe_lock (task));
  dvt_task_unset_flag (task, DVT_TASK_FLAG_GATE_WAIT);

  dvt_core_ref (core);
  dvt_task_unref_gated (task);
  dvt_core_release_idle (core);
  dvt_core_unref (core);
}

static void
on_gate_entered (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  DvtTask *task = user_data;
  GError *error = NULL;
  gboolean entered;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  DVT_APP_CALL (entered = dvt_gate_enter_finish (DVT_GATE (source), result, &error));
  if (entered)
    {
      task->extra->gates_entered++;
      wait_continue (task);
    }
  else
    {
      leave_entered (task);
      /* A gate that failed by itself fails the task; one cancelled by the
       * task's end has nothing to add. */
      if (dvt_task_get_state (task) == DVT_TASK_QUEUED)
        dvt_task_fail (task, error, TRUE);
      else
        g_error_free (error);
      wait_done (task);
    }
  dvt_fork_gate_leave (gate);
}

/* Enters the gates left, from the loop thread, until one makes it wait. */
static void
wait_continue (DvtTask *task)
{
  GPtrArray *gates = task->extra->policy->gates;

  while (task->extra->gates_entered < gates->len)
    {
      DvtGate *gate = g_ptr_array_index (gates, task->extra->gates_entered);
      GCancellable *cancellable;
      gboolean entered;

      if (dvt_task_get_state (task) != DVT_TASK_QUEUED)
        {
          leave_entered (task);
          wait_done (task);
          return;
        }

      DVT_APP_CALL (entered = dvt_gate_try_enter (gate));
      if (entered)
        {
          task->extra->gates_entered++;
          continue;
        }

      g_mutex_lock (dvt_stripe_lock (task));
      cancellable = task->extra->gate_cancellable != NULL
        ? g_object_ref (task->extra->gate_cancellable) : NULL;
      g_mutex_unlock (dvt_stripe_lock (task));
      if (cancellable == NULL)
        {
          /* Ended meanwhile: its end took the cancellable. */
          leave_entered (task);
          wait_done (task);
          return;
        }

      /* The callback comes on the runtime's context, which this (the loop)
       * thread runs: make sure it is the thread-default one here. */
      g_main_context_push_thread_default (dvt_task_core (task)->context);
      DVT_APP_CALL (dvt_gate_enter_async (gate, cancellable, on_gate_entered, task));
      g_main_context_pop_thread_default (dvt_task_core (task)->context);
      g_object_unref (cancellable);
      return;
    }

  /* All entered: the attempt holds them from here on. */
  dvt_task_set_flag (task, DVT_TASK_FLAG_GATES_HELD);
  if (dvt_task_get_state (task) == DVT_TASK_QUEUED)
    {
      g_object_ref (task);
      wait_done (task);
      dvt_task_start_admitted (task);
      dvt_task_unref_gated (task);
    }
  else
    {
      dvt_task_release_gates (task);
      wait_done (task);
    }
}

static gboolean
wait_start (gpointer data)
{
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  wait_continue (data);
  dvt_fork_gate_leave (gate);

  return G_SOURCE_REMOVE;
}

/* Enters the gates of the starting attempt of @task: TRUE if all were
 * entered at once, FALSE if the attempt waits for one (it then starts
 * through dvt_task_start_admitted() once admitted, from the loop
 * thread), or the task has ended. */
static gboolean
dvt_task_enter_gates (DvtTask *task)
{
  DvtTaskExtra *extra = task->extra;
  GPtrArray *gates = extra->policy->gates;
  DvtCore *core = dvt_task_core (task);
  gboolean entered = TRUE;
  GCancellable *cancellable;
  GSource *source;

  extra->gates_entered = 0;
  while (extra->gates_entered < gates->len)
    {
      DVT_APP_CALL (entered = dvt_gate_try_enter (g_ptr_array_index (gates,
                                                                     extra->gates_entered)));
      if (!entered)
        break;
      extra->gates_entered++;
    }
  if (entered)
    {
      dvt_task_set_flag (task, DVT_TASK_FLAG_GATES_HELD);
      return TRUE;
    }

  /* A gate makes the attempt wait: on the loop thread, holding no worker. */
  DVT_COUNTER_ADD (&core->n_throttled, 1);
  dvt_task_emit (task, DVT_EVENT_THROTTLED, NULL, 0);

  cancellable = g_cancellable_new ();
  /* Before the state is read: see dvt_task_gates_ended(). */
  dvt_task_set_flag (task, DVT_TASK_FLAG_GATE_WAIT);
  g_mutex_lock (dvt_stripe_lock (task));
  if (dvt_task_get_state (task) == DVT_TASK_COMPLETED)
    {
      g_mutex_unlock (dvt_stripe_lock (task));
      g_object_unref (cancellable);
      dvt_task_unset_flag (task, DVT_TASK_FLAG_GATE_WAIT);
      leave_entered (task);
      return FALSE;
    }
  g_clear_object (&extra->gate_cancellable);
  extra->gate_cancellable = cancellable;
  g_mutex_unlock (dvt_stripe_lock (task));

  dvt_core_hold_idle (core);
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, wait_start, g_object_ref (task), NULL);
  g_source_set_static_name (source, "[dovetail] gate wait");
  g_source_attach (source, core->context);
  g_source_unref (source);

  return FALSE;
}
