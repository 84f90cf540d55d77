/* dvt-events.c: task events as GObject signals, on one context
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-events-private.h"
#include "dvt-map-private.h"
#include "dvt-runtime-private.h"
#include "dvt-task-private.h"

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
};

static const char * const event_names[DVT_N_EVENTS] = {
  "queued", "started", "retry", "throttled", "progress", "failed", "cancelled",
  "finished",
};

static guint runtime_signals[DVT_N_EVENTS];
static guint task_signals[DVT_N_EVENTS];

static DvtEventQueue *
queue_of (DvtTask *task)
{
  return &dvt_task_core (task)->events;
}

static void deliver_events (DvtMail *mail);

void
dvt_events_init (DvtEventQueue *queue,
                 DvtMailbox    *mailbox)
{
  g_mutex_init (&queue->lock);
  queue->mailbox = mailbox;
  queue->mail.deliver = deliver_events;
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

void
dvt_events_clear (DvtEventQueue *queue)
{
  while (queue->head != NULL)
    {
      DvtEventRecord *next = queue->head->next;

      record_free (queue->head);
      queue->head = next;
    }
  g_mutex_clear (&queue->lock);
}

/* Called once the task is accepted: whether its events are recorded. */
gboolean
dvt_events_watch (DvtTask *task)
{
  DvtEventQueue *queue = queue_of (task);

  if (!g_atomic_int_get (&queue->trace) &&
      g_signal_handler_find (task->runtime, G_SIGNAL_MATCH_UNBLOCKED,
                             0, 0, NULL, NULL, NULL) == 0)
    return FALSE;

  dvt_task_set_flag (task, DVT_TASK_FLAG_WATCHED);
  return TRUE;
}

gboolean
dvt_events_wanted (DvtTask *task)
{
  if (dvt_task_has_flag (task, DVT_TASK_FLAG_WATCHED))
    return TRUE;

  /* A future: someone may have connected to the task itself. */
  return dvt_task_has_flag (task, DVT_TASK_FLAG_FUTURE) &&
         g_signal_handler_find (task, G_SIGNAL_MATCH_UNBLOCKED,
                                0, 0, NULL, NULL, NULL) != 0;
}

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
  post = !queue->posted;
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

static void
emit_record (DvtEventRecord *record)
{
  DvtTask *task = record->task;
  DvtRuntime *runtime = task->runtime;
  const char *name = dvt_task_get_name (task);
  GQuark detail = name != NULL ? g_quark_try_string (name) : 0;
  guint rs = runtime_signals[record->kind];
  guint ts = task_signals[record->kind];

  switch (record->kind)
    {
    case DVT_EVENT_QUEUED:
      g_signal_emit (runtime, rs, detail, task);
      g_signal_emit (task, ts, 0);
      break;
    case DVT_EVENT_STARTED:
      g_signal_emit (runtime, rs, detail, task, record->attempt);
      g_signal_emit (task, ts, 0, record->attempt);
      break;
    case DVT_EVENT_RETRY:
      g_signal_emit (runtime, rs, detail, task, record->error, record->attempt, record->value);
      g_signal_emit (task, ts, 0, record->error, record->attempt, record->value);
      break;
    case DVT_EVENT_THROTTLED:
    case DVT_EVENT_FINISHED:
      g_signal_emit (runtime, rs, detail, task, record->value);
      g_signal_emit (task, ts, 0, record->value);
      break;
    case DVT_EVENT_PROGRESS:
      {
        guint done, total;

        dvt_map_take_progress (record->map, &done, &total);
        g_signal_emit (runtime, rs, detail, task, done, total);
        g_signal_emit (task, ts, 0, done, total);
      }
      break;
    case DVT_EVENT_FAILED:
    case DVT_EVENT_CANCELLED:
      g_signal_emit (runtime, rs, detail, task, record->error, record->value);
      g_signal_emit (task, ts, 0, record->error, record->value);
      break;
    default:
      g_assert_not_reached ();
    }
}

static void
deliver_events (DvtMail *mail)
{
  DvtEventQueue *queue = G_STRUCT_MEMBER_P (mail, -G_STRUCT_OFFSET (DvtEventQueue, mail));
  DvtCore *core = G_STRUCT_MEMBER_P (queue, -G_STRUCT_OFFSET (DvtCore, events));
  DvtEventRecord *records;

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
      emit_record (records);
      record_free (records);
      records = next;
    }

  dvt_core_unref (core);
}

/* Where the loop thread stops for good, with @context its context:
 * delivers what is left by dispatching the events' mail, so that it leaves
 * the mailbox, then closes the queue (what is recorded later is freed
 * with it, undelivered: the runtime has stopped). */
void
dvt_events_drain (DvtEventQueue *queue,
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
 * [property@Runtime:event-context] (by default its loop thread), one
 * handler at a time, in the order the events happened. For one task the
 * order is always queued, started, then (retry, started) for each retry,
 * and exactly one of finished, failed or cancelled. Events are recorded
 * only for tasks accepted while the runtime has a signal handler (or
 * [property@Runtime:trace] is on); a map is one task.
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

/* Adds the event signals to @type (DvtRuntime, whose signals carry
 * the task and take its name as detail, or DvtTask) and records their
 * ids. */
void
dvt_events_add_signals (GType    type,
                        gboolean with_task)
{
  guint *signals = with_task ? runtime_signals : task_signals;
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
