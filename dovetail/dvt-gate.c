/* dvt-gate.c: anything that admits entrants
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gi18n-lib.h>

#include "dvt-error-private.h"
#include "dvt-gate-core-private.h"
#include "dvt-gate-private.h"
#include "dvt-gate.h"

/**
 * DvtGate:
 *
 * Anything that admits entrants: a [class@Semaphore] (at most N inside at
 * once), a [class@RateLimiter] (at most N entries in any window of a
 * period), a [class@Lockout] (nobody enters until a time has passed).
 *
 * A gate is shared by threads and main loops at once. A thread enters
 * with [method@Gate.enter_blocking] (or [method@Gate.enter_blocking_timeout]),
 * main-loop code with [method@Gate.enter_async] and
 * [method@Gate.enter_finish], whose callback runs on the caller's
 * thread-default main context; a wait from a main loop waits on a timer or
 * a wait list there and holds no thread. [method@Gate.try_enter] enters
 * only if it can at once. Every successful enter is matched by one
 * [method@Gate.leave].
 *
 * [method@Options.add_gate] makes every attempt of a task enter a gate
 * before its work starts, and leave it when the attempt ends.
 *
 * ```c
 * g_autoptr(DvtSemaphore) semaphore = dvt_semaphore_new (3);
 *
 * if (dvt_gate_enter_blocking (DVT_GATE (semaphore), NULL, &error))
 *   {
 *     use_the_resource ();
 *     dvt_gate_leave (DVT_GATE (semaphore));
 *   }
 * ```
 *
 * Since: 0.3
 */

G_DEFINE_INTERFACE (DvtGate, dvt_gate, G_TYPE_OBJECT)

/* See dvt_gate_set_shortcut(): set once, before any instance of the
 * class exists, and only read after that. */
static struct
{
  gpointer   klass;
  gboolean (*try_enter) (gpointer gate);
  void     (*leave)     (gpointer gate);
} shortcut;

void
dvt_gate_set_shortcut (gpointer   klass,
                       gboolean (*try_enter) (gpointer gate),
                       void     (*leave)     (gpointer gate))
{
  g_return_if_fail (klass != NULL && try_enter != NULL && leave != NULL);
  g_return_if_fail (shortcut.klass == NULL);

  shortcut.try_enter = try_enter;
  shortcut.leave = leave;
  shortcut.klass = klass;
}

static inline gboolean
has_shortcut (gpointer gate)
{
  return gate != NULL && ((GTypeInstance *) gate)->g_class == shortcut.klass;
}

static gboolean
dvt_gate_real_try_enter (DvtGate *gate)
{
  return FALSE;
}

static void
dvt_gate_default_init (DvtGateInterface *iface)
{
  iface->try_enter = dvt_gate_real_try_enter;
}

/**
 * dvt_gate_try_enter:
 * @gate: a gate
 *
 * Enters @gate if it admits an entrant at once, without waiting, from any
 * thread (a main loop's included). A gate with waiters never lets a
 * newcomer pass them (except a [class@Lockout] made without FIFO
 * admission).
 *
 * Returns: %TRUE if entered: call [method@Gate.leave] later
 *
 * Since: 0.3
 */
gboolean
dvt_gate_try_enter (DvtGate *gate)
{
  g_return_val_if_fail (DVT_IS_GATE (gate), FALSE);

  return DVT_GATE_GET_IFACE (gate)->try_enter (gate);
}

/**
 * dvt_gate_enter_blocking:
 * @gate: a gate
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Waits until @gate admits this thread, and enters. Waiting entrants,
 * blocking or async, are admitted in the gate's order (first come, first
 * served; by priority, then first come, for a [class@Semaphore]). A wait
 * cancelled at the instant it is admitted either enters (the admission
 * came first) or leaves the admission to the next waiter: none is lost.
 *
 * Do not call it on a thread that runs a main loop: use
 * [method@Gate.enter_async] there.
 *
 * Returns: %TRUE once entered (call [method@Gate.leave] later); %FALSE
 *   with %G_IO_ERROR_CANCELLED
 *
 * Since: 0.3
 */
gboolean
dvt_gate_enter_blocking (DvtGate       *gate,
                         GCancellable  *cancellable,
                         GError       **error)
{
  if (G_LIKELY (has_shortcut (gate)) && shortcut.try_enter (gate))
    return TRUE;

  return dvt_gate_enter_blocking_timeout (gate, 0, cancellable, error);
}

/**
 * dvt_gate_enter_blocking_timeout:
 * @gate: a gate
 * @timeout: the longest time to wait, in seconds; 0 or less (or NaN, or
 *   more than a century, infinity included) waits as long as it takes
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * As [method@Gate.enter_blocking], waiting at most @timeout seconds.
 *
 * Returns: %TRUE once entered (call [method@Gate.leave] later); %FALSE
 *   with %G_IO_ERROR_TIMED_OUT or %G_IO_ERROR_CANCELLED
 *
 * Since: 0.3
 */
gboolean
dvt_gate_enter_blocking_timeout (DvtGate       *gate,
                                 double         timeout,
                                 GCancellable  *cancellable,
                                 GError       **error)
{
  if (G_LIKELY (has_shortcut (gate)) && shortcut.try_enter (gate))
    return TRUE;

  dvt_return_val_if_fail_error (DVT_IS_GATE (gate), FALSE, error);
  dvt_return_val_if_fail_error (cancellable == NULL || G_IS_CANCELLABLE (cancellable),
                                FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return DVT_GATE_GET_IFACE (gate)->enter_blocking_timeout (gate, timeout, cancellable, error);
}

/**
 * dvt_gate_enter_async:
 * @gate: a gate
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called on the
 *   thread-default main context of the calling thread once entered, or
 *   the wait failed
 * @user_data: data for @callback
 *
 * Waits until @gate admits the caller without blocking, and enters: the
 * main-loop twin of [method@Gate.enter_blocking], in line with the
 * blocking waiters. The wait holds no thread: it waits on the gate's wait
 * list and, where the clock decides, on a timer on the caller's
 * thread-default main context. @callback always runs after this call has
 * returned; call [method@Gate.enter_finish] there.
 *
 * A wait admitted before its @cancellable is cancelled enters anyway (its
 * finish returns %TRUE, and the caller leaves as usual); one cancelled
 * first fails with %G_IO_ERROR_CANCELLED and holds nothing.
 *
 * Since: 0.3
 */
void
dvt_gate_enter_async (DvtGate             *gate,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_return_if_fail (DVT_IS_GATE (gate));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  DVT_GATE_GET_IFACE (gate)->enter_async (gate, cancellable, callback, user_data);
}

/**
 * dvt_gate_enter_finish:
 * @gate: a gate
 * @result: the result given to the callback of [method@Gate.enter_async]
 * @error: return location for a #GError
 *
 * Finishes [method@Gate.enter_async] (or
 * [method@Semaphore.enter_with_priority_async]).
 *
 * Returns: %TRUE if entered (call [method@Gate.leave] later); %FALSE with
 *   %G_IO_ERROR_CANCELLED
 *
 * Since: 0.3
 */
gboolean
dvt_gate_enter_finish (DvtGate       *gate,
                       GAsyncResult  *result,
                       GError       **error)
{
  dvt_return_val_if_fail_error (DVT_IS_GATE (gate), FALSE, error);
  dvt_return_val_if_fail_error (G_IS_ASYNC_RESULT (result), FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return DVT_GATE_GET_IFACE (gate)->enter_finish (gate, result, error);
}

/**
 * dvt_gate_leave:
 * @gate: a gate
 *
 * Leaves @gate, once for each successful enter, from any thread. Leaving
 * more times than entered is a programmer's mistake: it is reported with
 * a critical warning and ignored (a semaphore never gains a permit this
 * way).
 *
 * Since: 0.3
 */
void
dvt_gate_leave (DvtGate *gate)
{
  if (G_LIKELY (has_shortcut (gate)))
    {
      shortcut.leave (gate);
      return;
    }

  g_return_if_fail (DVT_IS_GATE (gate));

  DVT_GATE_GET_IFACE (gate)->leave (gate);
}
