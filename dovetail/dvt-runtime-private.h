/* dvt-runtime-private.h: the runtime's shared core
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "dvt-events-private.h"
#include "dvt-mailbox-private.h"
#include "dvt-stats-private.h"
#include "dvt-pool-private.h"
#include "dvt-registry-private.h"
#include "dvt-runtime.h"
#include "dvt-task-private.h"

G_BEGIN_DECLS

/* What the threads of a runtime share. The DvtRuntime object holds it, and
 * so does every thread, so that a runtime finalized on one of its own
 * threads does not pull memory from under the others. */
struct _DvtCore
{
  int           ref_count;

  GMutex        lock;
  GCond         idle_cond;     /* n_live or n_publishing fell to 0 */
  int           n_idle_waiters; /* atomic, changed under lock: threads
                                 * waiting on idle_cond */
  int           n_publishing;  /* atomic: ended tasks whose mail is still
                                * being posted (see dvt_core_hold_idle()) */
  int           closed;        /* atomic */
  guint         n_live;
  DvtTask      *live;          /* accepted, not yet ended; each held */

  GMainContext *context;
  GThread      *loop_thread;
  int           loop_quit;     /* atomic */
  DvtMailbox   *loop_mailbox;
  /* Its own lock: callers take it per call with a callback, and the
   * workers must not queue behind them on the lock of the live list. */
  GMutex        mailboxes_lock;
  GHashTable   *mailboxes;     /* GMainContext → DvtMailbox */

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

struct _DvtRuntime
{
  GObject  parent_instance;

  DvtCore *core;
  DvtRegistryEntry *entry;
  char    *name;
  guint    max_workers;

  /* Defaults for calls whose options leave them unset. */
  DvtPolicyDefaults defaults;
  double   rate_limit;
  guint    rate_limit_burst;

  GMainContext *event_context;
  gboolean      trace;
};

static inline DvtCore *
dvt_runtime_get_core (DvtRuntime *runtime)
{
  return runtime->core;
}

static inline DvtCore *
dvt_task_core (DvtTask *task)
{
  return task->runtime->core;
}
gboolean    dvt_core_is_loop_thread       (DvtCore       *core);
DvtMailbox *dvt_core_acquire_mailbox      (DvtCore       *core,
                                           GMainContext  *context);
void        dvt_core_release_mailbox      (DvtCore       *core,
                                           DvtMailbox    *mailbox);
gboolean    dvt_core_accept               (DvtCore       *core,
                                           DvtTask       *task,
                                           GError       **error);
DvtTask    *dvt_core_find_live            (DvtCore       *core,
                                           guint64        id);
void        dvt_core_retire               (DvtCore       *core,
                                           DvtTask       *task);
void        dvt_core_hold_idle            (DvtCore       *core);
void        dvt_core_release_idle         (DvtCore       *core);
void        dvt_core_destroy_on           (DvtCore       *core,
                                           DvtMailbox    *mailbox,
                                           GDestroyNotify destroy,
                                           gpointer       data);
void        dvt_core_ref                  (DvtCore       *core);
void        dvt_core_unref                (DvtCore       *core);
gboolean    dvt_core_check_blocking       (DvtCore       *core,
                                           GError       **error);

G_END_DECLS
