/* dvt-stats.h: a snapshot of a runtime's counters
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (DVT_INSIDE) && !defined (DVT_COMPILATION)
# error "Only <dovetail.h> can be included directly."
#endif

#include <glib-object.h>

#include "dvt-version-macros.h"

G_BEGIN_DECLS

#define DVT_TYPE_STATS (dvt_stats_get_type ())

typedef struct _DvtStats DvtStats;

/**
 * DvtStats:
 * @queued: calls accepted (each task and each map counts once; a gather
 *   waits for tasks already counted and adds none)
 * @started: attempts started
 * @done: tasks that ended in success
 * @error: tasks that ended in failure
 * @cancelled: tasks that ended cancelled, including those cancelled by
 *   shutdown
 * @retries: attempts that failed and were tried again
 * @throttled: attempts the rate limit or a gate held back
 * @timed_out: tasks that ended because their timeout passed, and maps
 *   past their deadline (also counted in @error)
 * @queue_wait_p50: median time, in seconds, from a task's acceptance (or,
 *   for a timed start, its time: see [property@Options:delay]) to the
 *   start of its first attempt
 * @queue_wait_p90: 90th percentile of the same
 * @queue_wait_p99: 99th percentile of the same
 * @queue_wait_max: the longest
 * @run_time_p50: median time, in seconds, from a task's first start to
 *   its end (every attempt and back-off included)
 * @run_time_p90: 90th percentile of the same
 * @run_time_p99: 99th percentile of the same
 * @run_time_max: the longest
 * @counters: (skip): the counters of dvt_runtime_inc_stat(); read them with
 *   dvt_stats_get_counter()
 * @running: tasks started and not yet ended when the snapshot was taken
 * @pending: tasks accepted and not yet ended when the snapshot was taken
 *
 * A copy of a runtime's counters, taken by dvt_runtime_get_stats(). It
 * does not change afterwards.
 *
 * Every accepted task ends exactly once, so once a runtime is idle
 * @queued equals @done + @error + @cancelled.
 *
 * The times are kept in histograms with four buckets per power of two
 * (microseconds), so a percentile is exact to within about 12%; the
 * maximum is exact. They cover every accepted task (a map is one).
 */
struct _DvtStats
{
  guint64 queued;
  guint64 started;
  guint64 done;
  guint64 error;
  guint64 cancelled;
  guint64 retries;
  guint64 throttled;
  guint64 timed_out;
  guint64 running;
  guint64 pending;

  double  queue_wait_p50;
  double  queue_wait_p90;
  double  queue_wait_p99;
  double  queue_wait_max;
  double  run_time_p50;
  double  run_time_p90;
  double  run_time_p99;
  double  run_time_max;

  GHashTable *counters;
};

DVT_AVAILABLE_IN_ALL
GType     dvt_stats_get_type (void) G_GNUC_CONST;
DVT_AVAILABLE_IN_ALL
DvtStats *dvt_stats_copy     (const DvtStats *stats);
DVT_AVAILABLE_IN_ALL
void      dvt_stats_free     (DvtStats       *stats);
DVT_AVAILABLE_IN_ALL
gint64    dvt_stats_get_counter       (const DvtStats *stats,
                                       const char     *name);
DVT_AVAILABLE_IN_ALL
char    **dvt_stats_get_counter_names (const DvtStats *stats);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DvtStats, dvt_stats_free)

G_END_DECLS
