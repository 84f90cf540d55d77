/* dvt-policy.c: timeouts, retries and the rate limit, decided
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-error.h"
#include "dvt-policy-private.h"
#include "dvt-thread-private.h"

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
  g_clear_pointer (&policy->gates, g_ptr_array_unref);
  g_free (policy);
}

static double
pick (double from_options,
      double from_defaults)
{
  return from_options >= 0 ? from_options : from_defaults;
}

static gpointer
ref_object (gconstpointer object,
            gpointer      data)
{
  return g_object_ref ((gpointer) object);
}

/* The timeout and retries of one call (for a map: of each item). */
DvtPolicy *
dvt_policy_resolve (const DvtPolicyDefaults *defaults,
                    DvtOptions              *options)
{
  DvtPolicy *policy;
  double timeout = defaults->timeout;
  int retries = (int) defaults->retries;
  GPtrArray *gates = NULL;

  if (options != NULL)
    {
      timeout = pick (dvt_options_get_timeout (options), timeout);
      if (dvt_options_get_retries (options) >= 0)
        retries = dvt_options_get_retries (options);
      gates = dvt_options_get_gates (options);
    }

  if (timeout <= 0 && retries <= 0 && gates == NULL)
    return NULL;

  policy = g_new0 (DvtPolicy, 1);
  policy->ref_count = 1;
  policy->timeout = timeout > 0 ? MAX (1, USEC (timeout)) : 0;
  policy->retries = (guint) MAX (retries, 0);
  policy->backoff = USEC (defaults->retry_backoff);
  policy->max_delay = USEC (defaults->retry_max_delay);
  policy->jitter = defaults->retry_jitter;
  if (options != NULL)
    {
      DvtRetryFilterClosure *filter = dvt_options_get_retry_filter_closure (options);

      policy->backoff = USEC (pick (dvt_options_get_retry_backoff (options),
                                    defaults->retry_backoff));
      policy->max_delay = USEC (pick (dvt_options_get_retry_max_delay (options),
                                      defaults->retry_max_delay));
      policy->jitter = pick (dvt_options_get_retry_jitter (options), defaults->retry_jitter);
      if (filter != NULL)
        policy->filter = dvt_retry_filter_closure_ref (filter);
      /* A copy: the options may gain gates later, for later calls. */
      if (gates != NULL)
        {
          policy->gates = g_ptr_array_copy (gates, ref_object, NULL);
          g_ptr_array_set_free_func (policy->gates, g_object_unref);
        }
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

/* ---- retries ----------------------------------------------------------- */

/* Whether attempt @attempt of @task, which failed with @error, is tried
 * again: within the retries, and as the filter (called with @task) says,
 * or by default for every error but a cancellation, a timeout or a closed
 * runtime. */
gboolean
dvt_policy_should_retry (DvtPolicy    *policy,
                         guint         attempt,
                         gpointer      task,
                         const GError *error)
{
  if (policy == NULL || attempt > policy->retries)
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
gint64
dvt_policy_retry_delay (DvtPolicy *policy,
                        guint      n)
{
  double delay = (double) policy->backoff * (double) (G_GUINT64_CONSTANT (1) << MIN (n - 1, 62));

  if (policy->jitter > 0)
    delay *= 1.0 + policy->jitter * g_random_double_range (-1.0, 1.0);
  if (policy->max_delay >= 0 && delay > (double) policy->max_delay)
    delay = (double) policy->max_delay;

  return (gint64) MAX (delay, 0);
}

/* ---- the rate limit ---------------------------------------------------- */

void
dvt_rate_bucket_init (DvtRateBucket *bucket)
{
  memset (bucket, 0, sizeof *bucket);
  g_mutex_init (&bucket->lock);
}

void
dvt_rate_bucket_clear (DvtRateBucket *bucket)
{
  g_mutex_clear (&bucket->lock);
}

/* At most @burst starts at once (0: max (1, @rate)), then @rate per
 * second; a @rate of 0 or less removes the limit. */
void
dvt_rate_bucket_set (DvtRateBucket *bucket,
                     double         rate,
                     guint          burst)
{
  g_mutex_lock (&bucket->lock);
  if (rate > 0)
    {
      /* At most one start per 30 years or so: no overflow below. */
      gint64 interval = (gint64) CLAMP (G_USEC_PER_SEC / rate, 1, 1e15);

      if (burst == 0)
        burst = (guint) MAX (1.0, MIN (rate, (double) G_MAXUINT));
      bucket->tolerance = (gint64) MIN ((double) interval * (burst - 1), 1e15);
      bucket->tat = 0;
      /* Read without the lock to tell whether there is a limit at all. */
      __atomic_store_n (&bucket->interval, interval, __ATOMIC_RELAXED);
    }
  else
    __atomic_store_n (&bucket->interval, 0, __ATOMIC_RELAXED);
  g_mutex_unlock (&bucket->lock);
}

/* Reserves the next start at monotonic time @now: returns how long to
 * wait for it (µs), 0 when it may start now. A start is allowed at the
 * theoretical arrival time less the burst tolerance. */
gint64
dvt_rate_bucket_reserve (DvtRateBucket *bucket,
                         gint64         now)
{
  gint64 at, wait, interval;

  if (G_LIKELY (!dvt_rate_bucket_is_set (bucket)))
    return 0;

  g_mutex_lock (&bucket->lock);
  interval = __atomic_load_n (&bucket->interval, __ATOMIC_RELAXED);
  if (interval == 0)
    {
      g_mutex_unlock (&bucket->lock);
      return 0;
    }
  at = MAX (bucket->tat, now);
  wait = MAX (0, at - bucket->tolerance - now);
  bucket->tat = MIN (at, G_MAXINT64 / 2) + interval;
  g_mutex_unlock (&bucket->lock);

  return wait;
}
