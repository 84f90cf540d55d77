/* dvt-gate-core.c: the waiting that every gate shares
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gi18n-lib.h>

#include "dvt-fault-private.h"
#include "dvt-gate-core-private.h"
#include "dvt-pool-private.h"
#include "dvt-thread-private.h"
#include "dvt-spin-private.h"

/* ---- waiters ------------------------------------------------------------------
 *
 * A waiter's state is one atomic claim, as in dvt-queue.c: the gate's
 * side (an admission) moves it from WAITING to DONE under the gate's lock;
 * the waiter's own side (its cancellable's handler, its timeout) moves it
 * from WAITING to ABANDONED without the lock. Whoever wins decides how the
 * wait ends: a waiter admitted first enters even if its cancellable fires
 * a moment later (its caller then holds the admission and leaves as
 * usual); one abandoned first is skipped, and the admission goes to the
 * next waiter. So an admission is never both given and lost. */

typedef enum
{
  WAITER_WAITING,
  WAITER_DONE,       /* admitted by the gate */
  WAITER_ABANDONED,  /* cancelled or timed out */
} WaiterState;

typedef struct _AsyncOp AsyncOp;

struct _DvtGateWaiter
{
  DvtGateWaiter *prev;
  DvtGateWaiter *next;      /* in the list; once claimed, in a list of completions */
  DvtGateCore   *core;
  int            state;     /* atomic WaiterState */
  gboolean       linked;    /* under the lock */
  int            priority;
  guint64        seq;
  gint64         wake_at;   /* under the lock: when the clock may admit it, or -1 */
  AsyncOp       *op;        /* NULL for a blocking waiter */

  /* A blocking waiter's latch (see latch_set_locked()). */
  int            published; /* atomic */
  gboolean       parked;    /* under the lock */
  GCond          cond;
};

/* One enter_async(): the GTask's task data. */
struct _AsyncOp
{
  DvtGateWaiter    waiter;
  gatomicrefcount  ref_count;
  GObject         *owner;       /* held */
  GTask           *task;        /* ours while the waiter waits */
  GCancellable    *cancellable;
  gulong           handler;     /* atomic */
  GMainContext    *context;     /* the caller's: its timer runs there */
  GSource         *timer;       /* under the lock */
};

static inline gboolean
waiter_claim (DvtGateWaiter *waiter,
              WaiterState    outcome)
{
  return g_atomic_int_compare_and_exchange (&waiter->state, WAITER_WAITING, (int) outcome);
}

static inline WaiterState
waiter_get_state (DvtGateWaiter *waiter)
{
  return (WaiterState) g_atomic_int_get (&waiter->state);
}

/* Waiters in order: lower priority first, then first come first served. */
static void
list_insert_locked (DvtGateCore   *core,
                    DvtGateWaiter *waiter)
{
  DvtGateWaiter *after = core->tail;

  waiter->seq = core->next_seq++;
  while (after != NULL && after->priority > waiter->priority)
    after = after->prev;

  waiter->prev = after;
  waiter->next = after != NULL ? after->next : core->head;
  if (waiter->next != NULL)
    waiter->next->prev = waiter;
  else
    core->tail = waiter;
  if (after != NULL)
    after->next = waiter;
  else
    core->head = waiter;
  waiter->linked = TRUE;

  g_atomic_int_set (&core->n_waiting, core->n_waiting + 1);
  if (core->n_waiting == 1 && core->klass->waiters_changed_locked != NULL)
    core->klass->waiters_changed_locked (core, TRUE);
}

static void
list_remove_locked (DvtGateCore   *core,
                    DvtGateWaiter *waiter)
{
  if (waiter->prev != NULL)
    waiter->prev->next = waiter->next;
  else
    core->head = waiter->next;
  if (waiter->next != NULL)
    waiter->next->prev = waiter->prev;
  else
    core->tail = waiter->prev;
  waiter->prev = waiter->next = NULL;
  waiter->linked = FALSE;

  g_atomic_int_set (&core->n_waiting, core->n_waiting - 1);
  if (core->n_waiting == 0 && core->klass->waiters_changed_locked != NULL)
    core->klass->waiters_changed_locked (core, FALSE);
}

/* With the lock held: a blocking waiter is woken now (the waker's last
 * touch of it: a spinning waiter returns as soon as it sees the flag, and
 * one that parked cannot return before the lock is released); an async
 * one is completed once the lock is released, from @completions. */
static void
wake_locked (DvtGateWaiter  *waiter,
             DvtGateWaiter **completions)
{
  if (waiter->op == NULL)
    {
      if (waiter->parked)
        g_cond_signal (&waiter->cond);
      g_atomic_int_set (&waiter->published, 1);
    }
  else
    {
      waiter->next = *completions;
      *completions = waiter;
    }
}

/* ---- timers of async waiters ---------------------------------------------------- */

static void
op_unref (gpointer data)
{
  AsyncOp *op = data;

  if (!g_atomic_ref_count_dec (&op->ref_count))
    return;

  g_clear_object (&op->cancellable);
  g_clear_pointer (&op->context, g_main_context_unref);
  DVT_CALLOUT (g_object_unref (op->owner));
  g_free (op);
}

static gboolean
on_timer (gpointer data)
{
  AsyncOp *op = data;
  DvtGateCore *core = op->waiter.core;
  DvtGateWaiter *completions = NULL;
  GSource *timer = NULL;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  g_mutex_lock (&core->lock);
  if (op->timer == g_main_current_source ())
    timer = g_steal_pointer (&op->timer);
  op->waiter.wake_at = -1;
  dvt_gate_core_kick_locked (core, &completions);
  g_mutex_unlock (&core->lock);

  if (timer != NULL)
    g_source_unref (timer);
  dvt_gate_core_complete (completions);
  dvt_fork_gate_leave (gate);

  return G_SOURCE_REMOVE;
}

/* With the lock held: wakes the async waiter @op at monotonic time @at on
 * its own context. */
static void
arm_timer_locked (AsyncOp *op,
                  gint64   at,
                  gint64   now)
{
  GSource *source;
  gint64 delay = MAX (at - now, 0);

  if (op->timer != NULL)
    {
      g_source_destroy (op->timer);
      g_source_unref (op->timer);
    }

  source = g_timeout_source_new ((guint) MIN ((delay + 999) / 1000, G_MAXUINT));
  g_atomic_ref_count_inc (&op->ref_count);
  g_source_set_callback (source, on_timer, op, op_unref);
  g_source_set_static_name (source, "[dovetail] gate timer");
  g_source_attach (source, op->context);
  op->timer = source;
}

/* With the lock held: the head waiter learns when the clock alone may
 * admit it, and so does the first blocking waiter behind an async head:
 * the head's timer runs on its caller's context, and the threads that
 * wait must not depend on that context being iterated. */
static void
arm_head_locked (DvtGateCore *core,
                 gint64       now)
{
  DvtGateWaiter *waiter;
  gint64 at;

  if (core->head == NULL || core->klass->next_time_locked == NULL)
    return;

  if (now < 0)
    now = g_get_monotonic_time ();
  at = core->klass->next_time_locked (core, now);
  if (at < 0)
    return;

  for (waiter = core->head; waiter != NULL; waiter = waiter->next)
    {
      if (waiter->op == NULL)
        {
          if (waiter->wake_at != at)
            {
              waiter->wake_at = at;
              if (waiter->parked)
                g_cond_signal (&waiter->cond);
            }
          break;
        }
      if (waiter == core->head && waiter->wake_at != at)
        {
          waiter->wake_at = at;
          arm_timer_locked (waiter->op, at, now);
        }
    }
}

/* ---- admission ------------------------------------------------------------------ */

/* For tests: whether @admitted comes before every waiter still waiting. */
static void
check_order_locked (DvtGateCore   *core,
                    DvtGateWaiter *admitted)
{
  gboolean in_order = TRUE;

  for (DvtGateWaiter *w = core->head; w != NULL; w = w->next)
    if (waiter_get_state (w) == WAITER_WAITING &&
        (w->priority < admitted->priority ||
         (w->priority == admitted->priority && w->seq < admitted->seq)))
      in_order = FALSE;

  core->order_hook (in_order, core->order_hook_data);
}

/* With the lock held: admits waiters from the head of the list while the
 * gate lets them in, then tells the head when to look again. Admitted
 * async waiters are added to @completions, for dvt_gate_core_complete()
 * once the lock is released. */
void
dvt_gate_core_kick_locked (DvtGateCore    *core,
                           DvtGateWaiter **completions)
{
  gint64 now = -1;
  DvtGateWaiter *waiter;

  while ((waiter = core->head) != NULL)
    {
      if (waiter_get_state (waiter) != WAITER_WAITING)
        {
          /* Abandoned: its own side finds it unlinked. */
          list_remove_locked (core, waiter);
          continue;
        }

      if (now < 0)
        now = g_get_monotonic_time ();
      if (!core->klass->admit_locked (core, now))
        break;

      if (!waiter_claim (waiter, WAITER_DONE))
        {
          /* Abandoned since it was looked at: the admission goes back. */
          if (core->klass->unadmit_locked != NULL)
            core->klass->unadmit_locked (core);
          list_remove_locked (core, waiter);
          continue;
        }

      dvt_fault_point ();
      list_remove_locked (core, waiter);
      if (G_UNLIKELY (core->order_hook != NULL))
        check_order_locked (core, waiter);
      if (core->klass->counts_inside)
        g_atomic_int_inc (&core->n_inside);
      wake_locked (waiter, completions);
    }

  arm_head_locked (core, now);
}

/* Completes async waiters claimed under the lock, which is released. */
void
dvt_gate_core_complete (DvtGateWaiter *completions)
{
  DvtForkGate gate;

  if (completions == NULL)
    return;

  /* Collected head first: complete them in the order they were admitted. */
  {
    DvtGateWaiter *reversed = NULL;

    while (completions != NULL)
      {
        DvtGateWaiter *next = completions->next;

        completions->next = reversed;
        reversed = completions;
        completions = next;
      }
    completions = reversed;
  }

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  while (completions != NULL)
    {
      DvtGateWaiter *waiter = completions;
      AsyncOp *op = waiter->op;
      GTask *task = g_steal_pointer (&op->task);
      GSource *timer;

      completions = waiter->next;
      waiter->next = NULL;
      dvt_fault_point ();

      g_mutex_lock (&waiter->core->lock);
      timer = g_steal_pointer (&op->timer);
      g_mutex_unlock (&waiter->core->lock);
      if (timer != NULL)
        {
          g_source_destroy (timer);
          g_source_unref (timer);
        }

      DVT_CALLOUT (g_task_return_boolean (task, TRUE));
      DVT_CALLOUT (g_object_unref (task));
    }
  dvt_fork_gate_leave (gate);
}

void
dvt_gate_core_kick (DvtGateCore *core)
{
  DvtGateWaiter *completions = NULL;

  g_mutex_lock (&core->lock);
  dvt_gate_core_kick_locked (core, &completions);
  g_mutex_unlock (&core->lock);
  dvt_gate_core_complete (completions);
}

/* With the lock held: whether a newcomer enters at once. */
static gboolean
enter_now_locked (DvtGateCore *core)
{
  if (core->head != NULL && core->fifo)
    return FALSE;
  if (!core->klass->admit_locked (core, g_get_monotonic_time ()))
    return FALSE;

  if (core->klass->counts_inside)
    g_atomic_int_inc (&core->n_inside);
  return TRUE;
}

void
dvt_gate_core_init (DvtGateCore            *core,
                    const DvtGateCoreClass *klass,
                    GObject                *owner,
                    gboolean                fifo)
{
  memset (core, 0, sizeof *core);
  core->klass = klass;
  core->owner = owner;
  core->fifo = fifo;
  g_mutex_init (&core->lock);
}

void
dvt_gate_core_clear (DvtGateCore *core)
{
  /* Every waiter holds the gate. */
  g_assert (core->head == NULL);
  g_mutex_clear (&core->lock);
}

gboolean
dvt_gate_core_try_enter (DvtGateCore *core)
{
  gboolean entered;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  g_mutex_lock (&core->lock);
  entered = enter_now_locked (core);
  g_mutex_unlock (&core->lock);
  dvt_fork_gate_leave (gate);

  return entered;
}

/* Leaves, once for each admission: FALSE with a critical warning (a
 * programmer's mistake) if nobody is inside. */
gboolean
dvt_gate_core_leave (DvtGateCore *core,
                     const char  *function)
{
  int inside = g_atomic_int_get (&core->n_inside);

  do
    {
      if (inside <= 0)
        {
          g_critical ("%s: the gate was left more times than it was entered; "
                      "the extra leave is ignored", function);
          return FALSE;
        }
    }
  while (!g_atomic_int_compare_and_exchange_full (&core->n_inside, inside, inside - 1, &inside));

  return TRUE;
}

/* ---- the blocking face ------------------------------------------------------- */

static void
on_blocking_cancelled (GCancellable *cancellable,
                       gpointer      data)
{
  DvtGateWaiter *waiter = data;
  DvtGateCore *core = waiter->core;
  DvtGateWaiter *completions = NULL;

  /* The waiter disconnects this handler (which waits for it to return)
   * before it goes away. */
  if (!waiter_claim (waiter, WAITER_ABANDONED))
    return;

  dvt_fault_point ();
  g_mutex_lock (&core->lock);
  if (waiter->linked)
    list_remove_locked (core, waiter);
  dvt_gate_core_kick_locked (core, &completions);
  wake_locked (waiter, NULL);
  g_mutex_unlock (&core->lock);
  dvt_gate_core_complete (completions);
}

/* A deadline from a timeout in seconds: 0 or less, NaN, or too long for
 * the clock (infinity included) is no limit. */
static gint64
deadline_from_timeout (double timeout)
{
  if (timeout > 0 && timeout < (double) (G_MAXINT64 / 4) / G_USEC_PER_SEC)
    return g_get_monotonic_time () + (gint64) (timeout * G_USEC_PER_SEC);

  return -1;
}

/* Waits as @waiter, which is in @core's list, until it is admitted, the
 * monotonic time @deadline (-1: none) passes or it is cancelled. Returns
 * whether it was admitted; FALSE when the deadline passed first. */
static gboolean
latch_wait (DvtGateCore   *core,
            DvtGateWaiter *waiter,
            gint64         deadline)
{
  DvtGateWaiter *completions = NULL;
  DvtSpin spin = DVT_SPIN_INIT;
  gboolean set;
  DvtPool *pool;

  for (;;)
    {
      if (g_atomic_int_get (&waiter->published))
        {
          dvt_spin_done (&spin, FALSE);
          return TRUE;
        }
      if (!dvt_spin_step (&spin))
        break;
    }
  dvt_spin_done (&spin, TRUE);

  pool = dvt_pool_enter_blocking ();
  g_mutex_lock (&core->lock);
  waiter->parked = TRUE;
  while (!g_atomic_int_get (&waiter->published))
    {
      gint64 until = deadline;
      gint64 now;

      if (waiter->wake_at >= 0 && (until < 0 || waiter->wake_at < until))
        until = waiter->wake_at;
      if (until < 0)
        {
          g_cond_wait (&waiter->cond, &core->lock);
          continue;
        }
      if (g_cond_wait_until (&waiter->cond, &core->lock, until))
        continue;

      now = g_get_monotonic_time ();
      if (waiter->wake_at >= 0 && now >= waiter->wake_at)
        {
          /* The clock may admit the head (this waiter, or one before it). */
          waiter->wake_at = -1;
          dvt_gate_core_kick_locked (core, &completions);
          continue;
        }
      if (deadline >= 0 && now >= deadline)
        break;
    }
  waiter->parked = FALSE;
  set = g_atomic_int_get (&waiter->published);
  g_mutex_unlock (&core->lock);
  dvt_pool_leave_blocking (pool);
  dvt_gate_core_complete (completions);

  return set;
}

gboolean
dvt_gate_core_enter_blocking (DvtGateCore   *core,
                              int            priority,
                              double         timeout,
                              GCancellable  *cancellable,
                              GError       **error)
{
  DvtGateWaiter *completions = NULL;
  gint64 deadline = deadline_from_timeout (timeout);
  DvtGateWaiter waiter;
  gboolean timed_out = FALSE;
  gulong handler = 0;
  DvtForkGate gate;

  if (cancellable != NULL && g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  g_mutex_lock (&core->lock);
  if (enter_now_locked (core))
    {
      g_mutex_unlock (&core->lock);
      dvt_fork_gate_leave (gate);
      return TRUE;
    }

  memset (&waiter, 0, sizeof waiter);
  waiter.core = core;
  waiter.priority = priority;
  waiter.wake_at = -1;
  g_cond_init (&waiter.cond);
  list_insert_locked (core, &waiter);
  /* The gate may admit at once (a semaphore released as this waiter
   * joined), and the head must know when the clock admits it. */
  dvt_gate_core_kick_locked (core, &completions);
  g_mutex_unlock (&core->lock);
  dvt_gate_core_complete (completions);

  /* Runs the handler at once if the cancellable is cancelled already. */
  if (cancellable != NULL)
    handler = g_cancellable_connect (cancellable, G_CALLBACK (on_blocking_cancelled),
                                     &waiter, NULL);
  dvt_fork_gate_leave (gate);

  if (!latch_wait (core, &waiter, deadline))
    {
      /* Timed out, unless the gate claimed the waiter meanwhile. */
      gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
      timed_out = waiter_claim (&waiter, WAITER_ABANDONED);
      dvt_fault_point ();
      completions = NULL;
      g_mutex_lock (&core->lock);
      if (waiter.linked)
        list_remove_locked (core, &waiter);
      dvt_gate_core_kick_locked (core, &completions);
      g_mutex_unlock (&core->lock);
      dvt_gate_core_complete (completions);
      dvt_fork_gate_leave (gate);
    }

  /* A handler running in another thread is waited for. */
  if (handler != 0)
    {
      gate = dvt_fork_gate_enter (DVT_FORK_GATE_CALLOUT);
      g_cancellable_disconnect (cancellable, handler);
      dvt_fork_gate_leave (gate);
    }
  g_cond_clear (&waiter.cond);

  if (waiter_get_state (&waiter) == WAITER_DONE)
    return TRUE;

  if (timed_out)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                         _("Timed out waiting to enter the gate"));
  else
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                         _("The wait to enter the gate was cancelled"));
  return FALSE;
}

/* ---- the async face ------------------------------------------------------------ */

/* The cancellable's handler holds the op, not its GTask: it is
 * disconnected by the finish call, or when the GTask is finalized. */
static void
op_disconnect (AsyncOp *op)
{
  gulong handler = __atomic_exchange_n (&op->handler, 0, __ATOMIC_ACQ_REL);

  if (handler != 0)
    DVT_CALLOUT (g_cancellable_disconnect (op->cancellable, handler));
}

static void
op_release (gpointer data)
{
  AsyncOp *op = data;

  op_disconnect (op);
  op_unref (op);
}

static void
on_async_cancelled (GCancellable *cancellable,
                    gpointer      data)
{
  AsyncOp *op = data;
  DvtGateCore *core = op->waiter.core;
  DvtGateWaiter *completions = NULL;
  GSource *timer;
  GTask *task;
  DvtForkGate gate;

  if (!waiter_claim (&op->waiter, WAITER_ABANDONED))
    return;
  dvt_fault_point ();

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  task = g_steal_pointer (&op->task);
  g_mutex_lock (&core->lock);
  if (op->waiter.linked)
    list_remove_locked (core, &op->waiter);
  timer = g_steal_pointer (&op->timer);
  dvt_gate_core_kick_locked (core, &completions);
  g_mutex_unlock (&core->lock);
  dvt_gate_core_complete (completions);

  if (timer != NULL)
    {
      g_source_destroy (timer);
      g_source_unref (timer);
    }

  /* The cancellable is cancelled: GTask calls back from a later
   * iteration, never from here. */
  g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s",
                           _("The wait to enter the gate was cancelled"));
  DVT_CALLOUT (g_object_unref (task));
  dvt_fork_gate_leave (gate);
}

void
dvt_gate_core_enter_async (DvtGateCore         *core,
                           int                  priority,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data,
                           gpointer             source_tag)
{
  DvtGateWaiter *completions = NULL;
  GTask *task;
  AsyncOp *op;
  gulong handler;
  DvtForkGate gate;

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  task = g_task_new (core->owner, cancellable, callback, user_data);
  g_task_set_source_tag (task, source_tag);
  /* The waiter's claim decides whether a cancellation ends the call: a
   * wait that was admitted enters even if the cancellable fires
   * meanwhile, so that the admission is never lost. */
  g_task_set_check_cancellable (task, FALSE);

  op = g_new0 (AsyncOp, 1);
  g_atomic_ref_count_init (&op->ref_count);
  op->owner = g_object_ref (core->owner);
  op->waiter.core = core;
  op->waiter.op = op;
  op->waiter.priority = priority;
  op->waiter.wake_at = -1;
  g_task_set_task_data (task, op, op_release);

  if (g_cancellable_is_cancelled (cancellable))
    {
      DVT_CALLOUT (g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s",
                                            _("The wait to enter the gate was cancelled")));
      goto out;
    }

  op->task = g_object_ref (task);
  op->context = g_main_context_ref_thread_default ();

  /* No one else knows the op yet: it needs no claim. */
  g_mutex_lock (&core->lock);
  if (enter_now_locked (core))
    {
      op->waiter.state = WAITER_DONE;
      wake_locked (&op->waiter, &completions);
      g_mutex_unlock (&core->lock);
      dvt_gate_core_complete (completions);
      goto out;
    }
  if (cancellable == NULL)
    {
      list_insert_locked (core, &op->waiter);
      dvt_gate_core_kick_locked (core, &completions);
      g_mutex_unlock (&core->lock);
      dvt_gate_core_complete (completions);
      goto out;
    }
  g_mutex_unlock (&core->lock);

  /* The handler may run at once, here, or on another thread as soon as it
   * is connected: from here on, the op is claimed before it is done. */
  op->cancellable = g_object_ref (cancellable);
  g_atomic_ref_count_inc (&op->ref_count);
  handler = g_cancellable_connect (cancellable, G_CALLBACK (on_async_cancelled), op, op_unref);
  __atomic_store_n (&op->handler, handler, __ATOMIC_RELEASE);

  g_mutex_lock (&core->lock);
  if (waiter_get_state (&op->waiter) == WAITER_WAITING)
    list_insert_locked (core, &op->waiter);
  dvt_gate_core_kick_locked (core, &completions);
  g_mutex_unlock (&core->lock);
  dvt_gate_core_complete (completions);

out:
  DVT_CALLOUT (g_object_unref (task));
  dvt_fork_gate_leave (gate);
}

gboolean
dvt_gate_core_enter_finish (DvtGateCore   *core,
                            GAsyncResult  *result,
                            gpointer       source_tag,
                            GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, core->owner), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == source_tag, FALSE);

  op_disconnect (g_task_get_task_data (G_TASK (result)));
  return g_task_propagate_boolean (G_TASK (result), error);
}
