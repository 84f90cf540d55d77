/* dvt-gate-core-private.h: the waiting that every gate shares
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

#include "dvt-mailbox-private.h"

G_BEGIN_DECLS

/* A gate's core: a lock and a list of waiters (threads blocked in
 * enter_blocking and main-loop calls of enter_async alike), ordered by
 * priority (lower first), first come first served among equals. The gate
 * says, under the lock, whether one more entrant can be admitted now
 * (admit_locked) and, when it cannot, at what monotonic time the clock
 * alone may let one in (next_time_locked, for the rate limiter and the
 * lockout). The core admits waiters from the head of the list whenever
 * something changed (dvt_gate_core_kick()), and wakes the head waiter at
 * that time: a blocking waiter waits on its condition until then, an
 * async one on a timer on its own main context. No thread sleeps for an
 * async waiter. */

typedef struct _DvtGateCore      DvtGateCore;
typedef struct _DvtGateCoreClass DvtGateCoreClass;
typedef struct _DvtGateWaiter    DvtGateWaiter;

struct _DvtGateCoreClass
{
  /* Admits one entrant at monotonic time @now if it can, and records it. */
  gboolean (*admit_locked)        (DvtGateCore *core,
                                   gint64       now);
  /* Takes back an admission just made by admit_locked(). */
  void     (*unadmit_locked)      (DvtGateCore *core);
  /* When the clock alone may admit one entrant, or -1: never. */
  gint64   (*next_time_locked)    (DvtGateCore *core,
                                   gint64       now);
  /* The list of waiters became non-empty (TRUE) or empty. May be NULL. */
  void     (*waiters_changed_locked) (DvtGateCore *core,
                                      gboolean     has_waiters);
  /* Whether the core counts who is inside (n_inside, for
   * dvt_gate_core_leave()); a semaphore counts its permits instead. */
  gboolean   counts_inside;
};

struct _DvtGateCore
{
  const DvtGateCoreClass *klass;
  GObject        *owner;       /* the gate, not held: a waiter holds it */
  GMutex          lock;
  DvtGateWaiter  *head;
  DvtGateWaiter  *tail;
  guint           n_waiting;   /* under the lock; read atomically */
  guint64         next_seq;
  int             n_inside;    /* atomic: entered and not yet left, if counted */
  gboolean        fifo;        /* a newcomer never passes a waiter */

  /* The async face: the callers' contexts' mailboxes, and an op kept for
   * the next call (see dvt-async-op-private.h). */
  DvtMailboxTable mailboxes;
  struct _DvtAsyncOp *spare_op;

  /* For tests: called under the lock for each waiter admitted from the
   * list, with whether it came before every waiter still waiting (lower
   * priority, or equal and earlier). */
  void          (*order_hook) (gboolean in_order,
                               gpointer data);
  gpointer        order_hook_data;
};

void     dvt_gate_core_init           (DvtGateCore            *core,
                                       const DvtGateCoreClass *klass,
                                       GObject                *owner,
                                       gboolean                fifo);
void     dvt_gate_core_clear          (DvtGateCore            *core);
gboolean dvt_gate_core_try_enter      (DvtGateCore            *core);
gboolean dvt_gate_core_enter_blocking (DvtGateCore            *core,
                                       int                     priority,
                                       double                  timeout,
                                       GCancellable           *cancellable,
                                       GError                **error);
void     dvt_gate_core_enter_async    (DvtGateCore            *core,
                                       int                     priority,
                                       GCancellable           *cancellable,
                                       GAsyncReadyCallback     callback,
                                       gpointer                user_data,
                                       gpointer                source_tag);
gboolean dvt_gate_core_enter_finish   (DvtGateCore            *core,
                                       GAsyncResult           *result,
                                       gpointer                source_tag,
                                       GError                **error);
void     dvt_gate_core_kick           (DvtGateCore            *core);
void     dvt_gate_core_kick_locked    (DvtGateCore            *core,
                                       DvtGateWaiter         **completions);
void     dvt_gate_core_complete       (DvtGateWaiter          *completions);
gboolean dvt_gate_core_leave          (DvtGateCore            *core,
                                       const char             *function);

static inline guint
dvt_gate_core_get_n_waiting (DvtGateCore *core)
{
  return (guint) g_atomic_int_get (&core->n_waiting);
}

G_END_DECLS
