/* dvt-gate-core.c: the waiting that every gate shares
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gi18n-lib.h>

#include "dvt-async-op-private.h"
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

typedef struct _DvtGateOp DvtGateOp;

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
  DvtGateOp     *op;        /* NULL for a blocking waiter */

  /* A blocking waiter's latch (see latch_set_locked()). */
  int            published; /* atomic */
  gboolean       parked;    /* under the lock */
  GCond          cond;
};

/* One enter_async(), and the GAsyncResult given to its callback: the
 * wait ended admitted if its waiter is DONE, cancelled if ABANDONED. */
struct _DvtGateOp
{
  DvtAsyncOp     parent_instance;
  DvtGateWaiter  waiter;
  GSource       *timer;     /* under the lock: on the caller's context */
};

typedef struct
{
  DvtAsyncOpClass parent_class;
} DvtGateOpClass;

GType dvt_gate_op_get_type (void) G_GNUC_CONST;

G_DEFINE_FINAL_TYPE (DvtGateOp, dvt_gate_op, DVT_TYPE_ASYNC_OP)

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

static gboolean
on_timer (gpointer data)
{
  DvtGateOp *op = data;
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
 * its caller's context (its mailbox's, held until it is delivered). */
static void
arm_timer_locked (DvtGateOp *op,
                  gint64     at,
                  gint64     now)
{
  GSource *source;
  gint64 delay = MAX (at - now, 0);

  if (op->timer != NULL)
    {
      g_source_destroy (op->timer);
      g_source_unref (op->timer);
    }

  source = g_timeout_source_new ((guint) MIN ((delay + 999) / 1000, G_MAXUINT));
  g_source_set_callback (source, on_timer, g_object_ref (op), g_object_unref);
  g_source_set_static_name (source, "[dovetail] gate timer");
  g_source_attach (source, op->parent_instance.mailbox->context);
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
      DvtGateOp *op = waiter->op;
      GSource *timer;

      /* Read first: once completed, the op may be delivered and reused. */
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

      dvt_async_op_complete (&op->parent_instance);
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
  dvt_mailbox_table_init (&core->mailboxes, "[dovetail] gate",
                          DVT_MAILBOX_REENTRANT | DVT_MAILBOX_BATCHES);
}

void
dvt_gate_core_clear (DvtGateCore *core)
{
  /* Every waiter holds the gate, and every async one a mailbox. */
  g_assert (core->head == NULL);
  g_clear_object (&core->spare_op);
  dvt_mailbox_table_clear (&core->mailboxes);
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

/* From the cancellable's handler: a wait that the gate has not admitted
 * yet ends cancelled, and the waiters behind it may now be admitted. */
static void
dvt_gate_op_cancelled (DvtAsyncOp *async_op)
{
  DvtGateOp *op = (DvtGateOp *) async_op;
  DvtGateCore *core = op->waiter.core;
  DvtGateWaiter *completions = NULL;
  GSource *timer;
  DvtForkGate gate;

  if (!waiter_claim (&op->waiter, WAITER_ABANDONED))
    return;
  dvt_fault_point ();

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
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

  /* Delivered in an iteration of the caller's context, never from here. */
  dvt_async_op_complete (async_op);
  dvt_fork_gate_leave (gate);
}

/* A delivered op holds nothing of its own: its timer went when it was
 * admitted or cancelled. */
static void
dvt_gate_op_reset (DvtAsyncOp *async_op)
{
  DvtGateOp *op = (DvtGateOp *) async_op;

  g_assert (op->timer == NULL);
  memset (&op->waiter, 0, sizeof op->waiter);
}

static void
dvt_gate_op_class_init (DvtGateOpClass *klass)
{
  klass->parent_class.cancelled = dvt_gate_op_cancelled;
  klass->parent_class.reset = dvt_gate_op_reset;
}

static void
dvt_gate_op_init (DvtGateOp *op)
{
}

/* The waiter's claim decides whether a cancellation ends the call: a
 * wait that was admitted enters even if the cancellable fires meanwhile,
 * so that the admission is never lost. */
void
dvt_gate_core_enter_async (DvtGateCore         *core,
                           int                  priority,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data,
                           gpointer             source_tag)
{
  DvtGateWaiter *completions = NULL;
  DvtGateOp *op;
  DvtForkGate gate;

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  op = dvt_async_op_new (dvt_gate_op_get_type (), core->owner, &core->mailboxes,
                         &core->spare_op, callback, user_data, source_tag);
  op->waiter.core = core;
  op->waiter.op = op;
  op->waiter.priority = priority;
  op->waiter.wake_at = -1;

  if (g_cancellable_is_cancelled (cancellable))
    {
      op->waiter.state = WAITER_ABANDONED;
      dvt_async_op_complete (&op->parent_instance);
      dvt_fork_gate_leave (gate);
      return;
    }

  /* No one else knows the op yet: it needs no claim. Once it is in the
   * list, or completed, it is not touched again. */
  g_mutex_lock (&core->lock);
  if (enter_now_locked (core))
    {
      op->waiter.state = WAITER_DONE;
      wake_locked (&op->waiter, &completions);
      g_mutex_unlock (&core->lock);
      dvt_gate_core_complete (completions);
      dvt_fork_gate_leave (gate);
      return;
    }
  if (cancellable == NULL)
    {
      list_insert_locked (core, &op->waiter);
      dvt_gate_core_kick_locked (core, &completions);
      g_mutex_unlock (&core->lock);
      dvt_gate_core_complete (completions);
      dvt_fork_gate_leave (gate);
      return;
    }
  g_mutex_unlock (&core->lock);

  /* The handler may run at once, here, or on another thread as soon as it
   * is connected: from here on, the op is claimed before it is done, and
   * held while it is touched. */
  g_object_ref (op);
  dvt_async_op_connect (&op->parent_instance, cancellable);

  g_mutex_lock (&core->lock);
  if (waiter_get_state (&op->waiter) == WAITER_WAITING)
    list_insert_locked (core, &op->waiter);
  dvt_gate_core_kick_locked (core, &completions);
  g_mutex_unlock (&core->lock);
  dvt_gate_core_complete (completions);

  DVT_CALLOUT (g_object_unref (op));
  dvt_fork_gate_leave (gate);
}

gboolean
dvt_gate_core_enter_finish (DvtGateCore   *core,
                            GAsyncResult  *result,
                            gpointer       source_tag,
                            GError       **error)
{
  DvtGateOp *op = dvt_async_op_finish (result, dvt_gate_op_get_type (), core->owner, source_tag);

  g_return_val_if_fail (op != NULL, FALSE);

  if (waiter_get_state (&op->waiter) != WAITER_DONE)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                           _("The wait to enter the gate was cancelled"));
      return FALSE;
    }

  return TRUE;
}
