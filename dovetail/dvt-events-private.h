/* dvt-events-private.h: task events, queued and delivered on one context
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "dvt-mailbox-private.h"
#include "dvt-task.h"

G_BEGIN_DECLS

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

typedef struct _DvtEventRecord DvtEventRecord;
typedef struct _DvtCore        DvtCore;

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

  /* The runtime's DvtEventScopes, not held; under lock. */
  GPtrArray      *scopes;
  int             n_scopes;     /* atomic: scopes->len */
} DvtEventQueue;

void     dvt_events_init       (DvtEventQueue *queue,
                                const char    *thread_name);
void     dvt_events_set_context (DvtEventQueue *queue,
                                 DvtMailbox    *mailbox);
void     dvt_events_clear      (DvtEventQueue *queue);
void     dvt_events_stop       (DvtEventQueue *queue,
                                gboolean       wait);
gboolean dvt_events_is_event_thread (DvtEventQueue *queue);
void     dvt_events_add_scope  (DvtEventQueue *queue,
                                gpointer       scope);
void     dvt_events_remove_scope (DvtEventQueue *queue,
                                  gpointer       scope);
gboolean dvt_events_watch      (DvtTask       *task);
void     dvt_events_emit       (DvtTask       *task,
                                DvtEventKind   kind,
                                const GError  *error,
                                double         value);
void     dvt_events_emit_end   (DvtTask       *task);
gboolean dvt_events_wanted     (DvtTask       *task);
void     dvt_events_emit_progress (DvtTask    *batch,
                                   gpointer    map);
void     dvt_events_add_signals (GType         type);

G_END_DECLS
