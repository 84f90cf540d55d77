/* dvt-task-gates.c: the gates every attempt of a task enters
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-gate.h"
#include "dvt-task-gates-private.h"
#include "dvt-task-private.h"
#include "dvt-thread-private.h"

/* An attempt of a task with gates (dvt_options_add_gate(), kept in its
 * policy) enters them in order before it is queued for a worker or its
 * main context, and leaves them in reverse order once the attempt is
 * over: its function has returned and the task has ended, or the
 * attempt failed and will be retried.
 *
 * Who holds the entered gates:
 *  - while they are being entered, the entering sequence: first on the
 *    thread that starts the attempt (dvt_gate_try_enter(), no wait), then,
 *    if a gate makes it wait, on the runtime's loop thread through
 *    dvt_gate_enter_async() with a cancellable of its own, which the
 *    task's end cancels (dvt_task_gates_ended()). No worker waits. A
 *    sequence that finds the task ended leaves what it entered;
 *  - once all are entered, the attempt: DVT_TASK_FLAG_GATES_HELD is set
 *    before the attempt is queued, and whoever clears it leaves them
 *    (dvt_task_release_gates()): a retry, or the end of the task once
 *    its function is done (dvt_task_gates_check_over()).
 *
 * A wait holds the runtime from being idle (a waiting shutdown then
 * drains it like queued work) and counts as throttled. */

static void
leave_entered (DvtTask *task)
{
  GPtrArray *gates = task->extra->policy->gates;
  guint n = task->extra->gates_entered;

  task->extra->gates_entered = 0;
  while (n-- > 0)
    DVT_APP_CALL (dvt_gate_leave (g_ptr_array_index (gates, n)));
}

/* Leaves the gates of the attempt, if it holds them. */
void
dvt_task_release_gates (DvtTask *task)
{
  if (!(g_atomic_int_and (&task->flags, ~(guint) DVT_TASK_FLAG_GATES_HELD) &
        DVT_TASK_FLAG_GATES_HELD))
    return;

  leave_entered (task);
}

/* Called where a task may have ended with its function done: leaves the
 * gates then. */
void
dvt_task_gates_check_over (DvtTask *task)
{
  if (G_LIKELY (!dvt_task_has_flag (task, DVT_TASK_FLAG_GATES_HELD)))
    return;

  if (dvt_task_get_state (task) == DVT_TASK_COMPLETED &&
      dvt_task_has_flag (task, DVT_TASK_FLAG_FUNC_DONE))
    dvt_task_release_gates (task);
}

/* The task has ended: a gate wait stops, and gates held by an attempt
 * whose function is done are left. */
void
dvt_task_gates_ended (DvtTask *task)
{
  GCancellable *cancellable = NULL;

  if (dvt_task_has_flag (task, DVT_TASK_FLAG_GATE_WAIT))
    {
      g_mutex_lock (dvt_stripe_lock (task));
      cancellable = g_steal_pointer (&task->extra->gate_cancellable);
      g_mutex_unlock (dvt_stripe_lock (task));
      if (cancellable != NULL)
        DVT_CALLOUT (g_cancellable_cancel (cancellable);
                     g_object_unref (cancellable));
    }

  dvt_task_gates_check_over (task);
}

/* ---- the wait, on the loop thread ----------------------------------------------- */

static void wait_continue (DvtTask *task);

/* The sequence is over: the runtime may be idle, the task go. */
static void
wait_done (DvtTask *task)
{
  DvtCore *core = dvt_task_core (task);

  g_mutex_lock (dvt_stripe_lock (task));
  g_clear_object (&task->extra->gate_cancellable);
  g_mutex_unlock (dvt_stripe_lock (task));
  dvt_task_unset_flag (task, DVT_TASK_FLAG_GATE_WAIT);

  dvt_core_ref (core);
  dvt_task_unref_gated (task);
  dvt_core_release_idle (core);
  dvt_core_unref (core);
}

static void
on_gate_entered (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  DvtTask *task = user_data;
  GError *error = NULL;
  gboolean entered;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  DVT_APP_CALL (entered = dvt_gate_enter_finish (DVT_GATE (source), result, &error));
  if (entered)
    {
      task->extra->gates_entered++;
      wait_continue (task);
    }
  else
    {
      leave_entered (task);
      /* A gate that failed by itself fails the task; one cancelled by the
       * task's end has nothing to add. */
      if (dvt_task_get_state (task) == DVT_TASK_QUEUED)
        dvt_task_fail (task, error, TRUE);
      else
        g_error_free (error);
      wait_done (task);
    }
  dvt_fork_gate_leave (gate);
}

/* Enters the gates left, from the loop thread, until one makes it wait. */
static void
wait_continue (DvtTask *task)
{
  GPtrArray *gates = task->extra->policy->gates;

  while (task->extra->gates_entered < gates->len)
    {
      DvtGate *gate = g_ptr_array_index (gates, task->extra->gates_entered);
      GCancellable *cancellable;
      gboolean entered;

      if (dvt_task_get_state (task) != DVT_TASK_QUEUED)
        {
          leave_entered (task);
          wait_done (task);
          return;
        }

      DVT_APP_CALL (entered = dvt_gate_try_enter (gate));
      if (entered)
        {
          task->extra->gates_entered++;
          continue;
        }

      g_mutex_lock (dvt_stripe_lock (task));
      cancellable = task->extra->gate_cancellable != NULL
        ? g_object_ref (task->extra->gate_cancellable) : NULL;
      g_mutex_unlock (dvt_stripe_lock (task));
      if (cancellable == NULL)
        {
          /* Ended meanwhile: its end took the cancellable. */
          leave_entered (task);
          wait_done (task);
          return;
        }

      /* The callback comes on the runtime's context, which this (the loop)
       * thread runs: make sure it is the thread-default one here. */
      g_main_context_push_thread_default (dvt_task_core (task)->context);
      DVT_APP_CALL (dvt_gate_enter_async (gate, cancellable, on_gate_entered, task));
      g_main_context_pop_thread_default (dvt_task_core (task)->context);
      g_object_unref (cancellable);
      return;
    }

  /* All entered: the attempt holds them from here on. */
  dvt_task_set_flag (task, DVT_TASK_FLAG_GATES_HELD);
  if (dvt_task_get_state (task) == DVT_TASK_QUEUED)
    {
      g_object_ref (task);
      wait_done (task);
      dvt_task_start_admitted (task);
      dvt_task_unref_gated (task);
    }
  else
    {
      dvt_task_release_gates (task);
      wait_done (task);
    }
}

static gboolean
wait_start (gpointer data)
{
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  wait_continue (data);
  dvt_fork_gate_leave (gate);

  return G_SOURCE_REMOVE;
}

/* Enters the gates of the starting attempt of @task: TRUE if all were
 * entered at once, FALSE if the attempt waits for one (it then starts
 * through dvt_task_start_admitted() once admitted, from the loop
 * thread), or the task has ended. */
gboolean
dvt_task_enter_gates (DvtTask *task)
{
  DvtTaskExtra *extra = task->extra;
  GPtrArray *gates = extra->policy->gates;
  DvtCore *core = dvt_task_core (task);
  gboolean entered = TRUE;
  GCancellable *cancellable;
  GSource *source;

  extra->gates_entered = 0;
  while (extra->gates_entered < gates->len)
    {
      DVT_APP_CALL (entered = dvt_gate_try_enter (g_ptr_array_index (gates,
                                                                     extra->gates_entered)));
      if (!entered)
        break;
      extra->gates_entered++;
    }
  if (entered)
    {
      dvt_task_set_flag (task, DVT_TASK_FLAG_GATES_HELD);
      return TRUE;
    }

  /* A gate makes the attempt wait: on the loop thread, holding no worker. */
  DVT_COUNTER_ADD (&core->n_throttled, 1);
  dvt_task_emit (task, DVT_EVENT_THROTTLED, NULL, 0);

  cancellable = g_cancellable_new ();
  /* Before the state is read: see dvt_task_gates_ended(). */
  dvt_task_set_flag (task, DVT_TASK_FLAG_GATE_WAIT);
  g_mutex_lock (dvt_stripe_lock (task));
  if (dvt_task_get_state (task) == DVT_TASK_COMPLETED)
    {
      g_mutex_unlock (dvt_stripe_lock (task));
      g_object_unref (cancellable);
      dvt_task_unset_flag (task, DVT_TASK_FLAG_GATE_WAIT);
      leave_entered (task);
      return FALSE;
    }
  g_clear_object (&extra->gate_cancellable);
  extra->gate_cancellable = cancellable;
  g_mutex_unlock (dvt_stripe_lock (task));

  dvt_core_hold_idle (core);
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, wait_start, g_object_ref (task), NULL);
  g_source_set_static_name (source, "[dovetail] gate wait");
  g_source_attach (source, core->context);
  g_source_unref (source);

  return FALSE;
}
