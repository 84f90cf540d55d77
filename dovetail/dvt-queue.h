/* dvt-queue.h: one queue with a blocking face and a main-loop face
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (DVT_INSIDE) && !defined (DVT_COMPILATION)
# error "Only <dovetail.h> can be included directly."
#endif

#include <gio/gio.h>

#include "dvt-version-macros.h"

G_BEGIN_DECLS

/**
 * DvtQueueOrder:
 * @DVT_QUEUE_ORDER_FIFO: first in, first out
 * @DVT_QUEUE_ORDER_LIFO: last in, first out
 * @DVT_QUEUE_ORDER_PRIORITY: the lowest priority value first; first in,
 *   first out among equal priorities
 *
 * The order in which a [class@Queue] hands out its items.
 *
 * Since: 0.2
 */
typedef enum
{
  DVT_QUEUE_ORDER_FIFO,
  DVT_QUEUE_ORDER_LIFO,
  DVT_QUEUE_ORDER_PRIORITY,
} DvtQueueOrder;

#define DVT_TYPE_QUEUE (dvt_queue_get_type ())

DVT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DvtQueue, dvt_queue, DVT, QUEUE, GObject)

DVT_AVAILABLE_IN_ALL
DvtQueue      *dvt_queue_new                   (DvtQueueOrder        order,
                                                guint                max_size) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
DvtQueueOrder  dvt_queue_get_order             (DvtQueue            *queue);
DVT_AVAILABLE_IN_ALL
guint          dvt_queue_get_max_size          (DvtQueue            *queue);
DVT_AVAILABLE_IN_ALL
guint          dvt_queue_get_n_items           (DvtQueue            *queue);
DVT_AVAILABLE_IN_ALL
guint          dvt_queue_get_n_waiting_pushers (DvtQueue            *queue);
DVT_AVAILABLE_IN_ALL
guint          dvt_queue_get_n_waiting_poppers (DvtQueue            *queue);
DVT_AVAILABLE_IN_ALL
gboolean       dvt_queue_is_closed             (DvtQueue            *queue);
DVT_AVAILABLE_IN_ALL
void           dvt_queue_close                 (DvtQueue            *queue);

/* Values: the face for language bindings (and C code that wants GValues). */
DVT_AVAILABLE_IN_ALL
gboolean       dvt_queue_push_blocking         (DvtQueue            *queue,
                                                const GValue        *value,
                                                int                  priority,
                                                double               timeout,
                                                GCancellable        *cancellable,
                                                GError             **error);
DVT_AVAILABLE_IN_ALL
gboolean       dvt_queue_pop_blocking          (DvtQueue            *queue,
                                                double               timeout,
                                                GCancellable        *cancellable,
                                                GValue              *value,
                                                GError             **error);
DVT_AVAILABLE_IN_ALL
gboolean       dvt_queue_try_push              (DvtQueue            *queue,
                                                const GValue        *value,
                                                int                  priority,
                                                GError             **error);
DVT_AVAILABLE_IN_ALL
gboolean       dvt_queue_try_pop               (DvtQueue            *queue,
                                                GValue              *value,
                                                GError             **error);
DVT_AVAILABLE_IN_ALL
void           dvt_queue_push_async            (DvtQueue            *queue,
                                                const GValue        *value,
                                                int                  priority,
                                                GCancellable        *cancellable,
                                                GAsyncReadyCallback  callback,
                                                gpointer             user_data);
DVT_AVAILABLE_IN_ALL
gboolean       dvt_queue_push_finish           (DvtQueue            *queue,
                                                GAsyncResult        *result,
                                                GError             **error);
DVT_AVAILABLE_IN_ALL
void           dvt_queue_pop_async             (DvtQueue            *queue,
                                                GCancellable        *cancellable,
                                                GAsyncReadyCallback  callback,
                                                gpointer             user_data);
DVT_AVAILABLE_IN_ALL
gboolean       dvt_queue_pop_finish            (DvtQueue            *queue,
                                                GAsyncResult        *result,
                                                GValue              *value,
                                                GError             **error);

/* Pointers with a destroy function: the face for C. */
DVT_AVAILABLE_IN_ALL
gboolean       dvt_queue_push_pointer_blocking (DvtQueue            *queue,
                                                gpointer             data,
                                                GDestroyNotify       destroy,
                                                int                  priority,
                                                double               timeout,
                                                GCancellable        *cancellable,
                                                GError             **error);
DVT_AVAILABLE_IN_ALL
gpointer       dvt_queue_pop_pointer_blocking  (DvtQueue            *queue,
                                                double               timeout,
                                                GCancellable        *cancellable,
                                                GError             **error);
DVT_AVAILABLE_IN_ALL
gboolean       dvt_queue_try_push_pointer      (DvtQueue            *queue,
                                                gpointer             data,
                                                GDestroyNotify       destroy,
                                                int                  priority,
                                                GError             **error);
DVT_AVAILABLE_IN_ALL
gpointer       dvt_queue_try_pop_pointer       (DvtQueue            *queue,
                                                GError             **error);
DVT_AVAILABLE_IN_ALL
void           dvt_queue_push_pointer_async    (DvtQueue            *queue,
                                                gpointer             data,
                                                GDestroyNotify       destroy,
                                                int                  priority,
                                                GCancellable        *cancellable,
                                                GAsyncReadyCallback  callback,
                                                gpointer             user_data);
DVT_AVAILABLE_IN_ALL
gpointer       dvt_queue_pop_pointer_finish    (DvtQueue            *queue,
                                                GAsyncResult        *result,
                                                GError             **error);

G_END_DECLS
