/* dvt-task-group.h: an open group of tasks, waited for together
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

#define DVT_TYPE_TASK_GROUP (dvt_task_group_get_type ())

DVT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DvtTaskGroup, dvt_task_group, DVT, TASK_GROUP, GObject)

DVT_AVAILABLE_IN_ALL
DvtTaskGroup *dvt_task_group_new                   (DvtRuntime          *runtime) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
DvtRuntime   *dvt_task_group_get_runtime           (DvtTaskGroup        *group);
DVT_AVAILABLE_IN_ALL
guint         dvt_task_group_get_max_concurrency   (DvtTaskGroup        *group);
DVT_AVAILABLE_IN_ALL
void          dvt_task_group_set_max_concurrency   (DvtTaskGroup        *group,
                                                    guint                max_concurrency);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_task_group_get_cancel_on_failure (DvtTaskGroup        *group);
DVT_AVAILABLE_IN_ALL
void          dvt_task_group_set_cancel_on_failure (DvtTaskGroup        *group,
                                                    gboolean             cancel_on_failure);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_task_group_get_return_errors     (DvtTaskGroup        *group);
DVT_AVAILABLE_IN_ALL
void          dvt_task_group_set_return_errors     (DvtTaskGroup        *group,
                                                    gboolean             return_errors);

DVT_AVAILABLE_IN_ALL
gboolean      dvt_task_group_add                   (DvtTaskGroup        *group,
                                                    DvtTask             *task,
                                                    GError             **error);
DVT_AVAILABLE_IN_ALL
DvtTask      *dvt_task_group_submit                (DvtTaskGroup        *group,
                                                    DvtThreadFunc        func,
                                                    gpointer             func_data,
                                                    GDestroyNotify       func_data_destroy,
                                                    DvtOptions          *options,
                                                    GCancellable        *cancellable,
                                                    GError             **error) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
DvtTask      *dvt_task_group_schedule              (DvtTaskGroup        *group,
                                                    DvtAsyncFunc         func,
                                                    gpointer             func_data,
                                                    GDestroyNotify       func_data_destroy,
                                                    DvtOptions          *options,
                                                    GCancellable        *cancellable,
                                                    GError             **error) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
void          dvt_task_group_close                 (DvtTaskGroup        *group);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_task_group_is_closed             (DvtTaskGroup        *group);
DVT_AVAILABLE_IN_ALL
guint         dvt_task_group_cancel                (DvtTaskGroup        *group);

DVT_AVAILABLE_IN_ALL
guint         dvt_task_group_get_n_tasks           (DvtTaskGroup        *group);
DVT_AVAILABLE_IN_ALL
guint         dvt_task_group_get_n_unfinished      (DvtTaskGroup        *group);
DVT_AVAILABLE_IN_ALL
GPtrArray    *dvt_task_group_get_tasks             (DvtTaskGroup        *group);

DVT_AVAILABLE_IN_ALL
gboolean      dvt_task_group_wait_blocking         (DvtTaskGroup        *group,
                                                    double               timeout,
                                                    GCancellable        *cancellable,
                                                    GError             **error);
DVT_AVAILABLE_IN_ALL
void          dvt_task_group_wait_async            (DvtTaskGroup        *group,
                                                    double               timeout,
                                                    GCancellable        *cancellable,
                                                    GAsyncReadyCallback  callback,
                                                    gpointer             user_data);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_task_group_wait_finish           (DvtTaskGroup        *group,
                                                    GAsyncResult        *result,
                                                    GError             **error);

DVT_AVAILABLE_IN_ALL
DvtTask      *dvt_task_group_next_blocking         (DvtTaskGroup        *group,
                                                    double               timeout,
                                                    GCancellable        *cancellable,
                                                    GError             **error);
DVT_AVAILABLE_IN_ALL
void          dvt_task_group_next_async            (DvtTaskGroup        *group,
                                                    GCancellable        *cancellable,
                                                    GAsyncReadyCallback  callback,
                                                    gpointer             user_data);
DVT_AVAILABLE_IN_ALL
DvtTask      *dvt_task_group_next_finish           (DvtTaskGroup        *group,
                                                    GAsyncResult        *result,
                                                    GError             **error);

DVT_AVAILABLE_IN_ALL
DvtTask      *dvt_task_group_first_blocking        (DvtTaskGroup        *group,
                                                    double               timeout,
                                                    gboolean             cancel_rest,
                                                    GCancellable        *cancellable,
                                                    GError             **error);
DVT_AVAILABLE_IN_ALL
void          dvt_task_group_first_async           (DvtTaskGroup        *group,
                                                    gboolean             cancel_rest,
                                                    GCancellable        *cancellable,
                                                    GAsyncReadyCallback  callback,
                                                    gpointer             user_data);
DVT_AVAILABLE_IN_ALL
DvtTask      *dvt_task_group_first_finish          (DvtTaskGroup        *group,
                                                    GAsyncResult        *result,
                                                    GError             **error);

G_END_DECLS
