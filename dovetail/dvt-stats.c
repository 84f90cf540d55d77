/* dvt-stats.c: a snapshot of a runtime's counters
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-stats-private.h"

G_DEFINE_BOXED_TYPE (DvtStats, dvt_stats, dvt_stats_copy, dvt_stats_free)

/**
 * dvt_stats_copy:
 * @stats: counters
 *
 * Copies @stats.
 *
 * Returns: (transfer full): a copy
 */
DvtStats *
dvt_stats_copy (const DvtStats *stats)
{
  DvtStats *copy;

  g_return_val_if_fail (stats != NULL, NULL);

  copy = g_memdup2 (stats, sizeof *stats);
  if (copy->counters != NULL)
    g_hash_table_ref (copy->counters);

  return copy;
}

/**
 * dvt_stats_free:
 * @stats: counters
 *
 * Frees @stats.
 */
void
dvt_stats_free (DvtStats *stats)
{
  if (stats == NULL)
    return;
  g_clear_pointer (&stats->counters, g_hash_table_unref);
  g_free (stats);
}

/**
 * dvt_stats_get_counter:
 * @stats: counters
 * @name: the name given to dvt_runtime_inc_stat()
 *
 * Reads a counter of the application's own.
 *
 * Returns: its value when the snapshot was taken; 0 if it was never
 *   increased
 */
gint64
dvt_stats_get_counter (const DvtStats *stats,
                       const char     *name)
{
  gint64 *value;

  g_return_val_if_fail (stats != NULL, 0);
  g_return_val_if_fail (name != NULL, 0);

  if (stats->counters == NULL)
    return 0;
  value = g_hash_table_lookup (stats->counters, name);

  return value != NULL ? *value : 0;
}

/* g_ptr_array_sort () passes pointers to the elements. */
static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return g_strcmp0 (*(char * const *) a, *(char * const *) b);
}

/**
 * dvt_stats_get_counter_names:
 * @stats: counters
 *
 * Lists the counters of the application's own, in alphabetical order.
 *
 * Returns: (transfer full) (array zero-terminated=1): the names
 */
char **
dvt_stats_get_counter_names (const DvtStats *stats)
{
  GPtrArray *names;
  GHashTableIter iter;
  gpointer key;

  g_return_val_if_fail (stats != NULL, NULL);

  names = g_ptr_array_new ();
  if (stats->counters != NULL)
    {
      g_hash_table_iter_init (&iter, stats->counters);
      while (g_hash_table_iter_next (&iter, &key, NULL))
        g_ptr_array_add (names, g_strdup (key));
    }
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);

  return (char **) g_ptr_array_free (names, FALSE);
}

/* ---- histograms -------------------------------------------------------- */

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

