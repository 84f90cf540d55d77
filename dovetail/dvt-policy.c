/* dvt-policy.c: timeouts, retries with back-off, and the rate limit
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gi18n-lib.h>

#include "dvt-error.h"
#include "dvt-options-private.h"
#include "dvt-runtime-private.h"
#include "dvt-task-private.h"
#include "dvt-thread-private.h"

/* Every wait here is a timer on the runtime's loop thread: no thread
 * sleeps. A task's timers are stored in its extra under its event lock
 * and destroyed when it ends, so that none outlives its task (a timer
 * holds a reference, and a forgotten one would keep the runtime alive). */

#define USEC(seconds) ((gint64) ((seconds) * G_USEC_PER_SEC))

/* ---- policy ------------------------------------------------------------ */

DvtPolicy *
dvt_policy_ref (DvtPolicy *policy)
{
  g_atomic_int_inc (&policy->ref_count);
  return policy;
}

void
dvt_policy_unref (DvtPolicy *policy)
{
  if (!g_atomic_int_dec_and_test (&policy->ref_count))
    return;

  g_clear_pointer (&policy->filter, dvt_retry_filter_closure_unref);
  g_free (policy);
}

static double
pick (double from_options,
      double from_runtime)
{
  return from_options >= 0 ? from_options : from_runtime;
}

/* The timeout and retries of one call (for a map: of each item). */
DvtPolicy *
dvt_policy_resolve (DvtRuntime *runtime,
                    DvtOptions *options)
{
  DvtPolicy *policy;
  double timeout = runtime->timeout;
  int retries = (int) runtime->retries;

  if (options != NULL)
    {
      timeout = pick (dvt_options_get_timeout (options), timeout);
      if (dvt_options_get_retries (options) >= 0)
        retries = dvt_options_get_retries (options);
    }

  if (timeout <= 0 && retries <= 0)
    return NULL;

  policy = g_new0 (DvtPolicy, 1);
  policy->ref_count = 1;
  policy->timeout = timeout > 0 ? MAX (1, USEC (timeout)) : 0;
  policy->retries = (guint) MAX (retries, 0);
  policy->backoff = USEC (runtime->retry_backoff);
  policy->max_delay = USEC (runtime->retry_max_delay);
  policy->jitter = runtime->retry_jitter;
  if (options != NULL)
    {
      DvtRetryFilterClosure *filter = dvt_options_get_retry_filter_closure (options);

      policy->backoff = USEC (pick (dvt_options_get_retry_backoff (options),
                                    runtime->retry_backoff));
      policy->max_delay = USEC (pick (dvt_options_get_retry_max_delay (options),
                                      runtime->retry_max_delay));
      policy->jitter = pick (dvt_options_get_retry_jitter (options), runtime->retry_jitter);
      if (filter != NULL)
        policy->filter = dvt_retry_filter_closure_ref (filter);
    }

  return policy;
}

/* A whole batch's deadline: a timeout, never retried. */
DvtPolicy *
dvt_policy_new_deadline (double deadline)
{
  DvtPolicy *policy;

  if (deadline <= 0)
    return NULL;

  policy = g_new0 (DvtPolicy, 1);
  policy->ref_count = 1;
  policy->timeout = MAX (1, USEC (deadline));

  return policy;
}

void
dvt_task_set_policy (DvtTask   *task,
                     DvtPolicy *policy)
{
  DvtTaskExtra *extra = dvt_task_extra (task);

  g_assert (extra->policy == NULL);
  extra->policy = dvt_policy_ref (policy);
  /* A timeout cancels the work's cancellable: the work needs one. */
  if (policy->timeout > 0)
    dvt_task_set_flag (task, DVT_TASK_FLAG_WANTS_CANCELLABLE);
}

/* ---- timers ------------------------------------------------------------ */

/* A timer's hold on its task, dropped by GLib after the timer. */
static void
timer_unref_task (gpointer task)
{
  DvtGate gate = dvt_fork_gate_enter (DVT_GATE_PURE);

  dvt_task_unref_gated (task);
  dvt_fork_gate_leave (gate);
}

/* Attaches a timer that calls @func (@task) on the loop thread after
 * @delay µs and stores it in *@slot, unless the task has ended. */
static void
arm_timer (DvtTask      *task,
           GSource     **slot,
           gint64        delay,
           GSourceFunc   func)
{
  GSource *source;
  guint ms = (guint) MIN ((MAX (delay, 0) + 999) / 1000, G_MAXUINT);

  source = g_timeout_source_new (ms);
  g_source_set_callback (source, func, g_object_ref (task), timer_unref_task);
  g_source_set_static_name (source, "[dovetail] task timer");

  /* Before the state is read: see dvt_task_stop_timers(). */
  dvt_task_set_flag (task, DVT_TASK_FLAG_TIMED);
  g_mutex_lock (dvt_event_lock (task));
  if (dvt_task_get_state (task) == DVT_TASK_COMPLETED)
    {
      g_mutex_unlock (dvt_event_lock (task));
      g_source_unref (source);
      return;
    }
  g_assert (*slot == NULL);
  *slot = source;
  g_source_attach (source, dvt_task_core (task)->context);
  g_mutex_unlock (dvt_event_lock (task));
}

/* In a timer's callback: forgets the stored timer. */
static void
disarm_timer (DvtTask  *task,
              GSource **slot)
{
  GSource *source;

  g_mutex_lock (dvt_event_lock (task));
  source = g_steal_pointer (slot);
  g_mutex_unlock (dvt_event_lock (task));

  if (source != NULL)
    g_source_unref (source);
}

/* Once the task has ended: no timer of it fires any more. */
void
dvt_task_stop_timers (DvtTask *task)
{
  GSource *sources[2];

  /* The task has ended: a timer armed after this reads the flag unset
   * would have seen it ended, and armed nothing. */
  if (!dvt_task_has_flag (task, DVT_TASK_FLAG_TIMED))
    return;

  g_mutex_lock (dvt_event_lock (task));
  sources[0] = g_steal_pointer (&task->extra->timeout_source);
  sources[1] = g_steal_pointer (&task->extra->wait_source);
  g_mutex_unlock (dvt_event_lock (task));

  for (guint i = 0; i < G_N_ELEMENTS (sources); i++)
    if (sources[i] != NULL)
      {
        g_source_destroy (sources[i]);
        g_source_unref (sources[i]);
      }
}

/* Ends @task as timed out after @timeout µs, unless it has ended. */
void
dvt_task_expire (DvtTask *task,
                 gint64   timeout)
{
  dvt_task_set_flag (task, DVT_TASK_FLAG_EXPIRED);
  dvt_task_end_by_runtime (task,
                           g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                        task->kind == DVT_TASK_KIND_BATCH
                                          ? _("The call did not finish within its deadline of %g seconds")
                                          : _("The task timed out after %g seconds"),
                                        (double) timeout / G_USEC_PER_SEC));
}

static gboolean
on_timeout (gpointer data)
{
  DvtTask *task = data;
  DvtGate gate = dvt_fork_gate_enter (DVT_GATE_PURE);

  disarm_timer (task, &task->extra->timeout_source);
  dvt_task_expire (task, task->extra->policy->timeout);
  dvt_fork_gate_leave (gate);

  return G_SOURCE_REMOVE;
}

/* Starts the clock of a task that has a timeout: from now to its end. */
void
dvt_task_arm_timeout (DvtTask *task,
                      gint64   timeout)
{
  if (timeout <= 0)
    return;

  /* The timer holds the task: a function that has not completed its task
   * when it returns is then not the only other holder. */
  if (task->internal_refs != 0)
    task->internal_refs++;
  arm_timer (task, &task->extra->timeout_source, timeout, on_timeout);
}

/* ---- retries ----------------------------------------------------------- */

/* Whether a failed attempt of @task is tried again. */
gboolean
dvt_task_should_retry (DvtTask      *task,
                       const GError *error)
{
  DvtPolicy *policy = DVT_TASK_EXTRA (task, policy, NULL);

  if (policy == NULL || task->attempt > policy->retries)
    return FALSE;

  if (policy->filter != NULL)
    {
      gboolean retry;

      DVT_APP_CALL (retry = policy->filter->func (task, error, policy->filter->data));
      return retry;
    }

  return !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
         !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) &&
         !g_error_matches (error, DVT_ERROR, DVT_ERROR_CLOSED);
}

/* The delay before retry @n (1-based): base·2^(n−1), jittered, capped. */
static gint64
retry_delay (DvtPolicy *policy,
             guint      n)
{
  double delay = (double) policy->backoff * (double) (G_GUINT64_CONSTANT (1) << MIN (n - 1, 62));

  if (policy->jitter > 0)
    delay *= 1.0 + policy->jitter * g_random_double_range (-1.0, 1.0);
  if (policy->max_delay >= 0 && delay > (double) policy->max_delay)
    delay = (double) policy->max_delay;

  return (gint64) MAX (delay, 0);
}

static gboolean
on_retry_due (gpointer data)
{
  DvtTask *task = data;
  DvtGate gate = dvt_fork_gate_enter (DVT_GATE_PURE);

  disarm_timer (task, &task->extra->wait_source);

  /* The function runs again: its data must not be freed meanwhile. */
  dvt_task_unset_flag (task, DVT_TASK_FLAG_FUNC_DONE);
  if (!g_atomic_int_compare_and_exchange (&task->state, DVT_TASK_RETRYING, DVT_TASK_QUEUED))
    {
      dvt_task_set_flag (task, DVT_TASK_FLAG_FUNC_DONE);
      dvt_task_release_item (task);
      dvt_fork_gate_leave (gate);
      return G_SOURCE_REMOVE;  /* it ended during the back-off */
    }

  task->attempt++;
  dvt_task_start_attempt (task);
  dvt_fork_gate_leave (gate);

  return G_SOURCE_REMOVE;
}

/* Once the failed attempt's function has returned: waits out the
 * back-off on a timer, then starts the next attempt. */
void
dvt_task_schedule_retry (DvtTask *task)
{
  gint64 delay = retry_delay (task->extra->policy, task->attempt);

  dvt_task_unset_flag (task, DVT_TASK_FLAG_RETRY_PENDING);
  dvt_task_emit (task, DVT_EVENT_RETRY, task->extra->last_error,
                   (double) delay / G_USEC_PER_SEC);
  arm_timer (task, &task->extra->wait_source, delay, on_retry_due);
}

/* ---- the rate limit ---------------------------------------------------- */

void
dvt_core_set_rate (DvtCore *core,
                   double   rate,
                   guint    burst)
{
  g_mutex_lock (&core->rate_lock);
  if (rate > 0)
    {
      if (burst == 0)
        burst = (guint) MAX (1.0, MIN (rate, (double) G_MAXUINT));
      /* At most one start per 30 years or so: no overflow below. */
      gint64 interval = (gint64) CLAMP (G_USEC_PER_SEC / rate, 1, 1e15);

      core->rate_tolerance = (gint64) MIN ((double) interval * (burst - 1), 1e15);
      core->rate_tat = 0;
      /* Read without the lock to tell whether there is a limit at all. */
      __atomic_store_n (&core->rate_interval, interval, __ATOMIC_RELAXED);
    }
  else
    __atomic_store_n (&core->rate_interval, 0, __ATOMIC_RELAXED);
  g_mutex_unlock (&core->rate_lock);
}

/* Reserves the next start: returns how long to wait for it (µs), 0 when
 * it may start now. A generic cell rate algorithm: a start is allowed at
 * the theoretical arrival time less the burst tolerance. */
gint64
dvt_core_reserve_start (DvtCore *core)
{
  gint64 now, at, wait, interval;

  if (G_LIKELY (__atomic_load_n (&core->rate_interval, __ATOMIC_RELAXED) == 0))
    return 0;

  now = g_get_monotonic_time ();
  g_mutex_lock (&core->rate_lock);
  interval = __atomic_load_n (&core->rate_interval, __ATOMIC_RELAXED);
  if (interval == 0)
    {
      g_mutex_unlock (&core->rate_lock);
      return 0;
    }
  at = MAX (core->rate_tat, now);
  wait = MAX (0, at - core->rate_tolerance - now);
  core->rate_tat = MIN (at, G_MAXINT64 / 2) + interval;
  g_mutex_unlock (&core->rate_lock);

  return wait;
}

static gboolean
on_throttle_done (gpointer data)
{
  DvtTask *task = data;
  DvtGate gate = dvt_fork_gate_enter (DVT_GATE_PURE);

  disarm_timer (task, &task->extra->wait_source);
  if (dvt_task_get_state (task) == DVT_TASK_QUEUED)
    dvt_task_push_attempt (task);
  dvt_fork_gate_leave (gate);

  return G_SOURCE_REMOVE;
}

/* Holds a queued attempt back for @wait µs. */
void
dvt_task_throttle (DvtTask *task,
                   gint64   wait)
{
  DVT_COUNTER_ADD (&dvt_task_core (task)->n_throttled, 1);
  dvt_task_extra (task);
  dvt_task_emit (task, DVT_EVENT_THROTTLED, NULL, (double) wait / G_USEC_PER_SEC);
  arm_timer (task, &task->extra->wait_source, wait, on_throttle_done);
}
