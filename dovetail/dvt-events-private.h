/* dvt-events-private.h: signal records, queued and delivered on one context
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

#include "dvt-mailbox-private.h"

G_BEGIN_DECLS

/* This layer knows tasks only as the GObjects their signals are emitted
 * on, described by a DvtEventSource; it knows nothing of maps (a
 * DvtProgress counter), of scopes' objects (a DvtEventFilter each) or of
 * what owns the queue (hold and release hooks). */

typedef enum
{
  DVT_EVENT_QUEUED,
  DVT_EVENT_STARTED,
  DVT_EVENT_RETRY,
  DVT_EVENT_THROTTLED,
  DVT_EVENT_PROGRESS,   /* not an end: the ends come last */
  DVT_EVENT_FAILED,
  DVT_EVENT_CANCELLED,
  DVT_EVENT_FINISHED,
  DVT_N_EVENTS
} DvtEventKind;

/* Which class's set of signals dvt_events_add_signals() makes. */
typedef enum
{
  DVT_EVENT_SIGNALS_RUNTIME,  /* with the task, detailed by its name */
  DVT_EVENT_SIGNALS_TASK,     /* on the task itself */
  DVT_EVENT_SIGNALS_SCOPE,    /* as the runtime's, on a scope */
  DVT_EVENT_N_SIGNAL_SETS
} DvtEventSignals;

/* What an event says about its task, read when it is recorded. */
typedef struct
{
  GObject       *task;         /* its own signals are emitted on it */
  GObject       *runtime;      /* and the runtime's on this, if watched */
  const char    *runtime_name; /* for log lines; lives as long as the task */
  guint64        id;
  const char    *name;         /* interned, or NULL */
  gconstpointer  function;     /* its identity for scopes */
  guint64        cause_scope;  /* see dvt_events_get_cause() */
  guint          cause_depth;
  guint          attempt;
  gboolean       watched;      /* the runtime saw it queued */
  int           *flags;        /* atomic; end_flag is set in it once the */
  int            end_flag;     /* terminal event is recorded */
} DvtEventSource;

/* The items of a map that have ended, for progress events: one record
 * stands for every item ended meanwhile. */
typedef struct
{
  int   ref_count;
  int   done;      /* atomic */
  int   pending;   /* atomic: a record waits for delivery */
  guint total;
} DvtProgress;

DvtProgress *dvt_progress_new     (guint        total);
DvtProgress *dvt_progress_ref     (DvtProgress *progress);
void         dvt_progress_unref   (DvtProgress *progress);
gboolean     dvt_progress_add     (DvtProgress *progress);

/* What a scope matches, registered in its runtime's queue. */
typedef struct
{
  guint64        serial;
  const char    *name;       /* interned */
  gconstpointer  function;
  guint64        task_id;
  int            max_depth;  /* atomic */
  GWeakRef       object;     /* the scope its signals are emitted on */
} DvtEventFilter;

typedef struct _DvtEventRecord DvtEventRecord;

/* The events of a runtime waiting for delivery, in the order they
 * happened, and where they go. */
typedef struct
{
  GMutex          lock;
  DvtEventRecord *head;
  DvtEventRecord *tail;
  gboolean        posted;    /* the mail is out, or the queue is closed */
  DvtMailbox     *mailbox;   /* where they are delivered */
  DvtMail         mail;
  int             trace;     /* atomic: log each event */

  /* Without an event-context: the events' own thread, started by the
   * first event to deliver, with its context. */
  char           *thread_name;
  GThread        *thread;
  GMainContext   *thread_context;
  int             thread_quit;  /* atomic */
  gboolean        stopped;      /* no thread starts any more */

  /* What the queue belongs to: held while events are delivered. */
  gpointer        owner;
  void          (*hold)    (gpointer owner);
  void          (*release) (gpointer owner);

  /* The runtime's scopes' filters, not held; under lock. */
  GPtrArray      *filters;
  int             n_filters;    /* atomic: filters->len */
} DvtEventQueue;

void     dvt_events_init       (DvtEventQueue *queue,
                                const char    *thread_name,
                                gpointer       owner,
                                void         (*hold)    (gpointer owner),
                                void         (*release) (gpointer owner));
void     dvt_events_set_context (DvtEventQueue *queue,
                                 DvtMailbox    *mailbox);
void     dvt_events_clear      (DvtEventQueue *queue);
void     dvt_events_stop       (DvtEventQueue *queue,
                                gboolean       wait);
gboolean dvt_events_is_event_thread (DvtEventQueue *queue);
void     dvt_events_add_filter (DvtEventQueue  *queue,
                                DvtEventFilter *filter);
void     dvt_events_remove_filter (DvtEventQueue  *queue,
                                   DvtEventFilter *filter);
gboolean dvt_events_listening  (DvtEventQueue *queue,
                                gpointer       runtime);
void     dvt_events_get_cause  (guint64       *scope,
                                guint         *depth);
void     dvt_events_record     (DvtEventQueue        *queue,
                                const DvtEventSource *source,
                                DvtEventKind          kind,
                                const GError         *error,
                                double                value,
                                DvtProgress          *progress);
void     dvt_events_set_delivery_hooks
                               (void (*record_delivered) (GObject      *task,
                                                          DvtEventKind  kind,
                                                          guint         attempt),
                                void (*batch_delivered)  (GObject      *runtime,
                                                          GMainContext *context));
void     dvt_events_add_signals (GType           type,
                                 DvtEventSignals set,
                                 GType           task_type);
guint    dvt_events_signal_id   (DvtEventSignals set,
                                 DvtEventKind    kind);

G_END_DECLS
