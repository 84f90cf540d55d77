/* dvt-events.c: task events as GObject signals, on one context
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include "dvt-events-private.h"
#include "dvt-gobject-private.h"
#include "dvt-log-private.h"
#include "dvt-thread-private.h"

/* An event is recorded where it happens (any thread), if the task layer
 * says someone listens (see dvt_events_listening()). Records queue up in
 * order and are delivered in batches by one mail on the event context,
 * where the signals are emitted: on one thread, never two handlers of a
 * runtime at once, and with nothing dropped. */

struct _DvtEventRecord
{
  DvtEventRecord *next;
  GObject        *task;
  GObject        *runtime;     /* if watched */
  const char     *runtime_name;
  guint64         id;
  const char     *name;
  gconstpointer   function;
  guint64         cause_scope;
  guint           cause_depth;
  DvtEventKind    kind;
  guint           attempt;
  GError         *error;
  double          value;
  DvtProgress    *progress;    /* for progress */
};

static const char * const event_names[DVT_N_EVENTS] = {
  "queued", "started", "retry", "throttled", "progress", "failed", "cancelled",
  "finished",
};

static guint event_signals[DVT_EVENT_N_SIGNAL_SETS][DVT_N_EVENTS];

/* On an events thread, while a scope's handlers run, the thread's state
 * has the scope (cause_scope) and how deep in a chain of its own calls the
 * event is (cause_depth; 0: not caused by it). Tasks accepted meanwhile
 * are caused by it, one level deeper. Its event_queue is the queue whose
 * events the thread delivers. */

/* What the layers above do once a record's signals have been emitted
 * (property notifications of the task), and once a batch has been
 * delivered (those of the runtime, coalesced), on the event thread. */
static void (*record_hook) (GObject *task, DvtEventKind kind, guint attempt);
static void (*batch_hook)  (GObject *runtime, GMainContext *context);

static void deliver_events (DvtMail *mail);

static gboolean
on_event_thread (DvtEventQueue *queue)
{
  DvtThreadState *state = dvt_thread_state_peek ();

  return state != NULL && state->event_queue == queue;
}

/* Sets the hooks run on the event thread after each record and after each
 * batch (with the runtime of its records, if any was watched, and the
 * context the events are delivered on). */
void
dvt_events_set_delivery_hooks (void (*record_delivered) (GObject      *task,
                                                         DvtEventKind  kind,
                                                         guint         attempt),
                               void (*batch_delivered)  (GObject      *runtime,
                                                         GMainContext *context))
{
  if (record_delivered != NULL)
    record_hook = record_delivered;
  if (batch_delivered != NULL)
    batch_hook = batch_delivered;
}

/* ---- progress ------------------------------------------------------------ */

DvtProgress *
dvt_progress_new (guint total)
{
  DvtProgress *progress = g_new0 (DvtProgress, 1);

  progress->ref_count = 1;
  progress->total = total;

  return progress;
}

DvtProgress *
dvt_progress_ref (DvtProgress *progress)
{
  g_atomic_int_inc (&progress->ref_count);
  return progress;
}

void
dvt_progress_unref (DvtProgress *progress)
{
  if (g_atomic_int_dec_and_test (&progress->ref_count))
    g_free (progress);
}

/* Counts one more item done. Returns whether a record must be made (none
 * waits for delivery yet). */
gboolean
dvt_progress_add (DvtProgress *progress)
{
  g_atomic_int_inc (&progress->done);

  return g_atomic_int_get (&progress->pending) == 0 &&
         g_atomic_int_compare_and_exchange (&progress->pending, 0, 1);
}

/* ---- the queue ----------------------------------------------------------- */

void
dvt_events_init (DvtEventQueue *queue,
                 const char    *thread_name,
                 gpointer       owner,
                 void         (*hold)    (gpointer owner),
                 void         (*release) (gpointer owner))
{
  g_mutex_init (&queue->lock);
  queue->mail.deliver = deliver_events;
  queue->thread_name = g_strdup (thread_name);
  queue->filters = g_ptr_array_new ();
  queue->owner = owner;
  queue->hold = hold;
  queue->release = release;
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
  g_clear_object (&record->runtime);
  g_clear_error (&record->error);
  g_clear_pointer (&record->progress, dvt_progress_unref);
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
  g_assert (queue->filters->len == 0);
  g_ptr_array_unref (queue->filters);
  g_free (queue->thread_name);
  g_mutex_clear (&queue->lock);
}

/* Whether events of a task of @runtime accepted now are worth recording:
 * the runtime has a signal handler, a scope exists, or tracing is on. */
gboolean
dvt_events_listening (DvtEventQueue *queue,
                      gpointer       runtime)
{
  return g_atomic_int_get (&queue->trace) ||
         g_atomic_int_get (&queue->n_filters) > 0 ||
         dvt_object_has_handlers (runtime);
}

/* The scope whose handlers run on this thread, and how deep in its chain:
 * a task accepted now was caused by them. */
void
dvt_events_get_cause (guint64 *scope,
                      guint   *depth)
{
  DvtThreadState *state = dvt_thread_state_peek ();

  *scope = state != NULL ? state->cause_scope : 0;
  *depth = state != NULL ? state->cause_depth : 0;
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

  dvt_thread_state ()->event_queue = queue;
  g_main_context_push_thread_default (context);

  while (!g_atomic_int_get (&queue->thread_quit))
    g_main_context_iteration (context, TRUE);
  drain (queue, context);

  g_main_context_pop_thread_default (context);
  dvt_thread_state ()->event_queue = NULL;

  queue->release (queue->owner);

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
  queue->hold (queue->owner);
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
                           wait && !on_event_thread (queue));
}

/* Whether this is the thread where @queue's events are delivered. */
gboolean
dvt_events_is_event_thread (DvtEventQueue *queue)
{
  return on_event_thread (queue) ||
         (queue->mailbox != NULL && g_main_context_is_owner (queue->mailbox->context));
}

/* ---- recording ----------------------------------------------------------- */

/* Records an event of the task @source describes, in order. @value is the
 * elapsed time, the back-off delay or the throttle wait, in seconds,
 * depending on @kind; @progress is for progress events. Once a terminal
 * event is recorded, the task records no other. */
void
dvt_events_record (DvtEventQueue        *queue,
                   const DvtEventSource *source,
                   DvtEventKind          kind,
                   const GError         *error,
                   double                value,
                   DvtProgress          *progress)
{
  DvtEventRecord *record = g_new0 (DvtEventRecord, 1);
  gboolean post;

  record->task = g_object_ref (source->task);
  if (source->watched)
    record->runtime = g_object_ref (source->runtime);
  record->runtime_name = source->runtime_name;
  record->id = source->id;
  record->name = source->name;
  record->function = source->function;
  record->cause_scope = source->cause_scope;
  record->cause_depth = source->cause_depth;
  record->kind = kind;
  record->attempt = source->attempt;
  record->error = error != NULL ? g_error_copy (error) : NULL;
  record->value = value;
  record->progress = progress != NULL ? dvt_progress_ref (progress) : NULL;

  g_mutex_lock (&queue->lock);
  if (g_atomic_int_get (source->flags) & source->end_flag)
    {
      g_mutex_unlock (&queue->lock);
      record_free (record);
      return;
    }
  if (kind >= DVT_EVENT_FAILED)
    g_atomic_int_or (source->flags, (guint) source->end_flag);
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

/* ---- delivery ------------------------------------------------------------ */

static void
trace_record (DvtEventRecord *record)
{
  const char *name = record->name;

  dvt_log_task (G_LOG_LEVEL_DEBUG, record->runtime_name, record->id, name,
                event_names[record->kind],
                "task %" G_GUINT64_FORMAT "%s%s%s %s: attempt %u%s%s, %g s",
                record->id,
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
  g_value_init (&v[1], G_OBJECT_TYPE (record->task));
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
      /* Every item done until now: later ones make a record of their own. */
      g_atomic_int_set (&record->progress->pending, 0);
      ARG (G_TYPE_UINT, g_value_set_uint, (guint) g_atomic_int_get (&record->progress->done));
      ARG (G_TYPE_UINT, g_value_set_uint, record->progress->total);
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

static gboolean
filter_matches (const DvtEventFilter *filter,
                const DvtEventRecord *record)
{
  if (filter->task_id != 0)
    return record->id == filter->task_id;
  if (filter->name != NULL && record->name != filter->name)
    return FALSE;

  return filter->function == NULL || record->function == filter->function;
}

/* A scope that matches a record: held while its handlers run, which keeps
 * its filter too. */
typedef struct
{
  GObject              *scope;
  const DvtEventFilter *filter;
} DvtScopeMatch;

static void
scope_match_clear (gpointer data)
{
  g_object_unref (((DvtScopeMatch *) data)->scope);
}

/* The scopes of @queue that match the task of @record. A task accepted
 * while nobody watched the runtime has events for its own signals and for
 * scopes of its id only. A scope whose last reference is being dropped is
 * left out: its weak reference no longer gives it, where a strong
 * reference taken then would bring it back to life in the middle of its
 * disposal, which GObject does not do safely across threads. */
static GArray *
matching_scopes (DvtEventQueue  *queue,
                 DvtEventRecord *record)
{
  GArray *found = NULL;

  if (g_atomic_int_get (&queue->n_filters) == 0)
    return NULL;

  g_mutex_lock (&queue->lock);
  for (guint i = 0; i < queue->filters->len; i++)
    {
      DvtEventFilter *filter = g_ptr_array_index (queue->filters, i);
      DvtScopeMatch match;

      if (!filter_matches (filter, record) ||
          (record->runtime == NULL && filter->task_id == 0))
        continue;
      match.scope = g_weak_ref_get (&filter->object);
      if (match.scope == NULL)
        continue;
      match.filter = filter;
      if (found == NULL)
        {
          found = g_array_new (FALSE, FALSE, sizeof (DvtScopeMatch));
          g_array_set_clear_func (found, scope_match_clear);
        }
      g_array_append_val (found, match);
    }
  g_mutex_unlock (&queue->lock);

  return found;
}

/* A scope's handlers, unless the event comes from a chain of their own
 * calls as deep as the scope allows. */
static void
emit_on_scope (DvtEventArgs        *args,
               DvtEventRecord      *record,
               const DvtScopeMatch *match,
               GQuark               detail)
{
  DvtThreadState *state = dvt_thread_state ();
  guint64 saved_scope = state->cause_scope;
  guint saved_depth = state->cause_depth;
  const DvtEventFilter *filter = match->filter;

  state->cause_scope = filter->serial;
  state->cause_depth = record->cause_scope == filter->serial ? record->cause_depth : 0;
  if (state->cause_depth < (guint) g_atomic_int_get (&filter->max_depth))
    emit_on (args, match->scope, event_signals[DVT_EVENT_SIGNALS_SCOPE][record->kind], detail);
  state->cause_scope = saved_scope;
  state->cause_depth = saved_depth;
}

static void
emit_record (DvtEventQueue  *queue,
             DvtEventRecord *record)
{
  GQuark detail = record->name != NULL ? g_quark_try_string (record->name) : 0;
  g_autoptr(GArray) scopes = matching_scopes (queue, record);
  DvtEventArgs args;

  args_init (&args, record);

  if (record->runtime != NULL)
    emit_on (&args, record->runtime,
             event_signals[DVT_EVENT_SIGNALS_RUNTIME][record->kind], detail);
  g_signal_emitv (&args.values[1], event_signals[DVT_EVENT_SIGNALS_TASK][record->kind],
                  0, NULL);
  for (guint i = 0; scopes != NULL && i < scopes->len; i++)
    emit_on_scope (&args, record, &g_array_index (scopes, DvtScopeMatch, i), detail);

  args_clear (&args);
}

static void
deliver_events (DvtMail *mail)
{
  DvtEventQueue *queue = G_STRUCT_MEMBER_P (mail, -G_STRUCT_OFFSET (DvtEventQueue, mail));
  DvtEventRecord *records;
  GObject *runtime = NULL;
  /* Signal emissions call the application from inside GLib. */
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_CALLOUT);

  /* Handlers may drop the last reference to the queue's owner. */
  queue->hold (queue->owner);

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
      if (record_hook != NULL)
        record_hook (records->task, records->kind, records->attempt);
      if (records->runtime != NULL && runtime == NULL)
        runtime = g_object_ref (records->runtime);
      record_free (records);
      records = next;
    }

  if (runtime != NULL)
    {
      if (batch_hook != NULL)
        batch_hook (runtime, queue->mailbox->context);
      g_object_unref (runtime);
    }

  queue->release (queue->owner);
  dvt_fork_gate_leave (gate);
}

/* ---- scopes -------------------------------------------------------------- */

void
dvt_events_add_filter (DvtEventQueue  *queue,
                       DvtEventFilter *filter)
{
  g_mutex_lock (&queue->lock);
  g_ptr_array_add (queue->filters, filter);
  g_atomic_int_set (&queue->n_filters, (int) queue->filters->len);
  g_mutex_unlock (&queue->lock);
}

/* From the scope's dispose. Deliveries take the scope from the list
 * through its weak reference only. */
void
dvt_events_remove_filter (DvtEventQueue  *queue,
                          DvtEventFilter *filter)
{
  g_mutex_lock (&queue->lock);
  g_ptr_array_remove_fast (queue->filters, filter);
  g_atomic_int_set (&queue->n_filters, (int) queue->filters->len);
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
 * @wait: how long the rate limit holds the start back, in seconds; 0
 *   for a gate (see [method@Options.add_gate]), whose wait is not known in
 *   advance
 *
 * The rate limit, or a gate, held an attempt back.
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
 * @wait: how long the rate limit holds the start back, in seconds; 0
 *   for a gate
 *
 * The rate limit, or a gate, held an attempt back (see
 * [signal@Runtime::throttled]).
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

/* Adds the event signals to @type: the set @set, whose runtime's and
 * scope's signals carry the task (of @task_type) and take its name as
 * detail. */
void
dvt_events_add_signals (GType           type,
                        DvtEventSignals set,
                        GType           task_type)
{
  gboolean with_task = set != DVT_EVENT_SIGNALS_TASK;
  guint *signals = event_signals[set];
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
        params[n++] = task_type;
      for (guint j = 0; j < shapes[i].n_params; j++)
        params[n++] = shapes[i].params[j];

      signals[i] = g_signal_newv (event_names[i], type, flags, NULL, NULL, NULL,
                                  NULL, G_TYPE_NONE, n, params);
    }
}

/* The id of the signal of @kind in @set, once dvt_events_add_signals()
 * has made that set. */
guint
dvt_events_signal_id (DvtEventSignals set,
                      DvtEventKind    kind)
{
  return event_signals[set][kind];
}
