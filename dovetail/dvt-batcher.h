/* dvt-batcher.h: items added from any thread, run in batches
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (DVT_INSIDE) && !defined (DVT_COMPILATION)
# error "Only <dovetail.h> can be included directly."
#endif

#include <gio/gio.h>

#include "dvt-types.h"
#include "dvt-version-macros.h"

G_BEGIN_DECLS

#define DVT_TYPE_BATCHER (dvt_batcher_get_type ())

DVT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DvtBatcher, dvt_batcher, DVT, BATCHER, GObject)

/**
 * DvtBatchFunc:
 * @task: the task of this batch
 * @items: (element-type GValue): the items of the batch, in the order
 *   they were added: a #GPtrArray of #GValue pointers, owned by the
 *   batcher and valid during the call
 * @cancellable: (nullable): cancelled when the batch's task is cancelled
 *   (its timeout, a shutdown that cancels pending work)
 * @user_data: (closure): the data given to dvt_batcher_new()
 * @error: return location for a #GError
 *
 * Handles one batch of a [class@Batcher], on a worker of its runtime, as
 * a [callback@ThreadFunc] does. Returning without an error ends the batch
 * in success (the function may also complete @task itself with a value);
 * setting @error fails it, and a retry (when the batcher's options ask for
 * retries) calls the function again with the same items.
 *
 * Since: 0.2
 */
typedef void (*DvtBatchFunc) (DvtTask       *task,
                              GPtrArray     *items,
                              GCancellable  *cancellable,
                              gpointer       user_data,
                              GError       **error);

DVT_AVAILABLE_IN_ALL
DvtBatcher *dvt_batcher_new           (DvtRuntime          *runtime,
                                       DvtBatchFunc         func,
                                       gpointer             func_data,
                                       GDestroyNotify       func_data_destroy,
                                       int                  max_items,
                                       double               max_wait,
                                       DvtOptions          *options,
                                       GError             **error) G_GNUC_WARN_UNUSED_RESULT;

DVT_AVAILABLE_IN_ALL
guint       dvt_batcher_get_max_items (DvtBatcher          *batcher);
DVT_AVAILABLE_IN_ALL
double      dvt_batcher_get_max_wait  (DvtBatcher          *batcher);
DVT_AVAILABLE_IN_ALL
guint       dvt_batcher_get_n_pending (DvtBatcher          *batcher);
DVT_AVAILABLE_IN_ALL
guint       dvt_batcher_get_n_running (DvtBatcher          *batcher);
DVT_AVAILABLE_IN_ALL
gboolean    dvt_batcher_is_closed     (DvtBatcher          *batcher);

DVT_AVAILABLE_IN_ALL
gboolean    dvt_batcher_add           (DvtBatcher          *batcher,
                                       const GValue        *value,
                                       GError             **error);
DVT_AVAILABLE_IN_ALL
DvtTask    *dvt_batcher_flush         (DvtBatcher          *batcher);

DVT_AVAILABLE_IN_ALL
gboolean    dvt_batcher_close_blocking (DvtBatcher         *batcher,
                                        double              timeout,
                                        GCancellable       *cancellable,
                                        GError            **error);
DVT_AVAILABLE_IN_ALL
void        dvt_batcher_close_async   (DvtBatcher          *batcher,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data);
DVT_AVAILABLE_IN_ALL
gboolean    dvt_batcher_close_finish  (DvtBatcher          *batcher,
                                       GAsyncResult        *result,
                                       GError             **error);

G_END_DECLS
