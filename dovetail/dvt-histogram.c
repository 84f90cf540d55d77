/* dvt-histogram.c: lock-free time histograms
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-histogram-private.h"

/* Bucket of @usec: exact below 4, then four buckets per power of two. */
static guint
bucket_of (gint64 usec)
{
  guint e, sub;

  if (usec < 4)
    return (guint) MAX (usec, 0);

  e = 63 - (guint) __builtin_clzll ((unsigned long long) usec);
  sub = (guint) (usec >> (e - 2)) & 3;

  return MIN (4 * (e - 1) + sub, DVT_HISTOGRAM_BUCKETS - 1);
}

/* The middle of bucket @i, in microseconds. */
static double
bucket_value (guint i)
{
  guint e, sub;

  if (i < 4)
    return i;

  e = i / 4 + 1;
  sub = i % 4;

  return (double) ((gint64) (4 + sub) << (e - 2)) + (double) ((gint64) 1 << (e - 2)) / 2;
}

/* Adds one time: no lock, two relaxed atomic operations (and a few more
 * for a new maximum). */
void
dvt_histogram_add (DvtHistogram *histogram,
                   gint64        usec)
{
  gint64 max = __atomic_load_n (&histogram->max, __ATOMIC_RELAXED);

  __atomic_fetch_add (&histogram->counts[bucket_of (usec)], 1, __ATOMIC_RELAXED);
  while (usec > max &&
         !__atomic_compare_exchange_n (&histogram->max, &max, usec, TRUE,
                                       __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    ;
}

/* The 50th, 90th and 99th percentiles and the maximum, in seconds. */
void
dvt_histogram_read (DvtHistogram *histogram,
                    double       *out)
{
  static const double ranks[3] = { 0.50, 0.90, 0.99 };
  guint64 counts[DVT_HISTOGRAM_BUCKETS];
  guint64 total = 0;
  double max = (double) __atomic_load_n (&histogram->max, __ATOMIC_RELAXED);

  for (guint i = 0; i < DVT_HISTOGRAM_BUCKETS; i++)
    total += counts[i] = __atomic_load_n (&histogram->counts[i], __ATOMIC_RELAXED);

  for (guint r = 0; r < G_N_ELEMENTS (ranks); r++)
    {
      guint64 target = (guint64) (ranks[r] * (double) total + 0.999999);
      guint64 seen = 0;
      double value = 0;

      for (guint i = 0; i < DVT_HISTOGRAM_BUCKETS && total > 0; i++)
        {
          seen += counts[i];
          if (seen >= MAX (target, 1))
            {
              value = MIN (bucket_value (i), max);
              break;
            }
        }
      out[r] = value / G_USEC_PER_SEC;
    }
  out[3] = max / G_USEC_PER_SEC;
}
