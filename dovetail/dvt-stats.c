/* dvt-stats.c: a snapshot of a runtime's counters
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-stats.h"

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

