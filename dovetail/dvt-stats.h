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
 * @throttled: attempts the rate limit held back
 * @timed_out: tasks that ended because their timeout passed, and maps
 *   past their deadline (also counted in @error)
 * @running: tasks started and not yet ended when the snapshot was taken
 * @pending: tasks accepted and not yet ended when the snapshot was taken
 *
 * A copy of a runtime's counters, taken by dvt_runtime_get_stats(). It
 * does not change afterwards.
 *
 * Every accepted task ends exactly once, so once a runtime is idle
 * @queued equals @done + @error + @cancelled.
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
};

DVT_AVAILABLE_IN_ALL
GType     dvt_stats_get_type (void) G_GNUC_CONST;
DVT_AVAILABLE_IN_ALL
DvtStats *dvt_stats_copy     (const DvtStats *stats);
DVT_AVAILABLE_IN_ALL
void      dvt_stats_free     (DvtStats       *stats);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DvtStats, dvt_stats_free)

G_END_DECLS
