/* dvt-task.h: one unit of work and its result
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (DVT_INSIDE) && !defined (DVT_COMPILATION)
# error "Only <dovetail.h> can be included directly."
#endif

#include "dvt-types.h"
#include "dvt-version-macros.h"

G_BEGIN_DECLS

#define DVT_TYPE_TASK (dvt_task_get_type ())

DVT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DvtTask, dvt_task, DVT, TASK, GObject)

DVT_AVAILABLE_IN_ALL
DvtRuntime   *dvt_task_get_runtime        (DvtTask        *task);
DVT_AVAILABLE_IN_ALL
guint64       dvt_task_get_id             (DvtTask        *task);
DVT_AVAILABLE_IN_ALL
const char   *dvt_task_get_name           (DvtTask        *task);
DVT_AVAILABLE_IN_ALL
void          dvt_task_set_name           (DvtTask        *task,
                                           const char     *name);
DVT_AVAILABLE_IN_ALL
guint         dvt_task_get_attempt        (DvtTask        *task);
DVT_AVAILABLE_IN_ALL
guint         dvt_task_get_index          (DvtTask        *task);
DVT_AVAILABLE_IN_ALL
GCancellable *dvt_task_get_cancellable    (DvtTask        *task);
DVT_AVAILABLE_IN_ALL
void          dvt_task_cancel             (DvtTask        *task);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_task_get_completed      (DvtTask        *task);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_task_had_error          (DvtTask        *task);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_task_wait               (DvtTask        *task,
                                           double          timeout,
                                           GError        **error);
DVT_AVAILABLE_IN_ALL
void          dvt_task_wait_async         (DvtTask             *task,
                                           GCancellable        *cancellable,
                                           GAsyncReadyCallback  callback,
                                           gpointer             user_data);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_task_wait_finish        (DvtTask        *task,
                                           GAsyncResult   *result,
                                           GError        **error);

DVT_AVAILABLE_IN_ALL
void          dvt_task_return_value       (DvtTask        *task,
                                           const GValue   *value);
DVT_AVAILABLE_IN_ALL
void          dvt_task_return_pointer     (DvtTask        *task,
                                           gpointer        result,
                                           GDestroyNotify  result_destroy);
DVT_AVAILABLE_IN_ALL
void          dvt_task_return_boolean     (DvtTask        *task,
                                           gboolean        result);
DVT_AVAILABLE_IN_ALL
void          dvt_task_return_int         (DvtTask        *task,
                                           gint64          result);
DVT_AVAILABLE_IN_ALL
void          dvt_task_return_error       (DvtTask        *task,
                                           GError         *error);
DVT_AVAILABLE_IN_ALL
void          dvt_task_return_new_error   (DvtTask        *task,
                                           GQuark          domain,
                                           int             code,
                                           const char     *format,
                                           ...) G_GNUC_PRINTF (4, 5);

DVT_AVAILABLE_IN_ALL
gboolean      dvt_task_propagate_value    (DvtTask        *task,
                                           GValue         *value,
                                           GError        **error);
DVT_AVAILABLE_IN_ALL
gpointer      dvt_task_propagate_pointer  (DvtTask        *task,
                                           GError        **error);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_task_propagate_boolean  (DvtTask        *task,
                                           GError        **error);
DVT_AVAILABLE_IN_ALL
gint64        dvt_task_propagate_int      (DvtTask        *task,
                                           GError        **error);

G_END_DECLS
