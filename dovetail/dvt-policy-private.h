/* dvt-policy-private.h: timeouts, retries and the rate limit, decided
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "dvt-options-private.h"

G_BEGIN_DECLS

/* Pure decisions: what a call's options and the runtime's defaults
 * resolve to, whether a failed attempt is tried again and after how long,
 * and when the rate limit lets the next start go. The task layer acts on
 * them (timers, retries, throttling). */

/* A runtime's defaults for calls whose options leave them unset. */
typedef struct
{
  double timeout;          /* seconds; 0: none */
  guint  retries;
  double retry_backoff;
  double retry_max_delay;
  double retry_jitter;
} DvtPolicyDefaults;

/* What a call asked for beyond the plain hand-off: resolved from the
 * options and the runtime's defaults when the call is made, shared by the
 * items of a map. NULL when none of it applies. */
typedef struct
{
  int                    ref_count;
  gint64                 timeout;     /* µs; 0: none */
  guint                  retries;
  gint64                 backoff;     /* µs */
  gint64                 max_delay;   /* µs */
  double                 jitter;
  DvtRetryFilterClosure *filter;
  GPtrArray             *gates;     /* of DvtGate, entered by every attempt; or NULL */
} DvtPolicy;

DvtPolicy *dvt_policy_resolve       (const DvtPolicyDefaults *defaults,
                                     DvtOptions              *options);
DvtPolicy *dvt_policy_new_deadline  (double                   deadline);
DvtPolicy *dvt_policy_ref           (DvtPolicy               *policy);
void       dvt_policy_unref         (DvtPolicy               *policy);
gboolean   dvt_policy_should_retry  (DvtPolicy               *policy,
                                     guint                    attempt,
                                     gpointer                 task,
                                     const GError            *error);
gint64     dvt_policy_retry_delay   (DvtPolicy               *policy,
                                     guint                    attempt);

/* The rate limit on task starts: a token bucket (the generic cell rate
 * algorithm). interval is 0 (read atomically, without the lock) when
 * there is no limit. */
typedef struct
{
  GMutex lock;
  gint64 interval;   /* µs between starts; atomic */
  gint64 tolerance;  /* µs: (burst - 1) intervals */
  gint64 tat;        /* theoretical arrival time */
} DvtRateBucket;

void     dvt_rate_bucket_init    (DvtRateBucket *bucket);
void     dvt_rate_bucket_clear   (DvtRateBucket *bucket);
void     dvt_rate_bucket_set     (DvtRateBucket *bucket,
                                  double         rate,
                                  guint          burst);
gint64   dvt_rate_bucket_reserve (DvtRateBucket *bucket,
                                  gint64         now);

static inline gboolean
dvt_rate_bucket_is_set (DvtRateBucket *bucket)
{
  return __atomic_load_n (&bucket->interval, __ATOMIC_RELAXED) != 0;
}

G_END_DECLS
