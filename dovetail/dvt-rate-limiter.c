/* dvt-rate-limiter.c: at most N entries in any sliding window
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <math.h>

#include <glib/gi18n-lib.h>

#include "dvt-error-private.h"
#include "dvt-gate-core-private.h"
#include "dvt-rate-limiter-private.h"
#include "dvt-gate.h"

/**
 * DvtRateLimiter:
 *
 * A sliding-window rate limiter: at most [property@RateLimiter:limit]
 * entries in any window of [property@RateLimiter:period] seconds. It is a
 * [iface@Gate], usable around any code (one object per resource), and
 * with [method@Options.add_gate] around the tasks of a runtime.
 *
 * The limiter keeps the times of the last `limit` admissions: entrant
 * N + 1 is admitted as soon as the first of them is `period` seconds old,
 * never earlier, never later. This is not a token bucket: there is no
 * burst beyond the limit, and the window slides with each admission.
 * Waiters are admitted first come, first served, blocking and async
 * alike; an async waiter waits on a timer on its own main context.
 *
 * Leaving does not admit anyone (the window does): call
 * [method@Gate.leave] once per entry all the same, so that code written
 * for any gate works with a limiter.
 *
 * Since: 0.3
 */

struct _DvtRateLimiter
{
  GObject      parent_instance;

  guint        limit;
  double       period;
  gint64       period_us;

  /* Under the core's lock: the times of the last admissions, a ring of
   * @limit entries from @start. */
  gint64      *times;
  guint        start;
  guint        count;
  gint64       undo_time;    /* what the last admission overwrote */
  gboolean     undo_rotated;
  GArray      *log;          /* for tests */

  DvtGateCore  core;
};

enum
{
  PROP_0,
  PROP_LIMIT,
  PROP_PERIOD,
  PROP_N_WAITING,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void dvt_rate_limiter_gate_iface_init (DvtGateInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (DvtRateLimiter, dvt_rate_limiter, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (DVT_TYPE_GATE,
                                                      dvt_rate_limiter_gate_iface_init))

#define LIMITER_OF_CORE(c) \
  ((DvtRateLimiter *) G_STRUCT_MEMBER_P ((c), -G_STRUCT_OFFSET (DvtRateLimiter, core)))

/* ---- the core's view ------------------------------------------------------- */

static gboolean
admit_locked (DvtGateCore *core,
              gint64       now)
{
  DvtRateLimiter *self = LIMITER_OF_CORE (core);

  if (self->count < self->limit)
    {
      self->times[(self->start + self->count) % self->limit] = now;
      self->count++;
      self->undo_rotated = FALSE;
    }
  else if (now - self->times[self->start] >= self->period_us)
    {
      self->undo_time = self->times[self->start];
      self->times[self->start] = now;
      self->start = (self->start + 1) % self->limit;
      self->undo_rotated = TRUE;
    }
  else
    return FALSE;

  if (G_UNLIKELY (self->log != NULL))
    g_array_append_val (self->log, now);
  return TRUE;
}

static void
unadmit_locked (DvtGateCore *core)
{
  DvtRateLimiter *self = LIMITER_OF_CORE (core);

  if (self->undo_rotated)
    {
      self->start = (self->start + self->limit - 1) % self->limit;
      self->times[self->start] = self->undo_time;
    }
  else
    self->count--;

  if (G_UNLIKELY (self->log != NULL))
    g_array_set_size (self->log, self->log->len - 1);
}

static gint64
next_time_locked (DvtGateCore *core,
                  gint64       now)
{
  DvtRateLimiter *self = LIMITER_OF_CORE (core);

  if (self->count < self->limit)
    return now;

  return self->times[self->start] + self->period_us;
}

static const DvtGateCoreClass limiter_core_class = {
  .admit_locked = admit_locked,
  .unadmit_locked = unadmit_locked,
  .next_time_locked = next_time_locked,
  .waiters_changed_locked = NULL,
  .counts_inside = TRUE,
};

void
dvt_rate_limiter_set_admission_log (gpointer  limiter,
                                    GArray   *log)
{
  DvtRateLimiter *self = limiter;

  g_mutex_lock (&self->core.lock);
  self->log = log;
  g_mutex_unlock (&self->core.lock);
}

/* ---- the gate ------------------------------------------------------------------ */

static gboolean
limiter_try_enter (DvtGate *gate)
{
  return dvt_gate_core_try_enter (&DVT_RATE_LIMITER (gate)->core);
}

static gboolean
limiter_enter_blocking (DvtGate       *gate,
                        double         timeout,
                        GCancellable  *cancellable,
                        GError       **error)
{
  return dvt_gate_core_enter_blocking (&DVT_RATE_LIMITER (gate)->core, 0, timeout,
                                       cancellable, error);
}

static void
limiter_enter_async (DvtGate             *gate,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  dvt_gate_core_enter_async (&DVT_RATE_LIMITER (gate)->core, 0, cancellable, callback,
                             user_data, limiter_enter_async);
}

static gboolean
limiter_enter_finish (DvtGate       *gate,
                      GAsyncResult  *result,
                      GError       **error)
{
  return dvt_gate_core_enter_finish (&DVT_RATE_LIMITER (gate)->core, result,
                                     limiter_enter_async, error);
}

static void
limiter_leave (DvtGate *gate)
{
  dvt_gate_core_leave (&DVT_RATE_LIMITER (gate)->core, "dvt_gate_leave");
}

static void
dvt_rate_limiter_gate_iface_init (DvtGateInterface *iface)
{
  iface->try_enter = limiter_try_enter;
  iface->enter_blocking_timeout = limiter_enter_blocking;
  iface->enter_async = limiter_enter_async;
  iface->enter_finish = limiter_enter_finish;
  iface->leave = limiter_leave;
}

/* ---- the GObject ----------------------------------------------------------- */

static void
dvt_rate_limiter_constructed (GObject *object)
{
  DvtRateLimiter *self = DVT_RATE_LIMITER (object);

  G_OBJECT_CLASS (dvt_rate_limiter_parent_class)->constructed (object);

  self->period_us = MAX (1, (gint64) (self->period * G_USEC_PER_SEC));
  self->times = g_new0 (gint64, self->limit);
}

static void
dvt_rate_limiter_finalize (GObject *object)
{
  DvtRateLimiter *self = DVT_RATE_LIMITER (object);

  dvt_gate_core_clear (&self->core);
  g_free (self->times);

  G_OBJECT_CLASS (dvt_rate_limiter_parent_class)->finalize (object);
}

static void
dvt_rate_limiter_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  DvtRateLimiter *self = DVT_RATE_LIMITER (object);

  switch (prop_id)
    {
    case PROP_LIMIT:
      g_value_set_uint (value, self->limit);
      break;
    case PROP_PERIOD:
      g_value_set_double (value, self->period);
      break;
    case PROP_N_WAITING:
      g_value_set_uint (value, dvt_rate_limiter_get_n_waiting (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_rate_limiter_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  DvtRateLimiter *self = DVT_RATE_LIMITER (object);

  switch (prop_id)
    {
    case PROP_LIMIT:
      self->limit = g_value_get_uint (value);
      break;
    case PROP_PERIOD:
      self->period = g_value_get_double (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

/* A century: longer periods are refused. */
#define MAX_PERIOD (100.0 * 365 * 24 * 3600)

static void
dvt_rate_limiter_class_init (DvtRateLimiterClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = dvt_rate_limiter_constructed;
  object_class->finalize = dvt_rate_limiter_finalize;
  object_class->get_property = dvt_rate_limiter_get_property;
  object_class->set_property = dvt_rate_limiter_set_property;

  /**
   * DvtRateLimiter:limit:
   *
   * The most entries in any window of [property@RateLimiter:period]
   * seconds: at least 1.
   *
   * Since: 0.3
   */
  properties[PROP_LIMIT] =
    g_param_spec_uint ("limit", NULL, NULL,
                       1, 1 << 24, 1,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtRateLimiter:period:
   *
   * The length of the sliding window, in seconds: more than 0.
   *
   * Since: 0.3
   */
  properties[PROP_PERIOD] =
    g_param_spec_double ("period", NULL, NULL,
                         1e-6, MAX_PERIOD, 1.0,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtRateLimiter:n-waiting:
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
dvt_rate_limiter_init (DvtRateLimiter *self)
{
  dvt_gate_core_init (&self->core, &limiter_core_class, G_OBJECT (self), TRUE);
}

/**
 * dvt_rate_limiter_new:
 * @limit: the most entries in any window; at least 1
 * @period: the window, in seconds; more than 0
 * @error: return location for a #GError
 *
 * Creates a sliding-window rate limiter.
 *
 * Returns: (transfer full) (nullable): a new limiter, or %NULL with
 *   %DVT_ERROR_INVALID_ARGUMENT if @limit is 0 (or more than 2^24) or
 *   @period is not more than 0 (or not a number, or more than a century)
 *
 * Since: 0.3
 */
DvtRateLimiter *
dvt_rate_limiter_new (guint    limit,
                      double   period,
                      GError **error)
{
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (limit < 1 || limit > 1 << 24 || !(period >= 1e-6 && period <= MAX_PERIOD))
    {
      g_set_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                   /* Translators: %u: the limit asked for; %g: the period. */
                   _("A rate limiter needs a limit of at least 1 entry and a "
                     "period of more than 0 seconds (got %u in %g seconds)"),
                   limit, period);
      return NULL;
    }

  return g_object_new (DVT_TYPE_RATE_LIMITER, "limit", limit, "period", period, NULL);
}

/**
 * dvt_rate_limiter_get_limit:
 * @limiter: a rate limiter
 *
 * Gets [property@RateLimiter:limit].
 *
 * Returns: the most entries in any window
 *
 * Since: 0.3
 */
guint
dvt_rate_limiter_get_limit (DvtRateLimiter *limiter)
{
  g_return_val_if_fail (DVT_IS_RATE_LIMITER (limiter), 0);

  return limiter->limit;
}

/**
 * dvt_rate_limiter_get_period:
 * @limiter: a rate limiter
 *
 * Gets [property@RateLimiter:period].
 *
 * Returns: the window, in seconds
 *
 * Since: 0.3
 */
double
dvt_rate_limiter_get_period (DvtRateLimiter *limiter)
{
  g_return_val_if_fail (DVT_IS_RATE_LIMITER (limiter), 0);

  return limiter->period;
}

/**
 * dvt_rate_limiter_get_n_waiting:
 * @limiter: a rate limiter
 *
 * Gets how many entrants wait, blocking or async.
 *
 * Returns: the number of waiting entrants
 *
 * Since: 0.3
 */
guint
dvt_rate_limiter_get_n_waiting (DvtRateLimiter *limiter)
{
  g_return_val_if_fail (DVT_IS_RATE_LIMITER (limiter), 0);

  return dvt_gate_core_get_n_waiting (&limiter->core);
}
