/* dvt-semaphore.c: at most N inside at once, waiters by priority
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gi18n-lib.h>

#include "dvt-error-private.h"
#include "dvt-gate-core-private.h"
#include "dvt-semaphore-private.h"
#include "dvt-gate-private.h"
#include "dvt-gate.h"
#include "dvt-thread-private.h"

/**
 * DvtSemaphore:
 *
 * A counting semaphore shared by threads and main loops: at most
 * [property@Semaphore:value] entrants inside at once. It is a [iface@Gate]:
 * enter with [method@Gate.enter_blocking] or [method@Gate.enter_async],
 * leave with [method@Gate.leave].
 *
 * Waiters with a lower priority number go first
 * ([method@Semaphore.enter_with_priority_blocking],
 * [method@Semaphore.enter_with_priority_async]; the plain calls wait with
 * priority 0), first come, first served among equal priorities, whether
 * they block or wait from a main loop. A permit that is given back while
 * entrants wait goes straight to the first of them: a newcomer never
 * passes a waiter. The check for a free permit and the taking of it are
 * one atomic step, so two threads never take the same permit.
 *
 * An entry and a leave without contention are one atomic instruction
 * each; only a wait takes a lock.
 *
 * Leaving more times than entered is reported with a critical warning
 * and ignored: the semaphore never holds more than its value.
 *
 * Since: 0.3
 */

/* The state word: the free permits, shifted left by one, and bit 0 set
 * while entrants wait. A leave that finds the bit clear gives its permit
 * back with one compare-and-swap; one that finds it set takes the lock
 * and hands the permit to the first waiter. A waiter sets the bit under
 * the lock as it joins the list, then looks for a free permit again, so
 * that a leave is never missed. A newcomer takes a permit without the
 * lock only while the bit is clear: it never passes a waiter. */
#define WAITERS 1
#define PERMIT  2

struct _DvtSemaphore
{
  GObject     parent_instance;

  int         word;    /* atomic: see above */
  guint       value;
  DvtGateCore core;
};

enum
{
  PROP_0,
  PROP_VALUE,
  PROP_AVAILABLE,
  PROP_N_WAITING,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void dvt_semaphore_gate_iface_init (DvtGateInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (DvtSemaphore, dvt_semaphore, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (DVT_TYPE_GATE,
                                                      dvt_semaphore_gate_iface_init))

#define SEMAPHORE_OF_CORE(c) \
  ((DvtSemaphore *) G_STRUCT_MEMBER_P ((c), -G_STRUCT_OFFSET (DvtSemaphore, core)))

/* ---- the core's view ------------------------------------------------------- */

static gboolean
admit_locked (DvtGateCore *core,
              gint64       now)
{
  DvtSemaphore *self = SEMAPHORE_OF_CORE (core);
  int word = g_atomic_int_get (&self->word);

  do
    {
      if (word < PERMIT)
        return FALSE;
    }
  while (!g_atomic_int_compare_and_exchange_full (&self->word, word, word - PERMIT, &word));

  return TRUE;
}

static void
unadmit_locked (DvtGateCore *core)
{
  g_atomic_int_add (&SEMAPHORE_OF_CORE (core)->word, PERMIT);
}

static void
waiters_changed_locked (DvtGateCore *core,
                        gboolean     has_waiters)
{
  DvtSemaphore *self = SEMAPHORE_OF_CORE (core);

  if (has_waiters)
    g_atomic_int_or (&self->word, WAITERS);
  else
    g_atomic_int_and (&self->word, ~(guint) WAITERS);
}

static const DvtGateCoreClass semaphore_core_class = {
  .admit_locked = admit_locked,
  .unadmit_locked = unadmit_locked,
  .next_time_locked = NULL,
  .waiters_changed_locked = waiters_changed_locked,
  .counts_inside = FALSE,
};

/* ---- the gate ------------------------------------------------------------------ */

static inline gboolean
fast_enter (DvtSemaphore *self)
{
  int word = g_atomic_int_get (&self->word);

  while ((word & WAITERS) == 0 && word >= PERMIT)
    {
      if (g_atomic_int_compare_and_exchange_full (&self->word, word, word - PERMIT, &word))
        return TRUE;
    }

  return FALSE;
}

/* The shortcut of the dvt_gate_*() calls (see dvt-gate-private.h). */
static gboolean
shortcut_try_enter (gpointer semaphore)
{
  return fast_enter (semaphore);
}

static gboolean
semaphore_try_enter (DvtGate *gate)
{
  DvtSemaphore *self = DVT_SEMAPHORE (gate);

  return fast_enter (self) || dvt_gate_core_try_enter (&self->core);
}

static gboolean
semaphore_enter_blocking (DvtGate       *gate,
                          double         timeout,
                          GCancellable  *cancellable,
                          GError       **error)
{
  return dvt_semaphore_enter_with_priority_blocking (DVT_SEMAPHORE (gate), 0, timeout,
                                                     cancellable, error);
}

static void
semaphore_enter_async (DvtGate             *gate,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  dvt_semaphore_enter_with_priority_async (DVT_SEMAPHORE (gate), 0, cancellable,
                                           callback, user_data);
}

static gboolean
semaphore_enter_finish (DvtGate       *gate,
                        GAsyncResult  *result,
                        GError       **error)
{
  return dvt_gate_core_enter_finish (&DVT_SEMAPHORE (gate)->core, result,
                                     dvt_semaphore_enter_with_priority_async, error);
}

static void
shortcut_leave (gpointer semaphore)
{
  DvtSemaphore *self = semaphore;
  int word = g_atomic_int_get (&self->word);
  DvtGateWaiter *completions = NULL;
  DvtForkGate fork_gate;

  for (;;)
    {
      if ((guint) (word >> 1) >= self->value)
        goto too_many;
      if (word & WAITERS)
        break;
      if (g_atomic_int_compare_and_exchange_full (&self->word, word, word + PERMIT, &word))
        return;
    }

  /* Entrants wait: the permit goes to the first of them. */
  fork_gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  g_mutex_lock (&self->core.lock);
  word = g_atomic_int_get (&self->word);
  if ((guint) (word >> 1) >= self->value)
    {
      g_mutex_unlock (&self->core.lock);
      dvt_fork_gate_leave (fork_gate);
      goto too_many;
    }
  g_atomic_int_add (&self->word, PERMIT);
  dvt_gate_core_kick_locked (&self->core, &completions);
  g_mutex_unlock (&self->core.lock);
  dvt_gate_core_complete (completions);
  dvt_fork_gate_leave (fork_gate);
  return;

too_many:
  g_critical ("dvt_gate_leave: the semaphore was left more times than it was "
              "entered (all %u permits are free); the extra leave is ignored",
              self->value);
}

static void
semaphore_leave (DvtGate *gate)
{
  shortcut_leave (gate);
}

static void
dvt_semaphore_gate_iface_init (DvtGateInterface *iface)
{
  iface->try_enter = semaphore_try_enter;
  iface->enter_blocking_timeout = semaphore_enter_blocking;
  iface->enter_async = semaphore_enter_async;
  iface->enter_finish = semaphore_enter_finish;
  iface->leave = semaphore_leave;
}

/* ---- the GObject ----------------------------------------------------------- */

static void
dvt_semaphore_finalize (GObject *object)
{
  dvt_gate_core_clear (&DVT_SEMAPHORE (object)->core);

  G_OBJECT_CLASS (dvt_semaphore_parent_class)->finalize (object);
}

static void
dvt_semaphore_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  DvtSemaphore *self = DVT_SEMAPHORE (object);

  switch (prop_id)
    {
    case PROP_VALUE:
      g_value_set_uint (value, self->value);
      break;
    case PROP_AVAILABLE:
      g_value_set_uint (value, dvt_semaphore_get_available (self));
      break;
    case PROP_N_WAITING:
      g_value_set_uint (value, dvt_semaphore_get_n_waiting (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_semaphore_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  DvtSemaphore *self = DVT_SEMAPHORE (object);

  switch (prop_id)
    {
    case PROP_VALUE:
      self->value = g_value_get_uint (value);
      g_atomic_int_set (&self->word, (int) self->value * PERMIT);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_semaphore_class_init (DvtSemaphoreClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  dvt_gate_set_shortcut (klass, shortcut_try_enter, shortcut_leave);
  object_class->finalize = dvt_semaphore_finalize;
  object_class->get_property = dvt_semaphore_get_property;
  object_class->set_property = dvt_semaphore_set_property;

  /**
   * DvtSemaphore:value:
   *
   * How many entrants may be inside at once: at least 1.
   *
   * Since: 0.3
   */
  properties[PROP_VALUE] =
    g_param_spec_uint ("value", NULL, NULL,
                       1, G_MAXINT / PERMIT, 1,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtSemaphore:available:
   *
   * How many permits are free now. It changes with every entry and leave
   * and is never notified: read it when you need it.
   *
   * Since: 0.3
   */
  properties[PROP_AVAILABLE] =
    g_param_spec_uint ("available", NULL, NULL,
                       0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtSemaphore:n-waiting:
   *
   * How many entrants (blocking or async) wait. Never notified.
   *
   * Since: 0.3
   */
  properties[PROP_N_WAITING] =
    g_param_spec_uint ("n-waiting", NULL, NULL,
                       0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
dvt_semaphore_init (DvtSemaphore *self)
{
  dvt_gate_core_init (&self->core, &semaphore_core_class, G_OBJECT (self), TRUE);
}

/**
 * dvt_semaphore_new:
 * @value: how many entrants may be inside at once; at least 1
 *
 * Creates a semaphore with @value free permits.
 *
 * Returns: (transfer full): a new semaphore
 *
 * Since: 0.3
 */
DvtSemaphore *
dvt_semaphore_new (guint value)
{
  g_return_val_if_fail (value >= 1 && value <= G_MAXINT / PERMIT, NULL);

  return g_object_new (DVT_TYPE_SEMAPHORE, "value", value, NULL);
}

/**
 * dvt_semaphore_get_value:
 * @semaphore: a semaphore
 *
 * Gets [property@Semaphore:value].
 *
 * Returns: how many entrants may be inside at once
 *
 * Since: 0.3
 */
guint
dvt_semaphore_get_value (DvtSemaphore *semaphore)
{
  g_return_val_if_fail (DVT_IS_SEMAPHORE (semaphore), 0);

  return semaphore->value;
}

/**
 * dvt_semaphore_get_available:
 * @semaphore: a semaphore
 *
 * Gets how many permits are free. Other threads may change it at once.
 *
 * Returns: the free permits
 *
 * Since: 0.3
 */
guint
dvt_semaphore_get_available (DvtSemaphore *semaphore)
{
  g_return_val_if_fail (DVT_IS_SEMAPHORE (semaphore), 0);

  return (guint) (g_atomic_int_get (&semaphore->word) >> 1);
}

/**
 * dvt_semaphore_get_n_waiting:
 * @semaphore: a semaphore
 *
 * Gets how many entrants wait, blocking or async.
 *
 * Returns: the number of waiting entrants
 *
 * Since: 0.3
 */
guint
dvt_semaphore_get_n_waiting (DvtSemaphore *semaphore)
{
  g_return_val_if_fail (DVT_IS_SEMAPHORE (semaphore), 0);

  return dvt_gate_core_get_n_waiting (&semaphore->core);
}

/**
 * dvt_semaphore_enter_with_priority_blocking:
 * @semaphore: a semaphore
 * @priority: the wait's priority: lower numbers are admitted first
 * @timeout: the longest time to wait, in seconds; 0 or less waits as long
 *   as it takes
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * As [method@Gate.enter_blocking_timeout], with a priority: while
 * entrants wait, the first permit given back goes to the waiter with the
 * lowest @priority, and among equal priorities to the one that came
 * first.
 *
 * Returns: %TRUE once entered (call [method@Gate.leave] later); %FALSE
 *   with %G_IO_ERROR_TIMED_OUT or %G_IO_ERROR_CANCELLED
 *
 * Since: 0.3
 */
gboolean
dvt_semaphore_enter_with_priority_blocking (DvtSemaphore  *semaphore,
                                            int            priority,
                                            double         timeout,
                                            GCancellable  *cancellable,
                                            GError       **error)
{
  dvt_return_val_if_fail_error (DVT_IS_SEMAPHORE (semaphore), FALSE, error);
  dvt_return_val_if_fail_error (cancellable == NULL || G_IS_CANCELLABLE (cancellable),
                                FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (G_LIKELY (fast_enter (semaphore)))
    return TRUE;

  return dvt_gate_core_enter_blocking (&semaphore->core, priority, timeout, cancellable, error);
}

/**
 * dvt_semaphore_enter_with_priority_async:
 * @semaphore: a semaphore
 * @priority: the wait's priority: lower numbers are admitted first
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called on the
 *   thread-default main context of the calling thread once entered, or
 *   the wait failed
 * @user_data: data for @callback
 *
 * As [method@Gate.enter_async], with a priority (see
 * [method@Semaphore.enter_with_priority_blocking]). Finish it with
 * [method@Semaphore.enter_with_priority_finish] (or
 * [method@Gate.enter_finish]).
 *
 * Since: 0.3
 */
void
dvt_semaphore_enter_with_priority_async (DvtSemaphore        *semaphore,
                                         int                  priority,
                                         GCancellable        *cancellable,
                                         GAsyncReadyCallback  callback,
                                         gpointer             user_data)
{
  g_return_if_fail (DVT_IS_SEMAPHORE (semaphore));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  dvt_gate_core_enter_async (&semaphore->core, priority, cancellable, callback, user_data,
                             dvt_semaphore_enter_with_priority_async);
}

/**
 * dvt_semaphore_enter_with_priority_finish:
 * @semaphore: a semaphore
 * @result: the result given to the callback of
 *   [method@Semaphore.enter_with_priority_async]
 * @error: return location for a #GError
 *
 * Finishes [method@Semaphore.enter_with_priority_async], as
 * [method@Gate.enter_finish] does.
 *
 * Returns: %TRUE if entered (call [method@Gate.leave] later); %FALSE with
 *   %G_IO_ERROR_CANCELLED
 *
 * Since: 0.3
 */
gboolean
dvt_semaphore_enter_with_priority_finish (DvtSemaphore  *semaphore,
                                          GAsyncResult  *result,
                                          GError       **error)
{
  dvt_return_val_if_fail_error (DVT_IS_SEMAPHORE (semaphore), FALSE, error);
  dvt_return_val_if_fail_error (G_IS_ASYNC_RESULT (result), FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return semaphore_enter_finish (DVT_GATE (semaphore), result, error);
}

void
dvt_semaphore_set_order_hook (gpointer   semaphore,
                              void     (*hook) (gboolean in_order,
                                                gpointer data),
                              gpointer   data)
{
  DvtSemaphore *self = semaphore;

  g_mutex_lock (&self->core.lock);
  self->core.order_hook = hook;
  self->core.order_hook_data = data;
  g_mutex_unlock (&self->core.lock);
}
