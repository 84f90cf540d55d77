/* dvt-histogram-private.h: lock-free time histograms
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define DVT_HISTOGRAM_BUCKETS 160

typedef struct
{
  guint64 counts[DVT_HISTOGRAM_BUCKETS];
  gint64  max;
} DvtHistogram;

void dvt_histogram_add  (DvtHistogram *histogram,
                         gint64        usec);
void dvt_histogram_read (DvtHistogram *histogram,
                         double       *out);

G_END_DECLS
