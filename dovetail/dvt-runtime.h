/* dvt-runtime.h: the runtime, its loop thread and its workers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (DVT_INSIDE) && !defined (DVT_COMPILATION)
# error "Only <dovetail.h> can be included directly."
#endif

#include "dvt-stats.h"
#include "dvt-types.h"
#include "dvt-version-macros.h"

G_BEGIN_DECLS

#define DVT_TYPE_RUNTIME (dvt_runtime_get_type ())

DVT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DvtRuntime, dvt_runtime, DVT, RUNTIME, GObject)

DVT_AVAILABLE_IN_ALL
DvtRuntime   *dvt_runtime_new                (guint                max_workers) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
DvtRuntime   *dvt_runtime_get_default        (void);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_runtime_default_is_alive   (void);

/**
 * DvtShutdownHook:
 * @user_data: (closure): the data given to dvt_runtime_set_shutdown_hook()
 *
 * The application's own shutdown, run once by Dovetail at process exit or
 * on SIGINT or SIGTERM instead of its shutdown of the runtimes that have
 * #DvtRuntime:shutdown-on-exit set. See dvt_runtime_set_shutdown_hook().
 */
typedef void (*DvtShutdownHook) (gpointer user_data);

DVT_AVAILABLE_IN_ALL
GList        *dvt_runtime_list_active        (void);
DVT_AVAILABLE_IN_ALL
guint         dvt_runtime_shutdown_all       (gboolean             wait,
                                              gboolean             cancel_pending);
DVT_AVAILABLE_IN_ALL
void          dvt_runtime_set_shutdown_hook  (DvtShutdownHook      hook,
                                              gpointer             user_data,
                                              GDestroyNotify       destroy);
DVT_AVAILABLE_IN_ALL
void          dvt_runtime_run_exit_handler   (void);
DVT_AVAILABLE_IN_ALL
GMainContext *dvt_runtime_get_context        (DvtRuntime          *self);
DVT_AVAILABLE_IN_ALL
guint         dvt_runtime_get_max_workers    (DvtRuntime          *self);
DVT_AVAILABLE_IN_ALL
const char   *dvt_runtime_get_name           (DvtRuntime          *self);

DVT_AVAILABLE_IN_ALL
gboolean      dvt_runtime_run_blocking       (DvtRuntime          *self,
                                              DvtAsyncFunc         func,
                                              gpointer             func_data,
                                              GDestroyNotify       func_data_destroy,
                                              DvtOptions          *options,
                                              GCancellable        *cancellable,
                                              GValue              *value,
                                              GError             **error);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_runtime_to_thread_blocking (DvtRuntime          *self,
                                              DvtThreadFunc        func,
                                              gpointer             func_data,
                                              GDestroyNotify       func_data_destroy,
                                              DvtOptions          *options,
                                              GCancellable        *cancellable,
                                              GValue              *value,
                                              GError             **error);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_runtime_invoke_blocking    (DvtRuntime          *self,
                                              DvtCallFunc          func,
                                              gpointer             func_data,
                                              GDestroyNotify       func_data_destroy,
                                              DvtOptions          *options,
                                              GCancellable        *cancellable,
                                              GError             **error);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_runtime_has_task_policy    (DvtRuntime          *self,
                                              DvtOptions          *options);
DVT_AVAILABLE_IN_ALL
void          dvt_runtime_to_thread_async    (DvtRuntime          *self,
                                              DvtThreadFunc        func,
                                              gpointer             func_data,
                                              GDestroyNotify       func_data_destroy,
                                              DvtOptions          *options,
                                              GCancellable        *cancellable,
                                              GAsyncReadyCallback  callback,
                                              gpointer             user_data);
DVT_AVAILABLE_IN_ALL
void          dvt_runtime_run_async          (DvtRuntime          *self,
                                              DvtAsyncFunc         func,
                                              gpointer             func_data,
                                              GDestroyNotify       func_data_destroy,
                                              DvtOptions          *options,
                                              GCancellable        *cancellable,
                                              GAsyncReadyCallback  callback,
                                              gpointer             user_data);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_runtime_run_finish         (DvtRuntime          *self,
                                              GAsyncResult        *result,
                                              GValue              *value,
                                              GError             **error);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_runtime_to_thread_finish   (DvtRuntime          *self,
                                              GAsyncResult        *result,
                                              GValue              *value,
                                              GError             **error);
DVT_AVAILABLE_IN_ALL
DvtTask      *dvt_runtime_schedule           (DvtRuntime          *self,
                                              DvtAsyncFunc         func,
                                              gpointer             func_data,
                                              GDestroyNotify       func_data_destroy,
                                              DvtOptions          *options,
                                              GCancellable        *cancellable,
                                              GError             **error) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
DvtTask      *dvt_runtime_submit             (DvtRuntime          *self,
                                              DvtThreadFunc        func,
                                              gpointer             func_data,
                                              GDestroyNotify       func_data_destroy,
                                              DvtOptions          *options,
                                              GCancellable        *cancellable,
                                              GError             **error) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
GArray       *dvt_runtime_map_blocking       (DvtRuntime          *self,
                                              guint                n_items,
                                              DvtMapFunc           func,
                                              gpointer             func_data,
                                              GDestroyNotify       func_data_destroy,
                                              DvtOptions          *options,
                                              GCancellable        *cancellable,
                                              GError             **error);
DVT_AVAILABLE_IN_ALL
void          dvt_runtime_map_async          (DvtRuntime          *self,
                                              guint                n_items,
                                              DvtMapFunc           func,
                                              gpointer             func_data,
                                              GDestroyNotify       func_data_destroy,
                                              DvtOptions          *options,
                                              GCancellable        *cancellable,
                                              GAsyncReadyCallback  callback,
                                              gpointer             user_data);
DVT_AVAILABLE_IN_ALL
GArray       *dvt_runtime_map_finish         (DvtRuntime          *self,
                                              GAsyncResult        *result,
                                              GError             **error);
DVT_AVAILABLE_IN_ALL
guint         dvt_runtime_get_map_runners    (DvtRuntime          *self,
                                              guint                n_items,
                                              DvtOptions          *options);
DVT_AVAILABLE_IN_ALL
GArray       *dvt_runtime_gather_blocking    (DvtRuntime          *self,
                                              DvtTask * const     *tasks,
                                              guint                n_tasks,
                                              DvtOptions          *options,
                                              GCancellable        *cancellable,
                                              GError             **error);
DVT_AVAILABLE_IN_ALL
void          dvt_runtime_gather_async       (DvtRuntime          *self,
                                              DvtTask * const     *tasks,
                                              guint                n_tasks,
                                              DvtOptions          *options,
                                              GCancellable        *cancellable,
                                              GAsyncReadyCallback  callback,
                                              gpointer             user_data);
DVT_AVAILABLE_IN_ALL
GArray       *dvt_runtime_gather_finish      (DvtRuntime          *self,
                                              GAsyncResult        *result,
                                              GError             **error);

DVT_AVAILABLE_IN_ALL
void          dvt_runtime_shutdown           (DvtRuntime          *self,
                                              gboolean             wait,
                                              gboolean             cancel_pending);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_runtime_is_shutdown        (DvtRuntime          *self);
DVT_AVAILABLE_IN_ALL
void          dvt_runtime_shutdown_async     (DvtRuntime          *self,
                                              gboolean             cancel_pending,
                                              GCancellable        *cancellable,
                                              GAsyncReadyCallback  callback,
                                              gpointer             user_data);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_runtime_shutdown_finish    (DvtRuntime          *self,
                                              GAsyncResult        *result,
                                              GError             **error);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_runtime_wait_idle          (DvtRuntime          *self,
                                              double               timeout,
                                              GCancellable        *cancellable,
                                              GError             **error);
DVT_AVAILABLE_IN_ALL
void          dvt_runtime_wait_idle_async    (DvtRuntime          *self,
                                              GCancellable        *cancellable,
                                              GAsyncReadyCallback  callback,
                                              gpointer             user_data);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_runtime_wait_idle_finish   (DvtRuntime          *self,
                                              GAsyncResult        *result,
                                              GError             **error);
DVT_AVAILABLE_IN_ALL
guint         dvt_runtime_cancel_all         (DvtRuntime          *self);
DVT_AVAILABLE_IN_ALL
DvtStats     *dvt_runtime_get_stats          (DvtRuntime          *self);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_runtime_set_rate_limit     (DvtRuntime          *self,
                                              double               rate,
                                              guint                burst,
                                              GError             **error);
DVT_AVAILABLE_IN_ALL
void          dvt_runtime_clear_rate_limit   (DvtRuntime          *self);
DVT_AVAILABLE_IN_ALL
void          dvt_runtime_inc_stat           (DvtRuntime          *self,
                                              const char          *name,
                                              gint64               delta);

G_END_DECLS
