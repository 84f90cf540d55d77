/* dvt-core-private.h: what a runtime's threads share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "dvt-events-private.h"
#include "dvt-mailbox-private.h"
#include "dvt-policy-private.h"
#include "dvt-pool-private.h"
#include "dvt-histogram-private.h"

G_BEGIN_DECLS

/* The core knows nothing of tasks: it keeps the loop thread and its
 * mailboxes, the worker pool, the event queue, the counters and the rate
 * bucket, and a list of live nodes, which the task layer embeds in its
 * tasks. */

typedef struct _DvtCore     DvtCore;
typedef struct _DvtLiveNode DvtLiveNode;

struct _DvtLiveNode
{
  DvtLiveNode *prev;
  DvtLiveNode *next;
};

/* What the threads of a runtime share. The DvtRuntime object holds it, and
 * so does every thread, so that a runtime finalized on one of its own
 * threads does not pull memory from under the others. */
struct _DvtCore
{
  int           ref_count;
  char         *name;          /* the runtime's, for log lines; may be NULL */

  GMutex        lock;
  GCond         idle_cond;     /* n_live or n_publishing fell to 0 */
  int           n_idle_waiters; /* atomic, changed under lock: threads
                                 * waiting on idle_cond */
  int           n_publishing;  /* atomic: ended tasks whose mail is still
                                * being posted (see dvt_core_hold_idle()) */
  struct _IdleWatch *idle_watches; /* see dvt_core_when_idle() */
  int           closed;        /* atomic */
  guint         n_live;
  DvtLiveNode  *live;          /* accepted, not yet ended (their owners
                                * hold themselves meanwhile) */

  GMainContext *context;
  GThread      *loop_thread;
  int           loop_quit;     /* atomic */
  DvtMailbox   *loop_mailbox;
  /* The public object over this core (a DvtRuntime), not held: what its
   * tasks hold and name as their source object. Set once, at creation. */
  GObject      *owner;
  /* The other contexts' (callbacks, event-contexts). Its own lock:
   * callers take it per call with a callback, and the workers must not
   * queue behind them on the lock of the live list. */
  DvtMailboxTable mailboxes;

  DvtPool       pool;

  guint64       next_id;
  guint64       n_queued;
  guint64       n_started;
  guint64       n_done;
  guint64       n_error;
  guint64       n_cancelled;
  guint64       n_retries;
  guint64       n_throttled;
  guint64       n_timed_out;
  gint64        n_running;

  DvtEventQueue events;

  DvtHistogram  queue_wait;
  DvtHistogram  run_time;
  GMutex        counters_lock;
  GHashTable   *counters;      /* the application's: name → gint64 */

  DvtRateBucket rate;          /* the rate limit on task starts */
};

#define DVT_COUNTER_ADD(p, v) ((void) __atomic_fetch_add ((p), (v), __ATOMIC_RELAXED))
#define DVT_COUNTER_GET(p)    (__atomic_load_n ((p), __ATOMIC_RELAXED))

#define DVT_COUNTER_ADD(p, v) ((void) __atomic_fetch_add ((p), (v), __ATOMIC_RELAXED))
#define DVT_COUNTER_GET(p)    (__atomic_load_n ((p), __ATOMIC_RELAXED))

DvtCore    *dvt_core_new                  (GObject       *owner,
                                           const char    *name,
                                           guint          max_workers);
void        dvt_core_ref                  (DvtCore       *core);
void        dvt_core_unref                (DvtCore       *core);
void        dvt_core_stop                 (DvtCore       *core,
                                           gboolean       wait);
gboolean    dvt_core_is_loop_thread       (DvtCore       *core);
gboolean    dvt_core_check_blocking       (DvtCore       *core,
                                           GError       **error);
DvtMailbox *dvt_core_acquire_mailbox      (DvtCore       *core,
                                           GMainContext  *context);
void        dvt_core_release_mailbox      (DvtCore       *core,
                                           DvtMailbox    *mailbox);
void        dvt_core_destroy_on           (DvtCore       *core,
                                           DvtMailbox    *mailbox,
                                           GDestroyNotify destroy,
                                           gpointer       data);
gboolean    dvt_core_accept               (DvtCore       *core,
                                           DvtLiveNode   *node,
                                           void         (*accepted) (gpointer data),
                                           gpointer       data,
                                           GError       **error);
void        dvt_core_foreach_live         (DvtCore       *core,
                                           gboolean     (*func) (DvtLiveNode *node,
                                                                 gpointer     data),
                                           gpointer       data);
void        dvt_core_retire               (DvtCore       *core,
                                           DvtLiveNode   *node);
void        dvt_core_hold_idle            (DvtCore       *core);
void        dvt_core_release_idle         (DvtCore       *core);
void        dvt_core_wait_idle            (DvtCore       *core);
gboolean    dvt_core_wait_idle_until      (DvtCore       *core,
                                           gint64         deadline,
                                           GCancellable  *cancellable);
void        dvt_core_when_idle            (DvtCore       *core,
                                           void         (*func) (gpointer data),
                                           gpointer       data);

G_END_DECLS
