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
  g_return_val_if_fail (stats != NULL, NULL);

  return g_memdup2 (stats, sizeof *stats);
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
  g_free (stats);
}
