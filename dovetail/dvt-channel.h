/* dvt-channel.h: a producer on a worker streaming values to a consumer
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

#define DVT_TYPE_CHANNEL (dvt_channel_get_type ())

DVT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DvtChannel, dvt_channel, DVT, CHANNEL, GObject)

/**
 * DvtProduceFunc:
 * @channel: the channel to send the values to
 * @cancellable: (nullable): cancelled when the producer's task is
 *   cancelled (by the cancellable given to dvt_runtime_produce(), its
 *   timeout, or a shutdown that cancels pending work)
 * @user_data: (closure): the data given to dvt_runtime_produce()
 * @error: return location for a #GError
 *
 * A producer: runs on a worker of the runtime and sends values with
 * dvt_channel_send(), which waits while the channel's buffer is full.
 * Returning %TRUE ends the stream; returning %FALSE with @error set ends
 * it with that error, which the consumer receives after the last value.
 *
 * When dvt_channel_send() fails with %DVT_ERROR_CLOSED the consumer has
 * closed the channel (or the runtime was shut down): the producer should
 * return, and may pass that error on; the stream then ends cleanly.
 *
 * Returning %FALSE without setting @error ends the stream with
 * %DVT_ERROR_NOT_COMPLETED: that is also what a binding that refuses to
 * call the function on a worker thread returns (GJS does), so the
 * consumer gets a clear error instead of an empty stream.
 *
 * Returns: %TRUE once every value is sent, %FALSE with @error set on
 *   failure
 *
 * Since: 0.2
 */
typedef gboolean (*DvtProduceFunc) (DvtChannel    *channel,
                                GCancellable  *cancellable,
                                gpointer       user_data,
                                GError       **error);

DVT_AVAILABLE_IN_ALL
DvtChannel *dvt_runtime_produce           (DvtRuntime          *runtime,
                                           DvtProduceFunc       func,
                                           gpointer             func_data,
                                           GDestroyNotify       func_data_destroy,
                                           int                  capacity,
                                           DvtOptions          *options,
                                           GCancellable        *cancellable,
                                           GError             **error) G_GNUC_WARN_UNUSED_RESULT;

DVT_AVAILABLE_IN_ALL
guint       dvt_channel_get_capacity      (DvtChannel          *channel);
DVT_AVAILABLE_IN_ALL
guint       dvt_channel_get_n_items       (DvtChannel          *channel);
DVT_AVAILABLE_IN_ALL
gboolean    dvt_channel_is_closed         (DvtChannel          *channel);
DVT_AVAILABLE_IN_ALL
void        dvt_channel_close             (DvtChannel          *channel,
                                           const char          *reason);

DVT_AVAILABLE_IN_ALL
gboolean    dvt_channel_send              (DvtChannel          *channel,
                                           const GValue        *value,
                                           GCancellable        *cancellable,
                                           GError             **error);

DVT_AVAILABLE_IN_ALL
gboolean    dvt_channel_send_many         (DvtChannel          *channel,
                                           const GValue        *values,
                                           guint                n_values,
                                           guint               *n_sent,
                                           GCancellable        *cancellable,
                                           GError             **error);

DVT_AVAILABLE_IN_ALL
gboolean    dvt_channel_receive_blocking  (DvtChannel          *channel,
                                           double               timeout,
                                           GCancellable        *cancellable,
                                           GValue              *value,
                                           GError             **error);
DVT_AVAILABLE_IN_ALL
gboolean    dvt_channel_try_receive       (DvtChannel          *channel,
                                           GValue              *value,
                                           GError             **error);
DVT_AVAILABLE_IN_ALL
gboolean    dvt_channel_try_receive_many  (DvtChannel          *channel,
                                           guint                max_values,
                                           GArray             **values,
                                           GError             **error);
DVT_AVAILABLE_IN_ALL
void        dvt_channel_receive_async     (DvtChannel          *channel,
                                           GCancellable        *cancellable,
                                           GAsyncReadyCallback  callback,
                                           gpointer             user_data);
DVT_AVAILABLE_IN_ALL
gboolean    dvt_channel_receive_finish    (DvtChannel          *channel,
                                           GAsyncResult        *result,
                                           GValue              *value,
                                           GError             **error);

G_END_DECLS
