/* dvt-task-private.h: the task's internals
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "dvt-context-private.h"
#include "dvt-core-private.h"
#include "dvt-events-private.h"
#include "dvt-policy-private.h"
#include "dvt-mailbox-private.h"
#include "dvt-pool-private.h"
#include "dvt-task.h"
#include "dvt-latch-private.h"

G_BEGIN_DECLS


typedef enum
{
  DVT_TASK_NEW,
  DVT_TASK_QUEUED,
  DVT_TASK_RUNNING,
  DVT_TASK_COMPLETED,
  DVT_TASK_RETRYING,     /* an attempt failed; the next one waits */
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

/* A larger call that a task belongs to (a map, whose items it runs): the
 * task tells it what happens and asks it what it shares through these,
 * and knows nothing else of it, as a libdex future propagates to whatever
 * awaits it. The task holds its parent from dvt_task_set_parent() until it
 * is finalized (finalized() lets go). */
typedef struct
{
  /* The task's result (whose contents the parent takes). */
  void          (*done)            (gpointer   parent,
                                    DvtTask   *task,
                                    DvtResult *result);
  /* The task's work function will not run again. */
  void          (*released)        (gpointer   parent);
  void          (*finalized)       (gpointer   parent,
                                    DvtTask   *task);
  GCancellable *(*get_cancellable) (gpointer   parent);
  void          (*cancel)          (gpointer   parent);
  /* Where the task's async work starts, or NULL. */
  DvtMailbox   *(*get_mailbox)     (gpointer   parent);
  /* The parent's own task: its work cannot wait for it. */
  DvtTask      *(*get_task)        (gpointer   parent);
} DvtTaskParentClass;

typedef struct _DvtTaskHookNode DvtTaskHookNode;

/* Bits of DvtTask.flags, set and read atomically. */
enum
{
  DVT_TASK_FLAG_LIVE             = 1 << 0,  /* on the runtime's live list */
  DVT_TASK_FLAG_ACCEPTED         = 1 << 1,  /* counted as queued */
  DVT_TASK_FLAG_POINTER_TAKEN    = 1 << 2,  /* a pointer result has moved */
  DVT_TASK_FLAG_CANCEL_REQUESTED = 1 << 3,
  DVT_TASK_FLAG_PUBLISH_PENDING  = 1 << 4,  /* see dvt_task_finish() */
  DVT_TASK_FLAG_WANTS_CANCELLABLE = 1 << 5, /* make one when the work starts */
  DVT_TASK_FLAG_FUNC_DONE        = 1 << 6,  /* the work function is not running */
  DVT_TASK_FLAG_RETRY_PENDING    = 1 << 7,  /* retry once the function returns */
  DVT_TASK_FLAG_EXPIRED          = 1 << 8,  /* its timeout passed */
  DVT_TASK_FLAG_TIMED            = 1 << 9,  /* a timer was armed for it */
  DVT_TASK_FLAG_ITEM_RELEASED    = 1 << 10, /* see dvt_task_release_item() */
  DVT_TASK_FLAG_WATCHED          = 1 << 11, /* its events are recorded */
  DVT_TASK_FLAG_END_EVENT        = 1 << 12, /* its terminal event is */
  DVT_TASK_FLAG_FUTURE           = 1 << 13, /* returned to the caller */
  DVT_TASK_FLAG_SCOPED           = 1 << 14, /* an event scope wants its id */
  DVT_TASK_FLAG_LENT_CANCELLABLE = 1 << 15, /* see take_back_cancellable() */
  DVT_TASK_FLAG_HOLDS_IDLE       = 1 << 16, /* see dvt_task_hold_idle() */
  DVT_TASK_FLAG_GATE_WAIT        = 1 << 17, /* waits for a gate: see the gates section of dvt-task.c */
  DVT_TASK_FLAG_GATES_HELD       = 1 << 18, /* the attempt is inside its gates */
  DVT_TASK_FLAG_CALLER_CONNECTED = 1 << 19, /* see dvt_task_connect_caller_cancellable() */
  DVT_TASK_FLAG_FUNC_IN_DATA     = 1 << 20, /* its identity is the first pointer of func_data */
};

/* What few tasks need: allocated on first use, freed with the task. */
typedef struct
{
  const char          *name;          /* interned */
  gconstpointer        function;      /* identity, when not func */
  guint64              cause_scope;   /* a DvtEventScope whose handler */
  guint                cause_depth;   /* accepted it, and its chain */
  DvtContext          *context;       /* held: its submitter's, or NULL */
  guint                index;         /* for map items */
  gpointer             parent;        /* see DvtTaskParentClass */
  const DvtTaskParentClass *parent_class;

  gulong               cancellable_handler;
  GCancellable        *caller_cancellable;
  gulong               caller_cancellable_handler;

  /* Where async work starts, when not on the runtime's loop. */
  DvtMailbox          *run_mailbox;
  GMainContext        *run_context;

  DvtTaskHookNode     *hooks;

  DvtPolicy           *policy;
  GSource             *timeout_source;  /* under dvt_stripe_lock () */
  GSource             *wait_source;     /* back-off or throttle; same lock */
  GError              *last_error;      /* of the last failed attempt */
  guint                gates_entered;   /* see the gates section of dvt-task.c */
  GCancellable        *gate_cancellable; /* a gate wait's; under dvt_stripe_lock () */

  GAsyncReadyCallback  callback;
  gpointer             callback_data;
  gpointer             source_tag;
  DvtMailbox          *callback_mailbox;
  DvtMailbox          *destroy_mailbox;  /* where func_data_destroy runs */

  /* See "priority and timed starts" in dvt-task.c. */
  int                  priority;        /* G_PRIORITY_* of its queued jobs */
  gint64               start_at;        /* monotonic µs; 0: at once */

  /* For callbacks and map items posted back. */
  DvtMail              mail;
  DvtTask             *task;
} DvtTaskExtra;

/* A queued task is this and nothing else: keep it small (the benchmark
 * "memory per queued task" holds it under a queued GTask). */
struct _DvtTask
{
  GObject              parent_instance;

  /* The fields are grouped by who writes them while the task runs, so
   * that a blocking caller waiting on @done is not slowed by the worker's
   * writes to the same cache line: first what the task's threads write,
   * then @done with what nobody writes while the work runs, then the
   * result. */
  gint64               started_at;    /* of the first attempt; 0: none */
  int                  state;         /* DvtTaskState, atomic */
  int                  completing;    /* DvtClaim, atomic */
  int                  flags;         /* DVT_TASK_FLAG_*, atomic */
  guint16              attempt;
  guint8               kind;
  /* References the runtime itself holds while the work function runs; if
   * the count falls back to this, nothing else can complete the task. */
  guint8               internal_refs;
  DvtLiveNode          live;          /* on the core's live list */

  /* The runtime's core; NULL for a task made without a runtime. The task
   * holds the runtime (core->owner, its source object): see
   * dvt_task_runtime(). */
  DvtCore             *core;
  guint64              id;
  gint64               accepted_at;   /* monotonic µs */
  gpointer             func;
  gpointer             func_data;
  DvtLatch             done;
  GDestroyNotify       func_data_destroy;
  GCancellable        *cancellable;

  DvtTaskExtra        *extra;
  /* The queued start of an attempt: a thread task's job for a worker, an
   * async task's mail for its main context. A node of its own, apart from
   * the extra's, as a task cancelled while its start is still queued
   * posts its callback (or its map slot) at once. The job also carries a
   * task released for freeing in a batch (dvt_task_flush_released()),
   * which nothing queues any more. */
  union
  {
    DvtJob             job;
    DvtMail            start_mail;
  };
  DvtResult            result;
};

DvtTask  *dvt_task_new               (DvtCore             *core,
                                      DvtTaskKind          kind,
                                      DvtOptions          *options,
                                      GCancellable        *cancellable);
void      dvt_task_set_callback      (DvtTask             *task,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data,
                                      gpointer             source_tag);
void      dvt_task_destroy_data_on_caller_context (DvtTask *task);
void      dvt_task_flush_released    (void);
gboolean  dvt_task_recycle           (DvtTask             *task);
void      dvt_task_set_run_context   (DvtTask             *task,
                                      GMainContext        *context);
void      dvt_task_dispatch          (DvtTask             *task);
void      dvt_task_hold_idle         (DvtTask             *task);
gboolean  dvt_task_running_in        (DvtCore             *core);
gboolean  dvt_task_accept            (DvtTask             *task,
                                      GError             **error);
DvtTask  *dvt_task_find_live         (DvtCore             *core,
                                      guint64              id);
GPtrArray *dvt_task_list_live        (DvtCore             *core);
void      dvt_task_set_parent        (DvtTask             *task,
                                      const DvtTaskParentClass *parent_class,
                                      gpointer             parent,
                                      guint                index);
void      dvt_task_unref_gated       (DvtTask             *task);
/* The request context @task's work runs in, or NULL. */
DvtContext *dvt_task_get_context    (DvtTask             *task);
DvtTask  *dvt_task_enter_work        (DvtTask             *task);
void      dvt_task_leave_work        (DvtTask             *outer);
gboolean  dvt_task_check_wait        (DvtTask             *task,
                                      GError             **error);
void      dvt_task_start_attempt     (DvtTask             *task);
void      dvt_task_push_attempt      (DvtTask             *task);
gboolean  dvt_task_end_by_runtime    (DvtTask             *task,
                                      GError              *error);
void      dvt_task_release_func_data (DvtTask             *task);
void      dvt_task_release_item      (DvtTask             *task);
void      dvt_task_ensure_cancellable (DvtTask            *task);
void      dvt_task_connect_caller_cancellable (DvtTask    *task);
gboolean  dvt_task_can_watch_caller  (void);
gpointer  dvt_task_watch_caller      (DvtTask             *task,
                                      GCancellable        *cancellable);
void      dvt_task_unwatch_caller    (gpointer             watch);
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
gboolean  dvt_task_watch_events      (DvtTask             *task);
void      dvt_task_emit              (DvtTask             *task,
                                      DvtEventKind         kind,
                                      const GError        *error,
                                      double               value);
void      dvt_task_emit_progress     (DvtTask             *batch,
                                      DvtProgress         *progress);
void      dvt_task_emit_end          (DvtTask             *task);

void      dvt_result_clear           (DvtResult           *result);

void      dvt_task_set_policy        (DvtTask             *task,
                                      DvtPolicy           *policy);
void      dvt_task_arm_timeout       (DvtTask             *task,
                                      gint64               timeout);
void      dvt_task_stop_timers       (DvtTask             *task);
void      dvt_task_expire            (DvtTask             *task,
                                      gint64               timeout);
gboolean  dvt_task_should_retry      (DvtTask             *task,
                                      const GError        *error);
void      dvt_task_schedule_retry    (DvtTask             *task);
void      dvt_task_throttle          (DvtTask             *task,
                                      gint64               wait);
void      dvt_task_start_admitted    (DvtTask             *task);

void      dvt_task_set_schedule      (DvtTask             *task,
                                      DvtOptions          *options);
gint64    dvt_task_start_delay       (DvtTask             *task);
void      dvt_task_start_later       (DvtTask             *task,
                                      gint64               delay);
void      dvt_task_dispatch_timed    (DvtTask             *task);

DvtTaskExtra *dvt_task_extra (DvtTask *task);

static inline gboolean
dvt_task_has_flag (DvtTask *task,
                   int      flag)
{
  return (g_atomic_int_get (&task->flags) & flag) != 0;
}

static inline void
dvt_task_set_flag (DvtTask *task,
                   int      flag)
{
  g_atomic_int_or (&task->flags, (guint) flag);
}

static inline void
dvt_task_unset_flag (DvtTask *task,
                     int      flag)
{
  g_atomic_int_and (&task->flags, ~(guint) flag);
}

/* The task whose extra holds @mail. */
#define DVT_TASK_OF_MAIL(m) \
  (((DvtTaskExtra *) G_STRUCT_MEMBER_P ((m), -G_STRUCT_OFFSET (DvtTaskExtra, mail)))->task)

/* The task whose start_mail is @m. */
#define DVT_TASK_OF_START_MAIL(m) \
  ((DvtTask *) G_STRUCT_MEMBER_P ((m), -G_STRUCT_OFFSET (DvtTask, start_mail)))

/* The task whose live node is @node. */
#define DVT_TASK_OF_LIVE(node) \
  ((DvtTask *) G_STRUCT_MEMBER_P ((node), -G_STRUCT_OFFSET (DvtTask, live)))

/* Reads without allocating. The extra may be made by another thread at
 * any time (dvt_task_extra()): read it atomically. */
#define DVT_TASK_EXTRA(task, field, fallback)                                \
  ({                                                                         \
    DvtTaskExtra *_dvt_extra = g_atomic_pointer_get (&(task)->extra);        \
    _dvt_extra != NULL ? _dvt_extra->field : (fallback);                     \
  })

/* The attempt, read from any thread. */
static inline guint
dvt_task_attempt (DvtTask *task)
{
  return __atomic_load_n (&task->attempt, __ATOMIC_RELAXED);
}

/* The runtime that runs @task (held by it), or NULL. */
static inline DvtRuntime *
dvt_task_runtime (DvtTask *task)
{
  return task->core != NULL ? (DvtRuntime *) task->core->owner : NULL;
}

static inline DvtCore *
dvt_task_core (DvtTask *task)
{
  return task->core;
}

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

/* @task as a GObject, without the checked cast of G_OBJECT(), which
 * costs a function call per use in a hot path. */
#define DVT_TASK_OBJECT(task) ((GObject *) (task))

static inline guint
dvt_task_ref_count (DvtTask *task)
{
  return (guint) g_atomic_int_get ((int *) &DVT_TASK_OBJECT (task)->ref_count);
}

static inline gboolean
dvt_task_has_gates (DvtTask *task)
{
  DvtPolicy *policy = DVT_TASK_EXTRA (task, policy, NULL);

  return policy != NULL && policy->gates != NULL;
}

G_END_DECLS
