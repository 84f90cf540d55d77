/* dvt-events.c: task events as GObject signals, on one context
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include "dvt-event-scope-private.h"
#include "dvt-events-private.h"
#include "dvt-map-private.h"
#include "dvt-runtime-private.h"
#include "dvt-task-private.h"
#include "dvt-thread-private.h"

/* An event is recorded where it happens (any thread) only if someone
 * listens: the runtime had a signal handler when the task was accepted
 * (or tracing is on), or the task is a future with handlers of its own.
 * Records queue up in order and are delivered in batches by one mail on
 * the event context, where the signals are emitted: on one thread, never
 * two handlers of a runtime at once, and with nothing dropped. */

struct _DvtEventRecord
{
  DvtEventRecord *next;
  DvtTask        *task;
  DvtEventKind    kind;
  guint           attempt;
  GError         *error;
  double          value;
  DvtMap         *map;       /* for progress */
  gboolean        watched;   /* for the runtime: it saw the task queued */
};

static const char * const event_names[DVT_N_EVENTS] = {
  "queued", "started", "retry", "throttled", "progress", "failed", "cancelled",
  "finished",
};

static guint runtime_signals[DVT_N_EVENTS];
static guint task_signals[DVT_N_EVENTS];
static guint scope_signals[DVT_N_EVENTS];

/* On an events thread, while a scope's handlers run: the scope and how
 * deep in a chain of its own calls the event is (0: not caused by it).
 * Tasks accepted meanwhile are caused by it, one level deeper. */
typedef struct
{
  guint64 scope;
  guint   depth;
} DvtCause;

static _Thread_local DvtCause current_cause;
static _Thread_local DvtEventQueue *current_event_queue;

static DvtEventQueue *
queue_of (DvtTask *task)
{
  return &dvt_task_core (task)->events;
}

static DvtCore *
core_of_queue (DvtEventQueue *queue)
{
  return G_STRUCT_MEMBER_P (queue, -G_STRUCT_OFFSET (DvtCore, events));
}

static void deliver_events (DvtMail *mail);

void
dvt_events_init (DvtEventQueue *queue,
                 const char    *thread_name)
{
  g_mutex_init (&queue->lock);
  queue->mail.deliver = deliver_events;
  queue->thread_name = g_strdup (thread_name);
  queue->scopes = g_ptr_array_new ();
}

/* Delivers the events through @mailbox (an event-context's) instead of a
 * thread of their own. Before any event. */
void
dvt_events_set_context (DvtEventQueue *queue,
                        DvtMailbox    *mailbox)
{
  queue->mailbox = mailbox;
}

static void
record_free (DvtEventRecord *record)
{
  g_object_unref (record->task);
  g_clear_error (&record->error);
  if (record->map != NULL)
    dvt_map_unref (record->map);
  g_free (record);
}

/* Once the events' thread, if any, has ended. */
void
dvt_events_clear (DvtEventQueue *queue)
{
  while (queue->head != NULL)
    {
      DvtEventRecord *next = queue->head->next;

      record_free (queue->head);
      queue->head = next;
    }
  if (queue->thread_context != NULL)
    {
      dvt_mailbox_destroy (queue->mailbox);
      g_main_context_unref (queue->thread_context);
    }
  g_assert (queue->scopes->len == 0);
  g_ptr_array_unref (queue->scopes);
  g_free (queue->thread_name);
  g_mutex_clear (&queue->lock);
}

/* Called once the task is accepted: whether its events are recorded. */
gboolean
dvt_events_watch (DvtTask *task)
{
  DvtEventQueue *queue = queue_of (task);

  if (!g_atomic_int_get (&queue->trace) &&
      g_atomic_int_get (&queue->n_scopes) == 0 &&
      g_signal_handler_find (task->runtime, G_SIGNAL_MATCH_UNBLOCKED,
                             0, 0, NULL, NULL, NULL) == 0)
    return FALSE;

  /* Accepted by a scope's handler: part of that scope's chain. */
  if (G_UNLIKELY (current_cause.scope != 0))
    {
      DvtTaskExtra *extra = dvt_task_extra (task);

      extra->cause_scope = current_cause.scope;
      extra->cause_depth = current_cause.depth + 1;
    }

  dvt_task_set_flag (task, DVT_TASK_FLAG_WATCHED);
  return TRUE;
}

gboolean
dvt_events_wanted (DvtTask *task)
{
  if (dvt_task_has_flag (task, DVT_TASK_FLAG_WATCHED | DVT_TASK_FLAG_SCOPED))
    return TRUE;

  /* A future: someone may have connected to the task itself. */
  return dvt_task_has_flag (task, DVT_TASK_FLAG_FUTURE) &&
         g_signal_handler_find (task, G_SIGNAL_MATCH_UNBLOCKED,
                                0, 0, NULL, NULL, NULL) != 0;
}

/* ---- the events' own thread ---------------------------------------------- */

/* Delivers what is queued by dispatching the events' mail, so that it
 * leaves the mailbox, then closes the queue: what is recorded later is
 * freed with it, undelivered, as the runtime has stopped. */
static void
drain (DvtEventQueue *queue,
       GMainContext  *context)
{
  for (;;)
    {
      gboolean posted;

      g_mutex_lock (&queue->lock);
      posted = queue->posted;
      if (!posted)
        queue->posted = TRUE;  /* closed: nothing is posted any more */
      g_mutex_unlock (&queue->lock);

      if (!posted)
        break;
      g_main_context_iteration (context, FALSE);
    }
}

static gpointer
events_thread_func (gpointer data)
{
  DvtEventQueue *queue = data;
  GMainContext *context = queue->thread_context;

  current_event_queue = queue;
  g_main_context_push_thread_default (context);

  while (!g_atomic_int_get (&queue->thread_quit))
    g_main_context_iteration (context, TRUE);
  drain (queue, context);

  g_main_context_pop_thread_default (context);
  current_event_queue = NULL;

  dvt_core_unref (core_of_queue (queue));

  return NULL;
}

/* Under the queue's lock, with no mailbox yet: starts the thread that
 * delivers the events, unless the runtime has stopped. */
static gboolean
start_thread_locked (DvtEventQueue *queue)
{
  if (queue->stopped)
    return FALSE;

  queue->thread_context = g_main_context_new ();
  queue->mailbox = dvt_mailbox_new (queue->thread_context, "[dovetail] events");
  dvt_core_ref (core_of_queue (queue));
  queue->thread = g_thread_new (queue->thread_name, events_thread_func, queue);

  return TRUE;
}

/* Where the runtime stops, after its loop thread and workers: the events'
 * thread delivers what is left, then ends. With @wait, returns once it
 * has, unless called on that thread (from a handler). */
void
dvt_events_stop (DvtEventQueue *queue,
                 gboolean       wait)
{
  GThread *thread;

  g_mutex_lock (&queue->lock);
  queue->stopped = TRUE;
  thread = g_steal_pointer (&queue->thread);
  if (queue->mailbox == NULL)
    queue->posted = TRUE;  /* never started: closed */
  g_mutex_unlock (&queue->lock);

  if (thread == NULL)
    return;

  dvt_context_thread_stop (thread, &queue->thread_quit, queue->thread_context,
                           wait && current_event_queue != queue);
}

/* Whether this is the thread where @queue's events are delivered. */
gboolean
dvt_events_is_event_thread (DvtEventQueue *queue)
{
  return current_event_queue == queue ||
         (queue->mailbox != NULL && g_main_context_is_owner (queue->mailbox->context));
}

/* ---- recording ----------------------------------------------------------- */

/* Appends @record (owned) to the queue of @task's runtime, in order,
 * unless the task has already recorded its end. */
static void
enqueue (DvtTask        *task,
         DvtEventRecord *record)
{
  DvtEventQueue *queue = queue_of (task);
  gboolean post;

  g_mutex_lock (&queue->lock);
  if (dvt_task_has_flag (task, DVT_TASK_FLAG_END_EVENT))
    {
      g_mutex_unlock (&queue->lock);
      record_free (record);
      return;
    }
  if (record->kind >= DVT_EVENT_FAILED)
    dvt_task_set_flag (task, DVT_TASK_FLAG_END_EVENT);
  if (queue->tail != NULL)
    queue->tail->next = record;
  else
    queue->head = record;
  queue->tail = record;
  post = !queue->posted && (queue->mailbox != NULL || start_thread_locked (queue));
  if (post)
    queue->posted = TRUE;
  g_mutex_unlock (&queue->lock);

  if (post)
    dvt_mailbox_post (queue->mailbox, &queue->mail);
}

/* Records an event of @task. @value is the elapsed time, the back-off
 * delay or the throttle wait, in seconds, depending on @kind. Once a
 * terminal event is recorded, the task records no other. */
void
dvt_events_emit (DvtTask       *task,
                 DvtEventKind   kind,
                 const GError  *error,
                 double         value)
{
  DvtEventRecord *record;

  if (G_LIKELY (!dvt_events_wanted (task)))
    return;

  record = g_new0 (DvtEventRecord, 1);
  record->task = g_object_ref (task);
  record->kind = kind;
  record->attempt = task->attempt;
  record->error = error != NULL ? g_error_copy (error) : NULL;
  record->value = value;
  record->watched = dvt_task_has_flag (task, DVT_TASK_FLAG_WATCHED);
  enqueue (task, record);
}

/* Records progress of the map @map whose batch is @batch; the count is
 * read when the record is delivered, so one record stands for every item
 * done meanwhile (dvt_map_take_progress()). */
void
dvt_events_emit_progress (DvtTask  *batch,
                          gpointer  map)
{
  DvtEventRecord *record = g_new0 (DvtEventRecord, 1);

  record->task = g_object_ref (batch);
  record->kind = DVT_EVENT_PROGRESS;
  record->attempt = batch->attempt;
  record->map = dvt_map_ref (map);
  record->watched = dvt_task_has_flag (batch, DVT_TASK_FLAG_WATCHED);
  enqueue (batch, record);
}

static double
seconds_since (gint64 since)
{
  return since > 0 ? (double) (g_get_monotonic_time () - since) / G_USEC_PER_SEC : 0;
}

/* The one terminal event of a task that has just ended. */
void
dvt_events_emit_end (DvtTask *task)
{
  const GError *error = task->result.error;
  DvtEventKind kind;

  if (error == NULL)
    kind = DVT_EVENT_FINISHED;
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    kind = DVT_EVENT_CANCELLED;
  else
    kind = DVT_EVENT_FAILED;

  dvt_events_emit (task, kind, error, seconds_since (task->accepted_at));
}

/* ---- delivery ------------------------------------------------------------ */

static void
trace_record (DvtEventRecord *record)
{
  DvtTask *task = record->task;
  const char *name = dvt_task_get_name (task);

  g_debug ("task %" G_GUINT64_FORMAT "%s%s%s %s: attempt %u%s%s, %g s",
           task->id,
           name != NULL ? " “" : "", name != NULL ? name : "", name != NULL ? "”" : "",
           event_names[record->kind], record->attempt,
           record->error != NULL ? ", " : "",
           record->error != NULL ? record->error->message : "",
           record->value);
}

/* The arguments of an event's signals: [0] the runtime or scope, [1] the
 * task, then the event's own. A task's own signals take them from [1]. */
typedef struct
{
  GValue values[5];
  guint  n_values;
} DvtEventArgs;

static void
args_init (DvtEventArgs   *args,
           DvtEventRecord *record)
{
  GValue *v = args->values;
  guint n = 2;

  memset (args, 0, sizeof *args);
  g_value_init (&v[1], DVT_TYPE_TASK);
  g_value_set_object (&v[1], record->task);

#define ARG(type, setter, x) \
  G_STMT_START { g_value_init (&v[n], type); setter (&v[n], x); n++; } G_STMT_END

  switch (record->kind)
    {
    case DVT_EVENT_QUEUED:
      break;
    case DVT_EVENT_STARTED:
      ARG (G_TYPE_UINT, g_value_set_uint, record->attempt);
      break;
    case DVT_EVENT_RETRY:
      ARG (G_TYPE_ERROR, g_value_set_static_boxed, record->error);
      ARG (G_TYPE_UINT, g_value_set_uint, record->attempt);
      ARG (G_TYPE_DOUBLE, g_value_set_double, record->value);
      break;
    case DVT_EVENT_THROTTLED:
    case DVT_EVENT_FINISHED:
      ARG (G_TYPE_DOUBLE, g_value_set_double, record->value);
      break;
    case DVT_EVENT_PROGRESS:
      {
        guint done, total;

        dvt_map_take_progress (record->map, &done, &total);
        ARG (G_TYPE_UINT, g_value_set_uint, done);
        ARG (G_TYPE_UINT, g_value_set_uint, total);
      }
      break;
    case DVT_EVENT_FAILED:
    case DVT_EVENT_CANCELLED:
      ARG (G_TYPE_ERROR, g_value_set_static_boxed, record->error);
      ARG (G_TYPE_DOUBLE, g_value_set_double, record->value);
      break;
    default:
      g_assert_not_reached ();
    }
#undef ARG

  args->n_values = n;
}

static void
args_clear (DvtEventArgs *args)
{
  for (guint i = 0; i < args->n_values; i++)
    if (G_IS_VALUE (&args->values[i]))
      g_value_unset (&args->values[i]);
}

/* Emits the signal @signal_id of @instance (a runtime or a scope). */
static void
emit_on (DvtEventArgs *args,
         gpointer      instance,
         guint         signal_id,
         GQuark        detail)
{
  g_value_init (&args->values[0], G_OBJECT_TYPE (instance));
  g_value_set_object (&args->values[0], instance);
  g_signal_emitv (args->values, signal_id, detail, NULL);
  g_value_unset (&args->values[0]);
}

/* The scopes of @queue that match the task of @record, each held. A task
 * accepted while nobody watched the runtime has events for its own
 * signals and for scopes of its id only. */
static GPtrArray *
matching_scopes (DvtEventQueue  *queue,
                 DvtEventRecord *record)
{
  GPtrArray *found = NULL;

  if (g_atomic_int_get (&queue->n_scopes) == 0)
    return NULL;

  g_mutex_lock (&queue->lock);
  for (guint i = 0; i < queue->scopes->len; i++)
    {
      gpointer scope = g_ptr_array_index (queue->scopes, i);

      if (!dvt_event_scope_matches (scope, record->task) ||
          (!record->watched && dvt_event_scope_get_task_id (scope) == 0))
        continue;
      scope = dvt_event_scope_hold (scope);
      if (scope == NULL)
        continue;  /* being dropped */
      if (found == NULL)
        found = g_ptr_array_new_with_free_func (g_object_unref);
      g_ptr_array_add (found, scope);
    }
  g_mutex_unlock (&queue->lock);

  return found;
}

/* A scope's handlers, unless the event comes from a chain of their own
 * calls as deep as the scope allows. */
static void
emit_on_scope (DvtEventArgs   *args,
               DvtEventRecord *record,
               gpointer        scope,
               GQuark          detail)
{
  guint64 serial = dvt_event_scope_get_serial (scope);
  DvtTask *task = record->task;
  DvtCause saved = current_cause;

  current_cause.scope = serial;
  current_cause.depth = DVT_TASK_EXTRA (task, cause_scope, 0) == serial
                        ? task->extra->cause_depth : 0;
  if (current_cause.depth < dvt_event_scope_get_max_depth (scope))
    emit_on (args, scope, scope_signals[record->kind], detail);
  current_cause = saved;
}

static void
emit_record (DvtEventQueue  *queue,
             DvtEventRecord *record)
{
  DvtTask *task = record->task;
  const char *name = dvt_task_get_name (task);
  GQuark detail = name != NULL ? g_quark_try_string (name) : 0;
  g_autoptr(GPtrArray) scopes = matching_scopes (queue, record);
  DvtEventArgs args;

  args_init (&args, record);

  if (record->watched)
    emit_on (&args, task->runtime, runtime_signals[record->kind], detail);
  g_signal_emitv (&args.values[1], task_signals[record->kind], 0, NULL);
  for (guint i = 0; scopes != NULL && i < scopes->len; i++)
    emit_on_scope (&args, record, g_ptr_array_index (scopes, i), detail);

  args_clear (&args);
}

static void
deliver_events (DvtMail *mail)
{
  DvtEventQueue *queue = G_STRUCT_MEMBER_P (mail, -G_STRUCT_OFFSET (DvtEventQueue, mail));
  DvtCore *core = core_of_queue (queue);
  DvtEventRecord *records;
  /* Signal emissions call the application from inside GLib. */
  DvtGate gate = dvt_fork_gate_enter (DVT_GATE_CALLOUT);

  /* Handlers may drop the last reference to the runtime. */
  dvt_core_ref (core);

  g_mutex_lock (&queue->lock);
  records = g_steal_pointer (&queue->head);
  queue->tail = NULL;
  queue->posted = FALSE;
  g_mutex_unlock (&queue->lock);

  while (records != NULL)
    {
      DvtEventRecord *next = records->next;

      if (g_atomic_int_get (&queue->trace))
        trace_record (records);
      emit_record (queue, records);
      record_free (records);
      records = next;
    }

  dvt_core_unref (core);
  dvt_fork_gate_leave (gate);
}

/* ---- scopes -------------------------------------------------------------- */

void
dvt_events_add_scope (DvtEventQueue *queue,
                      gpointer       scope)
{
  g_mutex_lock (&queue->lock);
  g_ptr_array_add (queue->scopes, scope);
  g_atomic_int_set (&queue->n_scopes, (int) queue->scopes->len);
  g_mutex_unlock (&queue->lock);
}

/* From the scope's dispose. Deliveries take it from the list through its
 * weak reference only (dvt_event_scope_hold()). */
void
dvt_events_remove_scope (DvtEventQueue *queue,
                         gpointer       scope)
{
  g_mutex_lock (&queue->lock);
  g_ptr_array_remove_fast (queue->scopes, scope);
  g_atomic_int_set (&queue->n_scopes, (int) queue->scopes->len);
  g_mutex_unlock (&queue->lock);
}

/**
 * DvtRuntime::queued:
 * @self: the runtime
 * @task: the task
 *
 * A task was accepted. The detail is the task's name
 * ([method@Task.get_name]): connect to `queued::fetch-url` for the tasks of
 * that name only.
 *
 * Every event of a runtime is emitted on its
 * [property@Runtime:event-context] (by default its events thread), one
 * handler at a time, in the order the events happened. For one task the
 * order is always queued, started, then (retry, started) for each retry,
 * and exactly one of finished, failed or cancelled. Events are recorded
 * only for tasks accepted while the runtime has a signal handler, a
 * [class@EventScope] or [property@Runtime:trace] on; a map is one task.
 *
 * A handler here sees every such task, those that its own calls caused
 * included; to follow the tasks of one function, or to bound chains of
 * handlers that start work causing their own event again, connect to a
 * [class@EventScope] instead.
 */

/**
 * DvtRuntime::started:
 * @self: the runtime
 * @task: the task
 * @attempt: the attempt that starts, from 1
 *
 * An attempt of a task started, once per attempt.
 */

/**
 * DvtRuntime::retry:
 * @self: the runtime
 * @task: the task
 * @error: the error of the attempt that failed
 * @attempt: the attempt that failed
 * @delay: the back-off before the next attempt, in seconds
 *
 * A failed attempt will be tried again after @delay.
 */

/**
 * DvtRuntime::throttled:
 * @self: the runtime
 * @task: the task
 * @wait: how long the rate limit holds the start back, in seconds
 *
 * The rate limit held an attempt back.
 */

/**
 * DvtRuntime::progress:
 * @self: the runtime
 * @task: the task of a map
 * @done: how many items of the map have ended
 * @total: how many items it has
 *
 * Items of a map ended. One emission stands for every item that ended
 * since the last one, so a handler drawing a progress bar is not called
 * once per item; the last one before the map's end has @done equal to
 * @total unless the map stopped early.
 */

/**
 * DvtRuntime::failed:
 * @self: the runtime
 * @task: the task
 * @error: the error the task ended with
 * @elapsed: seconds from acceptance to the end
 *
 * A task ended in failure, timeouts included (%G_IO_ERROR_TIMED_OUT).
 */

/**
 * DvtRuntime::cancelled:
 * @self: the runtime
 * @task: the task
 * @error: the cancellation error
 * @elapsed: seconds from acceptance to the end
 *
 * A task ended cancelled, by its caller, [method@Task.cancel] or a
 * shutdown.
 */

/**
 * DvtRuntime::finished:
 * @self: the runtime
 * @task: the task
 * @elapsed: seconds from acceptance to the end
 *
 * A task ended in success.
 */

/**
 * DvtTask::queued:
 * @task: the task
 *
 * The task was accepted (see [signal@Runtime::queued]). A future
 * ([method@Runtime.submit], [method@Runtime.schedule]) emits its own
 * signals once connected, on the runtime's
 * [property@Runtime:event-context].
 */

/**
 * DvtTask::started:
 * @task: the task
 * @attempt: the attempt that starts, from 1
 *
 * An attempt started (see [signal@Runtime::started]).
 */

/**
 * DvtTask::retry:
 * @task: the task
 * @error: the error of the attempt that failed
 * @attempt: the attempt that failed
 * @delay: the back-off before the next attempt, in seconds
 *
 * A failed attempt will be tried again (see [signal@Runtime::retry]).
 */

/**
 * DvtTask::throttled:
 * @task: the task
 * @wait: how long the rate limit holds the start back, in seconds
 *
 * The rate limit held an attempt back (see [signal@Runtime::throttled]).
 */

/**
 * DvtTask::progress:
 * @task: the task of a map
 * @done: how many items of the map have ended
 * @total: how many items it has
 *
 * Items of the map ended (see [signal@Runtime::progress]).
 */

/**
 * DvtTask::failed:
 * @task: the task
 * @error: the error the task ended with
 * @elapsed: seconds from acceptance to the end
 *
 * The task ended in failure (see [signal@Runtime::failed]).
 */

/**
 * DvtTask::cancelled:
 * @task: the task
 * @error: the cancellation error
 * @elapsed: seconds from acceptance to the end
 *
 * The task ended cancelled (see [signal@Runtime::cancelled]).
 */

/**
 * DvtTask::finished:
 * @task: the task
 * @elapsed: seconds from acceptance to the end
 *
 * The task ended in success (see [signal@Runtime::finished]).
 */

/* Adds the event signals to @type: DvtRuntime or DvtEventScope, whose
 * signals carry the task and take its name as detail, or DvtTask. */
void
dvt_events_add_signals (GType type)
{
  gboolean with_task = type != DVT_TYPE_TASK;
  guint *signals = type == DVT_TYPE_TASK ? task_signals
                   : type == DVT_TYPE_RUNTIME ? runtime_signals : scope_signals;
  GSignalFlags flags = G_SIGNAL_RUN_LAST | (with_task ? G_SIGNAL_DETAILED : 0);
  const struct
  {
    guint n_params;
    GType params[3];
  } shapes[DVT_N_EVENTS] = {
    [DVT_EVENT_QUEUED]    = { 0, { 0 } },
    [DVT_EVENT_STARTED]   = { 1, { G_TYPE_UINT } },
    [DVT_EVENT_RETRY]     = { 3, { G_TYPE_ERROR, G_TYPE_UINT, G_TYPE_DOUBLE } },
    [DVT_EVENT_THROTTLED] = { 1, { G_TYPE_DOUBLE } },
    [DVT_EVENT_PROGRESS]  = { 2, { G_TYPE_UINT, G_TYPE_UINT } },
    [DVT_EVENT_FAILED]    = { 2, { G_TYPE_ERROR, G_TYPE_DOUBLE } },
    [DVT_EVENT_CANCELLED] = { 2, { G_TYPE_ERROR, G_TYPE_DOUBLE } },
    [DVT_EVENT_FINISHED]  = { 1, { G_TYPE_DOUBLE } },
  };

  for (guint i = 0; i < DVT_N_EVENTS; i++)
    {
      GType params[4];
      guint n = 0;

      if (with_task)
        params[n++] = DVT_TYPE_TASK;
      for (guint j = 0; j < shapes[i].n_params; j++)
        params[n++] = shapes[i].params[j];

      signals[i] = g_signal_newv (event_names[i], type, flags, NULL, NULL, NULL,
                                  NULL, G_TYPE_NONE, n, params);
    }
}
