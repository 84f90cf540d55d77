/* dvt-options-private.h: what the runtime reads from options
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "dvt-options.h"

G_BEGIN_DECLS

/* A retry filter with its data, shared by the tasks that use it. */
typedef struct _DvtRetryFilterClosure
{
  int             ref_count;
  DvtRetryFilter  func;
  gpointer        data;
  GDestroyNotify  destroy;
} DvtRetryFilterClosure;

DvtRetryFilterClosure *dvt_options_get_retry_filter_closure (DvtOptions *self);
DvtRetryFilterClosure *dvt_retry_filter_closure_ref         (DvtRetryFilterClosure *closure);
void                   dvt_retry_filter_closure_unref       (DvtRetryFilterClosure *closure);

gboolean dvt_options_get_schedule (DvtOptions *self,
                                   int        *priority,
                                   gint64     *start_at);

G_END_DECLS
