/* dvt-task-private.h: the task's internals
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "dvt-mailbox-private.h"
#include "dvt-pool-private.h"
#include "dvt-task.h"
#include "dvt-wait-private.h"

G_BEGIN_DECLS

typedef struct _DvtCore DvtCore;
typedef struct _DvtMap  DvtMap;

typedef enum
{
  DVT_TASK_NEW,
  DVT_TASK_QUEUED,
  DVT_TASK_RUNNING,
  DVT_TASK_COMPLETED,
} DvtTaskState;

/* Who claimed the right to complete a task. */
typedef enum
{
  DVT_CLAIMED_NOT = 0,
  DVT_CLAIMED_BY_WORK,
  DVT_CLAIMED_BY_RUNTIME,
} DvtClaim;

typedef enum
{
  DVT_TASK_KIND_THREAD,     /* a DvtThreadFunc on a worker */
  DVT_TASK_KIND_ASYNC,      /* a DvtAsyncFunc on a main context */
  DVT_TASK_KIND_BATCH,      /* a map: its items complete it */
  DVT_TASK_KIND_ITEM,       /* one item of a map: its result goes to a slot */
} DvtTaskKind;

/* What a task completes with. */
typedef struct
{
  GValue          value;
  GDestroyNotify  destroy;  /* for a G_TYPE_POINTER result */
  GError         *error;
} DvtResult;

typedef void (*DvtTaskHook) (DvtTask  *task,
                             gpointer  data);

typedef struct _DvtTaskHookNode DvtTaskHookNode;

struct _DvtTask
{
  GObject              parent_instance;

  DvtRuntime          *runtime;
  DvtCore             *core;
  guint64              id;
  char                *name;
  guint                attempt;
  guint                index;

  int                  state;       /* DvtTaskState, atomic */
  int                  completing;  /* atomic: DvtClaim */
  /* Separate bytes, not bit-fields: different threads write them. */
  guint8               kind;
  guint8               is_live;
  guint8               accepted;
  guint8               pointer_taken;
  guint8               cancel_requested;
  guint8               publish_pending;
  /* References the runtime itself holds while the work function runs; if
   * the count falls back to this, nothing else can complete the task. */
  guint                internal_refs;

  gpointer             func;
  gpointer             func_data;
  GDestroyNotify       func_data_destroy;
  DvtMailbox          *destroy_mailbox;  /* where to call it, if not here */

  GCancellable        *cancellable;
  gulong               cancellable_handler;
  GCancellable        *caller_cancellable;
  gulong               caller_cancellable_handler;

  /* Where async work starts: the runtime's loop unless the caller asked
   * for its own thread-default context. */
  DvtMailbox          *run_mailbox;
  GMainContext        *run_context;

  DvtResult            result;

  DvtEvent             done;        /* its lock also guards hooks */
  DvtTaskHookNode     *hooks;

  GAsyncReadyCallback  callback;
  gpointer             callback_data;
  gpointer             source_tag;
  DvtMailbox          *callback_mailbox;

  DvtMap              *map;         /* for items */

  DvtJob               job;
  DvtMail              mail;
  DvtTask             *live_prev;
  DvtTask             *live_next;
};

DvtTask  *dvt_task_new               (DvtRuntime          *runtime,
                                      DvtTaskKind          kind,
                                      DvtOptions          *options,
                                      GCancellable        *cancellable);
void      dvt_task_set_callback      (DvtTask             *task,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data,
                                      gpointer             source_tag);
void      dvt_task_destroy_data_on_caller_context (DvtTask *task);
void      dvt_task_set_run_context   (DvtTask             *task,
                                      GMainContext        *context);
void      dvt_task_dispatch          (DvtTask             *task);
void      dvt_task_connect_caller_cancellable (DvtTask    *task);
gboolean  dvt_task_wait_internal     (DvtTask             *task,
                                      gint64               deadline,
                                      GError             **error);
void      dvt_task_finish            (DvtTask             *task,
                                      DvtResult           *result,
                                      gboolean             by_runtime);
void      dvt_task_fail              (DvtTask             *task,
                                      GError              *error,
                                      gboolean             by_runtime);
void      dvt_task_add_done_hook     (DvtTask             *task,
                                      DvtTaskHook          hook,
                                      gpointer             data);
void      dvt_task_check_returned    (DvtTask             *task,
                                      GError              *error);
gboolean  dvt_task_is_tagged         (DvtTask             *task,
                                      DvtRuntime          *runtime,
                                      gpointer             source_tag);
void      dvt_task_mark_started      (DvtTask             *task);

void      dvt_result_clear           (DvtResult           *result);

static inline DvtTaskState
dvt_task_get_state (DvtTask *task)
{
  return (DvtTaskState) g_atomic_int_get (&task->state);
}

static inline gboolean
dvt_task_is_claimed (DvtTask *task)
{
  return g_atomic_int_get (&task->completing) != 0;
}

static inline gboolean
dvt_task_claimed_by_runtime (DvtTask *task)
{
  return g_atomic_int_get (&task->completing) == DVT_CLAIMED_BY_RUNTIME;
}

static inline guint
dvt_task_ref_count (DvtTask *task)
{
  return (guint) g_atomic_int_get ((int *) &G_OBJECT (task)->ref_count);
}

G_END_DECLS
