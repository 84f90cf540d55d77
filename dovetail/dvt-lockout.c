/* dvt-lockout.c: nobody enters until a time has passed
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <math.h>

#include <glib/gi18n-lib.h>

#include "dvt-error-private.h"
#include "dvt-gate-core-private.h"
#include "dvt-gate.h"
#include "dvt-thread-private.h"

/**
 * DvtLockout:
 *
 * A gate that holds new entrants off for a while: after a server answered
 * "retry after N seconds", [method@Lockout.lock_for] (N) makes every new
 * entry wait until then. Lockouts add up to the latest one: a shorter
 * lockout during a longer one changes nothing. Entrants already inside
 * are unaffected, and there is no limit on how many are inside at once.
 *
 * A lockout made with [property@Lockout:fifo] admits its waiters in the
 * order they came, and a newcomer never passes a waiter. Without it, an
 * entrant that arrives as a lockout ends may enter before the waiters
 * are woken.
 *
 * It is a [iface@Gate]: enter with [method@Gate.enter_blocking] or
 * [method@Gate.enter_async] (which waits on a timer on the caller's main
 * context), leave with [method@Gate.leave].
 *
 * Since: 0.3
 */

struct _DvtLockout
{
  GObject      parent_instance;

  gboolean     fifo;
  gint64       until;   /* under the core's lock; read atomically */
  DvtGateCore  core;
};

enum
{
  PROP_0,
  PROP_FIFO,
  PROP_N_WAITING,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void dvt_lockout_gate_iface_init (DvtGateInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (DvtLockout, dvt_lockout, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (DVT_TYPE_GATE,
                                                      dvt_lockout_gate_iface_init))

#define LOCKOUT_OF_CORE(c) \
  ((DvtLockout *) G_STRUCT_MEMBER_P ((c), -G_STRUCT_OFFSET (DvtLockout, core)))

/* ---- the core's view ------------------------------------------------------- */

static gboolean
admit_locked (DvtGateCore *core,
              gint64       now)
{
  return now >= LOCKOUT_OF_CORE (core)->until;
}

static gint64
next_time_locked (DvtGateCore *core,
                  gint64       now)
{
  return MAX (LOCKOUT_OF_CORE (core)->until, now);
}

static const DvtGateCoreClass lockout_core_class = {
  .admit_locked = admit_locked,
  .unadmit_locked = NULL,
  .next_time_locked = next_time_locked,
  .waiters_changed_locked = NULL,
  .counts_inside = TRUE,
};

/* ---- the gate ------------------------------------------------------------------ */

static gboolean
lockout_try_enter (DvtGate *gate)
{
  return dvt_gate_core_try_enter (&DVT_LOCKOUT (gate)->core);
}

static gboolean
lockout_enter_blocking (DvtGate       *gate,
                        double         timeout,
                        GCancellable  *cancellable,
                        GError       **error)
{
  return dvt_gate_core_enter_blocking (&DVT_LOCKOUT (gate)->core, 0, timeout,
                                       cancellable, error);
}

static void
lockout_enter_async (DvtGate             *gate,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  dvt_gate_core_enter_async (&DVT_LOCKOUT (gate)->core, 0, cancellable, callback,
                             user_data, lockout_enter_async);
}

static gboolean
lockout_enter_finish (DvtGate       *gate,
                      GAsyncResult  *result,
                      GError       **error)
{
  return dvt_gate_core_enter_finish (&DVT_LOCKOUT (gate)->core, result,
                                     lockout_enter_async, error);
}

static void
lockout_leave (DvtGate *gate)
{
  dvt_gate_core_leave (&DVT_LOCKOUT (gate)->core, "dvt_gate_leave");
}

static void
dvt_lockout_gate_iface_init (DvtGateInterface *iface)
{
  iface->try_enter = lockout_try_enter;
  iface->enter_blocking_timeout = lockout_enter_blocking;
  iface->enter_async = lockout_enter_async;
  iface->enter_finish = lockout_enter_finish;
  iface->leave = lockout_leave;
}

/* ---- the GObject ----------------------------------------------------------- */

static void
dvt_lockout_finalize (GObject *object)
{
  dvt_gate_core_clear (&DVT_LOCKOUT (object)->core);

  G_OBJECT_CLASS (dvt_lockout_parent_class)->finalize (object);
}

static void
dvt_lockout_get_property (GObject    *object,
                          guint       prop_id,
                          GValue     *value,
                          GParamSpec *pspec)
{
  DvtLockout *self = DVT_LOCKOUT (object);

  switch (prop_id)
    {
    case PROP_FIFO:
      g_value_set_boolean (value, self->fifo);
      break;
    case PROP_N_WAITING:
      g_value_set_uint (value, dvt_lockout_get_n_waiting (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_lockout_set_property (GObject      *object,
                          guint         prop_id,
                          const GValue *value,
                          GParamSpec   *pspec)
{
  DvtLockout *self = DVT_LOCKOUT (object);

  switch (prop_id)
    {
    case PROP_FIFO:
      self->fifo = g_value_get_boolean (value);
      self->core.fifo = self->fifo;
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_lockout_class_init (DvtLockoutClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = dvt_lockout_finalize;
  object_class->get_property = dvt_lockout_get_property;
  object_class->set_property = dvt_lockout_set_property;

  /**
   * DvtLockout:fifo:
   *
   * Whether waiters are admitted in the order they came, with no newcomer
   * passing them.
   *
   * Since: 0.3
   */
  properties[PROP_FIFO] =
    g_param_spec_boolean ("fifo", NULL, NULL,
                          FALSE,
                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtLockout:n-waiting:
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
dvt_lockout_init (DvtLockout *self)
{
  dvt_gate_core_init (&self->core, &lockout_core_class, G_OBJECT (self), FALSE);
}

/**
 * dvt_lockout_new:
 * @fifo: whether waiters are admitted in the order they came (see
 *   [property@Lockout:fifo])
 *
 * Creates a lockout, open until [method@Lockout.lock_for] is called.
 *
 * Returns: (transfer full): a new lockout
 *
 * Since: 0.3
 */
DvtLockout *
dvt_lockout_new (gboolean fifo)
{
  return g_object_new (DVT_TYPE_LOCKOUT, "fifo", !!fifo, NULL);
}

/**
 * dvt_lockout_get_fifo:
 * @lockout: a lockout
 *
 * Gets [property@Lockout:fifo].
 *
 * Returns: whether waiters are admitted in the order they came
 *
 * Since: 0.3
 */
gboolean
dvt_lockout_get_fifo (DvtLockout *lockout)
{
  g_return_val_if_fail (DVT_IS_LOCKOUT (lockout), FALSE);

  return lockout->fifo;
}

/* A century: longer lockouts are refused. */
#define MAX_LOCKOUT (100.0 * 365 * 24 * 3600)

/**
 * dvt_lockout_lock_for:
 * @lockout: a lockout
 * @seconds: how long, from now, new entrants wait; 0 changes nothing
 * @error: return location for a #GError
 *
 * Holds new entrants off for @seconds from now, or until the end of a
 * longer lockout already set. Entrants inside are unaffected; waiters
 * wait for the latest lockout to pass. Any thread may call it.
 *
 * Returns: %TRUE if the lockout was set; %FALSE with
 *   %DVT_ERROR_INVALID_ARGUMENT if @seconds is negative, not a number,
 *   infinite or more than a century
 *
 * Since: 0.3
 */
gboolean
dvt_lockout_lock_for (DvtLockout  *lockout,
                      double       seconds,
                      GError     **error)
{
  DvtGateWaiter *completions = NULL;
  gint64 until;
  DvtForkGate gate;

  dvt_return_val_if_fail_error (DVT_IS_LOCKOUT (lockout), FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!(seconds >= 0 && seconds <= MAX_LOCKOUT))
    {
      g_set_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                   /* Translators: %g: the seconds asked for. */
                   _("A lockout lasts from 0 seconds to a century (got %g seconds)"),
                   seconds);
      return FALSE;
    }

  until = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC + 0.999);

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  g_mutex_lock (&lockout->core.lock);
  if (until > lockout->until)
    {
      __atomic_store_n (&lockout->until, until, __ATOMIC_RELAXED);
      /* The head waiter learns the new time. */
      dvt_gate_core_kick_locked (&lockout->core, &completions);
    }
  g_mutex_unlock (&lockout->core.lock);
  dvt_gate_core_complete (completions);
  dvt_fork_gate_leave (gate);

  return TRUE;
}

/**
 * dvt_lockout_get_remaining:
 * @lockout: a lockout
 *
 * Gets how long the current lockout still lasts.
 *
 * Returns: seconds, 0 if new entrants are not held off by the clock
 *
 * Since: 0.3
 */
double
dvt_lockout_get_remaining (DvtLockout *lockout)
{
  gint64 left;

  g_return_val_if_fail (DVT_IS_LOCKOUT (lockout), 0);

  left = __atomic_load_n (&lockout->until, __ATOMIC_RELAXED) - g_get_monotonic_time ();
  return left > 0 ? (double) left / G_USEC_PER_SEC : 0;
}

/**
 * dvt_lockout_get_n_waiting:
 * @lockout: a lockout
 *
 * Gets how many entrants wait, blocking or async.
 *
 * Returns: the number of waiting entrants
 *
 * Since: 0.3
 */
guint
dvt_lockout_get_n_waiting (DvtLockout *lockout)
{
  g_return_val_if_fail (DVT_IS_LOCKOUT (lockout), 0);

  return dvt_gate_core_get_n_waiting (&lockout->core);
}
